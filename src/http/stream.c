/*
 * Streamed replies (text/event-stream and the like): the handler turns
 * its reply into a handle, any thread writes pieces to it, and the loop
 * of the connection sends them, woken through its eventfd. No thread is
 * held per stream: a quiet stream is a connection parked on its loop's
 * streams list, watched for the client going away.
 */
#include "http_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct http_stream {
    pthread_mutex_t lock;   /* guards everything below but next */
    struct http_conn *conn; /* NULL once the connection is gone */
    struct buf pending;     /* written, not yet handed to the loop */
    size_t max_pending;
    int64_t idle_ms;
    void (*gone)(void *arg);
    void *arg;
    int refs;    /* the producer's, the connection's, a queued wake-up */
    bool queued; /* on the loop's streamq */
    bool ended;  /* http_stream_end was called */
    bool closed; /* the connection went away */
    bool over;   /* pending went over max_pending: the stream is cut */
    struct http_stream *next; /* on the loop's streamq (its lock) */
};

static void unref(struct http_stream *s)
{
    pthread_mutex_lock(&s->lock);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (!last)
        return;
    buf_fini(&s->pending);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* Under s->lock: have the connection's loop look at s soon. */
static void kick(struct http_stream *s)
{
    if (s->queued || !s->conn)
        return;
    struct loop *l = s->conn->loop;
    s->queued = true;
    s->refs++;
    pthread_mutex_lock(&l->lock);
    s->next = l->streamq;
    l->streamq = s;
    pthread_mutex_unlock(&l->lock);
    uint64_t one = 1;
    ssize_t n = write(l->wake, &one, sizeof(one));
    (void)n;
}

struct http_stream *http_reply_stream(struct http_req *req,
                                      struct http_reply *rep, int status,
                                      const char *content_type,
                                      const struct http_stream_opts *o)
{
    struct http_conn *c = req->conn;
    struct http_stream *s = xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->conn = c;
    s->max_pending = o->max_pending ? o->max_pending : 64 << 10;
    s->idle_ms = o->idle_ms > 0 ? o->idle_ms : 60000;
    s->gone = o->gone;
    s->arg = o->arg;
    s->refs = 2;
    req->stream = s;
    rep->status = status;
    rep->content_type = content_type;
    /* The body ends when the connection does; a stream is not a request
     * in flight for http_stop, which would wait for it in vain. */
    c->close_after = true;
    if (req->counted) {
        atomic_fetch_sub(&c->loop->srv->inflight, 1);
        req->counted = false;
    }
    return s;
}

int http_stream_write(struct http_stream *s, const void *data, size_t len)
{
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    if (s->closed || s->ended || s->over) {
        rc = ERR_STOPPED;
    } else if (s->pending.len + len > s->max_pending) {
        s->over = true; /* a reader this slow is cut, not buffered */
        rc = ERR_TOO_LARGE;
        kick(s);
    } else {
        buf_append(&s->pending, data, len);
        kick(s);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

bool http_stream_open(struct http_stream *s)
{
    pthread_mutex_lock(&s->lock);
    bool open = !s->closed && !s->over && !s->ended;
    pthread_mutex_unlock(&s->lock);
    return open;
}

void http_stream_end(struct http_stream *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->ended = true;
    kick(s);
    pthread_mutex_unlock(&s->lock);
    unref(s);
}

/* ----------------------------------------------------- the loop's side */

int http_stream_next(struct http_conn *c)
{
    struct http_stream *s = c->req->stream;
    struct http_reply *rep = &c->req->rep;
    int r;
    pthread_mutex_lock(&s->lock);
    if (s->over) {
        r = -1;
    } else if (s->pending.len) {
        free(rep->body);
        rep->body = s->pending.data;
        rep->body_len = s->pending.len;
        s->pending = (struct buf)BUF_INIT;
        c->hdr = NULL;
        c->hdr_len = c->hdr_off = 0;
        c->body_off = 0;
        c->send_body = true;
        r = 1;
    } else {
        r = s->ended ? -1 : 0;
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

int64_t http_stream_idle_ms(const struct http_stream *s)
{
    return s->idle_ms;
}

void http_stream_closed(struct http_stream *s)
{
    pthread_mutex_lock(&s->lock);
    s->conn = NULL;
    s->closed = true;
    /* Under the lock: once http_stream_end has returned, gone is not
     * running and will not run. */
    if (!s->ended && s->gone)
        s->gone(s->arg);
    pthread_mutex_unlock(&s->lock);
    unref(s);
}

void http_stream_wake(struct loop *l)
{
    pthread_mutex_lock(&l->lock);
    struct http_stream *list = l->streamq;
    l->streamq = NULL;
    pthread_mutex_unlock(&l->lock);
    while (list) {
        struct http_stream *s = list;
        list = s->next;
        pthread_mutex_lock(&s->lock);
        s->queued = false;
        struct http_conn *c = s->conn; /* set to NULL on this thread only */
        pthread_mutex_unlock(&s->lock);
        if (c && c->state == C_STREAM) {
            http_conn_writable(c);
            if (c->closing)
                http_conn_free(c);
        }
        unref(s);
    }
}
