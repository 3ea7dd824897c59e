/*
 * net_http: plain HTTP(S) requests for the CLI over one reused libcurl
 * handle; bodies capped and, for downloads, written to a file as they
 * arrive. No address guard: see net.h before using it anywhere else.
 */
#include "net_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define NET_HTTP_USER_AGENT "paddock-cli"

struct net_http {
    CURL *h;
};

/* One request in progress: on net_http_request's stack, or on the heap
 * for a net_multi (which owns copies of the request's strings). */
struct xfer {
    const struct net_http_req *req;
    struct net_http_resp *resp;
    CURL *h;
    struct curl_slist *headers;
    char shown[NET_URL_SHOW_SIZE];
    char errbuf[CURL_ERROR_SIZE];
    bool too_big;               /* the body went past req->max_bytes */
    bool error_cut;             /* a non-2xx body filled NET_HTTP_ERROR_BYTES */
    bool stopped;               /* req->stop was seen set */
    int write_errno;            /* req->fd could not be written */
    struct net_refusal refused; /* the first address the guard refused */
    /* net_multi only */
    struct net_http_req own; /* the copy req points to */
    struct net_http_resp own_resp;
    char **own_headers;
    net_multi_done done;
    void *arg;
    struct xfer *prev, *next;
};

/* -------------------------------------------------------- callbacks */

static bool stop_set(const struct net_http_req *r)
{
    return r->stop && atomic_load(r->stop);
}

static bool write_all(struct xfer *x, const char *p, size_t n)
{
    x->write_errno = write_full(x->req->fd, p, n);
    return x->write_errno == 0;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *userdata)
{
    struct xfer *x = userdata;
    const struct net_http_req *r = x->req;
    size_t n = size * nmemb;
    long status = 0;

    if (stop_set(r)) {
        x->stopped = true;
        return 0;
    }
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
    if ((r->to_fd || r->on_body) && status >= 200 && status <= 299) {
        /* Count what arrives: Content-Length may be absent or lie. */
        if ((int64_t)n > r->max_bytes - x->resp->bytes) {
            x->too_big = true;
            return 0;
        }
        if (r->on_body && r->on_body(r->on_body_arg, p, n) < 0) {
            x->stopped = true;
            return 0;
        }
        if (!r->on_body && !write_all(x, p, n))
            return 0;
    } else {
        int64_t cap = r->to_fd ? NET_HTTP_ERROR_BYTES : r->max_bytes;
        if ((int64_t)n > cap - x->resp->bytes) {
            /* An error page only needs its start; an API answer must be
             * whole. */
            if (r->to_fd)
                x->error_cut = true;
            else
                x->too_big = true;
            return 0;
        }
        buf_append(&x->resp->body, p, n);
    }
    x->resp->bytes += (int64_t)n;
    return n;
}

/* The value of a Retry-After header: delay-seconds or an HTTP date. */
static int retry_after(const char *v, size_t n)
{
    char s[64];
    int64_t secs;
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' ||
                     v[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= sizeof(s))
        return -1;
    memcpy(s, v, n);
    s[n] = '\0';
    if (parse_i64(s, 0, 1000000000, &secs) == 0)
        return (int)secs;
    time_t when = curl_getdate(s, NULL);
    if (when == (time_t)-1)
        return -1;
    time_t now = time(NULL);
    if (when <= now)
        return 0;
    return when - now > 1000000000 ? 1000000000 : (int)(when - now);
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *userdata)
{
    struct xfer *x = userdata;
    size_t n = size * nmemb;
    static const char name[] = "Retry-After:";
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) /* the next answer begins */
        x->resp->retry_after_s = -1;
    else if (n > sizeof(name) - 1 &&
             strncasecmp(p, name, sizeof(name) - 1) == 0)
        x->resp->retry_after_s =
            retry_after(p + sizeof(name) - 1, n - (sizeof(name) - 1));
    return n;
}

