/*
 * The route table of both dialects, authentication before the body, and
 * the replies every handler writes through.
 */
#include "api_int.h"

#include "../log/log.h"
#include "../metrics/metrics.h"
#include "../sign/sign.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef void (*endpoint_fn)(struct call *c);

/* Who may call an endpoint; checked before any body byte is read. */
enum access {
    OPEN,    /* anyone (health, OpenAPI, signed links) */
    KEYED,   /* an API key, then its request rate */
    METRICS, /* the metrics token, or else any API key */
};

/* What an endpoint's body may be. */
enum body_kind {
    BODY_SMALL,  /* none expected: at most LIMIT_SMALL_BODY, ignored */
    BODY_JSON,   /* a submit: up to --body-limit, held in memory */
    BODY_UPLOAD, /* a file: streamed to disk, up to --upload-limit */
    BODY_FORM,   /* an OSS-style form: parsed as it comes, the file to disk */
};

struct endpoint {
    const char *name; /* the route label in /metrics and logs */
    const char *method;
    const char *pattern; /* '*' matches one non-empty segment */
    unsigned dialects;
    endpoint_fn fn;
    enum access access;
    enum body_kind body;
};

/* A body where none is expected: read and ignored, this much at most. */
#define LIMIT_SMALL_BODY (64 << 10)

#define SUBMIT_BASE "/api/v1/services/aigc/video-generation/"
#define BOTH        (D_DASHSCOPE | D_TTAPI)

/* The model field decides the task type, never the path (docs/api.md
 * s.1). */
static const struct endpoint endpoints[] = {
    { "submit", "POST", SUBMIT_BASE "video-synthesis", BOTH, api_submit, KEYED,
      BODY_JSON },
    { "submit", "POST", SUBMIT_BASE "image-to-video", D_TTAPI, api_submit,
      KEYED, BODY_JSON },
    { "submit", "POST", SUBMIT_BASE "reference-to-video", D_TTAPI, api_submit,
      KEYED, BODY_JSON },
    { "submit", "POST", SUBMIT_BASE "video-edit", D_TTAPI, api_submit, KEYED,
      BODY_JSON },
    { "query", "GET", "/api/v1/tasks/*", BOTH, api_query, KEYED, BODY_SMALL },
    { "cancel", "POST", "/api/v1/tasks/*/cancel", BOTH, api_cancel, KEYED,
      BODY_SMALL },
    { "events", "GET", "/api/v1/tasks/*/events", BOTH, api_events, KEYED,
      BODY_SMALL },
    { "list", "GET", "/api/v1/tasks", BOTH, api_list, KEYED, BODY_SMALL },
    { "task_input", "GET", "/api/v1/tasks/*/input", BOTH, api_task_input, KEYED,
      BODY_SMALL },
    { "models", "GET", "/api/v1/models", BOTH, api_models, KEYED, BODY_SMALL },
    { "webhook_create", "POST", "/api/v1/webhooks", BOTH, api_webhook_create,
      KEYED, BODY_SMALL },
    { "webhook_list", "GET", "/api/v1/webhooks", BOTH, api_webhook_list, KEYED,
      BODY_SMALL },
    { "webhook_delete", "DELETE", "/api/v1/webhooks/*", BOTH,
      api_webhook_delete, KEYED, BODY_SMALL },
    { "webhook_deliveries", "GET", "/api/v1/webhooks/*/deliveries", BOTH,
      api_webhook_deliveries, KEYED, BODY_SMALL },
    { "webhook_retry", "POST", "/api/v1/webhooks/*/deliveries/*/retry", BOTH,
      api_webhook_retry, KEYED, BODY_SMALL },
    { "upload", "POST", "/api/v1/uploads", BOTH, api_upload, KEYED,
      BODY_UPLOAD },
    { "upload_policy", "GET", "/api/v1/uploads", BOTH, api_oss_policy, KEYED,
      BODY_SMALL },
    /* The signed policy in the form is the credential, not a key. */
    { "oss_upload", "POST", "/api/v1/uploads/oss", BOTH, api_oss_upload, OPEN,
      BODY_FORM },
    { "file", "GET", "/files/*", D_PLAIN, api_file, OPEN, BODY_SMALL },
    { "file", "HEAD", "/files/*", D_PLAIN, api_file, OPEN, BODY_SMALL },
    { "healthz", "GET", "/healthz", D_PLAIN, api_health, OPEN, BODY_SMALL },
    { "readyz", "GET", "/readyz", D_PLAIN, api_ready, OPEN, BODY_SMALL },
    { "metrics", "GET", "/metrics", D_PLAIN, api_metrics, METRICS, BODY_SMALL },
    { "openapi", "GET", "/openapi.json", BOTH, api_openapi, OPEN, BODY_SMALL },
    { "engines", "GET", "/api/v1/engines", BOTH, api_engines, KEYED,
      BODY_SMALL },
    /* The page is public; every call it makes is the API with a key. */
    { "console", "GET", "/console", D_PLAIN, api_console, OPEN, BODY_SMALL },
    { "console", "GET", "/console/*", D_PLAIN, api_console, OPEN, BODY_SMALL },
    { "usage", "GET", "/api/v1/usage", BOTH, api_usage, KEYED, BODY_SMALL },
    { "keys", "POST", "/api/v1/keys", BOTH, api_keys_create, KEYED, BODY_JSON },
    { "keys", "GET", "/api/v1/keys", BOTH, api_keys_list, KEYED, BODY_SMALL },
    { "key", "PATCH", "/api/v1/keys/*", BOTH, api_keys_patch, KEYED,
      BODY_JSON },
    { "key", "DELETE", "/api/v1/keys/*", BOTH, api_keys_delete, KEYED,
      BODY_SMALL },
};

