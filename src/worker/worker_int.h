/*
 * worker internals shared by its files: the pool, and the job it makes of
 * each claimed task. worker.c claims (the dispatcher) and runs the render
 * threads; job.c takes a job from its claim to its end (inputs, the
 * engine, the result, the commit); park.c holds jobs whose outcome stands
 * only later (job_result.hold_until_mono) on a timer list; keeper.c renews
 * leases and keeps deadlines, progress, rescue and retention. Not for
 * other modules.
 */
#ifndef PADDOCK_WORKER_INT_H
#define PADDOCK_WORKER_INT_H

#include "worker.h"

#include <pthread.h>
#include <stdatomic.h>

#define OWNER_MAX 192

/* A claimed task, from its claim to its end. Owned by the pool: it sits
 * on pool->jobs from job_new to job_end; one thread at a time works on
 * it (the dispatcher, a render thread, or the engine until ctl.done). */
struct wjob {
    struct worker_pool *pool;
    struct wjob *prev, *next; /* pool->jobs (pool->lock) */
    struct wjob *qnext;       /* pool->queue (pool->lock) */
    struct task t;
    struct job job;
    bool job_ok; /* the stored spec read back */
    const struct route *route;
    struct route_engine *re; /* its engine instance (capacity taken) */
    struct engine *engine;
    bool async;
    /* The lease owner of this claim: "<process>/<n>", new for every claim,
     * so a row this process gave up on is not kept alive by renewals. */
    char owner[OWNER_MAX];
    uint64_t seq;          /* the claim's number (owner's last part) */
    atomic_bool stop;      /* the engine's stop flag */
    atomic_bool timed_out; /* set with stop when the deadline passed */
    atomic_int progress;   /* the engine's last report, 0..99 */
    int progress_saved;    /* what the task record shows (keeper only) */
    int64_t deadline_mono; /* INT64_MAX until the run starts (pool->lock) */
    int64_t claimed_mono;
    char name[BLOB_NAME_MAX]; /* the result's name */
    char *tmp;                /* the engine writes here */
    char *inputs[LIMIT_MEDIA_ITEMS];
    struct job_inputs in;
    struct job_ctl ctl;
    struct job_result res;
    /* Parked (park.c, pool->lock): the engine is done, its outcome (rc,
     * res, *held_err) stands at res.hold_until_mono. */
    bool parked;
    bool capacity_given; /* route_engine_give done at the park */
    int held_rc;
    struct errmsg *held_err;
};

struct worker_pool {
    struct worker_deps d;
    char owner[128];      /* "<host>/<pid>/<nonce>": this process */
    atomic_bool draining; /* no new claims */
    atomic_bool stop;     /* threads exit; set once by worker_stop */

    pthread_mutex_t lock;      /* guards everything below but threads */
    pthread_cond_t cond;       /* the dispatcher: work, room, stop */
    pthread_cond_t queue_cond; /* render threads: a job queued, stop */
    pthread_cond_t keeper_cond;
    pthread_cond_t idle_cond; /* a job ended (drain waits) */
    unsigned long wakeups;    /* submits (or store news) not yet claimed */
    uint64_t pokes;  /* changes of room (a job ended, a thread freed) */
    uint64_t claims; /* claim counter (owner names) */

    struct wjob *jobs; /* every live job */
    int n_jobs;
    struct wjob *queue, *queue_tail; /* jobs waiting for a render thread */
    int n_queued;
    int idle_threads; /* render threads waiting for a job */
    /* Parked jobs: a min-heap on res.hold_until_mono (park.c). */
    struct wjob **parked;
    size_t n_parked, cap_parked;
    pthread_cond_t park_cond; /* the parker: a park, a change, stop */

    pthread_t *threads; /* render threads */
    int n_threads;
    pthread_t dispatcher, keeper, watcher, parker;
    bool dispatcher_started, keeper_started, watcher_started, parker_started;

    /* conf models: the models this pool claims (n 0: any model). */
    struct store_models claim;
    const char **claim_names; /* borrowed from the route table */
    const char **room_names;  /* scratch of the dispatcher's filter */
};

/* job.c */
/* A job for a claimed task (taken over: *t is left empty), counted on
 * pool->jobs and on its engine's capacity. */
struct wjob *job_new(struct worker_pool *pool, struct task *t,
                     const char *owner, uint64_t seq);
/* On a render thread: the uploads rule, the inputs, then the engine (run
 * to the end, or started). */
void job_work(struct wjob *j);
/* From the dispatcher: start an asynchronous job that fetches nothing. */
void job_start(struct wjob *j);
/* At shutdown, a job claimed but never begun: given back, ended. */
void job_abandon(struct wjob *j);
/* Whether a job needs a render thread to begin (a synchronous engine, or
 * inputs to fetch first). */
bool job_needs_thread(const struct wjob *j);

/* What the engine said, as the task's outcome now (the file committed or
 * the failure recorded, or at shutdown the task given back); then the
 * job ends. */
void job_settle(struct wjob *j, int rc, const struct job_result *res,
                const struct errmsg *e);
/* Off the pool's books (its capacity, unless given at its park; the job
 * list) and freed. */
void job_end(struct wjob *j);

/* park.c */
/* Hold a job whose engine is done until res->hold_until_mono: the
 * outcome is kept, the engine's capacity given back, the deadline off; it
 * stays on pool->jobs (its lease is renewed). Any thread. */
void park_job(struct wjob *j, int rc, const struct job_result *res,
              const struct errmsg *e);
/* The progress of a parked job now: a straight line from its claim to
 * its time, 0..99. Called with pool->lock held. */
int park_progress(const struct wjob *j, int64_t now_mono);
/* The parker thread: settles parked jobs at their time; at drain, gives
 * every parked job back at once (one store write). */
void *park_main(void *arg);

/* keeper.c */
void *keeper_main(void *arg);

/* worker.c */
/* Wake the dispatcher (capacity or work changed). */
void worker_poke(struct worker_pool *pool);
/* Remove the result files of final tasks that are not their result: what
 * an attempt renamed into results/ before a crash kept it from committing,
 * when the rescue then fails the task at its last attempt (no attempt is
 * left to remove it). One store read per file in results/. */
void worker_sweep_ended(struct worker_pool *pool);

#endif
