/*
 * The connection machine: read a head, admit, read a body within its
 * limits (Content-Length or chunked, into memory or a sink), run the
 * handler, write the reply (memory or sendfile), then the next request of
 * the connection; timeouts, lingering close, deferred replies.
 */
#include "http_int.h"

#include "../log/log.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------ connection plumbing */

static void tlist_remove(struct http_conn *c)
{
    struct tlist *l = c->list;
    if (!l)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        l->first = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->last = c->prev;
    c->prev = c->next = NULL;
    c->list = NULL;
}

/* (Re)arm c's timeout: `ms` from now, at the end of list l. */
static void tlist_touch(struct http_conn *c, struct tlist *l, int64_t ms)
{
    tlist_remove(c);
    c->deadline_ms = clock_mono_ms() + ms;
    c->prev = l->last;
    if (l->last)
        l->last->next = c;
    else
        l->first = c;
    l->last = c;
    c->list = l;
}

static int64_t conn_timeout_ms(const struct http_conn *c)
{
    return (int64_t)c->loop->srv->opts.conn_timeout_s * 1000;
}

/* Watch c for `events` (0: not at all, while a reply is deferred). */
static void conn_watch(struct http_conn *c, uint32_t events)
{
    int ep = c->loop->ep;
    if (events == 0) {
        if (c->in_epoll)
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        c->in_epoll = false;
        return;
    }
    if (c->in_epoll && c->events == events)
        return;
    struct epoll_event ev = { .events = events, .data.ptr = c };
    if (epoll_ctl(ep, c->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) <
        0) {
        log_warn("epoll_ctl failed", "errno=%d", errno);
        c->closing = true;
        return;
    }
    c->in_epoll = true;
    c->events = events;
}

/* The body's sink is done with: its end, once. */
static void req_sink_end(struct http_req *req)
{
    if (req->has_sink && req->sink.end)
        req->sink.end(req->sink.arg);
    req->sink.end = NULL;
}

/* The request is over: release it and everything it holds. */
static void req_end(struct http_conn *c)
{
    struct http_req *req = c->req;
    if (!req)
        return;
    c->req = NULL;
    if (req->stream)
        http_stream_closed(req->stream);
    req_sink_end(req);
    http_req_release_body(req);
    http_reply_fini(&req->rep);
    if (req->counted)
        atomic_fetch_sub(&c->loop->srv->inflight, 1);
    free(req);
}

