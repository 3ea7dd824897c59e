/*
 * The worker pool: one dispatcher claims tasks, but only for engines with
 * room (their capacity; a synchronous one also needs an idle render
 * thread), and hands each job to a render thread or to its asynchronous
 * engine; render threads work through their queue; a watcher turns a
 * shared store's wake-ups into the dispatcher's; the keeper (keeper.c)
 * keeps the leases.
 */
#include "worker_int.h"

#include "../log/log.h"
#include "../metrics/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The dispatcher looks for work at least this often even without a
 * wake-up (tasks rescued from another process, or submitted by another
 * node whose store sends no news), and looks again at engines without
 * room (a resident engine's copy may have come up). */
#define IDLE_POLL_MS 1000
/* A result file younger than this is never swept as an orphan: its task's
 * commit may be under way in another process. */
#define ORPHAN_MIN_AGE_MS 60000
/* After the grace, how long stopped engines get to end their jobs (they
 * answer a stop within seconds) before shutdown gives up on them. */
#define STOP_WAIT_MS 30000

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

void worker_poke(struct worker_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    pool->pokes++;
    pthread_cond_signal(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
}

static bool quitting(struct worker_pool *pool)
{
    return atomic_load(&pool->stop) || atomic_load(&pool->draining);
}

/* Sleep until a submit, a change of room, stop, or `ms` pass. */
static void idle_wait(struct worker_pool *pool, int64_t ms)
{
    struct timespec ts = clock_mono_after(ms);
    pthread_mutex_lock(&pool->lock);
    uint64_t pokes = pool->pokes;
    while (pool->wakeups == 0 && pool->pokes == pokes && !quitting(pool)) {
        if (pthread_cond_timedwait(&pool->cond, &pool->lock, &ts) == ETIMEDOUT)
            break;
    }
    if (pool->wakeups)
        pool->wakeups--;
    pthread_mutex_unlock(&pool->lock);
}

/* ---------------------------------------------------------- dispatch */

/* Whether this pool claims `model` at all (conf models). */
static bool claims_model(const struct worker_pool *pool, const char *model)
{
    if (!pool->claim.n)
        return true;
    for (size_t i = 0; i < pool->claim.n; i++)
        if (strcmp(pool->claim.names[i], model) == 0)
            return true;
    return false;
}

/*
 * The models a claim may take now: those this pool claims whose engine has
 * room, a synchronous one only while a render thread is free for it.
 * 0: none (wait); 1: *filter set, or NULL when every model may come.
 */
static int room_filter(struct worker_pool *pool, struct store_models *filter,
                       const struct store_models **out)
{
    const struct route_table *rt = pool->d.routes;
    pthread_mutex_lock(&pool->lock);
    bool thread_free = pool->idle_threads > pool->n_queued;
    pthread_mutex_unlock(&pool->lock);
    size_t n = 0, all = 0;
    for (size_t i = 0; i < route_count(rt); i++) {
        const struct route *r = route_at(rt, i);
        if (r->alias || !claims_model(pool, r->model.name))
            continue;
        all++;
        struct engine *e = route_engine_get(r->engine);
        bool needs_thread = !engine_async(e) || engine_local_media(e);
        if ((needs_thread && !thread_free) || !route_engine_room(r->engine))
            continue;
        pool->room_names[n++] = r->model.name;
    }
    if (n == 0)
        return 0;
    filter->names = pool->room_names;
    filter->n = n;
    *out = n == all && !pool->claim.n ? NULL : filter;
    return 1;
}

static void enqueue(struct worker_pool *pool, struct wjob *j)
{
    pthread_mutex_lock(&pool->lock);
    j->qnext = NULL;
    if (pool->queue_tail)
        pool->queue_tail->qnext = j;
    else
        pool->queue = j;
    pool->queue_tail = j;
    pool->n_queued++;
    pthread_cond_signal(&pool->queue_cond);
    pthread_mutex_unlock(&pool->lock);
}

static void *dispatcher_main(void *arg)
{
    struct worker_pool *pool = arg;
    while (!quitting(pool)) {
        struct store_models filter;
        const struct store_models *want = NULL;
        if (!room_filter(pool, &filter, &want)) {
            idle_wait(pool, IDLE_POLL_MS);
            continue;
        }
        char owner[OWNER_MAX];
        pthread_mutex_lock(&pool->lock);
        uint64_t seq = ++pool->claims;
        pthread_mutex_unlock(&pool->lock);
        snprintf(owner, sizeof(owner), "%s/%llu", pool->owner,
                 (unsigned long long)seq);
        struct task t;
        int rc = store_claim(pool->d.store, owner, clock_now_ms(),
                             pool->d.conf->lease_ms, want, &t);
        if (rc < 0) {
            /* Nothing to claim (or the store failed: back off the same). */
            idle_wait(pool, IDLE_POLL_MS);
            continue;
        }
        metrics_add(METRIC_CLAIMS, 1);
        struct wjob *j = job_new(pool, &t, owner, seq);
        if (job_needs_thread(j))
            enqueue(pool, j);
        else
            job_start(j);
    }
    return NULL;
}

/* A store shared by many nodes announces work (postgres: LISTEN/NOTIFY);
 * this thread passes the news on to the dispatcher. */
static void *watcher_main(void *arg)
{
    struct worker_pool *pool = arg;
    uint64_t seen = 0;
    while (!atomic_load(&pool->stop)) {
        int rc = store_wait_work(pool->d.store, &seen, IDLE_POLL_MS);
        if (rc == ERR_UNSUPPORTED_OPERATION)
            break; /* one process: submits wake the pool themselves */
        if (rc == 1)
            worker_notify(pool);
    }
    return NULL;
}

static void *render_main(void *arg)
{
    struct worker_pool *pool = arg;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        pool->idle_threads++;
        pool->pokes++;
        pthread_cond_signal(&pool->cond); /* a thread is free */
        while (!pool->queue && !atomic_load(&pool->stop))
            pthread_cond_wait(&pool->queue_cond, &pool->lock);
        pool->idle_threads--;
        if (atomic_load(&pool->stop))
            break; /* what is still queued is given back by worker_stop */
        struct wjob *j = pool->queue;
        pool->queue = j->qnext;
        if (!pool->queue)
            pool->queue_tail = NULL;
        pool->n_queued--;
        pthread_mutex_unlock(&pool->lock);
        job_work(j);
        pthread_mutex_lock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

/* ------------------------------------------------------- start, stop */

/* The task a result file belongs to, by the name's task id (store_get's
 * code; *t to task_fini() whatever it is). */
static int file_task(struct worker_pool *pool, const char *name, struct task *t)
{
    char task_id[UUID_STR_LEN + 1];
    snprintf(task_id, sizeof(task_id), "%s", name);
    return store_get(pool->d.store, task_id, t);
}

static bool is_result(const struct task *t, const char *name)
{
    return t->result && strcmp(t->result, name) == 0;
}

/* Does a task own this result file? (the orphan sweep's question) */
static bool result_owned(void *arg, const char *name)
{
    struct task t;
    int rc = file_task(arg, name, &t);
    bool owned = rc != ERR_NOT_FOUND && (rc < 0 || is_result(&t, name));
    task_fini(&t);
    return owned; /* on a store error, keep: never delete on doubt */
}

/* Is this file still somebody's? A final task owns only its result; a
 * task still running may be between an attempt's rename and its commit.
 * A file without a task is the start's sweep's. */
static bool result_live(void *arg, const char *name)
{
    struct task t;
    int rc = file_task(arg, name, &t);
    bool live =
        rc < 0 || !task_status_terminal(t.status) || is_result(&t, name);
    task_fini(&t);
    return live;
}

void worker_sweep_ended(struct worker_pool *pool)
{
    int removed = 0;
    if (blob_sweep(pool->d.blob, 0, result_live, pool, &removed) == 0 &&
        removed)
        log_info("results of ended tasks removed", "count=%d", removed);
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

static void room_grew(void *arg)
{
    worker_poke(arg);
}

/* Be told (or stop being told) when an engine's room grows without a job
 * ending, so a resident copy's first job starts when it is ready. */
static void watch_room(struct worker_pool *pool, bool on)
{
    for (size_t i = 0; i < route_engine_count(pool->d.routes); i++)
        engine_watch_room(route_engine_get(route_engine_at(pool->d.routes, i)),
                          on ? room_grew : NULL, on ? pool : NULL);
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
    clock_cond_init(&pool->queue_cond);
    clock_cond_init(&pool->keeper_cond);
    clock_cond_init(&pool->idle_cond);
    clock_cond_init(&pool->park_cond);
    pool->room_names =
        xcalloc(route_count(deps->routes) + 1, sizeof(*pool->room_names));

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
    if (n > 0)
        watch_room(pool, true);
    pool->threads = xcalloc((size_t)(n ? n : 1), sizeof(pthread_t));
    for (int i = 0; i < n; i++) {
        if (pthread_create(&pool->threads[i], NULL, render_main, pool) != 0) {
            errmsg_set(err, ERR_INTERNAL, "cannot start worker thread %d", i);
            goto fail;
        }
        pool->n_threads++;
    }
    if (n > 0) { /* a rescue-only pool (--workers 0) claims nothing */
        if (pthread_create(&pool->dispatcher, NULL, dispatcher_main, pool) !=
            0) {
            errmsg_set(err, ERR_INTERNAL, "cannot start the dispatcher");
            goto fail;
        }
        pool->dispatcher_started = true;
        if (pthread_create(&pool->watcher, NULL, watcher_main, pool) != 0) {
            errmsg_set(err, ERR_INTERNAL, "cannot start the work watcher");
            goto fail;
        }
        pool->watcher_started = true;
    }
    if (pthread_create(&pool->parker, NULL, park_main, pool) != 0) {
        errmsg_set(err, ERR_INTERNAL, "cannot start the parker");
        goto fail;
    }
    pool->parker_started = true;
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

/* Wait until no job is left, or until `ms` passed: false then. */
static bool wait_jobs(struct worker_pool *pool, int64_t ms, const char *what)
{
    struct timespec ts = clock_mono_after(ms);
    bool done = true;
    pthread_mutex_lock(&pool->lock);
    while (pool->n_jobs > 0) {
        if (pthread_cond_timedwait(&pool->idle_cond, &pool->lock, &ts) ==
            ETIMEDOUT) {
            log_info(what, "running=%d", pool->n_jobs);
            done = false;
            break;
        }
    }
    pthread_mutex_unlock(&pool->lock);
    return done;
}

/* Set the stop flag of every job (waiting_only: of jobs that only wait,
 * for a provider say: waiting through the grace would only delay them). */
static void stop_jobs(struct worker_pool *pool, bool waiting_only)
{
    pthread_mutex_lock(&pool->lock);
    for (struct wjob *j = pool->jobs; j; j = j->next)
        if (!waiting_only || (j->engine && !engine_computes(j->engine)))
            atomic_store(&j->stop, true);
    pthread_mutex_unlock(&pool->lock);
}

void worker_stop(struct worker_pool *pool, int64_t grace_ms)
{
    if (!pool)
        return;
    /* No new claims; jobs that wait for a provider or a timer go back at
     * once (another node resumes them from their saved reference; parked
     * ones in one store write, their rerun renders again); renders get the
     * grace; the keeper goes on renewing their leases meanwhile. */
    pthread_mutex_lock(&pool->lock);
    atomic_store(&pool->draining, true);
    pthread_cond_broadcast(&pool->cond);
    pthread_cond_broadcast(&pool->park_cond);
    pthread_mutex_unlock(&pool->lock);
    if (pool->dispatcher_started)
        pthread_join(pool->dispatcher, NULL);
    stop_jobs(pool, true);
    if (grace_ms > 0)
        wait_jobs(pool, grace_ms, "grace period over");
    pthread_mutex_lock(&pool->lock);
    atomic_store(&pool->stop, true);
    pthread_cond_broadcast(&pool->queue_cond);
    pthread_mutex_unlock(&pool->lock);
    stop_jobs(pool, false);
    for (int i = 0; i < pool->n_threads; i++)
        pthread_join(pool->threads[i], NULL);
    /* Jobs claimed but never begun: back to PENDING. */
    pthread_mutex_lock(&pool->lock);
    struct wjob *q = pool->queue;
    pool->queue = pool->queue_tail = NULL;
    pool->n_queued = 0;
    pthread_mutex_unlock(&pool->lock);
    while (q) {
        struct wjob *next = q->qnext;
        job_abandon(q);
        q = next;
    }
    watch_room(pool, false);
    if (!wait_jobs(pool, STOP_WAIT_MS, "engines did not stop")) {
        /* An engine still holds a job and will call back into the pool:
         * freeing it would be a use after free. Their tasks' leases run
         * out and are rescued. */
        log_error("worker pool left running at exit", "jobs=%d", pool->n_jobs);
        return;
    }
    pthread_mutex_lock(&pool->lock);
    pthread_cond_broadcast(&pool->keeper_cond);
    pthread_cond_broadcast(&pool->park_cond);
    pthread_mutex_unlock(&pool->lock);
    if (pool->keeper_started)
        pthread_join(pool->keeper, NULL);
    if (pool->parker_started)
        pthread_join(pool->parker, NULL);
    if (pool->watcher_started)
        pthread_join(pool->watcher, NULL);
    pthread_cond_destroy(&pool->cond);
    pthread_cond_destroy(&pool->queue_cond);
    pthread_cond_destroy(&pool->keeper_cond);
    pthread_cond_destroy(&pool->idle_cond);
    pthread_cond_destroy(&pool->park_cond);
    pthread_mutex_destroy(&pool->lock);
    free(pool->parked);
    free(pool->threads);
    free(pool->claim_names);
    free(pool->room_names);
    free(pool);
}
