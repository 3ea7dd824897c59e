/*
 * The keeper thread: renews the leases of this process's jobs, stops
 * engines past their deadline, writes the progress they report, rescues
 * tasks whose lease expired (whoever held them), and deletes what is past
 * retention (tasks with their files, dead renders, uploads).
 */
#include "worker_int.h"

#include "../log/log.h"
#include "../metrics/metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* How often the keeper looks for expired leases and for tasks past their
 * retention, and checks engine deadlines. */
#define RESCUE_EVERY_MS   1000
#define JANITOR_EVERY_MS  1000
#define DEADLINE_CHECK_MS 200
/* How often the keeper writes the progress engines reported (a durable
 * write each; only when it changed). */
#define PROGRESS_EVERY_MS 500
/* Finished tasks one janitor pass deletes (a backlog drains over passes). */
#define PURGE_BATCH 500
/* How often the janitor looks for dead renders in a shared tmp/. */
#define TMP_SWEEP_EVERY_MS 60000
/* How often it looks for expired uploads: a directory scan, so once a
 * minute, or every half retention when that is shorter (a test's "2s"),
 * but not more than once a second. A submit never takes an expired upload
 * whatever the sweep's delay; the sweep only frees the disk. */
#define UPLOAD_SWEEP_MAX_MS 60000
#define UPLOAD_SWEEP_MIN_MS 1000

/* Stop the engines whose deadline passed. Called with pool->lock held. */
static void check_deadlines(struct worker_pool *pool, int64_t now)
{
    for (struct wjob *j = pool->jobs; j; j = j->next) {
        if (now >= j->deadline_mono && !atomic_load(&j->timed_out)) {
            atomic_store(&j->timed_out, true);
            atomic_store(&j->stop, true);
        }
    }
}

static void rescue(struct worker_pool *pool)
{
    int requeued = 0, failed = 0;
    if (store_rescue(pool->d.store, clock_now_ms(), pool->d.conf->max_attempts,
                     &requeued, &failed) == 0 &&
        (requeued || failed)) {
        metrics_add(METRIC_RESCUED, (uint64_t)requeued);
        metrics_add(METRIC_RESCUE_FAILED, (uint64_t)failed);
        log_info("expired leases rescued", "requeued=%d failed=%d", requeued,
                 failed);
        for (int i = 0; i < requeued; i++)
            worker_notify(pool);
    }
}

/* Delete tasks past retention, then their files. (A crash in between
 * leaves files without tasks; the sweep at start removes those.) */
static void purge(struct worker_pool *pool)
{
    char **names;
    size_t n;
    if (store_purge(pool->d.store, clock_now_ms(), PURGE_BATCH, &names, &n) <
        0) {
        log_warn("retention purge failed", "owner=%s", pool->owner);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        blob_remove(pool->d.blob, names[i]);
        free(names[i]);
    }
    free(names);
    if (n)
        log_info("expired results deleted", "count=%zu", n);
}

/* Delete uploads past the retention (by their mtime, the upload time). A
 * task that already copied its input is not affected. */
static void sweep_uploads(struct worker_pool *pool)
{
    int removed = 0;
    if (blob_upload_sweep(pool->d.blob,
                          clock_now_ms() - pool->d.conf->retention_ms,
                          &removed) < 0)
        log_warn("upload sweep failed", "owner=%s", pool->owner);
}

/* What the keeper writes of one job: taken under the lock, written
 * without it. */
struct touch {
    char task_id[UUID_STR_LEN + 1];
    char owner[OWNER_MAX];
    int progress; /* -1: unchanged */
};

/* The jobs' owners and their unsaved progress (progress: only those). */
static struct touch *collect(struct worker_pool *pool, bool progress_only,
                             size_t *n)
{
    pthread_mutex_lock(&pool->lock);
    struct touch *v = xcalloc((size_t)pool->n_jobs + 1, sizeof(*v));
    size_t k = 0;
    for (struct wjob *j = pool->jobs; j; j = j->next) {
        int pct = atomic_load(&j->progress);
        bool changed = pct > j->progress_saved;
        if (progress_only && !changed)
            continue;
        memcpy(v[k].task_id, j->t.task_id, sizeof(v[k].task_id));
        memcpy(v[k].owner, j->owner, sizeof(v[k].owner));
        v[k].progress = changed ? pct : -1;
        k++;
    }
    pthread_mutex_unlock(&pool->lock);
    *n = k;
    return v;
}

