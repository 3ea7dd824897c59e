/*
 * net_fetch: an input's bytes into a file, over libcurl (one easy handle per
 * call) or from an inline data:image URI, within the byte, time and
 * redirect caps, every connection passing the address guard first.
 */
#include "net_int.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifdef PADDOCK_VERSION
#define NET_USER_AGENT "paddock/" PADDOCK_VERSION
#else
#define NET_USER_AGENT "paddock"
#endif

/* One fetch in progress; lives on net_fetch's stack. */
struct fetch {
    const struct net_fetch_opts *o;
    const char *path;
    int fd;
    int64_t bytes;              /* written to fd so far */
    bool too_big;               /* the body went past o->max_bytes */
    bool stopped;               /* o->stop was seen set */
    int write_errno;            /* the file could not be written */
    struct net_refusal refused; /* the first address the guard refused */
};

/* ----------------------------------------------------------- messages */

static void show_bytes(char *out, size_t *o, const char *s, size_t n, bool *cut)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n && !*cut; i++) {
        unsigned char c = (unsigned char)s[i];
        if (*o >= NET_URL_SHOW) {
            *cut = true;
        } else if (c > 0x20 && c < 0x7f) {
            out[(*o)++] = (char)c;
        } else { /* keep the message printable and valid UTF-8 */
            out[(*o)++] = '%';
            out[(*o)++] = hex[c >> 4];
            out[(*o)++] = hex[c & 15];
        }
    }
}

/*
 * What a message may show of a URL: scheme://host[:port]/path, without user
 * info, query or fragment (they can carry a password or a signature), cut
 * at NET_URL_SHOW bytes. Of anything without "://" (a data: URI), only the
 * part before the first of ";,?#".
 */
