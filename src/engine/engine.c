/*
 * The engine registry (the one place that names concrete backends) and the
 * wrappers every caller goes through.
 */
#include "engine.h"

#include <assert.h>
#include <string.h>

static const struct engine_entry {
    const char *name;
    struct engine *(*make)(void);
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
    for (size_t i = 0; i < ARRAY_LEN(engines); i++) {
        if (name && strcmp(engines[i].name, name) == 0) {
            *out = engines[i].make();
            return 0;
        }
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

int engine_run(struct engine *e, const struct job *job,
               const struct job_inputs *in, const char *out_path,
               const struct job_ctl *ctl, struct job_result *res,
               struct errmsg *err)
{
    assert(e && job && out_path && res && err);
    memset(res, 0, sizeof(*res));
    err->code = 0;
    err->text[0] = '\0';
    int rc = e->ops->run(e, job, in, out_path, ctl, res, err);
    /* Every failure carries a code and a message up to the task record. */
    if (rc < 0 && err->code == 0)
        errmsg_set(err, rc, "%s", err_message(rc));
    return rc;
}

int engine_check(struct engine *e, const atomic_bool *stop, struct errmsg *err)
{
    return e->ops->check ? e->ops->check(e, stop, err) : 0;
}

void engine_free(struct engine *e)
{
    if (e)
        e->ops->free(e);
}
