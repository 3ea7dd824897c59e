/*
 * api: the HappyHorse API on top of http/: the route table of both dialects
 * (DashScope: /api/v1/..., Bearer key, X-DashScope-Async; TTAPI: the same
 * under /happyhorse, TT-API-KEY) and their handlers: submit, query, cancel,
 * list, the models table and uploads (paddock's extensions,
 * docs/extensions.md), result files, health, readiness and metrics. One
 * log line and one metrics sample per request.
 *
 * Threads: api_handle runs on every HTTP thread at once; struct api is
 * read-only after api_new, and everything it points to is thread-safe.
 * Ownership: api borrows its dependencies; they outlive it.
 */
#ifndef PADDOCK_API_H
#define PADDOCK_API_H

#include "../auth/auth.h"
#include "../blob/blob.h"
#include "../conf/conf.h"
#include "../http/http.h"
#include "../route/route.h"
#include "../store/store.h"

struct api_deps {
    const struct conf *conf;
    struct store *store;
    struct auth *auth;
    struct blob *blob;
    const char *listen_base; /* "http://127.0.0.1:8080", the bound address */
    const struct route_table *routes; /* served model names and engines */
    /* Called after a task is committed, to wake an idle worker; may be
     * NULL (API-only node). */
    void (*on_submit)(void *arg);
    void *on_submit_arg;
};

struct api;

struct api *api_new(const struct api_deps *deps);
/* NULL is fine. */
void api_free(struct api *a);
/* The http_admit hook: route and authenticate before any body byte is
 * read; pass the struct api * as its argument. */
void api_admit(void *api, struct http_req *req, struct http_reply *rep);
/* The http_handler: pass the struct api * as its argument. */
void api_handle(void *api, struct http_req *req, struct http_reply *rep);
/* A task ended on this node (its finish committed): keep its answer for
 * the queries to come. Any thread; reads the store once (nothing when the
 * cache is off). */
void api_task_finished(struct api *a, const char *task_id);

#endif
