/*
 * The submit body (docs/api.md s.2, s.3 and s.9) into a struct job, and the
 * job as JSON for the store. task_job_parse() is pure: a body in, a job or
 * an error naming the field out; no I/O, no clock, no randomness. The
 * media fields are job_media.c's, the parameters job_params.c's
 * (job_int.h).
 */
#include "job_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- fields */

static int parse_model(const json_t *root, const struct task_catalog *cat,
                       const struct task_model **out, struct errmsg *err)
{
    const json_t *v = job__member(root, "model");
    char g[GOT_MAX];
    if (!v || (json_is_string(v) && json_string_length(v) == 0))
        return job__fail(err, ERR_EMPTY_MODEL, "model is required");
    if (!json_is_string(v))
        return job__bad(err, "model must be a string%s", job__got(v, g));
    const char *name = json_string_value(v);
    size_t n = json_string_length(v);
    *out = n > LIMIT_MODEL_NAME ? NULL
           : cat                ? cat->find(cat->arg, name)
                                : task_model_find(name);
    if (*out)
        return 0;

    size_t keep = job__utf8_cut(name, n, LIMIT_MODEL_NAME);
    const char *names[16] = { 0 };
    size_t k = 0;
    if (cat) {
        k = cat->names(cat->arg, names, ARRAY_LEN(names));
    } else {
        size_t n_models;
        const struct task_model *models = task_models(&n_models);
        for (k = 0; k < n_models && k < ARRAY_LEN(names); k++)
            names[k] = models[k].name;
    }
    char list[LIMIT_ERRMSG / 2];
    job__join(list, sizeof(list), names, k);
    return job__fail(err, ERR_MODEL_NOT_FOUND,
                     "Model not exist: %.*s%s (known models: %s)", (int)keep,
                     name, keep < n ? "..." : "", list);
}

static int parse_prompt(const json_t *input, struct job *job,
                        struct errmsg *err)
{
    const json_t *v = job__member(input, "prompt");
    char g[GOT_MAX];
    if (v && !json_is_string(v))
        return job__bad(err, "input.prompt must be a string%s", job__got(v, g));
    size_t n = v ? json_string_length(v) : 0;
    if (n == 0) {
        if (task_kind_needs_prompt(job->kind))
            return job__bad(err,
                            "input.prompt is required by %s (a non-empty "
                            "string)",
                            job->model);
        return 0;
    }
    /* jansson has checked the UTF-8; the API cuts, it does not refuse. */
    const char *s = json_string_value(v);
    job->prompt = xstrndup(s, utf8_prompt_cut(s, n));
    return 0;
}

/* ---------------------------------------------------------- the parse */

/* jansson's error codes we say in plain words; `keep` adds its text. */
static const struct json_says {
    enum json_error_code code;
    const char *says;
    bool keep;
} json_says[] = {
    { json_error_invalid_utf8, "not valid UTF-8", true },
    { json_error_null_character, "\\u0000 is not allowed in strings", false },
};

static int bad_json(const json_error_t *je, size_t len, struct errmsg *err)
{
    if (len == 0)
        return job__bad(err, "request body is empty; expected a JSON object");
    char text[sizeof(je->text)];
    snprintf(text, sizeof(text), "%s", je->text);
    /* jansson quotes the bytes near the error: they may be the bad ones. */
    if (!utf8_valid(text, strlen(text)))
        for (char *p = text; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
    for (size_t i = 0; i < ARRAY_LEN(json_says); i++) {
        if (json_error_code(je) != json_says[i].code)
            continue;
        return job__bad(
            err, "request body is not valid JSON at byte %d: %s%s%s%s",
            je->position, json_says[i].says, json_says[i].keep ? " (" : "",
            json_says[i].keep ? text : "", json_says[i].keep ? ")" : "");
    }
    return job__bad(err, "request body is not valid JSON at byte %d: %s",
                    je->position, text);
}
int task_job_parse(const char *body, size_t len, int64_t random_seed,
                   const struct task_catalog *cat, struct job *out,
                   struct errmsg *err)
{
    struct errmsg scratch;
    struct job job = { 0 };
    json_t *root = NULL;
    const json_t *input, *params;
    const struct task_model *model = NULL;
    json_error_t je;
    char g[GOT_MAX];
    int rc;

    if (!err)
        err = &scratch;
    memset(out, 0, sizeof(*out));
    /* DECODE_ANY so a scalar root gets "must be an object", not a syntax
     * error; invalid UTF-8 and \u0000 are still refused. */
    root = json_loadb(body ? body : "", body ? len : 0, JSON_DECODE_ANY, &je);
    if (!root) {
        rc = bad_json(&je, body ? len : 0, err);
        goto out;
    }
    if (!json_is_object(root)) {
        rc = job__bad(err, "request body must be a JSON object%s",
                      job__got(root, g));
        goto out;
    }
    if ((rc = parse_model(root, cat, &model, err)) < 0)
        goto out;
    snprintf(job.model, sizeof(job.model), "%s", model->name);
    job.kind = model->kind;

    input = job__member(root, "input");
    params = job__member(root, "parameters");
    if (!input) {
        rc = job__fail(err, ERR_EMPTY_INPUT, "input is required");
        goto out;
    }
    if (!json_is_object(input)) {
        rc = job__bad(err, "input must be an object%s", job__got(input, g));
        goto out;
    }
    if (params && !json_is_object(params)) {
        rc = job__bad(err, "parameters must be an object%s",
                      job__got(params, g));
        goto out;
    }
    if ((rc = parse_prompt(input, &job, err)) < 0 ||
        (rc = job__parse_media(input, &job, err)) < 0 ||
        (rc = job__parse_params(params, random_seed, &job, err)) < 0 ||
        (rc = job__collect_extra(input, params, &job.extra, err)) < 0)
        goto out;

    *out = job;
    memset(&job, 0, sizeof(job));
    rc = 0;
out:
    task_job_fini(&job);
    json_decref(root);
    return rc;
}

void task_job_fini(struct job *job)
{
    if (!job)
        return;
    free(job->prompt);
    for (size_t i = 0; i < job->n_media && i < LIMIT_MEDIA_ITEMS; i++)
        free(job->media[i].url);
    free(job->extra);
    memset(job, 0, sizeof(*job));
}
/* ------------------------------------------------------- store format */

char *task_job_to_json(const struct job *job)
{
    size_t n_audio;
    const char *const *audio_names = task_audio_settings(&n_audio);
    struct buf b = BUF_INIT;
    buf_puts(&b, "{\"model\":");
    buf_json_str(&b, job->model);
    if (job->prompt) {
        buf_puts(&b, ",\"prompt\":");
        buf_json_str(&b, job->prompt);
    }
    buf_puts(&b, ",\"media\":[");
    for (size_t i = 0; i < job->n_media; i++) {
        buf_printf(&b, "%s{\"type\":\"%s\",\"url\":", i ? "," : "",
                   task_media_type_name(job->media[i].type));
        buf_json_str(&b, job->media[i].url);
        buf_putc(&b, '}');
    }
    buf_printf(&b, "],\"resolution\":%d,\"ratio\":", job->resolution);
    buf_json_str(&b, job->ratio);
    buf_printf(&b,
               ",\"duration\":%d,\"watermark\":%s,\"seed\":%lld,"
               "\"audio_setting\":\"%s\"",
               job->duration, job->watermark ? "true" : "false",
               (long long)job->seed, audio_names[job->audio_origin ? 1 : 0]);
    if (job->extra) {
        /* Already JSON (collect_extra wrote it): nested as is. */
        buf_puts(&b, ",\"extra\":");
        buf_puts(&b, job->extra);
    }
    task_scenario_json(&b, &job->scenario);
    buf_putc(&b, '}');
    return buf_take(&b);
}

/* An integer member in [min, max]. */
static bool get_int(const json_t *obj, const char *key, int64_t min,
                    int64_t max, int64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < min ||
        json_integer_value(v) > max)
        return false;
    *out = json_integer_value(v);
    return true;
}

