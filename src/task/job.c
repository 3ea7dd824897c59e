/*
 * The submit body (docs/api.md s.2, s.3 and s.9) into a struct job, and the
 * job as JSON for the store. task_job_parse() is pure: a body in, a job or
 * an error naming the field out; no I/O, no clock, no randomness.
 */
#include "task.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Bytes of a client's value quoted back in an error message. */
#define JOB_SHOW_BYTES 40

#define KIND_BIT(k)   (1u << (k))
#define KINDS_ALL     0xfu
#define RATIO_KINDS   (KIND_BIT(TASK_T2V) | KIND_BIT(TASK_R2V))
#define DEFAULT_RATIO "16:9"

/* ------------------------------------------------------------ the rules */

/*
 * The older field names of docs/api.md s.9, in the order their entries
 * join job->media. An alias with `unless` set is ignored when that other
 * alias is present (two names for one first frame).
 */
static const struct media_alias {
    const char *name; /* member of input */
    enum job_media_type type;
    bool many;          /* an array of URLs */
    bool bare_ok;       /* may be the bare base64 of the image bytes */
    const char *unless; /* an alias for the same thing that wins */
} media_aliases[] = {
    { "img_url", JOB_MEDIA_FIRST_FRAME, false, true, NULL },
    { "first_frame_url", JOB_MEDIA_FIRST_FRAME, false, true, "img_url" },
    { "video_url", JOB_MEDIA_VIDEO, false, false, NULL },
    { "reference_urls", JOB_MEDIA_REFERENCE_IMAGE, true, false, NULL },
    { "reference_url", JOB_MEDIA_REFERENCE_IMAGE, false, false, NULL },
};

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

/* Data URI heads we accept, and the canonical head we store. */
static const struct data_head {
    const char *head; /* matched case-insensitively */
    const char *canonical;
} data_heads[] = {
    { "data:image/jpeg;base64,", "data:image/jpeg;base64," },
    { "data:image/jpg;base64,", "data:image/jpeg;base64," },
    { "data:image/png;base64,", "data:image/png;base64," },
    { "data:image/webp;base64,", "data:image/webp;base64," },
};

static const char *const resolution_names[] = { "480P", "720P", "1080P" };
static const int resolution_values[] = { 480, 720, 1080 };
static const char *const audio_names[] = { "auto", "origin" };
static const char *const media_type_list =
    "first_frame, reference_image, video";

/* ----------------------------------------------------------- messages */

static int vfail(struct errmsg *err, int code, const char *fmt, va_list ap)
{
    err->code = code;
    vsnprintf(err->text, sizeof(err->text), fmt, ap);
    /* A cut at LIMIT_ERRMSG may split a code point: drop the partial one so
     * the message stays valid UTF-8 in the JSON answer. */
    size_t n = strlen(err->text);
    for (int k = 0; k < 3 && n > 0 && !utf8_valid(err->text, n); k++)
        err->text[--n] = '\0';
    return code;
}

static int fail(struct errmsg *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct errmsg *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(err, code, fmt, ap);
    va_end(ap);
    return code;
}

/* ERR_INVALID_PARAMETER, the answer to nearly every bad field. */
static int bad(struct errmsg *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int bad(struct errmsg *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(err, ERR_INVALID_PARAMETER, fmt, ap);
    va_end(ap);
    return ERR_INVALID_PARAMETER;
}

/* Bytes of s[0..n) to keep so at most max bytes remain, on a code point
 * boundary. */
static size_t utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    return max;
}

#define GOT_MAX (JOB_SHOW_BYTES + 16)