/* Extend the leases of this process's jobs. */
static void renew(struct worker_pool *pool)
{
    size_t n;
    struct touch *v = collect(pool, false, &n);
    for (size_t i = 0; i < n; i++)
        if (store_renew(pool->d.store, v[i].owner,
                        clock_now_ms() + pool->d.conf->lease_ms, NULL) < 0)
            log_warn("lease renewal failed", "owner=%s", v[i].owner);
    free(v);
}

/* Record that `pct` is in the store for the job of `owner` (if it still
 * runs: the owner names one claim). */
static void saved(struct worker_pool *pool, const char *owner, int pct)
{
    pthread_mutex_lock(&pool->lock);
    for (struct wjob *j = pool->jobs; j; j = j->next)
        if (strcmp(j->owner, owner) == 0 && pct > j->progress_saved)
            j->progress_saved = pct;
    pthread_mutex_unlock(&pool->lock);
}

/* Write the progress of every job whose engine reported more. */
static void flush_progress(struct worker_pool *pool)
{
    size_t n;
    struct touch *v = collect(pool, true, &n);
    for (size_t i = 0; i < n; i++)
        if (store_note(pool->d.store, v[i].task_id, v[i].owner, v[i].progress,
                       NULL) == 0)
            saved(pool, v[i].owner, v[i].progress);
    free(v);
}

void *keeper_main(void *arg)
{
    struct worker_pool *pool = arg;
    const struct conf *conf = pool->d.conf;
    int64_t renew_every = conf->lease_ms / 3;
    int64_t now = clock_mono_ms();
    int64_t next_renew = now, next_rescue = now, next_purge = now;
    int64_t next_tmp_sweep = now + TMP_SWEEP_EVERY_MS;
    int64_t next_upload_sweep = now;
    int64_t upload_every = conf->retention_ms / 2;
    if (upload_every > UPLOAD_SWEEP_MAX_MS)
        upload_every = UPLOAD_SWEEP_MAX_MS;
    if (upload_every < UPLOAD_SWEEP_MIN_MS)
        upload_every = UPLOAD_SWEEP_MIN_MS;
    int64_t next_progress = now;

    pthread_mutex_lock(&pool->lock);
    while (!atomic_load(&pool->stop)) {
        now = clock_mono_ms();
        check_deadlines(pool, now);
        pthread_mutex_unlock(&pool->lock);
        if (now >= next_renew) {
            renew(pool);
            next_renew = now + renew_every;
        }
        if (now >= next_rescue) {
            rescue(pool);
            next_rescue = now + RESCUE_EVERY_MS;
        }
        if (now >= next_purge) {
            purge(pool);
            next_purge = now + JANITOR_EVERY_MS;
        }
        if (now >= next_progress) {
            flush_progress(pool);
            next_progress = now + PROGRESS_EVERY_MS;
        }
        if (now >= next_tmp_sweep) {
            blob_sweep_tmp(pool->d.blob, false);
            next_tmp_sweep = now + TMP_SWEEP_EVERY_MS;
        }
        if (now >= next_upload_sweep) {
            sweep_uploads(pool);
            next_upload_sweep = now + upload_every;
        }
        pthread_mutex_lock(&pool->lock);
        int64_t next = next_renew < next_rescue ? next_renew : next_rescue;
        if (next_purge < next)
            next = next_purge;
        if (now + DEADLINE_CHECK_MS < next)
            next = now + DEADLINE_CHECK_MS;
        int64_t wait = next - clock_mono_ms();
        if (wait > 0 && !atomic_load(&pool->stop)) {
            struct timespec ts = clock_mono_after(wait);
            pthread_cond_timedwait(&pool->keeper_cond, &pool->lock, &ts);
        }
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}
