/* Requests: what admit and handlers read and set, the memory caps on
 * bodies (process-wide and per tenant), and query arguments. */
#include "http_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------- request API */

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

const char *http_req_method(const struct http_req *req)
{
    return or_empty(req->head.method);
}

const char *http_req_path(const struct http_req *req)
{
    return or_empty(req->head.path);
}

const char *http_req_header(const struct http_req *req, const char *name)
{
    for (size_t i = 0; i < req->head.n; i++)
        if (strcasecmp(req->head.h[i].name, name) == 0)
            return req->head.h[i].value;
    return NULL;
}

const char *http_req_query(const struct http_req *req, const char *name)
{
    for (size_t i = 0; i < req->n_args; i++)
        if (strcmp(req->args[i].name, name) == 0)
            return req->args[i].value;
    return NULL;
}

const char *http_req_body(const struct http_req *req, size_t *len)
{
    *len = req->body.len;
    return req->body.data ? req->body.data : "";
}

int64_t http_req_body_received(const struct http_req *req)
{
    return req->received;
}

int64_t http_req_content_length(const struct http_req *req)
{
    return req->head.chunked ? -1 : req->head.content_length;
}

enum http_fault http_req_fault(const struct http_req *req)
{
    return req->fault;
}

const char *http_req_fault_text(const struct http_req *req)
{
    return or_empty(req->fault_why);
}

bool http_req_stopping(const struct http_req *req)
{
    return req->late;
}

const char *http_req_id(const struct http_req *req)
{
    return req->id;
}

void *http_req_user(struct http_req *req)
{
    return req->user;
}

void http_req_set_body_limit(struct http_req *req, int64_t max)
{
    req->body_limit = max < 0 ? 0 : max;
}

int64_t http_req_body_limit(const struct http_req *req)
{
    return req->body_limit;
}

void http_req_set_tenant(struct http_req *req, const char *tenant)
{
    snprintf(req->tenant, sizeof(req->tenant), "%s", tenant ? tenant : "");
}

void http_req_set_sink(struct http_req *req, const struct http_sink *sink)
{
    req->sink = *sink;
    req->has_sink = true;
}

struct http_defer *http_reply_defer(struct http_reply *rep)
{
    struct http_req *req = container_of(rep, struct http_req, rep);
    req->deferred = true;
    return (struct http_defer *)req;
}

/* ------------------------------------------------------ memory caps */

static struct http_tenant *tenant_find(struct http_server *srv,
                                       const char *name)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    struct http_tenant *free_slot = NULL;
    for (unsigned i = 0; i < TENANT_PROBE; i++) {
        struct http_tenant *t = &srv->tenants[(h + i) % TENANT_SLOTS];
        if (strcmp(t->name, name) == 0)
            return t;
        if (!free_slot && t->held == 0)
            free_slot = t;
    }
    if (free_slot)
        snprintf(free_slot->name, sizeof(free_slot->name), "%s", name);
    return free_slot;
}

enum http_fault http_req_charge(struct http_req *req, int64_t n)
{
    struct http_server *srv = req->conn->loop->srv;
    if (atomic_fetch_add(&srv->held, n) + n > srv->opts.body_memory) {
        atomic_fetch_sub(&srv->held, n);
        return HTTP_FAULT_BUSY;
    }
    if (req->tenant[0] && srv->opts.tenant_share > 0) {
        pthread_mutex_lock(&srv->tenant_lock);
        struct http_tenant *t = tenant_find(srv, req->tenant);
        bool ok = t && t->held + n <= srv->opts.tenant_share;
        if (ok)
            t->held += n;
        pthread_mutex_unlock(&srv->tenant_lock);
        if (!ok) {
            atomic_fetch_sub(&srv->held, n);
            return HTTP_FAULT_TENANT;
        }
    }
    req->charged += n;
    return HTTP_FAULT_NONE;
}

void http_req_release_body(struct http_req *req)
{
    struct http_server *srv = req->conn->loop->srv;
    buf_fini(&req->body);
    if (!req->charged)
        return;
    atomic_fetch_sub(&srv->held, req->charged);
    if (req->tenant[0] && srv->opts.tenant_share > 0) {
        pthread_mutex_lock(&srv->tenant_lock);
        struct http_tenant *t = tenant_find(srv, req->tenant);
        if (t)
            t->held -= req->charged;
        pthread_mutex_unlock(&srv->tenant_lock);
    }
    req->charged = 0;
}

/* ------------------------------------------------------ arguments */

void http_req_parse_args(struct http_req *req)
{
    char *q = (char *)req->head.query;
    while (q && *q && req->n_args < HTTP_MAX_QUERY) {
        char *amp = strchr(q, '&');
        if (amp)
            *amp = '\0';
        if (*q) {
            char *eq = strchr(q, '=');
            if (eq)
                *eq = '\0';
            req->args[req->n_args].name = q;
            req->args[req->n_args].value = eq ? eq + 1 : q + strlen(q);
            http_unescape(req->args[req->n_args].name, true);
            http_unescape(req->args[req->n_args].value, true);
            req->n_args++;
        }
        q = amp ? amp + 1 : NULL;
    }
}
