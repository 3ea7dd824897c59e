/* Render threads (claim, run, commit) and the keeper (leases, deadlines,
 * rescue, retention). */
#include "worker.h"

#include "../log/log.h"
#include "../metrics/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* An idle thread looks for work at least this often even without a wake-up
 * (tasks rescued from another process, or submitted by another node). */
#define IDLE_POLL_MS 1000
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
/* Redirects an input download may follow (API.md s.3). */
#define FETCH_REDIRECTS 3
/* A result file younger than this is never swept as an orphan: its task's
 * commit may be under way in another process. */
#define ORPHAN_MIN_AGE_MS 60000

#define OWNER_MAX 192

/* What one render thread is doing, for the keeper and for shutdown. */
struct slot {
    atomic_bool stop;      /* the engine's stop flag for this task */
    atomic_bool timed_out; /* set with stop when the deadline passed */
    pthread_t thread;
    int index;
    uint64_t claims;     /* claim attempts of this slot (render thread only) */
    atomic_int progress; /* the engine's last report, 0..99 */
    /* Guarded by pool->lock: */
    bool busy;
    int progress_saved; /* what the task record shows */
    char task_id[UUID_STR_LEN + 1];
    int64_t deadline_mono; /* clock_mono_ms() limit of the engine run */
    /* The lease owner of this slot's current claim: "<process>/<slot>/<n>",
     * new for every claim. The keeper renews only the leases of busy
     * slots, so a row this process gave up on (its finish failed) is not
     * kept alive: its lease runs out and it is rescued. */
    char owner[OWNER_MAX];
};

struct worker_pool {
    struct worker_deps d;
    char owner[128];      /* "<host>/<pid>/<nonce>": this process */
    atomic_bool draining; /* no new claims */
    atomic_bool stop;     /* threads exit; set once by worker_stop */

    pthread_mutex_t lock; /* guards wakeups, slots' busy/deadline */
    pthread_cond_t cond;  /* render threads wait here when idle */
    pthread_cond_t keeper_cond;
    pthread_cond_t idle_cond; /* a slot became idle (drain waits) */
    unsigned long wakeups;    /* submits not yet picked up */

    struct slot *slots;
    int n_threads;
    pthread_t keeper;
    bool keeper_started;

    /* conf models: the models this pool claims (n 0: any model). */
    struct store_models claim;
    const char **claim_names; /* borrowed from the route table */
};

const char *worker_owner(const struct worker_pool *pool)
{
    return pool->owner;
}

