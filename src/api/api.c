/* Routes and handlers of both dialects of the HappyHorse API. */
#include "api.h"

#include "../limit/limit.h"
#include "../log/log.h"
#include "../metrics/metrics.h"
#include "../sign/sign.h"
#include "../task/task.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define TTAPI_PREFIX "/happyhorse"
#define JSON_TYPE    "application/json"

enum dialect {
    D_DASHSCOPE = 1, /* /api/v1/..., Authorization: Bearer */
    D_TTAPI = 2,     /* /happyhorse/api/v1/..., TT-API-KEY */
    D_PLAIN = 4,     /* files, health: no dialect */
};

/* Retry-After of a 429 for task quotas: tasks take seconds to finish. */
#define QUOTA_RETRY_S "5"
/* An Idempotency-Key is an opaque client string; this long at most. */
#define IDEM_KEY_MAX 255
/* The list answers at most 24 h of tasks at a time (API.md s.6). */
#define LIST_SPAN_MS (24 * 3600 * 1000LL)

struct api {
    struct api_deps d;
    struct limit_rate *rate;
};

/* One request on its way through a handler. */
struct call {
    struct api *api;
    struct http_req *req;
    struct http_reply *rep;
    enum dialect dialect;
    const char *arg; /* the '*' segment of the route */
    char key_id[TASK_KEY_ID_MAX + 1];
    int64_t t0_us; /* when api_handle began */
    bool deferred; /* the reply comes later (its completion logs it) */
};

typedef void (*endpoint_fn)(struct call *c);

struct endpoint {
    const char *name; /* the route label in /metrics and logs */
    const char *method;
    const char *pattern; /* '*' matches one non-empty segment */
    unsigned dialects;
    endpoint_fn fn;
};

static void h_submit(struct call *c);
static void h_query(struct call *c);
static void h_cancel(struct call *c);
static void h_list(struct call *c);
static void h_file(struct call *c);
static void h_health(struct call *c);
static void h_ready(struct call *c);
static void h_metrics(struct call *c);
static void h_models(struct call *c);
static void h_upload(struct call *c);

/* docs/openapi.json, embedded by the Makefile ($(O)/gen/openapi.c): the
 * document of every route here, served without a key. */
extern const unsigned char api_openapi_json[];
extern const size_t api_openapi_json_len;

static void h_openapi(struct call *c)
{
    struct buf b = BUF_INIT;
    buf_append(&b, api_openapi_json, api_openapi_json_len);
    http_reply_take_body(c->rep, 200, JSON_TYPE, &b);
}

#define SUBMIT_BASE "/api/v1/services/aigc/video-generation/"

/* The model field decides the task type, never the path (API.md s.1). */
static const struct endpoint endpoints[] = {
    { "submit", "POST", SUBMIT_BASE "video-synthesis", D_DASHSCOPE | D_TTAPI,
      h_submit },
    { "submit", "POST", SUBMIT_BASE "image-to-video", D_TTAPI, h_submit },
    { "submit", "POST", SUBMIT_BASE "reference-to-video", D_TTAPI, h_submit },
    { "submit", "POST", SUBMIT_BASE "video-edit", D_TTAPI, h_submit },
    { "query", "GET", "/api/v1/tasks/*", D_DASHSCOPE | D_TTAPI, h_query },
    { "cancel", "POST", "/api/v1/tasks/*/cancel", D_DASHSCOPE | D_TTAPI,
      h_cancel },
    { "list", "GET", "/api/v1/tasks", D_DASHSCOPE | D_TTAPI, h_list },
    { "models", "GET", "/api/v1/models", D_DASHSCOPE | D_TTAPI, h_models },
    { "upload", "POST", "/api/v1/uploads", D_DASHSCOPE | D_TTAPI, h_upload },
    { "file", "GET", "/files/*", D_PLAIN, h_file },
    { "file", "HEAD", "/files/*", D_PLAIN, h_file },
    { "healthz", "GET", "/healthz", D_PLAIN, h_health },
    { "readyz", "GET", "/readyz", D_PLAIN, h_ready },
    { "metrics", "GET", "/metrics", D_PLAIN, h_metrics },
    { "openapi", "GET", "/openapi.json", D_DASHSCOPE | D_TTAPI, h_openapi },
};

/* ------------------------------------------------------------ replies */

static void reply_json(struct call *c, int status, struct buf *body)
{
    http_reply_take_body(c->rep, status, JSON_TYPE, body);
}

