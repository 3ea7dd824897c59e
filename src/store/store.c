/* The store registry and the wrappers every caller goes through. */
#include "store.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_open(const char *url, struct store **out, struct errmsg *err)
{
    *out = NULL;
    if (strncmp(url, "sqlite:", 7) == 0)
        return store_sqlite_open(url + 7, out, err);
    if (strncmp(url, "postgres://", 11) == 0 ||
        strncmp(url, "postgresql://", 13) == 0)
        return store_pg_open(url, out, err);
    const char *scheme_end = strstr(url, "://");
    if (scheme_end) { /* the scheme only: the rest may hold a password */
        size_t len = (size_t)(scheme_end - url);
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "store URL scheme '%.*s' is not supported: use "
                          "sqlite:PATH or postgres://...",
                          (int)(len < 32 ? len : 32), url);
    }
    return store_sqlite_open(url, out, err);
}

void store_close(struct store *s)
{
    if (s)
        s->ops->close(s);
}

const char *store_name(const struct store *s)
{
    return s->ops->name;
}

int store_submit_async(struct store *s, const struct store_submit *sub,
                       store_submit_done done, void *arg)
{
    return s->ops->submit_async(s, sub, done, arg);
}

/* A synchronous submit waits on its own condition for the async one. */
struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    int rc;
    char *replay_id;
};

static void wake(void *arg, int rc, const char *replay_id)
{
    struct waiter *w = arg;
    pthread_mutex_lock(&w->lock);
    w->rc = rc;
    snprintf(w->replay_id, UUID_STR_LEN + 1, "%s", replay_id);
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

int store_submit(struct store *s, const struct store_submit *sub,
                 char replay_id[UUID_STR_LEN + 1])
{
    struct waiter w = { .replay_id = replay_id };
    replay_id[0] = '\0';
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    int rc = s->ops->submit_async(s, sub, wake, &w);
    if (rc == 0) {
        pthread_mutex_lock(&w.lock);
        while (!w.done)
            pthread_cond_wait(&w.cond, &w.lock);
        pthread_mutex_unlock(&w.lock);
        rc = w.rc;
    }
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    return rc;
}

int store_get(struct store *s, const char *task_id, struct task *out)
{
    memset(out, 0, sizeof(*out));
    return s->ops->get(s, task_id, out);
}

int store_claim(struct store *s, const char *worker, int64_t now_ms,
                int64_t lease_ms, const struct store_models *models,
                struct task *out)
{
    memset(out, 0, sizeof(*out));
    return s->ops->claim(s, worker, now_ms, lease_ms, models, out);
}

int store_renew(struct store *s, const char *worker, int64_t until_ms,
                int *renewed)
{
    int n = 0;
    int rc = s->ops->renew(s, worker, until_ms, &n);
    if (renewed)
        *renewed = n;
    return rc;
}

int store_finish(struct store *s, const struct task *t, const char *worker)
{
    return s->ops->finish(s, t, worker);
}

int store_release(struct store *s, const char *task_id, const char *worker)
{
    return s->ops->release(s, task_id, worker);
}

int store_note(struct store *s, const char *task_id, const char *worker,
               int progress, const char *ref)
{
    if (progress > 100 || (ref && strlen(ref) > TASK_REF_MAX))
        return ERR_INVALID_PARAMETER;
    return s->ops->note(s, task_id, worker, progress, ref);
}

int store_rescue(struct store *s, int64_t now_ms, int max_attempts,
                 int *requeued, int *failed)
{
    int r = 0, f = 0;
    int rc = s->ops->rescue(s, now_ms, max_attempts, &r, &f);
    if (requeued)
        *requeued = r;
    if (failed)
        *failed = f;
    return rc;
}

int store_cancel(struct store *s, const char *task_id, const char *key_id,
                 int64_t now_ms, enum task_status *status)
{
    enum task_status st = TASK_UNKNOWN;
    int rc = s->ops->cancel(s, task_id, key_id, now_ms, &st);
    if (status)
        *status = st;
    return rc;
}

int store_list(struct store *s, const struct store_filter *f, struct task **out,
               size_t *n, int64_t *total)
{
    *out = NULL;
    *n = 0;
    *total = 0;
    return s->ops->list(s, f, out, n, total);
}

int store_purge(struct store *s, int64_t now_ms, int limit, char ***results,
                size_t *n)
{
    *results = NULL;
    *n = 0;
    return s->ops->purge(s, now_ms, limit, results, n);
}

int store_stats(struct store *s, struct store_stats *out)
{
    memset(out, 0, sizeof(*out));
    return s->ops->stats(s, out);
}

int store_key_put(struct store *s, const struct store_key *k)
{
    return s->ops->key_put(s, k);
}

int store_key_list(struct store *s, struct store_key **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    return s->ops->key_list(s, out, n);
}

int store_secret(struct store *s, const char *name, unsigned char out[32])
{
    return s->ops->secret(s, name, out);
}

int store_wait_work(struct store *s, uint64_t *seen, int timeout_ms)
{
    if (!s->ops->wait_work)
        return ERR_UNSUPPORTED_OPERATION;
    return s->ops->wait_work(s, seen, timeout_ms);
}

/* ------------------------------------------------------- group commit */

static void *committer_main(void *arg)
{
    struct store_committer *q = arg;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (!q->head && !q->closing)
            pthread_cond_wait(&q->cond, &q->lock);
        if (!q->head)
            break; /* closing and drained */
        struct store_batch_req *batch = q->head, **end = &q->head;
        for (size_t n = 0; *end && n < q->batch_max; n++)
            end = &(*end)->next;
        q->head = *end;
        *end = NULL;
        if (!q->head)
            q->tail = &q->head;
        pthread_mutex_unlock(&q->lock);
        q->commit(q->ctx, batch);
        for (struct store_batch_req *r = batch, *next; r; r = next) {
            next = r->next;
            r->done(r->arg, r->ret, r->replay_id);
            free(r);
        }
        pthread_mutex_lock(&q->lock);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

int store_committer_start(struct store_committer *q, size_t batch_max,
                          store_commit_fn commit, void *ctx)
{
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->cond, NULL);
    q->head = NULL;
    q->tail = &q->head;
    q->closing = false;
    q->batch_max = batch_max ? batch_max : SIZE_MAX;
    q->commit = commit;
    q->ctx = ctx;
    if (pthread_create(&q->thread, NULL, committer_main, q) != 0) {
        pthread_cond_destroy(&q->cond);
        pthread_mutex_destroy(&q->lock);
        return ERR_STORE;
    }
    q->started = true;
    return 0;
}

int store_committer_push(struct store_committer *q,
                         const struct store_submit *sub, store_submit_done done,
                         void *arg)
{
    struct store_batch_req *r = xcalloc(1, sizeof(*r));
    r->sub = sub;
    r->done = done;
    r->arg = arg;
    pthread_mutex_lock(&q->lock);
    if (q->closing) {
        pthread_mutex_unlock(&q->lock);
        free(r);
        return ERR_STORE;
    }
    bool was_empty = q->head == NULL;
    *q->tail = r;
    q->tail = &r->next;
    if (was_empty)
        pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
    return 0;
}

void store_committer_stop(struct store_committer *q)
{
    if (!q->started)
        return;
    pthread_mutex_lock(&q->lock);
    q->closing = true;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
    pthread_join(q->thread, NULL);
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->lock);
    q->started = false;
}
