/*
 * paddock submit: flags checked against the model's needs (task/'s rules,
 * the server's), local images read and inlined as data: URLs, a local
 * video uploaded to a paddock server (its upload extension), the body
 * written with the house JSON writer (a 27 MB base64 image is encoded
 * once, straight into the body) and checked with the server's own parse.
 */
#include "cli.h"
#include "../task/task.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* paddock's extensions (docs/extensions.md): the models table, which no
 * other endpoint serves, and uploads. */
#define MODELS_PATH "/api/v1/models"
#define UPLOAD_PATH "/api/v1/uploads"
/* Bytes cli_video_type looks at. */
#define VIDEO_SNIFF_BYTES 12
/* "paddock-upload://<uuid>" and its NUL. */
#define UPLOAD_URL_SIZE (sizeof(TASK_UPLOAD_SCHEME) + UUID_STR_LEN)

/* --model shortcuts; "happyhorse-" may also be left off ("1.1-t2v"). */
static const struct shortcut {
    const char *name, *model;
} shortcuts[] = {
    { "t2v", "happyhorse-1.0-t2v" },
    { "i2v", "happyhorse-1.0-i2v" },
    { "r2v", "happyhorse-1.0-r2v" },
    { "edit", "happyhorse-1.0-video-edit" },
    { "video-edit", "happyhorse-1.0-video-edit" },
};

int cli_model(const char *arg, char out[LIMIT_MODEL_NAME + 1],
              struct errmsg *err)
{
    size_t n = strlen(arg);
    if (n == 0 || n > LIMIT_MODEL_NAME ||
        strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789._-") != n)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "--model: '%.*s' is not a model name (letters, "
                          "digits, '.', '_' and '-', at most %d)",
                          80, arg, LIMIT_MODEL_NAME);
    for (size_t i = 0; i < ARRAY_LEN(shortcuts); i++)
        if (strcasecmp(arg, shortcuts[i].name) == 0) {
            snprintf(out, LIMIT_MODEL_NAME + 1, "%s", shortcuts[i].model);
            return 0;
        }
    char full[LIMIT_MODEL_NAME + 16];
    snprintf(full, sizeof(full), "happyhorse-%s", arg);
    const struct task_model *m = task_model_find(full);
    snprintf(out, LIMIT_MODEL_NAME + 1, "%s", m ? m->name : arg);
    return 0;
}

/* ---------------------------------------------------------------- media */

static bool has_prefix_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static bool is_http(const char *s)
{
    return has_prefix_ci(s, "http://") || has_prefix_ci(s, "https://");
}

const char *cli_video_type(const void *data, size_t n)
{
    /* An ISO media file (MP4, MOV) opens with a box: 4 bytes of size, then
     * its type; ftyp first, or for older QuickTime files one of these. */
    static const char *const boxes[] = { "ftyp", "moov", "mdat", "free",
                                         "skip", "wide", "pnot" };
    const unsigned char *p = data;
    for (size_t i = 0; n >= 8 && i < ARRAY_LEN(boxes); i++)
        if (memcmp(p + 4, boxes[i], 4) == 0)
            return "video/mp4";
    return NULL;
}

/* The local path an argument names, or NULL when it is a URL (a
 * paddock-upload:// URL of an earlier upload included). */
static const char *local_path(const char *arg)
{
    if (is_http(arg) || has_prefix_ci(arg, "data:") ||
        has_prefix_ci(arg, TASK_UPLOAD_SCHEME))
        return NULL;
    if (has_prefix_ci(arg, "file://"))
        return arg + 7;
    return arg;
}

/* Everything about one --image/--ref/--video value short of reading it. */
static int check_media(const char *flag, const char *arg, bool image,
                       struct errmsg *err)
{
    const char *path = local_path(arg);
    if (!path) {
        size_t n = strlen(arg);
        if (has_prefix_ci(arg, "data:")) {
            if (!image)
                return errmsg_set(err, ERR_INVALID_PARAMETER,
                                  "%s: a data: URL is accepted for images "
                                  "only",
                                  flag);
            if (!has_prefix_ci(arg, "data:image/jpeg;base64,") &&
                !has_prefix_ci(arg, "data:image/png;base64,") &&
                !has_prefix_ci(arg, "data:image/webp;base64,"))
                return errmsg_set(err, ERR_INVALID_PARAMETER,
                                  "%s: a data: URL must be image/jpeg, "
                                  "image/png or image/webp with ;base64",
                                  flag);
            return 0;
        }
        if (n > LIMIT_URL_BYTES)
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "%s: the URL is longer than %d bytes", flag,
                              LIMIT_URL_BYTES);
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)arg[i] <= 0x20 || arg[i] == 0x7f)
                return errmsg_set(err, ERR_INVALID_PARAMETER,
                                  "%s: whitespace or a control character in "
                                  "the URL (escape spaces as %%20)",
                                  flag);
        return 0;
    }
    if (strstr(arg, "://") && !has_prefix_ci(arg, "file://"))
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "%s '%.*s': only http(s) URLs, data: URLs and local "
                          "files are accepted",
                          flag, 200, arg);
    struct stat st;
    if (stat(path, &st) < 0)
        return errmsg_set(err, ERR_INVALID_PARAMETER, "%s %.*s: %s", flag, 200,
                          path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "%s %.*s: not a regular file", flag, 200, path);
    int64_t cap = image ? LIMIT_IMAGE_BYTES : LIMIT_VIDEO_BYTES;
    if (st.st_size > cap)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "%s %.*s: %.1f MB is over the %lld MB limit of %s "
                          "input",
                          flag, 200, path, (double)st.st_size / (1 << 20),
                          (long long)(cap >> 20),
                          image ? "an image" : "a video");
    if (st.st_size == 0)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "%s %.*s: the file is "
                          "empty",
                          flag, 200, path);
    if (image)
        return 0; /* its type is checked when it is read */
    unsigned char head[VIDEO_SNIFF_BYTES];
    ssize_t got = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        got = read(fd, head, sizeof(head));
        close(fd);
    }
    if (got < 0)
        return errmsg_set(err, ERR_INVALID_PARAMETER, "%s %.*s: %s", flag, 200,
                          path, strerror(errno));
    if (!cli_video_type(head, (size_t)got))
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "%s %.*s: not an MP4 or MOV video (by its first "
                          "bytes); HappyHorse takes only these",
                          flag, 200, path);
    return 0;
}