void worker_notify(void *arg)
{
    struct worker_pool *pool = arg;
    pthread_mutex_lock(&pool->lock);
    pool->wakeups++;
    pthread_cond_signal(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
}

static bool quitting(struct worker_pool *pool)
{
    return atomic_load(&pool->stop) || atomic_load(&pool->draining);
}

/* Sleep until a submit, stop, or `ms` pass. */
static void idle_wait(struct worker_pool *pool, int64_t ms)
{
    struct timespec ts = clock_mono_after(ms);
    pthread_mutex_lock(&pool->lock);
    while (pool->wakeups == 0 && !quitting(pool)) {
        if (pthread_cond_timedwait(&pool->cond, &pool->lock, &ts) == ETIMEDOUT)
            break;
    }
    if (pool->wakeups)
        pool->wakeups--;
    pthread_mutex_unlock(&pool->lock);
}

/* Record a failure with the code `code` names, or `as_is` when it is not
 * NULL (an upstream's own code); the lease decides whether it counts. */
/* The task is final: result files of its earlier attempts are nobody's
 * (a crash between an attempt's rename and its commit leaves one; the
 * start-up sweep would find it only at the next restart). */
static void drop_earlier_attempts(struct worker_pool *pool,
                                  const struct task *t)
{
    char name[BLOB_NAME_MAX];
    for (int a = 1; a < t->attempt; a++) {
        blob_name(t->task_id, a, name);
        blob_remove(pool->d.blob, name);
    }
}

static void finish_failed_as(struct worker_pool *pool, const char *owner,
                             struct task *t, int code, const char *as_is,
                             const char *message)
{
    t->status = TASK_FAILED;
    t->end_ms = clock_now_ms();
    snprintf(t->code, sizeof(t->code), "%s", as_is ? as_is : err_code(code));
    free(t->message);
    /* Engines' words may come cut mid-character or as raw bytes (a
     * program's stderr): stored and served as valid UTF-8 (PostgreSQL
     * refuses anything else, and the task would never finish). */
    t->message = utf8_fix_dup(message);
    int rc = store_finish(pool->d.store, t, owner);
    if (rc == ERR_CONFLICT)
        log_warn("lease lost; failure discarded", "task_id=%s", t->task_id);
    else if (rc < 0)
        log_error("could not record failure", "task_id=%s", t->task_id);
    else {
        drop_earlier_attempts(pool, t);
        if (pool->d.on_finish)
            pool->d.on_finish(pool->d.on_finish_arg, t->task_id);
        metrics_add(METRIC_FAILED, 1);
        log_info("task failed", "task_id=%s code=%s attempt=%d", t->task_id,
                 t->code, t->attempt);
    }
}

static void finish_failed(struct worker_pool *pool, const char *owner,
                          struct task *t, int code, const char *message)
{
    finish_failed_as(pool, owner, t, code, NULL, message);
}

/* A claimed task on this slot; no deadline until its engine run starts
 * (slot_deadline): waiting for a run slot is not running. */
static void slot_begin(struct worker_pool *pool, struct slot *sl,
                       const char *task_id)
{
    /* Under the lock: worker_stop sets every slot's flag under it too, so
     * a stop cannot slip in between and be overwritten. */
    pthread_mutex_lock(&pool->lock);
    snprintf(sl->task_id, sizeof(sl->task_id), "%s", task_id);
    atomic_store(&sl->progress, 0);
    sl->progress_saved = 0;
    atomic_store(&sl->stop, atomic_load(&pool->stop));
    atomic_store(&sl->timed_out, false);
    sl->busy = true;
    sl->deadline_mono = INT64_MAX;
    pthread_mutex_unlock(&pool->lock);
}

/* The run starts now (after waiting for a run slot of its engine). */
static void slot_deadline(struct worker_pool *pool, struct slot *sl,
                          int64_t deadline_ms)
{
    pthread_mutex_lock(&pool->lock);
    sl->deadline_mono = clock_mono_ms() + deadline_ms;
    pthread_mutex_unlock(&pool->lock);
}

static void slot_end(struct worker_pool *pool, struct slot *sl)
{
    pthread_mutex_lock(&pool->lock);
    sl->busy = false;
    pthread_cond_broadcast(&pool->idle_cond);
    pthread_mutex_unlock(&pool->lock);
}

/* A paddock-upload:// input: a copy of the key's file, under the same caps
 * as a download (the engine gets its own file, as for a URL). */
static int copy_upload(struct worker_pool *pool, const struct task *t,
                       const char *upload_id, const char *path,
                       int64_t max_bytes, int64_t *size, struct errmsg *err)
{
    struct errmsg e = { 0 };
    char kept[24];
    int rc = blob_upload_copy(pool->d.blob, t->key_id, upload_id, path,
                              max_bytes, size, &e);
    switch (rc) {
    case 0:
        return 0;
    case ERR_NOT_FOUND:
        clock_format_duration(pool->d.conf->retention_ms, kept);
        return errmsg_set(err, ERR_INPUT_DOWNLOAD_FAILED,
                          TASK_UPLOAD_SCHEME "%s: no such upload for this API "
                                             "key (uploads are deleted %s "
                                             "after they are sent)",
                          upload_id, kept);
    case ERR_TOO_LARGE:
        return errmsg_set(err, ERR_INPUT_DOWNLOAD_FAILED,
                          TASK_UPLOAD_SCHEME "%s: %s", upload_id,
                          errmsg_text(&e));
    default:
        return errmsg_set(err, ERR_INTERNAL, TASK_UPLOAD_SCHEME "%s: %s",
                          upload_id, errmsg_text(&e));
    }
}

/* Download job->media into temporary files for the engine (uploads are
 * copied). 0, or the first failure with "media[i]: ..." in *err. paths[i]
 * are the caller's to unlink and free, whatever the outcome. */
static int fetch_inputs(struct worker_pool *pool, struct slot *sl,
                        const struct task *t, const struct job *job,
                        char **paths, struct job_inputs *in, struct errmsg *err)
{
    for (size_t i = 0; i < job->n_media; i++) {
        char name[BLOB_NAME_MAX + 16];
        snprintf(name, sizeof(name), "%s-%d-in%zu", t->task_id, t->attempt, i);
        paths[i] = blob_tmp_path(pool->d.blob, name);
        bool video = job->media[i].type == JOB_MEDIA_VIDEO;
        struct net_fetch_opts o = {
            .allow = pool->d.allow,
            .max_bytes = video ? LIMIT_VIDEO_BYTES : LIMIT_IMAGE_BYTES,
            .timeout_ms = pool->d.conf->fetch_timeout_ms,
            .max_redirects = FETCH_REDIRECTS,
            .stop = &sl->stop,
            .http_only = video,
        };
        struct errmsg e = { 0 };
        int64_t size = 0;
        char upload_id[UUID_STR_LEN + 1];
        int rc = task_upload_id(job->media[i].url, upload_id)
                     ? copy_upload(pool, t, upload_id, paths[i], o.max_bytes,
                                   &size, &e)
                     : net_fetch(job->media[i].url, paths[i], &o, &size, &e);
        if (rc < 0)
            return errmsg_set(err, rc, "media[%zu]: %s", i, errmsg_text(&e));
        metrics_add(METRIC_FETCH_BYTES, (uint64_t)size);
        in->path[i] = paths[i];
        in->n = i + 1;
    }
    return 0;
}

/* What an engine reports while it runs, for the task record. */
struct run_notes {
    struct worker_pool *pool;
    struct slot *sl;
    const char *task_id;
};

/* Progress is only remembered here; the keeper writes the latest value
 * (flush_progress), so a burst of reports costs one write. */
static void note_progress(void *arg, int pct)
{
    struct run_notes *n = arg;
    if (pct >= 0)
        atomic_store(&n->sl->progress, pct < 100 ? pct : 99);
}

static int note_ref(void *arg, const char *ref)
{
    struct run_notes *n = arg;
    int rc = store_note(n->pool->d.store, n->task_id, n->sl->owner, -1, ref);
    if (rc == 0)
        log_info("engine reference saved", "task_id=%s ref=%s", n->task_id,
                 ref);
    return rc;
}

/* An engine that takes URLs itself (the upstream relay) cannot read an
 * upload; the API refuses such a submit, so this meets only a task whose
 * model moved to such an engine after it was accepted. */
static int check_no_uploads(const struct job *job, const struct route *route,
                            struct errmsg *err)
{
    char upload_id[UUID_STR_LEN + 1];
    for (size_t i = 0; i < job->n_media; i++)
        if (task_upload_id(job->media[i].url, upload_id))
            return errmsg_set(
                err, ERR_INVALID_PARAMETER,
                "media[%zu]: %s is served by engine %s (%s), which passes "
                "URLs on and cannot read a " TASK_UPLOAD_SCHEME " upload",
                i, job->model, route_engine_name(route->engine),
                route_engine_backend(route->engine));
    return 0;
}

static void run_task(struct worker_pool *pool, struct slot *sl, struct task *t)
{
    char *inputs[LIMIT_MEDIA_ITEMS] = { 0 };
    struct job_inputs in = { 0 };
    struct job job = { 0 };
    struct job_result res = { 0 };
    struct errmsg e = { 0 };
    char name[BLOB_NAME_MAX];
    char *tmp = NULL;
    bool acquired = false;
    int64_t started = clock_mono_ms();
    const struct route *route = route_find(pool->d.routes, t->model);

    slot_begin(pool, sl, t->task_id);
    if (!route) {
        char msg[LIMIT_ERRMSG];
        snprintf(msg, sizeof(msg),
                 "worker %s has no engine for model %s (every node needs "
                 "the same model routes)",
                 pool->owner, t->model);
        finish_failed(pool, sl->owner, t, ERR_INTERNAL, msg);
        goto out;
    }
    if (task_job_from_json(t->spec, &job) < 0) {
        finish_failed(pool, sl->owner, t, ERR_INTERNAL,
                      "the stored job could not be read");
        goto out;
    }
    struct engine *engine = route_engine_get(route->engine);
    bool local = engine_local_media(engine);
    int64_t deadline_ms = route_deadline_ms(pool->d.routes, route);
    if (route_acquire(route, &sl->stop) < 0) { /* only a stop ends it */
        if (store_release(pool->d.store, t->task_id, sl->owner) == 0)
            log_info("task given back at shutdown", "task_id=%s", t->task_id);
        goto out;
    }
    acquired = true;
    slot_deadline(pool, sl, deadline_ms);
    blob_name(t->task_id, t->attempt, name);
    tmp = blob_tmp_path(pool->d.blob, name);
    struct run_notes notes = { .pool = pool, .sl = sl, .task_id = t->task_id };
    struct job_ctl ctl = { .task_id = t->task_id,
                           .stop = &sl->stop,
                           .progress = note_progress,
                           .ref = t->ref,
                           .save_ref = note_ref,
                           .arg = &notes };
    log_info("task started",
             "task_id=%s model=%s attempt=%d engine=%s backend=%s resume=%s",
             t->task_id, t->model, t->attempt, route_engine_name(route->engine),
             engine_name(engine), t->ref ? t->ref : "-");

    int rc = 0;
    if (job.n_media && !route_accepts_uploads(route))
        rc = check_no_uploads(&job, route, &e);
    if (rc == 0 && job.n_media && local)
        rc = fetch_inputs(pool, sl, t, &job, inputs, &in, &e);
    if (rc == 0) {
        int64_t run_start = clock_mono_ms();
        rc = engine_run(engine, &job, local ? &in : NULL, tmp, &ctl, &res, &e);
        metrics_render(engine_name(engine), clock_mono_ms() - run_start);
    }
    if (rc < 0 && atomic_load(&sl->timed_out)) {
        unlink(tmp);
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "the engine did not finish within the deadline of %lld s "
                 "for %s",
                 (long long)(deadline_ms / 1000), t->model);
        finish_failed(pool, sl->owner, t, ERR_TIMEOUT, msg);
        goto out;
    }
    if (rc == ERR_STOPPED && atomic_load(&pool->stop)) {
        unlink(tmp);
        if (store_release(pool->d.store, t->task_id, sl->owner) == 0)
            log_info("task given back at shutdown", "task_id=%s", t->task_id);
        goto out;
    }
    if (rc < 0) {
        unlink(tmp);
        finish_failed_as(pool, sl->owner, t, rc, res.code[0] ? res.code : NULL,
                         errmsg_text(&e));
        goto out;
    }
    if (blob_commit(pool->d.blob, tmp, name) < 0) {
        unlink(tmp);
        finish_failed(pool, sl->owner, t, ERR_INTERNAL,
                      "the result could not be stored durably");
        goto out;
    }
    t->status = TASK_SUCCEEDED;
    t->end_ms = clock_now_ms();
    t->usage = res.usage;
    free(t->result);
    t->result = xstrdup(name);
    rc = store_finish(pool->d.store, t, sl->owner);
    if (rc < 0) {
        /* Lost the lease (another worker owns the task now) or the store
         * failed: this file must not outlive the decision. */
        blob_remove(pool->d.blob, name);
        log_warn("result discarded", "task_id=%s reason=%s", t->task_id,
                 rc == ERR_CONFLICT ? "lease lost" : "store error");
        goto out;
    }
    drop_earlier_attempts(pool, t);
    if (pool->d.on_finish)
        pool->d.on_finish(pool->d.on_finish_arg, t->task_id);
    metrics_add(METRIC_SUCCEEDED, 1);
    log_info("task succeeded", "task_id=%s attempt=%d render_ms=%lld",
             t->task_id, t->attempt, (long long)(clock_mono_ms() - started));
out:
    if (acquired)
        route_release(route);
    slot_end(pool, sl);
    for (size_t i = 0; i < LIMIT_MEDIA_ITEMS; i++) {
        if (inputs[i])
            unlink(inputs[i]);
        free(inputs[i]);
    }
    free(tmp);
    task_job_fini(&job);
}

