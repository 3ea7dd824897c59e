/*
 * The parameters of a submit (docs/api.md s.2): size, resolution, ratio,
 * duration, watermark, seed and audio_setting, each for the kinds it
 * applies to; the pass-through fields kept for relay and command engines;
 * and the rules of a kind as the JSON of GET /api/v1/models. Pure.
 */
#include "job_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Accepted and stored for relay and command engines; never interpreted. */
static const struct passthrough {
    const char *group; /* "input" or "parameters" */
    const char *name;
} passthrough[] = {
    { "input", "extend_prompt" },      { "input", "function" },
    { "input", "negative_prompt" },    { "input", "audio_url" },
    { "parameters", "prompt_extend" }, { "parameters", "shot_type" },
    { "parameters", "audio" },
};

static const char *const resolution_names[] = { "480P", "720P", "1080P" };
static const int resolution_values[] = { 480, 720, 1080 };
static const char *const audio_names[] = { "auto", "origin" };

/* ---------------------------------------------------------- parameters */

static int param_size(const json_t *v, const char *field, struct job *job,
                      struct errmsg *err)
{
    size_t n_ratios;
    const char *const *ratios = task_ratios(&n_ratios);
    char cells[ARRAY_LEN(resolution_values) * 16][12];
    const char *names[ARRAY_LEN(cells)];
    size_t n = 0;
    for (size_t t = 0; t < ARRAY_LEN(resolution_values); t++) {
        for (size_t r = 0; r < n_ratios && n < ARRAY_LEN(cells); r++) {
            int w = 0, h = 0;
            task_size(resolution_values[t], ratios[r], &w, &h);
            snprintf(cells[n], sizeof(cells[n]), "%d*%d", w, h);
            if (json_is_string(v) &&
                strcmp(json_string_value(v), cells[n]) == 0) {
                job->resolution = resolution_values[t];
                if (KIND_BIT(job->kind) & RATIO_KINDS)
                    snprintf(job->ratio, sizeof(job->ratio), "%s", ratios[r]);
                return 0;
            }
            names[n] = cells[n];
            n++;
        }
    }
    char list[LIMIT_ERRMSG - 96], g[GOT_MAX];
    job__join(list, sizeof(list), names, n);
    return job__bad(err, "%s must be one of %s%s", field, list, job__got(v, g));
}

static int param_resolution(const json_t *v, const char *field, struct job *job,
                            struct errmsg *err)
{
    size_t i = 0;
    int rc = job__want_enum(v, field, resolution_names,
                            ARRAY_LEN(resolution_names), &i, err);
    if (rc == 0)
        job->resolution = resolution_values[i];
    return rc;
}

static int param_ratio(const json_t *v, const char *field, struct job *job,
                       struct errmsg *err)
{
    size_t i = 0, n = 0;
    const char *const *ratios = task_ratios(&n);
    int rc = job__want_enum(v, field, ratios, n, &i, err);
    if (rc == 0)
        snprintf(job->ratio, sizeof(job->ratio), "%s", ratios[i]);
    return rc;
}

static int param_duration(const json_t *v, const char *field, struct job *job,
                          struct errmsg *err)
{
    int64_t d = 0;
    int rc = job__want_int(v, field, LIMIT_DURATION_MIN, LIMIT_DURATION_MAX, &d,
                           err);
    if (rc == 0)
        job->duration = (int)d;
    return rc;
}

static int param_watermark(const json_t *v, const char *field, struct job *job,
                           struct errmsg *err)
{
    char g[GOT_MAX];
    if (!json_is_boolean(v))
        return job__bad(err, "%s must be true or false%s", field,
                        job__got(v, g));
    job->watermark = json_is_true(v);
    return 0;
}

static int param_seed(const json_t *v, const char *field, struct job *job,
                      struct errmsg *err)
{
    return job__want_int(v, field, 0, LIMIT_SEED_MAX, &job->seed, err);
}

static int param_audio(const json_t *v, const char *field, struct job *job,
                       struct errmsg *err)
{
    size_t i = 0;
    int rc =
        job__want_enum(v, field, audio_names, ARRAY_LEN(audio_names), &i, err);
    if (rc == 0)
        job->audio_origin = i == 1;
    return rc;
}

/* parameters.* in this order (size first: resolution and ratio, when also
 * present, win); a kind outside `kinds` ignores the field entirely. */
static const struct param_rule {
    const char *name;
    unsigned kinds;
    int (*parse)(const json_t *v, const char *field, struct job *job,
                 struct errmsg *err);
} param_rules[] = {
    { "size", KINDS_ALL, param_size },
    { "resolution", KINDS_ALL, param_resolution },
    { "ratio", RATIO_KINDS, param_ratio },
    { "duration", KINDS_ALL & ~KIND_BIT(TASK_EDIT), param_duration },
    { "watermark", KINDS_ALL, param_watermark },
    { "seed", KINDS_ALL, param_seed },
    { "audio_setting", KIND_BIT(TASK_EDIT), param_audio },
};

