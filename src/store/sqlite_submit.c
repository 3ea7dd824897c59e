/*
 * The SQLite backend's submits: a batch of the group commit (store.c) in
 * one transaction, one fsync, on the writer. The limits read the queues
 * table (per-key counts kept by triggers), so a check is one row.
 */
#include "sqlite_int.h"

#include <string.h>

/* The statements of this file (sqlite_int.h). */
static const char *const sql[SQ_ST__COUNT] = {
    [SQ_ST_INSERT] = "INSERT INTO tasks (task_id, key_id, model, status, spec, "
                     "prompt, submit_ms, expire_ms, not_before) "
                     "VALUES (?1, ?2, ?3, 'PENDING', ?4, ?5, ?6, ?7, ?8)",
    [SQ_ST_IDEM_GET] = "SELECT body_hash, task_id FROM idem "
                       "WHERE key_id = ?1 AND idem_key = ?2 AND expire_ms > ?3",
    [SQ_ST_IDEM_PUT] = "INSERT OR REPLACE INTO idem (key_id, idem_key, "
                       "body_hash, task_id, expire_ms) "
                       "VALUES (?1, ?2, ?3, ?4, ?5)",
    [SQ_ST_KEY_ACTIVE] = "SELECT active FROM queues WHERE key_id = ?1",
    [SQ_ST_QUEUE_DEPTH] = "SELECT total(pending) FROM queues",
    /* Within quota and balance: as pg_007's paddock_quota_ok. */
    [SQ_ST_QUOTA_OK] =
        "SELECT coalesce((SELECT (k.quota_kind = '' OR (CASE k.quota_kind "
        "WHEN 'seconds' THEN coalesce(a.held_cs, 0) + coalesce(u.cs, 0) + ?3 "
        "ELSE coalesce(a.held_amount, 0) + coalesce(u.amount, 0) + ?4 END) "
        "<= k.quota_limit) AND (k.balance < 0 OR coalesce(a.held_amount, 0) "
        "+ ?4 <= k.balance - (coalesce(a.spent, 0) - k.balance_base)) "
        "FROM keys k LEFT JOIN accounts a ON a.key_id = k.key_id "
        "LEFT JOIN usage_totals u ON u.key_id = k.key_id AND u.period = "
        "CASE k.quota_period WHEN 'month' THEN 'M' || (CAST(strftime('%Y%m', "
        "?2 / 1000 + 28800, 'unixepoch') AS INTEGER)) ELSE 'D' || "
        "(CAST(strftime('%Y%m%d', ?2 / 1000 + 28800, 'unixepoch') AS "
        "INTEGER)) END WHERE k.key_id = ?1), 1)",
    [SQ_ST_HOLD] =
        "INSERT INTO ledger (task_id, phase, kind, key_id, model, "
        "resolution, edit, price, cs, amount, at_ms, day) VALUES (?1, 0, "
        "'hold', ?2, ?3, ?4, ?5, ?6, ?7, (?6 * ?7 + 50) / 100, ?8, "
        "CAST(strftime('%Y%m%d', ?8 / 1000 + 28800, 'unixepoch') AS "
        "INTEGER))",
};

static sqlite3_stmt *stmt(struct store_sqlite_conn *c,
                          enum store_sqlite_stmt id)
{
    return store_sqlite_stmt(c, id, sql[id]);
}

static int tx(struct store_sqlite_conn *c, const char *q, const char *what)
{
    return store_sqlite_tx(c, q, what);
}

/* The hold's amount: price per second times the seconds held. */
static int64_t hold_amount(const struct store_hold *h)
{
    return (h->price * h->cs + 50) / 100;
}

/* Would sub's hold keep its key within quota and balance? 1 yes, 0 no,
 * or ERR_STORE. */
static int quota_ok(struct store_sqlite_conn *w, const struct store_submit *sub)
{
    sqlite3_stmt *st = stmt(w, SQ_ST_QUOTA_OK);
    if (!st)
        return ERR_STORE;
    bind_text(st, 1, sub->task->key_id);
    sqlite3_bind_int64(st, 2, sub->task->submit_ms);
    sqlite3_bind_int64(st, 3, sub->hold.cs);
    sqlite3_bind_int64(st, 4, hold_amount(&sub->hold));
    int rc = sqlite3_step(st);
    int ok = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) != 0 : -1;
    stmt_done(st);
    return ok < 0 ? store_sqlite_fail(w->db, "quota") : ok;
}