_Static_assert(sizeof(struct admitted) <= HTTP_REQ_USER_BYTES,
               "struct admitted must fit the request's user area");

/* ------------------------------------------------------------ replies */

void api_reply_json(struct call *c, int status, struct buf *body)
{
    http_reply_take_body(c->rep, status, JSON_TYPE, body);
}

void api_reply_error(struct call *c, int err, const char *message)
{
    struct buf b = BUF_INIT;
    if (err == ERR_NO_API_KEY || err == ERR_INVALID_API_KEY) {
        if (c->dialect == D_TTAPI) { /* TTAPI's own 401 shape */
            buf_puts(&b, "{\"status\":\"FAILED\",\"message\":\"Wrong "
                         "TT-API-KEY or email is not activated.\","
                         "\"data\":null}");
            api_reply_json(c, 401, &b);
            return;
        }
        message = NULL; /* exactly the documented sentences */
    }
    if (err == ERR_ARREARAGE && c->dialect == D_TTAPI) {
        /* TTAPI's own shape: 402 Payment Required (docs/api.md s.7). */
        buf_puts(&b, "{\"status\":\"FAILED\",\"message\":");
        buf_json_str(&b, err_message(err));
        buf_puts(&b, ",\"data\":null,\"request_id\":");
        buf_json_str(&b, http_req_id(c->req));
        buf_putc(&b, '}');
        api_reply_json(c, 402, &b);
        return;
    }
    task_json_error(&b, http_req_id(c->req), err_code(err),
                    message ? message : err_message(err));
    api_reply_json(c, err_status(err), &b);
}

void api_reply_errmsg(struct call *c, const struct errmsg *e)
{
    api_reply_error(c, e->code, errmsg_text(e));
}

void api_reply_throttled(struct call *c, int err, const char *retry_s,
                         const char *message)
{
    http_reply_header(c->rep, "Retry-After", retry_s);
    api_reply_error(c, err, message);
}

const char *api_url_base(struct call *c, char out[API_URL_BASE_MAX])
{
    const struct api_deps *d = &c->api->d;
    if (d->conf->public_url)
        return d->conf->public_url;
    const char *host = http_req_header(c->req, "Host");
    size_t n = host ? strlen(host) : 0;
    bool ok = n > 0 && n <= API_HOST_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        char ch = host[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
             (ch >= '0' && ch <= '9') || (ch && strchr(".-:[]", ch));
    }
    if (!ok)
        return d->listen_base;
    memcpy(out, "http://", 7);
    memcpy(out + 7, host, n + 1);
    return out;
}

void api_log_request(struct call *c, const char *route)
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

/* -------------------------------------------------------------- auth */

/* The bearer credential of "Authorization: Bearer <token>", or NULL. The
 * scheme is case-insensitive; http/ has trimmed the value's ends, and
 * spaces after the scheme go too. */
