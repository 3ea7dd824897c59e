/*
 * Unit tests of src/hh's synchronous calls (client.c): retries, submit,
 * wait, download and naps, against a scripted fake endpoint served in this
 * process by paddock's own http/ module on 127.0.0.1 (an ephemeral port).
 */
#include "../../src/hh/hh.h"
#include "../../src/http/http.h"
#include "unit.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* --------------------------------------------------- the fake endpoint */

#define FAKE_SCRIPT 16

struct fake_answer {
    int status;
    const char *body; /* "VIDEO": the video's bytes */
    const char *retry_after;
};

/* The kinds of request the fake answers, each from its own script. */
enum fake_kind { SUBMIT, POLL, VIDEO, FAKE_KINDS };

static struct fake {
    pthread_mutex_t lock; /* the handler runs on the server's thread */
    struct {
        struct fake_answer script[FAKE_SCRIPT];
        int scripted, seen; /* then the default answer */
    } q[FAKE_KINDS];
    char auth[128], async[32], idem[80], path[256], video_auth[128];
    char body[1024];
} fake = { .lock = PTHREAD_MUTEX_INITIALIZER };

static struct http_server *fake_srv;
static char fake_base[64];
static char video[20000]; /* the video's bytes */

static void fake_reset(void)
{
    pthread_mutex_lock(&fake.lock);
    memset(fake.q, 0, sizeof(fake.q));
    fake.auth[0] = fake.async[0] = fake.idem[0] = fake.path[0] = '\0';
    fake.video_auth[0] = fake.body[0] = '\0';
    pthread_mutex_unlock(&fake.lock);
}

/* The next `count` answers to requests of `kind`. */
static void fake_script(enum fake_kind kind, const struct fake_answer *from,
                        int count)
{
    pthread_mutex_lock(&fake.lock);
    memcpy(fake.q[kind].script, from, (size_t)count * sizeof(*from));
    fake.q[kind].scripted = count;
    pthread_mutex_unlock(&fake.lock);
}

/* Requests of `kind` seen since the reset. */
static int fake_seen(enum fake_kind kind)
{
    pthread_mutex_lock(&fake.lock);
    int n = fake.q[kind].seen;
    pthread_mutex_unlock(&fake.lock);
    return n;
}

/* The answer to this request of `kind` (fake.lock held). */
static struct fake_answer fake_next(enum fake_kind kind,
                                    struct fake_answer dflt)
{
    int i = fake.q[kind].seen++;
    return i < fake.q[kind].scripted ? fake.q[kind].script[i] : dflt;
}

static void copy_header(struct http_req *req, const char *name, char *out,
                        size_t size)
{
    const char *v = http_req_header(req, name);
    snprintf(out, size, "%s", v ? v : "");
}

static void fake_handler(void *arg, struct http_req *req,
                         struct http_reply *rep)
{
    (void)arg;
    const char *path = http_req_path(req);
    const char *method = http_req_method(req);
    struct fake_answer a = { 404, "{\"code\":\"NotFound\"}", NULL };
    struct buf b = BUF_INIT;