struct thread_arg {
    struct worker_pool *pool;
    struct slot *slot;
};

static void *render_main(void *arg)
{
    struct worker_pool *pool = ((struct thread_arg *)arg)->pool;
    struct slot *sl = ((struct thread_arg *)arg)->slot;
    free(arg);
    uint64_t seen = 0; /* wake-ups from the store seen by this thread */
    while (!quitting(pool)) {
        struct task t;
        pthread_mutex_lock(&pool->lock);
        snprintf(sl->owner, sizeof(sl->owner), "%s/%d/%llu", pool->owner,
                 sl->index, (unsigned long long)++sl->claims);
        pthread_mutex_unlock(&pool->lock);
        int rc = store_claim(pool->d.store, sl->owner, clock_now_ms(),
                             pool->d.conf->lease_ms,
                             pool->claim.n ? &pool->claim : NULL, &t);
        if (rc == ERR_NOT_FOUND) {
            /* A store shared by many nodes announces work (postgres:
             * LISTEN/NOTIFY); one process's store has this pool's own
             * wake-ups. Either way the poll interval is the safety net. */
            if (store_wait_work(pool->d.store, &seen, IDLE_POLL_MS) ==
                ERR_UNSUPPORTED_OPERATION)
                idle_wait(pool, IDLE_POLL_MS);
            continue;
        }
        if (rc < 0) { /* the store failed: back off, then try again */
            idle_wait(pool, IDLE_POLL_MS);
            continue;
        }
        metrics_add(METRIC_CLAIMS, 1);
        run_task(pool, sl, &t);
        task_fini(&t);
    }
    return NULL;
}

