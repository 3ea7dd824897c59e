/* The routes besides tasks: uploads, result files, health, readiness,
 * the models table, metrics and the OpenAPI document. */
#include "api_int.h"

#include "../log/log.h"
#include "../metrics/metrics.h"

#include <stdlib.h>
#include <string.h>

/* docs/openapi.json, embedded by the Makefile ($(O)/gen/openapi.c): the
 * document of every route, served without a key. */
extern const unsigned char api_openapi_json[];
extern const size_t api_openapi_json_len;

void api_openapi(struct call *c)
{
    struct buf b = BUF_INIT;
    buf_append(&b, api_openapi_json, api_openapi_json_len);
    api_reply_json(c, 200, &b);
}

/* ------------------------------------------------------------ upload */

int api_upload_quota(struct api *a, const char *key_id, int64_t incoming,
                     int64_t *retry_s, struct errmsg *e)
{
    const struct conf *conf = a->d.conf;
    char kept[24];
    int count = 0;
    int64_t bytes = 0, oldest = 0, now = clock_now_ms();

    if (blob_upload_usage(a->d.blob, key_id, now - conf->retention_ms,
                          now - BLOB_OSS_KEEP_MS, &count, &bytes, &oldest) < 0)
        return errmsg_set(e, ERR_IO, "the upload could not be stored; retry");
    if (count < LIMIT_UPLOADS_PER_KEY &&
        bytes + incoming <= LIMIT_UPLOAD_BYTES_PER_KEY)
        return 0;
    int64_t wait_s = (oldest + conf->retention_ms - now + 999) / 1000;
    *retry_s = wait_s > 0 ? wait_s : 1;
    clock_format_duration(conf->retention_ms, kept);
    return errmsg_set(e, ERR_ALLOCATION_QUOTA,
                      "this key holds %d uploads of %lld bytes in all; a key "
                      "may hold %d uploads and %lld MB at once (uploads are "
                      "deleted %s after they are sent)",
                      count, (long long)bytes, LIMIT_UPLOADS_PER_KEY,
                      (long long)(LIMIT_UPLOAD_BYTES_PER_KEY >> 20), kept);
}

void api_reply_quota(struct call *c, const struct errmsg *e, int64_t retry_s)
{
    char retry[24];
    if (e->code != ERR_ALLOCATION_QUOTA) {
        api_reply_errmsg(c, e);
        return;
    }
    snprintf(retry, sizeof(retry), "%lld", (long long)retry_s);
    api_reply_throttled(c, e->code, retry, errmsg_text(e));
}

/* The caps for `incoming` more bytes of this key: false when answered. */
static bool upload_room(struct call *c, int64_t incoming)
{
    struct errmsg e = { 0 };
    int64_t retry_s = 1;
    if (api_upload_quota(c->api, c->key_id, incoming, &retry_s, &e) == 0)
        return true;
    api_reply_quota(c, &e, retry_s);
    return false;
}

static int upload_write(void *arg, const void *data, size_t len)
{
    struct admitted *ad = arg;
    return blob_upload_write(ad->upload, data, len);
}

static void upload_end(void *arg)
{
    struct admitted *ad = arg;
    blob_upload_free(ad->upload); /* removes the file unless committed */
    ad->upload = NULL;
}

bool api_upload_admit(struct call *c, struct admitted *ad)
{
    int64_t declared = http_req_content_length(c->req);
    int64_t limit = c->api->d.conf->upload_limit;
    char msg[160];
    if (declared > limit) {
        snprintf(msg, sizeof(msg),
                 "an upload may be at most %lld bytes (--upload-limit; the "
                 "largest input, a video, is %lld MB)",
                 (long long)limit, (long long)(LIMIT_VIDEO_BYTES >> 20));
        api_reply_error(c, ERR_TOO_LARGE, msg);
        return false;
    }
    if (!upload_room(c, declared > 0 ? declared : 0))
        return false;
    id_uuid4(ad->upload_id);
    if (blob_upload_begin(c->api->d.blob, c->key_id, ad->upload_id,
                          &ad->upload) < 0) {
        api_reply_error(c, ERR_IO, "the upload could not be stored; retry");
        return false;
    }
    http_req_set_body_limit(c->req, limit);
    http_req_set_sink(c->req, &(struct http_sink){ .write = upload_write,
                                                   .end = upload_end,
                                                   .arg = ad });
    return true;
}

