/*
 * The engine conformance suite: the same cases over every engine kind, as
 * test_store.c runs over both stores. What docs/architecture.md
 * ("Interfaces", struct engine_ops) promises of any engine:
 * - a job ends with a valid MP4 (H.264, ffprobe) at out_path and usage that
 *   bills its seconds;
 * - progress, when reported, stays within 0..100 and never goes back;
 * - a stop set while the job runs ends it with ERR_STOPPED (what it left
 *   at out_path is the caller's to remove);
 * - a job it cannot finish (out_path in no directory) fails with a message,
 *   never a crash or a hang;
 * - it declares a capacity (-1: no cap, or >= 1 once it can take work).
 * The kinds: the sandbox; the command engine and a resident engine running
 * shell scripts written here (they copy a sandbox render, or wait to be
 * stopped when the prompt says "wait"); the upstream engine relaying to
 * tests/fakes/provider on 127.0.0.1. Synchronous engines go through
 * engine_run, asynchronous ones through engine_start and ctl->done.
 */
#define ENGINE_FIXTURE_DIR "/tmp/paddock-engine-conf-XXXXXX"
#include "../../src/net/net.h"
#include "engine_fixture.h"
#include "mp4probe.h"
#include "script.h"
#include "unit.h"

#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char video[128];    /* a sandbox render the scripts copy */
static char provider[512]; /* tests/fakes/provider, beside this binary */
static pid_t provider_pid; /* the fake upstream, when running */
static int provider_port;
static const char *kind;   /* the engine kind of the cases now running */
static struct engine *eng; /* its instance */

/* ------------------------------------------------------------ drivers */

/* What one job told its caller. */
struct outcome {
    atomic_bool stop;
    int stop_at_pct; /* set stop once progress reaches this; 0: never */
    int calls, last;
    bool monotone, bounded;
    /* The end, for asynchronous engines (ctl->done from any thread). */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool ended;
    int rc;
    struct job_result res;
    struct errmsg err;
};

static void on_progress(void *arg, int pct)
{
    struct outcome *o = arg;
    if (pct < 0 || pct > 100)
        o->bounded = false;
    if (o->calls && pct < o->last)
        o->monotone = false;
    o->last = pct;
    o->calls++;
    if (o->stop_at_pct && pct >= o->stop_at_pct)
        atomic_store(&o->stop, true);
}

static int save_ref(void *arg, const char *ref)
{
    (void)arg, (void)ref;
    return 0;
}

static void on_done(void *arg, int rc, const struct job_result *res,
                    const struct errmsg *err)
{
    struct outcome *o = arg;
    pthread_mutex_lock(&o->lock);
    o->rc = rc;
    o->res = *res;
    o->err = *err;
    o->ended = true;
    pthread_cond_signal(&o->cond);
    pthread_mutex_unlock(&o->lock);
}

/* Run `job` on the engine of the cases, whatever its kind; the outcome. */
static int drive(const struct job *job, const char *out, struct outcome *o)
{
    o->monotone = o->bounded = true;
    o->calls = o->last = 0;
    o->ended = false;
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->cond, NULL);
    /* A task id of its own: the relay's Idempotency-Key comes from it. */
    char task_id[UUID_STR_LEN + 1];
    id_uuid7(task_id);
    struct job_ctl ctl = { .task_id = task_id,
                           .stop = &o->stop,
                           .progress = on_progress,
                           .save_ref = save_ref,
                           .done = on_done,
                           .arg = o,
                           .claimed_mono = clock_mono_ms() };
    memset(&o->res, 0, sizeof(o->res));
    memset(&o->err, 0, sizeof(o->err));
    if (!engine_async(eng)) {
        o->rc = engine_run(eng, job, NULL, out, &ctl, &o->res, &o->err);
        return o->rc;
    }
    int rc = engine_start(eng, job, NULL, out, &ctl, &o->err);
    if (rc != 0) {
        o->rc = rc;
        return rc;
    }
    /* A hang guard, not a speed limit. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 120;
    pthread_mutex_lock(&o->lock);
    while (!o->ended && pthread_cond_timedwait(&o->cond, &o->lock, &until) == 0)
        ;
    bool ended = o->ended;
    pthread_mutex_unlock(&o->lock);
    if (!ended) {
        fprintf(stderr, "  %s: the job never ended\n", kind);
        o->rc = -1;
    }
    return o->rc;
}

static void outcome_fini(struct outcome *o)
{
    pthread_mutex_destroy(&o->lock);
    pthread_cond_destroy(&o->cond);
}

/* -------------------------------------------------------------- cases */