/* ", got <value>" for a message, or "" when the value is absent. */
static const char *got(const json_t *v, char out[GOT_MAX])
{
    const char *s;
    size_t n, keep;
    if (!v)
        return "";
    switch (json_typeof(v)) {
    case JSON_STRING:
        s = json_string_value(v);
        n = json_string_length(v);
        keep = utf8_cut(s, n, JOB_SHOW_BYTES);
        snprintf(out, GOT_MAX, ", got \"%.*s%s\"", (int)keep, s,
                 keep < n ? "..." : "");
        return out;
    case JSON_INTEGER:
        snprintf(out, GOT_MAX, ", got %" JSON_INTEGER_FORMAT,
                 json_integer_value(v));
        return out;
    case JSON_REAL:
        n = (size_t)snprintf(out, GOT_MAX, ", got %g", json_real_value(v));
        /* 5.0 must not read as the integer 5 it was refused for not being */
        if (n < GOT_MAX - 2 && !strpbrk(out + 6, ".eni"))
            memcpy(out + n, ".0", 3);
        return out;
    case JSON_TRUE:
        return ", got true";
    case JSON_FALSE:
        return ", got false";
    case JSON_OBJECT:
        return ", got an object";
    case JSON_ARRAY:
        return ", got an array";
    default:
        return ", got null";
    }
}

