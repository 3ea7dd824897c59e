/*
 * The engine registry (the one place that names concrete backends) and the
 * wrappers every caller goes through.
 */
#include "engine.h"
#include "../media/media.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

static const struct engine_entry {
    const char *name;
    /* What follows the name (its options; "" when none). */
    int (*make)(const char *args, struct engine **out, struct errmsg *err);
} engines[] = {
    { "sandbox", engine_sandbox_new },
};

int engine_new(const char *name, struct engine **out, struct errmsg *err)
{
    *out = NULL;
    if (name && strncmp(name, "command:", 8) == 0)
        return engine_command_new(name + 8, out, err);
    if (name && strncmp(name, "upstream:", 9) == 0)
        return engine_upstream_new(name + 9, out, err);
    if (name && strncmp(name, "resident:", 9) == 0)
        return engine_resident_new(name + 9, out, err);
    for (size_t i = 0; name && i < ARRAY_LEN(engines); i++) {
        size_t n = strlen(engines[i].name);
        if (strncmp(engines[i].name, name, n) == 0 &&
            (name[n] == '\0' || name[n] == ' ' || name[n] == '\t'))
            return engines[i].make(name + n, out, err);
    }
    struct buf known = BUF_INIT;
    for (size_t i = 0; i < ARRAY_LEN(engines); i++)
        buf_printf(&known, "%s%s", i ? ", " : "", engines[i].name);
    /* Only the first word is repeated: a mistyped "upstream" spec goes on
     * with a key, which must not reach a terminal or a log. */
    int n = name ? (int)strcspn(name, " \t") : 0;
    int rc = errmsg_set(err, ERR_INVALID_PARAMETER,
                        "unknown engine '%.*s' (known: %s, "
                        "command:/path/to/program, "
                        "resident:/path/to/program, "
                        "upstream:DIALECT BASE_URL key-env=VAR)",
                        n < 100 ? n : 100, name ? name : "", known.data);
    buf_fini(&known);
    return rc;
}

const char *engine_name(const struct engine *e)
{
    return e->ops->name;
}

bool engine_local_media(const struct engine *e)
{
    return e->ops->local_media;
}

bool engine_host_check(const struct engine *e)
{
    return e->ops->host_check;
}

/*
 * docs/api.md s.3.6 on the fetched inputs, once for every backend that
 * reads local files: each is measured (media/) and held to its rule
 * (task/). The first failure, named "media[i]" with the measured value.
 * An input that was not fetched is left to the backend to report.
 */
static int check_inputs(const struct job *job, const struct job_inputs *in,
                        const struct job_ctl *ctl, struct errmsg *err)
{
    for (size_t i = 0; i < job->n_media && i < in->n; i++) {
        enum job_media_type type = job->media[i].type;
        struct task_media_info info;
        char name[32];
        if (!in->path[i])
            continue;
        /* Nine large images take a while: stop between them. */
        if (ctl && ctl->stop && atomic_load(ctl->stop))
            return errmsg_set(err, ERR_STOPPED, "stopped reading the inputs");
        snprintf(name, sizeof(name), "media[%zu]", i);
        int rc = media_probe_file(in->path[i],
                                  type == JOB_MEDIA_VIDEO ? TASK_MEDIA_VIDEO
                                                          : TASK_MEDIA_IMAGE,
                                  name, &info, err);
        if (rc == 0)
            rc = task_media_check(&info, task_media_rule(job->kind, type), name,
                                  err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int engine_run(struct engine *e, const struct job *job,
               const struct job_inputs *in, const char *out_path,
               const struct job_ctl *ctl, struct job_result *res,
               struct errmsg *err)
{
    assert(e && job && out_path && res && err);
    memset(res, 0, sizeof(*res));
    err->code = 0;
    err->text[0] = '\0';
    int rc = 0;
    if (e->ops->local_media && in)
        rc = check_inputs(job, in, ctl, err);
    if (rc == 0)
        rc = e->ops->run(e, job, in, out_path, ctl, res, err);
    /* Every failure carries a code and a message up to the task record. */
    if (rc < 0 && err->code == 0)
        errmsg_set(err, rc, "%s", err_message(rc));
    return rc;
}

int engine_configure(struct engine *e, int concurrency, const char *const *opts,
                     size_t n, struct errmsg *err)
{
    if (e->ops->configure)
        return e->ops->configure(e, concurrency, opts, n, err);
    if (n == 0)
        return 0;
    size_t k = strcspn(opts[0], "=");
    return errmsg_set(err, ERR_INVALID_PARAMETER,
                      "unknown engine option '%.*s' (known for a %s "
                      "engine: concurrency, deadline)",
                      (int)(k < 60 ? k : 60), opts[0], e->ops->name);
}

bool engine_async(const struct engine *e)
{
    return e->ops->start != NULL;
}

int engine_capacity(struct engine *e, int configured)
{
    if (e->ops->capacity)
        return e->ops->capacity(e, configured);
    return configured > 0 ? configured : -1;
}

bool engine_computes(const struct engine *e)
{
    return !e->ops->start || e->ops->computes;
}

int engine_start(struct engine *e, const struct job *job,
                 const struct job_inputs *in, const char *out_path,
                 const struct job_ctl *ctl, struct errmsg *err)
{
    assert(e && e->ops->start && job && out_path && ctl && ctl->done && err);
    err->code = 0;
    err->text[0] = '\0';
    int rc = 0;
    if (e->ops->local_media && in)
        rc = check_inputs(job, in, ctl, err);
    if (rc == 0)
        rc = e->ops->start(e, job, in, out_path, ctl, err);
    if (rc < 0 && err->code == 0)
        errmsg_set(err, rc, "%s", err_message(rc));
    return rc;
}

const struct task_scenario *engine_scenario(const struct engine *e)
{
    return e->ops->scenario ? e->ops->scenario(e) : NULL;
}

int engine_check(struct engine *e, const atomic_bool *stop, struct errmsg *err)
{
    return e->ops->check ? e->ops->check(e, stop, err) : 0;
}

void engine_init(struct engine *e, const struct engine_ops *ops)
{
    e->ops = ops;
    pthread_mutex_init(&e->room_lock, NULL);
    e->room_fn = NULL;
    e->room_arg = NULL;
}

void engine_room_grew(struct engine *e)
{
    pthread_mutex_lock(&e->room_lock);
    if (e->room_fn)
        e->room_fn(e->room_arg);
    pthread_mutex_unlock(&e->room_lock);
}

void engine_watch_room(struct engine *e, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&e->room_lock);
    e->room_fn = fn;
    e->room_arg = arg;
    pthread_mutex_unlock(&e->room_lock);
}

void engine_free(struct engine *e)
{
    if (!e)
        return;
    pthread_mutex_destroy(&e->room_lock);
    e->ops->free(e);
}