void net_url_show(const char *url, char out[NET_URL_SHOW_SIZE])
{
    size_t o = 0;
    bool cut = false;
    const char *sep = strstr(url, "://");
    size_t scheme = sep ? (size_t)(sep - url) : 0;
    if (scheme == 0 ||
        strspn(url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789+.-") != scheme) {
        show_bytes(out, &o, url, strcspn(url, ";,?#"), &cut);
    } else {
        const char *auth = sep + 3;
        size_t auth_len = strcspn(auth, "/?#");
        const char *host = auth;
        for (size_t i = 0; i < auth_len; i++)
            if (auth[i] == '@')
                host = auth + i + 1;
        const char *path = auth + auth_len;
        show_bytes(out, &o, url, scheme + 3, &cut);
        show_bytes(out, &o, host, (size_t)(path - host), &cut);
        show_bytes(out, &o, path, strcspn(path, "?#"), &cut);
    }
    if (cut) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* "20 MB" for whole mebibytes, else "1000 bytes". */
static void show_size(int64_t n, char out[32])
{
    if (n % (1 << 20) == 0)
        snprintf(out, 32, "%lld MB", (long long)(n >> 20));
    else
        snprintf(out, 32, "%lld bytes", (long long)n);
}

/* "30 s" for whole seconds, else "300 ms". */
static void show_ms(int64_t ms, char out[32])
{
    if (ms % 1000 == 0)
        snprintf(out, 32, "%lld s", (long long)(ms / 1000));
    else
        snprintf(out, 32, "%lld ms", (long long)ms);
}

static int too_large(struct errmsg *err, const char *shown, int64_t max)
{
    char cap[32];
    show_size(max, cap);
    return errmsg_set(err, ERR_INPUT_DOWNLOAD_FAILED, "%s: larger than %s",
                      shown, cap);
}

static bool stop_set(const struct net_fetch_opts *o)
{
    return o->stop && atomic_load(o->stop);
}

static bool has_prefix_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* Write all of p[0..n) to f->fd; false (and f->write_errno) on failure. */
static bool write_all(struct fetch *f, const void *p, size_t n)
{
    f->write_errno = write_full(f->fd, p, n);
    if (f->write_errno)
        return false;
    f->bytes += (int64_t)n;
    return true;
}

/* -------------------------------------------------------------- data: */

/* The inline images docs/api.md s.3.3 allows; matched case-insensitively. */
static const char *const data_heads[] = {
    "data:image/jpeg;base64,",
    "data:image/png;base64,",
    "data:image/webp;base64,",
};

/* The payload of an accepted data: URI, or NULL. */
static const char *data_payload(const char *url)
{
    for (size_t i = 0; i < ARRAY_LEN(data_heads); i++)
        if (has_prefix_ci(url, data_heads[i]))
            return url + strlen(data_heads[i]);
    return NULL;
}

/*
 * Decode a data: URI checked by the caller into f->fd. The submit validator
 * has already refused malformed base64; this is defence in depth, so a
 * failure is a download failure, not a parameter error.
 */
static int fetch_data(struct fetch *f, const char *s, const char *shown,
                      struct errmsg *err)
{
    size_t n = strlen(s), len = 0;
    const char *why = base64_problem(s, n, &len);
    if (why)
        return errmsg_set(err, ERR_INPUT_DOWNLOAD_FAILED, "%s: %s", shown, why);
    if ((int64_t)len > f->o->max_bytes)
        return too_large(err, shown, f->o->max_bytes);

    unsigned char out[3 * 4096]; /* decoded 4096 quads at a time */
    for (size_t i = 0; i < n; i += 4 * 4096) {
        size_t chunk = n - i < 4 * 4096 ? n - i : 4 * 4096;
        size_t o = base64_decode(s + i, chunk, out, sizeof(out));
        if (!write_all(f, out, o))
            return errmsg_set(err, ERR_IO, "writing %s: %s", f->path,
                              strerror(f->write_errno));
        if (stop_set(f->o))
            return errmsg_set(err, ERR_STOPPED, "%s: stopped", shown);
    }
    return 0;
}

/* -------------------------------------------------------------- http: */

/* The text of an address the guard refused, into out[INET6_ADDRSTRLEN]. */
static void addr_text(const struct sockaddr_storage *ss, char *out)
{
    const void *ip = NULL;
    if (ss->ss_family == AF_INET)
        ip = &((const struct sockaddr_in *)ss)->sin_addr;
    else if (ss->ss_family == AF_INET6)
        ip = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (!ip || !inet_ntop(ss->ss_family, ip, out, INET6_ADDRSTRLEN))
        snprintf(out, INET6_ADDRSTRLEN, "(family %d)", (int)ss->ss_family);
}

curl_socket_t net__open_guarded(const struct net_allow *allow,
                                curlsocktype purpose, struct curl_sockaddr *a,
                                struct net_refusal *r)
{
    struct sockaddr_storage ss;
    const struct sockaddr *sa = (const struct sockaddr *)&ss;
    const char *why = "not IP";

    memset(&ss, 0, sizeof(ss));
    /* `a->addr` is declared a struct sockaddr but holds addrlen bytes. */
    if (purpose == CURLSOCKTYPE_IPCXN && a->addrlen <= sizeof(ss)) {
        memcpy(&ss, &a->addr, a->addrlen);
        why = net_addr_blocked(sa);
    }
    if (why && !net_allow_admits(allow, sa)) {
        if (!r->why) {
            r->why = why;
            addr_text(&ss, r->addr);
        }
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose,
                                    struct curl_sockaddr *a)
{
    struct fetch *f = clientp;
    return net__open_guarded(f->o->allow, purpose, a, &f->refused);
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *userdata)
{
    struct fetch *f = userdata;
    size_t n = size * nmemb;
    if (stop_set(f->o)) {
        f->stopped = true;
        return 0;
    }
    /* Count what arrives: Content-Length may be absent or lie. */
    if ((int64_t)n > f->o->max_bytes - f->bytes) {
        f->too_big = true;
        return 0;
    }
    return write_all(f, p, n) ? n : 0;
}

/* Called about once a second even while nothing arrives. */
static int on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow)
{
    struct fetch *f = clientp;
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    if (stop_set(f->o))
        f->stopped = true;
    return f->stopped;
}

/* Failures whose message needs nothing but the URL; the rest are decided in
 * http_failure before this table is consulted. */
static const struct curl_failure {
    CURLcode code;
    int err;
    const char *what;
} curl_failures[] = {
    { CURLE_UNSUPPORTED_PROTOCOL, ERR_INVALID_URL,
      "a redirect led to a scheme other than http or https" },
    { CURLE_URL_MALFORMAT, ERR_INVALID_URL, "the URL cannot be parsed" },
    { CURLE_COULDNT_RESOLVE_HOST, ERR_INPUT_DOWNLOAD_FAILED,
      "the host name does not resolve" },
    { CURLE_PEER_FAILED_VERIFICATION, ERR_INPUT_DOWNLOAD_FAILED,
      "the server's TLS certificate is not valid for its name" },
    { CURLE_SSL_CONNECT_ERROR, ERR_INPUT_DOWNLOAD_FAILED,
      "the TLS handshake failed" },
    { CURLE_GOT_NOTHING, ERR_INPUT_DOWNLOAD_FAILED,
      "the server closed the connection without an answer" },
    { CURLE_PARTIAL_FILE, ERR_INPUT_DOWNLOAD_FAILED,
      "the connection closed before the whole body arrived" },
    { CURLE_RECV_ERROR, ERR_INPUT_DOWNLOAD_FAILED,
      "the connection failed while receiving" },
    { CURLE_SEND_ERROR, ERR_INPUT_DOWNLOAD_FAILED,
      "the connection failed while sending the request" },
    { CURLE_WEIRD_SERVER_REPLY, ERR_INPUT_DOWNLOAD_FAILED,
      "the answer is not HTTP" },
};

/* The error for a transfer that ended with `code` (or with a status
 * outside 2xx, when code is CURLE_OK). */
static int http_failure(struct fetch *f, CURL *h, CURLcode code,
                        const char *shown, struct errmsg *err)
{
    const struct net_fetch_opts *o = f->o;
    char where[2 * NET_URL_SHOW_SIZE + 32], t[32];
    long status = 0, os_errno = 0;
    curl_off_t connect_us = 0;
    long redirects = 0;
    char *last = NULL;

    /* Name the redirect target too when the failure happened there. */
    snprintf(where, sizeof(where), "%s", shown);
    curl_easy_getinfo(h, CURLINFO_REDIRECT_COUNT, &redirects);
    if (redirects > 0 &&
        curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &last) == CURLE_OK &&
        last) {
        char to[NET_URL_SHOW_SIZE];
        net_url_show(last, to);
        snprintf(where, sizeof(where), "%s (redirected to %s)", shown, to);
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);

    if (f->stopped || (code == CURLE_ABORTED_BY_CALLBACK && stop_set(o)))
        return errmsg_set(err, ERR_STOPPED, "%s: stopped", where);
    if (f->too_big || code == CURLE_FILESIZE_EXCEEDED)
        return too_large(err, where, o->max_bytes);
    if (f->write_errno)
        return errmsg_set(err, ERR_IO, "writing %s: %s", f->path,
                          strerror(f->write_errno));
    if (code == CURLE_COULDNT_CONNECT && f->refused.why)
        return errmsg_set(err, ERR_INVALID_URL,
                          "%s: address %s is %s and not in --fetch-allow",
                          where, f->refused.addr, f->refused.why);
    if (code == CURLE_OK || code == CURLE_HTTP_RETURNED_ERROR)
        return errmsg_set(err, ERR_INPUT_DOWNLOAD_FAILED, "%s: HTTP %ld", where,
                          status);
    if (code == CURLE_OPERATION_TIMEDOUT) {
        curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connect_us);
        if (connect_us == 0 && o->timeout_ms > NET_CONNECT_TIMEOUT_MS) {
            show_ms(NET_CONNECT_TIMEOUT_MS, t);
            return errmsg_set(err, ERR_INPUT_DOWNLOAD_FAILED,
                              "%s: no connection within %s", where, t);
        }
        show_ms(o->timeout_ms, t);
        return errmsg_set(err, ERR_INPUT_DOWNLOAD_FAILED,
                          "%s: no complete answer within %s", where, t);
    }
    if (code == CURLE_TOO_MANY_REDIRECTS)
        return errmsg_set(err, ERR_INPUT_DOWNLOAD_FAILED,
                          "%s: more than %d redirects", where,
                          o->max_redirects);
    if (code == CURLE_COULDNT_CONNECT) {
        curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
        return errmsg_set(err, ERR_INPUT_DOWNLOAD_FAILED,
                          "%s: could not connect (%s)", where,
                          os_errno ? strerror((int)os_errno) : "no address");
    }
    for (size_t i = 0; i < ARRAY_LEN(curl_failures); i++)
        if (curl_failures[i].code == code)
            return errmsg_set(err, curl_failures[i].err, "%s: %s", where,
                              curl_failures[i].what);
    /* curl_easy_strerror is a fixed text per code, never the URL. */
    return errmsg_set(err, ERR_INPUT_DOWNLOAD_FAILED, "%s: %s", where,
                      curl_easy_strerror(code));
}

