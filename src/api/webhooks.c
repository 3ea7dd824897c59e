/*
 * The webhook routes of both dialects (docs/extensions.md, "Webhooks"): a
 * key's endpoints (create, list, delete), their deliveries, and a manual
 * retry. Another key's endpoint is answered 404, as if absent. Sending is
 * hook/'s, on its own thread, never here.
 */
#include "api_int.h"

#include "../hook/hook.h"
#include "../log/log.h"

#include <stdlib.h>
#include <string.h>

/* A page of deliveries by default. */
#define DELIVERIES_PAGE 20

static const char *state_name(int state)
{
    switch (state) {
    case STORE_DLV_PENDING:
        return "pending";
    case STORE_DLV_DELIVERED:
        return "delivered";
    default:
        return "dead";
    }
}

static void put_time(struct call *c, struct buf *b, const char *name,
                     int64_t ms)
{
    char t[24];
    clock_format(ms, c->api->d.conf->utc_offset_min, t);
    buf_printf(b, ",\"%s\":", name);
    buf_json_str(b, t);
}

/* One endpoint as the API shows it; the secret only when `secret`. */
static void put_hook(struct call *c, struct buf *b, const struct store_hook *h,
                     bool secret)
{
    buf_puts(b, "{\"webhook_id\":");
    buf_json_str(b, h->webhook_id);
    buf_puts(b, ",\"url\":");
    buf_json_str(b, h->url);
    buf_puts(b, ",\"events\":[");
    bool first = true;
    for (unsigned bit = 1; bit <= STORE_EV_ALL; bit <<= 1) {
        if (!(h->events & bit))
            continue;
        buf_puts(b, first ? "" : ",");
        buf_json_str(b, hook_event_name(bit));
        first = false;
    }
    buf_puts(b, "]");
    if (secret) {
        buf_puts(b, ",\"secret\":");
        buf_json_str(b, h->secret);
    }
    buf_printf(b, ",\"status\":\"%s\"",
               h->disabled_ms ? "disabled" : "enabled");
    put_time(c, b, "created_time", h->created_ms);
    if (h->disabled_ms)
        put_time(c, b, "disabled_time", h->disabled_ms);
    buf_puts(b, "}");
}

static void reply_output(struct call *c, struct buf *out)
{
    struct buf b = BUF_INIT;
    buf_puts(&b, "{\"request_id\":");
    buf_json_str(&b, http_req_id(c->req));
    buf_puts(&b, ",\"output\":");
    buf_append(&b, out->data, out->len);
    buf_puts(&b, "}");
    api_reply_json(c, 200, &b);
}

static void not_found(struct call *c, const char *what, const char *id)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "%s %.64s does not exist for this key", what,
             id);
    api_reply_error(c, ERR_NOT_FOUND, msg);
}

/* The caller's endpoint named by the route's first segment, into *h;
 * false when answered (404, or a store failure). */
static bool own_hook(struct call *c, const char *id, struct store_hook *h)
{
    int rc = ERR_NOT_FOUND;
    if (strlen(id) == UUID_STR_LEN && id_is_uuid(id))
        rc = store_hook_get(c->api->d.store, id, c->key_id, h);
    if (rc == 0)
        return true;
    if (rc == ERR_NOT_FOUND)
        not_found(c, "webhook", id);
    else
        api_reply_error(c, rc, NULL);
    return false;
}

void api_webhook_create(struct call *c)
{
    struct errmsg e = { 0 };
    struct store_hook h = { .created_ms = clock_now_ms() };
    size_t len = 0;
    const char *body = http_req_body(c->req, &len);
    if (hook_request_parse(body, len, h.url, &h.events, &e) < 0) {
        api_reply_errmsg(c, &e);
        return;
    }
    id_uuid4(h.webhook_id);
    snprintf(h.key_id, sizeof(h.key_id), "%s", c->key_id);
    if (hook_secret_new(h.secret) < 0) {
        api_reply_error(c, ERR_INTERNAL, NULL);
        return;
    }
    int rc = store_hook_put(c->api->d.store, &h, LIMIT_WEBHOOKS_PER_KEY);
    if (rc == ERR_ALLOCATION_QUOTA) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "this key has %d webhooks, the most it may have; delete one "
                 "first",
                 LIMIT_WEBHOOKS_PER_KEY);
        api_reply_error(c, ERR_INVALID_PARAMETER, msg);
        return;
    }
    if (rc < 0) {
        api_reply_error(c, rc, NULL);
        return;
    }
    log_info("webhook created", "webhook_id=%s key_id=%s events=%u",
             h.webhook_id, c->key_id, h.events);
    struct buf out = BUF_INIT;
    put_hook(c, &out, &h, true);
    reply_output(c, &out);
    buf_fini(&out);
}

void api_webhook_list(struct call *c)
{
    struct store_hook *v = NULL;
    size_t n = 0;
    int rc = store_hook_list(c->api->d.store, c->key_id, &v, &n);
    if (rc < 0) {
        api_reply_error(c, rc, NULL);
        return;
    }
    struct buf out = BUF_INIT;
    buf_puts(&out, "{\"webhooks\":[");
    for (size_t i = 0; i < n; i++) {
        buf_puts(&out, i ? "," : "");
        put_hook(c, &out, &v[i], false);
    }
    buf_printf(&out, "],\"total\":%zu}", n);
    reply_output(c, &out);
    buf_fini(&out);
    free(v);
}

