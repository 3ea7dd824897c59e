/*
 * The PostgreSQL backend's webhooks: endpoints and the outbox of their
 * deliveries (store.h, "webhooks"). Migration 005's trigger writes the
 * rows in the transaction of each status change and notifies
 * PG_HOOKS_CHANNEL; claims take due rows FOR UPDATE SKIP LOCKED, so
 * deliverers on many nodes never take the same row at once.
 */
#include "pg_int.h"

#include <string.h>

#define HOOK_COLS \
    "webhook_id, key_id, url, events, secret, created_ms, disabled_ms"
#define DLV_COLS                                                             \
    "d.delivery_id, d.webhook_id, d.task_id, d.event, d.state, d.attempts, " \
    "d.created_ms, d.next_ms, d.updated_ms, d.code, d.error, d.ts, d.body"

/* One statement on a pooled connection, once more if the connection died
 * and the statement may run twice: 0 with *out, or the error. */
static int one(struct store *base, const char *sql,
               const struct store_pg_params *p, bool idempotent,
               const char *what, PGresult **out)
{
    struct store_pg *s = store_pg_of(base);
    int ret, tries = idempotent ? 0 : 1;
    bool retry;
    *out = NULL;
    do {
        struct store_pg_conn *c = store_pg_pool_get(&s->pool);
        if (!c)
            return ERR_STORE;
        ret = store_pg_sql(c, sql, p, what, out);
        retry = store_pg_again(c, ret, &tries);
        store_pg_pool_put(&s->pool, c);
    } while (retry);
    return ret;
}

static int changes(const PGresult *r)
{
    return (int)strtol(PQcmdTuples((PGresult *)r), NULL, 10);
}

static void row_hook(const PGresult *r, int i, struct store_hook *h)
{
    memset(h, 0, sizeof(*h));
    col_copy(r, i, 0, h->webhook_id, sizeof(h->webhook_id));
    col_copy(r, i, 1, h->key_id, sizeof(h->key_id));
    col_copy(r, i, 2, h->url, sizeof(h->url));
    h->events = (unsigned)col_i64(r, i, 3);
    col_copy(r, i, 4, h->secret, sizeof(h->secret));
    h->created_ms = col_i64(r, i, 5);
    h->disabled_ms = col_i64(r, i, 6);
}

static void row_delivery(const PGresult *r, int i, struct store_delivery *d,
                         bool claimed)
{
    memset(d, 0, sizeof(*d));
    col_copy(r, i, 0, d->delivery_id, sizeof(d->delivery_id));
    col_copy(r, i, 1, d->webhook_id, sizeof(d->webhook_id));
    col_copy(r, i, 2, d->task_id, sizeof(d->task_id));
    col_copy(r, i, 3, d->event, sizeof(d->event));
    d->state = (int)col_i64(r, i, 4);
    d->attempts = (int)col_i64(r, i, 5);
    d->created_ms = col_i64(r, i, 6);
    d->next_ms = col_i64(r, i, 7);
    d->updated_ms = col_i64(r, i, 8);
    d->code = (int)col_i64(r, i, 9);
    col_copy(r, i, 10, d->error, sizeof(d->error));
    d->ts = col_i64(r, i, 11);
    if (claimed) {
        if (!PQgetisnull(r, i, 12))
            d->body =
                xstrndup(PQgetvalue(r, i, 12), (size_t)PQgetlength(r, i, 12));
        col_copy(r, i, 13, d->url, sizeof(d->url));
        col_copy(r, i, 14, d->secret, sizeof(d->secret));
        col_copy(r, i, 15, d->key_id, sizeof(d->key_id));
    }
}

/* Two concurrent creates may both pass the count: it bounds, it is not
 * an exact count. */
int store_pg_hook_put(struct store *base, const struct store_hook *h, int max)
{
    struct store_pg_params p = { 0 };
    PGresult *r;
    p_text(&p, h->webhook_id);
    p_text(&p, h->key_id);
    p_text(&p, h->url);
    p_i64(&p, h->events);
    p_text(&p, h->secret);
    p_i64(&p, h->created_ms);
    p_i64(&p, h->disabled_ms);
    p_i64(&p, max > 0 ? max : INT32_MAX);
    int ret = one(base,
                  "INSERT INTO webhooks (" HOOK_COLS ") SELECT $1, $2, $3, "
                  "$4, $5, $6, $7 WHERE (SELECT count(*) FROM webhooks WHERE "
                  "key_id = $2) < $8",
                  &p, false, "hook_put", &r);
    if (ret == 0) {
        ret = changes(r) == 1 ? 0 : ERR_ALLOCATION_QUOTA;
        PQclear(r);
    }
    return ret;
}