/* About once a second even while nothing arrives. */
static int on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow)
{
    struct xfer *x = clientp;
    (void)ultotal, (void)ulnow;
    if (stop_set(x->req))
        x->stopped = true;
    if (!x->stopped && x->req->progress)
        x->req->progress(x->req->progress_arg, (int64_t)dlnow,
                         (int64_t)dltotal);
    return x->stopped;
}

/* The guard (req->guarded): net__open_guarded on every connection. */
static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose,
                                    struct curl_sockaddr *a)
{
    struct xfer *x = clientp;
    return net__open_guarded(x->req->allow, purpose, a, &x->refused);
}

/* ---------------------------------------------------------- the call */

static int failure(struct xfer *x, CURLcode code, struct errmsg *err)
{
    const struct net_http_req *r = x->req;
    const char *shown = x->shown;
    if (x->stopped || (code == CURLE_ABORTED_BY_CALLBACK && stop_set(r)))
        return errmsg_set(err, ERR_STOPPED, "%s %s: interrupted", r->method,
                          shown);
    if (x->too_big || code == CURLE_FILESIZE_EXCEEDED)
        return errmsg_set(err, ERR_TOO_LARGE,
                          "%s %s: the answer is larger than %lld bytes",
                          r->method, shown, (long long)r->max_bytes);
    if (x->write_errno)
        return errmsg_set(err, ERR_IO, "%s %s: writing the body: %s", r->method,
                          shown, strerror(x->write_errno));
    if (x->refused.why && code == CURLE_COULDNT_CONNECT)
        return errmsg_set(err, ERR_INVALID_URL,
                          "%s %s: address %s is %s and not in --fetch-allow",
                          r->method, shown, x->refused.addr, x->refused.why);
    int ret = code == CURLE_URL_MALFORMAT || code == CURLE_UNSUPPORTED_PROTOCOL
                  ? ERR_INVALID_URL
                  : ERR_IO;
    /* libcurl's detail names host and port, never the URL's query. */
    return errmsg_set(err, ret, "%s %s: %s", r->method, shown,
                      x->errbuf[0] ? x->errbuf : curl_easy_strerror(code));
}

static bool valid_req(const struct net_http_req *r)
{
    if (!r->method || !r->url || r->max_bytes <= 0 || r->timeout_ms < 0 ||
        r->stall_ms < 0 || r->max_redirects < 0 ||
        r->n_headers > NET_HTTP_HEADERS_MAX || (r->n_headers && !r->headers))
        return false;
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "POST") != 0 &&
        strcmp(r->method, "DELETE") != 0)
        return false;
    for (size_t i = 0; i < r->n_headers; i++)
        if (!r->headers[i] || strpbrk(r->headers[i], "\r\n"))
            return false;
    return true;
}

/* Check x->req and set handle h up for it; 0 or the error. */
static int xfer_setup(struct xfer *x, CURL *h, struct errmsg *err)
{
    const struct net_http_req *r = x->req;
    struct curl_slist *more;
    const char *failed = NULL; /* the option libcurl refused */

    x->h = h;
    memset(x->resp, 0, sizeof(*x->resp));
    x->resp->retry_after_s = -1;
    if (!valid_req(r))
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "net_http_request: bad method, limit or header");
    net_url_show(r->url, x->shown);
    if (strncasecmp(r->url, "http://", 7) != 0 &&
        strncasecmp(r->url, "https://", 8) != 0)
        return errmsg_set(err, ERR_INVALID_URL,
                          "%s: only http:// and https:// URLs", x->shown);
    for (size_t i = 0; i < r->n_headers; i++) {
        if (!(more = curl_slist_append(x->headers, r->headers[i])))
            return errmsg_set(err, ERR_INTERNAL, "curl_slist_append failed");
        x->headers = more;
    }
    /* No "Expect: 100-continue" round trip before a large body. */
    if (!(more = curl_slist_append(x->headers, "Expect:")))
        return errmsg_set(err, ERR_INTERNAL, "curl_slist_append failed");
    x->headers = more;

