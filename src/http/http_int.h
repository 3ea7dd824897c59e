/*
 * http internals shared by server.c and reply.c: the request as the
 * connection machine keeps it. Not for other modules.
 */
#ifndef PADDOCK_HTTP_INT_H
#define PADDOCK_HTTP_INT_H

#include "http.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

/* A loop's scratch buffer for reads: a request that arrives whole is
 * parsed from it, so an idle connection keeps no buffer of its own. */
#define READ_BYTES (64u << 10)
/* How long http_stop lets requests in progress finish: longer than the
 * store's own time limits, so a deferred submit always gets its answer. */
#define DRAIN_MS 30000
/* After an answer sent before the body was read: how long the unread
 * bytes are drained, so the peer reads the answer instead of a reset. */
#define LINGER_MS 2000
/* A chunk-size line, and a chunked body's trailer section. */
#define CHUNK_LINE_MAX 1024
#define TRAILER_MAX    4096
/* Tenants with body bytes in memory at once (a fixed, probed table). */
#define TENANT_SLOTS 1024
#define TENANT_PROBE 16
#define EVENTS_MAX   256

enum cstate { C_HEAD, C_BODY, C_HANDLE, C_WRITE, C_LINGER, C_STREAM };
enum kstate { K_SIZE, K_DATA, K_DATA_END, K_TRAILER };

struct tlist {
    struct http_conn *first, *last;
};

struct loop {
    struct http_server *srv;
    int ep, wake;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock; /* guards resumed, and every req->parked/ready */
    struct http_req *resumed;
    struct tlist idle, linger;   /* timeout lists, in deadline order */
    struct tlist paced;          /* paced replies waiting (any order) */
    struct tlist streams;        /* streamed replies waiting for a write */
    struct http_stream *streamq; /* streams with news (under lock) */
    bool stream_news;            /* woken: look at streamq after the batch */
    char rbuf[READ_BYTES];
    struct buf obuf; /* a reply's head is built here */
    time_t date_s;
    char date[48];
    bool listening; /* the listen socket is in this loop's set */
};

struct http_conn {
    int fd;
    struct loop *loop;
    enum cstate state;
    struct http_conn *prev, *next; /* on idle or linger */
    struct tlist *list;
    int64_t deadline_ms;
    char *in; /* received, not consumed: a partial head, pipelined bytes */
    size_t in_len, in_cap;
    size_t scan; /* the head-end search resumes here */
    bool head_begun;
    struct http_req *req;
    int64_t remaining; /* Content-Length body: to come; chunked: of chunk */
    enum kstate k;
    size_t trailer_bytes;
    bool close_after, linger, closing, pending_input;
    bool in_epoll;
    uint32_t events;
    /* The reply being written: its head (in the loop's obuf, or copied
     * into out when the socket blocks) and how far each part went. */
    const char *hdr;
    size_t hdr_len, hdr_off;
    struct buf out;
    uint64_t body_off;
    bool send_body;
    int64_t body_t0; /* when the body began (a paced reply's clock) */
};

struct http_tenant {
    char name[65];
    int64_t held;
};

struct http_server {
    struct http_opts opts;
    http_admit admit;
    http_handler handler;
    void *arg;
    int fd;
    int port;
    unsigned conn_limit;
    struct loop *loops;
    int n_loops;
    atomic_int inflight; /* requests begun before http_stop, not ended */
    atomic_int conns;
    atomic_bool stopping, quit;
    atomic_llong held; /* body bytes in memory, all requests */
    pthread_mutex_t tenant_lock;
    struct http_tenant tenants[TENANT_SLOTS];
};

struct http_req {
    struct http_reply rep; /* filled by admit or the handler */
    struct http_conn *conn;
    size_t n_args;
    char id[UUID_STR_LEN + 1];
    enum http_fault fault;
    const char *fault_why; /* static */
    bool late;             /* began after http_stop */
    bool counted;          /* in srv->inflight */
    bool deferred;         /* http_reply_defer was called */
    bool ready;            /* http_resume was called */
    bool parked;           /* the handler returned with the reply deferred */
    struct http_stream *stream; /* http_reply_stream was called */
    int64_t body_limit;
    struct buf body;  /* the memory body */
    int64_t received; /* body bytes in (memory or sink) */
    int64_t charged;  /* of them, charged to the caps */
    char tenant[65];  /* "" : none */
    struct http_sink sink;
    bool has_sink, sink_failed;
    struct http_req *next; /* on a loop's resumed list */
    /* Last, and not zeroed (3 KB a request): the parser sets head's
     * fields and the first head.n of head.h, the first n_args of args. */
    struct http_head head; /* points into hbuf */
    struct {
        char *name, *value;
    } args[HTTP_MAX_QUERY];
    _Alignas(max_align_t) unsigned char user[HTTP_REQ_USER_BYTES];
    char hbuf[]; /* the head's bytes, NUL-split by the parser */
};

/* req.c: the memory caps. Charge n more body bytes of req: 0 or the
 * fault (HTTP_FAULT_BUSY, HTTP_FAULT_TENANT). */
enum http_fault http_req_charge(struct http_req *req, int64_t n);
/* Drop the memory body and give back what it was charged. */
void http_req_release_body(struct http_req *req);
/* Split the query string into decoded arguments. */
void http_req_parse_args(struct http_req *req);

/* conn.c: the connection machine, driven by the loop (server.c). */
/* A new connection on fd (accepted, non-blocking) in loop l; NULL when it
 * could not be watched (fd closed). */
struct http_conn *http_conn_open(struct loop *l, int fd);
/* Its socket is readable (or hung up) / writable. */
void http_conn_readable(struct http_conn *c);
void http_conn_writable(struct http_conn *c);
/* A deferred reply is ready (on_wake): send it. */
void http_conn_resumed(struct http_conn *c);
/* Work through bytes already received (pipelined requests). */
void http_conn_drive(struct http_conn *c);
/* Close and free (releasing its request). */
void http_conn_free(struct http_conn *c);
/* Send the next piece of every paced reply of l whose time has come; the
 * loop waits at most PACE_TICK_MS while any waits. */
void http_conn_pace(struct loop *l, int64_t now);
#define PACE_TICK_MS 50

/* stream.c: streamed replies. The next piece of c's stream loaded as
 * its reply body: 1; 0: none yet (wait); -1: the stream is over. */
int http_stream_next(struct http_conn *c);
/* How long a stream may stay quiet before its connection is closed. */
int64_t http_stream_idle_ms(const struct http_stream *s);
/* The stream's connection is being freed (its `gone`, then its ref). */
void http_stream_closed(struct http_stream *s);
/* Send what the streams of l queued since (on_wake; after the loop's
 * connections are freed, it only lets the queued handles go). */
void http_stream_wake(struct loop *l);

/* reply.c: the status line of `status`, CRLF included. */
void http_status_line(struct buf *out, int status);
/* Release what a reply holds and reset it (fd -1). */
void http_reply_fini(struct http_reply *rep);

#endif