static int fetch_http(struct fetch *f, const char *url, const char *shown,
                      struct errmsg *err)
{
    const struct net_fetch_opts *o = f->o;
    CURL *h = NULL;
    const char *failed = NULL; /* the option libcurl refused */
    CURLcode code;
    long status = 0;
    int rc = 0;

    h = curl_easy_init();
    if (!h) {
        rc = errmsg_set(err, ERR_INTERNAL, "curl_easy_init failed");
        goto out;
    }
#define SET(opt, value)                                             \
    do {                                                            \
        if (!failed && curl_easy_setopt(h, opt, value) != CURLE_OK) \
            failed = #opt;                                          \
    } while (0)
    SET(CURLOPT_URL, url);
    /* Only http and https, on the first request and after redirects. */
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, (long)o->max_redirects);
    /*
     * No proxy, whatever http_proxy/https_proxy/ALL_PROXY say: through a
     * proxy the guard would see the proxy's address only, and the proxy
     * would reach any private address on our behalf.
     */
    SET(CURLOPT_PROXY, "");
    SET(CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    SET(CURLOPT_OPENSOCKETDATA, f);
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, f);
    SET(CURLOPT_NOPROGRESS, 0L);
    SET(CURLOPT_XFERINFOFUNCTION, on_progress);
    SET(CURLOPT_XFERINFODATA, f);
    SET(CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)(o->timeout_ms < NET_CONNECT_TIMEOUT_MS
                                              ? o->timeout_ms
                                              : NET_CONNECT_TIMEOUT_MS));
    /* Fails early on a Content-Length over the cap; on_write counts the
     * rest. */
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_bytes);
    SET(CURLOPT_FAILONERROR, 1L);
    /* Worker threads: no SIGALRM around name resolution (main ignores
     * SIGPIPE for the whole process). */
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_USERAGENT, NET_USER_AGENT);
#undef SET
    if (failed) {
        rc = errmsg_set(err, ERR_INTERNAL, "libcurl refused %s", failed);
        goto out;
    }

    code = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (code != CURLE_OK || status < 200 || status > 299)
        rc = http_failure(f, h, code, shown, err);
