/*
 * worker: the threads that turn PENDING tasks into results.
 *
 * N render threads each loop: claim the oldest PENDING task (a lease in the
 * store), find its model's engine (route/) and wait for one of that
 * engine's run slots, fetch its input media through net/ when the engine
 * wants local files (a paddock-upload:// input is copied from blob/'s
 * uploads instead), run the engine into a temporary file (what it reports
 * on the way, progress and its own reference, goes to the task record), make
 * the file durable and move it into place, then commit SUCCEEDED or FAILED in
 * one conditional update that only succeeds while this process still holds the
 * lease. One keeper thread renews the leases of the tasks its render threads
 * are running (every lease/3; each claim has its own lease owner, so a task a
 * thread gave up on is not kept alive), stops
 * engines past their deadline (conf deadline / model-deadline; the task
 * fails InternalError.Timeout), rescues tasks whose lease expired, whoever
 * held them, and deletes finished tasks past retention with their files,
 * and uploads past retention.
 * At start, result files no task owns (a crash between file and commit)
 * are removed.
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
    /* Called on the render thread once a task's end (SUCCEEDED or FAILED)
     * is committed, with its id; may be NULL. */
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
