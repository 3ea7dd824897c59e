/* Render threads (claim, run, commit) and the lease keeper. */
#include "worker.h"

#include "../log/log.h"

#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* An idle thread looks for work at least this often even without a wake-up
 * (tasks rescued from another process, or submitted by another node). */
#define IDLE_POLL_MS 1000
/* How often the keeper looks for expired leases. */
#define RESCUE_EVERY_MS 1000

struct worker_pool {
    struct worker_deps d;
    char owner[128];
    atomic_bool stop; /* engines poll it; set once by worker_stop */

    pthread_mutex_t lock; /* guards wakeups, cond, keeper_cond */
    pthread_cond_t cond;  /* render threads wait here when idle */
    pthread_cond_t keeper_cond;
    unsigned long wakeups; /* submits not yet picked up */

    pthread_t *threads;
    int n_threads;
    pthread_t keeper;
    bool keeper_started;
};

const char *worker_owner(const struct worker_pool *pool)
{
    return pool->owner;
}

static void deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

void worker_notify(void *arg)
{
    struct worker_pool *pool = arg;
    pthread_mutex_lock(&pool->lock);
    pool->wakeups++;
    pthread_cond_signal(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
}

/* Sleep until a submit, stop, or `ms` pass. */
static void idle_wait(struct worker_pool *pool, int64_t ms)
{
    struct timespec ts;
    deadline_in(&ts, ms);
    pthread_mutex_lock(&pool->lock);
    while (pool->wakeups == 0 && !atomic_load(&pool->stop)) {
        if (pthread_cond_timedwait(&pool->cond, &pool->lock, &ts) == ETIMEDOUT)
            break;
    }
    if (pool->wakeups)
        pool->wakeups--;
    pthread_mutex_unlock(&pool->lock);
}

/* Record a failure; the lease decides whether it counts. */
static void finish_failed(struct worker_pool *pool, struct task *t, int code,
                          const char *message)
{
    t->status = TASK_FAILED;
    t->end_ms = clock_now_ms();
    snprintf(t->code, sizeof(t->code), "%s", err_code(code));
    free(t->message);
    t->message = xstrdup(message);
    int rc = store_finish(pool->d.store, t, pool->owner);
    if (rc == ERR_CONFLICT)
        log_warn("lease lost; failure discarded", "task_id=%s", t->task_id);
    else if (rc < 0)
        log_error("could not record failure", "task_id=%s", t->task_id);
    else
        log_info("task failed", "task_id=%s code=%s attempt=%d", t->task_id,
                 t->code, t->attempt);
}

static void run_task(struct worker_pool *pool, struct task *t)
{
    struct job job = { 0 };
    struct job_result res = { 0 };
    struct errmsg e = { 0 };
    char name[BLOB_NAME_MAX];
    char *tmp = NULL;
    int64_t started = clock_mono_ms();

    if (task_job_from_json(t->spec, &job) < 0) {
        finish_failed(pool, t, ERR_INTERNAL,
                      "the stored job could not be read");
        goto out;
    }
    blob_name(t->task_id, t->attempt, name);
    tmp = blob_tmp_path(pool->d.blob, name);
    struct job_ctl ctl = { .stop = &pool->stop };
    log_info("task started", "task_id=%s model=%s attempt=%d engine=%s",
             t->task_id, t->model, t->attempt, engine_name(pool->d.engine));

    int rc = engine_run(pool->d.engine, &job, NULL, tmp, &ctl, &res, &e);
    if (rc == ERR_STOPPED && atomic_load(&pool->stop)) {
        unlink(tmp);
        if (store_release(pool->d.store, t->task_id, pool->owner) == 0)
            log_info("task given back at shutdown", "task_id=%s", t->task_id);
        goto out;
    }
    if (rc < 0) {
        unlink(tmp);
        finish_failed(pool, t, rc, errmsg_text(&e));
        goto out;
    }
    if (blob_commit(pool->d.blob, tmp, name) < 0) {
        unlink(tmp);
        finish_failed(pool, t, ERR_INTERNAL,
                      "the result could not be stored durably");
        goto out;
    }
    t->status = TASK_SUCCEEDED;
    t->end_ms = clock_now_ms();
    t->usage = res.usage;
    free(t->result);
    t->result = xstrdup(name);
    rc = store_finish(pool->d.store, t, pool->owner);
    if (rc < 0) {
        /* Lost the lease (another worker owns the task now) or the store
         * failed: this file must not outlive the decision. */
        blob_remove(pool->d.blob, name);
        log_warn("result discarded", "task_id=%s reason=%s", t->task_id,
                 rc == ERR_CONFLICT ? "lease lost" : "store error");
        goto out;
    }
    log_info("task succeeded", "task_id=%s attempt=%d render_ms=%lld",
             t->task_id, t->attempt, (long long)(clock_mono_ms() - started));
out:
    free(tmp);
    task_job_fini(&job);
}

static void *render_main(void *arg)
{
    struct worker_pool *pool = arg;
    while (!atomic_load(&pool->stop)) {
        struct task t;
        int rc = store_claim(pool->d.store, pool->owner, clock_now_ms(),
                             pool->d.conf->lease_ms, &t);
        if (rc == ERR_NOT_FOUND) {
            idle_wait(pool, IDLE_POLL_MS);
            continue;
        }
        if (rc < 0) { /* the store failed: back off, then try again */
            idle_wait(pool, IDLE_POLL_MS);
            continue;
        }
        run_task(pool, &t);
        task_fini(&t);
    }
    return NULL;
}

static void *keeper_main(void *arg)
{
    struct worker_pool *pool = arg;
    const struct conf *conf = pool->d.conf;
    int64_t renew_every = conf->lease_ms / 3;
    int64_t next_renew = clock_mono_ms(), next_rescue = next_renew;

    pthread_mutex_lock(&pool->lock);
    while (!atomic_load(&pool->stop)) {
        int64_t now = clock_mono_ms();
        if (now >= next_renew) {
            pthread_mutex_unlock(&pool->lock);
            if (store_renew(pool->d.store, pool->owner,
                            clock_now_ms() + conf->lease_ms, NULL) < 0)
                log_warn("lease renewal failed", "owner=%s", pool->owner);
            pthread_mutex_lock(&pool->lock);
            next_renew = now + renew_every;
        }
        if (now >= next_rescue) {
            int requeued = 0, failed = 0;
            pthread_mutex_unlock(&pool->lock);
            if (store_rescue(pool->d.store, clock_now_ms(), conf->max_attempts,
                             &requeued, &failed) == 0 &&
                (requeued || failed)) {
                log_info("expired leases rescued", "requeued=%d failed=%d",
                         requeued, failed);
                for (int i = 0; i < requeued; i++)
                    worker_notify(pool);
            }
            pthread_mutex_lock(&pool->lock);
            next_rescue = now + RESCUE_EVERY_MS;
        }
        int64_t wait = (next_renew < next_rescue ? next_renew : next_rescue) -
                       clock_mono_ms();
        if (wait > 0) {
            struct timespec ts;
            deadline_in(&ts, wait);
            pthread_cond_timedwait(&pool->keeper_cond, &pool->lock, &ts);
        }
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

int worker_start(const struct worker_deps *deps, struct worker_pool **out,
                 struct errmsg *err)
{
    struct worker_pool *pool = xcalloc(1, sizeof(*pool));
    pool->d = *deps;
    atomic_init(&pool->stop, false);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pool->cond, &ca);
    pthread_cond_init(&pool->keeper_cond, &ca);
    pthread_condattr_destroy(&ca);

    char host[64] = "host", nonce[9];
    unsigned char rnd[4];
    gethostname(host, sizeof(host) - 1);
    id_random(rnd, sizeof(rnd));
    id_hex(rnd, sizeof(rnd), nonce);
    snprintf(pool->owner, sizeof(pool->owner), "%s/%d/%s", host, (int)getpid(),
             nonce);

    int n = deps->conf->workers;
    pool->threads = xcalloc((size_t)(n ? n : 1), sizeof(pthread_t));
    for (int i = 0; i < n; i++) {
        if (pthread_create(&pool->threads[i], NULL, render_main, pool) != 0) {
            errmsg_set(err, ERR_INTERNAL, "cannot start worker thread %d", i);
            goto fail;
        }
        pool->n_threads++;
    }
    if (pthread_create(&pool->keeper, NULL, keeper_main, pool) != 0) {
        errmsg_set(err, ERR_INTERNAL, "cannot start the lease keeper");
        goto fail;
    }
    pool->keeper_started = true;
    *out = pool;
    return 0;
fail:
    worker_stop(pool);
    *out = NULL;
    return err->code;
}

void worker_stop(struct worker_pool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    atomic_store(&pool->stop, true);
    pthread_cond_broadcast(&pool->cond);
    pthread_cond_broadcast(&pool->keeper_cond);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->n_threads; i++)
        pthread_join(pool->threads[i], NULL);
    if (pool->keeper_started)
        pthread_join(pool->keeper, NULL);
    pthread_cond_destroy(&pool->cond);
    pthread_cond_destroy(&pool->keeper_cond);
    pthread_mutex_destroy(&pool->lock);
    free(pool->threads);
    free(pool);
}
