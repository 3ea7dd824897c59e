/*
 * The PostgreSQL backend's API keys (store_key_put, store_key_list) and
 * its named secrets (store_secret), on a connection of the pool. A key's
 * balance is read as what was set less what was spent since (the
 * accounts row the ledger's triggers keep, migration 7).
 */
#include "pg_int.h"

#include <string.h>

static const struct {
    const char *what, *sql;
} stmts[PG_ST__COUNT] = {
    [PG_ST_KEY_PUT] = { "key_put",
                        "INSERT INTO keys (key_id, salt, hash, name, "
                        "created_ms, revoked_ms, scenario, admin, "
                        "quota_kind, quota_limit, quota_period, balance, "
                        "balance_base) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
                        "$11, CASE WHEN $12 THEN $13::bigint ELSE -1 END, "
                        "CASE WHEN $12 THEN coalesce((SELECT spent FROM "
                        "accounts WHERE key_id = $1), 0) ELSE 0 END) "
                        "ON CONFLICT (key_id) DO UPDATE SET salt = "
                        "EXCLUDED.salt, "
                        "hash = EXCLUDED.hash, name = EXCLUDED.name, "
                        "created_ms = EXCLUDED.created_ms, "
                        "revoked_ms = EXCLUDED.revoked_ms, "
                        "scenario = EXCLUDED.scenario, "
                        "admin = EXCLUDED.admin, "
                        "quota_kind = EXCLUDED.quota_kind, "
                        "quota_limit = EXCLUDED.quota_limit, "
                        "quota_period = EXCLUDED.quota_period, "
                        /* A balance set counts spending from now on. */
                        "balance = CASE WHEN $12 THEN EXCLUDED.balance "
                        "ELSE keys.balance END, "
                        "balance_base = CASE WHEN $12 THEN "
                        "EXCLUDED.balance_base ELSE keys.balance_base END" },
    [PG_ST_KEY_LIST] = { "key_list",
                         "SELECT k.key_id, k.salt, k.hash, k.name, "
                         "k.created_ms, k.revoked_ms, k.scenario, k.admin, "
                         "k.quota_kind, k.quota_limit, k.quota_period, "
                         "CASE WHEN k.balance < 0 THEN -1 ELSE k.balance - "
                         "(coalesce(a.spent, 0) - k.balance_base) END "
                         "FROM keys k LEFT JOIN accounts a ON a.key_id = "
                         "k.key_id ORDER BY k.created_ms, k.key_id" },
    [PG_ST_SECRET_PUT] = { "secret", "INSERT INTO secrets (name, value) "
                                     "VALUES ($1, $2) ON CONFLICT DO NOTHING" },
    [PG_ST_SECRET_GET] = { "secret",
                           "SELECT value FROM secrets WHERE name = $1" },
};

static int run(struct store_pg_conn *c, enum store_pg_stmt id,
               const struct store_pg_params *p, PGresult **out)
{
    return store_pg_run(c, id, stmts[id].what, stmts[id].sql, p, out);
}

/* A bytea column (hex output) into dst[0..n), zero-filled; its length. */
static size_t col_bytes(const PGresult *r, int row, int col, unsigned char *dst,
                        size_t n)
{
    memset(dst, 0, n);
    const char *v = PQgetvalue(r, row, col);
    if (PQgetisnull(r, row, col) || v[0] != '\\' || v[1] != 'x')
        return 0;
    size_t len = 0;
    for (v += 2; v[0] && v[1]; v += 2) {
        int hi = hex_value(v[0]), lo = hex_value(v[1]);
        if (hi < 0 || lo < 0)
            break;
        if (len < n)
            dst[len] = (unsigned char)(hi << 4 | lo);
        len++;
    }
    return len;
}

