/*
 * Parked jobs: an engine's outcome that stands only later (the sandbox's
 * run=DURATION; job_result.hold_until_mono) waits here on a timer list (a
 * min-heap on its time) instead of on a thread. A parked job holds none of
 * its engine's capacity and no deadline; it stays on pool->jobs, so the
 * keeper renews its lease and raises its progress with time. The parker
 * thread settles each at its time; one whose lease was lost is dropped;
 * at drain every parked job goes back to PENDING in one store write.
 */
#include "worker_int.h"

#include "../log/log.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The parker looks at parked jobs' stop flags (a lost lease) this often
 * even when no time is due. */
#define PARK_SCAN_MS 1000

/* ------------------------------------------------------------ the heap */

static int64_t due(const struct wjob *j)
{
    return j->res.hold_until_mono;
}

static void heap_swap(struct wjob **h, size_t a, size_t b)
{
    struct wjob *t = h[a];
    h[a] = h[b];
    h[b] = t;
}

static void heap_up(struct wjob **h, size_t i)
{
    while (i > 0 && due(h[(i - 1) / 2]) > due(h[i])) {
        heap_swap(h, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(struct wjob **h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && due(h[l]) < due(h[m]))
            m = l;
        if (r < n && due(h[r]) < due(h[m]))
            m = r;
        if (m == i)
            return;
        heap_swap(h, i, m);
        i = m;
    }
}

/* Called with pool->lock held. */
static struct wjob *heap_pop(struct worker_pool *pool)
{
    struct wjob **h = pool->parked;
    struct wjob *top = h[0];
    top->parked = false;
    h[0] = h[--pool->n_parked];
    heap_down(h, pool->n_parked, 0);
    return top;
}

/* ------------------------------------------------------------ parking */

void park_job(struct wjob *j, int rc, const struct job_result *res,
              const struct errmsg *e)
{
    struct worker_pool *pool = j->pool;
    if (res != &j->res)
        j->res = *res;
    j->held_rc = rc;
    j->held_err = xcalloc(1, sizeof(*j->held_err));
    if (e)
        *j->held_err = *e;
    /* Its render slot (or whatever it held) is free for the next task. */
    if (j->re) {
        route_engine_give(j->re);
        j->capacity_given = true;
    }
    pthread_mutex_lock(&pool->lock);
    j->parked = true;
    j->deadline_mono = INT64_MAX; /* the hold is not the engine's work */
    if (pool->n_parked == pool->cap_parked) {
        pool->cap_parked = pool->cap_parked ? pool->cap_parked * 2 : 64;
        pool->parked =
            xrealloc(pool->parked, pool->cap_parked * sizeof(*pool->parked));
    }
    pool->parked[pool->n_parked++] = j;
    heap_up(pool->parked, pool->n_parked - 1);
    pthread_cond_signal(&pool->park_cond);
    pool->pokes++; /* room for the dispatcher */
    pthread_cond_signal(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
}

int park_progress(const struct wjob *j, int64_t now_mono)
{
    int64_t span = due(j) - j->claimed_mono, spent = now_mono - j->claimed_mono;
    if (span <= 0 || spent >= span)
        return 99;
    return spent <= 0 ? 0 : (int)(spent * 99 / span);
}

/* Its time came: the outcome the engine gave, as it would have been. */
static void settle(struct wjob *j)
{
    job_settle(j, j->held_rc, &j->res, j->held_err);
}

/* Drop parked jobs whose lease is gone (the keeper set their stop flag):
 * their task is someone else's now. Called with pool->lock held; returns
 * them as a list through qnext. */
static struct wjob *take_stopped(struct worker_pool *pool)
{
    struct wjob *out = NULL;
    size_t kept = 0;
    for (size_t i = 0; i < pool->n_parked; i++) {
        struct wjob *j = pool->parked[i];
        if (atomic_load(&j->stop)) {
            j->parked = false;
            j->qnext = out;
            out = j;
        } else {
            pool->parked[kept++] = j;
        }
    }
    if (kept != pool->n_parked) {
        pool->n_parked = kept;
        for (size_t i = kept / 2 + 1; i-- > 0;)
            heap_down(pool->parked, kept, i);
    }
    return out;
}

/* At drain: every parked job back to PENDING in one store write (a
 * thousand parked tasks must not take a thousand fsyncs to stop). */
static void give_back_all(struct worker_pool *pool, struct wjob **v, size_t n)
{
    struct store_lease *l = xcalloc(n + 1, sizeof(*l));
    for (size_t i = 0; i < n; i++)
        l[i] = (struct store_lease){ .task_id = v[i]->t.task_id,
                                     .owner = v[i]->owner,
                                     .progress = -1 };
    size_t back = 0;
    if (store_release_many(pool->d.store, l, n) < 0)
        log_warn("parked tasks not given back; their leases will expire",
                 "count=%zu", n);
    for (size_t i = 0; i < n; i++)
        back += l[i].held;
    if (back)
        log_info("parked tasks given back at shutdown", "count=%zu", back);
    for (size_t i = 0; i < n; i++) {
        unlink(v[i]->tmp);
        job_end(v[i]);
    }
    free(l);
}

void *park_main(void *arg)
{
    struct worker_pool *pool = arg;
    int64_t next_scan = clock_mono_ms() + PARK_SCAN_MS;
    pthread_mutex_lock(&pool->lock);
    while (!atomic_load(&pool->stop)) {
        if (atomic_load(&pool->draining) && pool->n_parked) {
            struct wjob **v = pool->parked;
            size_t n = pool->n_parked;
            for (size_t i = 0; i < n; i++)
                v[i]->parked = false;
            pool->parked = NULL;
            pool->n_parked = pool->cap_parked = 0;
            pthread_mutex_unlock(&pool->lock);
            give_back_all(pool, v, n);
            free(v);
            pthread_mutex_lock(&pool->lock);
            continue;
        }
        int64_t now = clock_mono_ms();
        if (now >= next_scan) {
            struct wjob *gone = take_stopped(pool);
            pthread_mutex_unlock(&pool->lock);
            while (gone) {
                struct wjob *next = gone->qnext;
                log_warn("lease lost while parked; dropped", "task_id=%s",
                         gone->t.task_id);
                unlink(gone->tmp);
                job_end(gone);
                gone = next;
            }
            pthread_mutex_lock(&pool->lock);
            next_scan = now + PARK_SCAN_MS;
        }
        if (pool->n_parked && due(pool->parked[0]) <= now) {
            struct wjob *j = heap_pop(pool);
            pthread_mutex_unlock(&pool->lock);
            settle(j);
            pthread_mutex_lock(&pool->lock);
            continue;
        }
        int64_t wake = next_scan;
        if (pool->n_parked && due(pool->parked[0]) < wake)
            wake = due(pool->parked[0]);
        if (atomic_load(&pool->draining) && !pool->n_parked)
            wake = now + PARK_SCAN_MS; /* nothing can park any more */
        struct timespec ts = clock_mono_after(wake - now);
        pthread_cond_timedwait(&pool->park_cond, &pool->lock, &ts);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}
