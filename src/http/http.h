/*
 * http: paddock's HTTP/1.1 front, on epoll. It knows requests and replies,
 * not tasks: it reads a request head, checks its framing, asks the admit
 * hook what the request may send, reads the body within that (into memory
 * or through a sink), calls the handler, and sends what the handler put
 * in the reply (a memory body or a file range, sent with sendfile).
 *
 * Why our own and not libmicrohttpd (docs/architecture.md, "http/"): a
 * key must be checked before a body byte is held; ambiguous framing
 * (two Content-Lengths, Content-Length with chunked, "Host : x") must be
 * refused before a handler runs; a malformed length or an over-long
 * chunked body must get the API's JSON error, not a library's page; and an
 * idle keep-alive connection must cost a few hundred bytes, not a pool.
 *
 * Framing (RFC 9112): origin-form or absolute-form targets, HTTP/1.0 and
 * 1.1, keep-alive and pipelining (one request at a time per connection),
 * Content-Length or chunked request bodies (trailers read and dropped),
 * Expect: 100-continue. Responses carry Content-Length, but for a streamed
 * reply (http_reply_stream), whose body ends with the connection.
 * Refused with 400 and Connection: close: a malformed request line or
 * header, whitespace before a colon, obs-fold, control bytes, a missing or
 * repeated Host on HTTP/1.1, differing Content-Lengths, Content-Length
 * with Transfer-Encoding, a bad chunk. 501 for a transfer coding other
 * than chunked, 505 for another HTTP version, 431 for a head over
 * LIMIT_HEADER_BYTES, 413 for a body over its limit.
 *
 * Memory: a connection holds no buffer while idle; a body is held in
 * memory only after admit accepted it, charged against a process-wide cap
 * (opts.body_memory) and the request's tenant's share of it; past either
 * the request is answered (HTTP_FAULT_BUSY) without reading further.
 *
 * Threads: opts.threads loop threads, each with its own epoll set and its
 * own connections; admit and the handler run on the loop thread of the
 * request's connection, so they must not block for long. A deferred reply
 * is resumed from any thread.
 * Ownership: a request and its body belong to http; the reply's body is
 * handed over with http_reply_take_body, its fd with the reply.
 */
#ifndef PADDOCK_HTTP_H
#define PADDOCK_HTTP_H

#include "../core/core.h"

#include <stdint.h>

struct http_server;
struct http_req;

#define HTTP_MAX_REPLY_HEADERS 10
/* Bytes a request's admit and handler may keep with it (http_req_user). */
#define HTTP_REQ_USER_BYTES 160

struct http_reply {
    int status;
    const char *content_type; /* static string; NULL: no body type */
    char *body;               /* owned; sent for every method but HEAD */
    size_t body_len;
    int fd;          /* >= 0: send bytes [offset, offset+length) of fd */
    uint64_t offset; /* (http closes fd after sending) */
    uint64_t length;
    /* A file body at most this many bytes a second (0: as fast as the
     * socket takes it). The connection waits between pieces on its loop's
     * timers, holding no thread. */
    uint64_t rate;
    struct {
        const char *name; /* static */
        char *value;      /* owned */
    } headers[HTTP_MAX_REPLY_HEADERS];
    size_t n_headers;
};

/*
 * Why http answers a request itself, through the handler: the handler
 * sees http_req_fault() != HTTP_FAULT_NONE and should write the error in
 * its own shape; the connection is closed after the answer.
 */
enum http_fault {
    HTTP_FAULT_NONE,
    HTTP_FAULT_MALFORMED, /* 400: bad request line, header or chunk */
    HTTP_FAULT_FRAMING,   /* 400: ambiguous or conflicting framing */
    HTTP_FAULT_LENGTH,    /* 400: Content-Length is not a number */
    HTTP_FAULT_HEAD_SIZE, /* 431: the head is over LIMIT_HEADER_BYTES */
    HTTP_FAULT_TOO_LARGE, /* 413: the body is over its limit */
    HTTP_FAULT_CODING,    /* 501: a transfer coding other than chunked */
    HTTP_FAULT_VERSION,   /* 505: not HTTP/1.0 or 1.1 */
    HTTP_FAULT_BUSY,      /* 503: bodies held in memory are at the cap */
    HTTP_FAULT_TENANT,    /* 429: this tenant's share of that cap is used */
    HTTP_FAULT_SINK,      /* 500: the body sink failed */
};

