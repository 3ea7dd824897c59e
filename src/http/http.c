/* The libmicrohttpd front: read a bounded request, call the handler once. */
#include "http.h"

#include "../log/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

struct http_server {
    struct MHD_Daemon *daemon;
    http_handler handler;
    void *arg;
    struct http_opts opts;
    int fd; /* the listening socket, ours to close */
    int port;
    /* Requests begun before http_stop and not yet completed; those that
     * begin after it (`late`) are answered at once and not counted. */
    atomic_int inflight;
    atomic_bool stopping; /* http_stop has begun */
};

/* How long http_stop lets requests in progress finish: longer than the
 * store's own time limits, so a deferred submit always gets its answer. */
#define DRAIN_MS 30000

struct http_req {
    struct http_reply rep; /* filled by the handler, now or later */
    struct MHD_Connection *conn;
    const char *method; /* MHD's, valid for the request */
    char *path;
    char id[UUID_STR_LEN + 1];
    struct buf body;
    bool too_large;
    bool late; /* begun after http_stop: http_req_stopping() */
    bool answered;
    /* A deferred reply (http_reply_defer): the connection is suspended
     * until http_resume; the lock orders suspend before resume whichever
     * thread gets there first. */
    pthread_mutex_t lock;
    bool deferred, suspended, ready;
};

const char *http_req_method(const struct http_req *req)
{
    return req->method;
}

const char *http_req_path(const struct http_req *req)
{
    return req->path;
}