    if (strncmp(path, "/happyhorse/", 12) == 0)
        path += 11;
    pthread_mutex_lock(&fake.lock);
    if (strcmp(path, "/video.mp4") == 0) {
        copy_header(req, "Authorization", fake.video_auth,
                    sizeof(fake.video_auth));
        a = fake_next(VIDEO, (struct fake_answer){ 200, "VIDEO", NULL });
    } else if (strcmp(method, "POST") == 0 &&
               strcmp(path, HH_SUBMIT_PATH) == 0) {
        size_t len;
        const char *body = http_req_body(req, &len);
        snprintf(fake.body, sizeof(fake.body), "%.*s", (int)len, body);
        copy_header(req, "Authorization", fake.auth, sizeof(fake.auth));
        copy_header(req, "X-DashScope-Async", fake.async, sizeof(fake.async));
        copy_header(req, "Idempotency-Key", fake.idem, sizeof(fake.idem));
        a = fake_next(SUBMIT,
                      (struct fake_answer){ 200,
                                            "{\"output\":{\"task_id\":\"up-1\","
                                            "\"task_status\":\"PENDING\"}}",
                                            NULL });
    } else if (strcmp(method, "GET") == 0 &&
               strncmp(path, HH_TASKS_PATH, strlen(HH_TASKS_PATH)) == 0) {
        snprintf(fake.path, sizeof(fake.path), "%s", http_req_path(req));
        copy_header(req, "Authorization", fake.auth, sizeof(fake.auth));
        a = fake_next(POLL,
                      (struct fake_answer){ 200,
                                            "{\"output\":{\"task_id\":\"up-1\","
                                            "\"task_status\":\"SUCCEEDED\","
                                            "\"video_url\":\"http://x/v\"}}",
                                            NULL });
    }
    if (strcmp(a.body, "VIDEO") == 0)
        buf_append(&b, video, sizeof(video));
    else
        buf_puts(&b, a.body);
    pthread_mutex_unlock(&fake.lock);
    http_reply_take_body(rep, a.status, "application/json", &b);
    if (a.retry_after)
        http_reply_header(rep, "Retry-After", a.retry_after);
    buf_fini(&b);
}

static bool fake_start(void)
{
    struct errmsg err = { 0 };
    const struct http_opts o = { .host = "127.0.0.1",
                                 .port = 0,
                                 .threads = 1,
                                 .body_limit = 1 << 20,
                                 .body_memory = 8 << 20,
                                 .conn_timeout_s = 30 };
    if (http_listen(&o, &fake_srv, &err) < 0 ||
        http_serve(fake_srv, NULL, fake_handler, NULL, &err) < 0) {
        fprintf(stderr, "  fake endpoint: %s\n", errmsg_text(&err));
        return false;
    }
    snprintf(fake_base, sizeof(fake_base), "http://127.0.0.1:%d",
             http_port(fake_srv));
    for (size_t i = 0; i < sizeof(video); i++)
        video[i] = (char)(i * 7 + 3);
    return true;
}

/* A client on the fake: DashScope, key "k", quick timeouts. */
struct rig {
    struct hh_endpoint ep;
    struct net_http *http;
    struct hh_client c;
    atomic_bool stop;
    int paced, retried;
    int64_t waits[FAKE_SCRIPT];
};

static bool count_pace(void *arg)
{
    struct rig *r = arg;
    r->paced++;
    return !atomic_load(&r->stop);
}

static bool rig_init(struct rig *r, enum hh_dialect d, const char *base)
{
    struct errmsg err = { 0 };
    memset(r, 0, sizeof(*r));
    if (hh_endpoint_init(&r->ep, d, base, "k", &err) < 0 ||
        net_http_new(&r->http, &err) < 0) {
        fprintf(stderr, "  rig: %s\n", errmsg_text(&err));
        CHECK(false);
        return false;
    }
    r->c = (struct hh_client){ .ep = &r->ep,
                               .http = r->http,
                               .stop = &r->stop,
                               .timeout_ms = 5000,
                               .pace = count_pace,
                               .arg = r };
    return true;
}

static void rig_fini(struct rig *r)
{
    net_http_free(r->http);
    hh_endpoint_fini(&r->ep);
}

static void on_retry(void *arg, int rc, const struct errmsg *e,
                     const struct hh_answer *a, int64_t wait_ms)
{
    struct rig *r = arg;
    (void)e;
    CHECK((rc == 0) == (a != NULL));
    if (r->retried < FAKE_SCRIPT)
        r->waits[r->retried] = wait_ms;
    r->retried++;
}

/* A port bound on 127.0.0.1 that never listens: connections are refused. */
static int closed_port(char base[64])
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t len = sizeof(sin);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
          getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
    snprintf(base, 64, "http://127.0.0.1:%u", ntohs(sin.sin_port));
    return fd;
}

