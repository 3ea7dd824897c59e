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

#include "../hh/hh.h"
#include "../limit/limit.h"
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
/* Retries of a submit after a 5xx or a network error (then it fails). */
#define UPSTREAM_SUBMIT_RETRIES 5
/* Tries of the video download (network errors, 5xx). */
#define UPSTREAM_DOWNLOAD_TRIES 3
/* Redirects the video link may take. */
#define UPSTREAM_DOWNLOAD_REDIRECTS 3
/* Longest wait a Retry-After may ask of us; the deadline bounds the rest. */
#define UPSTREAM_RETRY_AFTER_MAX_MS 60000
/* Time limit of check()'s request. */
#define UPSTREAM_CHECK_TIMEOUT_MS 3000
/* Option words of one engine spec. */
#define UPSTREAM_WORDS_MAX 16
/* The task id check() asks for: valid, and never a real task. */
#define UPSTREAM_CHECK_ID "00000000-0000-0000-0000-000000000000"

struct upstream_engine {
    struct engine base;
    struct hh_endpoint ep;   /* root and key header; the key never shown */
    const char *shown;       /* how messages name the upstream: its dialect,
                                never its address (task messages and 503s
                                reach clients) */
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
    struct hh_client hc;
    const char *task_id; /* paddock's, for log lines ("-" when none) */
    const char *id;      /* the upstream's, once known */
    int last_pct;        /* the progress last reported; -1: none */
};

/* Failure codes an upstream may name that paddock also knows (docs/api.md
 * s.7.3); the code itself is recorded as given either way. */
static const int known_codes[] = {
    ERR_ALGO,        ERR_DATA_INSPECTION,         ERR_INVALID_PARAMETER,
    ERR_TIMEOUT,     ERR_UNSUPPORTED_FILE_FORMAT, ERR_INPUT_DOWNLOAD_FAILED,
    ERR_INVALID_URL,
};

/* ------------------------------------------------------------ helpers */

/* Wait for a token of the engine's bucket (the client's pace, before
 * every request of a run); false when stopped first. */
