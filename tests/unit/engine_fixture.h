/*
 * What the engine tests share: a temporary directory for their files, the
 * sandbox engine, a text-to-video job, and a render through engine_run.
 * Each test program defines ENGINE_FIXTURE_DIR's template and calls
 * engine_fixture_init first.
 */
#ifndef PADDOCK_ENGINE_FIXTURE_H
#define PADDOCK_ENGINE_FIXTURE_H

#include "../../src/engine/engine.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[] = ENGINE_FIXTURE_DIR;
static struct engine *sandbox;

static inline void job_t2v(struct job *job, int resolution, const char *ratio,
                           int duration, int64_t seed, const char *prompt)
{
    memset(job, 0, sizeof(*job));
    snprintf(job->model, sizeof(job->model), "happyhorse-1.0-t2v");
    job->kind = TASK_T2V;
    job->prompt = (char *)prompt;
    job->resolution = resolution;
    snprintf(job->ratio, sizeof(job->ratio), "%s", ratio);
    job->duration = duration;
    job->watermark = true;
    job->seed = seed;
}

static inline void job_kind(struct job *job, struct job_inputs *in,
                            enum task_kind kind, const char *model,
                            int duration, int64_t seed, const char *prompt)
{
    job_t2v(job, 480, kind == TASK_R2V ? "16:9" : "", duration, seed, prompt);
    job->kind = kind;
    snprintf(job->model, sizeof(job->model), "%s", model);
    memset(in, 0, sizeof(*in));
}

static inline const char *path_of(const char *name)
{
    static char path[4][64];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
    return p;
}

static inline int render(const struct job *job, const char *path,
                         struct job_result *res, struct errmsg *err)
{
    atomic_bool stop = false;
    struct job_ctl ctl = { .stop = &stop };
    return engine_run(sandbox, job, NULL, path, &ctl, res, err);
}

/* The directory (from mkdtemp) and the sandbox; 0 or -1. */
static inline int engine_fixture_init(void)
{
    struct errmsg err = { 0 };
    if (!mkdtemp(dir) || engine_new("sandbox", &sandbox, &err) < 0)
        return -1;
    return 0;
}

/* The sandbox freed and the directory removed. */
static inline void engine_fixture_fini(void)
{
    engine_free(sandbox);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

#endif
