/*
 * The web console (docs/extensions.md, "The web console"): its files, built
 * into the binary, served under a strict Content-Security-Policy; and
 * GET /api/v1/engines, the engines' capacity and what they hold, which the
 * console's engines page reads.
 */
#include "api_int.h"

#include <string.h>

/* The type of a console file, by its name's ending. */
static const struct {
    const char *ext;
    const char *type;
} console_types[] = {
    { ".html", "text/html; charset=utf-8" },
    { ".js", "text/javascript; charset=utf-8" },
    { ".css", "text/css; charset=utf-8" },
    { ".svg", "image/svg+xml" },
    { ".json", "application/json" },
};

static const char *console_type(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < ARRAY_LEN(console_types); i++) {
        size_t e = strlen(console_types[i].ext);
        if (n > e && strcmp(name + n - e, console_types[i].ext) == 0)
            return console_types[i].type;
    }
    return "application/octet-stream";
}

static const struct console_asset *console_find(const char *name)
{
    for (size_t i = 0; i < api_console_assets_n; i++)
        if (strcmp(api_console_assets[i].name, name) == 0)
            return &api_console_assets[i];
    return NULL;
}

/* The origin ("https://host:port") of the public URL, where video_url
 * points when one is configured: the player may load from it. Empty when
 * none is set or it has no scheme. */
static void public_origin(const char *url, char *out, size_t size)
{
    out[0] = '\0';
    const char *p = url ? strstr(url, "://") : NULL;
    if (!p)
        return;
    size_t n = strcspn(p + 3, "/?#") + (size_t)(p + 3 - url);
    bool ok = n < size;
    for (size_t i = 0; ok && i < n; i++)
        ok = url[i] > ' ' && url[i] < 0x7f && !strchr("';,\"", url[i]);
    if (ok) {
        memcpy(out, url, n);
        out[n] = '\0';
    }
}

/*
 * GET /console and GET /console/NAME: public (the page asks for the key;
 * every call it makes is the API with it). No inline script or style, so
 * the policy allows only this origin's files; the player may also read the
 * public URL's origin (video_url) and blob: (a local file's preview).
 */
void api_console(struct call *c)
{
    const char *name = c->arg[0] ? c->arg : "index.html";
    const struct console_asset *a = console_find(name);
    char origin[API_URL_BASE_MAX + 8], csp[768], quoted[24];
    struct buf b = BUF_INIT;

    if (!a) {
        char msg[160];
        snprintf(msg, sizeof(msg), "the console has no file %.64s", name);
        api_reply_error(c, ERR_NOT_FOUND, msg);
        return;
    }
    public_origin(c->api->d.conf->public_url, origin, sizeof(origin));
    snprintf(csp, sizeof(csp),
             "default-src 'self'; script-src 'self'; style-src 'self'; "
             "img-src 'self' blob: data:; media-src 'self' blob:%s%s; "
             "connect-src 'self'; object-src 'none'; base-uri 'none'; "
             "form-action 'none'; frame-ancestors 'none'",
             origin[0] ? " " : "", origin);
    snprintf(quoted, sizeof(quoted), "\"%s\"", a->etag);
    http_reply_header(c->rep, "Content-Security-Policy", csp);
    http_reply_header(c->rep, "X-Content-Type-Options", "nosniff");
    http_reply_header(c->rep, "X-Frame-Options", "DENY");
    http_reply_header(c->rep, "Referrer-Policy", "no-referrer");
    /* Names are not fingerprinted: revalidate each time, 304 when the
     * binary has not changed. */
    http_reply_header(c->rep, "Cache-Control", "no-cache");
    http_reply_header(c->rep, "ETag", quoted);
    if (http_etag_matches(http_req_header(c->req, "If-None-Match"), quoted)) {
        c->rep->status = 304;
        return;
    }
    buf_append(&b, a->data, a->len);
    http_reply_take_body(c->rep, 200, console_type(name), &b);
}

/* ----------------------------------------------------------- engines */

/* The models an engine serves (not aliases), and whether the first one's
 * route passed its last health check: that is the engine's. */
static bool engine_models(struct call *c, const struct route_engine *re,
                          const struct store_stats *st, bool have_st,
                          struct buf *b, struct errmsg *why)
{
    const struct route_table *routes = c->api->d.routes;
    bool up = true, first = true;
    int64_t pending = 0;
    buf_puts(b, ",\"models\":[");
    for (size_t i = 0; i < route_count(routes); i++) {
        const struct route *r = route_at(routes, i);
        if (r->engine != re || r->alias)
            continue;
        if (first)
            up = route_usable(r, why);
        buf_puts(b, first ? "" : ",");
        buf_json_str(b, r->model.name);
        first = false;
        for (size_t q = 0; have_st && q < st->n_queue; q++)
            if (strcmp(st->queue[q].model, r->model.name) == 0)
                pending += st->queue[q].pending;
    }
    buf_printf(b, "],\"pending\":%lld", (long long)pending);
    return up;
}

/*
 * GET /api/v1/engines (extension, docs/api.md s.14.8): every engine
 * instance of this node's configuration, its backend, whether it passed its
 * last check, its capacity in this process and what this process holds
 * for it, the models it serves and their PENDING tasks on every node.
 */
