/*
 * A fake HappyHorse provider for the relay's tests and bench: the DashScope
 * dialect (and the TTAPI prefix) on 127.0.0.1, on paddock's own http/
 * module. A task is PENDING, then RUNNING, then SUCCEEDED `--seconds`
 * after its submit (by the clock), with a link to `--video`; it counts
 * every request so a test can check that nothing was submitted twice and
 * that polls kept to their schedule.
 *
 *   provider --video FILE [--seconds S] [--key KEY] [--never]
 *            [--error-every N] [--throttle-every N] [--retry-after S]
 *            [--fail-every N]
 *
 * --never: tasks never finish. --error-every N: every Nth API request
 * answers 500; --throttle-every N: every Nth answers 429 (with
 * Retry-After S when given). --fail-every N: every Nth task ends FAILED
 * DataInspectionFailed. Prints "provider: listening on PORT" once ready;
 * SIGTERM stops it. GET /stats answers the counts as JSON.
 */
#include "../../src/core/core.h"
#include "../../src/http/http.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define TASKS_MAX 200000

struct ptask {
    char id[40];
    char idem[80];
    int64_t submit_ms; /* monotonic */
    int polls;
    int64_t last_poll_ms;
    int64_t min_gap_ms; /* shortest time between two polls of it */
    bool fail;
};

static struct {
    const char *video, *key;
    int64_t seconds_ms;
    bool never;
    int error_every, throttle_every, fail_every, retry_after;
    pthread_mutex_t lock;
    struct ptask *tasks;
    size_t n;
    uint64_t requests, submits, replays, polls, downloads, errors, throttles;
    int64_t first_ms, last_ms;
} P = { .seconds_ms = 3000, .lock = PTHREAD_MUTEX_INITIALIZER };

