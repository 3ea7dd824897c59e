/* http/stream.c: streamed replies over a live server on 127.0.0.1. */
#include "../../src/http/http.h"
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_STREAMS 256

/* Filled by the handler on a loop thread: a slot, then the count. */
static _Atomic(struct http_stream *) streams_[MAX_STREAMS];
static atomic_int n_slots, n_streams, n_gone;
#define STREAM(i) atomic_load(&streams_[i])
static size_t opt_pending;
static int64_t opt_idle_ms;

static void on_gone(void *arg)
{
    (void)arg;
    atomic_fetch_add(&n_gone, 1);
}

static void handler(void *arg, struct http_req *req, struct http_reply *rep)
{
    (void)arg;
    if (strcmp(http_req_path(req), "/s") != 0) {
        struct buf b = BUF_INIT;
        buf_puts(&b, "plain");
        http_reply_take_body(rep, 200, "text/plain", &b);
        return;
    }
    struct http_stream_opts o = { .max_pending = opt_pending,
                                  .idle_ms = opt_idle_ms,
                                  .gone = on_gone };
    struct http_stream *s =
        http_reply_stream(req, rep, 200, "text/event-stream", &o);
    http_reply_header(rep, "Cache-Control", "no-cache");
    atomic_store(&streams_[atomic_fetch_add(&n_slots, 1)], s);
    atomic_fetch_add(&n_streams, 1);
}

static struct http_server *start(void)
{
    struct http_opts o = { .host = "127.0.0.1",
                           .threads = 2,
                           .body_limit = 1 << 20,
                           .conn_timeout_s = 30 };
    struct http_server *srv = NULL;
    struct errmsg err = { 0 };
    atomic_store(&n_slots, 0);
    atomic_store(&n_streams, 0);
    atomic_store(&n_gone, 0);
    if (http_listen(&o, &srv, &err) < 0 ||
        http_serve(srv, NULL, handler, NULL, &err) < 0) {
        fprintf(stderr, "server: %s\n", errmsg_text(&err));
        exit(1);
    }
    return srv;
}

static void pause_ms(long ms)
{
    nanosleep(&(struct timespec){ .tv_sec = ms / 1000,
                                  .tv_nsec = (ms % 1000) * 1000000L },
              NULL);
}

/* Wait (a bounded while: a failure, not a measurement) for *v >= want. */
static bool wait_for(atomic_int *v, int want)
{
    for (int i = 0; i < 1000 && atomic_load(v) < want; i++)
        pause_ms(10);
    return atomic_load(v) >= want;
}

static int dial(struct http_server *srv, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)http_port(srv)) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return -1;
    char req[128];
    int n =
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n)
        return -1;
    return fd;
}

/* Read until `want` appears in what came (kept in *got) or EOF. */
static bool read_until(int fd, struct buf *got, const char *want)
{
    char tmp[4096];
    while (!got->data || !strstr(got->data, want)) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 10000) <= 0)
            return false;
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n <= 0)
            return false;
        buf_append(got, tmp, (size_t)n);
    }
    return true;
}

/* Read to EOF: true when the server closed. */
static bool read_eof(int fd, struct buf *got)
{
    char tmp[4096];
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 10000) <= 0)
            return false;
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n == 0)
            return true;
        if (n < 0)
            return false;
        buf_append(got, tmp, (size_t)n);
    }
}

static void pieces_then_close(void)
{
    opt_pending = 0;
    opt_idle_ms = 0;
    struct http_server *srv = start();
    struct buf got = BUF_INIT;
    int fd = dial(srv, "/s");
    CHECK(fd >= 0);
    CHECK(wait_for(&n_streams, 1));
    CHECK(read_until(fd, &got, "\r\n\r\n"));
    CHECK(strstr(got.data, "HTTP/1.1 200") == got.data);
    CHECK(strstr(got.data, "Content-Type: text/event-stream\r\n"));
    CHECK(strstr(got.data, "Cache-Control: no-cache\r\n"));
    CHECK(strstr(got.data, "Content-Length") == NULL);
    CHECK(strstr(got.data, "Connection: close\r\n"));
    struct http_stream *s = STREAM(0);
    CHECK_INT(http_stream_write(s, "id: 1\n\n", 7), 0);
    CHECK(read_until(fd, &got, "id: 1\n\n"));
    CHECK_INT(http_stream_write(s, "id: 2\n", 6), 0);
    CHECK_INT(http_stream_write(s, "\n", 1), 0);
    CHECK(http_stream_open(s));
    http_stream_end(s);
    CHECK(read_eof(fd, &got));
    CHECK(strstr(got.data, "id: 1\n\nid: 2\n\n"));
    CHECK_INT(atomic_load(&n_gone), 0); /* ended first: no gone call */
    close(fd);
    buf_fini(&got);
    CHECK(http_stop(srv));
}

