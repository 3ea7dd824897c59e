/*
 * worker: the threads that turn PENDING tasks into results.
 *
 * N render threads each loop: claim the oldest PENDING task (a lease in the
 * store), run the engine into a temporary file, make the file durable and
 * move it into place, then commit SUCCEEDED or FAILED in one conditional
 * update that only succeeds while this process still holds the lease.
 * One keeper thread renews this process's leases (every lease/3) and
 * rescues tasks whose lease expired, whoever held them.
 *
 * Threads: worker_notify may be called from any thread (the HTTP threads
 * call it after each submit); start and stop from the main thread only.
 */
#ifndef PADDOCK_WORKER_H
#define PADDOCK_WORKER_H

#include "../blob/blob.h"
#include "../conf/conf.h"
#include "../engine/engine.h"
#include "../store/store.h"

struct worker_deps {
    const struct conf *conf; /* workers, lease_ms, max_attempts */
    struct store *store;
    struct blob *blob;
    struct engine *engine;
};

struct worker_pool;

/* Start conf->workers render threads (0: rescue only) and the keeper. */
int worker_start(const struct worker_deps *deps, struct worker_pool **out,
                 struct errmsg *err);
/* A task was submitted: wake one idle render thread. `pool` is a
 * struct worker_pool * (the signature fits api_deps.on_submit). */
void worker_notify(void *pool);
/* Stop claiming, stop running engines, give their tasks back to PENDING,
 * join every thread. NULL is fine. */
void worker_stop(struct worker_pool *pool);
/* This process's lease owner name ("host/pid/nonce"). */
const char *worker_owner(const struct worker_pool *pool);

#endif