int store_pg_hook_list(struct store *base, const char *key_id,
                       struct store_hook **out, size_t *n)
{
    struct store_pg_params p = { 0 };
    PGresult *r;
    p_text(&p, key_id);
    int ret = one(base,
                  "SELECT " HOOK_COLS " FROM webhooks WHERE key_id = $1 "
                  "ORDER BY created_ms, webhook_id",
                  &p, true, "hook_list", &r);
    if (ret < 0)
        return ret;
    int rows = PQntuples(r);
    *out = xcalloc(rows > 0 ? (size_t)rows : 1, sizeof(**out));
    for (int i = 0; i < rows; i++)
        row_hook(r, i, &(*out)[i]);
    *n = (size_t)rows;
    PQclear(r);
    return 0;
}

int store_pg_hook_get(struct store *base, const char *webhook_id,
                      const char *key_id, struct store_hook *out)
{
    struct store_pg_params p = { 0 };
    PGresult *r;
    p_text(&p, webhook_id);
    p_text(&p, key_id);
    int ret = one(base,
                  "SELECT " HOOK_COLS " FROM webhooks WHERE webhook_id = $1 "
                  "AND key_id = $2",
                  &p, true, "hook_get", &r);
    if (ret < 0)
        return ret;
    if (PQntuples(r) == 1)
        row_hook(r, 0, out);
    else
        ret = ERR_NOT_FOUND;
    PQclear(r);
    return ret;
}

int store_pg_hook_delete(struct store *base, const char *webhook_id,
                         const char *key_id)
{
    struct store_pg_params p = { 0 };
    PGresult *r;
    p_text(&p, webhook_id);
    p_text(&p, key_id);
    int ret = one(base,
                  "WITH h AS (DELETE FROM webhooks WHERE webhook_id = $1 AND "
                  "key_id = $2 RETURNING webhook_id), d AS (DELETE FROM "
                  "deliveries WHERE webhook_id IN (SELECT webhook_id FROM h)) "
                  "SELECT count(*) FROM h",
                  &p, true, "hook_delete", &r);
    if (ret < 0)
        return ret;
    if (PQntuples(r) != 1 || col_i64(r, 0, 0) == 0)
        ret = ERR_NOT_FOUND;
    PQclear(r);
    return ret;
}

int store_pg_hook_disable(struct store *base, const char *webhook_id,
                          int64_t now_ms)
{
    struct store_pg_params p = { 0 };
    PGresult *r;
    p_text(&p, webhook_id);
    p_i64(&p, now_ms);
    int ret = one(base,
                  "WITH h AS (UPDATE webhooks SET disabled_ms = $2 WHERE "
                  "webhook_id = $1 AND disabled_ms = 0 RETURNING webhook_id) "
                  "UPDATE deliveries SET state = 2, updated_ms = $2, error = "
                  "'endpoint disabled (410 Gone)' WHERE webhook_id IN (SELECT "
                  "webhook_id FROM h) AND state = 0",
                  &p, true, "hook_disable", &r);
    PQclear(r);
    return ret;
}

int store_pg_delivery_claim(struct store *base, const char *owner,
                            int64_t now_ms, int64_t lease_ms,
                            struct store_delivery *out, size_t max, size_t *n)
{
    struct store_pg_params p = { 0 };
    PGresult *r;
    p_i64(&p, now_ms);
    p_i64(&p, (int64_t)max);
    p_text(&p, owner);
    p_i64(&p, now_ms + lease_ms);
    int ret = one(
        base,
        "WITH c AS (SELECT d.seq FROM deliveries d JOIN webhooks w ON "
        "w.webhook_id = d.webhook_id WHERE d.state = 0 AND d.next_ms <= $1 "
        "AND d.lease_until < $1 AND w.disabled_ms = 0 ORDER BY d.next_ms, "
        "d.seq LIMIT $2 FOR UPDATE OF d SKIP LOCKED) UPDATE deliveries d SET "
        "lease_owner = $3, lease_until = $4 FROM c, webhooks w WHERE d.seq = "
        "c.seq AND w.webhook_id = d.webhook_id RETURNING " DLV_COLS
        ", w.url, w.secret, w.key_id",
        &p, true, "delivery_claim", &r);
    if (ret < 0)
        return ret;
    int rows = PQntuples(r);
    for (int i = 0; i < rows && (size_t)i < max; i++)
        row_delivery(r, i, &out[i], true);
    *n = (size_t)rows < max ? (size_t)rows : max;
    PQclear(r);
    return 0;
}

