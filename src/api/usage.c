/*
 * GET /api/v1/usage (docs/extensions.md, "Usage"): the caller's settled
 * usage from the ledger, grouped; an admin key may name another key or
 * group by key. Plus the number writers the keys API shares.
 */
#include "api_int.h"

#include "../auth/auth.h"

#include <stdlib.h>
#include <string.h>

/* Without start_time, a report covers the 30 days before its end. */
#define USAGE_DEFAULT_SPAN_MS (30 * 86400 * 1000LL)

void api_put_amount(struct buf *b, int64_t micro)
{
    const char *sign = micro < 0 ? "-" : "";
    uint64_t v = micro < 0 ? (uint64_t)(-(micro + 1)) + 1 : (uint64_t)micro;
    buf_printf(b, "%s%llu.%06llu", sign, (unsigned long long)(v / 1000000),
               (unsigned long long)(v % 1000000));
}

void api_put_seconds(struct buf *b, int64_t cs)
{
    if (cs % 100 == 0)
        buf_printf(b, "%lld", (long long)(cs / 100));
    else
        buf_printf(b, "%lld.%02lld", (long long)(cs / 100),
                   (long long)llabs(cs % 100));
}

bool api_admin_only(struct call *c, const char *what)
{
    if (auth_key_admin(c->api->d.auth, c->key_id))
        return true;
    char msg[200];
    snprintf(msg, sizeof(msg),
             "%s needs an admin key (paddock keys create --admin); this "
             "key is not one",
             what);
    api_reply_error(c, ERR_ACCESS_DENIED, msg);
    return false;
}

static const struct {
    const char *name;  /* group_by's value */
    const char *field; /* its rows' field */
    enum store_group group;
} groups[] = {
    { "model", "model", STORE_GROUP_MODEL },
    { "day", "day", STORE_GROUP_DAY },
    { "resolution", "resolution", STORE_GROUP_RESOLUTION },
    { "key", "key_id", STORE_GROUP_KEY },
};

static void put_sums(struct buf *b, const struct store_usage_row *r)
{
    buf_printf(b, "\"tasks\":%lld,\"seconds\":", (long long)r->tasks);
    api_put_seconds(b, r->cs);
    buf_puts(b, ",\"amount\":\"");
    api_put_amount(b, r->amount);
    buf_putc(b, '"');
}

/* A row's group value as the API writes it: "2026-12-02", "720P", a model
 * or key id as is. */
static void put_group(struct buf *b, enum store_group g, const char *v)
{
    if (g == STORE_GROUP_DAY && strlen(v) == 8) {
        buf_printf(b, "\"%.4s-%.2s-%.2s\"", v, v + 4, v + 6);
        return;
    }
    if (g == STORE_GROUP_RESOLUTION) {
        buf_printf(b, "\"%ldP\"", strtol(v, NULL, 10));
        return;
    }
    buf_json_str(b, v);
}

void api_usage(struct call *c)
{
    struct api *a = c->api;
    int64_t from_ms = 0, to_ms = 0, now = clock_now_ms();
    bool has_from, has_to;
    struct store_usage_row *rows = NULL, total;
    size_t n = 0;
    struct buf b = BUF_INIT;

    if (!api_query_time(c, "start_time", &from_ms, &has_from) ||
        !api_query_time(c, "end_time", &to_ms, &has_to))
        return;
    if (!has_to)
        to_ms = now;
    else
        to_ms += 1000; /* end_time names a whole second */
    if (!has_from)
        from_ms = to_ms - USAGE_DEFAULT_SPAN_MS;
    if (to_ms < from_ms || to_ms - from_ms > LIMIT_USAGE_DAYS * 86400000LL) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "start_time must not be after end_time, and they may span "
                 "at most %d days",
                 LIMIT_USAGE_DAYS);
        api_reply_error(c, ERR_INVALID_PARAMETER, msg);
        return;
    }
    const char *gb = http_req_query(c->req, "group_by");
    size_t gi = 0;
    if (gb) {
        while (gi < ARRAY_LEN(groups) && strcmp(groups[gi].name, gb) != 0)
            gi++;
        if (gi == ARRAY_LEN(groups)) {
            api_reply_error(c, ERR_INVALID_PARAMETER,
                            "group_by must be one of model, day, resolution, "
                            "key");
            return;
        }
    }
    const char *key = http_req_query(c->req, "key_id");
    if (key && (!key[0] || strlen(key) > TASK_KEY_ID_MAX)) {
        api_reply_error(c, ERR_INVALID_PARAMETER,
                        "key_id must be a key id of 1 to 64 characters");
        return;
    }
    bool others = (key && strcmp(key, c->key_id) != 0) ||
                  groups[gi].group == STORE_GROUP_KEY;
    if (others && !api_admin_only(c, "another key's usage (key_id, "
                                     "group_by=key)"))
        return;
    struct store_usage_query q = {
        /* group_by=key without key_id: every key */
        .key_id = key                                   ? key
                  : groups[gi].group == STORE_GROUP_KEY ? NULL
                                                        : c->key_id,
        .from_ms = from_ms,
        .to_ms = to_ms,
        .group = groups[gi].group,
    };
    int err = store_usage(a->d.store, &q, &rows, &n, &total);
    if (err < 0) {
        api_reply_error(c, err, "the usage ledger is unavailable; retry");
        return;
    }
    char start[24], end[24];
    clock_format(from_ms, a->d.conf->utc_offset_min, start);
    clock_format(to_ms, a->d.conf->utc_offset_min, end);
    buf_puts(&b, "{\"request_id\":");
    buf_json_str(&b, http_req_id(c->req));
    buf_puts(&b, ",\"output\":{\"start_time\":");
    buf_json_str(&b, start);
    buf_puts(&b, ",\"end_time\":");
    buf_json_str(&b, end);
    buf_puts(&b, ",\"group_by\":");
    buf_json_str(&b, groups[gi].name);
    buf_puts(&b, ",\"key_id\":");
    if (q.key_id)
        buf_json_str(&b, q.key_id);
    else
        buf_puts(&b, "null");
    buf_puts(&b, ",\"total\":{");
    put_sums(&b, &total);
    buf_puts(&b, "},\"rows\":[");
    for (size_t i = 0; i < n; i++) {
        buf_printf(&b, "%s{\"%s\":", i ? "," : "", groups[gi].field);
        put_group(&b, q.group, rows[i].group);
        buf_putc(&b, ',');
        put_sums(&b, &rows[i]);
        buf_putc(&b, '}');
    }
    buf_puts(&b, "]}}");
    api_reply_json(c, 200, &b);
    free(rows);
}
