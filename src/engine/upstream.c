/*
 * The upstream engine: relays a task to a DashScope- or TTAPI-dialect
 * service (another paddock, TTAPI, Model Studio), polls it to the end and
 * downloads the video it made (docs/engines.md, "The upstream engine").
 *
 * A run submits once (with the paddock task id as Idempotency-Key), saves
 * the upstream task id with the task through ctl->save_ref before it polls,
 * and resumes polling from ctl->ref when an earlier attempt saved one, so a
 * crash or a lost lease never creates a second upstream task. Every request
 * to the upstream API goes through one token bucket per engine instance.
 * The upstream's video link is followed but never shown: no message, log
 * line or result of this file carries it.
 */
#include "engine.h"

#include "../limit/limit.h"
#include "../log/log.h"
#include "../media/media.h"
#include "../net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* An answer of the upstream API (a task, an error): a few KiB in truth. */
#define UPSTREAM_JSON_BYTES (1 << 20)
/* The largest video a relay downloads (a 15 s 1080p render is ~30 MB). */
#define UPSTREAM_VIDEO_BYTES (1ll << 30)
/* Retries of a submit after a 5xx or a network error (then it fails). */
#define UPSTREAM_SUBMIT_RETRIES 5
/* Tries of the video download (network errors, 5xx). */
#define UPSTREAM_DOWNLOAD_TRIES 3
/* Longest wait a Retry-After may ask of us; the deadline bounds the rest. */
#define UPSTREAM_RETRY_AFTER_MAX_MS 60000
/* Time limit of check()'s request. */
#define UPSTREAM_CHECK_TIMEOUT_MS 3000
/* Longest sleep between two looks at the stop flag. */
#define UPSTREAM_NAP_SLICE_MS 100
/* An upstream task id: a uuid in practice; URL-safe characters only. */
#define UPSTREAM_ID_MAX 128
/* Bytes of an upstream's error message carried into ours. */
#define UPSTREAM_SAY_MAX 300
/* Option words of one engine spec. */
#define UPSTREAM_WORDS_MAX 16
/* The task id check() asks for: valid, and never a real task. */
#define UPSTREAM_CHECK_ID "00000000-0000-0000-0000-000000000000"

enum upstream_dialect { UPSTREAM_DASHSCOPE, UPSTREAM_TTAPI };

struct upstream_engine {
    struct engine base;
    enum upstream_dialect dialect;
    char *root;  /* base URL + "/happyhorse" for ttapi; no trailing '/' */
    char *auth;  /* the auth header line; holds the key: never shown */
    char *shown; /* how messages name the upstream: its dialect, never its
                    address (task messages and 503s reach clients) */
    struct limit_rate *rate; /* shared by every run: thread-safe */
    double rate_per_s;
    int64_t poll_ms, poll_max_ms, timeout_ms;
};

/* One run's state (run() is reentrant: nothing here is shared). */
struct run {
    struct upstream_engine *ue;
    const struct job *job;
    const struct job_ctl *ctl;
    struct net_http *http;
    int last_pct; /* the progress last reported; -1: none */
};

/* Failure codes an upstream may name that paddock also knows (docs/api.md
 * s.7.3); the code itself is recorded as given either way. */
static const int known_codes[] = {
    ERR_ALGO,        ERR_DATA_INSPECTION,         ERR_INVALID_PARAMETER,
    ERR_TIMEOUT,     ERR_UNSUPPORTED_FILE_FORMAT, ERR_INPUT_DOWNLOAD_FAILED,
    ERR_INVALID_URL,
};

/* ------------------------------------------------------------ helpers */

static bool stopped(const struct job_ctl *ctl)
{
    return ctl && ctl->stop && atomic_load(ctl->stop);
}

