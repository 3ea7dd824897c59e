/*
 * worker: the threads that turn PENDING tasks into results.
 *
 * One dispatcher claims tasks (a lease in the store), but only for models
 * whose engine has room in this process (route/'s capacity: render slots,
 * processes, in-flight upstream tasks; a synchronous engine also needs an
 * idle render thread), so no thread ever waits for a slot. A job for a
 * synchronous engine (sandbox, command) goes to a render thread, which
 * fetches its inputs through net/ when the engine wants local files (a
 * paddock-upload:// input is copied from blob/'s uploads), runs the engine
 * into a temporary file and commits; an asynchronous engine (the upstream
 * relay) takes the job and ends it later through its done callback,
 * holding no thread meanwhile. What an engine reports on the way,
 * progress and its own reference, goes to the task record. A result is made
 * durable and moved into place, then SUCCEEDED or FAILED is committed in
 * one conditional update that only succeeds while this process still holds
 * the lease. The keeper thread renews the leases of every job of this
 * process (each claim has its own lease owner, so a task given up on is
 * not kept alive), stops engines past their deadline (conf deadline /
 * model-deadline; the task fails InternalError.Timeout), rescues tasks
 * whose lease expired, whoever held them, and deletes finished tasks past
 * retention with their files, and uploads past retention. At start,
 * result files no task owns (a crash between file and commit) are
 * removed. At stop: no new claims, jobs that only wait go back at once,
 * renders get the grace, then everything left is stopped and given back
 * to PENDING.
 *
 * Threads: worker_notify may be called from any thread (the HTTP threads
 * call it after each submit); start and stop from the main thread only.
 */
#ifndef PADDOCK_WORKER_H
#define PADDOCK_WORKER_H

#include "../blob/blob.h"
#include "../conf/conf.h"
#include "../engine/engine.h"
#include "../net/net.h"
#include "../route/route.h"
#include "../store/store.h"

struct worker_deps {
    const struct conf *conf; /* workers, lease_ms, max_attempts */
    struct store *store;
    struct blob *blob;
    struct route_table *routes;    /* the engine of each model */
    const struct net_allow *allow; /* private ranges inputs may come from */
    /* Called once a task's end (SUCCEEDED or FAILED) is committed, with
     * its id, on the thread that committed it (a render thread, or an
     * asynchronous engine's); may be NULL. */
    void (*on_finish)(void *arg, const char *task_id);
    void *on_finish_arg;
};

struct worker_pool;

/* Start conf->workers render threads (0: rescue only) and the keeper. */
int worker_start(const struct worker_deps *deps, struct worker_pool **out,
                 struct errmsg *err);
/* A task was submitted: wake one idle render thread. `pool` is a
 * struct worker_pool * (the signature fits api_deps.on_submit). */
void worker_notify(void *pool);
/* Stop claiming; let running tasks finish for up to grace_ms; then stop
 * the engines still running and give their tasks back to PENDING; join
 * every thread. NULL is fine. */
void worker_stop(struct worker_pool *pool, int64_t grace_ms);
/* This process's lease owner name ("host/pid/nonce"). */
const char *worker_owner(const struct worker_pool *pool);

#endif
