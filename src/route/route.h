/*
 * route: which engine serves which model name.
 *
 * One table, built once from the configuration (docs/config.md, "Models
 * and engines"):
 *
 *   engine.NAME = SPEC              an engine instance (engine_new's spec)
 *   engine.NAME.concurrency = N     its runs at once in one process (0: no cap)
 *   engine.NAME.deadline = DURATION its runs' time limit (default: deadline)
 *   model.MODEL = NAME              the HappyHorse model MODEL runs on NAME
 *   alias.ALIAS = MODEL             a client may send ALIAS to mean MODEL
 *
 * The engine "default" is the `engine` option (sandbox unless set). With no
 * model.* line every model runs on "default"; with any, only the models
 * listed are served and the rest answer 404 ModelNotFound. Every node of a
 * deployment carries the same routes (a worker that meets a model it has
 * no route for fails the task with InternalError).
 *
 * Health: a background thread runs each engine's check (engine_check) every
 * few seconds; route_usable() answers from the last result, so a submit for
 * a model whose engine is down answers 503 ModelUnavailable at once. A node
 * with no render threads (conf workers 0) skips the checks about its own
 * host (engine_host_check: the command engine's program), which only the
 * render hosts can judge.
 *
 * Capacity: each engine instance takes route_engine_capacity() tasks at
 * once in this process (its backend's answer given engine.NAME.concurrency;
 * 0: no limit). The worker counts what it holds (route_engine_take when it
 * claims for the engine, _give when the task ends) and claims only for
 * engines with room (route_engine_room); nothing waits for a slot.
 *
 * Threads: after route_table_new, every function may be called from any
 * thread. Ownership: the table owns its engines; routes and engines handed
 * out are borrowed until route_table_free.
 */
#ifndef PADDOCK_ROUTE_H
#define PADDOCK_ROUTE_H

#include "../conf/conf.h"
#include "../engine/engine.h"
#include "../task/task.h"

#include <stdatomic.h>

#define ROUTE_NAME_MAX 64 /* an engine instance's name */
/* engine.NAME.KEY lines for one engine beyond concurrency and deadline. */
#define ROUTE_ENGINE_OPTS 16

struct route_engine;

/* One name a client may send. */
struct route {
    char name[LIMIT_MODEL_NAME + 1]; /* as the client sends it */
    struct task_model model;         /* the model it means (name, kind) */
    bool alias;                      /* name differs from model.name */
    struct route_engine *engine;
};

struct route_table;

/* Build the table from c->routes and c->engine, making every engine; 0 or
 * ERR_INVALID_PARAMETER with a message naming the line. The health thread
 * starts at once (its first round has run when this returns). */
int route_table_new(const struct conf *c, struct route_table **out,
                    struct errmsg *err);
/* Stops the health thread and frees the engines. NULL is fine. */
void route_table_free(struct route_table *t);

/* The route of a name a client sent (a model or an alias), or NULL. */
const struct route *route_find(const struct route_table *t, const char *name);
/* Every route, models first in table order, then aliases. */
const struct route *route_at(const struct route_table *t, size_t i);
size_t route_count(const struct route_table *t);
/* The names the table serves, for task_job_parse. */
const struct task_catalog *route_catalog(const struct route_table *t);

/* The engine instance's name ("default"), its backend ("sandbox",
 * "command", "upstream") and the engine itself. */
const char *route_engine_name(const struct route_engine *re);
const char *route_engine_backend(const struct route_engine *re);
struct engine *route_engine_get(const struct route_engine *re);
/* Concurrency cap (0: none). */
int route_engine_concurrency(const struct route_engine *re);
/* The time limit of a run of `model` on its engine: model-deadline, else
 * engine.NAME.deadline, else deadline. */
int64_t route_deadline_ms(const struct route_table *t, const struct route *r);

/* Whether a paddock-upload:// input (docs/extensions.md, "Uploads") can
 * reach the model's engine: true when the engine reads local files (the
 * worker copies the upload out for it), false when it passes URLs on. */
bool route_accepts_uploads(const struct route *r);
/* Whether the route's engine passed its last check: true, or false with
 * the reason in *err (ERR_MODEL_UNAVAILABLE). */
bool route_usable(const struct route *r, struct errmsg *err);
/* Run every engine's check now (the health thread does this on its own). */
void route_check_now(struct route_table *t);
/* For a node that renders, at start: 0 when every check about this host
 * (engine_host_check) passed, else ERR_INVALID_PARAMETER naming the engine
 * (a program missing on a render host is a configuration error). */
int route_check_host(struct route_table *t, struct errmsg *err);

/* The engine instances, in configuration order. */
size_t route_engine_count(const struct route_table *t);
struct route_engine *route_engine_at(struct route_table *t, size_t i);
/* Tasks it takes at once in this process now (engine_capacity; -1: no
 * limit, 0: none now). */
int route_engine_capacity(const struct route_engine *re);
/* Whether this process may take one more task for it now. */
bool route_engine_room(struct route_engine *re);
/* Count a task this process holds for it, and its end. */
void route_engine_take(struct route_engine *re);
void route_engine_give(struct route_engine *re);
/* Tasks this process holds for it now. */
int route_engine_running(struct route_engine *re);

#endif