void http_conn_free(struct http_conn *c)
{
    req_end(c);
    tlist_remove(c);
    if (c->in_epoll)
        epoll_ctl(c->loop->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    atomic_fetch_sub(&c->loop->srv->conns, 1);
    free(c->in);
    buf_fini(&c->out);
    free(c);
}

/* Keep bytes [data, data+len) for later in c->in (bounded by callers). */
static void stash(struct http_conn *c, const char *data, size_t len)
{
    if (c->in_len + len > c->in_cap) {
        size_t cap = c->in_cap ? c->in_cap : 1024;
        while (cap < c->in_len + len)
            cap *= 2;
        c->in = xrealloc(c->in, cap);
        c->in_cap = cap;
    }
    memmove(c->in + c->in_len, data, len);
    c->in_len += len;
}

/* Drop the first n bytes of c->in; free it when empty (idle costs 0). */
static void consume_in(struct http_conn *c, size_t n)
{
    if (n >= c->in_len) {
        free(c->in);
        c->in = NULL;
        c->in_len = c->in_cap = 0;
        return;
    }
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

/* ------------------------------------------------------------ replies */

static void date_header(struct loop *l, struct buf *out)
{
    time_t now = time(NULL);
    if (now != l->date_s) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(l->date, sizeof(l->date),
                 "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        l->date_s = now;
    }
    buf_puts(out, l->date);
}

static void response_done(struct http_conn *c);

/* n in decimal (no printf on every reply). */
static void put_decimal(struct buf *o, uint64_t n)
{
    char d[24];
    size_t i = sizeof(d);
    do {
        d[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    buf_append(o, d + i, sizeof(d) - i);
}

/* A paced reply's first piece: an eighth of a second's bytes. */
#define PACE_BURST_DIV 8

/* Bytes of a paced body that may go now (the rest waits), given how long
 * it has been under way. */
static uint64_t pace_allowed(const struct http_conn *c,
                             const struct http_reply *rep, int64_t now)
{
    int64_t spent = now - c->body_t0;
    uint64_t total = rep->rate / PACE_BURST_DIV +
                     rep->rate * (uint64_t)(spent > 0 ? spent : 0) / 1000;
    return total > c->body_off ? total - c->body_off : 0;
}

/* Wait until the next piece of a paced body may go: off epoll, on the
 * loop's paced list. */
static void pace_wait(struct http_conn *c, const struct http_reply *rep)
{
    /* When a further eighth of a second's bytes is due. */
    uint64_t at = c->body_off * 1000 / rep->rate;
    int64_t ms = c->body_t0 + (int64_t)at - clock_mono_ms();
    c->state = C_WRITE;
    tlist_touch(c, &c->loop->paced, ms > 0 ? ms : 1);
    conn_watch(c, 0);
}

/* Write what is left of the reply; on EAGAIN wait for EPOLLOUT. */
static void write_out(struct http_conn *c)
{
    struct http_reply *rep = &c->req->rep;
again:
    for (;;) {
        bool mem_body = c->send_body && rep->fd < 0;
        if (c->hdr_off < c->hdr_len ||
            (mem_body && c->body_off < rep->body_len)) {
            struct iovec iov[2];
            int n_iov = 0;
            if (c->hdr_off < c->hdr_len)
                iov[n_iov++] = (struct iovec){ (char *)c->hdr + c->hdr_off,
                                               c->hdr_len - c->hdr_off };
            if (mem_body && c->body_off < rep->body_len)
                iov[n_iov++] = (struct iovec){ rep->body + c->body_off,
                                               rep->body_len - c->body_off };
            struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)n_iov };
            ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    goto blocked;
                c->closing = true;
                return;
            }
            size_t left = (size_t)n, h = c->hdr_len - c->hdr_off;
            size_t take = left < h ? left : h;
            c->hdr_off += take;
            c->body_off += left - take;
            continue;
        }
        if (c->send_body && rep->fd >= 0 && c->body_off < rep->length) {
            off_t off = (off_t)(rep->offset + c->body_off);
            uint64_t want = rep->length - c->body_off;
            if (rep->rate) {
                uint64_t allowed = pace_allowed(c, rep, clock_mono_ms());
                if (allowed == 0) {
                    pace_wait(c, rep);
                    return;
                }
                want = want < allowed ? want : allowed;
            }
            ssize_t n = sendfile(c->fd, rep->fd, &off,
                                 want > (1u << 20) ? (1u << 20) : want);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                goto blocked;
            if (n <= 0) { /* an error, or the file got shorter */
                c->closing = true;
                return;
            }
            c->body_off += (uint64_t)n;
            continue;
        }
        break;
    }
    if (c->req->stream) { /* a streamed reply: its next piece, or wait */
        int more = http_stream_next(c);
        if (more > 0)
            goto again;
        if (more == 0) {
            c->state = C_STREAM;
            tlist_touch(c, &c->loop->streams,
                        http_stream_idle_ms(c->req->stream));
            conn_watch(c, EPOLLIN);
            return;
        }
    }
    response_done(c);
    return;
blocked:
    if (c->hdr != c->out.data && c->hdr_off < c->hdr_len) {
        /* The head was in the loop's buffer: keep the rest ourselves. */
        buf_reset(&c->out);
        buf_append(&c->out, c->hdr + c->hdr_off, c->hdr_len - c->hdr_off);
        c->hdr = c->out.data;
        c->hdr_len = c->out.len;
        c->hdr_off = 0;
    } else if (c->hdr_off >= c->hdr_len) {
        c->hdr = NULL;
        c->hdr_len = c->hdr_off = 0;
    }
    c->state = C_WRITE;
    tlist_touch(c, &c->loop->idle, conn_timeout_ms(c));
    conn_watch(c, EPOLLOUT);
}

static bool no_body_status(int status)
{
    return status == 204 || status == 304 || status < 200;
}

/* Serialise the reply's head and start writing. */
static void send_reply(struct http_conn *c)
{
    struct http_req *req = c->req;
    struct http_reply *rep = &req->rep;
    struct buf *o = &c->loop->obuf;

    if (rep->status == 0) {
        log_error("handler gave no status", "path=\"%s\" request_id=%s",
                  http_req_path(req), req->id);
        http_reply_fini(rep);
        rep->status = 500;
    }
    buf_reset(o);
    http_status_line(o, rep->status);
    date_header(c->loop, o);
    if (rep->content_type) {
        buf_puts(o, "Content-Type: ");
        buf_puts(o, rep->content_type);
        buf_puts(o, "\r\n");
    }
    if (!no_body_status(rep->status) && !req->stream) {
        buf_puts(o, "Content-Length: ");
        put_decimal(o, rep->fd >= 0 ? rep->length : rep->body_len);
        buf_puts(o, "\r\n");
    }
    buf_puts(o, "X-Request-Id: ");
    buf_puts(o, req->id);
    buf_puts(o, "\r\n");
    for (size_t i = 0; i < rep->n_headers; i++) {
        if (strcasecmp(rep->headers[i].name, "Connection") == 0) {
            if (strcasecmp(rep->headers[i].value, "close") == 0)
                c->close_after = true;
            continue; /* written below, once */
        }
        buf_puts(o, rep->headers[i].name);
        buf_puts(o, ": ");
        buf_puts(o, rep->headers[i].value);
        buf_puts(o, "\r\n");
    }
    if (c->close_after)
        buf_puts(o, "Connection: close\r\n");
    else if (req->head.minor == 0)
        buf_puts(o, "Connection: keep-alive\r\n");
    buf_puts(o, "\r\n");
    c->hdr = o->data;
    c->hdr_len = o->len;
    c->hdr_off = 0;
    c->body_off = 0;
    c->body_t0 = clock_mono_ms();
    c->send_body = strcmp(http_req_method(req), "HEAD") != 0 &&
                   !no_body_status(rep->status);
    c->state = C_WRITE;
    write_out(c);
}

/* The reply is out: close, linger, or wait for the next request. */
static void response_done(struct http_conn *c)
{
    req_end(c);
    c->hdr = NULL;
    c->hdr_len = c->hdr_off = 0;
    buf_fini(&c->out);
    if (c->close_after) {
        if (!c->linger) {
            c->closing = true;
            return;
        }
        /* Unread body bytes may follow: drain them a while, so the peer
         * reads our answer instead of a reset (callers drop c->in). */
        shutdown(c->fd, SHUT_WR);
        c->state = C_LINGER;
        tlist_touch(c, &c->loop->linger, LINGER_MS);
        conn_watch(c, EPOLLIN);
        return;
    }
    c->state = C_HEAD;
    tlist_touch(c, &c->loop->idle, conn_timeout_ms(c));
    conn_watch(c, EPOLLIN);
    c->pending_input = c->in_len > 0;
}

/* Run the handler (the body is complete, or the request is refused). */
static void run_handler(struct http_conn *c)
{
    struct loop *l = c->loop;
    struct http_req *req = c->req;
    c->state = C_HANDLE;
    tlist_remove(c);
    if (req->fault) {
        http_req_release_body(req);
        c->close_after = c->linger = true;
    }
    l->srv->handler(l->srv->arg, req, &req->rep);
    http_req_release_body(req); /* handlers read the body only while they run */
    /* So is the sink, unless the reply comes later: it ends before the
     * answer goes out, so a client acting on the answer (the same upload
     * again, on another connection) never meets what the sink had not yet
     * cleaned up. */
    if (!req->deferred)
        req_sink_end(req);
    if (req->deferred && !req->late && !req->fault) {
        pthread_mutex_lock(&l->lock);
        bool ready = req->ready;
        req->parked = !ready;
        pthread_mutex_unlock(&l->lock);
        if (!ready) {
            conn_watch(c, 0);
            return;
        }
    }
    send_reply(c);
}

void http_resume(struct http_defer *d)
{
    struct http_req *req = (struct http_req *)d;
    struct loop *l = req->conn->loop;
    pthread_mutex_lock(&l->lock);
    req->ready = true;
    bool wake = req->parked;
    if (wake) {
        req->next = l->resumed;
        l->resumed = req;
    }
    pthread_mutex_unlock(&l->lock);
    if (wake) {
        uint64_t one = 1;
        ssize_t n = write(l->wake, &one, sizeof(one));
        (void)n;
    }
}

/* ------------------------------------------------------------ reading */

static void fault(struct http_conn *c, enum http_fault f, const char *why)
{
    c->req->fault = f;
    c->req->fault_why = why;
    run_handler(c);
}

static bool has_body(const struct http_req *req)
{
    return req->head.chunked || req->head.content_length > 0;
}

/* A head of `len` bytes is in: make the request and decide its body. */
static void start_request(struct http_conn *c, const char *data, size_t len,
                          bool oversize)
{
    struct http_server *srv = c->loop->srv;
    struct http_req *req = xmalloc(sizeof(*req) + len + 1);
    const char *why = "";
    /* Zeroed up to the head's table; the tables stay as they are (the
     * parser sets what it counts), the user area is zeroed as promised. */
    memset(req, 0, offsetof(struct http_req, head.h));
    memset(req->user, 0, sizeof(req->user));
    req->hbuf[0] = '\0';
    req->conn = c;
    req->rep.fd = -1;
    req->head.content_length = -1;
    req->body_limit = srv->opts.body_limit;
    id_uuid4(req->id);
    c->req = req;
    /* Counted first, then the flag read (both sequentially consistent):
     * http_stop either waits for this request or it sees the flag. */
    atomic_fetch_add(&srv->inflight, 1);
    req->counted = true;
    if (atomic_load(&srv->stopping)) {
        atomic_fetch_sub(&srv->inflight, 1);
        req->counted = false;
        req->late = true;
    }
    if (oversize) {
        fault(c, HTTP_FAULT_HEAD_SIZE, "the request head is over 16 KiB");
        return;
    }
    memcpy(req->hbuf, data, len);
    int rc = http_parse_head(req->hbuf, len, &req->head, &why);
    if (rc) {
        fault(c, (enum http_fault)rc, why);
        return;
    }
    http_req_parse_args(req);
    if (!req->head.keep_alive)
        c->close_after = true;
    if (req->late) {
        c->close_after = true;
        c->linger = has_body(req);
        run_handler(c);
        return;
    }
    if (srv->admit) {
        srv->admit(srv->arg, req, &req->rep);
        if (req->rep.status) {
            if (has_body(req))
                c->close_after = c->linger = true;
            c->state = C_HANDLE;
            tlist_remove(c);
            send_reply(c);
            return;
        }
    }
    if (!has_body(req)) {
        run_handler(c);
        return;
    }
    if (req->head.content_length > req->body_limit) {
        fault(c, HTTP_FAULT_TOO_LARGE, "Content-Length is over the limit");
        return;
    }
    if (!req->has_sink && req->head.content_length > 0) {
        enum http_fault f = http_req_charge(req, req->head.content_length);
        if (f) {
            fault(c, f, "request bodies in memory are at their cap");
            return;
        }
        /* Exactly the declared size: the cap charged is what is held. */
        req->body.cap = (size_t)req->head.content_length + 1;
        req->body.data = xmalloc(req->body.cap);
        req->body.data[0] = '\0';
    }
    c->state = C_BODY;
    c->remaining = req->head.chunked ? 0 : req->head.content_length;
    c->k = K_SIZE;
    c->trailer_bytes = 0;
    tlist_touch(c, &c->loop->idle, conn_timeout_ms(c));
    if (req->head.expect_continue) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        ssize_t n = send(c->fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL);
        (void)n; /* a client that misses it sends the body anyway */
    }
}