static void reply_error(struct call *c, int err, const char *message)
{
    struct buf b = BUF_INIT;
    if (err == ERR_NO_API_KEY || err == ERR_INVALID_API_KEY) {
        if (c->dialect == D_TTAPI) { /* TTAPI's own 401 shape */
            buf_puts(&b, "{\"status\":\"FAILED\",\"message\":\"Wrong "
                         "TT-API-KEY or email is not activated.\","
                         "\"data\":null}");
            reply_json(c, 401, &b);
            return;
        }
        message = NULL; /* exactly the documented sentences */
    }
    task_json_error(&b, http_req_id(c->req), err_code(err),
                    message ? message : err_message(err));
    reply_json(c, err_status(err), &b);
}

static void reply_errmsg(struct call *c, const struct errmsg *e)
{
    reply_error(c, e->code, errmsg_text(e));
}

/* A 429 tells the client when to come back. */
static void reply_throttled(struct call *c, int err, const char *retry_s,
                            const char *message)
{
    http_reply_header(c->rep, "Retry-After", retry_s);
    reply_error(c, err, message);
}

/* -------------------------------------------------------------- auth */

/* The key from "Authorization: Bearer <key>" or "TT-API-KEY: <key>"; both
 * dialects accept both, only the shape of a 401 differs. */
static const char *presented_key(const struct http_req *req)
{
    const char *h = http_req_header(req, "Authorization");
    if (h) {
        while (*h == ' ')
            h++;
        if (strncasecmp(h, "Bearer ", 7) == 0) {
            h += 7;
            while (*h == ' ')
                h++;
            return h;
        }
    }
    h = http_req_header(req, "TT-API-KEY");
    return h;
}

/* The caller's key, then its request rate: false when answered. */
static bool authenticate(struct call *c)
{
    int retry_s = 0;
    int err = auth_check(c->api->d.auth, presented_key(c->req), c->key_id);
    if (err < 0) {
        reply_error(c, err, NULL);
        return false;
    }
    err = limit_rate_take(c->api->rate, c->key_id, clock_mono_ms(), &retry_s);
    if (err < 0) {
        char retry[16], msg[128];
        snprintf(retry, sizeof(retry), "%d", retry_s);
        snprintf(msg, sizeof(msg),
                 "this key sent more than %d requests per second; retry "
                 "after %d s",
                 c->api->d.conf->rate_limit, retry_s);
        reply_throttled(c, err, retry, msg);
        return false;
    }
    return true;
}

/* The base of absolute URLs: the configured public URL, else the Host the
 * client used (so links work through port mappings), else the listener. */