/* Stop the engines whose deadline passed. Called with pool->lock held. */
static void check_deadlines(struct worker_pool *pool, int64_t now)
{
    for (int i = 0; i < pool->n_threads; i++) {
        struct slot *sl = &pool->slots[i];
        if (sl->busy && now >= sl->deadline_mono &&
            !atomic_load(&sl->timed_out)) {
            atomic_store(&sl->timed_out, true);
            atomic_store(&sl->stop, true);
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

/* Extend the leases of the tasks render threads are working on. */
static void renew(struct worker_pool *pool)
{
    int n = 0;
    char(*owners)[OWNER_MAX] =
        xcalloc((size_t)(pool->n_threads + 1), OWNER_MAX);
    pthread_mutex_lock(&pool->lock);
    for (int i = 0; i < pool->n_threads; i++)
        if (pool->slots[i].busy)
            memcpy(owners[n++], pool->slots[i].owner, OWNER_MAX);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < n; i++)
        if (store_renew(pool->d.store, owners[i],
                        clock_now_ms() + pool->d.conf->lease_ms, NULL) < 0)
            log_warn("lease renewal failed", "owner=%s", owners[i]);
    free(owners);
}

/* Write the progress of every busy slot whose engine reported more. */
static void flush_progress(struct worker_pool *pool)
{
    for (int i = 0; i < pool->n_threads; i++) {
        struct slot *sl = &pool->slots[i];
        char task_id[UUID_STR_LEN + 1], owner[OWNER_MAX];
        pthread_mutex_lock(&pool->lock);
        int pct = atomic_load(&sl->progress);
        bool due = sl->busy && pct > sl->progress_saved;
        memcpy(task_id, sl->task_id, sizeof(task_id));
        memcpy(owner, sl->owner, sizeof(owner));
        pthread_mutex_unlock(&pool->lock);
        if (!due || store_note(pool->d.store, task_id, owner, pct, NULL) < 0)
            continue;
        pthread_mutex_lock(&pool->lock);
        if (strcmp(sl->owner, owner) == 0)
            sl->progress_saved = pct;
        pthread_mutex_unlock(&pool->lock);
    }
}

static void *keeper_main(void *arg)
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

/* Does a task own this result file? (the orphan sweep's question) */
static bool result_owned(void *arg, const char *name)
{
    struct worker_pool *pool = arg;
    char task_id[UUID_STR_LEN + 1];
    struct task t;
    snprintf(task_id, sizeof(task_id), "%s", name);
    int rc = store_get(pool->d.store, task_id, &t);
    bool owned = rc != ERR_NOT_FOUND &&
                 (rc < 0 || (t.result && strcmp(t.result, name) == 0));
    task_fini(&t);
    return owned; /* on a store error, keep: never delete on doubt */
}

/* Whether `entry`, one item of the models option, selects route r: its
 * name (a model or an alias), or the model it means (every alias too). */
static bool selects(const char *entry, size_t len, const struct route *r)
{
    return (strlen(r->name) == len && memcmp(r->name, entry, len) == 0) ||
           (strlen(r->model.name) == len &&
            memcmp(r->model.name, entry, len) == 0);
}

/* The claim filter from conf models (comma-separated lists, repeatable):
 * the models of the routes they select. Each item must select one. */
static int select_models(struct worker_pool *pool, struct errmsg *err)
{
    const struct conf_list *want = &pool->d.conf->models;
    const struct route_table *rt = pool->d.routes;
    size_t n_routes = route_count(rt);
    if (want->n == 0)
        return 0;
    bool *on = xcalloc(n_routes ? n_routes : 1, sizeof(bool));
    int ret = 0;
    for (size_t i = 0; i < want->n && ret == 0; i++) {
        for (const char *p = want->v[i]; *p && ret == 0;) {
            size_t len = strcspn(p, ",");
            bool hit = false;
            for (size_t k = 0; k < n_routes; k++)
                if (len && selects(p, len, route_at(rt, k)))
                    hit = on[k] = true;
            if (!hit)
                ret = errmsg_set(err, ERR_INVALID_PARAMETER,
                                 "models: '%.*s' is not a model or alias "
                                 "this node routes (see paddock models)",
                                 (int)(len < 100 ? len : 100), p);
            p += len + (p[len] == ',');
        }
    }
    if (ret == 0) { /* tasks carry the model an alias means: its name */
        pool->claim_names = xcalloc(n_routes, sizeof(char *));
        for (size_t k = 0; k < n_routes; k++) {
            const char *name = route_at(rt, k)->model.name;
            bool dup = false;
            for (size_t j = 0; j < pool->claim.n; j++)
                dup |= strcmp(pool->claim_names[j], name) == 0;
            if (on[k] && !dup)
                pool->claim_names[pool->claim.n++] = name;
        }
        pool->claim.names = pool->claim_names;
    }
    free(on);
    return ret;
}

int worker_start(const struct worker_deps *deps, struct worker_pool **out,
                 struct errmsg *err)
{
    struct worker_pool *pool = xcalloc(1, sizeof(*pool));
    pool->d = *deps;
    atomic_init(&pool->stop, false);
    atomic_init(&pool->draining, false);
    pthread_mutex_init(&pool->lock, NULL);
    clock_cond_init(&pool->cond);
    clock_cond_init(&pool->keeper_cond);
    clock_cond_init(&pool->idle_cond);

    char host[64] = "host", nonce[9];
    unsigned char rnd[4];
    gethostname(host, sizeof(host) - 1);
    id_random(rnd, sizeof(rnd));
    id_hex(rnd, sizeof(rnd), nonce);
    snprintf(pool->owner, sizeof(pool->owner), "%s/%d/%s", host, (int)getpid(),
             nonce);

    if (select_models(pool, err) < 0)
        goto fail;
    int removed = 0;
    if (blob_sweep(pool->d.blob, ORPHAN_MIN_AGE_MS, result_owned, pool,
                   &removed) == 0 &&
        removed)
        log_info("orphan results removed", "count=%d", removed);

    int n = deps->conf->workers;
    pool->slots = xcalloc((size_t)(n ? n : 1), sizeof(struct slot));
    for (int i = 0; i < n; i++) {
        struct thread_arg *ta = xmalloc(sizeof(*ta));
        *ta = (struct thread_arg){ .pool = pool, .slot = &pool->slots[i] };
        pool->slots[i].index = i;
        atomic_init(&pool->slots[i].stop, false);
        atomic_init(&pool->slots[i].timed_out, false);
        atomic_init(&pool->slots[i].progress, 0);
        if (pthread_create(&pool->slots[i].thread, NULL, render_main, ta) !=
            0) {
            free(ta);
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
    worker_stop(pool, 0);
    *out = NULL;
    return err->code;
}

/* Let running tasks finish for up to grace_ms; no new claims meanwhile
 * (the keeper goes on renewing their leases). */
static void drain(struct worker_pool *pool, int64_t grace_ms)
{
    struct timespec ts = clock_mono_after(grace_ms);
    pthread_mutex_lock(&pool->lock);
    atomic_store(&pool->draining, true);
    pthread_cond_broadcast(&pool->cond);
    for (;;) {
        int busy = 0;
        for (int i = 0; i < pool->n_threads; i++)
            busy += pool->slots[i].busy;
        if (!busy)
            break;
        if (pthread_cond_timedwait(&pool->idle_cond, &pool->lock, &ts) ==
            ETIMEDOUT) {
            log_info("grace period over", "running=%d", busy);
            break;
        }
    }
    pthread_mutex_unlock(&pool->lock);
}

void worker_stop(struct worker_pool *pool, int64_t grace_ms)
{
    if (!pool)
        return;
    if (grace_ms > 0)
        drain(pool, grace_ms);
    pthread_mutex_lock(&pool->lock);
    atomic_store(&pool->stop, true);
    for (int i = 0; i < pool->n_threads; i++)
        atomic_store(&pool->slots[i].stop, true);
    pthread_cond_broadcast(&pool->cond);
    pthread_cond_broadcast(&pool->keeper_cond);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->n_threads; i++)
        pthread_join(pool->slots[i].thread, NULL);
    if (pool->keeper_started)
        pthread_join(pool->keeper, NULL);
    pthread_cond_destroy(&pool->cond);
    pthread_cond_destroy(&pool->keeper_cond);
    pthread_cond_destroy(&pool->idle_cond);
    pthread_mutex_destroy(&pool->lock);
    free(pool->slots);
    free(pool->claim_names);
    free(pool);
}
