/*
 * The sandbox engine as a stand-in a client's tests can steer: its options
 * are a scenario (docs/extensions.md, "Scenarios") that a submit's own
 * sources override, and a task's resolved scenario (job->scenario) shapes
 * its run around the render of sandbox.c:
 *
 * - fail: no render; the failure, with the scenario's code and message,
 *   stands after the run delay;
 * - run: the render happens at once, its progress held to the clock (no
 *   faster than a straight line from the claim to the claim + run), and
 *   the result stands at the claim + run (job_result.hold_until_mono: the
 *   worker parks the job meanwhile, holding no thread and no render slot).
 *
 * queue, submit, query-errors and link are the store's and the API's.
 */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Where a scenario from the engine's spec is named in messages (route/
 * puts "engine.NAME: " before it). */
#define OPTIONS_SOURCE "sandbox options"

struct engine_sandbox {
    struct engine base;
    struct task_scenario sc; /* its options; constant after new */
};

/* The caller's progress, no faster than the clock allows. */
struct paced {
    const struct job_ctl *outer;
    int64_t from_mono, run_ms;
};

static void paced_progress(void *arg, int percent)
{
    const struct paced *p = arg;
    int64_t spent = clock_mono_ms() - p->from_mono;
    int64_t cap = spent >= p->run_ms ? 99 : spent * 99 / p->run_ms;
    if (p->outer->progress)
        p->outer->progress(p->outer->arg, percent < cap ? percent : (int)cap);
}

static int sandbox_run(struct engine *e, const struct job *job,
                       const struct job_inputs *in, const char *out_path,
                       const struct job_ctl *ctl, struct job_result *res,
                       struct errmsg *err)
{
    (void)e;
    const struct job_scenario *sc = &job->scenario;
    int64_t from =
        ctl && ctl->claimed_mono ? ctl->claimed_mono : clock_mono_ms();
    if (sc->fail) {
        char text[LIMIT_ERRMSG];
        int code = err_from_code(sc->fail_code);
        task_scenario_fail_text(sc, text, sizeof(text));
        /* Recorded as the scenario spelled it, known to the table or not. */
        snprintf(res->code, sizeof(res->code), "%s", sc->fail_code);
        if (sc->run_ms)
            res->hold_until_mono = from + sc->run_ms;
        return errmsg_set(err, code && code != ERR_STOPPED ? code : ERR_ALGO,
                          "%s", text);
    }
    if (!sc->run_ms || !ctl)
        return engine_sandbox_render(job, in, out_path, ctl, res, err);
    struct paced p = { .outer = ctl, .from_mono = from, .run_ms = sc->run_ms };
    struct job_ctl inner = *ctl;
    inner.progress = paced_progress;
    inner.save_ref = NULL; /* the render keeps no reference */
    inner.arg = &p;
    int rc = engine_sandbox_render(job, in, out_path, &inner, res, err);
    if (rc == 0)
        res->hold_until_mono = from + sc->run_ms;
    return rc;
}

static const struct task_scenario *sandbox_scenario(const struct engine *e)
{
    return &container_of(e, const struct engine_sandbox, base)->sc;
}

static void sandbox_free(struct engine *e)
{
    free(container_of(e, struct engine_sandbox, base));
}

/* Render slots: engine.NAME.concurrency, else one per core (a render
 * keeps a core busy). A job in its run delay holds none. */
static int sandbox_capacity(struct engine *e, int configured)
{
    (void)e;
    if (configured > 0)
        return configured;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static const struct engine_ops sandbox_ops = {
    .name = "sandbox",
    .local_media = true,
    .run = sandbox_run,
    .capacity = sandbox_capacity,
    .scenario = sandbox_scenario,
    .free = sandbox_free,
};

/* "sandbox realistic speed=20", "sandbox queue=1s,run=5s": every word
 * after the name is part of the scenario. */
int engine_sandbox_new(const char *args, struct engine **out,
                       struct errmsg *err)
{
    struct engine_sandbox *s = xcalloc(1, sizeof(*s));
    engine_init(&s->base, &sandbox_ops);
    *out = NULL;
    for (const char *p = args ? args : ""; *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strcspn(p, " \t");
        if (n && task_scenario_parse(&s->sc, p, n, OPTIONS_SOURCE, err) < 0) {
            engine_free(&s->base);
            return ERR_INVALID_PARAMETER;
        }
        p += n;
    }
    *out = &s->base;
    return 0;
}