/*
 * Called once the head is in and well-formed, before any body byte is
 * read. It may answer now (fill *rep: the body is then never read, and
 * the connection closes if one was coming), or let the body come, within
 * http_req_set_body_limit and through http_req_set_sink if set.
 */
typedef void (*http_admit)(void *arg, struct http_req *req,
                           struct http_reply *rep);
/* Called once per request admit did not answer: when the body is
 * complete, or early with http_req_fault() or http_req_stopping() set.
 * Fill *rep; status 0 is answered 500. */
typedef void (*http_handler)(void *arg, struct http_req *req,
                             struct http_reply *rep);

struct http_opts {
    const char *host;     /* numeric IPv4 or IPv6 address */
    int port;             /* 0: an ephemeral port (see http_port) */
    int threads;          /* loop threads */
    int64_t body_limit;   /* a request's body, unless admit says otherwise */
    int64_t body_memory;  /* request bodies held at once, all connections */
    int64_t tenant_share; /* of which one tenant may hold (0: no share) */
    int conn_timeout_s;   /* idle, and the whole head, per connection */
};

/* Bind and listen (nothing is answered yet); 0, or ERR_IO /
 * ERR_INVALID_PARAMETER with a message in *err. */
int http_listen(const struct http_opts *opts, struct http_server **out,
                struct errmsg *err);
/* Start answering: admit (may be NULL: every body within body_limit is
 * read) and handler, with `arg`. 0 or ERR_IO. */
int http_serve(struct http_server *srv, http_admit admit, http_handler handler,
               void *arg, struct errmsg *err);
/* The port actually bound (known after http_listen). */
int http_port(const struct http_server *srv);
/* Answer new requests at once (http_req_stopping), close idle
 * connections, let requests in flight finish, then close everything and
 * join the threads. false: requests were still in flight after the drain
 * time; nothing was stopped or freed, and the caller must not free what
 * handlers use (exit instead). NULL is fine. */
bool http_stop(struct http_server *srv);

/* ---------------------------------------------------------- requests */

const char *http_req_method(const struct http_req *req);
/* The path, percent-decoded ("%00" stays literal), without the query. */
const char *http_req_path(const struct http_req *req);
/* A header's value (case-insensitive name; the first of repeats), or
 * NULL. Leading and trailing whitespace is not part of a value. */
const char *http_req_header(const struct http_req *req, const char *name);
/* A query argument's value, percent-decoded ('+' is a space), or NULL;
 * an argument without '=' has the value "". */
const char *http_req_query(const struct http_req *req, const char *name);
/* The body held in memory ("" when none, or when a sink took it). */
const char *http_req_body(const struct http_req *req, size_t *len);
/* Bytes of body received (into memory or the sink). */
int64_t http_req_body_received(const struct http_req *req);
/* The declared Content-Length, or -1 (none, or chunked). */
int64_t http_req_content_length(const struct http_req *req);
/* Why http answers this request itself, or HTTP_FAULT_NONE. */
enum http_fault http_req_fault(const struct http_req *req);
/* A short reason for the fault ("two different Content-Length headers"),
 * or "". */
const char *http_req_fault_text(const struct http_req *req);
/* True when the request began after http_stop: answer it at once (503),
 * never deferred; its connection is closed after the answer. */
bool http_req_stopping(const struct http_req *req);
/* The request's uuid v4 (also sent as the X-Request-Id header). */
const char *http_req_id(const struct http_req *req);
/* HTTP_REQ_USER_BYTES of zeroed storage that lives as long as the
 * request: what admit learned (the route, the key) for the handler. */
void *http_req_user(struct http_req *req);

/* From admit only. The most body bytes this request may send. */
void http_req_set_body_limit(struct http_req *req, int64_t max);
/* The body limit in force (the server's, or what admit set). */
int64_t http_req_body_limit(const struct http_req *req);
/* From admit only. Charge this request's memory body to `tenant` (up to
 * 64 bytes are significant; copied). */
void http_req_set_tenant(struct http_req *req, const char *tenant);
/*
 * From admit only. Send the body to `write` as it arrives instead of
 * holding it (nothing is charged): 0, or < 0 to stop (the handler then
 * sees HTTP_FAULT_SINK). `end` is called once, whatever happened: as
 * soon as the handler returns (before its reply is sent; with a deferred
 * reply, when the request ends), or when the request ends without one (a
 * disconnect, an answer from admit).
 */