static void reply(struct http_reply *rep, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply(struct http_reply *rep, int status, const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    http_reply_take_body(rep, status, "application/json", &b);
}

/* Task ids are "fake-<index>-<random>": found without a search. */
static struct ptask *find(const char *id)
{
    char *end;
    if (strncmp(id, "fake-", 5) != 0)
        return NULL;
    unsigned long i = strtoul(id + 5, &end, 10);
    if (end == id + 5 || *end != '-' || i >= P.n)
        return NULL;
    return strcmp(P.tasks[i].id, id) == 0 ? &P.tasks[i] : NULL;
}

/* Is it the right key, in either dialect's header? */
static bool keyed(struct http_req *req)
{
    const char *a = http_req_header(req, "Authorization");
    const char *t = http_req_header(req, "TT-API-KEY");
    if (a && strncasecmp(a, "Bearer ", 7) == 0 && strcmp(a + 7, P.key) == 0)
        return true;
    return t && strcmp(t, P.key) == 0;
}

static void submit(struct http_req *req, struct http_reply *rep, int64_t now)
{
    const char *idem = http_req_header(req, "Idempotency-Key");
    if (idem)
        for (size_t i = 0; i < P.n; i++)
            if (strcmp(P.tasks[i].idem, idem) == 0) {
                P.replays++;
                reply(rep, 200,
                      "{\"request_id\":\"r\",\"output\":{\"task_id\":\"%s\","
                      "\"task_status\":\"PENDING\"}}",
                      P.tasks[i].id);
                return;
            }
    if (P.n == TASKS_MAX) {
        reply(rep, 429, "{\"code\":\"Throttling\",\"message\":\"full\"}");
        return;
    }
    struct ptask *t = &P.tasks[P.n];
    memset(t, 0, sizeof(*t));
    uint32_t r = 0;
    id_random(&r, sizeof(r));
    snprintf(t->id, sizeof(t->id), "fake-%zu-%08x", P.n++, r);
    snprintf(t->idem, sizeof(t->idem), "%s", idem ? idem : "");
    t->submit_ms = now;
    t->min_gap_ms = INT64_MAX;
    t->fail = P.fail_every > 0 && P.n % (size_t)P.fail_every == 0;
    P.submits++;
    reply(rep, 200,
          "{\"request_id\":\"r\",\"output\":{\"task_id\":\"%s\","
          "\"task_status\":\"PENDING\"}}",
          t->id);
}

static void query(struct http_req *req, const char *id, struct http_reply *rep,
                  int64_t now)
{
    struct ptask *t = find(id);
    if (!t) {
        reply(rep, 200,
              "{\"request_id\":\"r\",\"output\":{\"task_id\":\"%s\","
              "\"task_status\":\"UNKNOWN\"}}",
              strlen(id) < 64 ? id : "x");
        return;
    }
    P.polls++;
    if (t->polls++ && now - t->last_poll_ms < t->min_gap_ms)
        t->min_gap_ms = now - t->last_poll_ms;
    t->last_poll_ms = now;
    int64_t age = now - t->submit_ms;
    if (P.never || age < P.seconds_ms) {
        int pct = (int)(age * 100 / (P.seconds_ms ? P.seconds_ms : 1));
        reply(rep, 200,
              "{\"request_id\":\"r\",\"output\":{\"task_id\":\"%s\","
              "\"task_status\":\"%s\",\"progress\":%d}}",
              t->id, age < P.seconds_ms / 4 ? "PENDING" : "RUNNING",
              pct > 99 ? 99 : pct);
    } else if (t->fail) {
        reply(rep, 200,
              "{\"request_id\":\"r\",\"output\":{\"task_id\":\"%s\","
              "\"task_status\":\"FAILED\",\"code\":"
              "\"DataInspectionFailed\",\"message\":\"the fake refused "
              "it\"}}",
              t->id);
    } else {
        reply(rep, 200,
              "{\"request_id\":\"r\",\"output\":{\"task_id\":\"%s\","
              "\"task_status\":\"SUCCEEDED\",\"video_url\":"
              "\"http://%s/video.mp4\"},\"usage\":{\"duration\":3,"
              "\"output_video_duration\":3,\"SR\":480,\"ratio\":\"16:9\"}}",
              t->id, http_req_header(req, "Host"));
    }
}

static void stats(struct http_reply *rep)
{
    size_t unpolled = 0;
    int64_t min_gap = INT64_MAX;
    for (size_t i = 0; i < P.n; i++) {
        if (!P.tasks[i].polls)
            unpolled++;
        if (P.tasks[i].polls > 1 && P.tasks[i].min_gap_ms < min_gap)
            min_gap = P.tasks[i].min_gap_ms;
    }
    reply(rep, 200,
          "{\"tasks\":%zu,\"requests\":%llu,\"submits\":%llu,"
          "\"replays\":%llu,\"polls\":%llu,\"downloads\":%llu,"
          "\"errors\":%llu,\"throttles\":%llu,\"unpolled\":%zu,"
          "\"min_poll_gap_ms\":%lld,\"span_ms\":%lld}",
          P.n, (unsigned long long)P.requests, (unsigned long long)P.submits,
          (unsigned long long)P.replays, (unsigned long long)P.polls,
          (unsigned long long)P.downloads, (unsigned long long)P.errors,
          (unsigned long long)P.throttles, unpolled,
          (long long)(min_gap == INT64_MAX ? -1 : min_gap),
          (long long)(P.last_ms - P.first_ms));
}

static void handle(void *arg, struct http_req *req, struct http_reply *rep)
{
    (void)arg;
    const char *path = http_req_path(req);
    const char *method = http_req_method(req);
    int64_t now = clock_mono_ms();
    if (strncmp(path, "/happyhorse/", 12) == 0)
        path += 11;
    if (http_req_fault(req) || http_req_stopping(req)) {
        reply(rep, 400, "{\"code\":\"BadRequest\",\"message\":\"fault\"}");
        return;
    }
    if (strcmp(path, "/stats") == 0) {
        pthread_mutex_lock(&P.lock);
        stats(rep);
        pthread_mutex_unlock(&P.lock);
        return;
    }
    if (strcmp(path, "/video.mp4") == 0) {
        int fd = open(P.video, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
            if (fd >= 0)
                close(fd);
            reply(rep, 404, "{}");
            return;
        }
        pthread_mutex_lock(&P.lock);
        P.downloads++;
        pthread_mutex_unlock(&P.lock);
        http_reply_file(req, rep, fd, (uint64_t)st.st_size, "video/mp4", NULL);
        return;
    }
    pthread_mutex_lock(&P.lock);
    uint64_t nth = ++P.requests;
    if (!P.first_ms)
        P.first_ms = now;
    P.last_ms = now;
    if (!keyed(req)) {
        reply(rep, 401,
              "{\"code\":\"InvalidApiKey\",\"message\":\"Invalid API-key "
              "provided.\"}");
    } else if (P.error_every && nth % (uint64_t)P.error_every == 0) {
        P.errors++;
        reply(rep, 500, "{\"code\":\"InternalError\",\"message\":\"storm\"}");
    } else if (P.throttle_every && nth % (uint64_t)P.throttle_every == 0) {
        P.throttles++;
        if (P.retry_after) {
            char ra[16];
            snprintf(ra, sizeof(ra), "%d", P.retry_after);
            http_reply_header(rep, "Retry-After", ra);
        }
        reply(rep, 429, "{\"code\":\"Throttling\",\"message\":\"slow down\"}");
    } else if (strcmp(method, "POST") == 0 &&
               strcmp(path, "/api/v1/services/aigc/video-generation/"
                            "video-synthesis") == 0) {
        submit(req, rep, now);
    } else if (strcmp(method, "GET") == 0 &&
               strncmp(path, "/api/v1/tasks/", 14) == 0) {
        query(req, path + 14, rep, now);
    } else {
        reply(rep, 404, "{\"code\":\"NotFound\",\"message\":\"no route\"}");
    }
    pthread_mutex_unlock(&P.lock);
}

/* A whole number option, 0..1000000. */
static int num(const char *opt, const char *v)
{
    int64_t n;
    if (parse_i64(v, 0, 1000000, &n) < 0) {
        fprintf(stderr, "provider: %s: '%s' is not a number\n", opt, v);
        exit(2);
    }
    return (int)n;
}

int main(int argc, char **argv)
{
    P.key = "provider-key";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--never") == 0) {
            P.never = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "provider: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--video") == 0)
            P.video = v;
        else if (strcmp(a, "--key") == 0)
            P.key = v;
        else if (strcmp(a, "--seconds") == 0)
            P.seconds_ms = (int64_t)num(a, v) * 1000;
        else if (strcmp(a, "--error-every") == 0)
            P.error_every = num(a, v);
        else if (strcmp(a, "--throttle-every") == 0)
            P.throttle_every = num(a, v);
        else if (strcmp(a, "--retry-after") == 0)
            P.retry_after = num(a, v);
        else if (strcmp(a, "--fail-every") == 0)
            P.fail_every = num(a, v);
        else {
            fprintf(stderr, "provider: unknown option %s\n", a);
            return 2;
        }
    }
    if (!P.video) {
        fprintf(stderr, "provider: --video FILE is required\n");
        return 2;
    }
    P.tasks = xcalloc(TASKS_MAX, sizeof(*P.tasks));
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct http_opts o = { .host = "127.0.0.1",
                           .threads = 1,
                           .body_limit = 1 << 20,
                           .conn_timeout_s = 30 };
    struct http_server *srv = NULL;
    struct errmsg err = { 0 };
    if (http_listen(&o, &srv, &err) < 0 ||
        http_serve(srv, NULL, handle, NULL, &err) < 0) {
        fprintf(stderr, "provider: %s\n", errmsg_text(&err));
        return 1;
    }
    printf("provider: listening on %d\n", http_port(srv));
    fflush(stdout);
    int sig;
    sigwait(&sigs, &sig);
    http_stop(srv);
    free(P.tasks);
    return 0;
}
