/*
 * api internals shared by its files: the request on its way through a
 * handler, the reply helpers, and the handlers the route table names.
 * api.c routes, authenticates and answers; tasks.c has the task routes
 * (submit, query, cancel, list); extras.c the rest (uploads, files,
 * health, models, metrics, OpenAPI); oss.c the OSS-style uploads of
 * DashScope SDKs; scenario.c the sandbox scenarios of submits and
 * queries; console.c the web console's files and the two routes its pages
 * read (a task's input, the engines). Not for other modules.
 */
#ifndef PADDOCK_API_INT_H
#define PADDOCK_API_INT_H

#include "api.h"

#include "../limit/limit.h"
#include "../task/task.h"

#define TTAPI_PREFIX "/happyhorse"
#define JSON_TYPE    "application/json"

enum dialect {
    D_DASHSCOPE = 1, /* /api/v1/..., Authorization: Bearer */
    D_TTAPI = 2,     /* /happyhorse/api/v1/..., TT-API-KEY */
    D_PLAIN = 4,     /* files, health: no dialect */
};

/* Retry-After of a 429 for task quotas: tasks take seconds to finish. */
#define QUOTA_RETRY_S "5"

/*
 * The answer cache (cache.c): the query answers of terminal tasks, which
 * never change, in a bounded LRU (--query-cache bytes in all, the cache's
 * own tables included). An answer is kept as the reply's bytes with two
 * holes filled per request: the request_id (UUID_STR_LEN bytes at
 * API_CACHE_ID_AT, overwritten) and, for a SUCCEEDED task's video_url
 * without --public-url, the base (the request's Host), inserted at
 * base_at. So one entry serves every request for the task, whatever its
 * Host or dialect.
 * Threads: any thread; the entries are in shards, each under its own
 * mutex, held for a probe and a copy. Expired entries are dropped as they
 * are met (a lookup, a shard's sweep at most once a second, the stats).
 */
#define API_CACHE_ID_AT   15 /* strlen("{\"request_id\":\"") */
#define API_CACHE_NO_BASE ((size_t)-1)

struct api_cache;

struct api_cache_answer {
    const char *task_id;
    const char *key_id; /* the task's key: only it is answered */
    int64_t expire_ms;  /* the task's retention end */
    const char *body;   /* the answer, borrowed */
    size_t len;
    size_t base_at; /* where the URL base goes, or API_CACHE_NO_BASE */
};

enum api_cache_result {
    API_CACHE_MISS, /* not kept: read the store */
    API_CACHE_HIT,  /* *out holds the answer */
    API_CACHE_GONE, /* another key's task, or expired: answer UNKNOWN */
};

struct api_cache_stats {
    size_t max_bytes, bytes, entries;
    uint64_t hits, misses;
};

/* A cache of at most max_bytes; NULL (no cache) when max_bytes <= 0. */
struct api_cache *api_cache_new(int64_t max_bytes);
/* NULL is fine. */
void api_cache_free(struct api_cache *c);
/* Keep a copy of an answer (its request id at API_CACHE_ID_AT; any base
 * hole after it). Nothing happens for NULL c, an expired answer or one
 * too large for the bound; a task already kept keeps its entry. */
void api_cache_put(struct api_cache *c, const struct api_cache_answer *a,
                   int64_t now_ms);
/* The answer for key_id's task_id, with request_id (UUID_STR_LEN bytes)
 * and base (needs no JSON escaping) filled in, appended to out on a hit. */
enum api_cache_result api_cache_get(struct api_cache *c, const char *task_id,
                                    const char *key_id, int64_t now_ms,
                                    const char *request_id, const char *base,
                                    struct buf *out);
/* Counts and the bytes held (expired entries dropped first); zeros for
 * NULL. */
void api_cache_stats(struct api_cache *c, int64_t now_ms,
                     struct api_cache_stats *out);

/*
 * The status stream's hub (events.c, docs/extensions.md, "Status
 * stream"): the streams open, by task, written by one thread of its own.
 * NULL (no streams offered) with --stream-max 0. It watches the store
 * (store_watch) from api_events_new to api_events_free, which ends the
 * streams still held (after http_stop).
 */
struct api_events;
struct api_events *api_events_new(struct api *a);
void api_events_free(struct api_events *h);
/* store_watch's function: task_id changed; arg is the hub. */
void api_task_changed(void *arg, const char *task_id);

struct api {
    struct api_deps d;
    struct limit_rate *rate;
    struct api_cache *cache;   /* NULL: --query-cache 0 */
    struct api_events *events; /* NULL: --stream-max 0 */
};

/* One request on its way through a handler. */
struct call {
    struct api *api;
    struct http_req *req;
    struct http_reply *rep;
    enum dialect dialect;
    const char *arg; /* the '*' segment of the route */
    char key_id[TASK_KEY_ID_MAX + 1];
    int64_t t0_us; /* when admit began */
    bool deferred; /* the reply comes later (its completion logs it) */
};

/* What admit learned, kept with the request for the handler
 * (http_req_user). */
struct admitted {
    const struct endpoint *ep; /* NULL: admit answered, or never ran */
    enum dialect dialect;
    int64_t t0_us;
    char key_id[TASK_KEY_ID_MAX + 1];
    struct blob_upload *upload; /* an upload's file being written */
    char upload_id[UUID_STR_LEN + 1];
    struct oss_post *oss; /* an OSS-style form being read (oss.c) */
};

/* Replies (api.c). */
void api_reply_json(struct call *c, int status, struct buf *body);
/* The error table's status and code; `message` NULL: its default. */
void api_reply_error(struct call *c, int err, const char *message);
void api_reply_errmsg(struct call *c, const struct errmsg *e);
/* A 429 or 503 that tells the client when to come back. */
void api_reply_throttled(struct call *c, int err, const char *retry_s,
                         const char *message);