/* What an endpoint other than paddock gets for a local --video. */
static int video_refused(const char *arg, struct errmsg *err)
{
    return errmsg_set(err, ERR_INVALID_PARAMETER,
                      "--video '%.*s': this endpoint takes a video only as "
                      "an http(s):// URL it can fetch; local video files "
                      "are accepted by paddock servers only (their upload "
                      "extension). Put the file on a web server or bucket "
                      "and pass its URL.",
                      200, arg);
}

/* A whole local file of at most `max` bytes into *data (caller frees). */
static int read_local(const char *flag, const char *path, int64_t max,
                      unsigned char **data, size_t *size, struct errmsg *err)
{
    struct stat st;
    size_t got = 0;
    int ret = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    *data = NULL;
    *size = 0;
    if (fd < 0 || fstat(fd, &st) < 0) {
        ret = errmsg_set(err, ERR_INVALID_PARAMETER, "%s %.*s: %s", flag, 200,
                         path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > max) {
        ret = errmsg_set(err, ERR_INVALID_PARAMETER,
                         "%s %.*s: changed while being read", flag, 200, path);
        goto out;
    }
    *size = (size_t)st.st_size;
    *data = xmalloc(*size);
    while (got < *size) {
        ssize_t r = read(fd, *data + got, *size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            ret = errmsg_set(err, ERR_INVALID_PARAMETER, "%s %.*s: %s", flag,
                             200, path,
                             r < 0 ? strerror(errno)
                                   : "changed while being "
                                     "read");
            goto out;
        }
        got += (size_t)r;
    }
out:
    if (fd >= 0)
        close(fd);
    if (ret < 0) {
        free(*data);
        *data = NULL;
    }
    return ret;
}

/* A local image (checked by check_media) as a JSON string "data:...". */
static int put_data_url(struct buf *b, const char *flag, const char *path,
                        struct errmsg *err)
{
    unsigned char *data = NULL;
    size_t size = 0;
    int ret = read_local(flag, path, LIMIT_IMAGE_BYTES, &data, &size, err);
    if (ret < 0)
        return ret;
    const char *type = task_image_mime(task_image_sniff(data, size));
    if (!type) {
        ret = errmsg_set(err, ERR_INVALID_PARAMETER,
                         "%s %.*s: not a JPEG, PNG or WEBP image (by its "
                         "first bytes); HappyHorse takes only these",
                         flag, 200, path);
        goto out;
    }
    buf_printf(b, "\"data:%s;base64,", type);
    base64_encode(b, data, size);
    buf_putc(b, '"');
out:
    free(data);
    return ret;
}

/* One media entry; a local image goes inline, a local video as the
 * paddock-upload:// URL it was uploaded as (`upload`, or the refusal). */
static int put_media(struct buf *b, bool *first, const char *type,
                     const char *flag, const char *arg, const char *upload,
                     struct errmsg *err)
{
    bool video = strcmp(type, "video") == 0;
    const char *path = local_path(arg);
    if (path && video && !upload)
        return video_refused(arg, err);
    buf_puts(b, *first ? "{\"type\":" : ",{\"type\":");
    *first = false;
    buf_json_str(b, type);
    buf_puts(b, ",\"url\":");
    if (!path)
        buf_json_str(b, arg);
    else if (video)
        buf_json_str(b, upload);
    else if (put_data_url(b, flag, path, err) < 0)
        return err->code;
    buf_putc(b, '}');
    return 0;
}

/* --------------------------------------------------------------- values */

static int check_choice(const char *flag, const char *v,
                        const char *const *choices, size_t n, bool any_case,
                        const char **canonical, struct errmsg *err)
{
    for (size_t i = 0; i < n; i++)
        if ((any_case ? strcasecmp : strcmp)(v, choices[i]) == 0) {
            *canonical = choices[i];
            return 0;
        }
    struct buf list = BUF_INIT;
    for (size_t i = 0; i < n; i++)
        buf_printf(&list, "%s%s", i ? (i + 1 == n ? " or " : ", ") : "",
                   choices[i]);
    errmsg_set(err, ERR_INVALID_PARAMETER, "%s: '%.*s' is not %s", flag, 40, v,
               list.data);
    buf_fini(&list);
    return err->code;
}

struct values {
    const char *resolution, *ratio, *audio;
    int64_t duration, seed;
};

static int check_values(const struct cli_opts *o, struct values *v,
                        struct errmsg *err)
{
    size_t n_tiers, n_ratios, n_audio;
    const char *const *tiers = task_resolutions(&n_tiers);
    const char *const *ratios = task_ratios(&n_ratios);
    const char *const *audio = task_audio_settings(&n_audio);

    if (o->resolution && check_choice("--resolution", o->resolution, tiers,
                                      n_tiers, true, &v->resolution, err) < 0)
        return err->code;
    if (o->ratio && check_choice("--ratio", o->ratio, ratios, n_ratios, false,
                                 &v->ratio, err) < 0)
        return err->code;
    if (o->audio_setting &&
        check_choice("--audio-setting", o->audio_setting, audio, n_audio, false,
                     &v->audio, err) < 0)
        return err->code;
    if (o->duration && parse_i64(o->duration, LIMIT_DURATION_MIN,
                                 LIMIT_DURATION_MAX, &v->duration) < 0)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "--duration: '%.*s' is not a whole number of "
                          "seconds from %d to %d",
                          40, o->duration, LIMIT_DURATION_MIN,
                          LIMIT_DURATION_MAX);
    if (o->seed && parse_i64(o->seed, 0, LIMIT_SEED_MAX, &v->seed) < 0)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "--seed: '%.*s' is not an integer from 0 to %lld", 40,
                          o->seed, (long long)LIMIT_SEED_MAX);
    if (o->prompt) {
        size_t n = strlen(o->prompt);
        if (n > LIMIT_PROMPT_BYTES)
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "--prompt: %zu bytes is over the %d-byte limit",
                              n, LIMIT_PROMPT_BYTES);
        if (!utf8_valid(o->prompt, n))
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "--prompt is not valid UTF-8");
    }
    return 0;
}