struct http_sink {
    int (*write)(void *arg, const void *data, size_t len);
    void (*end)(void *arg);
    void *arg;
};
void http_req_set_sink(struct http_req *req, const struct http_sink *sink);

/* ------------------------------------------------------------ replies */

/* Body from a buffer (taken: the buffer is left empty). */
void http_reply_take_body(struct http_reply *rep, int status,
                          const char *content_type, struct buf *body);
/* Add a header; the value is copied. Extra headers past the limit drop. */
void http_reply_header(struct http_reply *rep, const char *name,
                       const char *value);
/*
 * A file as the reply, per RFC 9110: fd (taken: closed by http) of `size`
 * bytes; a single "bytes=" Range answers 206 with Content-Range, one past
 * the end 416 (returns ERR_RANGE and fills nothing but Content-Range: the
 * caller writes the error body), other ranges the whole file;
 * If-None-Match equal to `etag` answers 304. HEAD sends the headers only.
 * Accept-Ranges and ETag (`etag` is quoted here) are set.
 */
int http_reply_file(struct http_req *req, struct http_reply *rep, int fd,
                    uint64_t size, const char *content_type, const char *etag);
/* Does an If-None-Match value (NULL: none) hold the quoted ETag `quoted`,
 * weakly compared, or "*"? */
bool http_etag_matches(const char *inm, const char *quoted);
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

/*
 * A streamed reply (Server-Sent Events): from the handler, instead of a
 * body. The head goes out with `status` and `content_type` (the handler
 * may add headers to rep) and no Content-Length: the body is everything
 * written until the stream ends, then the connection closes. The returned
 * handle is the caller's until http_stream_end; the stream is no longer a
 * request in flight (http_stop does not wait for it: the loops close it).
 * Threads: write and end from any thread; the connection's loop sends,
 * woken through its eventfd, holding no thread while the stream is quiet.
 * Backpressure: at most max_pending bytes may wait unsent; a write past
 * that cuts the stream (ERR_TOO_LARGE; the connection closes) rather than
 * hold more for a client that does not read.
 */
struct http_stream;
struct http_stream_opts {
    size_t max_pending; /* 0: 64 KiB */
    /* The longest the stream may go without a write before http closes
     * its connection (0: 60 s); writes keep-alive comments more often. The
     * same value for every stream of a server (its timeouts are swept in
     * order). */
    int64_t idle_ms;
    /* Called once, on a loop thread, when the connection goes away before
     * http_stream_end (the client left, a timeout, the server stops); it
     * must not block, and runs with the stream's lock held: it must not
     * call http_stream_* itself. Once http_stream_end returns it is not
     * running and never will. The handle stays valid: end it still. */
    void (*gone)(void *arg);
    void *arg;
};
struct http_stream *http_reply_stream(struct http_req *req,
                                      struct http_reply *rep, int status,
                                      const char *content_type,
                                      const struct http_stream_opts *opts);
/* Queue bytes (copied): 0; ERR_STOPPED when the stream is over (ended,
 * its client gone); ERR_TOO_LARGE when it was cut for backpressure. */
int http_stream_write(struct http_stream *s, const void *data, size_t len);
/* False once a write cannot succeed (the client gone, cut, ended). */
bool http_stream_open(struct http_stream *s);
/* Send what was written, then close; the handle is released (NULL is
 * fine). Exactly once per handle. */
void http_stream_end(struct http_stream *s);

/* ------------------------------------------------------------ parsing */

/*
 * The request-head parser, on its own for tests and fuzzing: parse the
 * head in buf[0, len) (ending with an empty line; the bytes are modified
 * in place: NULs end names and values). 0 and *head filled, or an
 * enum http_fault with *why set to a static reason.
 */
#define HTTP_MAX_HEADERS 100
#define HTTP_MAX_QUERY   64
struct http_head {
    const char *method, *target, *path, *query; /* query: raw, or NULL */
    int minor;                                  /* HTTP/1.minor */
    size_t n;
    int64_t content_length; /* -1: none */
    bool chunked, keep_alive, expect_continue;
    struct {
        const char *name, *value;
    } h[HTTP_MAX_HEADERS]; /* last: only h[0, n) is ever set */
};
int http_parse_head(char *buf, size_t len, struct http_head *head,
                    const char **why);
