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
/* How often the keeper writes the progress engines reported (one durable
 * write for every job, with their leases; only when one changed). */
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
        if (failed)
            worker_sweep_ended(pool);
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
    /* The usage ledger outlives its tasks (docs/extensions.md, "Usage"). */
    int64_t entries = 0;
    if (store_usage_purge(pool->d.store,
                          clock_now_ms() - pool->d.conf->usage_retention_ms,
                          &entries) < 0)
        log_warn("usage ledger purge failed", "owner=%s", pool->owner);
    else if (entries)
        log_info("expired usage entries deleted", "count=%lld",
                 (long long)entries);
}

/* Delete webhook deliveries delivered or dead for a retention period
 * (docs/extensions.md, "Webhooks"). */
static void purge_deliveries(struct worker_pool *pool)
{
    int n = 0;
    if (store_delivery_purge(pool->d.store,
                             clock_now_ms() - pool->d.conf->retention_ms,
                             PURGE_BATCH, &n) < 0)
        log_warn("delivery purge failed", "owner=%s", pool->owner);
    else if (n)
        log_info("expired deliveries deleted", "count=%d", n);
}

/* Delete uploads past the retention, OSS-style ones past their 48 h (by
 * their mtime, the upload time). A task that already copied its input is
 * not affected. */
static void sweep_uploads(struct worker_pool *pool)
{
    int removed = 0;
    int64_t now = clock_now_ms();
    if (blob_upload_sweep(pool->d.blob, now - pool->d.conf->retention_ms,
                          now - BLOB_OSS_KEEP_MS, &removed) < 0)
        log_warn("upload sweep failed", "owner=%s", pool->owner);
}

/* What the keeper writes of one job: taken under the lock, written
 * without it. */
struct touch {
    uint64_t seq; /* the job's claim number */
    char task_id[UUID_STR_LEN + 1];
    char owner[OWNER_MAX];
    int progress; /* -1: unchanged */
};

/* Renew every job's lease and write the progress engines reported, in one
 * store write; a job whose lease is gone (the task was rescued and taken
 * elsewhere) is stopped: its work would be thrown away. `progress_only`:
 * skip the write when no progress changed. */
static void touch_all(struct worker_pool *pool, bool progress_only)
{
    pthread_mutex_lock(&pool->lock);
    size_t n = 0, cap = (size_t)pool->n_jobs;
    struct touch *v = xcalloc(cap + 1, sizeof(*v));
    struct store_lease *l = xcalloc(cap + 1, sizeof(*l));
    bool changed = false;
    int64_t now = clock_mono_ms();
    for (struct wjob *j = pool->jobs; j; j = j->next) {
        int pct = atomic_load(&j->progress);
        if (j->parked) { /* rises with time until its outcome stands */
            int held = park_progress(j, now);
            pct = held > pct ? held : pct;
            atomic_store(&j->progress, pct);
        }
        bool more = pct > j->progress_saved;
        changed |= more;
        v[n].seq = j->seq;
        memcpy(v[n].task_id, j->t.task_id, sizeof(v[n].task_id));
        memcpy(v[n].owner, j->owner, sizeof(v[n].owner));
        v[n].progress = more ? pct : -1;
        n++;
    }
    pthread_mutex_unlock(&pool->lock);
    if (n == 0 || (progress_only && !changed))
        goto out;
    for (size_t i = 0; i < n; i++)
        l[i] = (struct store_lease){ .task_id = v[i].task_id,
                                     .owner = v[i].owner,
                                     .progress = v[i].progress };
    if (store_renew(pool->d.store, l, n,
                    clock_now_ms() + pool->d.conf->lease_ms) < 0) {
        log_warn("lease renewal failed", "jobs=%zu", n);
        goto out;
    }
    /* The list runs newest claim first (job_new puts a job at its head),
     * and so does v: walk both at once, matching claim numbers. */
    pthread_mutex_lock(&pool->lock);
    size_t i = 0;
    for (struct wjob *j = pool->jobs; j && i < n; j = j->next) {
        while (i < n && v[i].seq > j->seq)
            i++; /* that job has ended meanwhile */
        if (i == n || v[i].seq != j->seq)
            continue; /* claimed after the collection */
        if (!l[i].held && !atomic_load(&j->stop)) {
            log_warn("lease lost; stopping", "task_id=%s", j->t.task_id);
            atomic_store(&j->stop, true);
        } else if (l[i].held && v[i].progress > j->progress_saved) {
            j->progress_saved = v[i].progress;
        }
        i++;
    }
    pthread_mutex_unlock(&pool->lock);
out:
    free(v);
    free(l);
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
            touch_all(pool, false);
            next_renew = now + renew_every;
            next_progress = now + PROGRESS_EVERY_MS;
        }
        if (now >= next_rescue) {
            rescue(pool);
            next_rescue = now + RESCUE_EVERY_MS;
        }
        if (now >= next_purge) {
            purge(pool);
            purge_deliveries(pool);
            next_purge = now + JANITOR_EVERY_MS;
        }
        if (now >= next_progress) {
            touch_all(pool, true);
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