/* ----------------------------------------------------------- the calls */

static void submit_retries(void)
{
    struct rig r;
    struct hh_answer a;
    struct hh_task t;
    struct errmsg e = { 0 };
    const char body[] = "{\"model\":\"m\"}";
    struct hh_retry retry = { .unit_ms = 10,
                              .throttled = HH_FOREVER,
                              .transient = 5,
                              .retry_after_max_ms = 50,
                              .on_retry = on_retry };
    if (!rig_init(&r, HH_DASHSCOPE, fake_base))
        return;
    retry.arg = &r;

    /* 429 with a Retry-After (capped) and without, 5xx: then the task. */
    fake_reset();
    const struct fake_answer busy[] = {
        { 429, "{\"code\":\"Throttling\"}", "3" },
        { 429, "{\"code\":\"Throttling\"}", NULL },
        { 500, "{\"code\":\"InternalError\"}", NULL },
        { 502, "<html>bad gateway</html>", NULL },
    };
    fake_script(SUBMIT, busy, ARRAY_LEN(busy));
    CHECK_INT(hh_submit(&r.c, body, strlen(body), "idem-7", &retry, &a, &e), 0);
    hh_task_read(&a, &t);
    CHECK_INT(a.status, 200);
    CHECK_STR(t.task_id, "up-1");
    CHECK_INT(fake_seen(SUBMIT), 5);
    CHECK_INT(r.paced, 5);
    CHECK_INT(r.retried, 4);
    /* 429s: Retry-After 3 s capped at 50 ms (never spread), then unit << 1;
     * 5xx: unit << 0, then << 1 (each kind counts its own); a back-off is
     * spread over [w/2, 3w/2). */
    CHECK_INT(r.waits[0], 50);
    CHECK(r.waits[1] >= 10 && r.waits[1] < 30);
    CHECK(r.waits[2] >= 5 && r.waits[2] < 15);
    CHECK(r.waits[3] >= 10 && r.waits[3] < 30);
    CHECK_STR(fake.auth, "Bearer k");
    CHECK_STR(fake.async, "enable");
    CHECK_STR(fake.idem, "idem-7");
    CHECK_STR(fake.body, body);
    hh_answer_fini(&a);

    /* 5xx every time: `transient` retries, then the last answer. */
    fake_reset();
    r.retried = 0;
    struct fake_answer down[FAKE_SCRIPT];
    for (int i = 0; i < FAKE_SCRIPT; i++)
        down[i] = (struct fake_answer){ 503, "{\"code\":\"Down\"}", "0" };
    fake_script(SUBMIT, down, FAKE_SCRIPT);
    retry.transient = 2;
    CHECK_INT(hh_submit(&r.c, body, strlen(body), NULL, &retry, &a, &e), 0);
    CHECK_INT(a.status, 503);
    CHECK_INT(fake_seen(SUBMIT), 3);
    CHECK_STR(fake.idem, "");
    hh_answer_fini(&a);

    /* The CLI's rule: a 503 is a throttle, `throttled` of them. */
    fake_reset();
    fake_script(SUBMIT, down, FAKE_SCRIPT);
    struct hh_retry cli = { .unit_ms = 10,
                            .throttled = 2,
                            .busy_503 = true,
                            .retry_after_max_ms = 50 };
    CHECK_INT(hh_submit(&r.c, body, strlen(body), NULL, &cli, &a, &e), 0);
    CHECK_INT(a.status, 503);
    CHECK_INT(fake_seen(SUBMIT), 3);
    hh_answer_fini(&a);

    /* 401 and 400 end at once. */
    static const int final[] = { 401, 403, 400 };
    for (size_t i = 0; i < ARRAY_LEN(final); i++) {
        fake_reset();
        const struct fake_answer one[] = { { final[i], "{\"code\":\"No\"}",
                                             NULL } };
        fake_script(SUBMIT, one, 1);
        CHECK_INT(hh_submit(&r.c, body, strlen(body), NULL, &retry, &a, &e), 0);
        CHECK_INT(a.status, final[i]);
        CHECK_INT(fake_seen(SUBMIT), 1);
        hh_answer_fini(&a);
    }

    /* The pace says stop: nothing is sent. */
    fake_reset();
    atomic_store(&r.stop, true);
    CHECK_INT(hh_submit(&r.c, body, strlen(body), NULL, &retry, &a, &e),
              ERR_STOPPED);
    CHECK_INT(fake_seen(SUBMIT), 0);
    hh_answer_fini(&a);
    rig_fini(&r);

    /* No answer at all: retried, then net_http's error, the key not in
     * it. */
    char closed[64];
    int fd = closed_port(closed);
    if (!rig_init(&r, HH_TTAPI, closed))
        return;
    retry.arg = &r;
    CHECK_INT(hh_submit(&r.c, body, strlen(body), NULL, &retry, &a, &e),
              ERR_IO);
    CHECK_INT(r.retried, 2);
    CHECK(strstr(e.text, "POST") && !strstr(e.text, "TT-API-KEY"));
    hh_answer_fini(&a);
    rig_fini(&r);
    close(fd);
}