static bool take_token(void *arg)
{
    struct run *r = arg;
    const atomic_bool *stop = r->ctl ? r->ctl->stop : NULL;
    int64_t step = (int64_t)(1000.0 / r->ue->rate_per_s);
    if (step < 1)
        step = 1;
    if (step > HH_NAP_SLICE_MS)
        step = HH_NAP_SLICE_MS;
    for (;;) {
        int retry_s;
        if (stop && atomic_load(stop))
            return false;
        if (limit_rate_take(r->ue->rate, "upstream", clock_mono_ms(),
                            &retry_s) == 0)
            return true;
        if (!hh_nap(stop, step))
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

/* The paddock error that stands for an upstream's failure code. */
static int code_error(const char *code)
{
    int e = code ? err_from_code(code) : 0;
    for (size_t i = 0; e && i < ARRAY_LEN(known_codes); i++)
        if (e == known_codes[i])
            return e;
    return ERR_ALGO;
}

/* 401/403: the upstream refused our key (which no message shows). */
static int key_refused(struct run *r, const struct hh_answer *a,
                       struct errmsg *err)
{
    char said[HH_SAY_MAX + 64];
    hh_say(a, said, sizeof(said));
    return errmsg_set(err, ERR_ALGO,
                      "the upstream %s refused paddock's key (%s)",
                      r->ue->shown, said);
}

/* --------------------------------------------------------- the calls */

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

static void submit_retried(void *arg, int rc, const struct errmsg *e,
                           const struct hh_answer *a, int64_t wait_ms)
{
    struct run *r = arg;
    (void)rc, (void)e;
    log_warn("upstream submit retried",
             "task_id=%s upstream=%s status=%ld wait_ms=%lld", r->task_id,
             r->ue->shown, a ? a->status : 0L, (long long)wait_ms);
}

/*
 * Submit the job; 0 with the upstream task id in id[], or a failure. The
 * rule (docs/engines.md): a 429 waits Retry-After (at most a minute) or,
 * without one, the backoff, and tries again for as long as the run is not
 * stopped; a 5xx or a network error is retried UPSTREAM_SUBMIT_RETRIES
 * times after 1, 2, 4, 8, 16 poll intervals, then the run fails; 401/403
 * and every other answer end the run at once.
 */
static int submit(struct run *r, char id[HH_ID_MAX + 1], struct job_result *res,
                  struct errmsg *err)
{
    struct upstream_engine *ue = r->ue;
    const struct job_ctl *ctl = r->ctl;
    const struct hh_retry retry = {
        .unit_ms = ue->poll_ms,
        .throttled = HH_FOREVER,
        .transient = UPSTREAM_SUBMIT_RETRIES,
        .retry_after_max_ms = UPSTREAM_RETRY_AFTER_MAX_MS,
        .on_retry = submit_retried,
        .arg = r,
    };
    struct hh_answer a;
    struct hh_task t;
    struct errmsg e = { 0 };
    char said[HH_SAY_MAX + 64];
    char *body = submit_body(r->job);
    int ret = 0;

    if (!body)
        return errmsg_set(err, ERR_INTERNAL, "cannot write the submit body");
    /* A retried submit (this run's, or a later attempt's after a crash
     * before save_ref) must find the first upstream task again. */
    int rc =
        hh_submit(&r->hc, body, strlen(body),
                  ctl && ctl->task_id ? ctl->task_id : NULL, &retry, &a, &e);
    free(body);
    hh_task_read(&a, &t);
    const char *code = hh_jstr(a.json, "code");
    if (rc == ERR_STOPPED) {
        ret = stop_error(err);
    } else if (rc < 0) {
        ret = errmsg_set(err, ERR_ALGO, "upstream %s unreachable: %s",
                         ue->shown, net_reason(&e));
    } else if (a.status == 200) {
        if (t.task_id)
            snprintf(id, HH_ID_MAX + 1, "%s", t.task_id);
        else
            ret = errmsg_set(err, ERR_ALGO,
                             "upstream %s accepted the task but its "
                             "answer has no usable output.task_id",
                             ue->shown);
    } else if (a.status >= 500) {
        hh_say(&a, said, sizeof(said));
        ret = errmsg_set(err, ERR_ALGO, "upstream %s answered %s", ue->shown,
                         said);
    } else if (a.status == 401 || a.status == 403) {
        ret = key_refused(r, &a, err);
    } else if (a.status >= 400 && hh_code_ok(code)) {
        /* The upstream refused the request itself: its verdict. */
        const char *msg = hh_jstr(a.json, "message");
        snprintf(res->code, sizeof(res->code), "%s", code);
        ret = errmsg_set(err, code_error(code), "%s",
                         msg ? msg : "the upstream refused the task");
    } else {
        hh_say(&a, said, sizeof(said));
        ret = errmsg_set(err, ERR_ALGO, "upstream %s refused the task (%s)",
                         ue->shown, said);
    }
    hh_answer_fini(&a);
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

static void download_failed(void *arg, int attempt, int rc, long status)
{
    struct run *r = arg;
    log_warn("upstream video download failed",
             "task_id=%s attempt=%d status=%ld error=%s", r->task_id, attempt,
             status, rc < 0 ? err_name(rc) : "-");
}

/* The download of the finished video into out_path, no auth header sent
 * (the link may point elsewhere than the API), through the bucket too. */
static int download(struct run *r, const char *url, const char *out_path,
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
        .stall_ms = r->ue->timeout_ms,
        .max_redirects = UPSTREAM_DOWNLOAD_REDIRECTS,
        .tries = UPSTREAM_DOWNLOAD_TRIES,
        .backoff_ms = r->ue->poll_ms,
        .on_fail = download_failed,
        .arg = r,
    };
    int rc = hh_download(&r->hc, &d, &resp, &e);
    /* e names the link's host and path: kept out of every message. */
    if (rc == ERR_STOPPED)
        ret = stop_error(err);
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

/* SUCCEEDED upstream: fetch, check and bill the video. */
static int finish(struct run *r, const struct hh_task *t, const char *out_path,
                  struct job_result *res, struct errmsg *err)
{
    const struct job *job = r->job;
    if (!t->video_url)
        return errmsg_set(err, ERR_ALGO,
                          "the upstream task %s SUCCEEDED without an http(s) "
                          "output.video_url",
                          r->id);
    int rc = download(r, t->video_url, out_path, err);
    if (rc < 0)
        return rc;
    struct task_media_info info;
    struct errmsg probe = { 0 };
    if (media_probe_file(out_path, TASK_MEDIA_VIDEO, "the upstream's video",
                         &info, &probe) < 0)
        return errmsg_set(err, ERR_ALGO, "%s", errmsg_text(&probe));

    const struct hh_usage *got = &t->usage;
    struct task_usage *u = &res->usage;
    memset(u, 0, sizeof(*u));
    u->output_s = got->output_s >= 0 ? got->output_s : info.duration_s;
    u->input_s = got->input_s >= 0 ? got->input_s : 0;
    u->sr = got->sr ? got->sr : job->resolution;
    snprintf(u->ratio, sizeof(u->ratio), "%s",
             got->ratio[0] ? got->ratio : job->ratio);
    if (r->ctl && r->ctl->progress)
        r->ctl->progress(r->ctl->arg, 100);
    return 0;
}

/* What a look at the upstream task tells the run on the way: progress,
 * and log lines for the looks that failed. */
static void on_poll(void *arg, const struct hh_poll *p)
{
    struct run *r = arg;
    const struct job_ctl *ctl = r->ctl;
    if (p->rc < 0) {
        log_warn("upstream poll failed",
                 "task_id=%s upstream_task_id=%s error=%s", r->task_id, r->id,
                 err_name(p->rc));
    } else if (!p->task) {
        if (p->delay_ms >= 0) /* it ends the run otherwise: said there */
            log_warn("upstream poll failed",
                     "task_id=%s upstream_task_id=%s status=%ld", r->task_id,
                     r->id, p->a->status);
    } else if (p->task->status == HH_OTHER) { /* look again later */
        log_warn("upstream task status unknown to paddock",
                 "task_id=%s upstream_task_id=%s status=%s", r->task_id, r->id,
                 p->task->status_text);
    } else if (!hh_status_terminal(p->task->status) && p->task->progress >= 0 &&
               ctl && ctl->progress) {
        int pct = p->task->progress > 99 ? 99 : p->task->progress;
        if (pct != r->last_pct) {
            r->last_pct = pct;
            ctl->progress(ctl->arg, pct);
        }
    }
}

/*
 * Poll the upstream task to its end: intervals from poll to poll-max
 * (x1.5 each), network errors, 5xx and 429 only delay the next look (the
 * worker's deadline bounds the run). `resumed`: look once before the first
 * sleep (the task may be finished already).
 */
static int follow(struct run *r, bool resumed, const char *out_path,
                  struct job_result *res, struct errmsg *err)
{
    struct upstream_engine *ue = r->ue;
    const struct hh_wait w = {
        .poll_ms = ue->poll_ms,
        .poll_max_ms = ue->poll_max_ms,
        .retry_after_max_ms = UPSTREAM_RETRY_AFTER_MAX_MS,
        .just_submitted = !resumed,
        .transient_max = HH_FOREVER,
        .on_poll = on_poll,
        .arg = r,
    };
    struct hh_answer a;
    struct hh_task t;
    struct errmsg e = { 0 };
    char said[HH_SAY_MAX + 64];
    int ret;

    int rc = hh_wait(&r->hc, r->id, &w, &a, &t, &e);
    if (rc == ERR_STOPPED)
        ret = stop_error(err);
    else if (rc < 0)
        ret = errmsg_set(err, ERR_ALGO, "upstream %s: %s", ue->shown,
                         errmsg_text(&e));
    else if (a.status == 401 || a.status == 403)
        ret = key_refused(r, &a, err);
    else if (a.status != 200 || t.status == HH_NONE) {
        hh_say(&a, said, sizeof(said));
        ret = errmsg_set(err, ERR_ALGO, "upstream %s answered %s about task %s",
                         ue->shown, said, r->id);
    } else if (t.status == HH_SUCCEEDED) {
        ret = finish(r, &t, out_path, res, err);
    } else if (t.status == HH_FAILED) {
        if (t.code)
            snprintf(res->code, sizeof(res->code), "%s", t.code);
        ret = errmsg_set(err, code_error(t.code), "%s",
                         t.message ? t.message : "the upstream task failed");
    } else if (t.status == HH_CANCELED) {
        ret = errmsg_set(err, ERR_ALGO, "the upstream canceled task %s", r->id);
    } else {
        ret = errmsg_set(err, ERR_ALGO, "the upstream no longer knows task %s",
                         r->id);
    }
    hh_answer_fini(&a);
    return ret;
}

static int upstream_run(struct engine *e, const struct job *job,
                        const struct job_inputs *in, const char *out_path,
                        const struct job_ctl *ctl, struct job_result *res,
                        struct errmsg *err)
{
    struct upstream_engine *ue = container_of(e, struct upstream_engine, base);
    struct run r = { .ue = ue, .job = job, .ctl = ctl, .last_pct = -1 };
    char id[HH_ID_MAX + 1];
    bool resumed = ctl && ctl->ref && ctl->ref[0];
    int ret;

    (void)in; /* local_media is false: the upstream fetches the URLs */
    r.task_id = ctl && ctl->task_id ? ctl->task_id : "-";
    if ((ret = net_http_new(&r.http, err)) < 0)
        return ret;
    r.hc = (struct hh_client){
        .ep = &ue->ep,
        .http = r.http,
        .stop = ctl ? ctl->stop : NULL,
        .timeout_ms = ue->timeout_ms,
        .pace = take_token,
        .arg = &r,
    };
    if (resumed) {
        if (!hh_id_ok(ctl->ref)) {
            ret = errmsg_set(err, ERR_ALGO,
                             "the saved upstream task id is not usable");
            goto out;
        }
        snprintf(id, sizeof(id), "%s", ctl->ref);
        log_info("upstream resume", "task_id=%s upstream_task_id=%s", r.task_id,
                 id);
    } else {
        if ((ret = submit(&r, id, res, err)) < 0)
            goto out;
        log_info("upstream submit", "task_id=%s upstream_task_id=%s", r.task_id,
                 id);
        if ((ret = save_ref(&r, id, err)) < 0)
            goto out;
    }
    r.id = id;
    ret = follow(&r, resumed, out_path, res, err);
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
    struct hh_answer a;
    struct errmsg ne = { 0 };
    char said[HH_SAY_MAX + 64];
    int ret = 0;

    if (net_http_new(&http, &ne) < 0)
        return errmsg_set(err, ERR_MODEL_UNAVAILABLE, "upstream %s: %s",
                          ue->shown, net_reason(&ne));
    /* Outside the rate limit: no pace. */
    struct hh_client hc = { .ep = &ue->ep,
                            .http = http,
                            .stop = stop,
                            .timeout_ms = UPSTREAM_CHECK_TIMEOUT_MS };
    int rc = hh_query(&hc, UPSTREAM_CHECK_ID, &a, &ne);
    if (rc < 0) {
        ret = errmsg_set(err, ERR_MODEL_UNAVAILABLE,
                         "upstream %s unreachable: %s", ue->shown,
                         net_reason(&ne));
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
    hh_endpoint_fini(&ue->ep); /* wipes the key */
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