static void renders_a_job(void)
{
    struct job job;
    job_t2v(&job, 480, "16:9", 3, 11, "a horse on a beach");
    struct outcome o = { 0 };
    const char *out = path_of("conf-ok.mp4");
    CHECK_INT(drive(&job, out, &o), 0);
    if (o.rc)
        fprintf(stderr, "  %s: %s\n", kind, o.err.text);
    struct mp4_info info;
    CHECK_INT(mp4_probe(out, &info), 0);
    CHECK_STR(info.codec, "h264");
    CHECK(o.res.usage.output_s > 0);
    CHECK(o.monotone);
    CHECK(o.bounded);
    unlink(out);
    outcome_fini(&o);
}

/* Sets the stop flag 300 ms after the job began, in case the engine
 * reports no progress before its end (a relay polling a provider). */
static void *stop_later(void *arg)
{
    struct timespec ts = { 0, 300000000L };
    nanosleep(&ts, NULL);
    atomic_store((atomic_bool *)arg, true);
    return NULL;
}

static void stop_ends_the_job(void)
{
    struct job job;
    /* The sandbox's longest render, or a program told to wait. */
    job_t2v(&job, 1080, "16:9", 15, 12, "wait for the stop");
    struct outcome o = { .stop_at_pct = 1 };
    const char *out = path_of("conf-stop.mp4");
    pthread_t t;
    bool timer = pthread_create(&t, NULL, stop_later, &o.stop) == 0;
    CHECK_INT(drive(&job, out, &o), ERR_STOPPED);
    if (timer)
        pthread_join(t, NULL);
    unlink(out);
    outcome_fini(&o);
}

static void an_impossible_job_fails_cleanly(void)
{
    struct job job;
    job_t2v(&job, 480, "16:9", 3, 13, "a horse");
    struct outcome o = { 0 };
    int rc = drive(&job, "/nonexistent-dir/sub/out.mp4", &o);
    CHECK(rc != 0 && rc != -1);
    CHECK(o.err.text[0] != '\0');
    outcome_fini(&o);
}

static void declares_a_capacity(void)
{
    int cap = engine_capacity(eng, 0);
    CHECK(cap == -1 || cap >= 1);
    CHECK(engine_capacity(eng, 3) == -1 || engine_capacity(eng, 3) >= 1);
}

/* ------------------------------------------------------------- engines */

static const char *script(const char *name, const char *body)
{
    return unit_script(dir, name, body);
}

/* The command engine's program: copy the render, or wait to be stopped. */
static const char *command_program(void)
{
    char body[1024];
    snprintf(body, sizeof(body),
             "doc=$(cat)\n"
             "out=$(printf '%%s' \"$doc\" | "
             "sed -n 's/.*\"output\": *\"\\([^\"]*\\)\".*/\\1/p')\n"
             "echo progress 10\n"
             "case \"$doc\" in *'wait for the stop'*) exec sleep 600 ;; esac\n"
             "echo progress 60\n"
             "cp '%s' \"$out\"",
             video);
    return script("command", body);
}

/* A resident copy: ready at once, then one job after another. */
static const char *resident_program(void)
{
    char body[2048];
    snprintf(
        body, sizeof(body),
        "echo '{\"type\": \"ready\"}'\n"
        "while read -r line; do\n"
        "  id=$(printf '%%s' \"$line\" | "
        "sed -n 's/.*\"id\": *\"\\([^\"]*\\)\".*/\\1/p')\n"
        "  if printf '%%s' \"$line\" | grep -q '\"type\": *\"cancel\"'; "
        "then\n"
        "    echo \"{\\\"type\\\": \\\"error\\\", \\\"id\\\": \\\"$id\\\", "
        "\\\"code\\\": \\\"InternalError\\\", \\\"message\\\": "
        "\\\"canceled\\\"}\"\n"
        "    continue\n"
        "  fi\n"
        "  out=$(printf '%%s' \"$line\" | "
        "sed -n 's/.*\"output\": *\"\\([^\"]*\\)\".*/\\1/p')\n"
        "  echo \"{\\\"type\\\": \\\"progress\\\", \\\"id\\\": "
        "\\\"$id\\\", \\\"percent\\\": 10}\"\n"
        "  case \"$line\" in *'wait for the stop'*) continue ;; esac\n"
        "  if cp '%s' \"$out\" 2>/dev/null; then\n"
        "    echo \"{\\\"type\\\": \\\"done\\\", \\\"id\\\": \\\"$id\\\"}\"\n"
        "  else\n"
        "    echo \"{\\\"type\\\": \\\"error\\\", \\\"id\\\": "
        "\\\"$id\\\", \\\"code\\\": \\\"InternalError\\\", "
        "\\\"message\\\": \\\"cannot write $out\\\"}\"\n"
        "  fi\n"
        "done",
        video);
    return script("resident", body);
}

