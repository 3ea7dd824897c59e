/*
 * The store base: the registry that names the backends, the group commit
 * every backend shares, and the wrappers every caller goes through.
 */
#include "store_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A fault set on one op (store_fault_set): the call that takes `left`
 * from 1 to 0 fails with `err`. */
struct store_fault {
    atomic_int left; /* calls until the failing one; 0: none set */
    atomic_int err;
};

/* ------------------------------------------------------- group commit */

/*
 * The group commit: submits join a queue; one thread takes up to
 * ops->batch_max of them, hands them to ops->commit_batch (one
 * transaction, one fsync) and calls each one's done(). While a batch
 * commits the next one gathers, so under load many submits share one
 * commit; alone, a submit commits at once.
 */
struct store_common {
    pthread_mutex_t lock; /* guards head, tail, closing */
    pthread_cond_t cond;  /* the committer waits here */
    struct store_batch_req *head, **tail;
    bool closing, started;
    pthread_t committer;
    struct store_fault faults[STORE_OP__COUNT]; /* store_fault_set */
    /* Deliveries this process may have written (store_wait_hooks on a
     * backend without its own wake-ups). */
    pthread_mutex_t hooks_lock; /* guards hooks_seq */
    pthread_cond_t hooks_cond;
    uint64_t hooks_seq;
    /* store_watch's: the argument is stored before the function and read
     * after it. */
    _Atomic(store_changed) changed;
    _Atomic(void *) changed_arg;
};

/* A change of task_id's status or progress is committed. */
static void told(struct store *s, const char *task_id)
{
    store_changed fn = atomic_load(&s->common->changed);
    if (fn)
        fn(atomic_load(&s->common->changed_arg), task_id);
}

static void *committer_main(void *arg)
{
    struct store *s = arg;
    struct store_common *c = s->common;
    size_t batch_max = s->ops->batch_max ? s->ops->batch_max : SIZE_MAX;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (!c->head && !c->closing)
            pthread_cond_wait(&c->cond, &c->lock);
        if (!c->head)
            break; /* closing and drained */
        struct store_batch_req *batch = c->head, **end = &c->head;
        for (size_t n = 0; *end && n < batch_max; n++)
            end = &(*end)->next;
        c->head = *end;
        *end = NULL;
        if (!c->head)
            c->tail = &c->head;
        pthread_mutex_unlock(&c->lock);
        s->ops->commit_batch(s, batch);
        for (struct store_batch_req *r = batch, *next; r; r = next) {
            next = r->next;
            r->done(r->arg, r->ret, r->replay_id);
            free(r);
        }
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* Start the group commit of a store its backend just opened. */
static int common_start(struct store *s)
{
    struct store_common *c = xcalloc(1, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->tail = &c->head;
    pthread_mutex_init(&c->hooks_lock, NULL);
    clock_cond_init(&c->hooks_cond);
    for (int i = 0; i < STORE_OP__COUNT; i++) {
        atomic_init(&c->faults[i].left, 0);
        atomic_init(&c->faults[i].err, 0);
    }
    s->common = c;
    if (pthread_create(&c->committer, NULL, committer_main, s) != 0)
        return ERR_STORE;
    c->started = true;
    return 0;
}

/* Commit what is queued, stop the thread, release. NULL is fine. */
static void common_stop(struct store_common *c)
{
    if (!c)
        return;
    if (c->started) {
        pthread_mutex_lock(&c->lock);
        c->closing = true;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->lock);
        pthread_join(c->committer, NULL);
    }
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->hooks_cond);
    pthread_mutex_destroy(&c->hooks_lock);
    free(c);
}

/* ----------------------------------------------------------- registry */

/* A URL prefix and its backend; `whole`: the backend parses the whole URL
 * (libpq), else it gets what follows the prefix. */
static const struct backend {
    const char *prefix;
    bool whole;
    int (*open)(const char *arg, struct store **out, struct errmsg *err);
} backends[] = {
    { "sqlite:", false, store_sqlite_open },
    { "postgres://", true, store_pg_open },
    { "postgresql://", true, store_pg_open },
};

int store_open(const char *url, struct store **out, struct errmsg *err)
{
    const struct backend *b = NULL;
    struct store *s = NULL;
    *out = NULL;
    for (size_t i = 0; i < ARRAY_LEN(backends) && !b; i++)
        if (strncmp(url, backends[i].prefix, strlen(backends[i].prefix)) == 0)
            b = &backends[i];
    const char *scheme_end = strstr(url, "://");
    if (!b && scheme_end) { /* the scheme only: the rest may hold a password */
        size_t len = (size_t)(scheme_end - url);
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "store URL scheme '%.*s' is not supported: use "
                          "sqlite:PATH or postgres://...",
                          (int)(len < 32 ? len : 32), url);
    }
    /* No scheme: a SQLite path. */
    int ret = b ? b->open(b->whole ? url : url + strlen(b->prefix), &s, err)
                : store_sqlite_open(url, &s, err);
    if (ret < 0)
        return ret;
    if (common_start(s) < 0) {
        store_close(s);
        return errmsg_set(err, ERR_STORE, "cannot start the commit thread");
    }
    *out = s;
    return 0;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    common_stop(s->common); /* commits what is queued: the backend is open */
    s->ops->close(s);
}