/* What hh_wait's callback saw. */
struct seen {
    int polls, changes, stop_at;
    atomic_bool *stop;
    char statuses[256];
    int64_t delays[FAKE_SCRIPT];
    int transient[FAKE_SCRIPT];
};

static void on_poll(void *arg, const struct hh_poll *p)
{
    struct seen *s = arg;
    size_t n = strlen(s->statuses);
    const char *what = p->task ? p->task->status_text
                       : p->rc ? "neterr"
                               : "http";
    snprintf(s->statuses + n, sizeof(s->statuses) - n, "%s%s%s", n ? " " : "",
             what, p->changed ? "*" : "");
    if (s->polls < FAKE_SCRIPT) {
        s->delays[s->polls] = p->delay_ms;
        s->transient[s->polls] = p->transient;
    }
    s->polls++;
    if (s->stop_at && s->polls == s->stop_at)
        atomic_store(s->stop, true);
}

static void waits(void)
{
    struct rig r;
    struct hh_answer a;
    struct hh_task t;
    struct errmsg e = { 0 };
    struct seen s = { 0 };
    struct hh_wait w = { .poll_ms = 10,
                         .poll_max_ms = 20,
                         .retry_after_max_ms = 40,
                         .transient_max = 2,
                         .on_poll = on_poll,
                         .arg = &s };
    if (!rig_init(&r, HH_TTAPI, fake_base))
        return;

    /* To the end, through every kind of look. */
    fake_reset();
    const struct fake_answer polls[] = {
        { 200, "{\"output\":{\"task_status\":\"PENDING\"}}", NULL },
        { 503, "{}", "1" },
        { 200, "{\"output\":{\"task_status\":\"RUNNING\",\"progress\":40}}",
          NULL },
        { 500, "{}", NULL },
        { 200, "{\"garbled\":true}", NULL },
        { 200, "{\"output\":{\"task_status\":\"RUNNING\",\"progress\":50}}",
          NULL },
        { 200, "{\"output\":{\"task_status\":\"QUEUED\"}}", NULL },
        { 429, "{}", NULL },
    };
    fake_script(POLL, polls, ARRAY_LEN(polls));
    w.just_submitted = true;
    CHECK_INT(hh_wait(&r.c, "up-1", &w, &a, &t, &e), 0);
    CHECK_INT(a.status, 200);
    CHECK_INT(t.status, HH_SUCCEEDED);
    CHECK_STR(t.video_url, "http://x/v");
    CHECK_STR(fake.path, "/happyhorse/api/v1/tasks/up-1");
    CHECK_INT(fake_seen(POLL), 9);
    /* just_submitted: the first PENDING is no change. */
    CHECK_STR(s.statuses, "PENDING http RUNNING* http http RUNNING QUEUED* "
                          "http SUCCEEDED*");
    /* Retry-After 1 s, capped at 40 ms; the last look ends the wait. */
    CHECK_INT(s.delays[1], 40);
    CHECK_INT(s.delays[8], -1);
    CHECK(s.transient[3] == 1 && s.transient[4] == 2 && s.transient[5] == 0);
    hh_answer_fini(&a);

    /* Past transient_max: the 5xx answer ends it. */
    fake_reset();
    memset(&s, 0, sizeof(s));
    struct fake_answer down[FAKE_SCRIPT];
    for (int i = 0; i < FAKE_SCRIPT; i++)
        down[i] = (struct fake_answer){ 500, "{\"code\":\"Oops\"}", NULL };
    fake_script(POLL, down, FAKE_SCRIPT);
    w.just_submitted = false;
    CHECK_INT(hh_wait(&r.c, "up-1", &w, &a, &t, &e), 0);
    CHECK_INT(a.status, 500);
    CHECK_INT(t.status, HH_NONE);
    CHECK_INT(fake_seen(POLL), 3);
    CHECK_INT(s.delays[2], -1);
    hh_answer_fini(&a);

    /* A 4xx ends it at once. */
    fake_reset();
    const struct fake_answer gone[] = { { 401, "{\"code\":\"No\"}", NULL } };
    fake_script(POLL, gone, 1);
    CHECK_INT(hh_wait(&r.c, "up-1", &w, &a, &t, &e), 0);
    CHECK_INT(a.status, 401);
    CHECK_INT(fake_seen(POLL), 1);
    hh_answer_fini(&a);

    /* The deadline; and the stop flag, set from the callback. */
    struct fake_answer running[FAKE_SCRIPT];
    for (int i = 0; i < FAKE_SCRIPT; i++)
        running[i] = (struct fake_answer){
            200, "{\"output\":{\"task_status\":\"RUNNING\"}}", NULL
        };
    fake_reset();
    fake_script(POLL, running, FAKE_SCRIPT);
    w.deadline_ms = clock_mono_ms() + 50;
    CHECK_INT(hh_wait(&r.c, "up-1", &w, &a, &t, &e), ERR_TIMEOUT);
    CHECK(fake_seen(POLL) >= 2 && fake_seen(POLL) < FAKE_SCRIPT);
    hh_answer_fini(&a);
    w.deadline_ms = 0;
    fake_reset();
    fake_script(POLL, running, FAKE_SCRIPT);
    memset(&s, 0, sizeof(s));
    s.stop = &r.stop;
    s.stop_at = 2;
    CHECK_INT(hh_wait(&r.c, "up-1", &w, &a, &t, &e), ERR_STOPPED);
    CHECK_INT(fake_seen(POLL), 2);
    hh_answer_fini(&a);
    atomic_store(&r.stop, false);

    /* An id that cannot go into a URL is not asked about. */
    fake_reset();
    CHECK_INT(hh_wait(&r.c, "../x", &w, &a, &t, &e), ERR_INVALID_PARAMETER);
    CHECK_INT(hh_query(&r.c, "a b", &a, &e), ERR_INVALID_PARAMETER);
    CHECK_INT(fake_seen(POLL), 0);
    CHECK_INT(hh_query(&r.c, "up-1", &a, &e), 0);
    CHECK_INT(fake_seen(POLL), 1);
    hh_answer_fini(&a);
    rig_fini(&r);
}