/* Start tests/fakes/provider on an ephemeral port of 127.0.0.1. */
static bool provider_start(void)
{
    int pipefd[2];
    if (pipe(pipefd) < 0)
        return false;
    provider_pid = fork();
    if (provider_pid < 0)
        return false;
    if (provider_pid == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        execl(provider, provider, "--video", video, "--seconds", "1", "--key",
              "conformance-key", (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    FILE *f = fdopen(pipefd[0], "r");
    char line[128] = "";
    bool ok = f && fgets(line, sizeof(line), f) &&
              sscanf(line, "provider: listening on %d", &provider_port) == 1;
    if (f)
        fclose(f);
    return ok;
}

static void provider_stop(void)
{
    if (provider_pid > 0) {
        kill(provider_pid, SIGTERM);
        waitpid(provider_pid, NULL, 0);
    }
    provider_pid = 0;
}

/* Wait (a hang guard) until the engine can take work. */
static bool ready(void)
{
    struct errmsg err = { 0 };
    atomic_bool stop = false;
    if (engine_check(eng, &stop, &err) < 0) {
        fprintf(stderr, "  %s: %s\n", kind, errmsg_text(&err));
        return false;
    }
    for (int i = 0; i < 6000 && engine_capacity(eng, 0) == 0; i++) {
        struct timespec ts = { 0, 10000000L };
        nanosleep(&ts, NULL);
    }
    return engine_capacity(eng, 0) != 0;
}

static void conform(const char *name, const char *spec)
{
    struct errmsg err = { 0 };
    kind = name;
    eng = NULL;
    if (engine_new(spec, &eng, &err) < 0 ||
        engine_configure(eng, 0, NULL, 0, &err) < 0 || !ready()) {
        printf("FAIL engine_conformance.%s.setup (%s)\n", name,
               errmsg_text(&err));
        unit_failed++;
        engine_free(eng);
        return;
    }
    char suite[64];
    snprintf(suite, sizeof(suite), "engine_conformance.%s", name);
    unit_suite = suite;
    RUN(renders_a_job);
    RUN(stop_ends_the_job);
    RUN(an_impossible_job_fails_cleanly);
    RUN(declares_a_capacity);
    engine_free(eng);
    eng = NULL;
}

int main(int argc, char **argv)
{
    (void)argc;
    unit_suite = "engine_conformance";
    struct errmsg err = { 0 };
    signal(SIGPIPE, SIG_IGN);
    if (engine_fixture_init() < 0 || net_global_init(&err) < 0) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    char self[512];
    snprintf(self, sizeof(self), "%s", argv[0]);
    snprintf(provider, sizeof(provider), "%s/../fakes/provider", dirname(self));
    snprintf(video, sizeof(video), "%s", path_of("render.mp4"));
    struct job job;
    struct job_result res;
    job_t2v(&job, 480, "16:9", 3, 5, "the scripts' render");
    if (render(&job, video, &res, &err) < 0) {
        fprintf(stderr, "cannot render %s: %s\n", video, errmsg_text(&err));
        return 1;
    }

    conform("sandbox", "sandbox");
    char spec[600];
    snprintf(spec, sizeof(spec), "command:%s", command_program());
    conform("command", spec);
    snprintf(spec, sizeof(spec), "resident:%s", resident_program());
    conform("resident", spec);
    if (provider_start()) {
        snprintf(spec, sizeof(spec),
                 "upstream:dashscope http://127.0.0.1:%d key=conformance-key "
                 "poll=10ms poll-max=50ms rate=1000",
                 provider_port);
        conform("upstream", spec);
    } else {
        printf("FAIL engine_conformance.upstream.setup (cannot start %s)\n",
               provider);
        unit_failed++;
    }
    provider_stop();
    net_global_fini();
    engine_fixture_fini();
    return UNIT_END();
}
