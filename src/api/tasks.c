/* The task routes of both dialects: submit, query, cancel, list. */
#include "api_int.h"

#include "../log/log.h"
#include "../metrics/metrics.h"
#include "../sign/sign.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* An Idempotency-Key is an opaque client string; this long at most. */
#define IDEM_KEY_MAX 255
/* The list answers at most 24 h of tasks at a time (docs/api.md s.6). */
#define LIST_SPAN_MS (24 * 3600 * 1000LL)

/* A submit waiting for its commit; the reply is written when it lands. */
struct pending_submit {
    struct call call; /* req and rep stay valid: the request is in flight */
    struct http_defer *defer;
    struct job job;
    struct task task; /* prompt borrowed from job, or orig_prompt */
    struct store_submit sub;
    char *idem_key;
    char *orig_prompt; /* as sent, when a scenario token was cut out */
};

/* The answer to a submit once the store has decided. */
static void submit_reply(struct call *c, const struct task *t, int err,
                         const char *replay)
{
    struct api *a = c->api;
    const struct conf *conf = a->d.conf;
    struct buf b = BUF_INIT;
    char msg[200];

    switch (err) {
    case 0:
        metrics_add(METRIC_SUBMITS, 1);
        log_info("task submitted",
                 "task_id=%s model=%s key_id=%s request_id=%s", t->task_id,
                 t->model, t->key_id, http_req_id(c->req));
        if (a->d.on_submit)
            a->d.on_submit(a->d.on_submit_arg);
        task_json_submitted(&b, http_req_id(c->req), t->task_id, TASK_PENDING);
        api_reply_json(c, 200, &b);
        break;
    case 1: { /* the same request again: the first answer again */
        struct task first = { 0 };
        enum task_status st = TASK_PENDING;
        if (store_get(a->d.store, replay, &first) == 0)
            st = first.status;
        task_fini(&first);
        log_info("idempotent replay", "task_id=%s key_id=%s request_id=%s",
                 replay, t->key_id, http_req_id(c->req));
        http_reply_header(c->rep, "Idempotent-Replayed", "true");
        task_json_submitted(&b, http_req_id(c->req), replay, st);
        api_reply_json(c, 200, &b);
        break;
    }
    case ERR_ALLOCATION_QUOTA:
        snprintf(msg, sizeof(msg),
                 "this key has %d unfinished tasks, the most it may have; "
                 "submit again when one has finished",
                 conf->max_active);
        api_reply_throttled(c, err, QUOTA_RETRY_S, msg);
        break;
    case ERR_ARREARAGE:
        metrics_add(METRIC_QUOTA_REFUSALS, 1);
        log_info("quota refused", "key_id=%s model=%s request_id=%s", t->key_id,
                 t->model, http_req_id(c->req));
        api_reply_error(c, err, NULL); /* exactly the documented sentence */
        break;
    case ERR_THROTTLING:
        snprintf(msg, sizeof(msg),
                 "the queue holds %d pending tasks, its limit; retry later",
                 conf->max_queue);
        api_reply_throttled(c, err, QUOTA_RETRY_S, msg);
        break;
    case ERR_IDEMPOTENCY_CONFLICT:
        snprintf(msg, sizeof(msg),
                 "Idempotency-Key was first used for task %s with a "
                 "different body; use a new key for a new request",
                 replay);
        api_reply_error(c, err, msg);
        break;
    default:
        /* Not committed, so nothing was promised: the client may retry. */
        api_reply_error(c, err,
                        "the task could not be stored; it was not accepted, "
                        "retry the request");
    }
    buf_fini(&b);
}

static void pending_free(struct pending_submit *p)
{
    p->task.prompt = NULL; /* borrowed */
    task_fini(&p->task);
    task_job_fini(&p->job);
    free(p->idem_key);
    free(p->orig_prompt);
    free(p);
}

/* store_submit_done: on the store's commit thread. */
static void submit_committed(void *arg, int err, const char *replay)
{
    struct pending_submit *p = arg;
    struct http_defer *defer = p->defer;
    submit_reply(&p->call, &p->task, err, replay);
    api_log_request(&p->call, "submit");
    pending_free(p);
    http_resume(defer); /* last: the request may be gone after it */
}

/*
 * The paddock-upload:// URLs of a parsed job (the upload extension,
 * docs/extensions.md): each must name an unexpired upload of this key,
 * within the size cap of its media type, for an engine that reads local
 * files. false with the reason, naming the field, in *e.
 */
