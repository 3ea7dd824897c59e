/*
 * The upstream engine's in-flight set (docs/engines.md, "The upstream
 * engine"; docs/architecture.md, "Engines own their capacity"). A task
 * handed over by engine_start becomes a flight: it is submitted once (with
 * the paddock task id as Idempotency-Key), its upstream id saved with the
 * task, then it waits for its next look with no thread of its own.
 *
 * One poller thread per engine instance holds every flight in a heap by
 * the time of its next request, sends the due ones earliest first while
 * the engine's token bucket has tokens, all at once through one net_multi
 * (libcurl's multi interface), and reads the answers as they come: each
 * flight keeps its own schedule (poll, x1.5, up to poll-max; a Retry-After
 * only lengthens it). What blocks runs on a small pool (`downloads`
 * threads): saving the upstream id in the store, downloading and checking
 * the video, and ending the job through ctl->done (a store commit), so the
 * poller never waits on a disk or a download.
 *
 * A stop (deadline, shutdown, a lost lease) ends a waiting flight at once
 * and aborts its request in flight within a second; the saved reference
 * lets the next attempt, on any node, resume without a second submit.
 */
#include "upstream_int.h"

#include "../log/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The poller's longest sleep: stop flags are looked at this often. */
#define RELAY_TICK_MS 100

enum fstate {
    F_SUBMIT, /* to submit (or a request doing it) */
    F_SAVE,   /* the pool saves the upstream id */
    F_POLL,   /* waits for its next look (or a request doing it) */
    F_FETCH,  /* the pool downloads the video */
    F_END,    /* the pool ends the job */
};

struct flight {
    struct upstream_relay *r;
    const struct job *job;
    const char *out_path;
    const struct job_ctl *ctl;
    const char *task_id;    /* paddock's ("-" when none) */
    char id[HH_ID_MAX + 1]; /* the upstream's, once known */
    enum fstate state;
    bool resumed;
    bool busy; /* a request of it is in the net_multi */
    int64_t due_ms;
    size_t heap_at; /* its place in the heap; SIZE_MAX: not there */
    struct hh_sched sched;
    int transient, throttled; /* submit retries of each kind so far */
    int last_pct;
    char *url; /* SUCCEEDED: the video link (never shown) */
    struct hh_usage usage;
    /* F_END: what done is told */
    int rc;
    struct job_result res;
    struct errmsg err;
    struct flight *next; /* on inbox or work */
};

struct upstream_relay {
    struct upstream_engine *ue;
    pthread_t poller;
    pthread_t *pool;
    int n_pool;
    pthread_mutex_t lock; /* guards inbox, work, quit, n_flights */
    pthread_cond_t work_cond;
    struct flight *inbox; /* for the poller: new, or back from the pool */
    struct flight *work, *work_tail; /* for the pool */
    bool quit;
    int n_flights;
    /* The poller's own. */
    struct net_multi *m;
    struct flight **heap;
    size_t n_heap, cap_heap;
};

/* ------------------------------------------------------------- heap */

static bool earlier(const struct flight *a, const struct flight *b)
{
    return a->due_ms < b->due_ms;
}

static void heap_swap(struct upstream_relay *r, size_t i, size_t j)
{
    struct flight *t = r->heap[i];
    r->heap[i] = r->heap[j];
    r->heap[j] = t;
    r->heap[i]->heap_at = i;
    r->heap[j]->heap_at = j;
}

