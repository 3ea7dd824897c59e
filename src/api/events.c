/*
 * The status stream (docs/extensions.md, "Status stream"):
 * GET /api/v1/tasks/{id}/events as Server-Sent Events. One hub per
 * process: the streams open, by task, and one thread that writes them.
 * The store tells the hub which task changed (store_watch: this process's
 * commits, and on PostgreSQL every node's through LISTEN); the thread reads
 * the task once and sends its query answer as an event when its revision
 * (tasks.rev, the event id) is newer than the stream's last. At each
 * keep-alive it writes a comment and reads the task again, so a lost
 * notification costs at most one interval. No thread per stream: http/
 * holds a quiet stream as a parked connection.
 */
#include "api_int.h"

#include "../log/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A stream's unsent bytes at most: a few answers; past it the reader is
 * too slow and is cut (it resumes with Last-Event-ID). */
#define EVENTS_PENDING_MAX (256u << 10)
/* Buckets of the by-task and by-key tables (chained). */
#define EVENTS_BUCKETS 4096

struct sub {
    char task_id[UUID_STR_LEN + 1];
    char key_id[TASK_KEY_ID_MAX + 1];
    char request_id[UUID_STR_LEN + 1];
    char base[API_URL_BASE_MAX];
    struct http_stream *st;
    struct api_events *hub;
    /* The hub thread's alone. */
    int64_t last_rev; /* the last event id sent (or resumed from); -1 */
    int64_t next_ka_ms;
    bool ka_due;
    /* Under hub->lock. */
    bool dirty, gone;
    struct sub *bnext, *dnext;
};

struct keycount {
    char key_id[TASK_KEY_ID_MAX + 1];
    int n;
    struct keycount *next;
};

struct api_events {
    struct api *api;
    int max, max_per_key;
    int64_t keepalive_ms;
    pthread_mutex_t lock; /* guards everything below but thread */
    pthread_cond_t cond;  /* the thread waits here */
    bool stop;
    int open; /* streams held (reserved included) */
    struct sub *by_task[EVENTS_BUCKETS];
    struct keycount *by_key[EVENTS_BUCKETS];
    struct sub *dirty; /* streams to look at */
    pthread_t thread;
};

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u; /* FNV-1a */
    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h % EVENTS_BUCKETS;
}

/* Under lock: have the thread look at s. */
static void mark(struct api_events *h, struct sub *s)
{
    if (s->dirty)
        return;
    s->dirty = true;
    s->dnext = h->dirty;
    h->dirty = s;
    pthread_cond_signal(&h->cond);
}

static struct keycount **key_slot(struct api_events *h, const char *key_id)
{
    struct keycount **k = &h->by_key[hash(key_id)];
    while (*k && strcmp((*k)->key_id, key_id) != 0)
        k = &(*k)->next;
    return k;
}

/* A stream for key_id may open: 0, ERR_BUSY (the process's bound) or
 * ERR_THROTTLING (the key's). */
