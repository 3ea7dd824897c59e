/*
 * The media of a submit (docs/api.md s.2, s.3 and s.9): input.media[] or
 * the older alias fields, their counts by the kind's rules, and each URL
 * checked (http(s), data:image base64, the bare base64 of an image,
 * paddock-upload:// and oss://) and stored in canonical form. Pure.
 */
#include "job_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

static const char *const media_type_list =
    "first_frame, reference_image, video";

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
    size_t keep = job__utf8_cut(m->url, m->len, JOB_SHOW_BYTES + k);
    return job__bad(
        err,
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
    size_t keep = job__utf8_cut(m->url, m->len, JOB_SHOW_BYTES + k);
    return job__bad(
        err,
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
            return job__bad(err,
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
    return job__bad(err, "%s must be %s%s%s%s", m->field, expected,
                    why ? " (" : "", why ? why : "", why ? ")" : "");
}
static int type_refused(const struct job *job, const char *field,
                        enum job_media_type type, struct errmsg *err)
{
    return job__bad(err, "%s: %s is not accepted by %s, which takes %s", field,
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
        return job__bad(err,
                        "input.media has %zu entries; at most %d are accepted",
                        count, LIMIT_MEDIA_ITEMS);
    for (size_t i = 0; i < count; i++) {
        const json_t *e = json_array_get(media, i);
        if (!json_is_object(e))
            return job__bad(err,
                            "input.media[%zu] must be an object {type, url}%s",
                            i, job__got(e, g));
        const json_t *type = job__member(e, "type"),
                     *url = job__member(e, "url");
        size_t t;
        for (t = 0; t < JOB_MEDIA_TYPES; t++)
            if (json_is_string(type) &&
                strcmp(json_string_value(type), task_media_type_name(t)) == 0)
                break;
        if (t == JOB_MEDIA_TYPES)
            return job__bad(err, "input.media[%zu].type must be one of %s%s", i,
                            media_type_list, job__got(type, g));
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
            return job__bad(err, "%s must be a string%s", m->field,
                            job__got(url, g));
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
        const json_t *v = job__member(input, a->name);
        if (!v || (a->unless && job__member(input, a->unless)))
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
            return job__bad(err, "%s must be an array of URL strings%s", field,
                            job__got(v, g));
        if (!a->many && !json_is_string(v))
            return job__bad(err, "%s must be a string%s", field,
                            job__got(v, g));
        size_t count = a->many ? json_array_size(v) : 1;
        if (count > LIMIT_MEDIA_ITEMS)
            return job__bad(err, "%s has %zu entries; at most %d are accepted",
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
                return job__bad(err, "%s must be a string%s", m->field,
                                job__got(u, g));
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
        return job__bad(err, "%s %s %s %s, got %u%s", job->model, need, name,
                        where, have[t], hint);
    }
    return 0;
}

/* input.media, or when that is absent or empty the aliases, into
 * job->media (docs/api.md s.2 and s.9; job_int.h). */
int job__parse_media(const json_t *input, struct job *job, struct errmsg *err)
{
    /* input.media holds at most LIMIT_MEDIA_ITEMS; the aliases at most
     * one first frame, one video and LIMIT_MEDIA_ITEMS + 1 references. */
    struct media_src src[LIMIT_MEDIA_ITEMS + 3];
    size_t n = 0;
    const json_t *media = job__member(input, "media");
    char g[GOT_MAX];
    int rc;

    if (media && !json_is_array(media))
        return job__bad(err,
                        "input.media must be an array of {type, url} "
                        "objects%s",
                        job__got(media, g));
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
            return job__bad(err, "at most %d media entries are accepted",
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
