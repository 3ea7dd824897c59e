/*
 * A claimed task's life in this process: its job spec and engine, its
 * inputs (downloads, or copies of uploads), the engine's run (on a render
 * thread) or start (an asynchronous engine, no thread held), then the
 * result: the file made durable and committed, or the failure recorded,
 * or, at shutdown, the task given back.
 */
#include "worker_int.h"

#include "../log/log.h"
#include "../metrics/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

/* Redirects an input download may follow (docs/api.md s.3). */
#define FETCH_REDIRECTS 3

/* ----------------------------------------------------------- outcomes */

/* The task is final: result files of its earlier attempts are nobody's
 * (a crash between an attempt's rename and its commit leaves one; the
 * start-up sweep would find it only at the next restart). A task the
 * rescue fails has no attempt to do this: worker_sweep_ended does. */
static void drop_earlier_attempts(struct worker_pool *pool,
                                  const struct task *t)
{
    char name[BLOB_NAME_MAX];
    for (int a = 1; a < t->attempt; a++) {
        blob_name(t->task_id, a, name);
        blob_remove(pool->d.blob, name);
    }
}

/* Record a failure with the code `code` names, or `as_is` when it is not
 * NULL (an upstream's own code); the lease decides whether it counts. */
static void finish_failed_as(struct wjob *j, int code, const char *as_is,
                             const char *message)
{
    struct worker_pool *pool = j->pool;
    struct task *t = &j->t;
    t->status = TASK_FAILED;
    t->end_ms = clock_now_ms();
    snprintf(t->code, sizeof(t->code), "%s", as_is ? as_is : err_code(code));
    free(t->message);
    /* Engines' words may come cut mid-character or as raw bytes (a
     * program's stderr): stored and served as valid UTF-8 (PostgreSQL
     * refuses anything else, and the task would never finish). */
    t->message = utf8_fix_dup(message);
    int rc = store_finish(pool->d.store, t, j->owner);
    if (rc == ERR_CONFLICT) {
        log_warn("lease lost; failure discarded", "task_id=%s", t->task_id);
    } else if (rc < 0) {
        log_error("could not record failure", "task_id=%s", t->task_id);
    } else {
        drop_earlier_attempts(pool, t);
        if (pool->d.on_finish)
            pool->d.on_finish(pool->d.on_finish_arg, t->task_id);
        metrics_add(METRIC_FAILED, 1);
        log_info("task failed", "task_id=%s code=%s attempt=%d", t->task_id,
                 t->code, t->attempt);
    }
}

static void finish_failed(struct wjob *j, int code, const char *message)
{
    finish_failed_as(j, code, NULL, message);
}

static void give_back(struct wjob *j)
{
    if (store_release(j->pool->d.store, j->t.task_id, j->owner) == 0)
        log_info("task given back at shutdown", "task_id=%s", j->t.task_id);
}

/* The file is durable and renamed into results/, then SUCCEEDED. */
static void finish_succeeded(struct wjob *j, const struct job_result *res)
{
    struct worker_pool *pool = j->pool;
    struct task *t = &j->t;
    if (blob_commit(pool->d.blob, j->tmp, j->name) < 0) {
        unlink(j->tmp);
        finish_failed(j, ERR_INTERNAL,
                      "the result could not be stored durably");
        return;
    }
    t->status = TASK_SUCCEEDED;
    t->end_ms = clock_now_ms();
    t->usage = res->usage;
    free(t->result);
    t->result = xstrdup(j->name);
    int rc = store_finish(pool->d.store, t, j->owner);
    if (rc < 0) {
        /* Lost the lease (another worker owns the task now) or the store
         * failed: this file must not outlive the decision. */
        blob_remove(pool->d.blob, j->name);
        log_warn("result discarded", "task_id=%s reason=%s", t->task_id,
                 rc == ERR_CONFLICT ? "lease lost" : "store error");
        return;
    }
    drop_earlier_attempts(pool, t);
    if (pool->d.on_finish)
        pool->d.on_finish(pool->d.on_finish_arg, t->task_id);
    metrics_add(METRIC_SUCCEEDED, 1);
    /* What the ledger settled, counted as its trigger did (the
     * usage.duration of docs/api.md s.5). */
    const struct task_model *m = task_model_find(t->model);
    if (m)
        metrics_billed(
            m->name, j->job.resolution,
            m->kind == TASK_EDIT
                ? llround((t->usage.input_s + t->usage.output_s) * 100)
                : llround(t->usage.output_s) * 100);
    log_info("task succeeded", "task_id=%s attempt=%d render_ms=%lld",
             t->task_id, t->attempt,
             (long long)(clock_mono_ms() - j->claimed_mono));
}