static void url_base(struct call *c, struct buf *out)
{
    const struct api_deps *d = &c->api->d;
    if (d->conf->public_url) {
        buf_puts(out, d->conf->public_url);
        return;
    }
    const char *host = http_req_header(c->req, "Host");
    bool ok = host && host[0] && strlen(host) <= 255;
    for (const char *p = host; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
             (*p >= '0' && *p <= '9') || strchr(".-:[]", *p);
    if (ok)
        buf_printf(out, "http://%s", host);
    else
        buf_puts(out, d->listen_base);
}

/* ------------------------------------------------------------ submit */

/* A submit waiting for its commit; the reply is written when it lands. */
struct pending_submit {
    struct call call; /* req and rep stay valid: the request is in flight */
    struct http_defer *defer;
    struct job job;
    struct task task; /* prompt borrowed from job */
    struct store_submit sub;
    char *idem_key;
};

static void log_request(struct call *c, const char *route)
{
    int64_t us = clock_mono_us() - c->t0_us;
    metrics_http(route, c->rep->status, us);
    /* The path only: a query string may hold a link's signature. */
    log_info("request",
             "method=%s path=\"%.200s\" route=%s status=%d us=%lld "
             "request_id=%s key_id=%s",
             http_req_method(c->req), http_req_path(c->req),
             route ? route : "none", c->rep->status, (long long)us,
             http_req_id(c->req), c->key_id[0] ? c->key_id : "-");
}

/* The answer to a submit once the store has decided. */
static void submit_reply(struct call *c, const struct task *t, int err,
                         const char *replay)
{
    struct api *a = c->api;
    const struct conf *conf = a->d.conf;
    struct buf b = BUF_INIT;
    char msg[200];

    switch (err) {
    case 0:
        metrics_add(METRIC_SUBMITS, 1);
        log_info("task submitted",
                 "task_id=%s model=%s key_id=%s request_id=%s", t->task_id,
                 t->model, t->key_id, http_req_id(c->req));
        if (a->d.on_submit)
            a->d.on_submit(a->d.on_submit_arg);
        task_json_submitted(&b, http_req_id(c->req), t->task_id, TASK_PENDING);
        reply_json(c, 200, &b);
        break;
    case 1: { /* the same request again: the first answer again */
        struct task first = { 0 };
        enum task_status st = TASK_PENDING;
        if (store_get(a->d.store, replay, &first) == 0)
            st = first.status;
        task_fini(&first);
        log_info("idempotent replay", "task_id=%s key_id=%s request_id=%s",
                 replay, t->key_id, http_req_id(c->req));
        http_reply_header(c->rep, "Idempotent-Replayed", "true");
        task_json_submitted(&b, http_req_id(c->req), replay, st);
        reply_json(c, 200, &b);
        break;
    }
    case ERR_ALLOCATION_QUOTA:
        snprintf(msg, sizeof(msg),
                 "this key has %d unfinished tasks, the most it may have; "
                 "submit again when one has finished",
                 conf->max_active);
        reply_throttled(c, err, QUOTA_RETRY_S, msg);
        break;
    case ERR_THROTTLING:
        snprintf(msg, sizeof(msg),
                 "the queue holds %d pending tasks, its limit; retry later",
                 conf->max_queue);
        reply_throttled(c, err, QUOTA_RETRY_S, msg);
        break;
    case ERR_IDEMPOTENCY_CONFLICT:
        snprintf(msg, sizeof(msg),
                 "Idempotency-Key was first used for task %s with a "
                 "different body; use a new key for a new request",
                 replay);
        reply_error(c, err, msg);
        break;
    default:
        /* Not committed, so nothing was promised: the client may retry. */
        reply_error(c, err,
                    "the task could not be stored; it was not accepted, "
                    "retry the request");
    }
    buf_fini(&b);
}

static void pending_free(struct pending_submit *p)
{
    p->task.prompt = NULL; /* borrowed from job */
    task_fini(&p->task);
    task_job_fini(&p->job);
    free(p->idem_key);
    free(p);
}

/* store_submit_done: on the store's commit thread. */
static void submit_committed(void *arg, int err, const char *replay)
{
    struct pending_submit *p = arg;
    struct http_defer *defer = p->defer;
    submit_reply(&p->call, &p->task, err, replay);
    log_request(&p->call, "submit");
    pending_free(p);
    http_resume(defer); /* last: the request may be gone after it */
}

/*
 * The paddock-upload:// URLs of a parsed job (the upload extension,
 * docs/extensions.md): each must name an unexpired upload of this key,
 * within the size cap of its media type, for an engine that reads local
 * files. false with the reason, naming the field, in *e.
 */
static bool uploads_usable(struct call *c, const struct route *route,
                           const struct job *job, struct errmsg *e)
{
    const struct api_deps *d = &c->api->d;
    int64_t now = clock_now_ms();
    char id[UUID_STR_LEN + 1], kept[24];

    for (size_t i = 0; i < job->n_media; i++) {
        const struct job_media *m = &job->media[i];
        int64_t size = 0, mtime = 0;
        if (!task_upload_id(m->url, id))
            continue;
        if (!route_accepts_uploads(route)) {
            errmsg_set(e, ERR_INVALID_PARAMETER,
                       "%s: %s is served by engine %s (%s), which passes "
                       "URLs on and cannot read an upload; send an http(s) "
                       "URL",
                       m->field, job->model, route_engine_name(route->engine),
                       route_engine_backend(route->engine));
            return false;
        }
        if (blob_upload_stat(d->blob, c->key_id, id, &size, &mtime) < 0 ||
            mtime + d->conf->retention_ms <= now) {
            clock_format_duration(d->conf->retention_ms, kept);
            errmsg_set(e, ERR_INVALID_PARAMETER,
                       "%s: no upload %s for this API key (uploads expire %s "
                       "after they are sent)",
                       m->field, id, kept);
            return false;
        }
        bool video = m->type == JOB_MEDIA_VIDEO;
        int64_t cap = video ? LIMIT_VIDEO_BYTES : LIMIT_IMAGE_BYTES;
        if (size > cap) {
            errmsg_set(e, ERR_INVALID_PARAMETER,
                       "%s: upload %s is %lld bytes; %s input may be at "
                       "most %lld MB",
                       m->field, id, (long long)size,
                       video ? "a video" : "an image", (long long)(cap >> 20));
            return false;
        }
    }
    return true;
}

static void h_submit(struct call *c)
{
    struct api *a = c->api;
    struct errmsg e = { 0 };
    struct pending_submit *p = NULL;

    if (!authenticate(c))
        return;
    if (c->dialect == D_DASHSCOPE) {
        const char *async = http_req_header(c->req, "X-DashScope-Async");
        if (!async || strcasecmp(async, "enable") != 0) {
            reply_error(c, ERR_SYNC_NOT_SUPPORTED, NULL);
            return;
        }
    }
    const char *idem = http_req_header(c->req, "Idempotency-Key");
    if (idem && (!idem[0] || strlen(idem) > IDEM_KEY_MAX ||
                 !utf8_valid(idem, strlen(idem)))) {
        reply_error(c, ERR_INVALID_PARAMETER,
                    "header Idempotency-Key must be 1 to 255 bytes of UTF-8");
        return;
    }

    uint32_t r = 0;
    if (id_random(&r, sizeof(r)) < 0) {
        reply_error(c, ERR_INTERNAL, "no randomness for the seed");
        return;
    }
    size_t len;
    const char *body = http_req_body(c->req, &len);
    p = xcalloc(1, sizeof(*p));
    const struct route_table *routes = a->d.routes;
    const struct route *route = NULL; /* the parse took only routed names */
    if (task_job_parse(body, len, (int64_t)(r & 0x7fffffff),
                       route_catalog(routes), &p->job, &e) < 0 ||
        !route_usable(route = route_find(routes, p->job.model), &e) ||
        !uploads_usable(c, route, &p->job, &e)) {
        reply_errmsg(c, &e);
        pending_free(p);
        return;
    }

    struct task *t = &p->task;
    id_uuid7(t->task_id);
    snprintf(t->key_id, sizeof(t->key_id), "%s", c->key_id);
    snprintf(t->model, sizeof(t->model), "%s", p->job.model);
    t->status = TASK_PENDING;
    t->spec = task_job_to_json(&p->job);
    t->prompt = p->job.prompt;
    t->submit_ms = clock_now_ms();
    t->expire_ms = t->submit_ms + a->d.conf->retention_ms;
    p->sub = (struct store_submit){
        .task = t,
        .max_active = a->d.conf->max_active,
        .max_queue = a->d.conf->max_queue,
    };
    if (idem) {
        p->idem_key = xstrdup(idem);
        p->sub.idem_key = p->idem_key;
        sign_sha256(body, len, NULL, 0, p->sub.body_hash);
    }
    /* The HTTP thread does not wait for the disk: the reply is written
     * when the group commit that holds this task lands. */
    p->call = *c;
    p->call.arg = ""; /* the route segment lives on the caller's stack */
    p->defer = http_reply_defer(c->rep);
    c->deferred = true;
    if (store_submit_async(a->d.store, &p->sub, submit_committed, p) < 0)
        submit_committed(p, ERR_STORE, "");
}

/* ------------------------------------------------------------ upload */

/*
 * POST /api/v1/uploads (the upload extension, docs/extensions.md): the
 * body's bytes, whatever they are (the worker and the engine judge the
 * content, never a name or a Content-Type), kept for this key until the
 * retention passes; a submit names them as paddock-upload://<upload_id>.
 * The file is written and fsync'd on this HTTP thread, as a body is
 * already held in memory: the body limit bounds both.
 */
static void h_upload(struct call *c)
{
    struct api *a = c->api;
    const struct conf *conf = a->d.conf;
    char id[UUID_STR_LEN + 1], kept[24], when[24], retry[24], msg[300];
    int count = 0;
    int64_t bytes = 0, oldest = 0, mtime = 0;
    struct buf b = BUF_INIT;
    size_t len;

    if (!authenticate(c))
        return;
    const char *body = http_req_body(c->req, &len);
    if (len == 0) {
        reply_error(c, ERR_INVALID_PARAMETER,
                    "the request body is empty; send the file's bytes as "
                    "the body");
        return;
    }
    if ((int64_t)len > LIMIT_VIDEO_BYTES) {
        snprintf(msg, sizeof(msg),
                 "an upload may be at most %lld MB, the largest input (a "
                 "video)",
                 (long long)(LIMIT_VIDEO_BYTES >> 20));
        reply_error(c, ERR_TOO_LARGE, msg);
        return;
    }
    int64_t now = clock_now_ms();
    if (blob_upload_usage(a->d.blob, c->key_id, now - conf->retention_ms,
                          &count, &bytes, &oldest) < 0) {
        reply_error(c, ERR_IO, "the upload could not be stored; retry");
        return;
    }
    /* Two uploads at once may both pass: the caps are a bound on disk
     * use, not an exact count. */
    if (count >= LIMIT_UPLOADS_PER_KEY ||
        bytes + (int64_t)len > LIMIT_UPLOAD_BYTES_PER_KEY) {
        int64_t wait_s = (oldest + conf->retention_ms - now + 999) / 1000;
        snprintf(retry, sizeof(retry), "%lld",
                 (long long)(wait_s > 0 ? wait_s : 1));
        clock_format_duration(conf->retention_ms, kept);
        snprintf(msg, sizeof(msg),
                 "this key holds %d uploads of %lld bytes in all; a key may "
                 "hold %d uploads and %lld MB at once (uploads are deleted "
                 "%s after they are sent)",
                 count, (long long)bytes, LIMIT_UPLOADS_PER_KEY,
                 (long long)(LIMIT_UPLOAD_BYTES_PER_KEY >> 20), kept);
        reply_throttled(c, ERR_ALLOCATION_QUOTA, retry, msg);
        return;
    }
    id_uuid4(id);
    if (blob_upload_put(a->d.blob, c->key_id, id, body, len, &mtime) < 0) {
        reply_error(c, ERR_IO, "the upload could not be stored; retry");
        return;
    }
    log_info("upload stored", "upload_id=%s key_id=%s bytes=%zu request_id=%s",
             id, c->key_id, len, http_req_id(c->req));
    clock_format(mtime + conf->retention_ms, conf->utc_offset_min, when);
    buf_puts(&b, "{\"request_id\":");
    buf_json_str(&b, http_req_id(c->req));
    buf_printf(&b,
               ",\"output\":{\"upload_id\":\"%s\",\"url\":\"" TASK_UPLOAD_SCHEME
               "%s\",\"size\":%zu,\"expires_time\":\"%s\"}}",
               id, id, len, when);
    reply_json(c, 200, &b);
}

/* ------------------------------------------------------------- query */

static void h_query(struct call *c)
{
    struct api *a = c->api;
    struct task t = { 0 };
    struct buf b = BUF_INIT, url = BUF_INIT;
    const struct task *found = NULL;

    if (!authenticate(c))
        return;
    /* Not a uuid: certainly not ours, no store read needed. */
    if (strlen(c->arg) == UUID_STR_LEN && id_is_uuid(c->arg)) {
        int err = store_get(a->d.store, c->arg, &t);
        if (err < 0 && err != ERR_NOT_FOUND) {
            reply_error(c, err, "the task store is unavailable; retry");
            goto out;
        }
        /* Another key's task and an expired one look like no task. */
        if (err == 0 && strcmp(t.key_id, c->key_id) == 0 &&
            !task_expired(&t, clock_now_ms()))
            found = &t;
    }
    struct task_view view = { .utc_offset_min = a->d.conf->utc_offset_min };
    if (found && found->status == TASK_SUCCEEDED && found->result) {
        struct buf base = BUF_INIT;
        url_base(c, &base);
        blob_url(a->d.blob, &url, base.data, found->result, found->expire_ms);
        buf_fini(&base);
        view.video_url = url.data;
    }
    task_json_query(&b, http_req_id(c->req), c->arg, found, &view);
    reply_json(c, 200, &b);
out:
    task_fini(&t);
    buf_fini(&b);
    buf_fini(&url);
}

/* ------------------------------------------------------------ cancel */

static void h_cancel(struct call *c)
{
    struct api *a = c->api;
    struct buf b = BUF_INIT;
    enum task_status st = TASK_UNKNOWN;
    char msg[200];

    if (!authenticate(c))
        return;
    int err = ERR_NOT_FOUND;
    if (strlen(c->arg) == UUID_STR_LEN && id_is_uuid(c->arg))
        err = store_cancel(a->d.store, c->arg, c->key_id, clock_now_ms(), &st);
    switch (err) {
    case 0:
        log_info("task canceled", "task_id=%s key_id=%s request_id=%s", c->arg,
                 c->key_id, http_req_id(c->req));
        buf_puts(&b, "{\"request_id\":");
        buf_json_str(&b, http_req_id(c->req));
        buf_putc(&b, '}');
        reply_json(c, 200, &b);
        break;
    case ERR_NOT_FOUND: /* absent, expired and another key's alike */
        snprintf(msg, sizeof(msg), "no task %.40s for this API key", c->arg);
        reply_error(c, err, msg);
        break;
    case ERR_UNSUPPORTED_OPERATION:
        snprintf(msg, sizeof(msg),
                 "task %s is %s; only a PENDING task can be canceled", c->arg,
                 task_status_name(st));
        reply_error(c, err, msg);
        break;
    default:
        reply_error(c, err, "the task store is unavailable; retry");
    }
    buf_fini(&b);
}

/* -------------------------------------------------------------- list */

/* An integer query parameter in [min, max], or `dflt` when absent. */
static bool query_int(struct call *c, const char *name, int64_t min,
                      int64_t max, int64_t dflt, int64_t *out)
{
    const char *v = http_req_query(c->req, name);
    *out = dflt;
    if (!v)
        return true;
    if (parse_i64(v, min, max, out) == 0)
        return true;
    char msg[160];
    snprintf(msg, sizeof(msg), "%s must be an integer from %lld to %lld", name,
             (long long)min, (long long)max);
    reply_error(c, ERR_INVALID_PARAMETER, msg);
    return false;
}

static bool query_time(struct call *c, const char *name, int64_t *out_ms,
                       bool *given)
{
    const char *v = http_req_query(c->req, name);
    *given = v != NULL;
    if (!v ||
        clock_parse_compact(v, c->api->d.conf->utc_offset_min, out_ms) == 0)
        return true;
    char msg[160];
    snprintf(msg, sizeof(msg),
             "%s must be a time YYYYMMDDhhmmss (UTC%+d:%02d), like "
             "20260428120000",
             name, c->api->d.conf->utc_offset_min / 60,
             abs(c->api->d.conf->utc_offset_min) % 60);
    reply_error(c, ERR_INVALID_PARAMETER, msg);
    return false;
}

static void h_list(struct call *c)
{
    struct api *a = c->api;
    struct store_filter f = { .key_id = c->key_id, .status = -1 };
    int64_t page_no, page_size, from_ms = 0, to_ms = 0, total = 0;
    bool has_from, has_to;
    struct task *tasks = NULL;
    size_t n = 0;
    struct buf b = BUF_INIT;

    if (!authenticate(c))
        return;
    if (!query_int(c, "page_no", 1, 1000000, 1, &page_no) ||
        !query_int(c, "page_size", 1, 100, 10, &page_size) ||
        !query_time(c, "start_time", &from_ms, &has_from) ||
        !query_time(c, "end_time", &to_ms, &has_to))
        return;
    f.now_ms = clock_now_ms();
    if (!has_to)
        to_ms = has_from ? from_ms + LIST_SPAN_MS : f.now_ms;
    if (!has_from)
        from_ms = to_ms - LIST_SPAN_MS;
    if (to_ms < from_ms || to_ms - from_ms > LIST_SPAN_MS) {
        reply_error(c, ERR_INVALID_PARAMETER,
                    "start_time must not be after end_time, and they may "
                    "span at most 24 hours");
        return;
    }
    f.from_ms = from_ms;
    f.to_ms = to_ms + 1000; /* end_time names a whole second */
    const char *status = http_req_query(c->req, "status");
    if (status) {
        enum task_status st;
        if (task_status_parse(status, &st) < 0 || st == TASK_UNKNOWN) {
            reply_error(c, ERR_INVALID_PARAMETER,
                        "status must be one of PENDING, RUNNING, SUCCEEDED, "
                        "FAILED, CANCELED");
            return;
        }
        f.status = (int)st;
    }
    const char *model = http_req_query(c->req, "model_name");
    if (model) {
        if (!model[0] || strlen(model) > LIMIT_MODEL_NAME) {
            reply_error(c, ERR_INVALID_PARAMETER,
                        "model_name must be 1 to 64 characters");
            return;
        }
        f.model = model;
    }
    f.limit = page_size;
    f.offset = (page_no - 1) * page_size;
    int err = store_list(a->d.store, &f, &tasks, &n, &total);
    if (err < 0) {
        reply_error(c, err, "the task store is unavailable; retry");
        return;
    }
    task_json_list(&b, http_req_id(c->req), tasks, n, total, page_no,
                   page_size);
    reply_json(c, 200, &b);
    for (size_t i = 0; i < n; i++)
        task_fini(&tasks[i]);
    free(tasks);
}

/* ------------------------------------------------------------- files */

/*
 * A single "bytes=" range against a file of `size` bytes: 1 with
 * [*from, *to] set, 0 to send the whole file (no Range, several ranges or
 * one we do not understand, which RFC 9110 lets us ignore), -1 when it
 * cannot be satisfied (416).
 */
static int parse_range(const char *h, uint64_t size, uint64_t *from,
                       uint64_t *to)
{
    if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return 0;
    const char *p = h + 6, *dash = strchr(p, '-');
    if (!dash)
        return 0;
    char a[24] = "", b[24] = "";
    size_t na = (size_t)(dash - p), nb = strlen(dash + 1);
    if (na >= sizeof(a) || nb >= sizeof(b))
        return 0;
    memcpy(a, p, na);
    memcpy(b, dash + 1, nb);
    int64_t x, y;
    if (na == 0) { /* suffix: the last y bytes */
        if (parse_i64(b, 0, INT64_MAX, &y) < 0)
            return 0;
        if (y == 0 || size == 0)
            return -1;
        *from = (uint64_t)y >= size ? 0 : size - (uint64_t)y;
        *to = size - 1;
        return 1;
    }
    if (parse_i64(a, 0, INT64_MAX, &x) < 0)
        return 0;
    if (nb == 0) {
        y = INT64_MAX;
    } else if (parse_i64(b, 0, INT64_MAX, &y) < 0 || y < x) {
        return 0;
    }
    if ((uint64_t)x >= size)
        return -1;
    *from = (uint64_t)x;
    *to = (uint64_t)y >= size ? size - 1 : (uint64_t)y;
    return 1;
}

static void h_file(struct call *c)
{
    struct api *a = c->api;
    const char *name = c->arg;
    int err = blob_verify(a->d.blob, name, http_req_query(c->req, "expires"),
                          http_req_query(c->req, "signature"), clock_now_ms());
    if (err < 0) {
        reply_error(c, err, NULL);
        return;
    }
    int fd;
    uint64_t size, from = 0, to = 0;
    if (blob_open_file(a->d.blob, name, &fd, &size) < 0) {
        reply_error(c, ERR_NOT_FOUND, "the video is no longer stored");
        return;
    }
    struct http_reply *rep = c->rep;
    int r = parse_range(http_req_header(c->req, "Range"), size, &from, &to);
    char range[96];
    if (r < 0) {
        close(fd);
        snprintf(range, sizeof(range), "bytes */%llu",
                 (unsigned long long)size);
        http_reply_header(rep, "Content-Range", range);
        reply_error(c, ERR_RANGE, "the range is outside the file");
        return;
    }
    rep->status = r ? 206 : 200;
    rep->content_type = "video/mp4";
    rep->fd = fd;
    rep->offset = r ? from : 0;
    rep->length = r ? to - from + 1 : size;
    if (r) {
        snprintf(range, sizeof(range), "bytes %llu-%llu/%llu",
                 (unsigned long long)from, (unsigned long long)to,
                 (unsigned long long)size);
        http_reply_header(rep, "Content-Range", range);
    }
    http_reply_header(rep, "Accept-Ranges", "bytes");
    /* A result never changes under its name. */
    http_reply_header(rep, "Cache-Control", "private, max-age=86400");
    char etag[BLOB_NAME_MAX + 2];
    snprintf(etag, sizeof(etag), "\"%.*s\"", (int)(strlen(name) - 4), name);
    http_reply_header(rep, "ETag", etag);
}

/* ------------------------------------------------------------ health */

static void h_health(struct call *c)
{
    struct buf b = BUF_INIT;
    buf_puts(&b, "{\"status\":\"ok\"}");
    reply_json(c, 200, &b);
}

/* Ready to serve: the store answers and an engine is configured. */
static void h_ready(struct call *c)
{
    struct task t;
    struct buf b = BUF_INIT;
    const char *why = NULL;
    int err =
        store_get(c->api->d.store, "00000000-0000-0000-0000-000000000000", &t);
    task_fini(&t);
    if (err < 0 && err != ERR_NOT_FOUND)
        why = "the task store does not answer";
    else if (route_count(c->api->d.routes) == 0)
        why = "no model is configured";
    buf_puts(&b, why ? "{\"status\":\"unready\",\"reason\":"
                     : "{\"status\":\"ready\"");
    if (why)
        buf_json_str(&b, why);
    buf_putc(&b, '}');
    reply_json(c, why ? 503 : 200, &b);
}

/* GET /api/v1/models (extension): every name a client may send, what it
 * means, which engine serves it, whether that engine is up, and what the
 * model accepts. */
static void h_models(struct call *c)
{
    if (!authenticate(c))
        return;
    const struct route_table *routes = c->api->d.routes;
    struct buf b = BUF_INIT;
    buf_puts(&b, "{\"request_id\":");
    buf_json_str(&b, http_req_id(c->req));
    buf_puts(&b, ",\"models\":[");
    for (size_t i = 0; i < route_count(routes); i++) {
        const struct route *r = route_at(routes, i);
        struct errmsg why = { 0 };
        bool up = route_usable(r, &why);
        buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
        buf_json_str(&b, r->name);
        buf_puts(&b, ",\"model\":");
        buf_json_str(&b, r->model.name);
        buf_puts(&b, ",\"task\":");
        buf_json_str(&b, task_kind_name(r->model.kind));
        buf_puts(&b, ",\"engine\":");
        buf_json_str(&b, route_engine_name(r->engine));
        buf_puts(&b, ",\"backend\":");
        buf_json_str(&b, route_engine_backend(r->engine));
        buf_puts(&b, up ? ",\"available\":true" : ",\"available\":false");
        if (!up) {
            buf_puts(&b, ",\"message\":");
            buf_json_str(&b, errmsg_text(&why));
        }
        task_json_rules(&b, r->model.kind);
        buf_putc(&b, '}');
    }
    buf_puts(&b, "]}");
    reply_json(c, 200, &b);
}

static void h_metrics(struct call *c)
{
    struct buf b = BUF_INIT;
    struct store_stats st;
    metrics_write(&b);
    if (store_stats(c->api->d.store, &st) == 0) {
        metrics_gauge_header(&b, "paddock_tasks",
                             "Tasks in the store by state (all nodes).");
        for (int i = 0; i < TASK_UNKNOWN; i++)
            metrics_gauge(&b, "paddock_tasks", "state",
                          task_status_name((enum task_status)i),
                          (double)st.by_status[i]);
        metrics_gauge_header(&b, "paddock_queue_depth",
                             "PENDING tasks per model (all nodes).");
        for (size_t i = 0; i < st.n_queue; i++)
            metrics_gauge(&b, "paddock_queue_depth", "model", st.queue[i].model,
                          (double)st.queue[i].pending);
    }
    http_reply_take_body(c->rep, 200, "text/plain; version=0.0.4", &b);
}

/* ----------------------------------------------------------- routing */

/* Does `path` match `pattern`? Sets *arg to the '*' segment. */
static bool match(const char *pattern, const char *path, size_t n,
                  const char **arg, char *argbuf, size_t argsize)
{
    const char *star = strchr(pattern, '*');
    if (!star)
        return strlen(pattern) == n && memcmp(pattern, path, n) == 0;
    size_t pre = (size_t)(star - pattern);
    const char *post = star + 1;
    size_t npost = strlen(post);
    if (n < pre + 1 + npost || memcmp(pattern, path, pre) != 0 ||
        memcmp(path + n - npost, post, npost) != 0)
        return false;
    size_t seg = n - pre - npost;
    if (memchr(path + pre, '/', seg) || seg >= argsize)
        return false;
    memcpy(argbuf, path + pre, seg);
    argbuf[seg] = '\0';
    *arg = argbuf;
    return true;
}

/* Route the request and run its handler; returns the route's name, or
 * NULL when none matched. */
static const char *dispatch(struct call *cl)
{
    struct call c = *cl;
    struct http_req *req = c.req;
    const char *path = http_req_path(req);
    const char *method = http_req_method(req);
    char argbuf[256];

    c.dialect = D_DASHSCOPE;
    if (strncmp(path, TTAPI_PREFIX "/", sizeof(TTAPI_PREFIX)) == 0) {
        c.dialect = D_TTAPI;
        path += sizeof(TTAPI_PREFIX) - 1;
    }
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') /* "/tasks/{id}/" is "/tasks/{id}" */
        n--;

    if (http_req_stopping(req)) {
        /* A node going away: a client (or a load balancer) retries on
         * another node or after the restart. */
        http_reply_header(c.rep, "Connection", "close");
        reply_throttled(&c, ERR_SHUTTING_DOWN, "1",
                        "this server is shutting down; retry in a moment "
                        "(or on another node)");
        return NULL;
    }
    if (http_req_too_large(req)) {
        char msg[128];
        snprintf(msg, sizeof(msg),
                 "request body is larger than the limit of %lld bytes",
                 (long long)c.api->d.conf->body_limit);
        reply_error(&c, ERR_TOO_LARGE, msg);
        return NULL;
    }

    bool path_known = false;
    for (size_t i = 0; i < ARRAY_LEN(endpoints); i++) {
        const struct endpoint *r = &endpoints[i];
        unsigned want = r->dialects & D_PLAIN ? D_PLAIN : (unsigned)c.dialect;
        if (r->dialects & D_PLAIN && c.dialect == D_TTAPI)
            continue;
        if (!(r->dialects & want) ||
            !match(r->pattern, path, n, &c.arg, argbuf, sizeof(argbuf)))
            continue;
        path_known = true;
        if (strcmp(r->method, method) != 0)
            continue;
        if (r->dialects & D_PLAIN)
            c.dialect = D_PLAIN;
        r->fn(&c);
        memcpy(cl->key_id, c.key_id, sizeof(c.key_id));
        cl->deferred = c.deferred;
        return r->name;
    }
    char msg[160];
    snprintf(msg, sizeof(msg), "%s %.100s is not a route of this server",
             method, http_req_path(req));
    reply_error(&c, path_known ? ERR_METHOD_NOT_ALLOWED : ERR_NOT_FOUND, msg);
    return NULL;
}

void api_handle(void *arg, struct http_req *req, struct http_reply *rep)
{
    struct call c = { .api = arg, .req = req, .rep = rep, .arg = "" };
    c.t0_us = clock_mono_us();
    const char *route = dispatch(&c);
    if (!c.deferred) /* else the completion logs it */
        log_request(&c, route);
}

struct api *api_new(const struct api_deps *deps)
{
    struct api *a = xcalloc(1, sizeof(*a));
    a->d = *deps;
    a->rate = limit_rate_new(deps->conf->rate_limit, deps->conf->rate_burst);
    return a;
}

void api_free(struct api *a)
{
    if (!a)
        return;
    limit_rate_free(a->rate);
    free(a);
}