static const char *bearer(const struct http_req *req)
{
    const char *h = http_req_header(req, "Authorization");
    if (!h || strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
        return NULL;
    h += 6;
    while (*h == ' ' || *h == '\t')
        h++;
    return h;
}

/* The key from "Authorization: Bearer <key>" or "TT-API-KEY: <key>"; both
 * dialects accept both, only the shape of a 401 differs. */
static const char *presented_key(const struct http_req *req)
{
    const char *h = bearer(req);
    return h ? h : http_req_header(req, "TT-API-KEY");
}

/* The caller's key, then its request rate: false when answered. */
static bool authenticate(struct call *c)
{
    int retry_s = 0;
    int err = auth_check(c->api->d.auth, presented_key(c->req), c->key_id);
    if (err < 0) {
        api_reply_error(c, err, NULL);
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
        api_reply_throttled(c, err, retry, msg);
        return false;
    }
    return true;
}

/* /metrics: the metrics token when one is configured, else any key. */
static bool metrics_allowed(struct call *c)
{
    const char *token = c->api->d.conf->metrics_token;
    if (!token)
        return authenticate(c);
    const char *given = bearer(c->req);
    size_t n = strlen(token);
    if (given && strlen(given) == n && sign_equal(given, token, n))
        return true;
    api_reply_error(c, given ? ERR_INVALID_API_KEY : ERR_NO_API_KEY, NULL);
    return false;
}

/* ----------------------------------------------------------- routing */

/* Does `path` match `pattern`? Each '*' matches one non-empty segment;
 * *arg gets them, joined by '/' when there are two. */
static bool match(const char *pattern, const char *path, size_t n,
                  const char **arg, char *argbuf, size_t argsize)
{
    const char *q = path, *end = path + n;
    size_t used = 0;
    bool star = false;
    for (const char *p = pattern; *p; p++) {
        if (*p != '*') {
            if (q == end || *q != *p)
                return false;
            q++;
            continue;
        }
        const char *seg = q;
        while (q < end && *q != '/')
            q++;
        size_t len = (size_t)(q - seg);
        if (len == 0 || used + len + 1 >= argsize)
            return false;
        if (star)
            argbuf[used++] = '/';
        memcpy(argbuf + used, seg, len);
        used += len;
        star = true;
    }
    if (q != end)
        return false;
    if (star) {
        argbuf[used] = '\0';
        *arg = argbuf;
    }
    return true;
}

/* The dialect of a path, and the path without its /happyhorse prefix and
 * trailing slashes ("/tasks/{id}/" is "/tasks/{id}"). */
static enum dialect dialect_of(const char *path, const char **rest, size_t *n)
{
    enum dialect d = D_DASHSCOPE;
    if (strncmp(path, TTAPI_PREFIX "/", sizeof(TTAPI_PREFIX)) == 0) {
        d = D_TTAPI;
        path += sizeof(TTAPI_PREFIX) - 1;
    }
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    *rest = path;
    *n = len;
    return d;
}

/* The endpoint of the request (c->dialect and c->arg set), or NULL with
 * *path_known telling 405 from 404. */
static const struct endpoint *find_endpoint(struct call *c, char *argbuf,
                                            size_t argsize, bool *path_known)
{
    const char *path;
    size_t n;
    c->dialect = dialect_of(http_req_path(c->req), &path, &n);
    *path_known = false;
    for (size_t i = 0; i < ARRAY_LEN(endpoints); i++) {
        const struct endpoint *r = &endpoints[i];
        unsigned want = r->dialects & D_PLAIN ? D_PLAIN : (unsigned)c->dialect;
        if (r->dialects & D_PLAIN && c->dialect == D_TTAPI)
            continue;
        if (!(r->dialects & want) ||
            !match(r->pattern, path, n, &c->arg, argbuf, argsize))
            continue;
        *path_known = true;
        if (strcmp(r->method, http_req_method(c->req)) != 0)
            continue;
        if (r->dialects & D_PLAIN)
            c->dialect = D_PLAIN;
        return r;
    }
    return NULL;
}

/* The answer to a request http/ refused for its framing or size. */
static void reply_fault(struct call *c)
{
    const char *why = http_req_fault_text(c->req);
    char msg[200];
    int err;
    switch (http_req_fault(c->req)) {
    case HTTP_FAULT_TOO_LARGE:
        snprintf(msg, sizeof(msg),
                 "request body is larger than the limit of %lld bytes",
                 (long long)http_req_body_limit(c->req));
        api_reply_error(c, ERR_TOO_LARGE, msg);
        return;
    case HTTP_FAULT_HEAD_SIZE:
        err = ERR_HEADERS_TOO_LARGE;
        break;
    case HTTP_FAULT_CODING:
        err = ERR_NOT_IMPLEMENTED;
        break;
    case HTTP_FAULT_VERSION:
        err = ERR_HTTP_VERSION;
        break;
    case HTTP_FAULT_BUSY:
        api_reply_throttled(c, ERR_BUSY, "1",
                            "request bodies in memory are at this server's "
                            "limit; retry in a moment");
        return;
    case HTTP_FAULT_TENANT:
        api_reply_throttled(c, ERR_THROTTLING, "1",
                            "this key's request bodies in memory are at "
                            "their limit; send fewer at once");
        return;
    case HTTP_FAULT_SINK:
        err = ERR_IO;
        break;
    default:
        err = ERR_BAD_REQUEST;
    }
    snprintf(msg, sizeof(msg), "%s", why[0] ? why : err_message(err));
    api_reply_error(c, err, msg);
}

/*
 * The http_admit hook: before any body byte is read, find the route,
 * check the key (and its rate), and say what body the route may take.
 * Answers now when any of it fails.
 */
void api_admit(void *arg, struct http_req *req, struct http_reply *rep)
{
    struct admitted *ad = http_req_user(req);
    struct call c = { .api = arg, .req = req, .rep = rep, .arg = "" };
    char argbuf[256], msg[160];
    bool path_known;

    ad->t0_us = c.t0_us = clock_mono_us();
    const struct endpoint *ep =
        find_endpoint(&c, argbuf, sizeof(argbuf), &path_known);
    ad->dialect = c.dialect;
    if (!ep) {
        snprintf(msg, sizeof(msg), "%s %.100s is not a route of this server",
                 http_req_method(req), http_req_path(req));
        api_reply_error(&c, path_known ? ERR_METHOD_NOT_ALLOWED : ERR_NOT_FOUND,
                        msg);
        api_log_request(&c, NULL);
        return;
    }
    if ((ep->access == KEYED && !authenticate(&c)) ||
        (ep->access == METRICS && !metrics_allowed(&c))) {
        api_log_request(&c, ep->name);
        return;
    }
    memcpy(ad->key_id, c.key_id, sizeof(ad->key_id));
    http_req_set_tenant(req, c.key_id);
    switch (ep->body) {
    case BODY_SMALL:
        http_req_set_body_limit(req, LIMIT_SMALL_BODY);
        break;
    case BODY_JSON:
        http_req_set_body_limit(req, c.api->d.conf->body_limit);
        break;
    case BODY_UPLOAD:
    case BODY_FORM:
        if (!(ep->body == BODY_UPLOAD ? api_upload_admit(&c, ad)
                                      : api_oss_admit(&c, ad))) {
            api_log_request(&c, ep->name);
            return;
        }
        break;
    }
    ad->ep = ep;
}

void api_handle(void *arg, struct http_req *req, struct http_reply *rep)
{
    struct admitted *ad = http_req_user(req);
    struct call c = { .api = arg, .req = req, .rep = rep, .arg = "" };
    char argbuf[256];
    const char *route = NULL;

    /* A form's reader stopped the body: its handler knows why. */
    bool own_fault = http_req_fault(req) == HTTP_FAULT_SINK && ad->ep &&
                     ad->ep->body == BODY_FORM;

    c.t0_us = ad->t0_us ? ad->t0_us : clock_mono_us();
    if (http_req_stopping(req)) {
        /* A node going away: a client (or a load balancer) retries on
         * another node or after the restart. */
        const char *rest;
        size_t n;
        c.dialect = dialect_of(http_req_path(req), &rest, &n);
        http_reply_header(rep, "Connection", "close");
        api_reply_throttled(&c, ERR_SHUTTING_DOWN, "1",
                            "this server is shutting down; retry in a "
                            "moment (or on another node)");
    } else if ((http_req_fault(req) && !own_fault) || !ad->ep) {
        const char *rest;
        size_t n;
        c.dialect =
            ad->ep ? ad->dialect : dialect_of(http_req_path(req), &rest, &n);
        memcpy(c.key_id, ad->key_id, sizeof(c.key_id));
        reply_fault(&c);
        route = ad->ep ? ad->ep->name : NULL;
    } else {
        bool known;
        memcpy(c.key_id, ad->key_id, sizeof(c.key_id));
        const struct endpoint *ep =
            find_endpoint(&c, argbuf, sizeof(argbuf), &known);
        route = ad->ep->name;
        if (ep == ad->ep)
            ep->fn(&c);
        else
            api_reply_error(&c, ERR_INTERNAL, "the route changed");
    }
    if (!c.deferred) /* else the completion logs it */
        api_log_request(&c, route);
}

struct api *api_new(const struct api_deps *deps)
{
    struct api *a = xcalloc(1, sizeof(*a));
    a->d = *deps;
    a->rate = limit_rate_new(deps->conf->rate_limit, deps->conf->rate_burst);
    a->cache = api_cache_new(deps->conf->query_cache);
    a->events = api_events_new(a);
    return a;
}

void api_free(struct api *a)
{
    if (!a)
        return;
    api_events_free(a->events);
    limit_rate_free(a->rate);
    api_cache_free(a->cache);
    free(a);
}