/* "a, b, c" into out (cut to fit). */
static void join(char *out, size_t cap, const char *const *names, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < cap; i++) {
        int w =
            snprintf(out + used, cap - used, "%s%s", i ? ", " : "", names[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* -------------------------------------------------------- JSON access */

/* A member, or NULL when absent or JSON null (SDKs send unset optionals
 * as null). */
static json_t *member(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

static int want_enum(const json_t *v, const char *field,
                     const char *const *names, size_t n, size_t *idx,
                     struct errmsg *err)
{
    const char *s = json_string_value(v); /* NULL unless a string */
    for (size_t i = 0; s && i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            *idx = i;
            return 0;
        }
    }
    char list[LIMIT_ERRMSG / 2], g[GOT_MAX];
    join(list, sizeof(list), names, n);
    return bad(err, "%s must be one of %s%s", field, list, got(v, g));
}

static int want_int(const json_t *v, const char *field, int64_t min,
                    int64_t max, int64_t *out, struct errmsg *err)
{
    if (json_is_integer(v) && json_integer_value(v) >= min &&
        json_integer_value(v) <= max) {
        *out = json_integer_value(v);
        return 0;
    }
    char g[GOT_MAX];
    return bad(err, "%s must be an integer from %lld to %lld%s", field,
               (long long)min, (long long)max, got(v, g));
}

/* ------------------------------------------------------------- base64 */

static const char b64_too_big[] = "the image is over 20 MB";

/* Why s[0..n) is not padded base64 of an image we accept, or NULL. */
static const char *b64_problem(const char *s, size_t n)
{
    size_t decoded = 0;
    const char *why = base64_problem(s, n, &decoded);
    /* Inline and fetched images weigh the same (LIMIT_IMAGE_BYTES). */
    if (!why && decoded > (size_t)LIMIT_IMAGE_BYTES)
        why = b64_too_big;
    return why;
}

/* -------------------------------------------------------------- URLs */

/* One media entry as the client sent it, before its URL is checked. */
struct media_src {
    enum job_media_type type;
    const char *url; /* borrowed from the JSON tree */
    size_t len;
    bool bare_ok;
    char field[JOB_FIELD_MAX]; /* "input.media[3].url", "input.img_url" */
};

static bool has_prefix_ci(const char *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && strncasecmp(s, prefix, k) == 0;
}

static char *concat(const char *head, const char *s, size_t n)
{
    size_t k = strlen(head);
    char *p = xmalloc(k + n + 1);
    memcpy(p, head, k);
    memcpy(p + k, s, n);
    p[k + n] = '\0';
    return p;
}

/* Why an http(s) URL is not acceptable, or NULL. `rest` follows "://". */
static const char *http_problem(const char *s, size_t n, size_t rest)
{
    if (n > LIMIT_URL_BYTES)
        return "longer than 8192 bytes";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            return "whitespace or a control character in the URL";
    size_t end = rest + strcspn(s + rest, "/?#");
    size_t host = rest;
    for (size_t i = rest; i < end; i++)
        if (s[i] == '@')
            host = i + 1;
    if (host == end || s[host] == ':')
        return "no host after the scheme";
    return NULL;
}

bool task_upload_id(const char *url, char out[UUID_STR_LEN + 1])
{
    size_t k = sizeof(TASK_UPLOAD_SCHEME) - 1;
    if (!url || strncmp(url, TASK_UPLOAD_SCHEME, k) != 0 ||
        !id_is_uuid_lower(url + k))
        return false;
    memcpy(out, url + k, UUID_STR_LEN + 1);
    return true;
}

/* A paddock-upload:// URL (the scheme is known): "paddock-upload://" and a
 * uuid, stored in lower case. Whether the upload exists is not for a pure
 * parse to say (the API checks it after). */
static int upload_url(const struct media_src *m, char **out, struct errmsg *err)
{
    size_t k = sizeof(TASK_UPLOAD_SCHEME) - 1;
    char id[UUID_STR_LEN + 1];
    if (m->len - k == UUID_STR_LEN) {
        memcpy(id, m->url + k, UUID_STR_LEN);
        id[UUID_STR_LEN] = '\0';
        if (id_is_uuid(id)) {
            for (char *p = id; *p; p++)
                if (*p >= 'A' && *p <= 'F')
                    *p = (char)(*p - 'A' + 'a');
            *out = concat(TASK_UPLOAD_SCHEME, id, UUID_STR_LEN);
            return 0;
        }
    }
    size_t keep = utf8_cut(m->url, m->len, JOB_SHOW_BYTES + k);
    return bad(err,
               "%s: a paddock-upload:// URL is the scheme and the upload_id "
               "POST /api/v1/uploads answered (a uuid), got \"%.*s%s\"",
               m->field, (int)keep, m->url, keep < m->len ? "..." : "");
}

const char *task_oss_key(const char *url)
{
    size_t k = sizeof(TASK_OSS_SCHEME) - 1;
    if (!url || strncmp(url, TASK_OSS_SCHEME, k) != 0 || !url[k])
        return NULL;
    return url + k;
}

/* An oss:// URL (the scheme is known): the scheme, then an object key of
 * UTF-8 without control bytes. Whether a file was uploaded under it, and
 * by this key, is for the API to say. */
static int oss_url(const struct media_src *m, char **out, struct errmsg *err)
{
    size_t k = sizeof(TASK_OSS_SCHEME) - 1, n = m->len - k;
    const char *key = m->url + k;
    bool ok = n > 0 && n <= TASK_OSS_KEY_MAX && utf8_valid(key, n);
    for (size_t i = 0; ok && i < n; i++)
        ok = (unsigned char)key[i] >= 0x20 && key[i] != 0x7f;
    if (ok) {
        *out = concat(TASK_OSS_SCHEME, key, n);
        return 0;
    }
    size_t keep = utf8_cut(m->url, m->len, JOB_SHOW_BYTES + k);
    return bad(err,
               "%s: an oss:// URL is the scheme and the object key a file was "
               "uploaded under (1 to %d bytes of UTF-8 without control "
               "characters), got \"%.*s%s\"",
               m->field, TASK_OSS_KEY_MAX, (int)keep, m->url,
               keep < m->len ? "..." : "");
}

/* Check one entry's URL and make the stored copy (*out, owned). */
static int media_url(const struct media_src *m, char **out, struct errmsg *err)
{
    const char *s = m->url, *why = NULL;
    size_t n = m->len;
    const char *expected =
        m->type == JOB_MEDIA_VIDEO ? "an http(s) URL or a paddock-upload:// URL"
        : m->bare_ok ? "an http(s) URL, a data:image/(jpeg|png|webp);base64 "
                       "URI or the bare base64 of a JPEG, PNG or WEBP image"
                     : "an http(s) URL or a "
                       "data:image/(jpeg|png|webp);base64 URI";

    if (has_prefix_ci(s, n, TASK_UPLOAD_SCHEME))
        return upload_url(m, out, err);
    if (has_prefix_ci(s, n, TASK_OSS_SCHEME))
        return oss_url(m, out, err);
    if (has_prefix_ci(s, n, "http://") || has_prefix_ci(s, n, "https://")) {
        size_t rest = has_prefix_ci(s, n, "https://") ? 8 : 7;
        why = http_problem(s, n, rest);
        if (!why) {
            *out = xstrndup(s, n);
            for (size_t i = 0; i < rest; i++) /* the scheme, lower-case */
                if ((*out)[i] >= 'A' && (*out)[i] <= 'Z')
                    (*out)[i] = (char)((*out)[i] - 'A' + 'a');
            return 0;
        }
    } else if (has_prefix_ci(s, n, "data:")) {
        if (m->type == JOB_MEDIA_VIDEO)
            return bad(err,
                       "%s: data URIs are accepted for images only; "
                       "send the video as an http(s) URL (or upload it: "
                       "POST /api/v1/uploads)",
                       m->field);
        const struct data_head *h = NULL;
        for (size_t i = 0; i < ARRAY_LEN(data_heads) && !h; i++)
            if (has_prefix_ci(s, n, data_heads[i].head))
                h = &data_heads[i];
        if (!h) {
            why = "the data URI is not image/jpeg, image/png or image/webp "
                  "with ;base64";
        } else {
            size_t k = strlen(h->head);
            why = b64_problem(s + k, n - k);
            if (!why) {
                *out = concat(h->canonical, s + k, n - k);
                return 0;
            }
        }
    } else if (m->bare_ok) {
        unsigned char head[TASK_IMAGE_SNIFF_BYTES];
        const char *mime = NULL;
        why = b64_problem(s, n);
        if (!why)
            mime = task_image_mime(task_image_sniff(
                head, base64_decode(s, n, head, sizeof(head))));
        if (mime) {
            char canonical[48];
            snprintf(canonical, sizeof(canonical), "data:%s;base64,", mime);
            *out = concat(canonical, s, n);
            return 0;
        }
        if (!why)
            why = "the base64 data is not a JPEG, PNG or WEBP image";
        else if (why != b64_too_big)
            why = "neither a URL nor valid base64";
    }
    return bad(err, "%s must be %s%s%s%s", m->field, expected, why ? " (" : "",
               why ? why : "", why ? ")" : "");
}

/* ------------------------------------------------------------- fields */

static int parse_model(const json_t *root, const struct task_catalog *cat,
                       const struct task_model **out, struct errmsg *err)
{
    const json_t *v = member(root, "model");
    char g[GOT_MAX];
    if (!v || (json_is_string(v) && json_string_length(v) == 0))
        return fail(err, ERR_EMPTY_MODEL, "model is required");
    if (!json_is_string(v))
        return bad(err, "model must be a string%s", got(v, g));
    const char *name = json_string_value(v);
    size_t n = json_string_length(v);
    *out = n > LIMIT_MODEL_NAME ? NULL
           : cat                ? cat->find(cat->arg, name)
                                : task_model_find(name);
    if (*out)
        return 0;

    size_t keep = utf8_cut(name, n, LIMIT_MODEL_NAME);
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
    join(list, sizeof(list), names, k);
    return fail(err, ERR_MODEL_NOT_FOUND,
                "Model not exist: %.*s%s (known models: %s)", (int)keep, name,
                keep < n ? "..." : "", list);
}

static int parse_prompt(const json_t *input, struct job *job,
                        struct errmsg *err)
{
    const json_t *v = member(input, "prompt");
    char g[GOT_MAX];
    if (v && !json_is_string(v))
        return bad(err, "input.prompt must be a string%s", got(v, g));
    size_t n = v ? json_string_length(v) : 0;
    if (n == 0) {
        if (task_kind_needs_prompt(job->kind))
            return bad(err,
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

static int type_refused(const struct job *job, const char *field,
                        enum job_media_type type, struct errmsg *err)
{
    return bad(err, "%s: %s is not accepted by %s, which takes %s", field,
               task_media_type_name(type), job->model,
               task_kind_takes(job->kind));
}

/* input.media[] into src[], each entry checked but its URL not yet. */
static int collect_media(const json_t *media, const struct job *job,
                         struct media_src *src, size_t *n, struct errmsg *err)
{
    size_t count = json_array_size(media);
    char g[GOT_MAX];
    if (count > LIMIT_MEDIA_ITEMS)
        return bad(err, "input.media has %zu entries; at most %d are accepted",
                   count, LIMIT_MEDIA_ITEMS);
    for (size_t i = 0; i < count; i++) {
        const json_t *e = json_array_get(media, i);
        if (!json_is_object(e))
            return bad(err, "input.media[%zu] must be an object {type, url}%s",
                       i, got(e, g));
        const json_t *type = member(e, "type"), *url = member(e, "url");
        size_t t;
        for (t = 0; t < JOB_MEDIA_TYPES; t++)
            if (json_is_string(type) &&
                strcmp(json_string_value(type), task_media_type_name(t)) == 0)
                break;
        if (t == JOB_MEDIA_TYPES)
            return bad(err, "input.media[%zu].type must be one of %s%s", i,
                       media_type_list, got(type, g));
        struct media_src *m = &src[(*n)++];
        snprintf(m->field, sizeof(m->field), "input.media[%zu].url", i);
        unsigned min, max;
        task_kind_media(job->kind, (enum job_media_type)t, &min, &max);
        if (max == 0) {
            char field[48];
            snprintf(field, sizeof(field), "input.media[%zu].type", i);
            return type_refused(job, field, t, err);
        }
        if (!json_is_string(url))
            return bad(err, "%s must be a string%s", m->field, got(url, g));
        m->type = t;
        m->url = json_string_value(url);
        m->len = json_string_length(url);
        m->bare_ok = false;
    }
    return 0;
}

/* The section 9 aliases into src[]. */
static int collect_aliases(const json_t *input, const struct job *job,
                           struct media_src *src, size_t *n, struct errmsg *err)
{
    char g[GOT_MAX];
    for (size_t i = 0; i < ARRAY_LEN(media_aliases); i++) {
        const struct media_alias *a = &media_aliases[i];
        const json_t *v = member(input, a->name);
        if (!v || (a->unless && member(input, a->unless)))
            continue;
        if (a->many && json_is_array(v) && json_array_size(v) == 0)
            continue;
        char field[32];
        snprintf(field, sizeof(field), "input.%s", a->name);
        unsigned min, max;
        task_kind_media(job->kind, a->type, &min, &max);
        if (max == 0)
            return type_refused(job, field, a->type, err);
        if (a->many && !json_is_array(v))
            return bad(err, "%s must be an array of URL strings%s", field,
                       got(v, g));
        if (!a->many && !json_is_string(v))
            return bad(err, "%s must be a string%s", field, got(v, g));
        size_t count = a->many ? json_array_size(v) : 1;
        if (count > LIMIT_MEDIA_ITEMS)
            return bad(err, "%s has %zu entries; at most %d are accepted",
                       field, count, LIMIT_MEDIA_ITEMS);
        for (size_t k = 0; k < count; k++) {
            const json_t *u = a->many ? json_array_get(v, k) : v;
            struct media_src *m = &src[(*n)++];
            if (a->many)
                snprintf(m->field, sizeof(m->field), "%s[%u]", field,
                         (unsigned)k);
            else
                snprintf(m->field, sizeof(m->field), "%s", field);
            if (!json_is_string(u))
                return bad(err, "%s must be a string%s", m->field, got(u, g));
            m->type = a->type;
            m->url = json_string_value(u);
            m->len = json_string_length(u);
            m->bare_ok = a->bare_ok;
        }
    }
    return 0;
}

/* The first alias naming `type`, for a hint when none was sent. */
static const char *alias_for(enum job_media_type type)
{
    for (size_t i = 0; i < ARRAY_LEN(media_aliases); i++)
        if (media_aliases[i].type == type)
            return media_aliases[i].name;
    return NULL;
}

static int check_counts(const struct job *job, const struct media_src *src,
                        size_t n, bool from_aliases, struct errmsg *err)
{
    unsigned have[JOB_MEDIA_TYPES] = { 0 };
    for (size_t i = 0; i < n; i++)
        have[src[i].type]++;
    for (size_t t = 0; t < JOB_MEDIA_TYPES; t++) {
        unsigned min, max;
        task_kind_media(job->kind, (enum job_media_type)t, &min, &max);
        if (have[t] >= min && have[t] <= max)
            continue;
        const char *name = task_media_type_name(t);
        const char *where =
            from_aliases ? "in input.media or its aliases" : "in input.media";
        char need[64], hint[64] = "";
        if (min == max)
            snprintf(need, sizeof(need), "needs exactly %u", min);
        else if (min == 0)
            snprintf(need, sizeof(need), "takes at most %u", max);
        else
            snprintf(need, sizeof(need), "needs %u to %u", min, max);
        if (have[t] == 0 && alias_for(t))
            snprintf(hint, sizeof(hint), " (or send input.%s)", alias_for(t));
        return bad(err, "%s %s %s %s, got %u%s", job->model, need, name, where,
                   have[t], hint);
    }
    return 0;
}

/* input.media, or when that is absent or empty the aliases, into
 * job->media (docs/api.md s.2 and s.9). */
static int parse_media(const json_t *input, struct job *job, struct errmsg *err)
{
    /* input.media holds at most LIMIT_MEDIA_ITEMS; the aliases at most
     * one first frame, one video and LIMIT_MEDIA_ITEMS + 1 references. */
    struct media_src src[LIMIT_MEDIA_ITEMS + 3];
    size_t n = 0;
    const json_t *media = member(input, "media");
    char g[GOT_MAX];
    int rc;

    if (media && !json_is_array(media))
        return bad(err,
                   "input.media must be an array of {type, url} "
                   "objects%s",
                   got(media, g));
    bool from_aliases = json_array_size(media) == 0;
    if (from_aliases)
        rc = collect_aliases(input, job, src, &n, err);
    else
        rc = collect_media(media, job, src, &n, err);
    if (rc < 0)
        return rc;
    if ((rc = check_counts(job, src, n, from_aliases && n > 0, err)) < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        char *url = NULL;
        if (job->n_media == LIMIT_MEDIA_ITEMS) /* the count rules forbid */
            return bad(err, "at most %d media entries are accepted",
                       LIMIT_MEDIA_ITEMS);
        if ((rc = media_url(&src[i], &url, err)) < 0)
            return rc;
        job->media[job->n_media].type = src[i].type;
        job->media[job->n_media].url = url;
        snprintf(job->media[job->n_media].field,
                 sizeof(job->media[job->n_media].field), "%s", src[i].field);
        job->n_media++;
    }
    return 0;
}

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
    join(list, sizeof(list), names, n);
    return bad(err, "%s must be one of %s%s", field, list, got(v, g));
}

static int param_resolution(const json_t *v, const char *field, struct job *job,
                            struct errmsg *err)
{
    size_t i = 0;
    int rc = want_enum(v, field, resolution_names, ARRAY_LEN(resolution_names),
                       &i, err);
    if (rc == 0)
        job->resolution = resolution_values[i];
    return rc;
}

static int param_ratio(const json_t *v, const char *field, struct job *job,
                       struct errmsg *err)
{
    size_t i = 0, n = 0;
    const char *const *ratios = task_ratios(&n);
    int rc = want_enum(v, field, ratios, n, &i, err);
    if (rc == 0)
        snprintf(job->ratio, sizeof(job->ratio), "%s", ratios[i]);
    return rc;
}

static int param_duration(const json_t *v, const char *field, struct job *job,
                          struct errmsg *err)
{
    int64_t d = 0;
    int rc =
        want_int(v, field, LIMIT_DURATION_MIN, LIMIT_DURATION_MAX, &d, err);
    if (rc == 0)
        job->duration = (int)d;
    return rc;
}

static int param_watermark(const json_t *v, const char *field, struct job *job,
                           struct errmsg *err)
{
    char g[GOT_MAX];
    if (!json_is_boolean(v))
        return bad(err, "%s must be true or false%s", field, got(v, g));
    job->watermark = json_is_true(v);
    return 0;
}

static int param_seed(const json_t *v, const char *field, struct job *job,
                      struct errmsg *err)
{
    return want_int(v, field, 0, LIMIT_SEED_MAX, &job->seed, err);
}

static int param_audio(const json_t *v, const char *field, struct job *job,
                       struct errmsg *err)
{
    size_t i = 0;
    int rc = want_enum(v, field, audio_names, ARRAY_LEN(audio_names), &i, err);
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

static int parse_params(const json_t *params, int64_t random_seed,
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
        const json_t *v = member(params, r->name);
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
static int collect_extra(const json_t *input, const json_t *params, char **out,
                         struct errmsg *err)
{
    json_t *root = NULL;
    int rc = 0;
    for (size_t i = 0; i < ARRAY_LEN(passthrough); i++) {
        const struct passthrough *p = &passthrough[i];
        const json_t *from = strcmp(p->group, "input") == 0 ? input : params;
        json_t *v = from ? member(from, p->name) : NULL;
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
            rc = fail(err, ERR_NOMEM, "out of memory");
            goto out;
        }
        *out = xstrdup(text);
        free(text);
    }
out:
    json_decref(root);
    return rc;
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
        return bad(err, "request body is empty; expected a JSON object");
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
        return bad(err, "request body is not valid JSON at byte %d: %s%s%s%s",
                   je->position, json_says[i].says,
                   json_says[i].keep ? " (" : "", json_says[i].keep ? text : "",
                   json_says[i].keep ? ")" : "");
    }
    return bad(err, "request body is not valid JSON at byte %d: %s",
               je->position, text);
}

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
        rc = bad(err, "request body must be a JSON object%s", got(root, g));
        goto out;
    }
    if ((rc = parse_model(root, cat, &model, err)) < 0)
        goto out;
    snprintf(job.model, sizeof(job.model), "%s", model->name);
    job.kind = model->kind;

    input = member(root, "input");
    params = member(root, "parameters");
    if (!input) {
        rc = fail(err, ERR_EMPTY_INPUT, "input is required");
        goto out;
    }
    if (!json_is_object(input)) {
        rc = bad(err, "input must be an object%s", got(input, g));
        goto out;
    }
    if (params && !json_is_object(params)) {
        rc = bad(err, "parameters must be an object%s", got(params, g));
        goto out;
    }
    if ((rc = parse_prompt(input, &job, err)) < 0 ||
        (rc = parse_media(input, &job, err)) < 0 ||
        (rc = parse_params(params, random_seed, &job, err)) < 0 ||
        (rc = collect_extra(input, params, &job.extra, err)) < 0)
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

static bool tier_known(int64_t res)
{
    for (size_t i = 0; i < ARRAY_LEN(resolution_values); i++)
        if (resolution_values[i] == res)
            return true;
    return false;
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
    size_t audio;
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
    if (!get_int(root, "resolution", 0, 1080, &res) || !tier_known(res) ||
        !get_int(root, "duration", 0, LIMIT_DURATION_MAX, &dur) ||
        !get_int(root, "seed", 0, LIMIT_SEED_MAX, &seed) || !ratio ||
        strlen(ratio) >= sizeof(job.ratio) || !json_is_boolean(v) || !audio_s)
        goto out;
    for (audio = 0; audio < ARRAY_LEN(audio_names); audio++)
        if (strcmp(audio_s, audio_names[audio]) == 0)
            break;
    if (audio == ARRAY_LEN(audio_names))
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
