/*
 * The server: listen, loop threads on epoll (one set each, sharing the
 * listening socket with EPOLLEXCLUSIVE), accept, wake-ups for deferred
 * replies, timeout sweeps, and the stop that drains requests in flight.
 */
#include "http_int.h"

#include "../log/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------- loops */

static void on_accept(struct loop *l)
{
    struct http_server *srv = l->srv;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                /* Out of descriptors: stop listening here until the next
                 * timeout sweep rather than spin on a ready socket. */
                epoll_ctl(l->ep, EPOLL_CTL_DEL, srv->fd, NULL);
                l->listening = false;
                log_warn("out of file descriptors", "conns=%d",
                         atomic_load(&srv->conns));
            }
            return;
        }
        if ((unsigned)atomic_fetch_add(&srv->conns, 1) >= srv->conn_limit) {
            atomic_fetch_sub(&srv->conns, 1);
            close(fd);
            continue;
        }
        http_conn_open(l, fd);
    }
}

static void listen_watch(struct loop *l)
{
    struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE,
                              .data.ptr = &l->listening };
    if (!l->listening && epoll_ctl(l->ep, EPOLL_CTL_ADD, l->srv->fd, &ev) == 0)
        l->listening = true;
}

static void on_wake(struct loop *l)
{
    uint64_t v;
    ssize_t n = read(l->wake, &v, sizeof(v));
    (void)n;
    pthread_mutex_lock(&l->lock);
    struct http_req *list = l->resumed;
    l->resumed = NULL;
    for (struct http_req *r = list; r; r = r->next)
        r->parked = false;
    pthread_mutex_unlock(&l->lock);
    /* Streams after the batch: one may close its connection, whose own
     * event may still be ahead in the batch. */
    l->stream_news = true;
    while (list) {
        struct http_req *r = list;
        struct http_conn *c = r->conn;
        list = r->next;
        http_conn_resumed(c);
        http_conn_drive(c);
        if (c->closing)
            http_conn_free(c);
    }
}

static void sweep(struct loop *l, int64_t now)
{
    struct tlist *lists[] = { &l->idle, &l->linger, &l->streams };
    for (size_t i = 0; i < ARRAY_LEN(lists); i++)
        while (lists[i]->first && lists[i]->first->deadline_ms <= now)
            http_conn_free(lists[i]->first);
    listen_watch(l);
}

static void *loop_main(void *arg)
{
    struct loop *l = arg;
    struct epoll_event ev[EVENTS_MAX];
    int64_t swept = clock_mono_ms();
    while (!atomic_load(&l->srv->quit)) {
        int n = epoll_wait(l->ep, ev, EVENTS_MAX,
                           l->paced.first ? PACE_TICK_MS : 500);
        for (int i = 0; i < n; i++) {
            void *p = ev[i].data.ptr;
            if (p == &l->listening) {
                on_accept(l);
                continue;
            }
            if (p == &l->wake) {
                on_wake(l);
                continue;
            }
            struct http_conn *c = p;
            if (ev[i].events & EPOLLERR)
                c->closing = true;
            else if (c->state == C_WRITE &&
                     ev[i].events & (EPOLLOUT | EPOLLHUP))
                http_conn_writable(c);
            else if (ev[i].events & (EPOLLIN | EPOLLHUP))
                http_conn_readable(c);
            http_conn_drive(c);
            if (c->closing)
                http_conn_free(c);
        }
        if (l->stream_news) {
            l->stream_news = false;
            http_stream_wake(l);
        }
        int64_t now = clock_mono_ms();
        if (l->paced.first)
            http_conn_pace(l, now);
        if (now - swept >= 250) {
            sweep(l, now);
            swept = now;
        }
    }
    while (l->idle.first)
        http_conn_free(l->idle.first);
    while (l->linger.first)
        http_conn_free(l->linger.first);
    while (l->paced.first)
        http_conn_free(l->paced.first);
    while (l->streams.first)
        http_conn_free(l->streams.first);
    http_stream_wake(l); /* only lets queued handles go now */
    return NULL;
}