/* Sleep `ms` in slices, watching the stop flag; false when it was set. */
static bool nap(const struct job_ctl *ctl, int64_t ms)
{
    int64_t end = clock_mono_ms() + ms;
    for (;;) {
        if (stopped(ctl))
            return false;
        int64_t left = end - clock_mono_ms();
        if (left <= 0)
            return true;
        if (left > UPSTREAM_NAP_SLICE_MS)
            left = UPSTREAM_NAP_SLICE_MS;
        struct timespec ts = { left / 1000, (long)(left % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
}

/* Wait for a token of the engine's bucket; false when stopped first. */
static bool take_token(struct upstream_engine *ue, const struct job_ctl *ctl)
{
    int64_t step = (int64_t)(1000.0 / ue->rate_per_s);
    if (step < 1)
        step = 1;
    if (step > UPSTREAM_NAP_SLICE_MS)
        step = UPSTREAM_NAP_SLICE_MS;
    for (;;) {
        int retry_s;
        if (stopped(ctl))
            return false;
        if (limit_rate_take(ue->rate, "upstream", clock_mono_ms(), &retry_s) ==
            0)
            return true;
        if (!nap(ctl, step))
            return false;
    }
}

/* What went wrong in a net_http error, in words without the upstream's
 * address (task messages and 503s reach clients); the whole error goes to
 * the operator's log. */
static const char *net_reason(const struct errmsg *e)
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

static int stop_error(struct errmsg *err)
{
    return errmsg_set(err, ERR_STOPPED, "the relay was stopped");
}

/* The task fields of an answer: "output" (DashScope and paddock), or a
 * TTAPI-style {"data": {...}} wrapper; NULL when there are none. */
static json_t *output_of(json_t *root)
{
    json_t *out = json_object_get(root, "output");
    if (json_is_object(out))
        return out;
    json_t *data = json_object_get(root, "data");
    if (!json_is_object(data))
        return NULL;
    out = json_object_get(data, "output");
    return json_is_object(out) ? out : data;
}

static const char *jstr(json_t *obj, const char *name)
{
    json_t *v = obj ? json_object_get(obj, name) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* An upstream API code we can record: 1..TASK_CODE_MAX-1 bytes of
 * printable ASCII without blanks ("InvalidParameter"). */
static bool code_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= TASK_CODE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~')
            return false;
    return true;
}

/* An upstream task id we can put in a URL path and store as the ref. */
static bool id_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > UPSTREAM_ID_MAX || n >= TASK_REF_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

/* The paddock error that stands for an upstream's failure code. */
static int code_error(const char *code)
{
    int e = code ? err_from_code(code) : 0;
    for (size_t i = 0; e && i < ARRAY_LEN(known_codes); i++)
        if (e == known_codes[i])
            return e;
    return ERR_ALGO;
}

/* "HTTP 401 InvalidApiKey: Invalid API-key provided." from an answer. */
static void say_answer(const struct net_http_resp *resp, json_t *json,
                       char *out, size_t size)
{
    const char *code = jstr(json, "code");
    const char *msg = jstr(json, "message");
    if (!code_ok(code))
        code = NULL;
    snprintf(out, size, "HTTP %ld%s%s%s%.*s", resp->status, code ? " " : "",
             code ? code : "", msg ? ": " : "", UPSTREAM_SAY_MAX,
             msg ? msg : "");
}

/* --------------------------------------------------------- the calls */

/*
 * One request to the upstream API at root + path, after a token of the
 * bucket. 0 when an answer arrived (any status; *json is the body when it
 * is a JSON object, else NULL), ERR_STOPPED, or net_http's error (ERR_IO
 * and the like) with a message naming the method and scheme://host/path.
 */
static int api_call(struct run *r, const char *method, const char *path,
                    const char *body, int64_t timeout_ms,
                    struct net_http_resp *resp, json_t **json,
                    struct errmsg *err)
{
    struct upstream_engine *ue = r->ue;
    const struct job_ctl *ctl = r->ctl;
    const char *headers[6];
    size_t n = 0;
    char idem[LIMIT_TASK_ID + 32];

    *json = NULL;
    memset(resp, 0, sizeof(*resp));
    if (!take_token(ue, ctl))
        return stop_error(err);
    headers[n++] = ue->auth;
    headers[n++] = "Accept: application/json";
    if (body) {
        headers[n++] = "Content-Type: application/json";
        if (ue->dialect == UPSTREAM_DASHSCOPE)
            headers[n++] = "X-DashScope-Async: enable";
        /* A retried submit (this run's, or a later attempt's after a crash
         * before save_ref) must find the first upstream task again. */
        if (ctl && ctl->task_id && ctl->task_id[0]) {
            snprintf(idem, sizeof(idem), "Idempotency-Key: %.*s", LIMIT_TASK_ID,
                     ctl->task_id);
            headers[n++] = idem;
        }
    }
    char *url = xasprintf("%s%s", ue->root, path);
    struct net_http_req req = {
        .method = method,
        .url = url,
        .headers = headers,
        .n_headers = n,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .max_bytes = UPSTREAM_JSON_BYTES,
        .timeout_ms = timeout_ms,
        .stop = ctl ? ctl->stop : NULL,
    };
    int rc = net_http_request(r->http, &req, resp, err);
    free(url);
    if (rc < 0)
        return rc;
    json_t *j = json_loadb(resp->body.data ? resp->body.data : "",
                           resp->body.len, 0, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    *json = j;
    return 0;
}

/* The submit body: the job's fields, then its pass-through extras in the
 * groups where they came from, never over a field set here. */
static char *submit_body(const struct job *job)
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

/*
 * Submit the job; 0 with the upstream task id in id[], or a failure. The
 * rule (docs/engines.md): a 429 waits Retry-After (at most a minute) or,
 * without one, the backoff, and tries again for as long as the run is not
 * stopped; a 5xx or a network error is retried UPSTREAM_SUBMIT_RETRIES
 * times after 1, 2, 4, 8, 16 poll intervals, then the run fails; 401/403
 * and every other answer end the run at once.
 */
static int submit(struct run *r, char id[UPSTREAM_ID_MAX + 1],
                  struct job_result *res, struct errmsg *err)
{
    struct upstream_engine *ue = r->ue;
    char *body = submit_body(r->job);
    const char *path = "/api/v1/services/aigc/video-generation/video-synthesis";
    int retries = 0, throttled = 0, ret;
    char said[UPSTREAM_SAY_MAX + 64];

    if (!body)
        return errmsg_set(err, ERR_INTERNAL, "cannot write the submit body");
    for (;;) {
        struct net_http_resp resp;
        json_t *json = NULL;
        struct errmsg e = { 0 };
        int rc =
            api_call(r, "POST", path, body, ue->timeout_ms, &resp, &json, &e);
        int64_t wait = -1;
        /* poll x 1, 2, 4, 8, 16 */
        int64_t backoff = ue->poll_ms << (retries < 4 ? retries : 4);
        ret = 0;
        if (rc == ERR_STOPPED) {
            ret = stop_error(err);
        } else if (rc < 0) {
            if (retries++ < UPSTREAM_SUBMIT_RETRIES)
                wait = backoff;
            else
                ret = errmsg_set(err, ERR_ALGO, "upstream %s unreachable: %s",
                                 ue->shown, net_reason(&e));
        } else if (resp.status == 200) {
            const char *tid = jstr(output_of(json), "task_id");
            if (id_ok(tid))
                snprintf(id, UPSTREAM_ID_MAX + 1, "%s", tid);
            else
                ret = errmsg_set(err, ERR_ALGO,
                                 "upstream %s accepted the task but its "
                                 "answer has no usable output.task_id",
                                 ue->shown);
        } else if (resp.status == 429) {
            int k = throttled < 4 ? throttled : 4;
            throttled++;
            wait = resp.retry_after_s >= 0 ? (int64_t)resp.retry_after_s * 1000
                                           : ue->poll_ms << k;
            if (wait > UPSTREAM_RETRY_AFTER_MAX_MS)
                wait = UPSTREAM_RETRY_AFTER_MAX_MS;
        } else if (resp.status >= 500) {
            say_answer(&resp, json, said, sizeof(said));
            if (retries++ < UPSTREAM_SUBMIT_RETRIES)
                wait = backoff;
            else
                ret = errmsg_set(err, ERR_ALGO, "upstream %s answered %s",
                                 ue->shown, said);
        } else if (resp.status == 401 || resp.status == 403) {
            say_answer(&resp, json, said, sizeof(said));
            ret = errmsg_set(err, ERR_ALGO,
                             "the upstream %s refused paddock's key (%s)",
                             ue->shown, said);
        } else if (resp.status >= 400 && code_ok(jstr(json, "code"))) {
            /* The upstream refused the request itself: its verdict. */
            const char *code = jstr(json, "code");
            const char *msg = jstr(json, "message");
            snprintf(res->code, sizeof(res->code), "%s", code);
            ret = errmsg_set(err, code_error(code), "%s",
                             msg ? msg : "the upstream refused the task");
        } else {
            say_answer(&resp, json, said, sizeof(said));
            ret = errmsg_set(err, ERR_ALGO, "upstream %s refused the task (%s)",
                             ue->shown, said);
        }
        json_decref(json);
        net_http_resp_fini(&resp);
        if (ret < 0 || wait < 0)
            break;
        log_warn("upstream submit retried",
                 "task_id=%s upstream=%s status=%ld wait_ms=%lld",
                 r->ctl && r->ctl->task_id ? r->ctl->task_id : "-", ue->shown,
                 rc < 0 ? 0L : resp.status, (long long)wait);
        if (!nap(r->ctl, wait)) {
            ret = stop_error(err);
            break;
        }
    }
    free(body);
    return ret;
}

/* Hand the upstream task id to the caller's store; 0 or the run's end. */
static int save_ref(struct run *r, const char *id, struct errmsg *err)
{
    const struct job_ctl *ctl = r->ctl;
    if (!ctl || !ctl->save_ref)
        return 0;
    int rc = ctl->save_ref(ctl->arg, id);
    if (rc == 0)
        return 0;
    if (rc == ERR_CONFLICT)
        return errmsg_set(err, ERR_STOPPED,
                          "another worker holds the task now");
    return errmsg_set(err, ERR_INTERNAL,
                      "the upstream task id could not be saved");
}

/* The download of the finished video into out_path, no auth header sent
 * (the link may point elsewhere than the API), through the bucket too. */
static int download(struct run *r, const char *url, const char *out_path,
                    struct errmsg *err)
{
    struct upstream_engine *ue = r->ue;
    const struct job_ctl *ctl = r->ctl;
    int64_t backoff = ue->poll_ms;
    int ret = 0;
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return errmsg_set(err, ERR_IO, "cannot create the output file: %s",
                          strerror(errno));
    for (int attempt = 1;; attempt++) {
        struct net_http_resp resp;
        struct errmsg e = { 0 };
        if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
            ret = errmsg_set(err, ERR_IO, "cannot rewrite the output file: %s",
                             strerror(errno));
            break;
        }
        if (!take_token(ue, ctl)) {
            ret = stop_error(err);
            break;
        }
        struct net_http_req req = {
            .method = "GET",
            .url = url,
            .max_bytes = UPSTREAM_VIDEO_BYTES,
            .stall_ms = ue->timeout_ms,
            .max_redirects = 3,
            .to_fd = true,
            .fd = fd,
            .stop = ctl ? ctl->stop : NULL,
        };
        int rc = net_http_request(r->http, &req, &resp, &e);
        long status = resp.status;
        net_http_resp_fini(&resp);
        if (rc == 0 && status >= 200 && status <= 299)
            break;
        /* e names the link's host and path: kept out of every message. */
        if (rc == ERR_STOPPED) {
            ret = stop_error(err);
            break;
        }
        if (rc == ERR_TOO_LARGE) {
            ret = errmsg_set(err, ERR_ALGO,
                             "the upstream's video is larger than %lld MiB",
                             UPSTREAM_VIDEO_BYTES >> 20);
            break;
        }
        bool again =
            rc == ERR_IO || (rc == 0 && (status >= 500 || status == 429));
        log_warn("upstream video download failed",
                 "task_id=%s attempt=%d status=%ld error=%s",
                 ctl && ctl->task_id ? ctl->task_id : "-", attempt, status,
                 rc < 0 ? err_name(rc) : "-");
        if (!again || attempt == UPSTREAM_DOWNLOAD_TRIES) {
            if (rc < 0)
                ret = errmsg_set(err, ERR_ALGO,
                                 "the upstream's video could not be "
                                 "downloaded (no complete answer)");
            else
                ret = errmsg_set(err, ERR_ALGO,
                                 "the upstream's video could not be "
                                 "downloaded (HTTP %ld)",
                                 status);
            break;
        }
        if (!nap(ctl, backoff)) {
            ret = stop_error(err);
            break;
        }
        backoff *= 2;
    }
    close(fd);
    return ret;
}

/* A number member of `obj`, or `dflt`. */
static double jnum(json_t *obj, const char *name, double dflt)
{
    json_t *v = obj ? json_object_get(obj, name) : NULL;
    return json_is_number(v) ? json_number_value(v) : dflt;
}

/* SUCCEEDED upstream: fetch, check and bill the video. */
static int finish(struct run *r, const char *id, json_t *root, json_t *output,
                  const char *out_path, struct job_result *res,
                  struct errmsg *err)
{
    const struct job *job = r->job;
    const char *url = jstr(output, "video_url");
    if (!url || (strncasecmp(url, "http://", 7) != 0 &&
                 strncasecmp(url, "https://", 8) != 0))
        return errmsg_set(err, ERR_ALGO,
                          "the upstream task %s SUCCEEDED without an http(s) "
                          "output.video_url",
                          id);
    int rc = download(r, url, out_path, err);
    if (rc < 0)
        return rc;
    struct task_media_info info;
    struct errmsg probe = { 0 };
    if (media_probe_file(out_path, TASK_MEDIA_VIDEO, "the upstream's video",
                         &info, &probe) < 0)
        return errmsg_set(err, ERR_ALGO, "%s", errmsg_text(&probe));

    json_t *usage = json_object_get(root, "usage");
    if (!json_is_object(usage))
        usage = json_object_get(output, "usage");
    struct task_usage *u = &res->usage;
    memset(u, 0, sizeof(*u));
    u->output_s = jnum(usage, "output_video_duration",
                       jnum(usage, "duration", info.duration_s));
    u->input_s = jnum(usage, "input_video_duration", 0);
    if (!(u->output_s >= 0 && u->output_s <= 3600))
        u->output_s = info.duration_s;
    if (!(u->input_s >= 0 && u->input_s <= 3600))
        u->input_s = 0;
    double sr = jnum(usage, "SR", 0);
    u->sr = sr == 480 || sr == 720 || sr == 1080 ? (int)sr : job->resolution;
    const char *ratio = jstr(usage, "ratio");
    snprintf(u->ratio, sizeof(u->ratio), "%s",
             ratio && strlen(ratio) < sizeof(u->ratio) ? ratio : job->ratio);
    if (r->ctl && r->ctl->progress)
        r->ctl->progress(r->ctl->arg, 100);
    return 0;
}

/*
 * Poll the upstream task `id` to its end: intervals from poll to poll-max
 * (x1.5 each), network errors, 5xx and 429 only delay the next look (the
 * worker's deadline bounds the run). `now`: look once before the first
 * sleep (a resumed task may be finished already).
 */
static int follow(struct run *r, const char *id, bool now, const char *out_path,
                  struct job_result *res, struct errmsg *err)
{
    struct upstream_engine *ue = r->ue;
    const struct job_ctl *ctl = r->ctl;
    char path[UPSTREAM_ID_MAX + 32];
    int64_t interval = ue->poll_ms;
    char said[UPSTREAM_SAY_MAX + 64];

    snprintf(path, sizeof(path), "/api/v1/tasks/%s", id);
    for (;;) {
        if (!now && !nap(ctl, interval))
            return stop_error(err);
        now = false;
        if (interval < ue->poll_max_ms) {
            interval = interval + interval / 2;
            if (interval > ue->poll_max_ms)
                interval = ue->poll_max_ms;
        }
        struct net_http_resp resp;
        json_t *json = NULL;
        struct errmsg e = { 0 };
        int rc =
            api_call(r, "GET", path, NULL, ue->timeout_ms, &resp, &json, &e);
        int ret = 1; /* 1: keep polling */
        json_t *output = output_of(json);
        const char *st = jstr(output, "task_status");
        if (!st)
            st = jstr(output, "status");
        if (rc == ERR_STOPPED) {
            ret = stop_error(err);
        } else if (rc < 0) {
            log_warn("upstream poll failed",
                     "task_id=%s upstream_task_id=%s error=%s",
                     ctl && ctl->task_id ? ctl->task_id : "-", id,
                     err_name(rc));
        } else if (resp.status >= 500 || resp.status == 429 ||
                   (resp.status == 200 && !st)) {
            log_warn("upstream poll failed",
                     "task_id=%s upstream_task_id=%s status=%ld",
                     ctl && ctl->task_id ? ctl->task_id : "-", id, resp.status);
            /* Retry-After only ever lengthens the next wait. */
            if (resp.retry_after_s > 0 &&
                (int64_t)resp.retry_after_s * 1000 > interval) {
                int64_t ra = (int64_t)resp.retry_after_s * 1000;
                interval = ra < UPSTREAM_RETRY_AFTER_MAX_MS
                               ? ra
                               : UPSTREAM_RETRY_AFTER_MAX_MS;
            }
        } else if (resp.status == 401 || resp.status == 403) {
            say_answer(&resp, json, said, sizeof(said));
            ret = errmsg_set(err, ERR_ALGO,
                             "the upstream %s refused paddock's key (%s)",
                             ue->shown, said);
        } else if (resp.status != 200) {
            say_answer(&resp, json, said, sizeof(said));
            ret = errmsg_set(err, ERR_ALGO,
                             "upstream %s answered %s about task %s", ue->shown,
                             said, id);
        } else if (strcmp(st, "PENDING") == 0 || strcmp(st, "RUNNING") == 0) {
            json_t *p = json_object_get(output, "progress");
            if (json_is_number(p) && ctl && ctl->progress) {
                double v = json_number_value(p);
                int pct = v >= 99 ? 99 : v <= 0 ? 0 : (int)v;
                if (pct != r->last_pct) {
                    r->last_pct = pct;
                    ctl->progress(ctl->arg, pct);
                }
            }
        } else if (strcmp(st, "SUCCEEDED") == 0) {
            ret = finish(r, id, json, output, out_path, res, err);
        } else if (strcmp(st, "FAILED") == 0) {
            const char *code = jstr(output, "code");
            const char *msg = jstr(output, "message");
            if (code_ok(code))
                snprintf(res->code, sizeof(res->code), "%s", code);
            else
                code = NULL;
            ret = errmsg_set(err, code_error(code), "%s",
                             msg ? msg : "the upstream task failed");
        } else if (strcmp(st, "CANCELED") == 0) {
            ret =
                errmsg_set(err, ERR_ALGO, "the upstream canceled task %s", id);
        } else if (strcmp(st, "UNKNOWN") == 0) {
            ret = errmsg_set(err, ERR_ALGO,
                             "the upstream no longer knows task %s", id);
        } else { /* a state we do not know: look again later */
            char shown[33];
            size_t i = 0;
            for (; st[i] && i < sizeof(shown) - 1; i++)
                shown[i] = (st[i] >= 'A' && st[i] <= 'Z') || st[i] == '_'
                               ? st[i]
                               : '?';
            shown[i] = '\0';
            log_warn("upstream task status unknown to paddock",
                     "task_id=%s upstream_task_id=%s status=%s",
                     ctl && ctl->task_id ? ctl->task_id : "-", id, shown);
        }
        json_decref(json);
        net_http_resp_fini(&resp);
        if (ret <= 0)
            return ret;
    }
}

static int upstream_run(struct engine *e, const struct job *job,
                        const struct job_inputs *in, const char *out_path,
                        const struct job_ctl *ctl, struct job_result *res,
                        struct errmsg *err)
{
    struct upstream_engine *ue = container_of(e, struct upstream_engine, base);
    struct run r = { .ue = ue, .job = job, .ctl = ctl, .last_pct = -1 };
    char id[UPSTREAM_ID_MAX + 1];
    const char *task_id = ctl && ctl->task_id ? ctl->task_id : "-";
    bool resumed = ctl && ctl->ref && ctl->ref[0];
    int ret;

    (void)in; /* local_media is false: the upstream fetches the URLs */
    if ((ret = net_http_new(&r.http, err)) < 0)
        return ret;
    if (resumed) {
        if (!id_ok(ctl->ref)) {
            ret = errmsg_set(err, ERR_ALGO,
                             "the saved upstream task id is not usable");
            goto out;
        }
        snprintf(id, sizeof(id), "%s", ctl->ref);
        log_info("upstream resume", "task_id=%s upstream_task_id=%s", task_id,
                 id);
    } else {
        if ((ret = submit(&r, id, res, err)) < 0)
            goto out;
        log_info("upstream submit", "task_id=%s upstream_task_id=%s", task_id,
                 id);
        if ((ret = save_ref(&r, id, err)) < 0)
            goto out;
    }
    ret = follow(&r, id, resumed, out_path, res, err);
out:
    net_http_free(r.http);
    return ret;
}

/* ------------------------------------------------------------- check */

static int upstream_check(struct engine *e, const atomic_bool *stop,
                          struct errmsg *err)
{
    struct upstream_engine *ue = container_of(e, struct upstream_engine, base);
    struct net_http *http = NULL;
    struct net_http_resp resp = { 0 };
    struct errmsg ne = { 0 };
    char said[UPSTREAM_SAY_MAX + 64];
    int ret = 0;

    if (net_http_new(&http, &ne) < 0)
        return errmsg_set(err, ERR_MODEL_UNAVAILABLE, "upstream %s: %s",
                          ue->shown, net_reason(&ne));
    const char *headers[] = { ue->auth, "Accept: application/json" };
    char *url = xasprintf("%s/api/v1/tasks/" UPSTREAM_CHECK_ID, ue->root);
    struct net_http_req req = {
        .method = "GET",
        .url = url,
        .headers = headers,
        .n_headers = ARRAY_LEN(headers),
        .max_bytes = UPSTREAM_JSON_BYTES,
        .timeout_ms = UPSTREAM_CHECK_TIMEOUT_MS,
        .stop = stop,
    };
    int rc = net_http_request(http, &req, &resp, &ne);
    if (rc < 0) {
        ret = errmsg_set(err, ERR_MODEL_UNAVAILABLE,
                         "upstream %s unreachable: %s", ue->shown,
                         net_reason(&ne));
    } else if (resp.status == 401 || resp.status == 403) {
        ret = errmsg_set(err, ERR_MODEL_UNAVAILABLE,
                         "upstream %s refused the key (HTTP %ld)", ue->shown,
                         resp.status);
    } else if (resp.status >= 500 || resp.status < 200 ||
               (resp.status >= 300 && resp.status <= 399)) {
        json_t *j = json_loadb(resp.body.data ? resp.body.data : "",
                               resp.body.len, 0, NULL);
        say_answer(&resp, json_is_object(j) ? j : NULL, said, sizeof(said));
        json_decref(j);
        ret = errmsg_set(err, ERR_MODEL_UNAVAILABLE,
                         "upstream %s unreachable: it answered %s", ue->shown,
                         said);
    }
    net_http_resp_fini(&resp);
    net_http_free(http);
    free(url);
    return ret;
}

/* -------------------------------------------------------- the spec */

static void upstream_free(struct engine *e)
{
    struct upstream_engine *ue = container_of(e, struct upstream_engine, base);
    if (ue->auth) { /* the key leaves no copy in freed memory */
        explicit_bzero(ue->auth, strlen(ue->auth));
        free(ue->auth);
    }
    free(ue->root);
    free(ue->shown);
    limit_rate_free(ue->rate);
    free(ue);
}

static const struct engine_ops upstream_ops = {
    .name = "upstream",
    .local_media = false,
    .run = upstream_run,
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
    OPT_TIMEOUT
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
};

/* A key we can send in a header: printable ASCII, no blanks. */
static bool key_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > LIMIT_KEY_BYTES)
        return false;
    for (size_t i = 0; i < n; i++)
        if (k[i] <= ' ' || k[i] > '~')
            return false;
    return true;
}

/* The base URL: http(s)://host[:port][/path], no query, no fragment. */
static bool base_ok(const char *b)
{
    const char *host;
    if (strncasecmp(b, "http://", 7) == 0)
        host = b + 7;
    else if (strncasecmp(b, "https://", 8) == 0)
        host = b + 8;
    else
        return false;
    if (!*host || *host == '/' || *host == ':')
        return false;
    for (const char *p = b; *p; p++)
        if (*p <= ' ' || *p > '~' || *p == '?' || *p == '#')
            return false;
    return true;
}

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
    bool has_poll_max = false;
    int ret = 0;
    struct upstream_engine *ue = xcalloc(1, sizeof(*ue));
    ue->base.ops = &upstream_ops;
    ue->rate_per_s = 5;
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
                  "[poll=DURATION] [poll-max=DURATION] [timeout=DURATION]' "
                  "with DIALECT dashscope or ttapi");
        goto out;
    }
    if (strcmp(words[0], "dashscope") == 0) {
        ue->dialect = UPSTREAM_DASHSCOPE;
    } else if (strcmp(words[0], "ttapi") == 0) {
        ue->dialect = UPSTREAM_TTAPI;
    } else {
        ret = errmsg_set(err, ERR_INVALID_PARAMETER,
                         "engine upstream: dialect '%.40s' is not dashscope "
                         "or ttapi",
                         words[0]);
        goto out;
    }
    if (!base_ok(words[1])) {
        char shown[NET_URL_SHOW_SIZE];
        net_url_show(words[1], shown);
        ret = errmsg_set(err, ERR_INVALID_PARAMETER,
                         "engine upstream: base URL '%s' is not "
                         "http(s)://host[:port] (no query, no blanks)",
                         shown);
        goto out;
    }
    size_t blen = strlen(words[1]);
    while (blen > 0 && words[1][blen - 1] == '/')
        blen--;
    words[1][blen] = '\0';
    static const char tt[] = "/happyhorse";
    bool has_tt = blen >= sizeof(tt) - 1 &&
                  strcasecmp(words[1] + blen - (sizeof(tt) - 1), tt) == 0;
    ue->root = xasprintf("%s%s", words[1],
                         ue->dialect == UPSTREAM_TTAPI && !has_tt ? tt : "");
    ue->shown = xstrdup(ue->dialect == UPSTREAM_TTAPI ? "TTAPI" : "DashScope");

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
                      "rate=, poll=, poll-max=, timeout=)");
            goto out;
        }
        if (!o) { /* only the name: the value may be a mistyped key */
            int len = (int)(eq - words[i]);
            ret = errmsg_set(err, ERR_INVALID_PARAMETER,
                             "engine upstream: unknown option '%.*s' "
                             "(known: key=, key-env=, rate=, poll=, "
                             "poll-max=, timeout=)",
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
            if (!key_ok(k)) { /* never the key itself in a message */
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
    ue->auth = ue->dialect == UPSTREAM_TTAPI
                   ? xasprintf("TT-API-KEY: %s", key)
                   : xasprintf("Authorization: Bearer %s", key);
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