out:
    curl_easy_cleanup(h);
    return rc;
}

/* ------------------------------------------------------------ the call */

int net_fetch(const char *url, const char *path, const struct net_fetch_opts *o,
              int64_t *size, struct errmsg *err)
{
    struct fetch f = { .o = o, .path = path, .fd = -1 };
    char shown[NET_URL_SHOW_SIZE];
    const char *payload = NULL;
    int rc = 0;

    *size = 0;
    if (!url || !path || !o || o->max_bytes <= 0 || o->timeout_ms <= 0 ||
        o->max_redirects < 0)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "net_fetch: missing url or path, or a limit <= 0");
    net_url_show(url, shown);

    /* Refuse what we will not fetch before touching the file. */
    if (has_prefix_ci(url, "data:")) {
        if (o->http_only)
            return errmsg_set(err, ERR_INVALID_URL,
                              "%s: a data: URI is accepted for images only",
                              shown);
        payload = data_payload(url);
        if (!payload)
            return errmsg_set(err, ERR_INVALID_URL,
                              "%s: a data: URI must be image/jpeg, image/png "
                              "or image/webp with ;base64",
                              shown);
    } else if (!has_prefix_ci(url, "http://") &&
               !has_prefix_ci(url, "https://")) {
        return errmsg_set(err, ERR_INVALID_URL,
                          "%s: only http, https and data:image URIs are "
                          "fetched",
                          shown);
    } else if (strlen(url) > LIMIT_URL_BYTES) {
        return errmsg_set(err, ERR_INVALID_URL,
                          "%s: the URL is longer than %d bytes", shown,
                          LIMIT_URL_BYTES);
    } else if (has_control(url)) {
        return errmsg_set(err, ERR_INVALID_URL,
                          "%s: whitespace or a control character in the URL",
                          shown);
    }
    if (stop_set(o))
        return errmsg_set(err, ERR_STOPPED, "%s: stopped", shown);

    /* O_NOFOLLOW: a symlink planted at `path` must not redirect the write. */
    f.fd =
        open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (f.fd < 0)
        return errmsg_set(err, ERR_IO, "creating %s: %s", path,
                          strerror(errno));
    rc = payload ? fetch_data(&f, payload, shown, err)
                 : fetch_http(&f, url, shown, err);
    if (close(f.fd) != 0 && rc == 0)
        rc = errmsg_set(err, ERR_IO, "writing %s: %s", path, strerror(errno));
    if (rc < 0)
        unlink(path);
    else
        *size = f.bytes;
    return rc;
}

int net_global_init(struct errmsg *err)
{
    CURLcode code = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (code != CURLE_OK)
        return errmsg_set(err, ERR_INTERNAL, "curl_global_init: %s",
                          curl_easy_strerror(code));
    /* The guard needs CURLOPT_PROTOCOLS_STR (7.85); fail at start-up, not
     * at the first fetch. */
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    if (v->version_num < 0x075500) {
        curl_global_cleanup();
        return errmsg_set(err, ERR_INTERNAL,
                          "libcurl %s is too old; paddock needs 7.85 or newer",
                          v->version);
    }
    return 0;
}

void net_global_fini(void)
{
    curl_global_cleanup();
}