static int hold_put(struct store_sqlite_conn *w, const struct store_submit *sub)
{
    const struct task *t = sub->task;
    sqlite3_stmt *st = stmt(w, SQ_ST_HOLD);
    if (!st)
        return ERR_STORE;
    bind_text(st, 1, t->task_id);
    bind_text(st, 2, t->key_id);
    bind_text(st, 3, t->model);
    sqlite3_bind_int(st, 4, sub->hold.resolution);
    sqlite3_bind_int(st, 5, sub->hold.edit);
    sqlite3_bind_int64(st, 6, sub->hold.price);
    sqlite3_bind_int64(st, 7, sub->hold.cs);
    sqlite3_bind_int64(st, 8, t->submit_ms);
    return store_sqlite_step_write(w, st, "hold", NULL);
}

/* One submit inside the batch transaction: its checks, then its rows.
 * 0 inserted, 1 replayed, or a negative code. */
static int submit_one(struct store_sqlite_conn *w,
                      const struct store_submit *sub, char *replay_id)
{
    const struct task *t = sub->task;
    sqlite3_stmt *st;
    int rc;

    if (sub->idem_key) {
        if (!(st = stmt(w, SQ_ST_IDEM_GET)))
            return ERR_STORE;
        bind_text(st, 1, t->key_id);
        bind_text(st, 2, sub->idem_key);
        sqlite3_bind_int64(st, 3, t->submit_ms);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            bool same =
                sqlite3_column_bytes(st, 0) == 32 &&
                memcmp(sqlite3_column_blob(st, 0), sub->body_hash, 32) == 0;
            copy_col(st, 1, replay_id, UUID_STR_LEN + 1);
            stmt_done(st);
            return same ? 1 : ERR_IDEMPOTENCY_CONFLICT;
        }
        stmt_done(st);
        if (rc != SQLITE_DONE)
            return store_sqlite_fail(w->db, "idempotency");
    }
    if ((rc = quota_ok(w, sub)) <= 0)
        return rc < 0 ? rc : ERR_ARREARAGE;
    if (sub->max_active > 0) {
        if (!(st = stmt(w, SQ_ST_KEY_ACTIVE)))
            return ERR_STORE;
        bind_text(st, 1, t->key_id);
        rc = sqlite3_step(st);
        int64_t active = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        stmt_done(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return store_sqlite_fail(w->db, "quota");
        if (active >= sub->max_active)
            return ERR_ALLOCATION_QUOTA;
    }
    if (sub->max_queue > 0) {
        if (!(st = stmt(w, SQ_ST_QUEUE_DEPTH)))
            return ERR_STORE;
        rc = sqlite3_step(st);
        int64_t depth = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        stmt_done(st);
        if (rc != SQLITE_ROW)
            return store_sqlite_fail(w->db, "queue depth");
        if (depth >= sub->max_queue)
            return ERR_THROTTLING;
    }
    if (!(st = stmt(w, SQ_ST_INSERT)))
        return ERR_STORE;
    bind_text(st, 1, t->task_id);
    bind_text(st, 2, t->key_id);
    bind_text(st, 3, t->model);
    bind_text(st, 4, t->spec);
    bind_text(st, 5, t->prompt);
    sqlite3_bind_int64(st, 6, t->submit_ms);
    sqlite3_bind_int64(st, 7, t->expire_ms);
    sqlite3_bind_int64(st, 8, t->not_before_ms);
    if ((rc = store_sqlite_step_write(w, st, "insert", NULL)) < 0 ||
        (rc = hold_put(w, sub)) < 0)
        return rc;
    if (sub->idem_key) {
        if (!(st = stmt(w, SQ_ST_IDEM_PUT)))
            return ERR_STORE;
        bind_text(st, 1, t->key_id);
        bind_text(st, 2, sub->idem_key);
        sqlite3_bind_blob(st, 3, sub->body_hash, 32, SQLITE_STATIC);
        bind_text(st, 4, t->task_id);
        sqlite3_bind_int64(st, 5, t->expire_ms);
        if ((rc = store_sqlite_step_write(w, st, "idempotency", NULL)) < 0)
            return rc;
    }
    return 0;
}

/* Commit a batch of submits in one transaction (one fsync); each runs in
 * a savepoint so one refused submit does not undo the others. */
void store_sqlite_submit_batch(struct store_sqlite_conn *w,
                               struct store_batch_req *batch)
{
    int rc = tx(w, "BEGIN IMMEDIATE", "submit");
    for (struct store_batch_req *r = batch; r; r = r->next) {
        if (rc < 0) {
            r->ret = rc;
            continue;
        }
        if (tx(w, "SAVEPOINT one", "submit") < 0) {
            r->ret = ERR_STORE;
            continue;
        }
        r->ret = submit_one(w, r->sub, r->replay_id);
        if (r->ret < 0)
            tx(w, "ROLLBACK TO one", "submit");
        tx(w, "RELEASE one", "submit");
    }
    if (rc == 0 && tx(w, "COMMIT", "submit commit") < 0) {
        tx(w, "ROLLBACK", "submit rollback");
        for (struct store_batch_req *r = batch; r; r = r->next)
            r->ret = ERR_STORE;
    }
}