/* The base of absolute URLs: the public URL, else "http://" and the
 * request's Host when it is a plain host[:port], else the bound address;
 * out (API_URL_BASE_MAX bytes) holds it when it is the Host's. Only
 * letters, digits and ".-:[]/" after the scheme: nothing JSON escapes,
 * unless the public URL has it. */
#define API_HOST_MAX     255
#define API_URL_BASE_MAX (sizeof("http://") + API_HOST_MAX)
const char *api_url_base(struct call *c, char out[API_URL_BASE_MAX]);
/* The request's log line and metrics sample. */
void api_log_request(struct call *c, const char *route);

/* The web console's files (console.c; docs/extensions.md, "The web
 * console"): web/console/ embedded by the Makefile ($(O)/gen/
 * console_assets.c), each with the ETag of its bytes. */
struct console_asset {
    const char *name; /* the file name under web/console/ */
    const char *etag; /* unquoted */
    const unsigned char *data;
    size_t len;
};
extern const struct console_asset api_console_assets[];
extern const size_t api_console_assets_n;

/* Handlers (tasks.c, extras.c, console.c). */
void api_submit(struct call *c);
void api_query(struct call *c);
void api_cancel(struct call *c);
void api_events(struct call *c);
/* The query answer of the caller's task t, its URL base (the request's,
 * or "" with --public-url) filled in, appended to out (tasks.c). */
void api_task_answer(struct api *a, const char *request_id,
                     const struct task *t, const char *base, struct buf *out);
void api_list(struct call *c);
void api_upload(struct call *c);
void api_file(struct call *c);
void api_health(struct call *c);
void api_ready(struct call *c);
void api_models(struct call *c);
void api_metrics(struct call *c);
void api_openapi(struct call *c);
void api_console(struct call *c);
void api_engines(struct call *c);
void api_task_input(struct call *c);
/* Webhooks (webhooks.c, docs/extensions.md): create, list, delete, an
 * endpoint's deliveries, a delivery's retry (arg "HOOK_ID/DELIVERY_ID"). */
void api_webhook_create(struct call *c);
void api_webhook_list(struct call *c);
void api_webhook_delete(struct call *c);
void api_webhook_deliveries(struct call *c);
void api_webhook_retry(struct call *c);
/* A query parameter YYYYMMDDhhmmss in the configured time zone: false
 * when answered (400 naming it); *given whether it was sent (tasks.c). */
bool api_query_time(struct call *c, const char *name, int64_t *out_ms,
                    bool *given);
/* Usage and keys (usage.c, keys.c; docs/extensions.md, "Usage"). */
void api_usage(struct call *c);
void api_keys_create(struct call *c);
void api_keys_list(struct call *c);
void api_keys_patch(struct call *c);
void api_keys_delete(struct call *c);
/* The caller's key is an admin's: false when answered 403 AccessDenied. */
bool api_admin_only(struct call *c, const char *what);
/* Micro-units as a decimal string with six decimals ("0.140000"). */
void api_put_amount(struct buf *b, int64_t micro);
/* Hundredths of a second as a JSON number ("5", "12.35"). */
void api_put_seconds(struct buf *b, int64_t cs);

/* Before the body of an upload: false when answered (extras.c). */
bool api_upload_admit(struct call *c, struct admitted *ad);
/*
 * The caps a key's uploads must stay within, counting `incoming` more
 * bytes: 0, or ERR_ALLOCATION_QUOTA with the message and the seconds until
 * the oldest one expires (*retry_s), or ERR_IO. Two uploads at once may
 * both pass: the caps bound disk use, they are not an exact count.
 */
int api_upload_quota(struct api *a, const char *key_id, int64_t incoming,
                     int64_t *retry_s, struct errmsg *e);
/* Answer api_upload_quota's refusal (a 429 with Retry-After). */
void api_reply_quota(struct call *c, const struct errmsg *e, int64_t retry_s);

/* Local files from DashScope SDKs (oss.c, docs/extensions.md): the
 * upload policy, the OSS-style form (before its body, then after), and
 * the oss:// URLs of a parsed job: false with the reason in *e. */
void api_oss_policy(struct call *c);
bool api_oss_admit(struct call *c, struct admitted *ad);
void api_oss_upload(struct call *c);
bool api_oss_usable(struct call *c, const struct route *route,
                    const struct job *job, struct errmsg *e);

/* Sandbox scenarios (scenario.c, docs/extensions.md, "Scenarios"). */
/* The submit's scenario: its sources over the engine's options, resolved
 * into job->scenario, the prompt's token cut out of job->prompt (*orig:
 * the prompt as sent, the caller's to free, when it had one). 0; < 0 with
 * the reason in *e (400 naming the source); or 1 when the scenario's
 * submit= directive has answered the request (no task). */
int api_scenario_submit(struct call *c, const struct route *route,
                        struct job *job, char **orig, struct errmsg *e);
/* A found task's plan into *plan; true when its query-errors answered
 * this query (500). */
bool api_scenario_query(struct call *c, const struct task *t,
                        struct job_scenario *plan);
/* The signed video_url of a SUCCEEDED task, as its plan's link= says. */
void api_scenario_video_url(struct call *c, const struct task *t,
                            const struct job_scenario *plan, struct buf *url);
/* Whether t's plan changes its query answers (query-errors=, link=): such
 * an answer is made per query, never kept in the answer cache. */
bool api_scenario_shapes_answer(const struct task *t);

#endif