const char *http_req_header(const struct http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_req_query(const struct http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_req_body(const struct http_req *req, size_t *len)
{
    *len = req->body.len;
    return req->body.data ? req->body.data : "";
}

bool http_req_too_large(const struct http_req *req)
{
    return req->too_large;
}

bool http_req_stopping(const struct http_req *req)
{
    return req->late;
}

const char *http_req_id(const struct http_req *req)
{
    return req->id;
}

bool http_req_is_head(const struct http_req *req)
{
    return strcmp(req->method, MHD_HTTP_METHOD_HEAD) == 0;
}

void http_reply_take_body(struct http_reply *rep, int status,
                          const char *content_type, struct buf *body)
{
    free(rep->body);
    rep->status = status;
    rep->content_type = content_type;
    rep->body_len = body->len;
    rep->body = buf_take(body);
}

void http_reply_header(struct http_reply *rep, const char *name,
                       const char *value)
{
    if (rep->n_headers >= HTTP_MAX_REPLY_HEADERS) {
        log_warn("reply header dropped", "name=%s", name);
        return;
    }
    rep->headers[rep->n_headers].name = name;
    rep->headers[rep->n_headers].value = xstrdup(value);
    rep->n_headers++;
}

static void reply_fini(struct http_reply *rep)
{
    free(rep->body);
    for (size_t i = 0; i < rep->n_headers; i++)
        free(rep->headers[i].value);
    if (rep->fd >= 0)
        close(rep->fd);
}

/* Queue req->rep as the response. */
static enum MHD_Result queue_reply(struct http_req *req)
{
    struct http_reply *rep = &req->rep;
    struct MHD_Response *resp = NULL;
    enum MHD_Result ret = MHD_NO;

    if (rep->status == 0) {
        log_error("handler gave no status", "path=%s request_id=%s", req->path,
                  req->id);
        rep->status = 500;
    }
    if (rep->fd >= 0) {
        resp = MHD_create_response_from_fd_at_offset64(rep->length, rep->fd,
                                                       rep->offset);
        if (resp)
            rep->fd = -1; /* MHD closes it with the response */
    } else {
        resp = MHD_create_response_from_buffer(rep->body_len, rep->body,
                                               MHD_RESPMEM_MUST_FREE);
        if (resp)
            rep->body = NULL; /* MHD frees it with the response */
    }
    if (!resp)
        goto out;
    MHD_add_response_header(resp, "X-Request-Id", req->id);
    if (rep->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                rep->content_type);
    for (size_t i = 0; i < rep->n_headers; i++)
        MHD_add_response_header(resp, rep->headers[i].name,
                                rep->headers[i].value);
    ret = MHD_queue_response(req->conn, (unsigned)rep->status, resp);
    MHD_destroy_response(resp);
out:
    reply_fini(rep);
    *rep = (struct http_reply){ .fd = -1 };
    return ret;
}

/* Run the handler; queue its reply, or suspend until http_resume. */
static enum MHD_Result answer(struct http_server *srv, struct http_req *req)
{
    req->answered = true;
    srv->handler(srv->arg, req, &req->rep);
    if (!req->deferred)
        return queue_reply(req);
    pthread_mutex_lock(&req->lock);
    bool ready = req->ready;
    if (!ready) {
        req->suspended = true;
        MHD_suspend_connection(req->conn);
    }
    pthread_mutex_unlock(&req->lock);
    return ready ? queue_reply(req) : MHD_YES;
}

struct http_defer *http_reply_defer(struct http_reply *rep)
{
    struct http_req *req = container_of(rep, struct http_req, rep);
    req->deferred = true;
    return (struct http_defer *)req;
}

void http_resume(struct http_defer *d)
{
    struct http_req *req = (struct http_req *)d;
    pthread_mutex_lock(&req->lock);
    req->ready = true;
    if (req->suspended)
        MHD_resume_connection(req->conn);
    pthread_mutex_unlock(&req->lock);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct http_server *srv = cls;
    struct http_req *req = *con_cls;
    (void)version;

    if (!req) {
        req = xcalloc(1, sizeof(*req));
        /* Counted first, then the flag read (both sequentially consistent):
         * http_stop either waits for this request or it sees the flag. */
        atomic_fetch_add(&srv->inflight, 1);
        req->late = atomic_load(&srv->stopping);
        if (req->late)
            atomic_fetch_sub(&srv->inflight, 1);
        req->rep.fd = -1;
        pthread_mutex_init(&req->lock, NULL);
        req->conn = conn;
        req->method = method;
        req->path = xstrdup(url);
        id_uuid4(req->id);
        *con_cls = req;
        if (req->late) /* shutting down: answered now, body unread */
            return answer(srv, req);
        const char *cl = MHD_lookup_connection_value(
            conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        int64_t declared;
        if (cl && parse_i64(cl, 0, INT64_MAX, &declared) == 0 &&
            declared > srv->opts.body_limit) {
            /* Answer before reading: MHD then closes the connection
             * instead of draining a body we would throw away. */
            req->too_large = true;
            return answer(srv, req);
        }
        return MHD_YES;
    }
    if (req->answered) {
        /* Resumed: answer now. The lock also waits until http_resume has
         * let go of req, which may be freed soon after the answer. */
        pthread_mutex_lock(&req->lock);
        bool resumed = req->suspended && req->ready;
        if (resumed)
            req->suspended = false;
        pthread_mutex_unlock(&req->lock);
        if (resumed)
            return queue_reply(req);
        *upload_size = 0; /* too large: discard what still arrives */
        return MHD_YES;
    }
    if (*upload_size) {
        if ((int64_t)(req->body.len + *upload_size) > srv->opts.body_limit) {
            req->too_large = true;
            buf_fini(&req->body);
            *upload_size = 0;
            return answer(srv, req);
        }
        buf_append(&req->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    return answer(srv, req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode why)
{
    struct http_server *srv = cls;
    struct http_req *req = *con_cls;
    (void)conn, (void)why;
    if (!req)
        return;
    if (!req->late)
        atomic_fetch_sub(&srv->inflight, 1);
    reply_fini(&req->rep);
    pthread_mutex_destroy(&req->lock);
    buf_fini(&req->body);
    free(req->path);
    free(req);
    *con_cls = NULL;
}

/* Percent-decoding of paths and query values, in place, except "%00": a
 * NUL would cut the C string short and make "/tasks/%00" look like
 * "/tasks/", another route. It stays literal. */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls, (void)conn;
    char *w = s;
    for (const char *r = s; *r; r++) {
        int hi, lo;
        if (r[0] == '%' && (hi = hex_value(r[1])) >= 0 &&
            (lo = hex_value(r[2])) >= 0 && (hi | lo) != 0) {
            *w++ = (char)(hi * 16 + lo);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct buf b = BUF_INIT;
    (void)cls;
    buf_vprintf(&b, fmt, ap);
    while (b.len && b.data[b.len - 1] == '\n')
        b.data[--b.len] = '\0';
    log_write(LOG_WARN, "libmicrohttpd", "detail=\"%s\"", b.data);
    buf_fini(&b);
}

int http_listen(const struct http_opts *opts, struct http_server **out,
                struct errmsg *err)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, opts->host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)opts->port);
        len = sizeof(*v4);
    } else if (inet_pton(AF_INET6, opts->host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)opts->port);
        len = sizeof(*v6);
    } else {
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "listen: '%s' is not a numeric IPv4 or IPv6 "
                          "address",
                          opts->host);
    }
    int one = 1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 1024) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        return errmsg_set(err, ERR_IO, "cannot listen on %s:%d: %s", opts->host,
                          opts->port, strerror(saved));
    }
    struct http_server *srv = xcalloc(1, sizeof(*srv));
    srv->fd = fd;
    srv->opts = *opts;
    srv->port = ntohs(ss.ss_family == AF_INET ? v4->sin_port : v6->sin6_port);
    *out = srv;
    return 0;
}

