/*
 * Unit tests of the sandbox engine's scenario face (engine/steer.c): its
 * options are a scenario, and a job's resolved scenario shapes the run: a
 * failure instead of a render, a result held until the claim + run, a
 * progress no faster than the clock.
 */
#include "../../src/engine/engine.h"
#include "unit.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/paddock-test-steer-XXXXXX";

static void job_t2v(struct job *job)
{
    memset(job, 0, sizeof(*job));
    snprintf(job->model, sizeof(job->model), "happyhorse-1.0-t2v");
    job->kind = TASK_T2V;
    job->prompt = (char *)"a horse";
    job->resolution = 480;
    snprintf(job->ratio, sizeof(job->ratio), "16:9");
    job->duration = 3;
    job->seed = 7;
}

static const struct {
    const char *spec;
    int rc;
    unsigned set;        /* rc 0 */
    const char *message; /* rc < 0: all of it */
} specs[] = {
    { "sandbox", 0, 0, NULL },
    { "sandbox ", 0, 0, NULL },
    { "sandbox realistic speed=20", 0,
      TASK_SC_QUEUE | TASK_SC_RUN | TASK_SC_SPEED, NULL },
    { "sandbox\tqueue=1s,run=5s  fail-rate=0.1", 0,
      TASK_SC_QUEUE | TASK_SC_RUN | TASK_SC_FAIL_RATE, NULL },
    { "sandbox run=soon", ERR_INVALID_PARAMETER, 0,
      "sandbox options: 'run=soon': expected run=DURATION or run=MIN..MAX, "
      "durations from 0 to 1h (500ms, 20s, 2m)" },
    { "sandbox jitter=5", ERR_INVALID_PARAMETER, 0,
      "sandbox options: 'jitter': unknown directive (known: queue, run, "
      "realistic, speed, fail, fail-rate, submit, query-errors, link)" },
    { "sandboxes", ERR_INVALID_PARAMETER, 0, NULL },
};

static void options_are_a_scenario(void)
{
    for (size_t i = 0; i < ARRAY_LEN(specs); i++) {
        struct engine *e = NULL;
        struct errmsg err = { 0 };
        int rc = engine_new(specs[i].spec, &e, &err);
        CHECK_INT(rc, specs[i].rc);
        if (rc == 0) {
            CHECK(engine_scenario(e) != NULL);
            CHECK_INT(engine_scenario(e)->set, specs[i].set);
        } else {
            CHECK(e == NULL);
            if (specs[i].message)
                CHECK_STR(err.text, specs[i].message);
        }
        engine_free(e);
    }
    /* Other engines take no scenario. */
    struct engine *e = NULL;
    struct errmsg err = { 0 };
    CHECK_INT(engine_new("command:/bin/true", &e, &err), 0);
    CHECK(e && engine_scenario(e) == NULL);
    engine_free(e);
}

struct seen {
    int calls, max;
};

static void on_progress(void *arg, int pct)
{
    struct seen *s = arg;
    s->calls++;
    if (pct > s->max)
        s->max = pct;
}

static void fail_renders_nothing_and_waits(void)
{
    static const struct {
        const char *code;
        int rc;
    } fails[] = {
        { "DataInspectionFailed", ERR_DATA_INSPECTION },
        { "InternalError.Timeout", ERR_TIMEOUT },
        { "Custom.Upstream_Code", ERR_ALGO },
    };
    struct engine *e = NULL;
    struct errmsg err = { 0 };
    CHECK_INT(engine_new("sandbox", &e, &err), 0);
    for (size_t i = 0; i < ARRAY_LEN(fails); i++) {
        struct job job;
        struct job_result res;
        atomic_bool stop = false;
        char path[128];
        snprintf(path, sizeof(path), "%s/fail%zu.mp4", dir, i);
        job_t2v(&job);
        job.scenario.on = true;
        job.scenario.fail = true;
        job.scenario.run_ms = i == 0 ? 5000 : 0;
        snprintf(job.scenario.fail_code, sizeof(job.scenario.fail_code), "%s",
                 fails[i].code);
        struct job_ctl ctl = { .stop = &stop, .claimed_mono = 1000 };
        CHECK_INT(engine_run(e, &job, NULL, path, &ctl, &res, &err),
                  fails[i].rc);
        CHECK_STR(res.code, fails[i].code);
        CHECK_INT(res.hold_until_mono, i == 0 ? 6000 : 0);
        CHECK(strstr(err.text, fails[i].code) != NULL);
        struct stat st;
        CHECK(stat(path, &st) < 0); /* no render */
    }
    /* Its own message, as given. */
    struct job job;
    struct job_result res;
    job_t2v(&job);
    job.scenario = (struct job_scenario){ .on = true, .fail = true };
    snprintf(job.scenario.fail_code, sizeof(job.scenario.fail_code), "X");
    snprintf(job.scenario.fail_message, sizeof(job.scenario.fail_message),
             "the horse refused");
    CHECK_INT(engine_run(e, &job, NULL, "/nonexistent/x.mp4", NULL, &res, &err),
              ERR_ALGO);
    CHECK_STR(err.text, "the horse refused");
    engine_free(e);
}

static void run_holds_the_result_and_paces_progress(void)
{
    struct engine *e = NULL;
    struct errmsg err = { 0 };
    CHECK_INT(engine_new("sandbox", &e, &err), 0);
    struct job job;
    struct job_result res;
    struct seen seen = { 0 };
    atomic_bool stop = false;
    char path[128];
    snprintf(path, sizeof(path), "%s/run.mp4", dir);
    job_t2v(&job);
    job.scenario = (struct job_scenario){ .on = true, .run_ms = 600000 };
    int64_t claimed = clock_mono_ms();
    struct job_ctl ctl = { .stop = &stop,
                           .claimed_mono = claimed,
                           .progress = on_progress,
                           .arg = &seen };
    CHECK_INT(engine_run(e, &job, NULL, path, &ctl, &res, &err), 0);
    CHECK_INT(res.hold_until_mono, claimed + 600000);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size > 0); /* rendered at once */
    CHECK(seen.calls > 0);
    /* A render of seconds is at most a few hundredths of a 10 min run. */
    CHECK(seen.max <= 1 + (int)((clock_mono_ms() - claimed) * 99 / 600000));
    /* Without a run, the render's own progress and no hold. */
    seen = (struct seen){ 0 };
    job.scenario = (struct job_scenario){ .on = true };
    CHECK_INT(engine_run(e, &job, NULL, path, &ctl, &res, &err), 0);
    CHECK_INT(res.hold_until_mono, 0);
    CHECK_INT(seen.max, 100);
    unlink(path);
    engine_free(e);
}

int main(void)
{
    unit_suite = "engine_steer";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(options_are_a_scenario);
    RUN(fail_renders_nothing_and_waits);
    RUN(run_holds_the_result_and_paces_progress);
    rmdir(dir);
    return UNIT_END();
}