/* What a HappyHorse model of `kind` needs (the rulebook's rules, which the
 * server applies too), named by flag. */
static int check_kind(enum task_kind kind, const char *model,
                      const struct cli_opts *o, FILE *warn, struct errmsg *err)
{
    unsigned images = o->image != NULL, videos = o->video != NULL;
    unsigned refs = (unsigned)o->n_refs, min, max;
    if (task_kind_needs_prompt(kind) && (!o->prompt || !o->prompt[0]))
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "--prompt is required by %s", model);
    task_kind_media(kind, JOB_MEDIA_FIRST_FRAME, &min, &max);
    if (images < min)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "--image is required by %s (its first frame)", model);
    if (images > max)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "--image does not apply to %s", model);
    task_kind_media(kind, JOB_MEDIA_VIDEO, &min, &max);
    if (videos < min)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "--video is required by %s", model);
    if (videos > max)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "--video does not apply to %s", model);
    task_kind_media(kind, JOB_MEDIA_REFERENCE_IMAGE, &min, &max);
    if (refs > 0 && max == 0)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "--ref does not apply to %s", model);
    if (refs < min || refs > max)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "--ref: %s takes %u to %u reference images, not %u",
                          model, min, max, refs);
    if (!warn)
        return 0;
    if (o->ratio && !task_kind_uses_param(kind, "ratio"))
        fprintf(warn,
                "paddock submit: note: %s ignores --ratio (the video "
                "follows its input)\n",
                model);
    if (o->duration && !task_kind_uses_param(kind, "duration"))
        fprintf(warn,
                "paddock submit: note: %s ignores --duration (the video "
                "keeps its input's length)\n",
                model);
    if (o->audio_setting && !task_kind_uses_param(kind, "audio_setting"))
        fprintf(warn,
                "paddock submit: note: %s ignores --audio-setting "
                "(video-edit only)\n",
                model);
    return 0;
}