void api_webhook_delete(struct call *c)
{
    int rc = ERR_NOT_FOUND;
    if (strlen(c->arg) == UUID_STR_LEN && id_is_uuid(c->arg))
        rc = store_hook_delete(c->api->d.store, c->arg, c->key_id);
    if (rc == ERR_NOT_FOUND) {
        not_found(c, "webhook", c->arg);
        return;
    }
    if (rc < 0) {
        api_reply_error(c, rc, NULL);
        return;
    }
    log_info("webhook deleted", "webhook_id=%s key_id=%s", c->arg, c->key_id);
    struct buf out = BUF_INIT;
    buf_puts(&out, "{\"webhook_id\":");
    buf_json_str(&out, c->arg);
    buf_puts(&out, ",\"deleted\":true}");
    reply_output(c, &out);
    buf_fini(&out);
}

/* An integer query parameter in [min, max], or dflt; false when
 * answered. */
static bool query_int(struct call *c, const char *name, int64_t min,
                      int64_t max, int64_t dflt, int64_t *out)
{
    const char *v = http_req_query(c->req, name);
    *out = dflt;
    if (!v || parse_i64(v, min, max, out) == 0)
        return true;
    char msg[160];
    snprintf(msg, sizeof(msg), "%s must be an integer from %lld to %lld", name,
             (long long)min, (long long)max);
    api_reply_error(c, ERR_INVALID_PARAMETER, msg);
    return false;
}

static void put_delivery(struct call *c, struct buf *b,
                         const struct store_delivery *d)
{
    buf_puts(b, "{\"delivery_id\":");
    buf_json_str(b, d->delivery_id);
    buf_puts(b, ",\"event\":");
    buf_json_str(b, d->event);
    buf_puts(b, ",\"task_id\":");
    buf_json_str(b, d->task_id);
    buf_printf(b, ",\"attempt\":%d,\"status\":\"%s\"", d->attempts,
               state_name(d->state));
    put_time(c, b, "time", d->updated_ms);
    put_time(c, b, "created_time", d->created_ms);
    if (d->state == STORE_DLV_PENDING)
        put_time(c, b, "next_time", d->next_ms);
    if (d->code)
        buf_printf(b, ",\"response_code\":%d", d->code);
    if (d->error[0]) {
        buf_puts(b, ",\"error\":");
        buf_json_str(b, d->error);
    }
    buf_puts(b, "}");
}

void api_webhook_deliveries(struct call *c)
{
    struct store_hook h;
    int64_t page_no, page_size, total = 0;
    if (!own_hook(c, c->arg, &h) ||
        !query_int(c, "page_no", 1, 1000000, 1, &page_no) ||
        !query_int(c, "page_size", 1, LIMIT_WEBHOOK_PAGE, DELIVERIES_PAGE,
                   &page_size))
        return;
    struct store_delivery *v = NULL;
    size_t n = 0;
    int rc = store_delivery_list(c->api->d.store, h.webhook_id,
                                 (page_no - 1) * page_size, page_size, &v, &n,
                                 &total);
    if (rc < 0) {
        api_reply_error(c, rc, NULL);
        return;
    }
    struct buf out = BUF_INIT;
    buf_puts(&out, "{\"webhook_id\":");
    buf_json_str(&out, h.webhook_id);
    buf_puts(&out, ",\"deliveries\":[");
    for (size_t i = 0; i < n; i++) {
        buf_puts(&out, i ? "," : "");
        put_delivery(c, &out, &v[i]);
        store_delivery_fini(&v[i]);
    }
    buf_printf(&out, "],\"total\":%lld,\"page_no\":%lld,\"page_size\":%lld}",
               (long long)total, (long long)page_no, (long long)page_size);
    reply_output(c, &out);
    buf_fini(&out);
    free(v);
}

void api_webhook_retry(struct call *c)
{
    /* The route's two segments: webhook_id/delivery_id. */
    char hook_id[UUID_STR_LEN + 2];
    const char *slash = strchr(c->arg, '/');
    const char *dlv = slash ? slash + 1 : "";
    size_t hl = slash ? (size_t)(slash - c->arg) : 0;
    snprintf(hook_id, sizeof(hook_id), "%.*s",
             (int)(hl < sizeof(hook_id) - 1 ? hl : sizeof(hook_id) - 1),
             c->arg);
    struct store_hook h;
    if (!own_hook(c, hook_id, &h))
        return;
    int rc = ERR_NOT_FOUND;
    if (strlen(dlv) <= STORE_DELIVERY_ID_MAX && strncmp(dlv, "msg_", 4) == 0)
        rc = store_delivery_retry(c->api->d.store, h.webhook_id, dlv,
                                  clock_now_ms());
    if (rc == ERR_NOT_FOUND) {
        not_found(c, "delivery", dlv);
        return;
    }
    if (rc < 0) {
        api_reply_error(c, rc, NULL);
        return;
    }
    log_info("webhook retry", "webhook_id=%s delivery_id=%s key_id=%s",
             h.webhook_id, dlv, c->key_id);
    struct buf out = BUF_INIT;
    buf_puts(&out, "{\"delivery_id\":");
    buf_json_str(&out, dlv);
    buf_puts(&out, ",\"status\":\"pending\"}");
    reply_output(c, &out);
    buf_fini(&out);
}