static void job_free(struct wjob *j)
{
    for (size_t i = 0; i < LIMIT_MEDIA_ITEMS; i++) {
        if (j->inputs[i])
            unlink(j->inputs[i]);
        free(j->inputs[i]);
    }
    free(j->tmp);
    free(j->held_err);
    task_job_fini(&j->job);
    task_fini(&j->t);
    free(j);
}

void job_end(struct wjob *j)
{
    struct worker_pool *pool = j->pool;
    if (j->re && !j->capacity_given)
        route_engine_give(j->re);
    pthread_mutex_lock(&pool->lock);
    if (j->prev)
        j->prev->next = j->next;
    else
        pool->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    pool->n_jobs--;
    pool->pokes++; /* room for the dispatcher */
    pthread_cond_broadcast(&pool->idle_cond);
    pthread_cond_signal(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
    job_free(j);
}

void job_settle(struct wjob *j, int rc, const struct job_result *res,
                const struct errmsg *e)
{
    struct worker_pool *pool = j->pool;
    if (rc < 0 && atomic_load(&j->timed_out)) {
        unlink(j->tmp);
        char msg[160];
        snprintf(
            msg, sizeof(msg),
            "the engine did not finish within the deadline of %lld s "
            "for %s",
            (long long)(route_deadline_ms(pool->d.routes, j->route) / 1000),
            j->t.model);
        finish_failed(j, ERR_TIMEOUT, msg);
    } else if (rc == ERR_STOPPED &&
               (atomic_load(&pool->stop) || atomic_load(&pool->draining))) {
        unlink(j->tmp);
        give_back(j);
    } else if (rc < 0 && res && res->retry &&
               j->t.attempt < pool->d.conf->max_attempts) {
        unlink(j->tmp);
        if (store_requeue(pool->d.store, j->t.task_id, j->owner) == 0) {
            log_warn("task to be tried again",
                     "task_id=%s attempt=%d "
                     "reason=\"%s\"",
                     j->t.task_id, j->t.attempt, errmsg_text(e));
            worker_notify(pool);
        }
    } else if (rc < 0) {
        unlink(j->tmp);
        finish_failed_as(j, rc, res && res->code[0] ? res->code : NULL,
                         errmsg_text(e));
    } else {
        finish_succeeded(j, res);
    }
    job_end(j);
}

/* What the engine's run (or its done) said: the outcome now, or parked
 * until the engine's hold ends. A hold met at shutdown, or on a job whose
 * lease is gone, cannot wait: the task goes back (its rerun renders
 * again). */
static void job_complete(struct wjob *j, int rc, const struct job_result *res,
                         const struct errmsg *e)
{
    struct worker_pool *pool = j->pool;
    if (res && res->hold_until_mono > clock_mono_ms() &&
        !atomic_load(&j->timed_out)) {
        if (!atomic_load(&j->stop) && !atomic_load(&pool->stop) &&
            !atomic_load(&pool->draining)) {
            park_job(j, rc, res, e);
            return;
        }
        unlink(j->tmp);
        give_back(j);
        job_end(j);
        return;
    }
    job_settle(j, rc, res, e);
}

/* ctl.done of an asynchronous engine: on the engine's thread. */
static void on_done(void *arg, int rc, const struct job_result *res,
                    const struct errmsg *err)
{
    struct wjob *j = arg;
    metrics_render(engine_name(j->engine), clock_mono_ms() - j->claimed_mono);
    job_complete(j, rc, res, err);
}

/* ---------------------------------------------------------- reporting */

/* Progress is only remembered here; the keeper writes the latest value
 * (at most every PROGRESS_EVERY_MS), so a burst of reports costs one
 * write. */
static void note_progress(void *arg, int pct)
{
    struct wjob *j = arg;
    if (pct >= 0)
        atomic_store(&j->progress, pct < 100 ? pct : 99);
}

static int note_ref(void *arg, const char *ref)
{
    struct wjob *j = arg;
    int rc = store_note(j->pool->d.store, j->t.task_id, j->owner, -1, ref);
    if (rc == 0)
        log_info("engine reference saved", "task_id=%s ref=%s", j->t.task_id,
                 ref);
    return rc;
}

/* ------------------------------------------------------------- inputs */

/* A paddock-upload:// or oss:// input (`url`): a copy of the key's upload
 * `name`, kept `keep_ms`, under the same caps as a download (the engine
 * gets its own file, as for a URL). */
static int copy_upload(struct wjob *j, const char *url, const char *name,
                       int64_t keep_ms, const char *path, int64_t max_bytes,
                       int64_t *size, struct errmsg *err)
{
    struct errmsg e = { 0 };
    char kept[24];
    int rc = blob_upload_copy(j->pool->d.blob, j->t.key_id, name, path,
                              max_bytes, size, &e);
    switch (rc) {
    case 0:
        return 0;
    case ERR_NOT_FOUND:
        clock_format_duration(keep_ms, kept);
        return errmsg_set(err, ERR_INPUT_DOWNLOAD_FAILED,
                          "%.1100s: no such upload for this API key (uploads "
                          "are deleted %s after they are sent)",
                          url, kept);
    case ERR_TOO_LARGE:
        return errmsg_set(err, ERR_INPUT_DOWNLOAD_FAILED, "%.1100s: %s", url,
                          errmsg_text(&e));
    default:
        return errmsg_set(err, ERR_INTERNAL, "%.1100s: %s", url,
                          errmsg_text(&e));
    }
}

/* Download job->media into temporary files for the engine (uploads are
 * copied). 0, or the first failure with "media[i]: ..." in *err. */
static int fetch_inputs(struct wjob *j, struct errmsg *err)
{
    struct worker_pool *pool = j->pool;
    const struct job *job = &j->job;
    for (size_t i = 0; i < job->n_media; i++) {
        char name[BLOB_NAME_MAX + 16];
        snprintf(name, sizeof(name), "%s-%d-in%zu", j->t.task_id, j->t.attempt,
                 i);
        j->inputs[i] = blob_tmp_path(pool->d.blob, name);
        bool video = job->media[i].type == JOB_MEDIA_VIDEO;
        struct net_fetch_opts o = {
            .allow = pool->d.allow,
            .max_bytes = video ? LIMIT_VIDEO_BYTES : LIMIT_IMAGE_BYTES,
            .timeout_ms = pool->d.conf->fetch_timeout_ms,
            .max_redirects = FETCH_REDIRECTS,
            .stop = &j->stop,
            .http_only = video,
        };
        struct errmsg e = { 0 };
        int64_t size = 0, keep = pool->d.conf->retention_ms;
        const char *url = job->media[i].url, *key = task_oss_key(url);
        char upload[BLOB_UPLOAD_NAME_MAX];
        if (key) {
            blob_oss_name(key, upload);
            keep = BLOB_OSS_KEEP_MS;
        }
        int rc = key || task_upload_id(url, upload)
                     ? copy_upload(j, url, upload, keep, j->inputs[i],
                                   o.max_bytes, &size, &e)
                     : net_fetch(url, j->inputs[i], &o, &size, &e);
        if (rc < 0)
            return errmsg_set(err, rc, "media[%zu]: %s", i, errmsg_text(&e));
        metrics_add(METRIC_FETCH_BYTES, (uint64_t)size);
        j->in.path[i] = j->inputs[i];
        j->in.n = i + 1;
    }
    return 0;
}

/* An engine that takes URLs itself (the upstream relay) cannot read an
 * upload; the API refuses such a submit, so this meets only a task whose
 * model moved to such an engine after it was accepted. */
static int check_no_uploads(const struct wjob *j, struct errmsg *err)
{
    char upload_id[UUID_STR_LEN + 1];
    for (size_t i = 0; i < j->job.n_media; i++) {
        const char *url = j->job.media[i].url;
        bool oss = task_oss_key(url) != NULL;
        if (oss || task_upload_id(url, upload_id))
            return errmsg_set(
                err, ERR_INVALID_PARAMETER,
                "media[%zu]: %s is served by engine %s (%s), which passes "
                "URLs on and cannot read a %s upload",
                i, j->job.model, route_engine_name(j->re),
                route_engine_backend(j->re),
                oss ? TASK_OSS_SCHEME : TASK_UPLOAD_SCHEME);
    }
    return 0;
}

/* --------------------------------------------------------------- life */

struct wjob *job_new(struct worker_pool *pool, struct task *t,
                     const char *owner, uint64_t seq)
{
    struct wjob *j = xcalloc(1, sizeof(*j));
    j->pool = pool;
    j->t = *t;
    *t = (struct task){ 0 };
    snprintf(j->owner, sizeof(j->owner), "%s", owner);
    j->seq = seq;
    atomic_init(&j->stop, atomic_load(&pool->stop));
    atomic_init(&j->timed_out, false);
    atomic_init(&j->progress, 0);
    j->deadline_mono = INT64_MAX;
    j->claimed_mono = clock_mono_ms();
    j->route = route_find(pool->d.routes, j->t.model);
    if (j->route) {
        j->re = j->route->engine;
        j->engine = route_engine_get(j->re);
        j->async = engine_async(j->engine);
        route_engine_take(j->re);
    }
    j->job_ok = task_job_from_json(j->t.spec, &j->job) == 0;
    blob_name(j->t.task_id, j->t.attempt, j->name);
    j->tmp = blob_tmp_path(pool->d.blob, j->name);
    j->ctl = (struct job_ctl){ .task_id = j->t.task_id,
                               .stop = &j->stop,
                               .progress = note_progress,
                               .ref = j->t.ref,
                               .claimed_mono = j->claimed_mono,
                               .save_ref = note_ref,
                               .done = on_done,
                               .arg = j };
    pthread_mutex_lock(&pool->lock);
    j->next = pool->jobs;
    if (pool->jobs)
        pool->jobs->prev = j;
    pool->jobs = j;
    pool->n_jobs++;
    pthread_mutex_unlock(&pool->lock);
    return j;
}

void job_abandon(struct wjob *j)
{
    give_back(j);
    job_end(j);
}

bool job_needs_thread(const struct wjob *j)
{
    /* A job that cannot even begin fails on a render thread too: its
     * store write is not the dispatcher's to wait for. */
    return !j->route || !j->job_ok || !j->async ||
           (engine_local_media(j->engine) && j->job.n_media > 0);
}

/* The spec, the route, the deadline's start: false when the task failed
 * already (and has ended). */
static bool job_begin(struct wjob *j)
{
    struct worker_pool *pool = j->pool;
    if (!j->route) {
        char msg[LIMIT_ERRMSG];
        snprintf(msg, sizeof(msg),
                 "worker %s has no engine for model %s (every node needs "
                 "the same model routes)",
                 pool->owner, j->t.model);
        finish_failed(j, ERR_INTERNAL, msg);
        job_end(j);
        return false;
    }
    if (!j->job_ok) {
        finish_failed(j, ERR_INTERNAL, "the stored job could not be read");
        job_end(j);
        return false;
    }
    /* The deadline starts with the engine's work (not with the claim). */
    pthread_mutex_lock(&pool->lock);
    j->deadline_mono =
        clock_mono_ms() + route_deadline_ms(pool->d.routes, j->route);
    pthread_mutex_unlock(&pool->lock);
    log_info("task started",
             "task_id=%s model=%s attempt=%d engine=%s backend=%s resume=%s",
             j->t.task_id, j->t.model, j->t.attempt, route_engine_name(j->re),
             engine_name(j->engine), j->t.ref ? j->t.ref : "-");
    return true;
}

/* Hand the job to its engine: run it here, or start it. */
static void job_engine(struct wjob *j)
{
    struct errmsg e = { 0 };
    bool local = engine_local_media(j->engine);
    int rc = 0;
    if (j->async) {
        rc = engine_start(j->engine, &j->job, local ? &j->in : NULL, j->tmp,
                          &j->ctl, &e);
        if (rc < 0) /* not taken: no done follows */
            job_complete(j, rc, &j->res, &e);
        return;
    }
    int64_t t0 = clock_mono_ms();
    rc = engine_run(j->engine, &j->job, local ? &j->in : NULL, j->tmp, &j->ctl,
                    &j->res, &e);
    metrics_render(engine_name(j->engine), clock_mono_ms() - t0);
    job_complete(j, rc, &j->res, &e);
}

void job_work(struct wjob *j)
{
    struct errmsg e = { 0 };
    if (!job_begin(j))
        return;
    int rc = 0;
    if (j->job.n_media && !route_accepts_uploads(j->route))
        rc = check_no_uploads(j, &e);
    if (rc == 0 && j->job.n_media && engine_local_media(j->engine))
        rc = fetch_inputs(j, &e);
    if (rc < 0) {
        job_complete(j, rc, NULL, &e);
        return;
    }
    job_engine(j);
}

void job_start(struct wjob *j)
{
    struct errmsg e = { 0 };
    if (!job_begin(j))
        return;
    if (j->job.n_media && !route_accepts_uploads(j->route) &&
        check_no_uploads(j, &e) < 0) {
        job_complete(j, e.code, NULL, &e);
        return;
    }
    job_engine(j);
}