const char *store_name(const struct store *s)
{
    return s->ops->name;
}

/* ----------------------------------------------------------- wrappers */

/* 0, or the error of a fault set on `op` that this call is the one to
 * fire (store_fault_set); none set, one atomic load. */
static int fault(struct store *s, enum store_op op)
{
    struct store_fault *f = &s->common->faults[op];
    int left = atomic_load_explicit(&f->left, memory_order_acquire);
    while (left > 0)
        if (atomic_compare_exchange_weak_explicit(&f->left, &left, left - 1,
                                                  memory_order_acq_rel,
                                                  memory_order_acquire))
            return left == 1
                       ? atomic_load_explicit(&f->err, memory_order_relaxed)
                       : 0;
    return 0;
}

/* A status change (or a retry) may have written deliveries: wake this
 * process's deliverer. */
static void hooks_wake(struct store *s)
{
    struct store_common *c = s->common;
    pthread_mutex_lock(&c->hooks_lock);
    c->hooks_seq++;
    pthread_cond_broadcast(&c->hooks_cond);
    pthread_mutex_unlock(&c->hooks_lock);
}

int store_submit_async(struct store *s, const struct store_submit *sub,
                       store_submit_done done, void *arg)
{
    struct store_common *c = s->common;
    int rc = fault(s, STORE_OP_SUBMIT);
    if (rc)
        return rc;
    struct store_batch_req *r = xcalloc(1, sizeof(*r));
    r->sub = sub;
    r->done = done;
    r->arg = arg;
    pthread_mutex_lock(&c->lock);
    if (c->closing) {
        pthread_mutex_unlock(&c->lock);
        free(r);
        return ERR_STORE;
    }
    bool was_empty = c->head == NULL;
    *c->tail = r;
    c->tail = &r->next;
    if (was_empty)
        pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
    return 0;
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
    int rc = store_submit_async(s, sub, wake, &w);
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
    int rc = fault(s, STORE_OP_GET);
    return rc ? rc : s->ops->get(s, task_id, out);
}

int store_claim(struct store *s, const char *worker, int64_t now_ms,
                int64_t lease_ms, const struct store_models *models,
                struct task *out)
{
    memset(out, 0, sizeof(*out));
    int rc = fault(s, STORE_OP_CLAIM);
    if (!rc)
        rc = s->ops->claim(s, worker, now_ms, lease_ms, models, out);
    if (!rc)
        hooks_wake(s);
    if (rc == 0)
        told(s, out->task_id);
    return rc;
}

int store_renew(struct store *s, struct store_lease *leases, size_t n,
                int64_t until_ms)
{
    for (size_t i = 0; i < n; i++)
        leases[i].held = false;
    int rc = fault(s, STORE_OP_RENEW);
    if (rc || n == 0)
        return rc;
    rc = s->ops->renew(s, leases, n, until_ms);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (leases[i].held && leases[i].progress >= 0)
            told(s, leases[i].task_id);
    return rc;
}

int store_finish(struct store *s, const struct task *t, const char *worker)
{
    int rc = fault(s, STORE_OP_FINISH);
    if (!rc)
        rc = s->ops->finish(s, t, worker);
    if (!rc)
        hooks_wake(s);
    if (rc == 0)
        told(s, t->task_id);
    return rc;
}

int store_release(struct store *s, const char *task_id, const char *worker)
{
    int rc = fault(s, STORE_OP_RELEASE);
    if (!rc)
        rc = s->ops->release(s, task_id, worker, false);
    if (rc == 0)
        told(s, task_id);
    return rc;
}

int store_requeue(struct store *s, const char *task_id, const char *worker)
{
    int rc = fault(s, STORE_OP_RELEASE);
    if (!rc)
        rc = s->ops->release(s, task_id, worker, true);
    if (rc == 0)
        told(s, task_id);
    return rc;
}

int store_count_query(struct store *s, const char *task_id, int max, int *count)
{
    *count = 0;
    int rc = fault(s, STORE_OP_COUNT_QUERY);
    if (rc || max <= 0)
        return rc;
    return s->ops->count_query(s, task_id, max, count);
}

