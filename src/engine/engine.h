/*
 * engine: what turns a job into an MP4 file.
 *
 * An engine is a const ops table behind the engine_* wrappers (callers never
 * touch ops directly). Backends: "sandbox" (built in, deterministic, renders
 * real H.264 MP4s through media/), "command" (an operator's program per
 * task, contract in docs/engines.md), "upstream" (a relay to a DashScope- or
 * TTAPI-dialect service, engine/upstream.c).
 *
 * Capacity (docs/architecture.md, "Engines own their capacity"): each
 * instance says how many tasks it takes at once in one process
 * (engine_capacity: render slots, processes, in-flight upstream tasks);
 * the worker claims a task only for an engine with room. A synchronous
 * backend (ops.run) works on one of the worker's render threads for the
 * whole job; an asynchronous one (ops.start) takes the job, returns at
 * once and ends it later through ctl->done, holding no thread of the
 * worker while it waits (for a provider, a resident process, a timer).
 *
 * Threads: one engine instance is shared by all worker threads; run() and
 * start() must be reentrant (keep per-job state in per-job allocations).
 * Ownership: the engine writes the output file at `out_path` and nothing
 * else; the caller (worker/) makes it durable and moves it into place, and
 * removes it when run() fails.
 */
#ifndef PADDOCK_ENGINE_H
#define PADDOCK_ENGINE_H

#include "../core/core.h"
#include "../task/task.h"

#include <stdatomic.h>

struct job_result;

/* How the caller steers a running job. `ctl` itself may be NULL (run to
 * the end, report nothing, keep no reference); so may each member. */
struct job_ctl {
    const char *task_id; /* for logs and upstream idempotency keys */
    /* Set by cancel, deadline or shutdown; engines poll it at least once
     * per rendered frame (or poll interval) and return ERR_STOPPED soon
     * after it is set. */
    const atomic_bool *stop;
    /* Reports progress 0..100. Called from the run() thread. */
    void (*progress)(void *arg, int percent);
    /*
     * The engine's own durable reference for this task (an upstream task
     * id), saved by an earlier attempt of the same task, or NULL. An engine
     * that finds one resumes that work instead of starting it again.
     */
    const char *ref;
    /* When this attempt was claimed (clock_mono_ms): a hold of the result
     * (job_result.hold_until_mono) counts from here. */
    int64_t claimed_mono;
    /*
     * Store `ref` (at most TASK_REF_MAX bytes) with the task; returns only
     * once it is durable. 0; ERR_CONFLICT when this worker lost the task
     * (the engine must give up: return ERR_STOPPED); ERR_STORE.
     */
    int (*save_ref)(void *arg, const char *ref);
    /*
     * The end of a job engine_start began: called exactly once, from any
     * thread, with what run() would have returned (rc, *res, *err). After
     * it the engine keeps nothing of the job: the caller may free job,
     * inputs, out_path and ctl at once. Unused by run().
     */
    void (*done)(void *arg, int rc, const struct job_result *res,
                 const struct errmsg *err);
    void *arg; /* first argument of progress, save_ref and done */
};

/*
 * Local copies of job->media: path[i] is the fetched file of media[i]
 * (images and videos alike, data: URLs decoded). The worker fetches them
 * through net/ before run() when the backend's ops set `local_media`;
 * otherwise run() gets NULL and reads job->media[i].url itself.
 */
struct job_inputs {
    const char *path[LIMIT_MEDIA_ITEMS];
    size_t n;
};

/* What a run reports. */
struct job_result {
    struct task_usage usage; /* success: billed seconds, SR, ratio (s.5) */
    /* Failure: a code to record exactly as it is (an upstream service's
     * own, docs/api.md s.7.3), with the message in *err; "": err_code(rc). */
    char code[TASK_CODE_MAX];
    /* Failure: not the task's fault but the engine's process dying under
     * it; the worker tries the task again within the attempt limit. */
    bool retry;
    /*
     * The outcome (success or failure alike) stands only from this time
     * on (clock_mono_ms); 0: at once. The worker keeps the job parked
     * until then, holding no thread and none of the engine's capacity,
     * renewing its lease and raising its progress linearly from the claim
     * (ctl->claimed_mono) to this time; a shutdown gives it back. The
     * sandbox's run=DURATION uses it.
     */
    int64_t hold_until_mono;
};

