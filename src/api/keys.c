/*
 * The keys API (docs/extensions.md, "Usage"): POST /api/v1/keys mints a
 * key (its secret shown once), GET lists them (no secrets), PATCH changes
 * name, admin, quota, scenario or revokes, DELETE removes the record. Admin
 * keys only. A change is reloaded into this node's keys at once (a revoked
 * key is refused from the next request on); other nodes reload every
 * second.
 */
#include "api_int.h"

#include "../auth/auth.h"
#include "../conf/conf.h"
#include "../log/log.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The fields a key's body may set; *_set: the body had it. */
struct key_body {
    const char *name;
    bool name_set, admin, admin_set, revoked, revoked_set;
    const char *scenario;
    bool scenario_set;
    bool quota_set; /* quota given (null or {} clears it) */
    enum store_quota quota;
    int64_t quota_limit;
    enum store_period period;
    bool balance_set;
    int64_t balance; /* -1: none */
};

/* An amount: a decimal string ("12.5") or an integer; micro-units. */
static bool amount_of(const json_t *v, int64_t max, int64_t *out)
{
    char text[40];
    if (json_is_integer(v))
        snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(v));
    else if (json_is_string(v) && json_string_length(v) < sizeof(text))
        snprintf(text, sizeof(text), "%s", json_string_value(v));
    else
        return false;
    return conf_parse_amount(text, max, out) == 0;
}

static int parse_quota(const json_t *q, struct key_body *k, struct errmsg *e)
{
    k->quota_set = true;
    k->quota = STORE_QUOTA_NONE;
    k->balance_set = true;
    k->balance = -1;
    if (json_is_null(q))
        return 0;
    if (!json_is_object(q))
        return errmsg_set(e, ERR_INVALID_PARAMETER,
                          "quota must be an object: {\"seconds\":N,"
                          "\"period\":\"day\"}, {\"amount\":\"12.5\","
                          "\"period\":\"month\"} and/or {\"balance\":\"10\"}");
    const char *field;
    json_t *v;
    json_object_foreach((json_t *)q, field, v)
    {
        if (strcmp(field, "seconds") && strcmp(field, "amount") &&
            strcmp(field, "period") && strcmp(field, "balance"))
            return errmsg_set(e, ERR_INVALID_PARAMETER,
                              "quota.%.40s is not a field: expected seconds, "
                              "amount, period, balance",
                              field);
    }
    const json_t *sec = json_object_get(q, "seconds");
    const json_t *amt = json_object_get(q, "amount");
    const json_t *per = json_object_get(q, "period");
    const json_t *bal = json_object_get(q, "balance");
    if (sec && amt)
        return errmsg_set(e, ERR_INVALID_PARAMETER,
                          "quota takes seconds or amount, not both");
    if (sec) {
        if (!json_is_integer(sec) || json_integer_value(sec) < 1 ||
            json_integer_value(sec) > LIMIT_QUOTA / 100)
            return errmsg_set(e, ERR_INVALID_PARAMETER,
                              "quota.seconds must be an integer from 1 to "
                              "%lld",
                              LIMIT_QUOTA / 100);
        k->quota = STORE_QUOTA_SECONDS;
        k->quota_limit = json_integer_value(sec) * 100;
    } else if (amt) {
        if (!amount_of(amt, LIMIT_QUOTA, &k->quota_limit))
            return errmsg_set(e, ERR_INVALID_PARAMETER,
                              "quota.amount must be an amount with at most 6 "
                              "decimals, as a string (\"12.5\") or an "
                              "integer, up to %lld",
                              LIMIT_QUOTA / 1000000);
        k->quota = STORE_QUOTA_AMOUNT;
    }
    if (k->quota != STORE_QUOTA_NONE) {
        const char *p = json_string_value(per);
        if (!p || (strcmp(p, "day") && strcmp(p, "month")))
            return errmsg_set(e, ERR_INVALID_PARAMETER,
                              "quota.period must be \"day\" or \"month\" "
                              "(calendar periods in UTC+8)");
        k->period =
            strcmp(p, "month") == 0 ? STORE_PERIOD_MONTH : STORE_PERIOD_DAY;
    } else if (per) {
        return errmsg_set(e, ERR_INVALID_PARAMETER,
                          "quota.period goes with quota.seconds or "
                          "quota.amount");
    }
    if (bal && !amount_of(bal, LIMIT_QUOTA, &k->balance))
        return errmsg_set(e, ERR_INVALID_PARAMETER,
                          "quota.balance must be an amount with at most 6 "
                          "decimals, as a string (\"10.5\") or an integer");
    return 0;
}