/* ------------------------------------------------------------ server */

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
    int fd =
        socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
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
    if (srv->opts.body_memory <= 0)
        srv->opts.body_memory = INT64_MAX / 2;
    srv->port = ntohs(ss.ss_family == AF_INET ? v4->sin_port : v6->sin6_port);
    pthread_mutex_init(&srv->tenant_lock, NULL);
    *out = srv;
    return 0;
}

static void loops_free(struct http_server *srv)
{
    for (int i = 0; i < srv->n_loops; i++) {
        struct loop *l = &srv->loops[i];
        if (l->ep >= 0)
            close(l->ep);
        if (l->wake >= 0)
            close(l->wake);
        pthread_mutex_destroy(&l->lock);
        buf_fini(&l->obuf);
    }
    free(srv->loops);
    srv->loops = NULL;
    srv->n_loops = 0;
}

static void loops_join(struct http_server *srv)
{
    atomic_store(&srv->quit, true);
    for (int i = 0; i < srv->n_loops; i++) {
        struct loop *l = &srv->loops[i];
        uint64_t one = 1;
        if (!l->started)
            continue;
        ssize_t n = write(l->wake, &one, sizeof(one));
        (void)n;
        pthread_join(l->thread, NULL);
    }
}

int http_serve(struct http_server *srv, http_admit admit, http_handler handler,
               void *arg, struct errmsg *err)
{
    /* As many connections as descriptors allow, less a reserve for the
     * store, files being served and fetches. */
    struct rlimit rl;
    srv->conn_limit = 1000;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 256)
        srv->conn_limit = (unsigned)(rl.rlim_cur - 128 < LIMIT_CONNECTIONS
                                         ? rl.rlim_cur - 128
                                         : LIMIT_CONNECTIONS);
    srv->admit = admit;
    srv->handler = handler;
    srv->arg = arg;
    int n = srv->opts.threads > 0 ? srv->opts.threads : 1;
    srv->loops = xcalloc((size_t)n, sizeof(*srv->loops));
    srv->n_loops = n;
    for (int i = 0; i < n; i++) {
        struct loop *l = &srv->loops[i];
        l->srv = srv;
        pthread_mutex_init(&l->lock, NULL);
        l->ep = epoll_create1(EPOLL_CLOEXEC);
        l->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &l->wake };
        if (l->ep < 0 || l->wake < 0 ||
            epoll_ctl(l->ep, EPOLL_CTL_ADD, l->wake, &ev) < 0)
            goto fail;
        listen_watch(l);
        if (!l->listening)
            goto fail;
    }
    for (int i = 0; i < n; i++) {
        struct loop *l = &srv->loops[i];
        if (pthread_create(&l->thread, NULL, loop_main, l) != 0)
            goto fail;
        l->started = true;
    }
    return 0;
fail:;
    int saved = errno;
    loops_join(srv);
    loops_free(srv);
    atomic_store(&srv->quit, false);
    return errmsg_set(err, ERR_IO, "cannot start the HTTP server on %s:%d: %s",
                      srv->opts.host, srv->port, strerror(saved));
}

int http_port(const struct http_server *srv)
{
    return srv->port;
}

bool http_stop(struct http_server *srv)
{
    if (!srv)
        return true;
    if (srv->loops) {
        /* New requests are answered at once (503: the handler sees
         * http_req_stopping) and close their connection; those in
         * progress finish (a deferred reply waits for its commit: bounded
         * by the store's timeouts). */
        atomic_store(&srv->stopping, true);
        for (int waited = 0;
             atomic_load(&srv->inflight) > 0 && waited < DRAIN_MS; waited += 10)
            nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
        if (atomic_load(&srv->inflight) > 0) {
            /* A handler still holds a request: leave it all. */
            log_error("requests still in flight at shutdown",
                      "count=%d waited_ms=%d", atomic_load(&srv->inflight),
                      DRAIN_MS);
            return false;
        }
        loops_join(srv);
        loops_free(srv);
    }
    if (srv->fd >= 0)
        close(srv->fd);
    pthread_mutex_destroy(&srv->tenant_lock);
    free(srv);
    return true;
}