void api_engines(struct call *c)
{
    /* Read only: route_engine_at and _running take the table's mutable
     * form, which the worker uses to count. */
    struct route_table *routes = (struct route_table *)c->api->d.routes;
    struct store_stats st;
    bool have_st = store_stats(c->api->d.store, &st) == 0;
    struct buf b = BUF_INIT;

    buf_puts(&b, "{\"request_id\":");
    buf_json_str(&b, http_req_id(c->req));
    buf_printf(&b, ",\"utc_offset_minutes\":%d,\"engines\":[",
               c->api->d.conf->utc_offset_min);
    for (size_t i = 0; i < route_engine_count(routes); i++) {
        struct route_engine *re = route_engine_at(routes, i);
        struct errmsg why = { 0 };
        int cap = route_engine_capacity(re);
        buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
        buf_json_str(&b, route_engine_name(re));
        buf_puts(&b, ",\"backend\":");
        buf_json_str(&b, route_engine_backend(re));
        if (cap < 0)
            buf_puts(&b, ",\"capacity\":null");
        else
            buf_printf(&b, ",\"capacity\":%d", cap);
        buf_printf(&b, ",\"in_flight\":%d", route_engine_running(re));
        bool up = engine_models(c, re, &st, have_st, &b, &why);
        buf_puts(&b, up ? ",\"available\":true" : ",\"available\":false");
        if (!up) {
            buf_puts(&b, ",\"message\":");
            buf_json_str(&b, errmsg_text(&why));
        }
        buf_putc(&b, '}');
    }
    buf_puts(&b, "]}");
    api_reply_json(c, 200, &b);
}

/* -------------------------------------------------------- task input */

/* A media URL as the input answer shows it: a data: URI only by its type
 * and size (it may be 20 MB), anything else as stored. */
static void input_media(struct buf *b, const struct job_media *m)
{
    buf_puts(b, "{\"type\":");
    buf_json_str(b, task_media_type_name(m->type));
    if (strncmp(m->url, "data:", 5) == 0) {
        const char *semi = strchr(m->url, ';');
        const char *comma = strchr(m->url, ',');
        size_t head = semi ? (size_t)(semi - m->url - 5) : 0;
        char type[64];
        snprintf(type, sizeof(type), "%.*s", (int)(head < 63 ? head : 63),
                 m->url + 5);
        buf_puts(b, ",\"inline_type\":");
        buf_json_str(b, type);
        /* Decoded size: checked as padded base64 at submit. */
        size_t n = comma ? strlen(comma + 1) : 0;
        size_t pad =
            (n > 0 && comma[n] == '=') + (n > 1 && comma[n - 1] == '=');
        buf_printf(b, ",\"inline_bytes\":%zu", n / 4 * 3 - pad);
    } else {
        buf_puts(b, ",\"url\":");
        buf_json_str(b, m->url);
    }
    buf_putc(b, '}');
}

/*
 * GET /api/v1/tasks/{id}/input (extension, docs/api.md s.14.8): what the
 * task was asked to make, from its stored job: the model, the prompt as
 * sent, the media and the parameters as the server resolved them (the
 * defaults filled in, the seed drawn). 404 NotFound for a task that is not
 * this key's, as a cancel answers.
 */
void api_task_input(struct call *c)
{
    struct task t = { 0 };
    struct job job = { 0 };
    struct buf b = BUF_INIT;
    char msg[96];
    int err = ERR_NOT_FOUND;

    if (strlen(c->arg) == UUID_STR_LEN && id_is_uuid(c->arg))
        err = store_get(c->api->d.store, c->arg, &t);
    if (err == 0 &&
        (strcmp(t.key_id, c->key_id) != 0 || task_expired(&t, clock_now_ms())))
        err = ERR_NOT_FOUND;
    if (err == ERR_NOT_FOUND) {
        snprintf(msg, sizeof(msg), "no task %.40s for this API key", c->arg);
        api_reply_error(c, err, msg);
        goto out;
    }
    if (err < 0 || (err = task_job_from_json(t.spec, &job)) < 0) {
        api_reply_error(c, err, "the task store is unavailable; retry");
        goto out;
    }
    buf_puts(&b, "{\"request_id\":");
    buf_json_str(&b, http_req_id(c->req));
    buf_puts(&b, ",\"output\":{\"task_id\":");
    buf_json_str(&b, t.task_id);
    buf_puts(&b, ",\"model\":");
    buf_json_str(&b, t.model);
    buf_puts(&b, ",\"task\":");
    buf_json_str(&b, task_kind_name(job.kind));
    if (t.prompt) {
        buf_puts(&b, ",\"prompt\":");
        buf_json_str(&b, t.prompt);
    }
    buf_puts(&b, ",\"media\":[");
    for (size_t i = 0; i < job.n_media; i++) {
        if (i)
            buf_putc(&b, ',');
        input_media(&b, &job.media[i]);
    }
    buf_printf(&b, "],\"parameters\":{\"resolution\":\"%dP\"", job.resolution);
    if (job.ratio[0]) {
        buf_puts(&b, ",\"ratio\":");
        buf_json_str(&b, job.ratio);
    }
    if (job.duration > 0)
        buf_printf(&b, ",\"duration\":%d", job.duration);
    buf_printf(&b, ",\"watermark\":%s,\"seed\":%lld",
               job.watermark ? "true" : "false", (long long)job.seed);
    if (job.kind == TASK_EDIT)
        buf_printf(&b, ",\"audio_setting\":\"%s\"",
                   job.audio_origin ? "origin" : "auto");
    buf_puts(&b, "}}}");
    api_reply_json(c, 200, &b);
out:
    task_job_fini(&job);
    task_fini(&t);
    buf_fini(&b);
}