#define SET(opt, value)                                             \
    do {                                                            \
        if (!failed && curl_easy_setopt(h, opt, value) != CURLE_OK) \
            failed = #opt;                                          \
    } while (0)
    SET(CURLOPT_URL, r->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, r->max_redirects > 0 ? 1L : 0L);
    SET(CURLOPT_MAXREDIRS, (long)r->max_redirects);
    SET(CURLOPT_HTTPHEADER, x->headers);
    if (strcmp(r->method, "DELETE") == 0)
        SET(CURLOPT_CUSTOMREQUEST, "DELETE");
    if (strcmp(r->method, "POST") == 0) {
        SET(CURLOPT_POST, 1L);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        SET(CURLOPT_POSTFIELDS, r->body ? r->body : "");
    }
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, x);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, x);
    SET(CURLOPT_NOPROGRESS, 0L);
    SET(CURLOPT_XFERINFOFUNCTION, on_progress);
    SET(CURLOPT_XFERINFODATA, x);
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    SET(CURLOPT_PRIVATE, x);
    if (r->timeout_ms > 0)
        SET(CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS,
        (long)(r->timeout_ms > 0 && r->timeout_ms < NET_CONNECT_TIMEOUT_MS
                   ? r->timeout_ms
                   : NET_CONNECT_TIMEOUT_MS));
    if (r->stall_ms > 0) { /* under 1 byte/s for that long */
        SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
        SET(CURLOPT_LOW_SPEED_TIME, (long)((r->stall_ms + 999) / 1000));
    }
    /* Fails early on a Content-Length over the cap; on_write counts. */
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_bytes);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_USERAGENT, NET_HTTP_USER_AGENT);
    if (r->guarded) { /* no proxy: the guard must see the real address */
        SET(CURLOPT_PROXY, "");
        SET(CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
        SET(CURLOPT_OPENSOCKETDATA, x);
    }
#undef SET
    if (failed)
        return errmsg_set(err, ERR_INTERNAL, "libcurl refused %s", failed);
    return 0;
}

/* What the transfer came to: 0 when an answer arrived, else the error. */
static int xfer_result(struct xfer *x, CURLcode code, struct errmsg *err)
{
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->resp->status);
    /* A cut error page is still the server's answer. */
    if (code != CURLE_OK && !(x->error_cut && code == CURLE_WRITE_ERROR))
        return failure(x, code, err);
    if (x->resp->status == 0)
        return errmsg_set(err, ERR_IO, "%s %s: no HTTP answer", x->req->method,
                          x->shown);
    return 0;
}

int net_http_request(struct net_http *http, const struct net_http_req *r,
                     struct net_http_resp *resp, struct errmsg *err)
{
    CURL *h = http->h;
    struct xfer x = { .req = r, .resp = resp };
    curl_easy_reset(h); /* options go; the connection cache stays */
    int ret = xfer_setup(&x, h, err);
    if (ret == 0)
        ret = xfer_result(&x, curl_easy_perform(h), err);
    /* The handle must not keep pointers into this stack frame. */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(x.headers);
    return ret;
}

/* -------------------------------------------------------- many at once */

struct net_multi {
    CURLM *m;
    struct xfer *live;
    size_t n;
};

int net_multi_new(struct net_multi **out, struct errmsg *err)
{
    struct net_multi *m = xcalloc(1, sizeof(*m));
    m->m = curl_multi_init();
    if (!m->m) {
        free(m);
        *out = NULL;
        return errmsg_set(err, ERR_INTERNAL, "curl_multi_init failed");
    }
    /* Many requests to one host share a few connections. */
    curl_multi_setopt(m->m, CURLMOPT_MAX_HOST_CONNECTIONS,
                      (long)NET_MULTI_HOST_CONNECTIONS);
    *out = m;
    return 0;
}

static void xfer_free(struct xfer *x)
{
    if (x->h)
        curl_easy_cleanup(x->h);
    curl_slist_free_all(x->headers);
    for (size_t i = 0; x->own_headers && i < x->own.n_headers; i++)
        free(x->own_headers[i]);
    free(x->own_headers);
    free((char *)x->own.url);
    free((char *)x->own.body);
    net_http_resp_fini(&x->own_resp);
    free(x);
}