int http_serve(struct http_server *srv, http_handler handler, void *arg,
               struct errmsg *err)
{
    const struct http_opts *o = &srv->opts;
    /* As many connections as descriptors allow, less a reserve for the
     * store, files being served and fetches. */
    struct rlimit rl;
    unsigned conn_limit = 1000;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 256)
        conn_limit = (unsigned)(rl.rlim_cur - 128 < LIMIT_CONNECTIONS
                                    ? rl.rlim_cur - 128
                                    : LIMIT_CONNECTIONS);
    srv->handler = handler;
    srv->arg = arg;
    srv->daemon = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC |
            MHD_ALLOW_SUSPEND_RESUME,
        0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
        srv, MHD_OPTION_LISTEN_SOCKET, srv->fd, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)o->threads, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)LIMIT_HEADER_BYTES, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)o->conn_timeout_s, MHD_OPTION_CONNECTION_LIMIT, conn_limit,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_END);
    if (!srv->daemon)
        return errmsg_set(err, ERR_IO, "cannot start the HTTP server on %s:%d",
                          o->host, srv->port);
    srv->fd = -1; /* MHD closes the listening socket when it stops */
    return 0;
}

int http_port(const struct http_server *srv)
{
    return srv->port;
}

bool http_stop(struct http_server *srv)
{
    if (!srv)
        return true;
    if (srv->daemon) {
        /* New requests are answered at once (503, the handler sees
         * http_req_stopping) and close their connection; those in
         * progress finish (a deferred reply waits for its commit: bounded
         * by the store's timeouts); then MHD stops and closes the socket.
         * Not MHD_quiesce_daemon: with epoll and a thread pool it races
         * its own threads for the listen socket and can abort the process
         * (libmicrohttpd 0.9.75, "Failed to remove listen FD from epoll
         * set"). */
        atomic_store(&srv->stopping, true);
        for (int waited = 0;
             atomic_load(&srv->inflight) > 0 && waited < DRAIN_MS; waited += 10)
            nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
        if (atomic_load(&srv->inflight) > 0) {
            /* Stopping MHD with suspended connections is undefined, and
             * their completions would touch freed state: leave it all. */
            log_error("requests still in flight at shutdown",
                      "count=%d waited_ms=%d", atomic_load(&srv->inflight),
                      DRAIN_MS);
            return false;
        }
        MHD_stop_daemon(srv->daemon);
    }
    if (srv->fd >= 0)
        close(srv->fd);
    free(srv);
    return true;
}
