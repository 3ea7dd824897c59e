/*
 * libFuzzer target for the HTTP front: any bytes, cut into reads at
 * points the input chooses, through the real connection machine (request
 * line, headers, framing checks, Content-Length and chunked bodies,
 * memory bodies and sinks, admit refusals, deferred replies, pipelining,
 * lingering close), on one end of a socketpair whose other end drains the
 * replies. conn.c, req.c and server.c are compiled into this file so
 * their statics are reachable. A crash, a leak, a sanitizer report, a hang, or
 * bytes still charged to the memory caps when the connection is gone is a bug.
 */
#include "../src/http/conn.c"
#include "../src/http/req.c"
#include "../src/http/server.c"

#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct http_server srv;
static struct loop lp;
static int peer = -1; /* the client's end of the current connection */
static int64_t sunk;

static int sink_write(void *arg, const void *d, size_t n)
{
    (void)arg;
    sunk += (int64_t)n;
    /* A sink that fails on a byte, as a full disk would. */
    return memchr(d, 0xff, n) ? -1 : 0;
}

static void sink_end(void *arg)
{
    (void)arg;
}

/* Refuse, sink, shrink the limit or name a tenant, by path. */
static void admit(void *arg, struct http_req *req, struct http_reply *rep)
{
    (void)arg;
    const char *path = http_req_path(req);
    if (strstr(path, "deny")) {
        struct buf b = BUF_INIT;
        buf_puts(&b, "{\"denied\":true}");
        http_reply_take_body(rep, 401, "application/json", &b);
        return;
    }
    if (strstr(path, "sink"))
        http_req_set_sink(
            req, &(struct http_sink){ .write = sink_write, .end = sink_end });
    if (strstr(path, "small"))
        http_req_set_body_limit(req, 16);
    const char *t = http_req_header(req, "X-Tenant");
    if (t)
        http_req_set_tenant(req, t);
}

/* Read everything a handler may read, then answer (now or deferred). */
static void handler(void *arg, struct http_req *req, struct http_reply *rep)
{
    (void)arg;
    struct buf b = BUF_INIT;
    size_t len;
    const char *body = http_req_body(req, &len);
    buf_printf(&b, "%s %s %d %zu %lld ", http_req_method(req),
               http_req_path(req), (int)http_req_fault(req), len,
               (long long)http_req_body_received(req));
    buf_json_str(&b, http_req_fault_text(req));
    const char *q = http_req_query(req, "q");
    buf_puts(&b, q ? q : "-");
    const char *host = http_req_header(req, "host");
    buf_puts(&b, host ? host : "-");
    if (len)
        buf_append(&b, body, len > 64 ? 64 : len);
    http_reply_header(rep, "X-Echo", "1");
    if (strstr(http_req_path(req), "defer") && !http_req_fault(req) &&
        !http_req_stopping(req)) {
        struct http_defer *d = http_reply_defer(rep);
        http_reply_take_body(rep, 200, "text/plain", &b);
        http_resume(d); /* ready before the handler returns */
        return;
    }
    http_reply_take_body(rep, strstr(http_req_path(req), "head") ? 204 : 200,
                         "text/plain", &b);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    log_set_level(LOG_ERROR);
    srv.opts = (struct http_opts){ .threads = 1,
                                   .body_limit = 4096,
                                   .body_memory = 8192,
                                   .tenant_share = 3000,
                                   .conn_timeout_s = 30 };
    srv.admit = admit;
    srv.handler = handler;
    srv.fd = -1;
    pthread_mutex_init(&srv.tenant_lock, NULL);
    lp.srv = &srv;
    lp.ep = epoll_create1(EPOLL_CLOEXEC);
    lp.wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&lp.lock, NULL);
}

static void drain(void)
{
    static char sink_buf[65536];
    while (recv(peer, sink_buf, sizeof(sink_buf), MSG_DONTWAIT) > 0)
        ;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) <
        0)
        return 0;
    peer = sv[1];
    atomic_fetch_add(&srv.conns, 1);
    struct http_conn *c = xcalloc(1, sizeof(*c));
    c->fd = sv[0];
    c->loop = &lp;
    c->state = C_HEAD;
    tlist_touch(c, &lp.idle, 30000);
    conn_watch(c, EPOLLIN);

    /* The first byte picks how the rest arrives: in 1 to 8 equal reads
     * (so heads, chunk lines and bodies are cut at every kind of place),
     * or, with its top bit, 3 bytes at a time. */
    size_t off = size ? 1 : 0, rest = size - off;
    size_t parts = size ? (size_t)(data[0] & 7) + 1 : 1;
    size_t step = size && (data[0] & 0x80) ? 3 : (rest + parts - 1) / parts;
    if (step == 0)
        step = 1;
    while (off < size && !c->closing) {
        size_t n = size - off < step ? size - off : step;
        if (send(peer, data + off, n, MSG_NOSIGNAL) < 0)
            break;
        off += n;
        for (int spins = 0; spins < 64 && !c->closing; spins++) {
            int avail = 0;
            if (c->state == C_WRITE) {
                drain();
                write_out(c);
            } else if ((c->state == C_HEAD || c->state == C_BODY ||
                        c->state == C_LINGER) &&
                       ioctl(c->fd, FIONREAD, &avail) == 0 && avail > 0) {
                http_conn_readable(c);
            } else {
                break;
            }
            http_conn_drive(c);
        }
    }
    if (!c->closing) { /* the peer leaves: what remains is read as EOF */
        shutdown(peer, SHUT_WR);
        for (int spins = 0; spins < 8 && !c->closing; spins++) {
            if (c->state == C_WRITE) {
                drain();
                write_out(c);
            } else if (c->state != C_HANDLE) {
                http_conn_readable(c);
            } else {
                break;
            }
            http_conn_drive(c);
        }
    }
    http_conn_free(c);
    close(peer);
    peer = -1;
    /* Every byte charged to the caps was given back with its request. */
    if (atomic_load(&srv.held) != 0 || atomic_load(&srv.inflight) != 0)
        __builtin_trap();
    for (size_t i = 0; i < TENANT_SLOTS; i++)
        if (srv.tenants[i].held != 0)
            __builtin_trap();
    return 0;
}
