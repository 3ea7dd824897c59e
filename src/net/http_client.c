/*
 * net_http: plain HTTP(S) requests for the CLI over one reused libcurl
 * handle; bodies capped and, for downloads, written to a file as they
 * arrive. No address guard: see net.h before using it anywhere else.
 */
#include "net.h"

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

/* One request in progress; lives on net_http_request's stack. */
struct xfer {
    const struct net_http_req *req;
    struct net_http_resp *resp;
    CURL *h;
    bool too_big;    /* the body went past req->max_bytes */
    bool error_cut;  /* a non-2xx body filled NET_HTTP_ERROR_BYTES */
    bool stopped;    /* req->stop was seen set */
    int write_errno; /* req->fd could not be written */
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
    if (r->to_fd && status >= 200 && status <= 299) {
        /* Count what arrives: Content-Length may be absent or lie. */
        if ((int64_t)n > r->max_bytes - x->resp->bytes) {
            x->too_big = true;
            return 0;
        }
        if (!write_all(x, p, n))
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

/* ---------------------------------------------------------- the call */

static int failure(struct xfer *x, CURLcode code, const char *errbuf,
                   const char *shown, struct errmsg *err)
{
    const struct net_http_req *r = x->req;
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
    int ret = code == CURLE_URL_MALFORMAT || code == CURLE_UNSUPPORTED_PROTOCOL
                  ? ERR_INVALID_URL
                  : ERR_IO;
    /* libcurl's detail names host and port, never the URL's query. */
    return errmsg_set(err, ret, "%s %s: %s", r->method, shown,
                      errbuf[0] ? errbuf : curl_easy_strerror(code));
}

static bool valid_req(const struct net_http_req *r)
{
    if (!r->method || !r->url || r->max_bytes <= 0 || r->timeout_ms < 0 ||
        r->stall_ms < 0 || r->max_redirects < 0 ||
        r->n_headers > NET_HTTP_HEADERS_MAX || (r->n_headers && !r->headers))
        return false;
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "POST") != 0)
        return false;
    for (size_t i = 0; i < r->n_headers; i++)
        if (!r->headers[i] || strpbrk(r->headers[i], "\r\n"))
            return false;
    return true;
}

int net_http_request(struct net_http *http, const struct net_http_req *r,
                     struct net_http_resp *resp, struct errmsg *err)
{
    CURL *h = http->h;
    struct xfer x = { .req = r, .resp = resp, .h = h };
    struct curl_slist *headers = NULL, *more;
    const char *failed = NULL; /* the option libcurl refused */
    char shown[NET_URL_SHOW_SIZE];
    char errbuf[CURL_ERROR_SIZE] = "";
    int ret = 0;

    memset(resp, 0, sizeof(*resp));
    resp->retry_after_s = -1;
    if (!valid_req(r))
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "net_http_request: bad method, limit or header");
    net_url_show(r->url, shown);
    if (strncasecmp(r->url, "http://", 7) != 0 &&
        strncasecmp(r->url, "https://", 8) != 0)
        return errmsg_set(err, ERR_INVALID_URL,
                          "%s: only http:// and https:// URLs", shown);
    for (size_t i = 0; i < r->n_headers; i++) {
        if (!(more = curl_slist_append(headers, r->headers[i]))) {
            ret = errmsg_set(err, ERR_INTERNAL, "curl_slist_append failed");
            goto out;
        }
        headers = more;
    }
    /* No "Expect: 100-continue" round trip before a large body. */
    if (!(more = curl_slist_append(headers, "Expect:"))) {
        ret = errmsg_set(err, ERR_INTERNAL, "curl_slist_append failed");
        goto out;
    }
    headers = more;

    curl_easy_reset(h); /* options go; the connection cache stays */
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
    SET(CURLOPT_HTTPHEADER, headers);
    if (strcmp(r->method, "POST") == 0) {
        SET(CURLOPT_POST, 1L);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        SET(CURLOPT_POSTFIELDS, r->body ? r->body : "");
    }
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, &x);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, &x);
    SET(CURLOPT_NOPROGRESS, 0L);
    SET(CURLOPT_XFERINFOFUNCTION, on_progress);
    SET(CURLOPT_XFERINFODATA, &x);
    SET(CURLOPT_ERRORBUFFER, errbuf);
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
#undef SET
    if (failed) {
        ret = errmsg_set(err, ERR_INTERNAL, "libcurl refused %s", failed);
        goto out;
    }

    CURLcode code = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    /* A cut error page is still the server's answer. */
    if (code != CURLE_OK && !(x.error_cut && code == CURLE_WRITE_ERROR))
        ret = failure(&x, code, errbuf, shown, err);
    else if (resp->status == 0)
        ret =
            errmsg_set(err, ERR_IO, "%s %s: no HTTP answer", r->method, shown);
out:
    /* The handle must not keep pointers into this stack frame. */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(headers);
    return ret;
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