static bool uploads_usable(struct call *c, const struct route *route,
                           const struct job *job, struct errmsg *e)
{
    const struct api_deps *d = &c->api->d;
    int64_t now = clock_now_ms();
    char id[UUID_STR_LEN + 1], kept[24];

    for (size_t i = 0; i < job->n_media; i++) {
        const struct job_media *m = &job->media[i];
        int64_t size = 0, mtime = 0;
        if (!task_upload_id(m->url, id))
            continue;
        if (!route_accepts_uploads(route)) {
            errmsg_set(e, ERR_INVALID_PARAMETER,
                       "%s: %s is served by engine %s (%s), which passes "
                       "URLs on and cannot read an upload; send an http(s) "
                       "URL",
                       m->field, job->model, route_engine_name(route->engine),
                       route_engine_backend(route->engine));
            return false;
        }
        if (blob_upload_stat(d->blob, c->key_id, id, &size, &mtime) < 0 ||
            mtime + d->conf->retention_ms <= now) {
            clock_format_duration(d->conf->retention_ms, kept);
            errmsg_set(e, ERR_INVALID_PARAMETER,
                       "%s: no upload %s for this API key (uploads expire %s "
                       "after they are sent)",
                       m->field, id, kept);
            return false;
        }
        bool video = m->type == JOB_MEDIA_VIDEO;
        int64_t cap = video ? LIMIT_VIDEO_BYTES : LIMIT_IMAGE_BYTES;
        if (size > cap) {
            errmsg_set(e, ERR_INVALID_PARAMETER,
                       "%s: upload %s is %lld bytes; %s input may be at "
                       "most %lld MB",
                       m->field, id, (long long)size,
                       video ? "a video" : "an image", (long long)(cap >> 20));
            return false;
        }
    }
    return true;
}

void api_submit(struct call *c)
{
    struct api *a = c->api;
    struct errmsg e = { 0 };
    struct pending_submit *p = NULL;

    if (c->dialect == D_DASHSCOPE) {
        const char *async = http_req_header(c->req, "X-DashScope-Async");
        if (!async || strcasecmp(async, "enable") != 0) {
            api_reply_error(c, ERR_SYNC_NOT_SUPPORTED, NULL);
            return;
        }
    }
    const char *idem = http_req_header(c->req, "Idempotency-Key");
    if (idem && (!idem[0] || strlen(idem) > IDEM_KEY_MAX ||
                 !utf8_valid(idem, strlen(idem)))) {
        api_reply_error(
            c, ERR_INVALID_PARAMETER,
            "header Idempotency-Key must be 1 to 255 bytes of UTF-8");
        return;
    }

    uint32_t r = 0;
    if (id_random(&r, sizeof(r)) < 0) {
        api_reply_error(c, ERR_INTERNAL, "no randomness for the seed");
        return;
    }
    size_t len;
    const char *body = http_req_body(c->req, &len);
    p = xcalloc(1, sizeof(*p));
    const struct route_table *routes = a->d.routes;
    const struct route *route = NULL; /* the parse took only routed names */
    if (task_job_parse(body, len, (int64_t)(r & 0x7fffffff),
                       route_catalog(routes), &p->job, &e) < 0 ||
        !route_usable(route = route_find(routes, p->job.model), &e) ||
        !uploads_usable(c, route, &p->job, &e) ||
        !api_oss_usable(c, route, &p->job, &e)) {
        api_reply_errmsg(c, &e);
        pending_free(p);
        return;
    }
    int steered = api_scenario_submit(c, route, &p->job, &p->orig_prompt, &e);
    if (steered != 0) { /* refused, or answered by the scenario */
        if (steered < 0)
            api_reply_errmsg(c, &e);
        pending_free(p);
        return;
    }

    struct task *t = &p->task;
    id_uuid7(t->task_id);
    snprintf(t->key_id, sizeof(t->key_id), "%s", c->key_id);
    snprintf(t->model, sizeof(t->model), "%s", p->job.model);
    t->status = TASK_PENDING;
    t->spec = task_job_to_json(&p->job);
    /* orig_prompt is what the client sent, a scenario token included. */
    t->prompt = p->orig_prompt ? p->orig_prompt : p->job.prompt;
    t->submit_ms = clock_now_ms();
    t->expire_ms = t->submit_ms + a->d.conf->retention_ms;
    if (p->job.scenario.queue_ms > 0)
        t->not_before_ms = t->submit_ms + p->job.scenario.queue_ms;
    p->sub = (struct store_submit){
        .task = t,
        .max_active = a->d.conf->max_active,
        .max_queue = a->d.conf->max_queue,
        /* The most it can bill (docs/extensions.md, "Usage"): its
         * duration; a video-edit's 15 s of input and as much output. */
        .hold = { .cs = (p->job.kind == TASK_EDIT ? 2 * LIMIT_DURATION_MAX
                                                  : p->job.duration) *
                        100LL,
                  .price =
                      conf_price(a->d.conf, p->job.model, p->job.resolution),
                  .resolution = p->job.resolution,
                  .edit = p->job.kind == TASK_EDIT },
    };
    if (idem) {
        p->idem_key = xstrdup(idem);
        p->sub.idem_key = p->idem_key;
        sign_sha256(body, len, NULL, 0, p->sub.body_hash);
    }
    /* The HTTP thread does not wait for the disk: the reply is written
     * when the group commit that holds this task lands. */
    p->call = *c;
    p->call.arg = ""; /* the route segment lives on the caller's stack */
    p->defer = http_reply_defer(c->rep);
    c->deferred = true;
    if (store_submit_async(a->d.store, &p->sub, submit_committed, p) < 0)
        submit_committed(p, ERR_STORE, "");
}