/*
 * POST /api/v1/uploads (the upload extension, docs/extensions.md): the
 * body's bytes, whatever they are (the worker and the engine judge the
 * content, never a name or a Content-Type), kept for this key until the
 * retention passes; a submit names them as paddock-upload://<upload_id>.
 * The body streamed into a temporary file as it came (api_upload_admit,
 * never held in memory); here it is fsync'd and renamed into place.
 */
void api_upload(struct call *c)
{
    struct api *a = c->api;
    const struct conf *conf = a->d.conf;
    struct admitted *ad = http_req_user(c->req);
    char when[24];
    int64_t mtime = 0, size = blob_upload_size(ad->upload);
    struct buf b = BUF_INIT;

    if (size == 0) {
        api_reply_error(c, ERR_INVALID_PARAMETER,
                        "the request body is empty; send the file's bytes as "
                        "the body");
        return;
    }
    if (http_req_content_length(c->req) < 0 && !upload_room(c, size))
        return; /* chunked: the caps again, with the size now known */
    if (blob_upload_commit(ad->upload, &mtime) < 0) {
        api_reply_error(c, ERR_IO, "the upload could not be stored; retry");
        return;
    }
    log_info("upload stored", "upload_id=%s key_id=%s bytes=%lld request_id=%s",
             ad->upload_id, c->key_id, (long long)size, http_req_id(c->req));
    clock_format(mtime + conf->retention_ms, conf->utc_offset_min, when);
    buf_puts(&b, "{\"request_id\":");
    buf_json_str(&b, http_req_id(c->req));
    buf_printf(&b,
               ",\"output\":{\"upload_id\":\"%s\",\"url\":\"" TASK_UPLOAD_SCHEME
               "%s\",\"size\":%lld,\"expires_time\":\"%s\"}}",
               ad->upload_id, ad->upload_id, (long long)size, when);
    api_reply_json(c, 200, &b);
}

/* ------------------------------------------------------------- files */

/* GET/HEAD /files/<name>?expires=...&signature=...: a signed result
 * link; ranges, HEAD and ETags as http_reply_file does them. */
void api_file(struct call *c)
{
    struct api *a = c->api;
    const char *name = c->arg;
    int64_t rate = 0; /* a paced link (a scenario's link=slow) */
    int err = blob_verify_paced(
        a->d.blob, name, http_req_query(c->req, "expires"),
        http_req_query(c->req, "rate"), http_req_query(c->req, "signature"),
        clock_now_ms(), &rate);
    if (err < 0) {
        api_reply_error(c, err, NULL);
        return;
    }
    int fd;
    uint64_t size;
    if (blob_open_file(a->d.blob, name, &fd, &size) < 0) {
        api_reply_error(c, ERR_NOT_FOUND, "the video is no longer stored");
        return;
    }
    /* A result never changes under its name. */
    http_reply_header(c->rep, "Cache-Control", "private, max-age=86400");
    char etag[BLOB_NAME_MAX];
    snprintf(etag, sizeof(etag), "%.*s", (int)(strlen(name) - 4), name);
    if (http_reply_file(c->req, c->rep, fd, size, "video/mp4", etag) < 0)
        api_reply_error(c, ERR_RANGE, "the range is outside the file");
    else
        c->rep->rate = (uint64_t)rate;
}

/* ------------------------------------------------------------ health */

void api_health(struct call *c)
{
    struct buf b = BUF_INIT;
    buf_puts(&b, "{\"status\":\"ok\"}");
    api_reply_json(c, 200, &b);
}