static int reserve(struct api_events *h, const char *key_id)
{
    int rc = 0;
    pthread_mutex_lock(&h->lock);
    struct keycount **k = key_slot(h, key_id);
    if (h->open >= h->max) {
        rc = ERR_BUSY;
    } else if (*k && (*k)->n >= h->max_per_key) {
        rc = ERR_THROTTLING;
    } else {
        if (!*k) {
            *k = xcalloc(1, sizeof(**k));
            snprintf((*k)->key_id, sizeof((*k)->key_id), "%s", key_id);
        }
        (*k)->n++;
        h->open++;
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

/* Under lock: give back what reserve took. */
static void unreserve_locked(struct api_events *h, const char *key_id)
{
    struct keycount **k = key_slot(h, key_id);
    h->open--;
    if (*k && --(*k)->n == 0) {
        struct keycount *dead = *k;
        *k = dead->next;
        free(dead);
    }
}

/* The connection went away (a loop thread). */
static void sub_gone(void *arg)
{
    struct sub *s = arg;
    struct api_events *h = s->hub;
    pthread_mutex_lock(&h->lock);
    s->gone = true;
    mark(h, s);
    pthread_mutex_unlock(&h->lock);
}

/* The thread's: end s's stream, unlink s, free it. */
static void sub_drop(struct api_events *h, struct sub *s)
{
    /* First: after it, sub_gone is not running and never will. */
    http_stream_end(s->st);
    pthread_mutex_lock(&h->lock);
    struct sub **p = &h->by_task[hash(s->task_id)];
    while (*p && *p != s)
        p = &(*p)->bnext;
    if (*p)
        *p = s->bnext;
    if (s->dirty) { /* marked again meanwhile: off that list too */
        struct sub **d = &h->dirty;
        while (*d && *d != s)
            d = &(*d)->dnext;
        if (*d)
            *d = s->dnext;
    }
    unreserve_locked(h, s->key_id);
    pthread_mutex_unlock(&h->lock);
    free(s);
}

void api_task_changed(void *arg, const char *task_id)
{
    struct api_events *h = arg;
    pthread_mutex_lock(&h->lock);
    for (struct sub *s = h->by_task[hash(task_id)]; s; s = s->bnext)
        if (strcmp(s->task_id, task_id) == 0)
            mark(h, s);
    pthread_mutex_unlock(&h->lock);
}

/* One event: id, the status as its type, the query answer on one line. */
static void put_event(struct buf *out, const struct task *t,
                      const struct buf *answer)
{
    buf_printf(out, "id: %lld\nevent: %s\ndata: ", (long long)t->rev,
               task_status_name(t->status));
    buf_append(out, answer->data, answer->len);
    buf_puts(out, "\n\n");
}

/* The thread's: bring s up to date. false: s is over (drop it). */
static bool sub_update(struct api_events *h, struct sub *s, bool gone)
{
    struct api *a = h->api;
    struct task t = { 0 };
    struct buf ev = BUF_INIT, answer = BUF_INIT;
    bool keep = false;
    int64_t now = clock_now_ms();

    if (gone || !http_stream_open(s->st))
        goto out;
    if (s->ka_due) {
        s->ka_due = false;
        if (http_stream_write(s->st, ": keep-alive\n\n", 14) < 0)
            goto out;
    }
    int err = store_get(a->d.store, s->task_id, &t);
    if (err < 0 && err != ERR_NOT_FOUND) {
        keep = true; /* the store is away: the next keep-alive reads again */
        goto out;
    }
    if (err == ERR_NOT_FOUND || strcmp(t.key_id, s->key_id) != 0 ||
        task_expired(&t, now))
        goto out; /* purged meanwhile: nothing more will come */
    if (t.rev > s->last_rev) {
        api_task_answer(a, s->request_id, &t, s->base, &answer);
        put_event(&ev, &t, &answer);
        if (http_stream_write(s->st, ev.data, ev.len) < 0)
            goto out;
        s->last_rev = t.rev;
    }
    /* After the terminal event the stream ends (its bytes still go). */
    keep = !task_status_terminal(t.status);
out:
    task_fini(&t);
    buf_fini(&ev);
    buf_fini(&answer);
    return keep;
}

static void *hub_main(void *arg)
{
    struct api_events *h = arg;
    int64_t tick = h->keepalive_ms / 4 > 1000 ? 1000 : h->keepalive_ms / 4;
    int64_t next_scan = clock_mono_ms() + tick;
    pthread_mutex_lock(&h->lock);
    while (!h->stop) {
        if (!h->dirty) {
            struct timespec until = clock_mono_after(tick);
            pthread_cond_timedwait(&h->cond, &h->lock, &until);
        }
        int64_t now = clock_mono_ms();
        if (now >= next_scan) { /* keep-alives due, and a safety re-read */
            next_scan = now + tick;
            for (size_t i = 0; i < EVENTS_BUCKETS; i++)
                for (struct sub *s = h->by_task[i]; s; s = s->bnext)
                    if (now >= s->next_ka_ms) {
                        s->next_ka_ms = now + h->keepalive_ms;
                        s->ka_due = true;
                        mark(h, s);
                    }
        }
        /* One at a time off the list, so a stream marked again while it is
         * being written goes back on it; a bounded number a round, so
         * the keep-alives stay on time under a flood of changes. */
        for (int i = 0; h->dirty && i < EVENTS_BUCKETS; i++) {
            struct sub *s = h->dirty;
            h->dirty = s->dnext;
            s->dirty = false;
            bool gone = s->gone;
            pthread_mutex_unlock(&h->lock);
            if (!sub_update(h, s, gone))
                sub_drop(h, s);
            pthread_mutex_lock(&h->lock);
        }
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

/* Last-Event-ID: absent (-1), or a non-negative integer. */
static bool last_event_id(struct call *c, int64_t *out)
{
    const char *v = http_req_header(c->req, "Last-Event-ID");
    *out = -1;
    if (!v || !*v)
        return true;
    if (parse_i64(v, 0, INT64_MAX, out) < 0) {
        api_reply_error(c, ERR_INVALID_PARAMETER,
                        "Last-Event-ID: expected an event id of this stream "
                        "(a non-negative integer)");
        return false;
    }
    return true;
}

void api_events(struct call *c)
{
    struct api_events *h = c->api->events;
    struct task t = { 0 };
    char msg[200], base_buf[API_URL_BASE_MAX];
    int64_t last;

    if (!h) {
        api_reply_error(c, ERR_NOT_FOUND,
                        "this server offers no status streams "
                        "(--stream-max 0); query the task instead");
        return;
    }
    if (!last_event_id(c, &last))
        return;
    int err = ERR_NOT_FOUND;
    if (strlen(c->arg) == UUID_STR_LEN && id_is_uuid(c->arg))
        err = store_get(c->api->d.store, c->arg, &t);
    if (err == 0 &&
        (strcmp(t.key_id, c->key_id) != 0 || task_expired(&t, clock_now_ms())))
        err = ERR_NOT_FOUND; /* another key's, or expired: no such task */
    if (err == ERR_NOT_FOUND) {
        snprintf(msg, sizeof(msg), "no task %.40s for this API key", c->arg);
        api_reply_error(c, err, msg);
        goto out;
    }
    if (err < 0) {
        api_reply_error(c, err, "the task store is unavailable; retry");
        goto out;
    }
    err = reserve(h, c->key_id);
    if (err == ERR_BUSY) {
        snprintf(msg, sizeof(msg),
                 "this server holds %d status streams, its limit "
                 "(--stream-max); retry, or query the task",
                 h->max);
        api_reply_throttled(c, err, "5", msg);
        goto out;
    }
    if (err == ERR_THROTTLING) {
        snprintf(msg, sizeof(msg),
                 "this key holds %d status streams, its limit "
                 "(--stream-max-per-key); close one first",
                 h->max_per_key);
        api_reply_throttled(c, err, "5", msg);
        goto out;
    }
    struct sub *s = xcalloc(1, sizeof(*s));
    memcpy(s->task_id, t.task_id, sizeof(s->task_id));
    memcpy(s->key_id, c->key_id, sizeof(s->key_id));
    snprintf(s->request_id, sizeof(s->request_id), "%s", http_req_id(c->req));
    const char *base =
        c->api->d.conf->public_url ? "" : api_url_base(c, base_buf);
    snprintf(s->base, sizeof(s->base), "%s", base);
    s->hub = h;
    s->last_rev = last;
    s->next_ka_ms = clock_mono_ms() + h->keepalive_ms;
    /* Quiet for two keep-alives and more: the hub is stuck; close. */
    struct http_stream_opts o = { .max_pending = EVENTS_PENDING_MAX,
                                  .idle_ms = 2 * h->keepalive_ms + 5000,
                                  .gone = sub_gone,
                                  .arg = s };
    s->st = http_reply_stream(c->req, c->rep, 200, "text/event-stream", &o);
    http_reply_header(c->rep, "Cache-Control", "no-cache");
    http_reply_header(c->rep, "X-Accel-Buffering", "no");
    pthread_mutex_lock(&h->lock);
    unsigned b = hash(s->task_id);
    s->bnext = h->by_task[b];
    h->by_task[b] = s;
    mark(h, s); /* the first event: the task as it is now */
    pthread_mutex_unlock(&h->lock);
out:
    task_fini(&t);
}

struct api_events *api_events_new(struct api *a)
{
    const struct conf *conf = a->d.conf;
    if (conf->stream_max <= 0)
        return NULL;
    struct api_events *h = xcalloc(1, sizeof(*h));
    h->api = a;
    h->max = conf->stream_max;
    h->max_per_key = conf->stream_max_per_key;
    h->keepalive_ms = conf->stream_keepalive_ms;
    pthread_mutex_init(&h->lock, NULL);
    clock_cond_init(&h->cond);
    if (pthread_create(&h->thread, NULL, hub_main, h) != 0) {
        log_error("cannot start the status stream thread", "streams=0");
        pthread_mutex_destroy(&h->lock);
        pthread_cond_destroy(&h->cond);
        free(h);
        return NULL;
    }
    store_watch(a->d.store, api_task_changed, h);
    return h;
}

void api_events_free(struct api_events *h)
{
    if (!h)
        return;
    store_watch(h->api->d.store, NULL, NULL);
    pthread_mutex_lock(&h->lock);
    h->stop = true;
    pthread_cond_signal(&h->cond);
    pthread_mutex_unlock(&h->lock);
    pthread_join(h->thread, NULL);
    for (size_t i = 0; i < EVENTS_BUCKETS; i++) {
        while (h->by_task[i]) {
            struct sub *s = h->by_task[i];
            h->by_task[i] = s->bnext;
            http_stream_end(s->st);
            free(s);
        }
        while (h->by_key[i]) {
            struct keycount *k = h->by_key[i];
            h->by_key[i] = k->next;
            free(k);
        }
    }
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->cond);
    free(h);
}