/* Consume what a head needs from data: 0 when more bytes are needed. */
static size_t head_feed(struct http_conn *c, const char *data, size_t len)
{
    size_t skip = 0;
    if (!c->head_begun) { /* RFC 9112 s.2.2: empty lines before a request */
        while (skip < len && (data[skip] == '\r' || data[skip] == '\n'))
            skip++;
        if (skip == len)
            return skip;
        c->head_begun = true;
        c->scan = 0;
        tlist_touch(c, &c->loop->idle, conn_timeout_ms(c));
        if (skip)
            return skip;
    }
    size_t end = 0;
    for (size_t i = c->scan; i < len; i++) {
        const char *nl = memchr(data + i, '\n', len - i);
        if (!nl)
            break;
        i = (size_t)(nl - data);
        if (i + 1 < len && data[i + 1] == '\n') {
            end = i + 2;
            break;
        }
        if (i + 2 < len && data[i + 1] == '\r' && data[i + 2] == '\n') {
            end = i + 3;
            break;
        }
    }
    if (!end) {
        if (len > LIMIT_HEADER_BYTES) {
            c->head_begun = false;
            start_request(c, data, 0, true);
            return len;
        }
        c->scan = len > 2 ? len - 2 : 0;
        return 0;
    }
    c->head_begun = false;
    c->scan = 0;
    bool oversize = end > LIMIT_HEADER_BYTES;
    start_request(c, data, oversize ? 0 : end, oversize);
    return end;
}