int store_release_many(struct store *s, struct store_lease *leases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        leases[i].held = false;
    int rc = fault(s, STORE_OP_RELEASE);
    if (rc || n == 0)
        return rc;
    rc = s->ops->release_many(s, leases, n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (leases[i].held)
            told(s, leases[i].task_id);
    return rc;
}

int store_note(struct store *s, const char *task_id, const char *worker,
               int progress, const char *ref)
{
    int rc = fault(s, STORE_OP_NOTE);
    if (rc)
        return rc;
    if (progress > 100 || (ref && strlen(ref) > TASK_REF_MAX))
        return ERR_INVALID_PARAMETER;
    rc = s->ops->note(s, task_id, worker, progress, ref);
    if (rc == 0 && progress >= 0)
        told(s, task_id);
    return rc;
}

int store_rescue(struct store *s, int64_t now_ms, int max_attempts,
                 int *requeued, int *failed)
{
    int r = 0, f = 0;
    int rc = fault(s, STORE_OP_RESCUE);
    if (!rc)
        rc = s->ops->rescue(s, now_ms, max_attempts, &r, &f);
    if (!rc && f > 0)
        hooks_wake(s);
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
    int rc = fault(s, STORE_OP_CANCEL);
    if (!rc)
        rc = s->ops->cancel(s, task_id, key_id, now_ms, &st);
    if (!rc)
        hooks_wake(s);
    if (rc == 0)
        told(s, task_id);
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
    int rc = fault(s, STORE_OP_LIST);
    return rc ? rc : s->ops->list(s, f, out, n, total);
}

int store_purge(struct store *s, int64_t now_ms, int limit, char ***results,
                size_t *n)
{
    *results = NULL;
    *n = 0;
    int rc = fault(s, STORE_OP_PURGE);
    return rc ? rc : s->ops->purge(s, now_ms, limit, results, n);
}

int store_stats(struct store *s, struct store_stats *out)
{
    memset(out, 0, sizeof(*out));
    int rc = fault(s, STORE_OP_STATS);
    return rc ? rc : s->ops->stats(s, out);
}

int store_key_put(struct store *s, const struct store_key *k)
{
    int rc = fault(s, STORE_OP_KEY_PUT);
    return rc ? rc : s->ops->key_put(s, k);
}

int store_key_list(struct store *s, struct store_key **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = fault(s, STORE_OP_KEY_LIST);
    return rc ? rc : s->ops->key_list(s, out, n);
}

const char *store_quota_name(enum store_quota q)
{
    return q == STORE_QUOTA_SECONDS  ? "seconds"
           : q == STORE_QUOTA_AMOUNT ? "amount"
                                     : "";
}

const char *store_period_name(enum store_quota q, enum store_period p)
{
    return q == STORE_QUOTA_NONE     ? ""
           : p == STORE_PERIOD_MONTH ? "month"
                                     : "day";
}

enum store_quota store_quota_parse(const char *s)
{
    return !s                          ? STORE_QUOTA_NONE
           : strcmp(s, "seconds") == 0 ? STORE_QUOTA_SECONDS
           : strcmp(s, "amount") == 0  ? STORE_QUOTA_AMOUNT
                                       : STORE_QUOTA_NONE;
}

enum store_period store_period_parse(const char *s)
{
    return s && strcmp(s, "month") == 0 ? STORE_PERIOD_MONTH : STORE_PERIOD_DAY;
}

const char *store_group_column(enum store_group g)
{
    static const char *const cols[] = {
        [STORE_GROUP_NONE] = "''",    [STORE_GROUP_MODEL] = "model",
        [STORE_GROUP_DAY] = "day",    [STORE_GROUP_RESOLUTION] = "resolution",
        [STORE_GROUP_KEY] = "key_id",
    };
    return (size_t)g < ARRAY_LEN(cols) ? cols[g] : "''";
}

int store_key_delete(struct store *s, const char *key_id)
{
    int rc = fault(s, STORE_OP_KEY_DELETE);
    return rc ? rc : s->ops->key_delete(s, key_id);
}

int store_usage(struct store *s, const struct store_usage_query *q,
                struct store_usage_row **rows, size_t *n,
                struct store_usage_row *total)
{
    *rows = NULL;
    *n = 0;
    memset(total, 0, sizeof(*total));
    int rc = fault(s, STORE_OP_USAGE);
    return rc ? rc : s->ops->usage(s, q, rows, n, total);
}

int store_usage_purge(struct store *s, int64_t before_ms, int64_t *n)
{
    *n = 0;
    int rc = fault(s, STORE_OP_USAGE_PURGE);
    return rc ? rc : s->ops->usage_purge(s, before_ms, n);
}

int store_secret(struct store *s, const char *name, unsigned char out[32])
{
    int rc = fault(s, STORE_OP_SECRET);
    return rc ? rc : s->ops->secret(s, name, out);
}

int store_wait_work(struct store *s, uint64_t *seen, int timeout_ms)
{
    int rc = fault(s, STORE_OP_WAIT_WORK);
    if (rc)
        return rc;
    if (!s->ops->wait_work)
        return ERR_UNSUPPORTED_OPERATION;
    return s->ops->wait_work(s, seen, timeout_ms);
}

/* ----------------------------------------------------------- webhooks */

void store_delivery_fini(struct store_delivery *d)
{
    if (!d)
        return;
    free(d->body);
    d->body = NULL;
}

int store_hook_put(struct store *s, const struct store_hook *h, int max)
{
    int rc = fault(s, STORE_OP_HOOK);
    return rc ? rc : s->ops->hook_put(s, h, max);
}

int store_hook_list(struct store *s, const char *key_id,
                    struct store_hook **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = fault(s, STORE_OP_HOOK);
    return rc ? rc : s->ops->hook_list(s, key_id, out, n);
}

int store_hook_get(struct store *s, const char *webhook_id, const char *key_id,
                   struct store_hook *out)
{
    memset(out, 0, sizeof(*out));
    int rc = fault(s, STORE_OP_HOOK);
    return rc ? rc : s->ops->hook_get(s, webhook_id, key_id, out);
}

int store_hook_delete(struct store *s, const char *webhook_id,
                      const char *key_id)
{
    int rc = fault(s, STORE_OP_HOOK);
    return rc ? rc : s->ops->hook_delete(s, webhook_id, key_id);
}

int store_hook_disable(struct store *s, const char *webhook_id, int64_t now_ms)
{
    int rc = fault(s, STORE_OP_HOOK);
    return rc ? rc : s->ops->hook_disable(s, webhook_id, now_ms);
}

int store_delivery_claim(struct store *s, const char *owner, int64_t now_ms,
                         int64_t lease_ms, struct store_delivery *out,
                         size_t max, size_t *n)
{
    *n = 0;
    int rc = fault(s, STORE_OP_HOOK);
    if (rc || max == 0)
        return rc;
    return s->ops->delivery_claim(s, owner, now_ms, lease_ms, out, max, n);
}

int store_delivery_settle(struct store *s, const char *owner,
                          const struct store_delivery *d, size_t n)
{
    int rc = fault(s, STORE_OP_HOOK);
    if (rc || n == 0)
        return rc;
    return s->ops->delivery_settle(s, owner, d, n);
}

int store_delivery_list(struct store *s, const char *webhook_id, int64_t offset,
                        int64_t limit, struct store_delivery **out, size_t *n,
                        int64_t *total)
{
    *out = NULL;
    *n = 0;
    *total = 0;
    int rc = fault(s, STORE_OP_HOOK);
    return rc ? rc
              : s->ops->delivery_list(s, webhook_id, offset, limit, out, n,
                                      total);
}

int store_delivery_retry(struct store *s, const char *webhook_id,
                         const char *delivery_id, int64_t now_ms)
{
    int rc = fault(s, STORE_OP_HOOK);
    if (!rc)
        rc = s->ops->delivery_retry(s, webhook_id, delivery_id, now_ms);
    if (!rc)
        hooks_wake(s);
    return rc;
}

int store_delivery_purge(struct store *s, int64_t before_ms, int limit, int *n)
{
    *n = 0;
    int rc = fault(s, STORE_OP_HOOK);
    return rc ? rc : s->ops->delivery_purge(s, before_ms, limit, n);
}

int store_wait_hooks(struct store *s, uint64_t *seen, int timeout_ms)
{
    if (s->ops->wait_hooks)
        return s->ops->wait_hooks(s, seen, timeout_ms);
    struct store_common *c = s->common;
    struct timespec until = clock_mono_after(timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&c->hooks_lock);
    while (c->hooks_seq == *seen)
        if (pthread_cond_timedwait(&c->hooks_cond, &c->hooks_lock, &until) != 0)
            break;
    bool woken = c->hooks_seq != *seen;
    *seen = c->hooks_seq;
    pthread_mutex_unlock(&c->hooks_lock);
    return woken ? 1 : 0;
}

int store_queue_position(struct store *s, const struct task *t, int64_t *pos)
{
    *pos = 0;
    int rc = fault(s, STORE_OP_QUEUE_POSITION);
    return rc ? rc : s->ops->queue_position(s, t, pos);
}

void store_watch(struct store *s, store_changed fn, void *arg)
{
    if (fn)
        atomic_store(&s->common->changed_arg, arg);
    atomic_store(&s->common->changed, fn);
    if (s->ops->watch)
        s->ops->watch(s, fn, arg);
}

/* ------------------------------------------------------------- faults */

void store_fault_set(struct store *s, enum store_op op, int nth, int err)
{
    struct store_fault *f = &s->common->faults[op];
    atomic_store_explicit(&f->err, err < 0 ? err : ERR_STORE,
                          memory_order_relaxed);
    atomic_store_explicit(&f->left, nth > 0 ? nth : 0, memory_order_release);
}