static void heap_up(struct upstream_relay *r, size_t i)
{
    while (i > 0 && earlier(r->heap[i], r->heap[(i - 1) / 2])) {
        heap_swap(r, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(struct upstream_relay *r, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < r->n_heap && earlier(r->heap[l], r->heap[m]))
            m = l;
        if (l + 1 < r->n_heap && earlier(r->heap[l + 1], r->heap[m]))
            m = l + 1;
        if (m == i)
            return;
        heap_swap(r, i, m);
        i = m;
    }
}

static void heap_push(struct upstream_relay *r, struct flight *f)
{
    if (r->n_heap == r->cap_heap) {
        r->cap_heap = r->cap_heap ? r->cap_heap * 2 : 64;
        r->heap = xrealloc(r->heap, r->cap_heap * sizeof(*r->heap));
    }
    f->heap_at = r->n_heap;
    r->heap[r->n_heap++] = f;
    heap_up(r, f->heap_at);
}

static void heap_remove(struct upstream_relay *r, struct flight *f)
{
    size_t i = f->heap_at;
    if (i == SIZE_MAX)
        return;
    r->n_heap--;
    if (i != r->n_heap) {
        r->heap[i] = r->heap[r->n_heap];
        r->heap[i]->heap_at = i;
        heap_down(r, i);
        heap_up(r, i);
    }
    f->heap_at = SIZE_MAX;
}

/* ------------------------------------------------------------ hand-offs */

static bool stopped(const struct flight *f)
{
    return f->ctl->stop && atomic_load(f->ctl->stop);
}

/* To the pool (under no lock of ours). */
static void to_pool(struct flight *f)
{
    struct upstream_relay *r = f->r;
    pthread_mutex_lock(&r->lock);
    f->next = NULL;
    if (r->work_tail)
        r->work_tail->next = f;
    else
        r->work = f;
    r->work_tail = f;
    pthread_cond_signal(&r->work_cond);
    pthread_mutex_unlock(&r->lock);
}

/* To the poller, from another thread. */
static void to_poller(struct flight *f)
{
    struct upstream_relay *r = f->r;
    pthread_mutex_lock(&r->lock);
    f->next = r->inbox;
    r->inbox = f;
    pthread_mutex_unlock(&r->lock);
    net_multi_wakeup(r->m);
}

/* The flight is over: done is called on the pool. */
static void end(struct flight *f, int rc)
{
    f->rc = rc;
    if (rc < 0 && f->err.code == 0)
        errmsg_set(&f->err, rc, "%s", err_message(rc));
    f->state = F_END;
    to_pool(f);
}

static void end_stopped(struct flight *f)
{
    errmsg_set(&f->err, ERR_STOPPED, "the relay was stopped");
    end(f, ERR_STOPPED);
}

/* Look again in `ms` (the poller's own flights). */
static void again(struct flight *f, int64_t ms)
{
    f->due_ms = clock_mono_ms() + ms;
    heap_push(f->r, f);
}

/* ------------------------------------------------------------ answers */

/* A request of f's came back: f is no longer busy, and a stop set
 * meanwhile ends it now (true) whatever the answer. */
static bool ended_by_stop(struct flight *f, int rc)
{
    f->busy = false;
    if (rc != ERR_STOPPED && !stopped(f))
        return false;
    end_stopped(f);
    return true;
}

static void submit_answer(void *arg, int rc, const struct net_http_resp *resp,
                          const struct errmsg *e)
{
    struct flight *f = arg;
    struct upstream_engine *ue = f->r->ue;
    struct hh_answer a;
    struct hh_task t;
    char said[HH_SAY_MAX + 64];
    if (ended_by_stop(f, rc))
        return;
    /* poll x 1, 2, 4, 8, 16 */
    int k = f->transient < 4 ? f->transient : 4;
    if (rc < 0) {
        if (f->transient++ < UPSTREAM_SUBMIT_RETRIES) {
            log_warn("upstream submit retried",
                     "task_id=%s upstream=%s error=%s", f->task_id, ue->shown,
                     err_name(rc));
            again(f, hh_jitter(ue->poll_ms << k));
            return;
        }
        errmsg_set(&f->err, ERR_ALGO, "upstream %s unreachable: %s", ue->shown,
                   upstream_net_reason(e));
        end(f, ERR_ALGO);
        return;
    }
    hh_answer_parse(&a, resp->status, resp->retry_after_s, resp->body.data,
                    resp->body.len);
    hh_task_read(&a, &t);
    const char *code = hh_jstr(a.json, "code");
    if (a.status == 200 && t.task_id) {
        snprintf(f->id, sizeof(f->id), "%s", t.task_id);
        log_info("upstream submit", "task_id=%s upstream_task_id=%s",
                 f->task_id, f->id);
        f->state = F_SAVE;
        to_pool(f);
    } else if (a.status == 200) {
        errmsg_set(&f->err, ERR_ALGO,
                   "upstream %s accepted the task but its answer has no "
                   "usable output.task_id",
                   ue->shown);
        end(f, ERR_ALGO);
    } else if (a.status == 429) {
        int kt = f->throttled < 4 ? f->throttled : 4;
        f->throttled++;
        int64_t wait = a.retry_after_s >= 0 ? (int64_t)a.retry_after_s * 1000
                                            : hh_jitter(ue->poll_ms << kt);
        if (wait > UPSTREAM_RETRY_AFTER_MAX_MS)
            wait = UPSTREAM_RETRY_AFTER_MAX_MS;
        log_warn("upstream submit retried",
                 "task_id=%s upstream=%s status=429 wait_ms=%lld", f->task_id,
                 ue->shown, (long long)wait);
        again(f, wait);
    } else if (a.status >= 500) {
        hh_say(&a, said, sizeof(said));
        if (f->transient++ < UPSTREAM_SUBMIT_RETRIES) {
            log_warn("upstream submit retried",
                     "task_id=%s upstream=%s status=%ld", f->task_id, ue->shown,
                     a.status);
            again(f, hh_jitter(ue->poll_ms << k));
        } else {
            errmsg_set(&f->err, ERR_ALGO, "upstream %s answered %s", ue->shown,
                       said);
            end(f, ERR_ALGO);
        }
    } else if (a.status == 401 || a.status == 403) {
        end(f, upstream_key_refused(ue, &a, &f->err));
    } else if (a.status >= 400 && hh_code_ok(code)) {
        /* The upstream refused the request itself: its verdict. */
        const char *msg = hh_jstr(a.json, "message");
        snprintf(f->res.code, sizeof(f->res.code), "%s", code);
        end(f, errmsg_set(&f->err, upstream_code_error(code), "%s",
                          msg ? msg : "the upstream refused the task"));
    } else {
        hh_say(&a, said, sizeof(said));
        end(f,
            errmsg_set(&f->err, ERR_ALGO, "upstream %s refused the task (%s)",
                       ue->shown, said));
    }
    hh_answer_fini(&a);
}

static void poll_answer(void *arg, int rc, const struct net_http_resp *resp,
                        const struct errmsg *e)
{
    struct flight *f = arg;
    struct upstream_engine *ue = f->r->ue;
    const struct job_ctl *ctl = f->ctl;
    struct hh_answer a;
    struct hh_task t;
    char said[HH_SAY_MAX + 64];
    if (ended_by_stop(f, rc))
        return;
    if (rc < 0) { /* only a delay: the deadline bounds the whole */
        log_warn("upstream poll failed",
                 "task_id=%s upstream_task_id=%s error=%s", f->task_id, f->id,
                 err_name(rc));
        (void)e;
        again(f, hh_sched_next(&f->sched, -1));
        return;
    }
    hh_answer_parse(&a, resp->status, resp->retry_after_s, resp->body.data,
                    resp->body.len);
    hh_task_read(&a, &t);
    if (a.status >= 500 || a.status == 429 ||
        (a.status == 200 && t.status == HH_NONE)) {
        log_warn("upstream poll failed",
                 "task_id=%s upstream_task_id=%s status=%ld", f->task_id, f->id,
                 a.status);
        again(f, hh_sched_next(&f->sched, a.retry_after_s));
    } else if (a.status == 401 || a.status == 403) {
        end(f, upstream_key_refused(ue, &a, &f->err));
    } else if (a.status != 200) {
        hh_say(&a, said, sizeof(said));
        end(f, errmsg_set(&f->err, ERR_ALGO,
                          "upstream %s answered %s about task %s", ue->shown,
                          said, f->id));
    } else if (t.status == HH_PENDING || t.status == HH_RUNNING ||
               t.status == HH_OTHER) {
        if (t.status == HH_OTHER)
            log_warn("upstream task status unknown to paddock",
                     "task_id=%s upstream_task_id=%s status=%s", f->task_id,
                     f->id, t.status_text);
        if (t.progress >= 0 && ctl->progress) {
            int pct = t.progress > 99 ? 99 : t.progress;
            if (pct != f->last_pct) {
                f->last_pct = pct;
                ctl->progress(ctl->arg, pct);
            }
        }
        again(f, hh_sched_next(&f->sched, a.retry_after_s));
    } else if (t.status == HH_SUCCEEDED) {
        if (!t.video_url) {
            end(f, errmsg_set(&f->err, ERR_ALGO,
                              "the upstream task %s SUCCEEDED without an "
                              "http(s) output.video_url",
                              f->id));
        } else {
            f->url = xstrdup(t.video_url);
            f->usage = t.usage;
            f->state = F_FETCH;
            to_pool(f);
        }
    } else if (t.status == HH_FAILED) {
        if (t.code)
            snprintf(f->res.code, sizeof(f->res.code), "%s", t.code);
        end(f, errmsg_set(&f->err, upstream_code_error(t.code), "%s",
                          t.message ? t.message : "the upstream task failed"));
    } else if (t.status == HH_CANCELED) {
        end(f, errmsg_set(&f->err, ERR_ALGO, "the upstream canceled task %s",
                          f->id));
    } else {
        end(f, errmsg_set(&f->err, ERR_ALGO,
                          "the upstream no longer knows task %s", f->id));
    }
    hh_answer_fini(&a);
}

/* ------------------------------------------------------------ poller */

/* Send the flight's request (a token was taken for it). */
static void send_request(struct upstream_relay *r, struct flight *f)
{
    struct upstream_engine *ue = r->ue;
    struct hh_request q = { 0 };
    struct errmsg e = { 0 };
    const char *lines[HH_HEADERS_MAX];
    struct net_http_req nr;
    char *body = NULL;
    int rc;
    if (f->state == F_SUBMIT) {
        body = upstream_submit_body(f->job);
        rc = body
                 ? hh_req_submit(&q, &ue->ep, body, strlen(body),
                                 f->ctl->task_id, &e)
                 : errmsg_set(&e, ERR_INTERNAL, "cannot write the submit body");
    } else {
        rc = hh_req_query(&q, &ue->ep, f->id, &e);
    }
    if (rc == 0) {
        hh_request_net(&q, lines, &nr);
        nr.timeout_ms = ue->timeout_ms;
        nr.stop = f->ctl->stop; /* a stop aborts it within a second */
        rc = net_multi_add(r->m, &nr,
                           f->state == F_SUBMIT ? submit_answer : poll_answer,
                           f, &e);
    }
    hh_request_fini(&q);
    free(body);
    if (rc < 0) {
        f->err = e;
        end(f, rc);
        return;
    }
    f->busy = true;
}

/* Flights handed to the poller: new ones, and those the pool is done
 * with for now (their id saved). */
static void take_inbox(struct upstream_relay *r, bool *quit)
{
    pthread_mutex_lock(&r->lock);
    struct flight *f = r->inbox;
    r->inbox = NULL;
    *quit = r->quit;
    pthread_mutex_unlock(&r->lock);
    int64_t now = clock_mono_ms();
    while (f) {
        struct flight *next = f->next;
        /* A resumed flight looks at once (it may be over already); a
         * submitted one waits its first interval. */
        f->due_ms = f->state == F_POLL && !f->resumed
                        ? now + hh_sched_next(&f->sched, -1)
                        : now;
        f->resumed = false;
        heap_push(r, f);
        f = next;
    }
}

/* Waiting flights whose stop was set end now (all of them at quit: the
 * worker has stopped, nobody waits for them). */
static void reap_stopped(struct upstream_relay *r, bool all)
{
    for (size_t i = 0; i < r->n_heap;) {
        struct flight *f = r->heap[i];
        if (all || stopped(f)) {
            heap_remove(r, f);
            end_stopped(f);
        } else {
            i++;
        }
    }
}

static void *poller_main(void *arg)
{
    struct upstream_relay *r = arg;
    int64_t last_reap = 0;
    for (;;) {
        bool quit;
        take_inbox(r, &quit);
        int64_t now = clock_mono_ms();
        if (now - last_reap >= RELAY_TICK_MS || quit) {
            reap_stopped(r, quit);
            last_reap = now;
        }
        if (quit && r->n_heap == 0 && net_multi_count(r->m) == 0)
            break;
        /* Due flights, earliest first, while the bucket has tokens. */
        int64_t wait = RELAY_TICK_MS;
        while (r->n_heap && r->heap[0]->due_ms <= now) {
            if (!upstream_token(r->ue)) {
                int64_t step = (int64_t)(1000.0 / r->ue->rate_per_s);
                wait = step < 1 ? 1 : step < wait ? step : wait;
                break;
            }
            struct flight *f = r->heap[0];
            heap_remove(r, f);
            send_request(r, f);
        }
        if (r->n_heap && r->heap[0]->due_ms > now &&
            r->heap[0]->due_ms - now < wait)
            wait = r->heap[0]->due_ms - now;
        net_multi_run(r->m, (int)wait);
    }
    return NULL;
}

/* -------------------------------------------------------------- pool */

/* The pool's part: save the id, fetch the video, or end the job. */
static void pool_one(struct hh_client *hc, struct flight *f)
{
    struct upstream_relay *r = f->r;
    if (f->state == F_SAVE) {
        int rc = f->ctl->save_ref ? f->ctl->save_ref(f->ctl->arg, f->id) : 0;
        if (rc == ERR_CONFLICT) {
            errmsg_set(&f->err, ERR_STOPPED,
                       "another worker holds the task now");
            end(f, ERR_STOPPED);
        } else if (rc < 0) {
            errmsg_set(&f->err, ERR_INTERNAL,
                       "the upstream task id could not be saved");
            end(f, ERR_INTERNAL);
        } else {
            f->state = F_POLL;
            to_poller(f);
        }
        return;
    }
    if (f->state == F_FETCH) {
        hc->stop = f->ctl->stop;
        int rc = upstream_fetch(r->ue, hc, f->task_id, f->url, &f->usage,
                                f->job, f->out_path, &f->res, &f->err);
        if (rc == 0 && f->ctl->progress)
            f->ctl->progress(f->ctl->arg, 100);
        end(f, rc);
        return;
    }
    /* F_END: the job's outcome, off the poller. */
    pthread_mutex_lock(&r->lock);
    r->n_flights--;
    pthread_mutex_unlock(&r->lock);
    const struct job_ctl *ctl = f->ctl;
    int rc = f->rc;
    struct job_result res = f->res;
    struct errmsg err = f->err;
    free(f->url);
    free(f);
    ctl->done(ctl->arg, rc, &res, &err);
}

/* A pool thread's client: its pace waits for a token, a stop ends it. */
struct pool_client {
    struct hh_client hc;
    struct upstream_engine *ue;
};

static bool pool_pace(void *arg)
{
    struct pool_client *pc = arg;
    while (!upstream_token(pc->ue))
        if (!hh_nap(pc->hc.stop, 10))
            return false;
    return true;
}

static void *pool_main(void *arg)
{
    struct upstream_relay *r = arg;
    struct net_http *http = NULL;
    struct errmsg e = { 0 };
    if (net_http_new(&http, &e) < 0)
        log_error("upstream pool without an HTTP client", "error=\"%s\"",
                  errmsg_text(&e));
    struct pool_client pc = { .hc = { .ep = &r->ue->ep,
                                      .http = http,
                                      .timeout_ms = r->ue->timeout_ms,
                                      .pace = pool_pace },
                              .ue = r->ue };
    pc.hc.arg = &pc;
    pthread_mutex_lock(&r->lock);
    for (;;) {
        while (!r->work && !(r->quit && r->n_flights == 0))
            pthread_cond_wait(&r->work_cond, &r->lock);
        if (!r->work)
            break;
        struct flight *f = r->work;
        r->work = f->next;
        if (!r->work)
            r->work_tail = NULL;
        pthread_mutex_unlock(&r->lock);
        if (!http && f->state == F_FETCH) {
            errmsg_set(&f->err, ERR_INTERNAL, "no HTTP client to download");
            end(f, ERR_INTERNAL);
        } else {
            pool_one(&pc.hc, f);
        }
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    net_http_free(http);
    return NULL;
}

/* ------------------------------------------------------------ the API */

static struct upstream_relay *relay_new(struct upstream_engine *ue,
                                        struct errmsg *err)
{
    struct upstream_relay *r = xcalloc(1, sizeof(*r));
    r->ue = ue;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->work_cond, NULL);
    if (net_multi_new(&r->m, err) < 0)
        goto fail;
    if (pthread_create(&r->poller, NULL, poller_main, r) != 0) {
        errmsg_set(err, ERR_INTERNAL, "cannot start the relay's poller");
        goto fail;
    }
    r->pool = xcalloc((size_t)ue->downloads, sizeof(pthread_t));
    for (int i = 0; i < ue->downloads; i++) {
        if (pthread_create(&r->pool[i], NULL, pool_main, r) != 0)
            break;
        r->n_pool++;
    }
    return r;
fail:
    net_multi_free(r->m);
    pthread_cond_destroy(&r->work_cond);
    pthread_mutex_destroy(&r->lock);
    free(r);
    return NULL;
}

int upstream_relay_start(struct upstream_engine *ue, const struct job *job,
                         const char *out_path, const struct job_ctl *ctl,
                         struct errmsg *err)
{
    pthread_mutex_lock(&ue->lock);
    if (!ue->relay)
        ue->relay = relay_new(ue, err);
    struct upstream_relay *r = ue->relay;
    pthread_mutex_unlock(&ue->lock);
    if (!r)
        return err->code ? err->code : ERR_INTERNAL;
    struct flight *f = xcalloc(1, sizeof(*f));
    f->r = r;
    f->job = job;
    f->out_path = out_path;
    f->ctl = ctl;
    f->task_id = ctl->task_id ? ctl->task_id : "-";
    f->heap_at = SIZE_MAX;
    f->last_pct = -1;
    hh_sched_init(&f->sched, ue->poll_ms, ue->poll_max_ms,
                  UPSTREAM_RETRY_AFTER_MAX_MS);
    f->state = F_SUBMIT;
    if (ctl->ref && ctl->ref[0]) {
        if (!hh_id_ok(ctl->ref)) {
            free(f);
            return errmsg_set(err, ERR_ALGO,
                              "the saved upstream task id is not usable");
        }
        snprintf(f->id, sizeof(f->id), "%s", ctl->ref);
        f->state = F_POLL;
        f->resumed = true;
        log_info("upstream resume", "task_id=%s upstream_task_id=%s",
                 f->task_id, f->id);
    }
    pthread_mutex_lock(&r->lock);
    r->n_flights++;
    pthread_mutex_unlock(&r->lock);
    to_poller(f);
    return 0;
}

int upstream_relay_count(struct upstream_engine *ue)
{
    pthread_mutex_lock(&ue->lock);
    struct upstream_relay *r = ue->relay;
    pthread_mutex_unlock(&ue->lock);
    if (!r)
        return 0;
    pthread_mutex_lock(&r->lock);
    int n = r->n_flights;
    pthread_mutex_unlock(&r->lock);
    return n;
}

void upstream_relay_free(struct upstream_relay *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->quit = true;
    pthread_cond_broadcast(&r->work_cond);
    pthread_mutex_unlock(&r->lock);
    net_multi_wakeup(r->m);
    pthread_join(r->poller, NULL);
    /* The poller ended every flight it held; the pool finishes what is
     * queued, then sees none left. */
    pthread_mutex_lock(&r->lock);
    pthread_cond_broadcast(&r->work_cond);
    pthread_mutex_unlock(&r->lock);
    for (int i = 0; i < r->n_pool; i++)
        pthread_join(r->pool[i], NULL);
    net_multi_free(r->m);
    free(r->pool);
    free(r->heap);
    pthread_cond_destroy(&r->work_cond);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