/* n body bytes: to the sink, or to the memory body (already charged). */
static void body_put(struct http_conn *c, const char *data, size_t n)
{
    struct http_req *req = c->req;
    req->received += (int64_t)n;
    if (!req->has_sink) {
        buf_append(&req->body, data, n);
        return;
    }
    if (req->sink_failed || req->sink.write(req->sink.arg, data, n) == 0)
        return;
    req->sink_failed = true;
}

/* The end of a chunk-size or trailer line in data, or 0. */
static size_t line_end(const char *data, size_t len)
{
    const char *nl = memchr(data, '\n', len);
    return nl ? (size_t)(nl - data) + 1 : 0;
}

/* One step of a chunked body; 0 when more bytes are needed. */
static size_t chunk_feed(struct http_conn *c, const char *data, size_t len)
{
    struct http_req *req = c->req;
    size_t n;
    switch (c->k) {
    case K_SIZE: {
        n = line_end(data, len);
        if (!n || n > CHUNK_LINE_MAX) {
            if (!n && len <= CHUNK_LINE_MAX)
                return 0;
            fault(c, HTTP_FAULT_MALFORMED, "a chunk-size line is too long");
            return len;
        }
        uint64_t size = 0;
        size_t i = 0;
        int d;
        for (; i < n && (d = hex_value(data[i])) >= 0; i++) {
            if (i >= 15)
                break;
            size = size * 16 + (uint64_t)d;
        }
        char next = data[i];
        if (i == 0 || i >= 15 ||
            !(next == ';' || next == '\r' || next == '\n' || next == ' ' ||
              next == '\t')) {
            fault(c, HTTP_FAULT_MALFORMED, "a chunk size is not hexadecimal");
            return len;
        }
        if (size == 0) {
            c->k = K_TRAILER;
            return n;
        }
        if ((int64_t)size > req->body_limit - req->received) {
            fault(c, HTTP_FAULT_TOO_LARGE,
                  "the chunked body is over the limit");
            return len;
        }
        if (!req->has_sink) {
            enum http_fault f = http_req_charge(req, (int64_t)size);
            if (f) {
                fault(c, f, "request bodies in memory are at their cap");
                return len;
            }
        }
        c->remaining = (int64_t)size;
        c->k = K_DATA;
        return n;
    }
    case K_DATA:
        n = len < (uint64_t)c->remaining ? len : (size_t)c->remaining;
        body_put(c, data, n);
        c->remaining -= (int64_t)n;
        if (c->remaining == 0)
            c->k = K_DATA_END;
        return n;
    case K_DATA_END:
        if (data[0] == '\n') {
            c->k = K_SIZE;
            return 1;
        }
        if (data[0] == '\r' && len < 2)
            return 0;
        if (data[0] == '\r' && data[1] == '\n') {
            c->k = K_SIZE;
            return 2;
        }
        fault(c, HTTP_FAULT_MALFORMED, "a chunk does not end with CRLF");
        return len;
    case K_TRAILER:
        n = line_end(data, len);
        if (c->trailer_bytes + (n ? n : len) > TRAILER_MAX) {
            fault(c, HTTP_FAULT_HEAD_SIZE, "the chunked trailer is too large");
            return len;
        }
        if (!n)
            return 0;
        c->trailer_bytes += n;
        if (n == 1 || (n == 2 && data[0] == '\r'))
            run_handler(c); /* the empty line: the body is complete */
        return n;
    }
    return 0;
}