static bool get_media(const json_t *media, struct job *job)
{
    if (!json_is_array(media) || json_array_size(media) > LIMIT_MEDIA_ITEMS)
        return false;
    for (size_t i = 0; i < json_array_size(media); i++) {
        const json_t *e = json_array_get(media, i);
        const char *type = json_string_value(json_object_get(e, "type"));
        const json_t *url = json_object_get(e, "url");
        size_t t;
        for (t = 0; type && t < JOB_MEDIA_TYPES; t++)
            if (strcmp(type, task_media_type_name(t)) == 0)
                break;
        if (!type || t == JOB_MEDIA_TYPES || !json_is_string(url))
            return false;
        job->media[i].type = t;
        job->media[i].url =
            xstrndup(json_string_value(url), json_string_length(url));
        job->n_media = i + 1;
    }
    return true;
}

int task_job_from_json(const char *json, struct job *out)
{
    struct job job = { 0 };
    json_t *root = NULL;
    const json_t *v;
    const struct task_model *model;
    int64_t res, dur, seed;
    size_t audio, n_audio;
    const char *const *audio_names = task_audio_settings(&n_audio);
    int rc = ERR_INTERNAL;

    memset(out, 0, sizeof(*out));
    if (!json || !(root = json_loads(json, 0, NULL)))
        goto out;
    model = task_model_find(json_string_value(json_object_get(root, "model")));
    if (!model)
        goto out;
    snprintf(job.model, sizeof(job.model), "%s", model->name);
    job.kind = model->kind;

    v = json_object_get(root, "prompt");
    if (v && !json_is_string(v))
        goto out;
    if (v)
        job.prompt = xstrndup(json_string_value(v), json_string_length(v));
    if (!get_media(json_object_get(root, "media"), &job))
        goto out;

    const char *ratio = json_string_value(json_object_get(root, "ratio"));
    const char *audio_s =
        json_string_value(json_object_get(root, "audio_setting"));
    v = json_object_get(root, "watermark");
    if (!get_int(root, "resolution", 0, 1080, &res) || !job__tier_known(res) ||
        !get_int(root, "duration", 0, LIMIT_DURATION_MAX, &dur) ||
        !get_int(root, "seed", 0, LIMIT_SEED_MAX, &seed) || !ratio ||
        strlen(ratio) >= sizeof(job.ratio) || !json_is_boolean(v) || !audio_s)
        goto out;
    for (audio = 0; audio < n_audio; audio++)
        if (strcmp(audio_s, audio_names[audio]) == 0)
            break;
    if (audio == n_audio)
        goto out;
    job.resolution = (int)res;
    snprintf(job.ratio, sizeof(job.ratio), "%s", ratio);
    job.duration = (int)dur;
    job.watermark = json_is_true(v);
    job.seed = seed;
    job.audio_origin = audio == 1;

    v = json_object_get(root, "extra");
    if (v && !json_is_object(v))
        goto out;
    if (v) {
        char *text = json_dumps(v, JSON_COMPACT);
        if (!text)
            goto out;
        job.extra = xstrdup(text);
        free(text);
    }
    if (task_scenario_from_json(json_object_get(root, "scenario"),
                                &job.scenario) < 0)
        goto out;

    *out = job;
    memset(&job, 0, sizeof(job));
    rc = 0;
out:
    task_job_fini(&job);
    json_decref(root);
    return rc;
}