/* Every check of cli_submit_check; the model name and values for the
 * body. */
static int check_all(const struct cli_opts *o, char model[LIMIT_MODEL_NAME + 1],
                     struct values *v, FILE *warn, struct errmsg *err)
{
    /* Without --model, the inputs say which kind is meant. */
    const char *given = o->model    ? o->model
                        : o->video  ? "edit"
                        : o->n_refs ? "r2v"
                        : o->image  ? "i2v"
                                    : "t2v";
    if (cli_model(given, model, err) < 0 || check_values(o, v, err) < 0)
        return err->code;
    const struct task_model *m = task_model_find(model);
    if (m && check_kind(m->kind, model, o, warn, err) < 0)
        return err->code;
    if (o->image && check_media("--image", o->image, true, err) < 0)
        return err->code;
    for (size_t i = 0; i < o->n_refs; i++)
        if (check_media("--ref", o->refs[i], true, err) < 0)
            return err->code;
    if (o->video && check_media("--video", o->video, false, err) < 0)
        return err->code;
    return 0;
}

/*
 * The body as the server will judge it: task_job_parse, the server's own
 * parse, over what was written. The flag checks above catch nearly
 * everything first, by flag; this catches what they leave to the server
 * (a data: URL whose base64 is broken, an http URL without a host). A
 * model the table does not know (another endpoint's, an alias) is the
 * server's to judge.
 */
static int check_body(const struct buf *b, const char *model,
                      struct errmsg *err)
{
    struct job job;
    struct errmsg e = { 0 };
    if (!task_model_find(model))
        return 0;
    int rc = task_job_parse(b->data, b->len, 0, NULL, &job, &e);
    task_job_fini(&job);
    if (rc < 0)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "the API would refuse this request: %s",
                          errmsg_text(&e));
    return 0;
}

int cli_submit_check(const struct cli_opts *o, FILE *warn, struct errmsg *err)
{
    char model[LIMIT_MODEL_NAME + 1];
    struct values v = { 0 };
    return check_all(o, model, &v, warn, err);
}