int net_multi_add(struct net_multi *m, const struct net_http_req *req,
                  net_multi_done done, void *arg, struct errmsg *err)
{
    if (req->to_fd || req->on_body || !done)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "net_multi_add: bodies go to memory; done is needed");
    struct xfer *x = xcalloc(1, sizeof(*x));
    x->own = *req;
    x->own.url = req->url ? xstrdup(req->url) : NULL;
    x->own.body = req->body ? xstrndup(req->body, req->body_len) : NULL;
    if (req->n_headers && req->headers &&
        req->n_headers <= NET_HTTP_HEADERS_MAX) {
        x->own_headers = xcalloc(req->n_headers, sizeof(char *));
        for (size_t i = 0; i < req->n_headers; i++)
            x->own_headers[i] = xstrdup(req->headers[i] ? req->headers[i] : "");
        x->own.headers = (const char *const *)x->own_headers;
    }
    x->req = &x->own;
    x->resp = &x->own_resp;
    x->done = done;
    x->arg = arg;
    CURL *h = curl_easy_init();
    int ret = h ? xfer_setup(x, h, err)
                : errmsg_set(err, ERR_INTERNAL, "curl_easy_init failed");
    if (ret == 0 && curl_multi_add_handle(m->m, h) != CURLM_OK)
        ret = errmsg_set(err, ERR_INTERNAL, "curl_multi_add_handle failed");
    if (ret < 0) {
        if (!x->h && h)
            curl_easy_cleanup(h);
        xfer_free(x);
        return ret;
    }
    x->next = m->live;
    if (m->live)
        m->live->prev = x;
    m->live = x;
    m->n++;
    return 0;
}

static void xfer_end(struct net_multi *m, struct xfer *x, int rc,
                     const struct errmsg *e)
{
    curl_multi_remove_handle(m->m, x->h);
    if (x->prev)
        x->prev->next = x->next;
    else
        m->live = x->next;
    if (x->next)
        x->next->prev = x->prev;
    m->n--;
    x->done(x->arg, rc, x->resp, e);
    xfer_free(x);
}

int net_multi_run(struct net_multi *m, int timeout_ms)
{
    int running = 0, msgs;
    curl_multi_perform(m->m, &running);
    curl_multi_poll(m->m, NULL, 0, timeout_ms, NULL);
    curl_multi_perform(m->m, &running);
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(m->m, &msgs))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct xfer *x = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        struct errmsg e = { 0 };
        int rc = xfer_result(x, msg->data.result, &e);
        xfer_end(m, x, rc, &e);
    }
    return (int)m->n;
}

size_t net_multi_count(const struct net_multi *m)
{
    return m->n;
}

void net_multi_wakeup(struct net_multi *m)
{
    curl_multi_wakeup(m->m);
}

void net_multi_free(struct net_multi *m)
{
    if (!m)
        return;
    while (m->live) {
        struct errmsg e = { 0 };
        errmsg_set(&e, ERR_STOPPED, "%s %s: stopped", m->live->req->method,
                   m->live->shown);
        xfer_end(m, m->live, ERR_STOPPED, &e);
    }
    curl_multi_cleanup(m->m);
    free(m);
}

void net_http_resp_fini(struct net_http_resp *resp)
{
    if (resp)
        buf_fini(&resp->body);
}

int net_http_new(struct net_http **out, struct errmsg *err)
{
    struct net_http *http = xcalloc(1, sizeof(*http));
    http->h = curl_easy_init();
    if (!http->h) {
        free(http);
        *out = NULL;
        return errmsg_set(err, ERR_INTERNAL, "curl_easy_init failed");
    }
    *out = http;
    return 0;
}

void net_http_free(struct net_http *http)
{
    if (!http)
        return;
    curl_easy_cleanup(http->h);
    free(http);
}