/* One step of a body; 0 when more bytes are needed. */
static size_t body_feed(struct http_conn *c, const char *data, size_t len)
{
    struct http_req *req = c->req;
    size_t n;
    tlist_touch(c, &c->loop->idle, conn_timeout_ms(c));
    if (req->head.chunked) {
        n = chunk_feed(c, data, len);
    } else {
        n = len < (uint64_t)c->remaining ? len : (size_t)c->remaining;
        body_put(c, data, n);
        c->remaining -= (int64_t)n;
        if (c->remaining == 0 && c->state == C_BODY)
            goto complete;
    }
    if (c->state == C_BODY && req->sink_failed)
        fault(c, HTTP_FAULT_SINK, "the request body could not be stored");
    return n;
complete:
    if (req->sink_failed)
        fault(c, HTTP_FAULT_SINK, "the request body could not be stored");
    else
        run_handler(c);
    return n;
}

/* Consume what the state machine can of data; returns the bytes used. */
static size_t feed(struct http_conn *c, const char *data, size_t len)
{
    size_t used = 0;
    while (!c->closing && used < len) {
        size_t n;
        if (c->state == C_HEAD)
            n = head_feed(c, data + used, len - used);
        else if (c->state == C_BODY)
            n = body_feed(c, data + used, len - used);
        else
            break;
        if (n == 0)
            break;
        used += n;
    }
    return used;
}