const char *const *task_resolutions(size_t *n)
{
    *n = ARRAY_LEN(resolution_names);
    return resolution_names;
}

const char *const *task_audio_settings(size_t *n)
{
    *n = ARRAY_LEN(audio_names);
    return audio_names;
}

bool task_kind_uses_param(enum task_kind kind, const char *name)
{
    for (size_t i = 0; name && i < ARRAY_LEN(param_rules); i++)
        if (strcmp(param_rules[i].name, name) == 0)
            return KIND_BIT(kind) & param_rules[i].kinds;
    return false;
}

int job__parse_params(const json_t *params, int64_t random_seed,
                      struct job *job, struct errmsg *err)
{
    bool ratio_kind = KIND_BIT(job->kind) & RATIO_KINDS;
    job->resolution = 1080;
    snprintf(job->ratio, sizeof(job->ratio), "%s",
             ratio_kind ? DEFAULT_RATIO : "");
    job->duration = job->kind == TASK_EDIT ? 0 : 5;
    job->watermark = true;
    /* The caller draws it; keep it in the API's range whatever it drew. */
    job->seed = (int64_t)((uint64_t)random_seed % (LIMIT_SEED_MAX + 1));
    job->audio_origin = false;

    for (size_t i = 0; params && i < ARRAY_LEN(param_rules); i++) {
        const struct param_rule *r = &param_rules[i];
        const json_t *v = job__member(params, r->name);
        if (!v || !(KIND_BIT(job->kind) & r->kinds))
            continue;
        char field[48];
        snprintf(field, sizeof(field), "parameters.%s", r->name);
        int rc = r->parse(v, field, job, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The pass-through fields present, as {"input":{...},"parameters":{...}}
 * (a group only when it has members); NULL when none. */
int job__collect_extra(const json_t *input, const json_t *params, char **out,
                       struct errmsg *err)
{
    json_t *root = NULL;
    int rc = 0;
    for (size_t i = 0; i < ARRAY_LEN(passthrough); i++) {
        const struct passthrough *p = &passthrough[i];
        const json_t *from = strcmp(p->group, "input") == 0 ? input : params;
        json_t *v = from ? job__member(from, p->name) : NULL;
        if (!v)
            continue;
        if (!root)
            root = json_object();
        json_t *group = json_object_get(root, p->group);
        if (!group) {
            group = json_object();
            json_object_set_new(root, p->group, group);
        }
        json_object_set(group, p->name, v);
    }
    if (root) {
        char *text = json_dumps(root, JSON_COMPACT);
        if (!text) {
            rc = job__fail(err, ERR_NOMEM, "out of memory");
            goto out;
        }
        *out = xstrdup(text);
        free(text);
    }
out:
    json_decref(root);
    return rc;
}

bool job__tier_known(int64_t res)
{
    for (size_t i = 0; i < ARRAY_LEN(resolution_values); i++)
        if (resolution_values[i] == res)
            return true;
    return false;
}

/* ------------------------------------------------------ the rules' JSON */

static void json_names(struct buf *b, const char *const *names, size_t n)
{
    buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(b, ',');
        buf_json_str(b, names[i]);
    }
    buf_putc(b, ']');
}

void task_json_rules(struct buf *b, enum task_kind kind)
{
    bool first = true;
    buf_puts(b, ",\"media\":[");
    for (int t = 0; t < JOB_MEDIA_TYPES; t++) {
        unsigned min, max;
        task_kind_media(kind, (enum job_media_type)t, &min, &max);
        if (!max)
            continue;
        buf_printf(b, "%s{\"type\":\"%s\",\"min\":%u,\"max\":%u}",
                   first ? "" : ",",
                   task_media_type_name((enum job_media_type)t), min, max);
        first = false;
    }
    buf_puts(b, "],\"parameters\":{\"resolution\":{\"enum\":");
    json_names(b, resolution_names, ARRAY_LEN(resolution_names));
    buf_puts(b, ",\"default\":\"1080P\"}");
    if (KIND_BIT(kind) & RATIO_KINDS) {
        size_t n;
        const char *const *ratios = task_ratios(&n);
        buf_puts(b, ",\"ratio\":{\"enum\":");
        json_names(b, ratios, n);
        buf_puts(b, ",\"default\":\"" DEFAULT_RATIO "\"}");
    }
    if (kind != TASK_EDIT)
        buf_printf(b,
                   ",\"duration\":{\"minimum\":%d,\"maximum\":%d,"
                   "\"default\":5}",
                   LIMIT_DURATION_MIN, LIMIT_DURATION_MAX);
    buf_printf(b,
               ",\"watermark\":{\"type\":\"boolean\",\"default\":true},"
               "\"seed\":{\"minimum\":0,\"maximum\":%lld}",
               (long long)LIMIT_SEED_MAX);
    if (kind == TASK_EDIT) {
        buf_puts(b, ",\"audio_setting\":{\"enum\":");
        json_names(b, audio_names, ARRAY_LEN(audio_names));
        buf_puts(b, ",\"default\":\"auto\"}");
    }
    buf_putc(b, '}');
}
