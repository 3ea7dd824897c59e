/*
 * The SQLite backend's claims: the key whose turn it is (the queues table)
 * gives its oldest PENDING task that is past its delay (tasks.not_before, a
 * sandbox scenario's queue); a key whose pending tasks all wait gives its
 * turn to the next key that has one ready. On the writer, which the caller
 * holds.
 */
#include "sqlite_int.h"

#include "../log/log.h"

#include <string.h>

/* The claim's common SET: ?1 now, ?2 owner, ?3 lease end. */
#define CLAIM_SET                                 \
    "UPDATE tasks SET status = 'RUNNING', "       \
    "scheduled_ms = COALESCE(scheduled_ms, ?1), " \
    "attempt = attempt + 1, lease_owner = ?2, lease_until = ?3 "

/* The first key in turn order with a ready task matching COND (on t), and
 * that task. */
#define FIRST_READY(cond)                                               \
    "WHERE id = (SELECT (SELECT t.id FROM tasks t WHERE "               \
    "t.status = 'PENDING' AND t.key_id = q.key_id AND t.not_before <= " \
    "?1 " cond " ORDER BY t.id LIMIT 1) AS first "                      \
    "FROM queues q WHERE q.pending > 0 AND first IS NOT NULL "          \
    "ORDER BY q.turn, q.key_id LIMIT 1) RETURNING " SQ_TASK_COLS

/* The statements of this file (sqlite_int.h). */
static const char *const sql[SQ_ST__COUNT] = {
    [SQ_ST_NEXT_KEY] = "SELECT key_id FROM queues WHERE pending > 0 "
                       "ORDER BY turn, key_id LIMIT 1",
    [SQ_ST_TURN] = "UPDATE queues SET turn = "
                   "(SELECT max(turn) FROM queues) + 1 WHERE key_id = ?1",
    [SQ_ST_FIX_PENDING] = "UPDATE queues SET pending = (SELECT count(*) FROM "
                          "tasks WHERE key_id = ?1 AND status = 'PENDING') "
                          "WHERE key_id = ?1",
    [SQ_ST_HAS_PENDING] = "SELECT EXISTS (SELECT 1 FROM tasks WHERE "
                          "key_id = ?1 AND status = 'PENDING')",
    /* The turn's key, ?4: its oldest ready task. */
    [SQ_ST_CLAIM] =
        CLAIM_SET "WHERE id = (SELECT id FROM tasks WHERE status = 'PENDING' "
                  "AND key_id = ?4 AND not_before <= ?1 ORDER BY id LIMIT 1) "
                  "RETURNING " SQ_TASK_COLS,
    /* Past a key whose tasks all wait: the next one with a ready task. */
    [SQ_ST_CLAIM_READY] = CLAIM_SET FIRST_READY(""),
    /* A worker of some models (?4: a JSON array of names). */
    [SQ_ST_CLAIM_MODELS] = CLAIM_SET FIRST_READY(
        "AND t.model IN (SELECT value FROM json_each(?4))"),
};

static sqlite3_stmt *stmt(struct store_sqlite_conn *c,
                          enum store_sqlite_stmt id)
{
    return store_sqlite_stmt(c, id, sql[id]);
}

/* The key whose turn it is, into key (0), or ERR_NOT_FOUND. */
static int next_key(struct store_sqlite_conn *w, char key[TASK_KEY_ID_MAX + 1])
{
    sqlite3_stmt *st = stmt(w, SQ_ST_NEXT_KEY);
    if (!st)
        return ERR_STORE;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        copy_col(st, 0, key, TASK_KEY_ID_MAX + 1);
    stmt_done(st);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? ERR_NOT_FOUND
                             : store_sqlite_fail(w->db, "claim");
}

/* Whether `key` has any PENDING task at all (ready or waiting): 1, 0, or
 * ERR_STORE. */
static int has_pending(struct store_sqlite_conn *w, const char *key)
{
    sqlite3_stmt *st = stmt(w, SQ_ST_HAS_PENDING);
    if (!st)
        return ERR_STORE;
    bind_text(st, 1, key);
    int rc = sqlite3_step(st), ret;
    ret = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) != 0
                           : store_sqlite_fail(w->db, "claim");
    stmt_done(st);
    return ret;
}

/* Step a claim statement (?1..?3 bound here, the rest by the caller),
 * then give the claimed task's key the last turn. */