bool cli_local_video(const struct cli_opts *o)
{
    return o->video && local_path(o->video) != NULL;
}

int cli_submit_body(const struct cli_opts *o, struct buf *b, FILE *warn,
                    struct errmsg *err)
{
    char model[LIMIT_MODEL_NAME + 1];
    struct values v = { 0 };

    if (check_all(o, model, &v, warn, err) < 0)
        return err->code;

    /* Everything is checked: now read files and write. */
    buf_reset(b);
    buf_puts(b, "{\"model\":");
    buf_json_str(b, model);
    buf_puts(b, ",\"input\":{");
    if (o->prompt) {
        buf_puts(b, "\"prompt\":");
        buf_json_str(b, o->prompt);
    }
    if (o->image || o->n_refs || o->video) {
        bool first = true;
        buf_puts(b, o->prompt ? ",\"media\":[" : "\"media\":[");
        if (o->image && put_media(b, &first, "first_frame", "--image", o->image,
                                  NULL, err) < 0)
            goto fail;
        for (size_t i = 0; i < o->n_refs; i++)
            if (put_media(b, &first, "reference_image", "--ref", o->refs[i],
                          NULL, err) < 0)
                goto fail;
        if (o->video && put_media(b, &first, "video", "--video", o->video,
                                  o->video_upload, err) < 0)
            goto fail;
        buf_putc(b, ']');
    }
    buf_putc(b, '}');

    struct buf p = BUF_INIT;
    if (v.resolution)
        buf_printf(&p, ",\"resolution\":\"%s\"", v.resolution);
    if (v.ratio)
        buf_printf(&p, ",\"ratio\":\"%s\"", v.ratio);
    if (o->duration)
        buf_printf(&p, ",\"duration\":%lld", (long long)v.duration);
    if (o->seed)
        buf_printf(&p, ",\"seed\":%lld", (long long)v.seed);
    if (o->no_watermark)
        buf_puts(&p, ",\"watermark\":false");
    if (v.audio)
        buf_printf(&p, ",\"audio_setting\":\"%s\"", v.audio);
    if (p.len)
        buf_printf(b, ",\"parameters\":{%s}", p.data + 1);
    buf_fini(&p);
    buf_putc(b, '}');
    if (check_body(b, model, err) < 0)
        goto fail;
    return 0;
fail:
    buf_reset(b);
    return err->code;
}

/* -------------------------------------------------------------- uploads */

/*
 * Is the endpoint a paddock server? GET /api/v1/models is paddock's
 * extension: 200 with a "models" array there; DashScope and TTAPI do not
 * serve it. CLI_EXIT_OK with *paddock set, or the exit status of a
 * failure already reported (no answer; a 401 or 403: the key is wrong, so
 * nothing is learned).
 */
static int probe_paddock(struct cli *c, bool *paddock)
{
    struct hh_request q;
    struct hh_answer a;
    struct errmsg err = { 0 };

    *paddock = false;
    hh_req_init(&q, &c->ep, "GET", MODELS_PATH);
    int ret = cli_request_exit(hh_send(&c->hc, &q, &a, &err), &err);
    if (ret == CLI_EXIT_OK && (a.status == 401 || a.status == 403)) {
        cli_report_http(c, &a);
        ret = CLI_EXIT_HTTP;
    } else if (ret == CLI_EXIT_OK) {
        *paddock =
            a.status == 200 && json_is_array(json_object_get(a.json, "models"));
    }
    hh_answer_fini(&a);
    hh_request_fini(&q);
    return ret;
}

/*
 * Send the local --video to a paddock server (POST /api/v1/uploads, the
 * raw bytes) and keep the paddock-upload:// URL it answers in url. Another
 * endpoint gets the refusal (exit 2: only the probe was sent). Returns the
 * exit status.
 */
