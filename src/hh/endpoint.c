/*
 * The endpoint (root and key header of a dialect) and the description of
 * requests: what both the CLI and the relay send, before any transport.
 */
#include "hh.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define TT_ROOT "/happyhorse"

/* ------------------------------------------------------------- checks */

/* Printable ASCII without blanks (and so without CR or LF). */
static bool visible(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~')
            return false;
    return true;
}

bool hh_key_ok(const char *key)
{
    size_t n = key ? strlen(key) : 0;
    return n > 0 && n <= LIMIT_KEY_BYTES && visible(key, n);
}

bool hh_base_ok(const char *b)
{
    size_t n = b ? strlen(b) : 0;
    const char *host;
    if (n == 0 || n > LIMIT_URL_BYTES || !visible(b, n) || strpbrk(b, "?#"))
        return false;
    if (strncasecmp(b, "http://", 7) == 0)
        host = b + 7;
    else if (strncasecmp(b, "https://", 8) == 0)
        host = b + 8;
    else
        return false;
    return *host && *host != '/' && *host != ':';
}

bool hh_id_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > HH_ID_MAX || n >= TASK_REF_MAX ||
        strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789-_.") != n)
        return false;
    /* A path segment of dots would climb the URL's path. */
    return strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

bool hh_code_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n < TASK_CODE_MAX && visible(s, n);
}

const char *hh_dialect_name(enum hh_dialect d)
{
    return d == HH_TTAPI ? "TTAPI" : "DashScope";
}

/* ----------------------------------------------------------- endpoint */

int hh_endpoint_init(struct hh_endpoint *ep, enum hh_dialect d,
                     const char *base, const char *key, struct errmsg *err)
{
    memset(ep, 0, sizeof(*ep));
    ep->dialect = d;
    if (!hh_base_ok(base))
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "the base URL is not http(s)://host[:port] (no "
                          "query, no blanks)");
    if (!hh_key_ok(key)) /* never the key itself in a message */
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "the API key is not 1 to %d printable ASCII "
                          "characters without blanks",
                          LIMIT_KEY_BYTES);
    size_t n = strlen(base), t = strlen(TT_ROOT);
    while (n > 0 && base[n - 1] == '/')
        n--;
    bool has_tt = n >= t && strncasecmp(base + n - t, TT_ROOT, t) == 0;
    ep->root = xasprintf("%.*s%s", (int)n, base,
                         d == HH_TTAPI && !has_tt ? TT_ROOT : "");
    ep->auth = d == HH_TTAPI ? xasprintf("TT-API-KEY: %s", key)
                             : xasprintf("Authorization: Bearer %s", key);
    return 0;
}

void hh_endpoint_fini(struct hh_endpoint *ep)
{
    if (!ep)
        return;
    if (ep->auth) { /* the key leaves no copy in freed memory */
        explicit_bzero(ep->auth, strlen(ep->auth));
        free(ep->auth);
    }
    free(ep->root);
    ep->root = ep->auth = NULL;
}

/* ----------------------------------------------------------- requests */

void hh_req_init(struct hh_request *q, const struct hh_endpoint *ep,
                 const char *method, const char *path)
{
    memset(q, 0, sizeof(*q));
    q->method = method;
    q->url = xasprintf("%s%s", ep->root, path);
    q->auth = ep->auth;
}

void hh_req_body(struct hh_request *q, const char *type, const void *body,
                 size_t len)
{
    snprintf(q->ctype, sizeof(q->ctype), "Content-Type: %s", type);
    q->body = body;
    q->body_len = len;
}

int hh_req_submit(struct hh_request *q, const struct hh_endpoint *ep,
                  const char *body, size_t len, const char *idem,
                  struct errmsg *err)
{
    hh_req_init(q, ep, "POST", HH_SUBMIT_PATH);
    hh_req_body(q, "application/json", body, len);
    q->async = ep->dialect == HH_DASHSCOPE;
    if (!idem || !idem[0])
        return 0;
    size_t n = strlen(idem);
    if (n > HH_IDEM_MAX || !visible(idem, n))
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "an Idempotency-Key is 1 to %d printable ASCII "
                          "characters",
                          HH_IDEM_MAX);
    snprintf(q->idem, sizeof(q->idem), "Idempotency-Key: %s", idem);
    return 0;
}

int hh_req_query(struct hh_request *q, const struct hh_endpoint *ep,
                 const char *task_id, struct errmsg *err)
{
    char path[sizeof(HH_TASKS_PATH) + HH_ID_MAX];
    memset(q, 0, sizeof(*q));
    if (!hh_id_ok(task_id))
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "a task id is 1 to %d letters, digits, '-', '_' "
                          "and '.'",
                          HH_ID_MAX);
    snprintf(path, sizeof(path), HH_TASKS_PATH "%s", task_id);
    hh_req_init(q, ep, "GET", path);
    return 0;
}

void hh_request_fini(struct hh_request *q)
{
    if (!q)
        return;
    free(q->url);
    q->url = NULL;
}

void hh_request_net(const struct hh_request *q,
                    const char *lines[HH_HEADERS_MAX], struct net_http_req *out)
{
    size_t n = 0;
    if (q->auth)
        lines[n++] = q->auth;
    lines[n++] = "Accept: application/json";
    if (q->ctype[0])
        lines[n++] = q->ctype;
    if (q->async)
        lines[n++] = "X-DashScope-Async: enable";
    if (q->idem[0])
        lines[n++] = q->idem;
    *out = (struct net_http_req){
        .method = q->method,
        .url = q->url,
        .headers = lines,
        .n_headers = n,
        .body = q->body,
        .body_len = q->body_len,
        .max_bytes = HH_JSON_BYTES,
    };
}
