/*
 * http: the HTTP/1.1 front on libmicrohttpd. It knows requests and replies,
 * not tasks: it reads a request (headers, bounded body), gives it a request
 * id, calls one handler, and sends what the handler put in the reply (a
 * memory body or a file range, sent with sendfile).
 *
 * Mode: epoll with a pool of polling threads (one per core by default);
 * the handler runs on those threads, so it must not block for long.
 * Limits: the header block (LIMIT_HEADER_BYTES), the body (opts.body_limit;
 * larger bodies reach the handler early with req->too_large set and are not
 * read), an idle-connection timeout.
 *
 * Threads: the handler is called concurrently from every polling thread.
 * Ownership: a request and its body belong to http; the reply's body is
 * handed over with http_reply_take_body.
 */
#ifndef PADDOCK_HTTP_H
#define PADDOCK_HTTP_H

#include "../core/core.h"

#include <stdint.h>

struct http_server;
struct http_req;

#define HTTP_MAX_REPLY_HEADERS 8

struct http_reply {
    int status;
    const char *content_type; /* static string; NULL: no body type */
    char *body;               /* owned; sent for every method but HEAD */
    size_t body_len;
    int fd;          /* >= 0: send bytes [offset, offset+length) of fd */
    uint64_t offset; /* (http closes fd after sending) */
    uint64_t length;
    struct {
        const char *name; /* static */
        char *value;      /* owned */
    } headers[HTTP_MAX_REPLY_HEADERS];
    size_t n_headers;
};

/* Called once per request: when the body is complete, or early with
 * http_req_too_large() or http_req_stopping() true. Fill *rep; status 0
 * is answered 500. */
typedef void (*http_handler)(void *arg, struct http_req *req,
                             struct http_reply *rep);

struct http_opts {
    const char *host; /* numeric IPv4 or IPv6 address */
    int port;         /* 0: an ephemeral port (see http_port) */
    int threads;      /* polling threads */
    int64_t body_limit;
    int conn_timeout_s;
};

/* Bind and listen (nothing is answered yet); 0, or ERR_IO /
 * ERR_INVALID_PARAMETER with a message in *err. */
int http_listen(const struct http_opts *opts, struct http_server **out,
                struct errmsg *err);
/* Start answering with `handler`; 0 or ERR_IO. */
int http_serve(struct http_server *srv, http_handler handler, void *arg,
               struct errmsg *err);
/* The port actually bound (known after http_listen). */
int http_port(const struct http_server *srv);
/* Answer new requests 503 at once, let requests in flight finish, close
 * connections, join the threads, close the socket. false: requests were
 * still in flight after the drain time; nothing was stopped or freed, and
 * the caller must not free what handlers use (exit instead). NULL is
 * fine. */
bool http_stop(struct http_server *srv);

/* ---------------------------------------------------------- requests */

const char *http_req_method(const struct http_req *req);
/* The path, percent-decoded by MHD, without the query string. */
const char *http_req_path(const struct http_req *req);
/* A header's value (case-insensitive name), or NULL. */
const char *http_req_header(const struct http_req *req, const char *name);
/* A query argument's value, or NULL. */
const char *http_req_query(const struct http_req *req, const char *name);
const char *http_req_body(const struct http_req *req, size_t *len);
/* True when the declared or received body exceeded the limit. */
bool http_req_too_large(const struct http_req *req);
/* True when the request began after http_stop: answer it at once (503),
 * never deferred; its connection is closed after the answer. */
bool http_req_stopping(const struct http_req *req);
/* The request's uuid v4 (also sent as the X-Request-Id header). */
const char *http_req_id(const struct http_req *req);
bool http_req_is_head(const struct http_req *req);

/* ------------------------------------------------------------ replies */

/* Body from a buffer (taken: the buffer is left empty). */
void http_reply_take_body(struct http_reply *rep, int status,
                          const char *content_type, struct buf *body);
/*
 * Answer later: the handler fills nothing now and returns; the connection
 * then waits without holding a thread. Whoever holds the handle fills the
 * reply (the same rep pointer, still valid) and calls http_resume once,
 * from any thread. Until then the request stays in flight (http_stop
 * waits for it).
 */
struct http_defer;
struct http_defer *http_reply_defer(struct http_reply *rep);
void http_resume(struct http_defer *d);
/* Add a header; the value is copied. Extra headers past the limit drop. */
void http_reply_header(struct http_reply *rep, const char *name,
                       const char *value);

#endif