static int claim_step(struct store_sqlite_conn *w, sqlite3_stmt *st,
                      const char *worker, int64_t now_ms, int64_t lease_ms,
                      struct task *out)
{
    sqlite3_bind_int64(st, 1, now_ms);
    bind_text(st, 2, worker);
    sqlite3_bind_int64(st, 3, now_ms + lease_ms);
    int ret, rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        store_sqlite_row_task(st, out);
        rc = sqlite3_step(st);
        ret = rc == SQLITE_DONE ? 0 : store_sqlite_fail(w->db, "claim");
        if (ret < 0)
            task_fini(out);
    } else {
        ret = rc == SQLITE_DONE ? ERR_NOT_FOUND
                                : store_sqlite_fail(w->db, "claim");
    }
    stmt_done(st);
    if (ret < 0)
        return ret;
    if (!(st = stmt(w, SQ_ST_TURN))) {
        task_fini(out);
        return ERR_STORE;
    }
    bind_text(st, 1, out->key_id);
    if ((ret = store_sqlite_step_write(w, st, "claim turn", NULL)) < 0)
        task_fini(out);
    return ret;
}

/* Any model: the key whose turn it is has a pending task (its counter
 * says so), and usually a ready one. If all of its tasks wait, the next
 * key with a ready one. A key counted as pending with none would be a bug
 * in the triggers; it is recounted rather than stall the queue (bounded:
 * each pass zeroes one key). */
static int claim_any(struct store_sqlite_conn *w, const char *worker,
                     int64_t now_ms, int64_t lease_ms, struct task *out)
{
    char key[TASK_KEY_ID_MAX + 1];
    int ret = ERR_NOT_FOUND;
    for (int tries = 0; tries < 64; tries++) {
        if ((ret = next_key(w, key)) < 0)
            break;
        sqlite3_stmt *st = stmt(w, SQ_ST_CLAIM);
        if (!st)
            return ERR_STORE;
        bind_text(st, 4, key);
        ret = claim_step(w, st, worker, now_ms, lease_ms, out);
        if (ret != ERR_NOT_FOUND)
            break;
        if ((ret = has_pending(w, key)) < 0)
            break;
        if (ret == 1) { /* its tasks wait for their delay */
            if (!(st = stmt(w, SQ_ST_CLAIM_READY)))
                return ERR_STORE;
            ret = claim_step(w, st, worker, now_ms, lease_ms, out);
            break;
        }
        sqlite3_stmt *fix = stmt(w, SQ_ST_FIX_PENDING);
        if (!fix)
            return ERR_STORE;
        bind_text(fix, 1, key);
        log_warn("queue counter repaired", "key_id=%s", key);
        if ((ret = store_sqlite_step_write(w, fix, "claim repair", NULL)) < 0)
            break;
        ret = ERR_NOT_FOUND;
    }
    return ret;
}

/* Some models: one statement finds the first key in turn order with a
 * ready task of one of them (keys with only other models wait for other
 * workers, their counters are right). */
static int claim_models(struct store_sqlite_conn *w,
                        const struct store_models *models, const char *worker,
                        int64_t now_ms, int64_t lease_ms, struct task *out)
{
    struct buf names = BUF_INIT;
    buf_putc(&names, '[');
    for (size_t i = 0; i < models->n; i++) {
        if (i)
            buf_putc(&names, ',');
        buf_json_str(&names, models->names[i]);
    }
    buf_putc(&names, ']');
    int ret = ERR_STORE;
    sqlite3_stmt *st = stmt(w, SQ_ST_CLAIM_MODELS);
    if (st) {
        bind_text(st, 4, names.data);
        ret = claim_step(w, st, worker, now_ms, lease_ms, out);
    }
    buf_fini(&names);
    return ret;
}

int store_sqlite_claim(struct store_sqlite_conn *w, const char *worker,
                       int64_t now_ms, int64_t lease_ms,
                       const struct store_models *models, struct task *out)
{
    int ret;
    if ((ret = store_sqlite_tx(w, "BEGIN IMMEDIATE", "claim")) < 0)
        return ret;
    ret = models ? claim_models(w, models, worker, now_ms, lease_ms, out)
                 : claim_any(w, worker, now_ms, lease_ms, out);
    if (ret == 0 || ret == ERR_NOT_FOUND) {
        if (store_sqlite_tx(w, "COMMIT", "claim commit") < 0) {
            if (ret == 0)
                task_fini(out);
            ret = ERR_STORE;
        }
    }
    if (ret < 0 && ret != ERR_NOT_FOUND)
        store_sqlite_tx(w, "ROLLBACK", "claim rollback");
    return ret;
}
