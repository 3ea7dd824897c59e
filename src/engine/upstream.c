/*
 * The upstream engine: relays a task to a DashScope- or TTAPI-dialect
 * service (another paddock, TTAPI, Model Studio), polls it to the end and
 * downloads the video it made (docs/engines.md, "The upstream engine").
 * This file holds the spec, what each answer means, the download and the
 * check; upstream_relay.c keeps the tasks in flight (no thread each).
 *
 * A task is submitted once (with the paddock task id as Idempotency-Key),
 * its upstream task id saved with the task through ctl->save_ref before
 * the first look, and a later attempt resumes from ctl->ref, so a crash or
 * a lost lease never creates a second upstream task. Every request to the
 * upstream API takes a token of one bucket per engine instance. The
 * upstream's video link is followed but never shown: no message, log line
 * or result of this engine carries it.
 */
#include "upstream_int.h"

#include "../log/log.h"
#include "../media/media.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* The largest video a relay downloads (a 15 s 1080p render is ~30 MB). */
#define UPSTREAM_VIDEO_BYTES (1ll << 30)
/* Tries of the video download (network errors, 5xx). */
#define UPSTREAM_DOWNLOAD_TRIES 3
/* Redirects the video link may take. */
#define UPSTREAM_DOWNLOAD_REDIRECTS 3
/* Time limit of check()'s request. */
#define UPSTREAM_CHECK_TIMEOUT_MS 3000
/* Option words of one engine spec. */
#define UPSTREAM_WORDS_MAX 16
/* The task id check() asks for: valid, and never a real task. */
#define UPSTREAM_CHECK_ID "00000000-0000-0000-0000-000000000000"

/* Failure codes an upstream may name that paddock also knows (docs/api.md
 * s.7.3); the code itself is recorded as given either way. */
static const int known_codes[] = {
    ERR_ALGO,        ERR_DATA_INSPECTION,         ERR_INVALID_PARAMETER,
    ERR_TIMEOUT,     ERR_UNSUPPORTED_FILE_FORMAT, ERR_INPUT_DOWNLOAD_FAILED,
    ERR_INVALID_URL,
};

/* ------------------------------------------------------------ helpers */

bool upstream_token(struct upstream_engine *ue)
{
    int retry_s;
    return limit_rate_take(ue->rate, "upstream", clock_mono_ms(), &retry_s) ==
           0;
}

/* What went wrong in a net_http error, in words without the upstream's
 * address (task messages and 503s reach clients); the whole error goes to
 * the operator's log. */
const char *upstream_net_reason(const struct errmsg *e)
{
    const char *t = errmsg_text(e);
    log_warn("upstream request failed", "error=\"%s\"", t);
    if (strcasestr(t, "timed out") || strcasestr(t, "timeout"))
        return "the request timed out";
    if (strcasestr(t, "resolve"))
        return "its host name does not resolve";
    if (strcasestr(t, "connect"))
        return "the connection was refused";
    if (strcasestr(t, "SSL") || strcasestr(t, "certificate"))
        return "the TLS handshake failed";
    return "no HTTP answer";
}

/* The paddock error that stands for an upstream's failure code. */
int upstream_code_error(const char *code)
{
    int e = code ? err_from_code(code) : 0;
    for (size_t i = 0; e && i < ARRAY_LEN(known_codes); i++)
        if (e == known_codes[i])
            return e;
    return ERR_ALGO;
}

/* 401/403: the upstream refused our key (which no message shows). */
int upstream_key_refused(const struct upstream_engine *ue,
                         const struct hh_answer *a, struct errmsg *err)
{
    char said[HH_SAY_MAX + 64];
    hh_say(a, said, sizeof(said));
    return errmsg_set(err, ERR_ALGO,
                      "the upstream %s refused paddock's key (%s)", ue->shown,
                      said);
}

/* --------------------------------------------------------- the calls */

/* The submit body: the job's fields, then its pass-through extras in the
 * groups where they came from, never over a field set here. */