/* ------------------------------------------------------------- query */

/* A request id for answers made without a request (at a finish): the
 * cache writes each request's own over it. */
static const char NO_REQUEST_ID[] = "00000000-0000-0000-0000-000000000000";

/* A PENDING task's place in the queue (docs/extensions.md, "Queue
 * position"), or 0 (not PENDING, or the store could not say). Such an
 * answer is never cached: only terminal ones are. */
static int64_t queue_position(struct api *a, const struct task *t)
{
    int64_t pos = 0;
    if (!t || t->status != TASK_PENDING ||
        store_queue_position(a->d.store, t, &pos) < 0)
        return 0;
    return pos;
}

/*
 * The query answer for `t` (the caller's task, or NULL: UNKNOWN for
 * task_id) into out. A SUCCEEDED task's video_url is written without its
 * base unless --public-url is set: *base_at says where the base goes
 * (API_CACHE_NO_BASE: nowhere, the answer is whole).
 */
static void answer(struct api *a, const char *request_id, const char *task_id,
                   const struct task *t, struct buf *out, size_t *base_at)
{
    const char *public_url = a->d.conf->public_url;
    struct task_view view = { .utc_offset_min = a->d.conf->utc_offset_min };
    struct buf url = BUF_INIT;
    size_t start = out->len;

    *base_at = API_CACHE_NO_BASE;
    view.queue_position = queue_position(a, t);
    if (t && t->status == TASK_SUCCEEDED && t->result) {
        blob_url(a->d.blob, &url, public_url ? public_url : "", t->result,
                 t->expire_ms);
        view.video_url = url.data;
    }
    task_json_query(out, request_id, task_id, t, &view);
    if (view.video_url && !public_url) {
        /* Every '"' inside a JSON string is escaped, so this is the member
         * itself; the URL starts right after it with "/files/". */
        static const char member[] = ",\"video_url\":\"";
        const char *p = memmem(out->data + start, out->len - start, member,
                               sizeof(member) - 1);
        *base_at = (size_t)(p - out->data) + sizeof(member) - 1;
    }
    buf_fini(&url);
}

/* Reply 200 with the answer in b, the URL base put in its hole. */
static void reply_answer(struct call *c, struct buf *b, size_t base_at,
                         const char *base)
{
    if (base_at == API_CACHE_NO_BASE) {
        api_reply_json(c, 200, b);
        return;
    }
    struct buf r = BUF_INIT;
    size_t n = strlen(base);
    buf_reserve(&r, b->len + n);
    buf_append(&r, b->data, base_at);
    buf_append(&r, base, n);
    buf_append(&r, b->data + base_at, b->len - base_at);
    api_reply_json(c, 200, &r);
}

void api_task_answer(struct api *a, const char *request_id,
                     const struct task *t, const char *base, struct buf *out)
{
    struct buf b = BUF_INIT;
    size_t base_at;
    answer(a, request_id, t->task_id, t, &b, &base_at);
    if (base_at == API_CACHE_NO_BASE) {
        buf_append(out, b.data, b.len);
    } else {
        buf_append(out, b.data, base_at);
        buf_puts(out, base);
        buf_append(out, b.data + base_at, b.len - base_at);
    }
    buf_fini(&b);
}

