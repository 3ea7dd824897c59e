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
    if ((rc = store_sqlite_step_write(w, st, "insert", NULL)) < 0)
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