/* The body of a POST or PATCH: 0, or ERR_INVALID_PARAMETER naming the
 * field. */
static int parse_body(struct call *c, bool patch, struct key_body *k,
                      struct errmsg *e)
{
    size_t len;
    const char *body = http_req_body(c->req, &len);
    memset(k, 0, sizeof(*k));
    if (len == 0 && !patch)
        return 0;
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    int ret = 0;
    if (!json_is_object(root)) {
        ret = errmsg_set(e, ERR_INVALID_PARAMETER,
                         "the body must be a JSON object (%.100s)",
                         root ? "not an object" : jerr.text);
        goto out;
    }
    const char *field;
    json_t *v;
    json_object_foreach(root, field, v)
    {
        if (strcmp(field, "name") == 0) {
            const char *s = json_string_value(v);
            if (!s || strlen(s) >= sizeof(((struct store_key *)0)->name) ||
                !utf8_valid(s, strlen(s))) {
                ret = errmsg_set(e, ERR_INVALID_PARAMETER,
                                 "name must be a string of at most 63 bytes");
                goto out;
            }
            k->name = s;
            k->name_set = true;
        } else if (strcmp(field, "admin") == 0 ||
                   (patch && strcmp(field, "revoked") == 0)) {
            bool is_admin = field[0] == 'a';
            if (!json_is_boolean(v) || (!is_admin && !json_is_true(v))) {
                ret = errmsg_set(e, ERR_INVALID_PARAMETER,
                                 is_admin ? "admin must be true or false"
                                          : "revoked must be true (a revoked "
                                            "key cannot be restored: create "
                                            "a new one)");
                goto out;
            }
            if (is_admin) {
                k->admin = json_is_true(v);
                k->admin_set = true;
            } else {
                k->revoked = k->revoked_set = true;
            }
        } else if (strcmp(field, "scenario") == 0) {
            const char *s = json_string_value(v);
            struct task_scenario sc = { 0 };
            if (!s || strlen(s) > LIMIT_SCENARIO_BYTES) {
                ret = errmsg_set(e, ERR_INVALID_PARAMETER,
                                 "scenario must be a string of at most %d "
                                 "bytes",
                                 LIMIT_SCENARIO_BYTES);
                goto out;
            }
            if (s[0] && (ret = task_scenario_parse(&sc, s, strlen(s),
                                                   "scenario", e)) < 0)
                goto out;
            k->scenario = s;
            k->scenario_set = true;
        } else if (strcmp(field, "quota") == 0) {
            if ((ret = parse_quota(v, k, e)) < 0)
                goto out;
        } else {
            ret = errmsg_set(e, ERR_INVALID_PARAMETER,
                             "%.40s is not a field: expected name, admin, "
                             "quota, scenario%s",
                             field, patch ? ", revoked" : "");
            goto out;
        }
    }
    /* Keep the strings: root lives until the reply (c's request). */
    if (ret == 0) {
        k->name = k->name ? xstrdup(k->name) : NULL;
        k->scenario = k->scenario ? xstrdup(k->scenario) : NULL;
    }
out:
    json_decref(root);
    return ret;
}