/* Keep the answer of a terminal task t for the next queries, unless a
 * scenario shapes its answers (`shaped`: the caller read its plan). */
static void keep_answer(struct api *a, const struct task *t, bool shaped,
                        const struct buf *b, size_t base_at, int64_t now_ms)
{
    if (!task_status_terminal(t->status) || shaped)
        return;
    struct api_cache_answer ans = { .task_id = t->task_id,
                                    .key_id = t->key_id,
                                    .expire_ms = t->expire_ms,
                                    .body = b->data,
                                    .len = b->len,
                                    .base_at = base_at };
    api_cache_put(a->cache, &ans, now_ms);
}

void api_task_finished(struct api *a, const char *task_id)
{
    struct task t = { 0 };
    struct buf b = BUF_INIT;
    size_t base_at;
    int64_t now = clock_now_ms();

    if (!a->cache || store_get(a->d.store, task_id, &t) < 0 ||
        !task_status_terminal(t.status) || task_expired(&t, now))
        goto out;
    answer(a, NO_REQUEST_ID, t.task_id, &t, &b, &base_at);
    keep_answer(a, &t, api_scenario_shapes_answer(&t), &b, base_at, now);
out:
    task_fini(&t);
    buf_fini(&b);
}

void api_query(struct call *c)
{
    struct api *a = c->api;
    struct task t = { 0 };
    struct buf b = BUF_INIT;
    const struct task *found = NULL;
    char base_buf[API_URL_BASE_MAX];
    const char *base = a->d.conf->public_url ? "" : api_url_base(c, base_buf);
    int64_t now = clock_now_ms();
    size_t base_at;
    struct job_scenario plan = { 0 };

    /* Not a uuid: certainly not ours, no store read needed. */
    if (strlen(c->arg) == UUID_STR_LEN && id_is_uuid(c->arg)) {
        switch (api_cache_get(a->cache, c->arg, c->key_id, now,
                              http_req_id(c->req), base, &b)) {
        case API_CACHE_HIT:
            api_reply_json(c, 200, &b);
            goto out;
        case API_CACHE_GONE:
            break;
        case API_CACHE_MISS: {
            int err = store_get(a->d.store, c->arg, &t);
            if (err < 0 && err != ERR_NOT_FOUND) {
                api_reply_error(c, err, "the task store is unavailable; retry");
                goto out;
            }
            /* Another key's task and an expired one look like no task. */
            if (err == 0 && strcmp(t.key_id, c->key_id) == 0 &&
                !task_expired(&t, now))
                found = &t;
        }
        }
    }
    /* A sandbox scenario may fail this query, or shape the link: such an
     * answer is made for this query alone. */
    if (found && api_scenario_query(c, found, &plan))
        goto out;
    if (found && (plan.query_errors > 0 || plan.link != TASK_LINK_NORMAL)) {
        struct task_view view = { .utc_offset_min = a->d.conf->utc_offset_min,
                                  .queue_position = queue_position(a, found) };
        struct buf url = BUF_INIT;
        if (found->status == TASK_SUCCEEDED && found->result) {
            api_scenario_video_url(c, found, &plan, &url);
            view.video_url = url.data;
        }
        task_json_query(&b, http_req_id(c->req), c->arg, found, &view);
        buf_fini(&url);
        api_reply_json(c, 200, &b);
        goto out;
    }
    answer(a, http_req_id(c->req), c->arg, found, &b, &base_at);
    if (found) /* its plan was read above: it shapes nothing */
        keep_answer(a, found, false, &b, base_at, now);
    reply_answer(c, &b, base_at, base);
out:
    task_fini(&t);
    buf_fini(&b);
}

/* ------------------------------------------------------------ cancel */

void api_cancel(struct call *c)
{
    struct api *a = c->api;
    struct buf b = BUF_INIT;
    enum task_status st = TASK_UNKNOWN;
    char msg[200];

    int err = ERR_NOT_FOUND;
    if (strlen(c->arg) == UUID_STR_LEN && id_is_uuid(c->arg))
        err = store_cancel(a->d.store, c->arg, c->key_id, clock_now_ms(), &st);
    switch (err) {
    case 0:
        log_info("task canceled", "task_id=%s key_id=%s request_id=%s", c->arg,
                 c->key_id, http_req_id(c->req));
        api_task_finished(a, c->arg); /* its answer is final now */
        buf_puts(&b, "{\"request_id\":");
        buf_json_str(&b, http_req_id(c->req));
        buf_putc(&b, '}');
        api_reply_json(c, 200, &b);
        break;
    case ERR_NOT_FOUND: /* absent, expired and another key's alike */
        snprintf(msg, sizeof(msg), "no task %.40s for this API key", c->arg);
        api_reply_error(c, err, msg);
        break;
    case ERR_UNSUPPORTED_OPERATION:
        snprintf(msg, sizeof(msg),
                 "task %s is %s; only a PENDING task can be canceled", c->arg,
                 task_status_name(st));
        api_reply_error(c, err, msg);
        break;
    default:
        api_reply_error(c, err, "the task store is unavailable; retry");
    }
    buf_fini(&b);
}