/* Percent-decode in place ("%00" stays literal; with `plus`, '+' is a
 * space); returns the new length. */
size_t http_unescape(char *s, bool plus);

/* -------------------------------------------------------------- forms */

/*
 * A streaming multipart/form-data parser (RFC 7578 over RFC 2046 s5.1),
 * pure: no I/O, no allocation, on the caller's storage. Feed a body in
 * pieces of any size (a boundary may be split across them). Each part's
 * head is read whole (at most HTTP_FORM_HEAD_MAX bytes) and handed to
 * `part`, which says what to do with its body: collect it (a field, at
 * most HTTP_FORM_VALUE_MAX bytes, handed to `end` whole), stream it to
 * `data` as it comes (a file: never held), or skip it. A preamble, an
 * epilogue and transport padding after a boundary are ignored.
 *
 * A part's head must hold Content-Disposition: form-data with a non-empty
 * name (token or quoted-string; "\x" in quotes is x, %22 is left as
 * sent); Content-Type is reported; other headers are ignored. Lines end
 * with CRLF.
 *
 * Errors: ERR_INVALID_PARAMETER (not well-formed), ERR_TOO_LARGE (a head
 * or a collected value over its bound), with a static reason in
 * http_form_why(); or the negative value a callback returned. After an
 * error the parser takes nothing more and returns it again.
 */
#define HTTP_FORM_BOUNDARY_MAX 70 /* RFC 2046's own bound */
/* A part's head: Content-Disposition with a file name of up to 255 bytes,
 * and a Content-Type, with room to spare. */
#define HTTP_FORM_HEAD_MAX 1024
/* A collected field: an OSS policy (base64 JSON) is a few hundred bytes,
 * an object key at most 1023. */
#define HTTP_FORM_VALUE_MAX 4096

enum http_form_mode {
    HTTP_FORM_COLLECT, /* hold the body, hand it to end() */
    HTTP_FORM_STREAM,  /* pass the body to data() as it comes */
    HTTP_FORM_SKIP,    /* drop the body */
};

struct http_form_part {
    const char *name;     /* Content-Disposition's name */
    const char *filename; /* its filename (or raw filename*), or NULL */
    const char *type;     /* Content-Type, or NULL */
};

struct http_form_ops {
    /* A part's head is in: an enum http_form_mode, or < 0 to stop. The
     * part's strings live until its end() returns. */
    int (*part)(void *arg, const struct http_form_part *p);
    /* Bytes of a streamed part (n > 0): 0, or < 0 to stop. */
    int (*data)(void *arg, const void *d, size_t n);
    /* The part is over: a collected part's value (n bytes, NUL after
     * them; it may hold NULs), else NULL and 0. 0, or < 0 to stop. */
    int (*end)(void *arg, const struct http_form_part *p, const char *value,
               size_t n);
};

struct http_form {
    const struct http_form_ops *ops;
    void *arg;
    int state, sub, err, mode;
    const char *why;
    char delim[4 + HTTP_FORM_BOUNDARY_MAX + 1]; /* CRLF "--" boundary */
    size_t dlen, match; /* delimiter bytes seen and held back */
    size_t parts;       /* parts begun */
    struct http_form_part part;
    char head[HTTP_FORM_HEAD_MAX + 1];
    size_t head_len;
    char value[HTTP_FORM_VALUE_MAX + 1];
    size_t value_len;
};

/* Start on a body of Content-Type `content_type` (its boundary parameter,
 * quoted or not). 0, or ERR_INVALID_PARAMETER when it is not
 * multipart/form-data with a valid boundary (reason in http_form_why). */
int http_form_init(struct http_form *f, const char *content_type,
                   const struct http_form_ops *ops, void *arg);
/* The next n bytes of the body: 0 or an error (above). */
int http_form_feed(struct http_form *f, const void *data, size_t n);
/* The body is over: 0 when the closing boundary came, else
 * ERR_INVALID_PARAMETER (or the earlier error). */
int http_form_finish(struct http_form *f);
/* Why the form was refused, or "". */
const char *http_form_why(const struct http_form *f);
/* Parts whose head was read so far. */
size_t http_form_parts(const struct http_form *f);

#endif