static void body_fini(struct key_body *k)
{
    free((char *)k->name);
    free((char *)k->scenario);
}

static void apply(struct store_key *rec, const struct key_body *k)
{
    if (k->name_set)
        snprintf(rec->name, sizeof(rec->name), "%s", k->name);
    if (k->admin_set)
        rec->admin = k->admin;
    if (k->scenario_set)
        snprintf(rec->scenario, sizeof(rec->scenario), "%s", k->scenario);
    if (k->quota_set) {
        rec->quota = k->quota;
        rec->quota_limit = k->quota_limit;
        rec->period = k->period;
        rec->balance = k->balance;
        rec->balance_set = k->balance_set;
    }
    if (k->revoked_set && !rec->revoked_ms)
        rec->revoked_ms = clock_now_ms();
}

static void put_quota(struct buf *b, const struct store_key *k)
{
    bool any = false;
    buf_putc(b, '{');
    if (k->quota == STORE_QUOTA_SECONDS) {
        buf_printf(b, "\"seconds\":%lld", (long long)(k->quota_limit / 100));
        any = true;
    } else if (k->quota == STORE_QUOTA_AMOUNT) {
        buf_puts(b, "\"amount\":\"");
        api_put_amount(b, k->quota_limit);
        buf_putc(b, '"');
        any = true;
    }
    if (any)
        buf_printf(b, ",\"period\":\"%s\"",
                   k->period == STORE_PERIOD_MONTH ? "month" : "day");
    if (k->balance >= 0) {
        buf_printf(b, "%s\"balance\":\"", any ? "," : "");
        api_put_amount(b, k->balance);
        buf_putc(b, '"');
    }
    buf_putc(b, '}');
}

/* A key's fields (no secret), inside an object already opened. */
static void put_key(struct buf *b, const struct store_key *k, int offset_min)
{
    char created[24], revoked[24];
    clock_format(k->created_ms, offset_min, created);
    buf_puts(b, "\"key_id\":");
    buf_json_str(b, k->key_id);
    buf_puts(b, ",\"name\":");
    buf_json_str(b, k->name);
    buf_printf(b, ",\"admin\":%s,\"quota\":", k->admin ? "true" : "false");
    put_quota(b, k);
    buf_puts(b, ",\"scenario\":");
    buf_json_str(b, k->scenario);
    buf_puts(b, ",\"created_time\":");
    buf_json_str(b, created);
    buf_printf(b, ",\"revoked\":%s", k->revoked_ms ? "true" : "false");
    if (k->revoked_ms) {
        clock_format(k->revoked_ms, offset_min, revoked);
        buf_puts(b, ",\"revoked_time\":");
        buf_json_str(b, revoked);
    }
}

static void reply_key(struct call *c, const struct store_key *k,
                      const char *secret)
{
    struct buf b = BUF_INIT;
    buf_puts(&b, "{\"request_id\":");
    buf_json_str(&b, http_req_id(c->req));
    buf_puts(&b, ",\"output\":{");
    put_key(&b, k, c->api->d.conf->utc_offset_min);
    if (secret) {
        buf_puts(&b, ",\"key\":");
        buf_json_str(&b, secret);
    }
    buf_puts(&b, "}}");
    api_reply_json(c, 200, &b);
}

/* Make what changed count on this node now (the others within their
 * next reload, a second). */
static void reload(struct call *c)
{
    if (auth_reload(c->api->d.auth, c->api->d.store) < 0)
        log_warn("cannot reload API keys", "request_id=%s",
                 http_req_id(c->req));
}

