/* net/'s net_multi: many requests in flight on one thread, against a
 * loopback server made with paddock's own http/ module. */
#include "../../src/http/http.h"
#include "../../src/net/net.h"
#include "unit.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static int port;

/* /echo/N answers {"n":N}; /slow answers after 300 ms; /big 2 MiB. */
static void handle(void *arg, struct http_req *req, struct http_reply *rep)
{
    (void)arg;
    const char *p = http_req_path(req);
    struct buf b = BUF_INIT;
    if (strncmp(p, "/echo/", 6) == 0) {
        buf_printf(&b, "{\"n\":%s}", p + 6);
        http_reply_header(rep, "Retry-After", "7");
    } else if (strcmp(p, "/slow") == 0) {
        usleep(300 * 1000);
        buf_puts(&b, "{}");
    } else if (strcmp(p, "/big") == 0) {
        for (int i = 0; i < (2 << 20) / 64; i++)
            buf_puts(&b, "0123456789012345678901234567890123456789012345678901"
                         "234567890\n");
    } else {
        buf_puts(&b, "{}");
        http_reply_take_body(rep, 404, "application/json", &b);
        return;
    }
    http_reply_take_body(rep, 200, "application/json", &b);
}

struct seen {
    int done, ok, status_sum, too_large, stopped;
    int retry_after;
};

static void on_done(void *arg, int rc, const struct net_http_resp *resp,
                    const struct errmsg *err)
{
    struct seen *s = arg;
    (void)err;
    s->done++;
    if (rc == 0) {
        s->ok++;
        s->status_sum += (int)resp->status;
        s->retry_after = resp->retry_after_s;
    } else if (rc == ERR_TOO_LARGE) {
        s->too_large++;
    } else if (rc == ERR_STOPPED) {
        s->stopped++;
    }
}

static struct net_http_req get(const char *url)
{
    return (struct net_http_req){
        .method = "GET", .url = url, .max_bytes = 1 << 20, .timeout_ms = 10000
    };
}

static void many_at_once(void)
{
    struct net_multi *m;
    struct errmsg err = { 0 };
    struct seen s = { 0 };
    CHECK_INT(net_multi_new(&m, &err), 0);
    char url[128];
    for (int i = 0; i < 200; i++) {
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo/%d", port, i);
        struct net_http_req r = get(url);
        CHECK_INT(net_multi_add(m, &r, on_done, &s, &err), 0);
    } /* the URLs were copied: the buffer is reused */
    CHECK_INT((int)net_multi_count(m), 200);
    int64_t end = clock_mono_ms() + 20000;
    while (net_multi_run(m, 100) > 0 && clock_mono_ms() < end)
        ;
    CHECK_INT(s.done, 200);
    CHECK_INT(s.ok, 200);
    CHECK_INT(s.status_sum, 200 * 200);
    CHECK_INT(s.retry_after, 7);
    net_multi_free(m);
}

static void caps_errors_and_free(void)
{
    struct net_multi *m;
    struct errmsg err = { 0 };
    struct seen s = { 0 };
    char url[128];
    CHECK_INT(net_multi_new(&m, &err), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/big", port);
    struct net_http_req r = get(url);
    CHECK_INT(net_multi_add(m, &r, on_done, &s, &err), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/nope", port);
    r = get(url);
    CHECK_INT(net_multi_add(m, &r, on_done, &s, &err), 0);
    r = get("ftp://example.com/x");
    CHECK_INT(net_multi_add(m, &r, on_done, &s, &err), ERR_INVALID_URL);
    r = get(url);
    r.to_fd = true;
    CHECK_INT(net_multi_add(m, &r, on_done, &s, &err), ERR_INVALID_PARAMETER);
    int64_t end = clock_mono_ms() + 20000;
    while (net_multi_run(m, 100) > 0 && clock_mono_ms() < end)
        ;
    CHECK_INT(s.done, 2);
    CHECK_INT(s.too_large, 1);
    CHECK_INT(s.status_sum, 404);
    /* Freed with requests in flight: each ends, stopped. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/slow", port);
    r = get(url);
    CHECK_INT(net_multi_add(m, &r, on_done, &s, &err), 0);
    net_multi_run(m, 10);
    net_multi_free(m);
    CHECK_INT(s.stopped, 1);
}

int main(void)
{
    unit_suite = "net_multi";
    signal(SIGPIPE, SIG_IGN);
    struct errmsg err = { 0 };
    struct http_server *srv = NULL;
    struct http_opts o = { .host = "127.0.0.1",
                           .threads = 2,
                           .body_limit = 1 << 20,
                           .conn_timeout_s = 30 };
    if (net_global_init(&err) < 0 || http_listen(&o, &srv, &err) < 0 ||
        http_serve(srv, NULL, handle, NULL, &err) < 0) {
        fprintf(stderr, "%s\n", errmsg_text(&err));
        return 1;
    }
    port = http_port(srv);
    RUN(many_at_once);
    RUN(caps_errors_and_free);
    http_stop(srv);
    net_global_fini();
    return UNIT_END();
}