static void client_leaves(void)
{
    opt_pending = 0;
    opt_idle_ms = 0;
    struct http_server *srv = start();
    struct buf got = BUF_INIT;
    int fd = dial(srv, "/s");
    CHECK(wait_for(&n_streams, 1));
    CHECK(read_until(fd, &got, "\r\n\r\n"));
    close(fd);
    CHECK(wait_for(&n_gone, 1));
    struct http_stream *s = STREAM(0);
    CHECK(!http_stream_open(s));
    CHECK_INT(http_stream_write(s, "x", 1), ERR_STOPPED);
    http_stream_end(s);
    buf_fini(&got);
    CHECK(http_stop(srv));
}

static void slow_reader_is_cut(void)
{
    opt_pending = 4096;
    opt_idle_ms = 0;
    struct http_server *srv = start();
    int fd = dial(srv, "/s");
    CHECK(wait_for(&n_streams, 1));
    struct http_stream *s = STREAM(0);
    char piece[1024];
    memset(piece, 'x', sizeof(piece));
    int rc = 0;
    /* The client reads nothing: once the socket buffers are full the
     * backlog reaches the cap (a bounded number of writes). */
    for (int i = 0; i < 200000 && rc == 0; i++)
        rc = http_stream_write(s, piece, sizeof(piece));
    CHECK_INT(rc, ERR_TOO_LARGE);
    CHECK(!http_stream_open(s));
    http_stream_end(s);
    struct buf got = BUF_INIT;
    CHECK(read_eof(fd, &got)); /* the connection is closed */
    close(fd);
    buf_fini(&got);
    CHECK(http_stop(srv));
}

static void quiet_stream_times_out(void)
{
    opt_pending = 0;
    opt_idle_ms = 100;
    struct http_server *srv = start();
    int fd = dial(srv, "/s");
    CHECK(wait_for(&n_streams, 1));
    struct buf got = BUF_INIT;
    CHECK(read_eof(fd, &got));
    CHECK(wait_for(&n_gone, 1));
    http_stream_end(STREAM(0));
    close(fd);
    buf_fini(&got);
    CHECK(http_stop(srv));
}

static void many_streams_and_stop(void)
{
    opt_pending = 0;
    opt_idle_ms = 0;
    struct http_server *srv = start();
    int fds[MAX_STREAMS];
    for (int i = 0; i < MAX_STREAMS; i++)
        fds[i] = dial(srv, "/s");
    CHECK(wait_for(&n_streams, MAX_STREAMS));
    for (int i = 0; i < MAX_STREAMS; i++)
        CHECK_INT(http_stream_write(STREAM(i), "data: hi\n\n", 10), 0);
    for (int i = 0; i < MAX_STREAMS; i++) {
        struct buf got = BUF_INIT;
        CHECK(read_until(fds[i], &got, "data: hi\n\n"));
        buf_fini(&got);
    }
    /* Another request on a plain route is answered meanwhile. */
    int fd = dial(srv, "/plain");
    struct buf got = BUF_INIT;
    CHECK(read_until(fd, &got, "plain"));
    close(fd);
    buf_fini(&got);
    /* Open streams do not hold up the stop: the loops close them. */
    CHECK(http_stop(srv));
    CHECK_INT(atomic_load(&n_gone), MAX_STREAMS);
    for (int i = 0; i < MAX_STREAMS; i++) {
        CHECK_INT(http_stream_write(STREAM(i), "x", 1), ERR_STOPPED);
        http_stream_end(STREAM(i));
        close(fds[i]);
    }
}

int main(void)
{
    unit_suite = "http_stream";
    RUN(pieces_then_close);
    RUN(client_leaves);
    RUN(slow_reader_is_cut);
    RUN(quiet_stream_times_out);
    RUN(many_streams_and_stop);
    return UNIT_END();
}