char *upstream_submit_body(const struct job *job)
{
    json_t *input = json_object();
    if (job->prompt)
        json_object_set_new(input, "prompt", json_string(job->prompt));
    if (job->n_media) {
        json_t *media = json_array();
        for (size_t i = 0; i < job->n_media; i++)
            json_array_append_new(
                media, json_pack("{s:s, s:s}", "type",
                                 task_media_type_name(job->media[i].type),
                                 "url", job->media[i].url));
        json_object_set_new(input, "media", media);
    }
    json_t *params = json_object();
    char tier[16];
    snprintf(tier, sizeof(tier), "%dP", job->resolution);
    json_object_set_new(params, "resolution", json_string(tier));
    if (job->ratio[0])
        json_object_set_new(params, "ratio", json_string(job->ratio));
    if (job->duration > 0)
        json_object_set_new(params, "duration", json_integer(job->duration));
    json_object_set_new(params, "watermark", json_boolean(job->watermark));
    json_object_set_new(params, "seed", json_integer((json_int_t)job->seed));
    if (job->kind == TASK_EDIT)
        json_object_set_new(params, "audio_setting",
                            json_string(job->audio_origin ? "origin" : "auto"));
    json_t *extra = job->extra ? json_loads(job->extra, 0, NULL) : NULL;
    json_t *more = json_object_get(extra, "input");
    if (json_is_object(more))
        json_object_update_missing(input, more);
    more = json_object_get(extra, "parameters");
    if (json_is_object(more))
        json_object_update_missing(params, more);
    json_decref(extra);
    json_t *root = json_pack("{s:s, s:o, s:o}", "model", job->model, "input",
                             input, "parameters", params);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

static void download_failed(void *arg, int attempt, int rc, long status)
{
    const char *task_id = arg;
    log_warn("upstream video download failed",
             "task_id=%s attempt=%d status=%ld error=%s", task_id, attempt,
             status, rc < 0 ? err_name(rc) : "-");
}

/* The download of the finished video into out_path, no auth header sent
 * (the link may point elsewhere than the API), through the bucket too. */
static int download(struct upstream_engine *ue, struct hh_client *hc,
                    const char *task_id, const char *url, const char *out_path,
                    struct errmsg *err)
{
    struct net_http_resp resp;
    struct errmsg e = { 0 };
    int ret = 0;
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return errmsg_set(err, ERR_IO, "cannot create the output file: %s",
                          strerror(errno));
    const struct hh_download d = {
        .url = url,
        .fd = fd,
        .max_bytes = UPSTREAM_VIDEO_BYTES,
        .stall_ms = ue->timeout_ms,
        .max_redirects = UPSTREAM_DOWNLOAD_REDIRECTS,
        .tries = UPSTREAM_DOWNLOAD_TRIES,
        .backoff_ms = ue->poll_ms,
        .on_fail = download_failed,
        .arg = (void *)task_id,
    };
    int rc = hh_download(hc, &d, &resp, &e);
    /* e names the link's host and path: kept out of every message. */
    if (rc == ERR_STOPPED)
        ret = errmsg_set(err, ERR_STOPPED, "the relay was stopped");
    else if (rc == ERR_TOO_LARGE)
        ret = errmsg_set(err, ERR_ALGO,
                         "the upstream's video is larger than %lld MiB",
                         UPSTREAM_VIDEO_BYTES >> 20);
    else if (rc < 0)
        ret = errmsg_set(err, ERR_ALGO,
                         "the upstream's video could not be downloaded (no "
                         "complete answer)");
    else if (resp.status != 200)
        ret = errmsg_set(err, ERR_ALGO,
                         "the upstream's video could not be downloaded "
                         "(HTTP %ld)",
                         resp.status);
    net_http_resp_fini(&resp);
    close(fd);
    return ret;
}

int upstream_fetch(struct upstream_engine *ue, struct hh_client *hc,
                   const char *task_id, const char *url,
                   const struct hh_usage *got, const struct job *job,
                   const char *out_path, struct job_result *res,
                   struct errmsg *err)
{
    int rc = download(ue, hc, task_id, url, out_path, err);
    if (rc < 0)
        return rc;
    struct task_media_info info;
    struct errmsg probe = { 0 };
    if (media_probe_file(out_path, TASK_MEDIA_VIDEO, "the upstream's video",
                         &info, &probe) < 0)
        return errmsg_set(err, ERR_ALGO, "%s", errmsg_text(&probe));
    struct task_usage *u = &res->usage;
    memset(u, 0, sizeof(*u));
    u->output_s = got->output_s >= 0 ? got->output_s : info.duration_s;
    u->input_s = got->input_s >= 0 ? got->input_s : 0;
    u->sr = got->sr ? got->sr : job->resolution;
    snprintf(u->ratio, sizeof(u->ratio), "%s",
             got->ratio[0] ? got->ratio : job->ratio);
    return 0;
}

static int upstream_start(struct engine *e, const struct job *job,
                          const struct job_inputs *in, const char *out_path,
                          const struct job_ctl *ctl, struct errmsg *err)
{
    struct upstream_engine *ue = container_of(e, struct upstream_engine, base);
    (void)in; /* local_media is false: the upstream fetches the URLs */
    return upstream_relay_start(ue, job, out_path, ctl, err);
}

/* In flight in this process: inflight=N (engine.NAME.concurrency, when
 * set, is a lower cap). */
static int upstream_capacity(struct engine *e, int configured)
{
    struct upstream_engine *ue = container_of(e, struct upstream_engine, base);
    return configured > 0 && configured < ue->inflight ? configured
                                                       : ue->inflight;
}

/* ------------------------------------------------------------- check */

static int upstream_check(struct engine *e, const atomic_bool *stop,
                          struct errmsg *err)
{
    struct upstream_engine *ue = container_of(e, struct upstream_engine, base);
    struct net_http *http = NULL;
    struct hh_answer a;
    struct errmsg ne = { 0 };
    char said[HH_SAY_MAX + 64];
    int ret = 0;

    if (net_http_new(&http, &ne) < 0)
        return errmsg_set(err, ERR_MODEL_UNAVAILABLE, "upstream %s: %s",
                          ue->shown, upstream_net_reason(&ne));
    /* Outside the rate limit: no pace. */
    struct hh_client hc = { .ep = &ue->ep,
                            .http = http,
                            .stop = stop,
                            .timeout_ms = UPSTREAM_CHECK_TIMEOUT_MS };
    int rc = hh_query(&hc, UPSTREAM_CHECK_ID, &a, &ne);
    if (rc < 0) {
        ret = errmsg_set(err, ERR_MODEL_UNAVAILABLE,
                         "upstream %s unreachable: %s", ue->shown,
                         upstream_net_reason(&ne));
    } else if (a.status == 401 || a.status == 403) {
        ret = errmsg_set(err, ERR_MODEL_UNAVAILABLE,
                         "upstream %s refused the key (HTTP %ld)", ue->shown,
                         a.status);
    } else if (a.status >= 500 || a.status < 200 ||
               (a.status >= 300 && a.status <= 399)) {
        hh_say(&a, said, sizeof(said));
        ret = errmsg_set(err, ERR_MODEL_UNAVAILABLE,
                         "upstream %s unreachable: it answered %s", ue->shown,
                         said);
    }
    hh_answer_fini(&a);
    net_http_free(http);
    return ret;
}

/* -------------------------------------------------------- the spec */

static void upstream_free(struct engine *e)
{
    struct upstream_engine *ue = container_of(e, struct upstream_engine, base);
    upstream_relay_free(ue->relay); /* its threads first */
    pthread_mutex_destroy(&ue->lock);
    hh_endpoint_fini(&ue->ep); /* wipes the key */
    limit_rate_free(ue->rate);
    free(ue);
}

static const struct engine_ops upstream_ops = {
    .name = "upstream",
    .local_media = false,
    .start = upstream_start,
    .capacity = upstream_capacity,
    .check = upstream_check,
    .free = upstream_free,
};

/* The option words, each with what a good value looks like. */
enum opt_id {
    OPT_KEY,
    OPT_KEY_ENV,
    OPT_RATE,
    OPT_POLL,
    OPT_POLL_MAX,
    OPT_TIMEOUT,
    OPT_INFLIGHT,
    OPT_DOWNLOADS
};
static const struct upstream_opt {
    const char *name;
    enum opt_id id;
    int64_t min_ms, max_ms; /* durations */
    const char *form;
} upstream_opts[] = {
    { "key", OPT_KEY, 0, 0, "key=KEY (the upstream API key)" },
    { "key-env", OPT_KEY_ENV, 0, 0,
      "key-env=VAR (an environment variable holding the key)" },
    { "rate", OPT_RATE, 0, 0,
      "rate=N, upstream requests per second, a number from 0.01 to 10000" },
    { "poll", OPT_POLL, 10, 3600000,
      "poll=DURATION from 10ms to 1h (500ms, 2s, 1m)" },
    { "poll-max", OPT_POLL_MAX, 10, 3600000,
      "poll-max=DURATION from 10ms to 1h, at least poll" },
    { "timeout", OPT_TIMEOUT, 100, 3600000,
      "timeout=DURATION from 100ms to 1h (one HTTP request)" },
    { "inflight", OPT_INFLIGHT, 1, UPSTREAM_INFLIGHT_MAX,
      "inflight=N, upstream tasks followed at once, from 1 to 100000" },
    { "downloads", OPT_DOWNLOADS, 1, 64,
      "downloads=N, videos downloaded at once, from 1 to 64" },
};

static int bad(struct errmsg *err, const char *fmt, const char *what)
{
    return errmsg_set(err, ERR_INVALID_PARAMETER, fmt, what);
}

int engine_upstream_new(const char *args, struct engine **out,
                        struct errmsg *err)
{
    char *words[UPSTREAM_WORDS_MAX];
    size_t n = 0;
    char *key = NULL;
    enum hh_dialect dialect = HH_DASHSCOPE;
    bool has_poll_max = false;
    int ret = 0;
    struct upstream_engine *ue = xcalloc(1, sizeof(*ue));
    engine_init(&ue->base, &upstream_ops);
    ue->rate_per_s = 20;
    ue->inflight = 1000;
    ue->downloads = 4;
    pthread_mutex_init(&ue->lock, NULL);
    ue->poll_ms = 1000;
    ue->poll_max_ms = 15000;
    ue->timeout_ms = 30000;
    *out = NULL;

    for (const char *p = args ? args : ""; *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        const char *w = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if (n == UPSTREAM_WORDS_MAX) {
            ret = errmsg_set(err, ERR_INVALID_PARAMETER,
                             "engine upstream: more than %d words",
                             UPSTREAM_WORDS_MAX);
            goto out;
        }
        words[n++] = xstrndup(w, (size_t)(p - w));
    }
    if (n < 2) {
        ret = bad(err, "engine upstream: expected %s",
                  "'upstream:DIALECT BASE_URL key=KEY [rate=N] "
                  "[poll=DURATION] [poll-max=DURATION] [timeout=DURATION] "
                  "[inflight=N] [downloads=N]' with DIALECT dashscope or "
                  "ttapi");
        goto out;
    }
    if (strcmp(words[0], "dashscope") == 0) {
        dialect = HH_DASHSCOPE;
    } else if (strcmp(words[0], "ttapi") == 0) {
        dialect = HH_TTAPI;
    } else {
        ret = errmsg_set(err, ERR_INVALID_PARAMETER,
                         "engine upstream: dialect '%.40s' is not dashscope "
                         "or ttapi",
                         words[0]);
        goto out;
    }
    if (!hh_base_ok(words[1])) {
        char shown[NET_URL_SHOW_SIZE];
        net_url_show(words[1], shown);
        ret = errmsg_set(err, ERR_INVALID_PARAMETER,
                         "engine upstream: base URL '%s' is not "
                         "http(s)://host[:port] (no query, no blanks)",
                         shown);
        goto out;
    }
    ue->shown = hh_dialect_name(dialect);

    for (size_t i = 2; i < n; i++) {
        char *eq = strchr(words[i], '=');
        const struct upstream_opt *o = NULL;
        for (size_t k = 0; eq && k < ARRAY_LEN(upstream_opts); k++)
            if (strlen(upstream_opts[k].name) == (size_t)(eq - words[i]) &&
                strncmp(words[i], upstream_opts[k].name,
                        (size_t)(eq - words[i])) == 0)
                o = &upstream_opts[k];
        if (!o && !eq) { /* never echoed: it may be a bare key */
            ret = bad(err, "engine upstream: expected %s",
                      "OPTION=VALUE after the base URL (key=, key-env=, "
                      "rate=, poll=, poll-max=, timeout=, inflight=, "
                      "downloads=)");
            goto out;
        }
        if (!o) { /* only the name: the value may be a mistyped key */
            int len = (int)(eq - words[i]);
            ret = errmsg_set(err, ERR_INVALID_PARAMETER,
                             "engine upstream: unknown option '%.*s' "
                             "(known: key=, key-env=, rate=, poll=, "
                             "poll-max=, timeout=, inflight=, downloads=)",
                             len > 40 ? 40 : len, words[i]);
            goto out;
        }
        const char *v = eq + 1;
        int64_t ms = 0;
        switch (o->id) {
        case OPT_KEY:
        case OPT_KEY_ENV: {
            if (key) {
                ret = bad(err, "engine upstream: %s",
                          "give the key once: key=KEY or key-env=VAR");
                goto out;
            }
            const char *k = v;
            if (o->id == OPT_KEY_ENV) {
                k = *v ? getenv(v) : NULL;
                if (!k || !*k) {
                    ret = errmsg_set(err, ERR_INVALID_PARAMETER,
                                     "engine upstream: key-env: the "
                                     "environment variable '%.64s' is unset "
                                     "or empty",
                                     v);
                    goto out;
                }
            }
            if (!hh_key_ok(k)) { /* never the key itself in a message */
                ret = bad(err,
                          "engine upstream: %s: expected printable "
                          "ASCII without blanks, up to 256 bytes",
                          o->name);
                goto out;
            }
            key = xstrdup(k);
            break;
        }
        case OPT_RATE: {
            char *end;
            errno = 0;
            double r = strtod(v, &end);
            if (!*v || *end || errno || !(r >= 0.01 && r <= 10000)) {
                ret = bad(err, "engine upstream: expected %s", o->form);
                goto out;
            }
            ue->rate_per_s = r;
            break;
        }
        case OPT_INFLIGHT:
        case OPT_DOWNLOADS: {
            int64_t v64;
            if (parse_i64(v, o->min_ms, o->max_ms, &v64) < 0) {
                ret = bad(err, "engine upstream: expected %s", o->form);
                goto out;
            }
            if (o->id == OPT_INFLIGHT)
                ue->inflight = (int)v64;
            else
                ue->downloads = (int)v64;
            break;
        }
        case OPT_POLL:
        case OPT_POLL_MAX:
        case OPT_TIMEOUT:
            if (clock_parse_duration(v, o->min_ms, o->max_ms, &ms) < 0) {
                ret = bad(err, "engine upstream: expected %s", o->form);
                goto out;
            }
            if (o->id == OPT_POLL)
                ue->poll_ms = ms;
            else if (o->id == OPT_POLL_MAX)
                ue->poll_max_ms = ms, has_poll_max = true;
            else
                ue->timeout_ms = ms;
            break;
        }
    }
    if (!key) {
        ret = bad(err, "engine upstream: %s",
                  "no key: add key=KEY or key-env=VAR");
        goto out;
    }
    if (ue->poll_max_ms < ue->poll_ms) {
        if (has_poll_max) {
            ret = bad(err, "engine upstream: expected %s",
                      upstream_opts[OPT_POLL_MAX].form);
            goto out;
        }
        ue->poll_max_ms = ue->poll_ms; /* poll alone above the default */
    }
    /* Both were checked above, so this names neither. */
    if ((ret = hh_endpoint_init(&ue->ep, dialect, words[1], key, err)) < 0)
        goto out;
    /* A burst of one second's worth: spacing, not a hard interval. */
    ue->rate =
        limit_rate_new(ue->rate_per_s, ue->rate_per_s < 1 ? 1 : ue->rate_per_s);
    *out = &ue->base;
    ue = NULL;
out:
    for (size_t i = 0; i < n; i++)
        free(words[i]);
    if (key) {
        explicit_bzero(key, strlen(key));
        free(key);
    }
    if (ue)
        upstream_free(&ue->base);
    return ret;
}