/* An upsert: idempotent, so it may run twice. */
static int key_put_on(struct store_pg_conn *c, void *arg)
{
    const struct store_key *k = arg;
    struct store_pg_params p = { 0 };
    PGresult *r;
    p_text(&p, k->key_id);
    p_bytes(&p, k->salt, sizeof(k->salt));
    p_bytes(&p, k->hash, sizeof(k->hash));
    p_text(&p, k->name);
    p_i64(&p, k->created_ms);
    p_i64(&p, k->revoked_ms);
    p_text(&p, k->scenario);
    p_i64(&p, k->admin);
    p_text(&p, store_quota_name(k->quota));
    p_i64(&p, k->quota_limit);
    p_text(&p, store_period_name(k->quota, k->period));
    p_text(&p, k->balance_set ? "true" : "false");
    p_i64(&p, k->balance);
    int ret = run(c, PG_ST_KEY_PUT, &p, &r);
    if (ret == 0)
        PQclear(r);
    return ret;
}

int store_pg_key_put(struct store_pg_pool *pool, const struct store_key *k)
{
    return store_pg_with(pool, key_put_on, (void *)k);
}

struct key_list {
    struct store_key *keys;
    size_t n;
};

static int key_list_on(struct store_pg_conn *c, void *arg)
{
    struct key_list *out = arg;
    PGresult *r;
    int ret = run(c, PG_ST_KEY_LIST, NULL, &r);
    if (ret < 0)
        return ret;
    int rows = PQntuples(r);
    struct store_key *keys =
        xcalloc(rows > 0 ? (size_t)rows : 1, sizeof(*keys));
    for (int i = 0; i < rows; i++) {
        struct store_key *k = &keys[i];
        col_copy(r, i, 0, k->key_id, sizeof(k->key_id));
        col_bytes(r, i, 1, k->salt, sizeof(k->salt));
        col_bytes(r, i, 2, k->hash, sizeof(k->hash));
        col_copy(r, i, 3, k->name, sizeof(k->name));
        k->created_ms = col_i64(r, i, 4);
        k->revoked_ms = col_i64(r, i, 5);
        col_copy(r, i, 6, k->scenario, sizeof(k->scenario));
        k->admin = col_i64(r, i, 7) != 0;
        k->quota = store_quota_parse(PQgetvalue(r, i, 8));
        k->quota_limit = col_i64(r, i, 9);
        k->period = store_period_parse(PQgetvalue(r, i, 10));
        k->balance = col_i64(r, i, 11);
    }
    PQclear(r);
    out->keys = keys;
    out->n = (size_t)rows;
    return 0;
}

int store_pg_key_list(struct store_pg_pool *pool, struct store_key **out,
                      size_t *n)
{
    struct key_list list = { 0 };
    int ret = store_pg_with(pool, key_list_on, &list);
    if (ret == 0) {
        *out = list.keys;
        *n = list.n;
    }
    return ret;
}

/* Insert a fresh secret unless one exists, then read the one that does
 * (two statements: the second sees a concurrent winner's row). */
struct secret {
    const char *name;
    unsigned char fresh[32], *out;
};

static int secret_on(struct store_pg_conn *c, void *arg)
{
    struct secret *sec = arg;
    struct store_pg_params p = { 0 };
    PGresult *r;
    p_text(&p, sec->name);
    p_bytes(&p, sec->fresh, sizeof(sec->fresh));
    int ret = run(c, PG_ST_SECRET_PUT, &p, &r);
    if (ret < 0)
        return ret;
    PQclear(r);
    p.n = 1;
    if ((ret = run(c, PG_ST_SECRET_GET, &p, &r)) < 0)
        return ret;
    if (PQntuples(r) != 1 || col_bytes(r, 0, 0, sec->out, 32) != 32)
        ret = store_pg_fail(c, r, "secret");
    PQclear(r);
    return ret;
}

int store_pg_secret(struct store_pg_pool *pool, const char *name,
                    unsigned char out[32])
{
    struct secret sec = { .name = name, .out = out };
    int ret = id_random(sec.fresh, sizeof(sec.fresh));
    return ret < 0 ? ret : store_pg_with(pool, secret_on, &sec);
}