struct engine;

struct engine_ops {
    const char *name;
    /* true: the caller fetches job->media into local files first, and
     * engine_run checks them (docs/api.md s.3.6) before run(). */
    bool local_media;
    /*
     * Render `job` into a new MP4 file at `out_path`. Returns 0 and fills
     * *res, or a negative ERR_ code with a message in *err; task failure
     * codes (docs/api.md s.7.3): ERR_ALGO, ERR_TIMEOUT, ERR_STOPPED (stop
     * flag), ERR_INPUT_DOWNLOAD_FAILED, ERR_INVALID_URL,
     * ERR_UNSUPPORTED_FILE_FORMAT, ERR_INVALID_PARAMETER.
     */
    int (*run)(struct engine *e, const struct job *job,
               const struct job_inputs *in, const char *out_path,
               const struct job_ctl *ctl, struct job_result *res,
               struct errmsg *err);
    /*
     * Instead of run, for a backend that waits rather than computes: take
     * the job and return at once. 0: the job is the engine's until it
     * calls ctl->done (exactly once; it may do so before start returns);
     * < 0 with *err: not taken (done is never called). The stop flag ends
     * the job as for run: done(ERR_STOPPED) soon after it is set.
     */
    int (*start)(struct engine *e, const struct job *job,
                 const struct job_inputs *in, const char *out_path,
                 const struct job_ctl *ctl, struct errmsg *err);
    /* An asynchronous backend whose jobs compute (a resident program)
     * rather than only wait (a relay): at shutdown they get the grace, as
     * renders do, instead of going back at once. */
    bool computes;
    /*
     * Optional. Tasks the instance takes at once in this process now,
     * given engine.NAME.concurrency (`configured`, 0 when not set); -1
     * is no limit but the worker's render threads, 0 none now. NULL:
     * `configured`, or no limit when it is 0. May change over time (a
     * resident engine counts its ready copies).
     */
    int (*capacity)(struct engine *e, int configured);
    /*
     * Optional. The engine.NAME.* lines beside the spec, once, before any
     * job: the concurrency (0: not set) and the options route/ does not
     * know itself (opts[i] is "key=value"); 0, or ERR_INVALID_PARAMETER
     * naming the option. NULL: any such option is refused.
     */
    int (*configure)(struct engine *e, int concurrency, const char *const *opts,
                     size_t n, struct errmsg *err);
    /*
     * Optional (NULL: always able). Whether the engine can take work now,
     * e.g. its upstream answers and accepts the key: 0, or
     * ERR_MODEL_UNAVAILABLE with the reason in *err. May block for a few
     * seconds; called from a background thread, never from a request.
     * `stop` (may be NULL): once set, give up at once (shutdown).
     */
    int (*check)(struct engine *e, const atomic_bool *stop, struct errmsg *err);
    /* true: check() looks at this host (a program on its disk), so a node
     * that renders nothing (an API node) does not run it. */
    bool host_check;
    /*
     * Optional (NULL: the engine takes no scenario). The sandbox scenario
     * of the engine's own options (docs/extensions.md, "Scenarios"), which
     * a submit's sources then override; a model whose engine has none
     * refuses a scenario. Constant after the engine is made.
     */
    const struct task_scenario *(*scenario)(const struct engine *e);
    void (*free)(struct engine *e);
};

/* Embedded first in every backend's own struct (container_of); set up by
 * engine_init. */
struct engine {
    const struct engine_ops *ops;
    pthread_mutex_t room_lock; /* guards room_fn and room_arg */
    void (*room_fn)(void *arg);
    void *room_arg;
};