/* Work through bytes already received (pipelined requests). */
void http_conn_drive(struct http_conn *c)
{
    while (!c->closing && c->pending_input && c->in_len &&
           (c->state == C_HEAD || c->state == C_BODY)) {
        c->pending_input = false;
        size_t used = feed(c, c->in, c->in_len);
        consume_in(c, c->state == C_LINGER ? c->in_len : used);
        if (c->state == C_HEAD || c->state == C_BODY)
            c->pending_input = used > 0 && c->in_len > 0;
    }
}

void http_conn_readable(struct http_conn *c)
{
    struct loop *l = c->loop;
    struct http_req *req = c->req;
    ssize_t n;

    if (c->state == C_LINGER || c->state == C_STREAM) {
        n = recv(c->fd, l->rbuf, sizeof(l->rbuf), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            c->closing = true;
        return;
    }
    if (c->state == C_BODY && req && !req->head.chunked && !req->has_sink &&
        c->in_len == 0 && c->remaining > 0) {
        /* Straight into the body, reserved to its declared length. */
        size_t room = req->body.cap - req->body.len - 1;
        size_t want =
            (uint64_t)c->remaining < room ? (size_t)c->remaining : room;
        n = recv(c->fd, req->body.data + req->body.len, want, 0);
        if (n > 0) {
            req->body.len += (size_t)n;
            req->body.data[req->body.len] = '\0';
            req->received += n;
            c->remaining -= n;
            tlist_touch(c, &l->idle, conn_timeout_ms(c));
            if (c->remaining == 0)
                run_handler(c);
            return;
        }
    } else if (c->in_len == 0) {
        n = recv(c->fd, l->rbuf, sizeof(l->rbuf), 0);
        if (n > 0) {
            size_t used = feed(c, l->rbuf, (size_t)n);
            if (!c->closing && c->state != C_LINGER && used < (size_t)n)
                stash(c, l->rbuf + used, (size_t)n - used);
            return;
        }
    } else {
        if (c->in_cap - c->in_len < 4096) {
            c->in_cap = c->in_cap * 2 > c->in_len + 4096 ? c->in_cap * 2
                                                         : c->in_len + 4096;
            c->in = xrealloc(c->in, c->in_cap);
        }
        n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            size_t used = feed(c, c->in, c->in_len);
            consume_in(c, c->state == C_LINGER ? c->in_len : used);
            return;
        }
    }
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        c->closing = true; /* the peer left, mid-request or between */
}

void http_conn_writable(struct http_conn *c)
{
    write_out(c);
}

void http_conn_pace(struct loop *l, int64_t now)
{
    struct http_conn *next;
    for (struct http_conn *c = l->paced.first; c; c = next) {
        next = c->next;
        if (c->deadline_ms > now)
            continue;
        tlist_remove(c);
        conn_watch(c, EPOLLOUT);
        if (!c->closing)
            write_out(c);
        if (c->closing)
            http_conn_free(c);
    }
}

void http_conn_resumed(struct http_conn *c)
{
    send_reply(c);
}

struct http_conn *http_conn_open(struct loop *l, int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct http_conn *c = xcalloc(1, sizeof(*c));
    c->fd = fd;
    c->loop = l;
    c->state = C_HEAD;
    tlist_touch(c, &l->idle, conn_timeout_ms(c));
    conn_watch(c, EPOLLIN);
    if (c->closing) {
        http_conn_free(c);
        return NULL;
    }
    return c;
}