void api_keys_create(struct call *c)
{
    struct key_body k;
    struct errmsg e = { 0 };
    struct store_key rec = { 0 };
    char secret[AUTH_SECRET_MAX];
    if (!api_admin_only(c, "the keys API"))
        return;
    if (parse_body(c, false, &k, &e) < 0) {
        api_reply_errmsg(c, &e);
        return;
    }
    if (auth_key_mint(k.name, &rec, secret) < 0) {
        api_reply_error(c, ERR_INTERNAL, "no randomness for the key");
        goto out;
    }
    rec.balance = -1;
    rec.balance_set = true;
    apply(&rec, &k);
    if (store_key_put(c->api->d.store, &rec) < 0) {
        api_reply_error(c, ERR_STORE, "the key could not be stored; retry");
        goto out;
    }
    reload(c);
    reply_key(c, &rec, secret);
out:
    explicit_bzero(secret, sizeof(secret));
    body_fini(&k);
}

void api_keys_list(struct call *c)
{
    struct store_key *keys = NULL;
    size_t n = 0;
    if (!api_admin_only(c, "the keys API"))
        return;
    if (store_key_list(c->api->d.store, &keys, &n) < 0) {
        api_reply_error(c, ERR_STORE, "the keys are unavailable; retry");
        return;
    }
    size_t shown = n < LIMIT_KEYS_LISTED ? n : LIMIT_KEYS_LISTED;
    struct buf b = BUF_INIT;
    buf_puts(&b, "{\"request_id\":");
    buf_json_str(&b, http_req_id(c->req));
    buf_printf(&b, ",\"output\":{\"total\":%zu,\"keys\":[", n);
    for (size_t i = 0; i < shown; i++) {
        buf_puts(&b, i ? ",{" : "{");
        put_key(&b, &keys[i], c->api->d.conf->utc_offset_min);
        buf_putc(&b, '}');
    }
    buf_puts(&b, "]}}");
    api_reply_json(c, 200, &b);
    free(keys);
}

/* The record of c->arg into *out: false when answered (404). */
static bool find_key(struct call *c, struct store_key *out)
{
    struct store_key *keys = NULL;
    size_t n = 0;
    bool found = false;
    if (store_key_list(c->api->d.store, &keys, &n) < 0) {
        api_reply_error(c, ERR_STORE, "the keys are unavailable; retry");
        return false;
    }
    for (size_t i = 0; i < n && !found; i++)
        if (strcmp(keys[i].key_id, c->arg) == 0) {
            *out = keys[i];
            found = true;
        }
    free(keys);
    if (!found) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "no key %.64s in the store (keys given by --api-key are "
                 "managed in the configuration)",
                 c->arg);
        api_reply_error(c, ERR_NOT_FOUND, msg);
    }
    return found;
}

void api_keys_patch(struct call *c)
{
    struct key_body k;
    struct errmsg e = { 0 };
    struct store_key rec;
    if (!api_admin_only(c, "the keys API"))
        return;
    if (parse_body(c, true, &k, &e) < 0) {
        api_reply_errmsg(c, &e);
        return;
    }
    if (!find_key(c, &rec))
        goto out;
    rec.balance_set = false;
    apply(&rec, &k);
    if (store_key_put(c->api->d.store, &rec) < 0) {
        api_reply_error(c, ERR_STORE, "the key could not be stored; retry");
        goto out;
    }
    reload(c);
    reply_key(c, &rec, NULL); /* a balance just set is what is left */
out:
    body_fini(&k);
}

void api_keys_delete(struct call *c)
{
    struct store_key rec;
    if (!api_admin_only(c, "the keys API") || !find_key(c, &rec))
        return;
    if (store_key_delete(c->api->d.store, rec.key_id) < 0) {
        api_reply_error(c, ERR_STORE, "the key could not be deleted; retry");
        return;
    }
    reload(c);
    struct buf b = BUF_INIT;
    buf_puts(&b, "{\"request_id\":");
    buf_json_str(&b, http_req_id(c->req));
    buf_puts(&b, ",\"output\":{\"key_id\":");
    buf_json_str(&b, rec.key_id);
    buf_puts(&b, ",\"deleted\":true}}");
    api_reply_json(c, 200, &b);
}