/* For backends: set up the embedded struct engine. */
void engine_init(struct engine *e, const struct engine_ops *ops);
/* For backends: room grew by something other than a job's end (a resident
 * copy became ready); tells the watcher, if any. Never call it holding a
 * lock the watcher's fn might take. */
void engine_room_grew(struct engine *e);

/* Registry: make the engine `spec` names: "sandbox [DIRECTIVE...]" (a
 * scenario, blank- or comma-separated), "command:PROGRAM
 * [ARG...]" (an absolute path, words split on blanks, no shell), or
 * "upstream:DIALECT BASE_URL [OPTION=VALUE...]" (docs/engines.md); 0 or
 * ERR_INVALID_PARAMETER with a message naming the known engines. */
int engine_new(const char *spec, struct engine **out, struct errmsg *err);
/* The backend's name ("sandbox"). */
const char *engine_name(const struct engine *e);
/* Whether the caller must fetch job->media first (engine_ops.local_media). */
bool engine_local_media(const struct engine *e);
/* Run a job (see engine_ops.run). For a backend with local_media, every
 * fetched input is first measured and held to the limits of docs/api.md
 * s.3.6 (task_media_check); one that fails ends the run before the
 * backend starts, with its code (ERR_INVALID_PARAMETER,
 * ERR_UNSUPPORTED_FILE_FORMAT, ...) and "media[i]" in the message. */
int engine_run(struct engine *e, const struct job *job,
               const struct job_inputs *in, const char *out_path,
               const struct job_ctl *ctl, struct job_result *res,
               struct errmsg *err);
/* engine_ops.configure; without it, an option is an error naming it. */
int engine_configure(struct engine *e, int concurrency, const char *const *opts,
                     size_t n, struct errmsg *err);
/* Whether its asynchronous jobs compute (engine_ops.computes). */
bool engine_computes(const struct engine *e);
/* Whether the backend is asynchronous (engine_ops.start). */
bool engine_async(const struct engine *e);
/* Tasks it takes at once now (engine_ops.capacity); -1: no limit. */
int engine_capacity(struct engine *e, int configured);
/* Start a job on an asynchronous backend (see engine_ops.start), after
 * the same input checks as engine_run (on the caller's thread): 0 when
 * the engine took it (ctl->done follows), or the failure (no done). */
int engine_start(struct engine *e, const struct job *job,
                 const struct job_inputs *in, const char *out_path,
                 const struct job_ctl *ctl, struct errmsg *err);
/* The engine's own scenario (engine_ops.scenario), or NULL when it takes
 * none. */
const struct task_scenario *engine_scenario(const struct engine *e);
/* Whether its check is about this host (engine_ops.host_check). */
bool engine_host_check(const struct engine *e);
/* The engine's check (engine_ops.check); 0 when it has none. */
int engine_check(struct engine *e, const atomic_bool *stop, struct errmsg *err);
/* NULL is fine. */
void engine_free(struct engine *e);
/* Have fn(arg) called whenever the engine's room may have grown without a
 * job ending (the worker's dispatcher then looks again at once instead of
 * at its next tick). One watcher per engine; fn NULL removes it, and once
 * that returns fn is not running and will not run again. */
void engine_watch_room(struct engine *e, void (*fn)(void *arg), void *arg);

/* Backends (only the registry in engine.c calls these). */
int engine_sandbox_new(const char *args, struct engine **out,
                       struct errmsg *err);
/* The sandbox's render itself (sandbox.c), for steer.c: run() as the ops
 * table says, a pure function of the job and its inputs. */
int engine_sandbox_render(const struct job *job, const struct job_inputs *in,
                          const char *out_path, const struct job_ctl *ctl,
                          struct job_result *res, struct errmsg *err);
int engine_command_new(const char *cmdline, struct engine **out,
                       struct errmsg *err);
int engine_upstream_new(const char *args, struct engine **out,
                        struct errmsg *err);
int engine_resident_new(const char *cmdline, struct engine **out,
                        struct errmsg *err);

#endif