/* Ready to serve: the store answers and an engine is configured. */
void api_ready(struct call *c)
{
    struct task t;
    struct buf b = BUF_INIT;
    const char *why = NULL;
    int err =
        store_get(c->api->d.store, "00000000-0000-0000-0000-000000000000", &t);
    task_fini(&t);
    if (err < 0 && err != ERR_NOT_FOUND)
        why = "the task store does not answer";
    else if (route_count(c->api->d.routes) == 0)
        why = "no model is configured";
    buf_puts(&b, why ? "{\"status\":\"unready\",\"reason\":"
                     : "{\"status\":\"ready\"");
    if (why)
        buf_json_str(&b, why);
    buf_putc(&b, '}');
    api_reply_json(c, why ? 503 : 200, &b);
}

/* GET /api/v1/models (extension): every name a client may send, what it
 * means, which engine serves it, whether that engine is up, and what the
 * model accepts. */
void api_models(struct call *c)
{
    const struct route_table *routes = c->api->d.routes;
    struct buf b = BUF_INIT;
    buf_puts(&b, "{\"request_id\":");
    buf_json_str(&b, http_req_id(c->req));
    buf_puts(&b, ",\"models\":[");
    for (size_t i = 0; i < route_count(routes); i++) {
        const struct route *r = route_at(routes, i);
        struct errmsg why = { 0 };
        bool up = route_usable(r, &why);
        buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
        buf_json_str(&b, r->name);
        buf_puts(&b, ",\"model\":");
        buf_json_str(&b, r->model.name);
        buf_puts(&b, ",\"task\":");
        buf_json_str(&b, task_kind_name(r->model.kind));
        buf_puts(&b, ",\"engine\":");
        buf_json_str(&b, route_engine_name(r->engine));
        buf_puts(&b, ",\"backend\":");
        buf_json_str(&b, route_engine_backend(r->engine));
        buf_puts(&b, up ? ",\"available\":true" : ",\"available\":false");
        if (!up) {
            buf_puts(&b, ",\"message\":");
            buf_json_str(&b, errmsg_text(&why));
        }
        task_json_rules(&b, r->model.kind);
        buf_putc(&b, '}');
    }
    buf_puts(&b, "]}");
    api_reply_json(c, 200, &b);
}

void api_metrics(struct call *c)
{
    struct buf b = BUF_INIT;
    struct store_stats st;
    metrics_write(&b);
    if (store_stats(c->api->d.store, &st) == 0) {
        metrics_gauge_header(&b, "paddock_tasks",
                             "Tasks in the store by state (all nodes).");
        for (int i = 0; i < TASK_UNKNOWN; i++)
            metrics_gauge(&b, "paddock_tasks", "state",
                          task_status_name((enum task_status)i),
                          (double)st.by_status[i]);
        metrics_gauge_header(&b, "paddock_queue_depth",
                             "PENDING tasks per model (all nodes).");
        for (size_t i = 0; i < st.n_queue; i++)
            metrics_gauge(&b, "paddock_queue_depth", "model", st.queue[i].model,
                          (double)st.queue[i].pending);
    }
    /* Integers as such (metrics_gauge's %g would round the bytes). */
    struct api_cache_stats cs;
    api_cache_stats(c->api->cache, clock_now_ms(), &cs);
    buf_printf(&b,
               "# HELP paddock_query_cache_bytes Memory the answer cache "
               "holds, of --query-cache.\n"
               "# TYPE paddock_query_cache_bytes gauge\n"
               "paddock_query_cache_bytes %zu\n"
               "# HELP paddock_query_cache_entries Answers of finished tasks "
               "in the cache.\n"
               "# TYPE paddock_query_cache_entries gauge\n"
               "paddock_query_cache_entries %zu\n"
               "# HELP paddock_query_cache_lookups_total Task queries that "
               "asked the answer cache, by result.\n"
               "# TYPE paddock_query_cache_lookups_total counter\n"
               "paddock_query_cache_lookups_total{result=\"hit\"} %llu\n"
               "paddock_query_cache_lookups_total{result=\"miss\"} %llu\n",
               cs.bytes, cs.entries, (unsigned long long)cs.hits,
               (unsigned long long)cs.misses);
    http_reply_take_body(c->rep, 200, "text/plain; version=0.0.4", &b);
}