/* -------------------------------------------------------------- list */

/* An integer query parameter in [min, max], or `dflt` when absent. */
static bool query_int(struct call *c, const char *name, int64_t min,
                      int64_t max, int64_t dflt, int64_t *out)
{
    const char *v = http_req_query(c->req, name);
    *out = dflt;
    if (!v)
        return true;
    if (parse_i64(v, min, max, out) == 0)
        return true;
    char msg[160];
    snprintf(msg, sizeof(msg), "%s must be an integer from %lld to %lld", name,
             (long long)min, (long long)max);
    api_reply_error(c, ERR_INVALID_PARAMETER, msg);
    return false;
}

bool api_query_time(struct call *c, const char *name, int64_t *out_ms,
                    bool *given)
{
    const char *v = http_req_query(c->req, name);
    *given = v != NULL;
    if (!v ||
        clock_parse_compact(v, c->api->d.conf->utc_offset_min, out_ms) == 0)
        return true;
    char msg[160];
    snprintf(msg, sizeof(msg),
             "%s must be a time YYYYMMDDhhmmss (UTC%+d:%02d), like "
             "20260428120000",
             name, c->api->d.conf->utc_offset_min / 60,
             abs(c->api->d.conf->utc_offset_min) % 60);
    api_reply_error(c, ERR_INVALID_PARAMETER, msg);
    return false;
}

void api_list(struct call *c)
{
    struct api *a = c->api;
    struct store_filter f = { .key_id = c->key_id, .status = -1 };
    int64_t page_no, page_size, from_ms = 0, to_ms = 0, total = 0;
    bool has_from, has_to;
    struct task *tasks = NULL;
    size_t n = 0;
    struct buf b = BUF_INIT;

    if (!query_int(c, "page_no", 1, 1000000, 1, &page_no) ||
        !query_int(c, "page_size", 1, 100, 10, &page_size) ||
        !api_query_time(c, "start_time", &from_ms, &has_from) ||
        !api_query_time(c, "end_time", &to_ms, &has_to))
        return;
    f.now_ms = clock_now_ms();
    if (!has_to)
        to_ms = has_from ? from_ms + LIST_SPAN_MS : f.now_ms;
    if (!has_from)
        from_ms = to_ms - LIST_SPAN_MS;
    if (to_ms < from_ms || to_ms - from_ms > LIST_SPAN_MS) {
        api_reply_error(c, ERR_INVALID_PARAMETER,
                        "start_time must not be after end_time, and they may "
                        "span at most 24 hours");
        return;
    }
    f.from_ms = from_ms;
    f.to_ms = to_ms + 1000; /* end_time names a whole second */
    const char *status = http_req_query(c->req, "status");
    if (status) {
        enum task_status st;
        if (task_status_parse(status, &st) < 0 || st == TASK_UNKNOWN) {
            api_reply_error(
                c, ERR_INVALID_PARAMETER,
                "status must be one of PENDING, RUNNING, SUCCEEDED, "
                "FAILED, CANCELED");
            return;
        }
        f.status = (int)st;
    }
    const char *model = http_req_query(c->req, "model_name");
    if (model) {
        if (!model[0] || strlen(model) > LIMIT_MODEL_NAME) {
            api_reply_error(c, ERR_INVALID_PARAMETER,
                            "model_name must be 1 to 64 characters");
            return;
        }
        f.model = model;
    }
    f.limit = page_size;
    f.offset = (page_no - 1) * page_size;
    int err = store_list(a->d.store, &f, &tasks, &n, &total);
    if (err < 0) {
        api_reply_error(c, err, "the task store is unavailable; retry");
        return;
    }
    task_json_list(&b, http_req_id(c->req), tasks, n, total, page_no,
                   page_size);
    api_reply_json(c, 200, &b);
    for (size_t i = 0; i < n; i++)
        task_fini(&tasks[i]);
    free(tasks);
}