/* The bytes of fd from its start. */
static bool holds_video(int fd, size_t want)
{
    char got[sizeof(video) + 1];
    ssize_t n = pread(fd, got, sizeof(got), 0);
    return n == (ssize_t)want && memcmp(got, video, want) == 0;
}

static void downloads(void)
{
    struct rig r;
    struct net_http_resp resp;
    struct errmsg e = { 0 };
    char path[] = "/tmp/paddock-test-hh-XXXXXX";
    char url[128];
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0 || !rig_init(&r, HH_DASHSCOPE, fake_base))
        return;
    unlink(path);
    snprintf(url, sizeof(url), "%s/video.mp4?sig=SECRET", fake_base);
    struct hh_download d = { .url = url,
                             .fd = fd,
                             .max_bytes = sizeof(video),
                             .stall_ms = 5000,
                             .tries = 3,
                             .backoff_ms = 5 };

    /* A 503 and a 429 over stale bytes: then the whole video, from the
     * start. */
    fake_reset();
    const struct fake_answer flaky[] = { { 503, "{}", NULL },
                                         { 429, "{}", NULL } };
    fake_script(VIDEO, flaky, 2);
    CHECK_INT(write(fd, "stale", 5), 5);
    CHECK_INT(hh_download(&r.c, &d, &resp, &e), 0);
    CHECK_INT(resp.status, 200);
    CHECK_INT(resp.bytes, sizeof(video));
    CHECK_INT(fake_seen(VIDEO), 3);
    CHECK_INT(r.paced, 3);
    CHECK(holds_video(fd, sizeof(video)));
    CHECK_STR(fake.video_auth, ""); /* no key with the link */
    net_http_resp_fini(&resp);

    /* Another status: the answer, not retried. */
    fake_reset();
    const struct fake_answer missing[] = { { 404, "no such file", NULL } };
    fake_script(VIDEO, missing, 1);
    CHECK_INT(hh_download(&r.c, &d, &resp, &e), 0);
    CHECK_INT(resp.status, 404);
    CHECK_STR(resp.body.data, "no such file");
    CHECK_INT(fake_seen(VIDEO), 1);
    net_http_resp_fini(&resp);

    /* Too large: not retried. */
    fake_reset();
    d.max_bytes = 1000;
    CHECK_INT(hh_download(&r.c, &d, &resp, &e), ERR_TOO_LARGE);
    CHECK_INT(fake_seen(VIDEO), 1);
    net_http_resp_fini(&resp);

    /* 5xx every time: `tries` tries, then the last answer. */
    fake_reset();
    d.max_bytes = sizeof(video);
    struct fake_answer down[FAKE_SCRIPT];
    for (int i = 0; i < FAKE_SCRIPT; i++)
        down[i] = (struct fake_answer){ 502, "{}", NULL };
    fake_script(VIDEO, down, FAKE_SCRIPT);
    CHECK_INT(hh_download(&r.c, &d, &resp, &e), 0);
    CHECK_INT(resp.status, 502);
    CHECK_INT(fake_seen(VIDEO), 3);
    net_http_resp_fini(&resp);

    /* Stopped before the first try. */
    fake_reset();
    atomic_store(&r.stop, true);
    CHECK_INT(hh_download(&r.c, &d, &resp, &e), ERR_STOPPED);
    CHECK_INT(fake_seen(VIDEO), 0);
    net_http_resp_fini(&resp);
    rig_fini(&r);
    close(fd);
}

static void naps(void)
{
    atomic_bool stop = false;
    int64_t t0 = clock_mono_ms();
    CHECK(hh_nap(&stop, 30));
    CHECK(clock_mono_ms() - t0 >= 30);
    CHECK(hh_nap(NULL, 1));
    atomic_store(&stop, true);
    t0 = clock_mono_ms();
    CHECK(!hh_nap(&stop, 10000));
    CHECK(clock_mono_ms() - t0 < 1000);
}

int main(void)
{
    struct errmsg err = { 0 };
    unit_suite = "hh_client";
    RUN(naps);
    if (net_global_init(&err) == 0 && fake_start()) {
        RUN(submit_retries);
        RUN(waits);
        RUN(downloads);
    } else {
        printf("FAIL hh_client.fake_endpoint\n");
        unit_failed++;
    }
    http_stop(fake_srv);
    net_global_fini();
    return UNIT_END();
}