static int upload_video(struct cli *c, char url[UPLOAD_URL_SIZE])
{
    struct hh_request q = { 0 };
    struct hh_answer a = { 0 };
    struct errmsg err = { 0 };
    unsigned char *data = NULL;
    size_t size = 0;
    bool paddock = false;
    char id[UUID_STR_LEN + 1];
    const char *arg = c->o.video, *path = local_path(arg);
    int ret = probe_paddock(c, &paddock);

    if (ret != CLI_EXIT_OK)
        goto out;
    if (!paddock) {
        video_refused(arg, &err);
        ret = cli_usage_error(c, &err);
        goto out;
    }
    if (read_local("--video", path, LIMIT_VIDEO_BYTES, &data, &size, &err) <
        0) {
        ret = cli_usage_error(c, &err);
        goto out;
    }
    /* The raw bytes: no retry, no submit headers. */
    hh_req_init(&q, &c->ep, "POST", UPLOAD_PATH);
    hh_req_body(&q, "application/octet-stream", data, size);
    q.timeout_ms = CLI_UPLOAD_TIMEOUT_MS;
    ret = cli_request_exit(hh_send(&c->hc, &q, &a, &err), &err);
    free(data);
    data = NULL;
    if (ret != CLI_EXIT_OK)
        goto out;
    const char *got = hh_jstr(a.output, "url");
    if (a.status != 200 || !a.json) {
        cli_report_http(c, &a);
        ret = CLI_EXIT_HTTP;
        goto out;
    }
    if (!task_upload_id(got, id)) {
        fprintf(stderr, "paddock: HTTP 200 but the upload answer has no "
                        "valid output.url\n");
        ret = CLI_EXIT_HTTP;
        goto out;
    }
    snprintf(url, UPLOAD_URL_SIZE, "%s", got);
    const char *expires = hh_jstr(a.output, "expires_time");
    fprintf(stderr, "paddock: uploaded %.200s (%zu bytes) as %s", path, size,
            url);
    if (expires) {
        fputs(", kept until ", stderr);
        cli_put_clean(stderr, expires, 40);
    }
    fputc('\n', stderr);
out:
    free(data);
    hh_answer_fini(&a);
    hh_request_fini(&q);
    return ret;
}

/* -------------------------------------------------------------- command */

int cli_cmd_submit(struct cli *c)
{
    struct buf body = BUF_INIT;
    struct hh_answer a = { 0 };
    struct hh_task t;
    struct errmsg err = { 0 };
    char task_id[HH_ID_MAX + 1];
    char upload[UPLOAD_URL_SIZE];
    int64_t timeout_ms = 0;
    int ret;

    /* Flags of the whole flow first: nothing is sent on a usage error. */
    if ((c->o.wait && cli_timeout(&c->o, &timeout_ms, &err) < 0) ||
        (c->o.output && cli_check_output(c->o.output, &err) < 0) ||
        cli_submit_check(&c->o, stderr, &err) < 0) {
        ret = cli_usage_error(c, &err);
        goto out;
    }
    if ((ret = cli_connect(c)) != CLI_EXIT_OK)
        goto out;
    if (cli_local_video(&c->o)) {
        if ((ret = upload_video(c, upload)) != CLI_EXIT_OK)
            goto out;
        c->o.video_upload = upload;
    }
    if (cli_submit_body(&c->o, &body, NULL, &err) < 0) {
        ret = cli_usage_error(c, &err); /* a file changed since the check */
        goto out;
    }
    ret = cli_call_submit(c, &body, &a);
    buf_fini(&body); /* the images are sent: free them before waiting */
    if (ret != CLI_EXIT_OK)
        goto out;
    hh_task_read(&a, &t);
    if (!t.task_id) {
        fprintf(stderr, "paddock: HTTP 200 but the answer has no "
                        "valid output.task_id\n");
        cli_print_json(c, &a);
        ret = CLI_EXIT_HTTP;
        goto out;
    }
    snprintf(task_id, sizeof(task_id), "%s", t.task_id);
    if (c->o.json)
        cli_print_json(c, &a);
    else
        printf("%s\n", task_id);
    fflush(stdout);
    hh_answer_fini(&a);
    if (c->o.wait)
        ret = cli_wait_task(c, task_id, timeout_ms, c->o.output, true);
out:
    c->o.video_upload = NULL; /* `upload` lives on this stack */
    hh_answer_fini(&a);
    buf_fini(&body);
    return ret;
}