int store_pg_delivery_settle(struct store *base, const char *owner,
                             const struct store_delivery *d, size_t n)
{
    struct store_pg *s = store_pg_of(base);
    struct store_pg_conn *c = store_pg_pool_get(&s->pool);
    if (!c)
        return ERR_STORE;
    int ret = store_pg_sql(c, "BEGIN", NULL, "delivery_settle", NULL);
    for (size_t i = 0; i < n && ret == 0; i++) {
        struct store_pg_params p = { 0 };
        PGresult *r = NULL;
        p_text(&p, d[i].delivery_id);
        p_text(&p, owner);
        p_i64(&p, d[i].state);
        p_i64(&p, d[i].attempts);
        p_i64(&p, d[i].next_ms);
        p_i64(&p, d[i].code);
        p_text(&p, d[i].error);
        p_i64(&p, d[i].updated_ms);
        p_text(&p, d[i].body);
        p_i64(&p, d[i].ts);
        ret = store_pg_sql(
            c,
            "UPDATE deliveries SET state = $3, attempts = $4, next_ms = $5, "
            "code = $6, error = $7, updated_ms = $8, body = coalesce(body, "
            "$9), ts = CASE WHEN ts = 0 THEN $10 ELSE ts END, lease_owner = "
            "NULL, lease_until = 0 WHERE delivery_id = $1 AND lease_owner = $2",
            &p, "delivery_settle", &r);
        PQclear(r);
    }
    if (ret == 0)
        ret = store_pg_sql(c, "COMMIT", NULL, "delivery_settle", NULL);
    else if (!c->bad)
        store_pg_sql(c, "ROLLBACK", NULL, "delivery_settle", NULL);
    store_pg_pool_put(&s->pool, c);
    return ret;
}

int store_pg_delivery_list(struct store *base, const char *webhook_id,
                           int64_t offset, int64_t limit,
                           struct store_delivery **out, size_t *n,
                           int64_t *total)
{
    struct store_pg_params p = { 0 };
    PGresult *r;
    p_text(&p, webhook_id);
    p_i64(&p, limit);
    p_i64(&p, offset);
    int ret = one(base,
                  "SELECT " DLV_COLS " FROM deliveries d "
                  "WHERE d.webhook_id = $1 ORDER BY d.seq DESC LIMIT $2 "
                  "OFFSET $3",
                  &p, true, "delivery_list", &r);
    if (ret < 0)
        return ret;
    int rows = PQntuples(r);
    *out = xcalloc(rows > 0 ? (size_t)rows : 1, sizeof(**out));
    for (int i = 0; i < rows; i++)
        row_delivery(r, i, &(*out)[i], false);
    *n = (size_t)rows;
    PQclear(r);
    p.n = 1;
    ret = one(base, "SELECT count(*) FROM deliveries WHERE webhook_id = $1", &p,
              true, "delivery_list", &r);
    if (ret == 0) {
        *total = col_i64(r, 0, 0);
        PQclear(r);
    } else {
        for (size_t i = 0; i < *n; i++)
            store_delivery_fini(&(*out)[i]);
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return ret;
}

int store_pg_delivery_retry(struct store *base, const char *webhook_id,
                            const char *delivery_id, int64_t now_ms)
{
    struct store_pg_params p = { 0 };
    PGresult *r;
    p_text(&p, webhook_id);
    p_text(&p, delivery_id);
    p_i64(&p, now_ms);
    int ret = one(base,
                  "WITH d AS (UPDATE deliveries SET state = 0, next_ms = $3, "
                  "updated_ms = $3 WHERE webhook_id = $1 AND delivery_id = $2 "
                  "RETURNING 1) SELECT count(*), pg_notify('" PG_HOOKS_CHANNEL
                  "', '') FROM d",
                  &p, true, "delivery_retry", &r);
    if (ret < 0)
        return ret;
    if (PQntuples(r) != 1 || col_i64(r, 0, 0) == 0)
        ret = ERR_NOT_FOUND;
    PQclear(r);
    return ret;
}

int store_pg_delivery_purge(struct store *base, int64_t before_ms, int limit,
                            int *n)
{
    struct store_pg_params p = { 0 };
    PGresult *r;
    p_i64(&p, before_ms);
    p_i64(&p, limit);
    int ret = one(base,
                  "DELETE FROM deliveries WHERE seq IN (SELECT seq FROM "
                  "deliveries WHERE state <> 0 AND updated_ms < $1 LIMIT $2)",
                  &p, true, "delivery_purge", &r);
    if (ret == 0) {
        *n = changes(r);
        PQclear(r);
    }
    return ret;
}

int store_pg_wait_hooks(struct store *base, uint64_t *seen, int timeout_ms)
{
    return store_pg_listen_wait(&store_pg_of(base)->listen, true, seen,
                                timeout_ms);
}
