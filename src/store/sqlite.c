/*
 * The SQLite backend: WAL, synchronous=FULL (every commit fsync'd), integer
 * row ids in insertion order with the public uuid v7 as a unique secondary
 * index, so both B-trees only ever append (bench/README.md, "Design
 * measurements").
 *
 * Connections: one writer, guarded by wlock (SQLite allows one writer at a
 * time anyway; a mutex is cheaper than busy-waiting on its lock), and a
 * free list of readers opened on demand, one per concurrent reading thread.
 * Each connection keeps its prepared statements.
 */
#include "sqlite_int.h"

#include "../log/log.h"

#include <stdlib.h>
#include <string.h>

/* A task ending at `end` keeps at least the retention it was submitted
 * with from then on (store.h, Retention). */
#define KEEP_AFTER(end) "MAX(expire_ms, " end " + expire_ms - submit_ms)"

/* store_list's filter: ?1 key, ?2..?3 submit window, ?4 now, ?5 model or
 * NULL, ?6 status or NULL. Finished tasks past retention are gone. */
#define LIST_WHERE                                            \
    "key_id = ?1 AND submit_ms >= ?2 AND submit_ms < ?3 "     \
    "AND NOT (status IN ('SUCCEEDED', 'FAILED', 'CANCELED') " \
    "AND expire_ms <= ?4) AND (?5 IS NULL OR model = ?5) "    \
    "AND (?6 IS NULL OR status = ?6)"

/* The statements of this file (sqlite_int.h). */
static const char *const stmt_sql[SQ_ST__COUNT] = {
    [SQ_ST_CANCEL] =
        "UPDATE tasks SET status = 'CANCELED', end_ms = ?3, "
        "expire_ms = " KEEP_AFTER(
            "?3") " "
                  "WHERE task_id = ?1 AND key_id = ?2 AND status = 'PENDING'",
    [SQ_ST_STATE] = "SELECT key_id, status, expire_ms FROM tasks "
                    "WHERE task_id = ?1",
    [SQ_ST_LIST_COUNT] = "SELECT count(*) FROM tasks WHERE " LIST_WHERE,
    [SQ_ST_LIST] = "SELECT " SQ_TASK_COLS " FROM tasks WHERE " LIST_WHERE
                   " ORDER BY submit_ms DESC, id DESC LIMIT ?7 OFFSET ?8",
    [SQ_ST_EXPIRED] = "SELECT id, result FROM tasks WHERE expire_ms <= ?1 "
                      "AND status IN ('SUCCEEDED', 'FAILED', 'CANCELED') "
                      "ORDER BY expire_ms LIMIT ?2",
    [SQ_ST_DELETE] = "DELETE FROM tasks WHERE id = ?1",
    [SQ_ST_IDEM_PURGE] = "DELETE FROM idem WHERE expire_ms <= ?1",
    [SQ_ST_STATS_STATUS] = "SELECT status, count(*) FROM tasks GROUP BY status",
    [SQ_ST_STATS_QUEUE] = "SELECT model, count(*) AS n FROM tasks "
                          "WHERE status = 'PENDING' GROUP BY model "
                          "ORDER BY n DESC, model LIMIT ?1",
    [SQ_ST_GET] = "SELECT " SQ_TASK_COLS " FROM tasks WHERE task_id = ?1",
    [SQ_ST_RENEW] = "UPDATE tasks SET lease_until = ?3, "
                    "progress = coalesce(?4, progress) WHERE task_id = ?1 "
                    "AND status = 'RUNNING' AND lease_owner = ?2",
    [SQ_ST_FINISH] =
        "UPDATE tasks SET status = ?3, end_ms = ?4, code = ?5, "
        "expire_ms = " KEEP_AFTER(
            "?4") ", "
                  "message = ?6, usage_input = ?7, usage_output = ?8, "
                  "usage_sr = ?9, usage_ratio = ?10, result = ?11, "
                  "lease_owner = NULL, lease_until = NULL "
                  "WHERE task_id = ?1 AND status = 'RUNNING' "
                  "AND lease_owner = ?2",
    [SQ_ST_RELEASE] =
        "UPDATE tasks SET status = 'PENDING', attempt = attempt - ?3, "
        "lease_owner = NULL, lease_until = NULL, progress = 0 "
        "WHERE task_id = ?1 AND status = 'RUNNING' "
        "AND lease_owner = ?2",
    [SQ_ST_COUNT_QUERY] = "UPDATE tasks SET queries = queries + 1 "
                          "WHERE task_id = ?1 AND queries < ?2 "
                          "RETURNING queries",
    [SQ_ST_NOTE] = "UPDATE tasks SET progress = COALESCE(?3, progress), "
                   "ref = COALESCE(?4, ref) "
                   "WHERE task_id = ?1 AND status = 'RUNNING' "
                   "AND lease_owner = ?2",
    [SQ_ST_RESCUE_REQUEUE] = "UPDATE tasks SET status = 'PENDING', "
                             "lease_owner = NULL, lease_until = NULL, "
                             "progress = 0 "
                             "WHERE status = 'RUNNING' AND lease_until < ?1 "
                             "AND attempt < ?2",
    [SQ_ST_RESCUE_FAIL] =
        "UPDATE tasks SET status = 'FAILED', end_ms = ?1, "
        "expire_ms = " KEEP_AFTER(
            "?1") ", code = 'InternalError.Timeout', "
                  "message = 'the task ran out of attempts: its "
                  "lease expired on "
                  "each of ' || attempt || ' attempts', "
                  "lease_owner = NULL, lease_until = NULL "
                  "WHERE status = 'RUNNING' AND lease_until < "
                  "?1 AND attempt >= ?2",
    /* A balance set starts counting what the key spends from now on. */
    [SQ_ST_KEY_PUT] =
        "INSERT OR REPLACE INTO keys (key_id, salt, hash, name, "
        "created_ms, revoked_ms, scenario, admin, quota_kind, quota_limit, "
        "quota_period, balance, balance_base) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
        "CASE WHEN ?12 THEN ?13 ELSE coalesce((SELECT balance FROM keys "
        "WHERE key_id = ?1), -1) END, CASE WHEN ?12 THEN coalesce((SELECT "
        "spent FROM accounts WHERE key_id = ?1), 0) ELSE coalesce((SELECT "
        "balance_base FROM keys WHERE key_id = ?1), 0) END)",
    [SQ_ST_KEY_LIST] =
        "SELECT k.key_id, k.salt, k.hash, k.name, k.created_ms, "
        "k.revoked_ms, k.scenario, k.admin, k.quota_kind, k.quota_limit, "
        "k.quota_period, CASE WHEN k.balance < 0 THEN -1 ELSE k.balance - "
        "(coalesce(a.spent, 0) - k.balance_base) END "
        "FROM keys k LEFT JOIN accounts a ON a.key_id = k.key_id "
        "ORDER BY k.created_ms, k.key_id",
    [SQ_ST_SECRET_PUT] = "INSERT OR IGNORE INTO secrets (name, value) "
                         "VALUES (?1, ?2)",
    [SQ_ST_SECRET_GET] = "SELECT value FROM secrets WHERE name = ?1",
};

static struct store_sqlite *from_base(struct store *s)
{
    return store_sqlite_of(s);
}

/* The prepared statement `id` of connection c. */
static sqlite3_stmt *stmt(struct store_sqlite_conn *c,
                          enum store_sqlite_stmt id)
{
    return store_sqlite_stmt(c, id, stmt_sql[id]);
}

/* ------------------------------------------------------------ helpers */

void store_sqlite_row_task(sqlite3_stmt *st, struct task *t)
{
    memset(t, 0, sizeof(*t));
    copy_col(st, 0, t->task_id, sizeof(t->task_id));
    copy_col(st, 1, t->key_id, sizeof(t->key_id));
    copy_col(st, 2, t->model, sizeof(t->model));
    const char *status = (const char *)sqlite3_column_text(st, 3);
    if (!status || task_status_parse(status, &t->status) < 0)
        t->status = TASK_UNKNOWN;
    t->spec = dup_col(st, 4);
    t->prompt = dup_col(st, 5);
    t->submit_ms = sqlite3_column_int64(st, 6);
    t->scheduled_ms = sqlite3_column_int64(st, 7);
    t->end_ms = sqlite3_column_int64(st, 8);
    t->expire_ms = sqlite3_column_int64(st, 9);
    t->attempt = sqlite3_column_int(st, 10);
    copy_col(st, 11, t->code, sizeof(t->code));
    t->message = dup_col(st, 12);
    t->usage.input_s = sqlite3_column_double(st, 13);
    t->usage.output_s = sqlite3_column_double(st, 14);
    t->usage.sr = sqlite3_column_int(st, 15);
    copy_col(st, 16, t->usage.ratio, sizeof(t->usage.ratio));
    t->result = dup_col(st, 17);
    t->progress = sqlite3_column_int(st, 18);
    t->ref = dup_col(st, 19);
    t->queries = sqlite3_column_int(st, 20);
    t->rev = sqlite3_column_int64(st, 21);
    t->qseq = sqlite3_column_int64(st, 22);
}

/* -------------------------------------------------------------- ops */

static int tx(struct store_sqlite_conn *c, const char *sql, const char *what)
{
    return store_sqlite_tx(c, sql, what);
}

static void sq_commit_batch(struct store *base, struct store_batch_req *batch)
{
    struct store_sqlite *s = from_base(base);
    pthread_mutex_lock(&s->wlock);
    store_sqlite_submit_batch(s->w, batch);
    pthread_mutex_unlock(&s->wlock);
}

static int sq_get(struct store *base, const char *task_id, struct task *out)
{
    struct store_sqlite *s = from_base(base);
    struct store_sqlite_conn *c = store_sqlite_readers_get(&s->readers);
    if (!c)
        return ERR_STORE;
    int ret = ERR_STORE;
    sqlite3_stmt *st = stmt(c, SQ_ST_GET);
    if (st) {
        bind_text(st, 1, task_id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            store_sqlite_row_task(st, out);
            ret = 0;
        } else if (rc == SQLITE_DONE) {
            ret = ERR_NOT_FOUND;
        } else {
            ret = store_sqlite_fail(c->db, "get");
        }
        stmt_done(st);
    }
    store_sqlite_readers_put(&s->readers, c);
    return ret;
}

static int sq_claim(struct store *base, const char *worker, int64_t now_ms,
                    int64_t lease_ms, const struct store_models *models,
                    struct task *out)
{
    struct store_sqlite *s = from_base(base);
    pthread_mutex_lock(&s->wlock);
    int ret = store_sqlite_claim(s->w, worker, now_ms, lease_ms, models, out);
    pthread_mutex_unlock(&s->wlock);
    return ret;
}

/* Every lease in one transaction: one fsync however many tasks. */
static int sq_renew(struct store *base, struct store_lease *leases, size_t n,
                    int64_t until_ms)
{
    struct store_sqlite *s = from_base(base);
    struct store_sqlite_conn *w = s->w;
    int ret;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = stmt(w, SQ_ST_RENEW);
    if (!st || (ret = tx(w, "BEGIN IMMEDIATE", "renew")) < 0) {
        ret = ERR_STORE;
        goto out;
    }
    for (size_t i = 0; i < n && ret == 0; i++) {
        int changes = 0;
        bind_text(st, 1, leases[i].task_id);
        bind_text(st, 2, leases[i].owner);
        sqlite3_bind_int64(st, 3, until_ms);
        if (leases[i].progress >= 0)
            sqlite3_bind_int(st, 4, leases[i].progress);
        else
            sqlite3_bind_null(st, 4);
        ret = store_sqlite_step_write(w, st, "renew", &changes);
        leases[i].held = ret == 0 && changes > 0;
    }
    if (ret == 0 && tx(w, "COMMIT", "renew commit") < 0)
        ret = ERR_STORE;
    if (ret < 0) {
        tx(w, "ROLLBACK", "renew rollback");
        for (size_t i = 0; i < n; i++)
            leases[i].held = false;
    }
out:
    pthread_mutex_unlock(&s->wlock);
    return ret;
}

static int sq_finish(struct store *base, const struct task *t,
                     const char *worker)
{
    struct store_sqlite *s = from_base(base);
    int ret = ERR_STORE, changes = 0;
    bool ok = t->status == TASK_SUCCEEDED;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = stmt(s->w, SQ_ST_FINISH);
    if (st) {
        bind_text(st, 1, t->task_id);
        bind_text(st, 2, worker);
        bind_text(st, 3, task_status_name(t->status));
        sqlite3_bind_int64(st, 4, t->end_ms);
        bind_text(st, 5, ok ? NULL : t->code);
        bind_text(st, 6, ok ? NULL : t->message);
        if (ok) {
            sqlite3_bind_double(st, 7, t->usage.input_s);
            sqlite3_bind_double(st, 8, t->usage.output_s);
            sqlite3_bind_int(st, 9, t->usage.sr);
            bind_text(st, 10, t->usage.ratio[0] ? t->usage.ratio : NULL);
            bind_text(st, 11, t->result);
        }
        ret = store_sqlite_step_write(s->w, st, "finish", &changes);
        if (ret == 0 && changes == 0)
            ret = ERR_CONFLICT;
    }
    pthread_mutex_unlock(&s->wlock);
    return ret;
}

static int sq_release(struct store *base, const char *task_id,
                      const char *worker, bool counted)
{
    struct store_sqlite *s = from_base(base);
    int ret = ERR_STORE, changes = 0;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = stmt(s->w, SQ_ST_RELEASE);
    if (st) {
        bind_text(st, 1, task_id);
        bind_text(st, 2, worker);
        sqlite3_bind_int(st, 3, counted ? 0 : 1);
        ret = store_sqlite_step_write(s->w, st, "release", &changes);
        if (ret == 0 && changes == 0)
            ret = ERR_CONFLICT;
    }
    pthread_mutex_unlock(&s->wlock);
    return ret;
}

static int sq_count_query(struct store *base, const char *task_id, int max,
                          int *count)
{
    struct store_sqlite *s = from_base(base);
    int ret = ERR_STORE;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = stmt(s->w, SQ_ST_COUNT_QUERY);
    if (st) {
        bind_text(st, 1, task_id);
        sqlite3_bind_int(st, 2, max);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *count = sqlite3_column_int(st, 0);
            rc = sqlite3_step(st);
        }
        ret = rc == SQLITE_DONE ? 0 : store_sqlite_fail(s->w->db, "queries");
        if (ret < 0)
            *count = 0;
        stmt_done(st);
    }
    pthread_mutex_unlock(&s->wlock);
    return ret;
}

/* Every release in one transaction: one fsync however many tasks. */
static int sq_release_many(struct store *base, struct store_lease *leases,
                           size_t n)
{
    struct store_sqlite *s = from_base(base);
    struct store_sqlite_conn *w = s->w;
    int ret;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = stmt(w, SQ_ST_RELEASE);
    if (!st || (ret = tx(w, "BEGIN IMMEDIATE", "release")) < 0) {
        ret = ERR_STORE;
        goto out;
    }
    for (size_t i = 0; i < n && ret == 0; i++) {
        int changes = 0;
        bind_text(st, 1, leases[i].task_id);
        bind_text(st, 2, leases[i].owner);
        sqlite3_bind_int(st, 3, 1); /* a shutdown's: the attempt not counted */
        ret = store_sqlite_step_write(w, st, "release", &changes);
        leases[i].held = ret == 0 && changes > 0;
    }
    if (ret == 0 && tx(w, "COMMIT", "release commit") < 0)
        ret = ERR_STORE;
    if (ret < 0) {
        tx(w, "ROLLBACK", "release rollback");
        for (size_t i = 0; i < n; i++)
            leases[i].held = false;
    }
out:
    pthread_mutex_unlock(&s->wlock);
    return ret;
}

static int sq_note(struct store *base, const char *task_id, const char *worker,
                   int progress, const char *ref)
{
    struct store_sqlite *s = from_base(base);
    int ret = ERR_STORE, changes = 0;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = stmt(s->w, SQ_ST_NOTE);
    if (st) {
        bind_text(st, 1, task_id);
        bind_text(st, 2, worker);
        if (progress >= 0)
            sqlite3_bind_int(st, 3, progress);
        if (ref)
            bind_text(st, 4, ref);
        ret = store_sqlite_step_write(s->w, st, "note", &changes);
        if (ret == 0 && changes == 0)
            ret = ERR_CONFLICT;
    }
    pthread_mutex_unlock(&s->wlock);
    return ret;
}

static int sq_rescue(struct store *base, int64_t now_ms, int max_attempts,
                     int *requeued, int *failed)
{
    struct store_sqlite *s = from_base(base);
    int ret = ERR_STORE;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *fail = stmt(s->w, SQ_ST_RESCUE_FAIL);
    sqlite3_stmt *requeue = stmt(s->w, SQ_ST_RESCUE_REQUEUE);
    if (!fail || !requeue)
        goto out;
    if (tx(s->w, "BEGIN IMMEDIATE", "rescue") < 0)
        goto out;
    sqlite3_bind_int64(fail, 1, now_ms);
    sqlite3_bind_int(fail, 2, max_attempts);
    ret = store_sqlite_step_write(s->w, fail, "rescue", failed);
    if (ret == 0) {
        sqlite3_bind_int64(requeue, 1, now_ms);
        sqlite3_bind_int(requeue, 2, max_attempts);
        ret = store_sqlite_step_write(s->w, requeue, "rescue", requeued);
    }
    if (tx(s->w, ret == 0 ? "COMMIT" : "ROLLBACK", "rescue commit") < 0)
        ret = ERR_STORE;
out:
    pthread_mutex_unlock(&s->wlock);
    return ret;
}

static int sq_cancel(struct store *base, const char *task_id,
                     const char *key_id, int64_t now_ms,
                     enum task_status *status)
{
    struct store_sqlite *s = from_base(base);
    int ret = ERR_STORE, changes = 0;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = stmt(s->w, SQ_ST_CANCEL);
    sqlite3_stmt *state = stmt(s->w, SQ_ST_STATE);
    if (!st || !state)
        goto out;
    bind_text(st, 1, task_id);
    bind_text(st, 2, key_id);
    sqlite3_bind_int64(st, 3, now_ms);
    if ((ret = store_sqlite_step_write(s->w, st, "cancel", &changes)) < 0)
        goto out;
    if (changes == 1) {
        *status = TASK_CANCELED;
        goto out;
    }
    /* Not canceled: say why without telling another key anything. */
    bind_text(state, 1, task_id);
    int rc = sqlite3_step(state);
    ret = ERR_NOT_FOUND;
    if (rc == SQLITE_ROW) {
        const char *owner = (const char *)sqlite3_column_text(state, 0);
        const char *name = (const char *)sqlite3_column_text(state, 1);
        int64_t expire_ms = sqlite3_column_int64(state, 2);
        enum task_status st_now = TASK_UNKNOWN;
        if (name)
            task_status_parse(name, &st_now);
        bool gone = task_status_terminal(st_now) && expire_ms <= now_ms;
        if (owner && strcmp(owner, key_id) == 0 && !gone) {
            *status = st_now;
            ret = ERR_UNSUPPORTED_OPERATION;
        }
    } else if (rc != SQLITE_DONE) {
        ret = store_sqlite_fail(s->w->db, "cancel");
    }
    stmt_done(state);
out:
    pthread_mutex_unlock(&s->wlock);
    return ret;
}

static void bind_filter(sqlite3_stmt *st, const struct store_filter *f)
{
    bind_text(st, 1, f->key_id);
    sqlite3_bind_int64(st, 2, f->from_ms);
    sqlite3_bind_int64(st, 3, f->to_ms);
    sqlite3_bind_int64(st, 4, f->now_ms);
    bind_text(st, 5, f->model);
    bind_text(st, 6, f->status >= 0 ? task_status_name(f->status) : NULL);
}

static int sq_list(struct store *base, const struct store_filter *f,
                   struct task **out, size_t *n, int64_t *total)
{
    struct store_sqlite *s = from_base(base);
    struct store_sqlite_conn *c = store_sqlite_readers_get(&s->readers);
    if (!c)
        return ERR_STORE;
    int ret = ERR_STORE, rc;
    struct task *tasks = NULL;
    size_t count = 0;
    sqlite3_stmt *cnt = stmt(c, SQ_ST_LIST_COUNT), *st = stmt(c, SQ_ST_LIST);
    if (!cnt || !st)
        goto out;
    /* One read transaction: the count and the page agree. */
    if (tx(c, "BEGIN", "list") < 0)
        goto out;
    bind_filter(cnt, f);
    rc = sqlite3_step(cnt);
    if (rc == SQLITE_ROW)
        *total = sqlite3_column_int64(cnt, 0);
    stmt_done(cnt);
    if (rc != SQLITE_ROW) {
        store_sqlite_fail(c->db, "list");
        goto end;
    }
    bind_filter(st, f);
    sqlite3_bind_int64(st, 7, f->limit);
    sqlite3_bind_int64(st, 8, f->offset);
    tasks = xcalloc(f->limit > 0 ? (size_t)f->limit : 1, sizeof(*tasks));
    while (count < (size_t)f->limit && (rc = sqlite3_step(st)) == SQLITE_ROW)
        store_sqlite_row_task(st, &tasks[count++]);
    stmt_done(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        store_sqlite_fail(c->db, "list");
        goto end;
    }
    *out = tasks;
    *n = count;
    tasks = NULL;
    count = 0;
    ret = 0;
end:
    tx(c, "COMMIT", "list");
out:
    for (size_t i = 0; i < count; i++)
        task_fini(&tasks[i]);
    free(tasks);
    store_sqlite_readers_put(&s->readers, c);
    return ret;
}

static int sq_purge(struct store *base, int64_t now_ms, int limit,
                    char ***results, size_t *n)
{
    struct store_sqlite *s = from_base(base);
    struct store_sqlite_conn *w = s->w;
    int ret, rc;
    char **names = xcalloc((size_t)(limit > 0 ? limit : 1), sizeof(char *));
    size_t count = 0;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *sel = stmt(w, SQ_ST_EXPIRED), *del = stmt(w, SQ_ST_DELETE),
                 *idem = stmt(w, SQ_ST_IDEM_PURGE);
    if (!sel || !del || !idem) {
        ret = ERR_STORE;
        goto out;
    }
    if ((ret = tx(w, "BEGIN IMMEDIATE", "purge")) < 0)
        goto out;
    sqlite3_bind_int64(sel, 1, now_ms);
    sqlite3_bind_int(sel, 2, limit);
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(sel, 0);
        char *result = dup_col(sel, 1);
        if (result && count < (size_t)limit)
            names[count++] = result;
        else
            free(result);
        sqlite3_bind_int64(del, 1, id);
        if ((ret = store_sqlite_step_write(w, del, "purge", NULL)) < 0)
            break;
    }
    stmt_done(sel);
    if (ret == 0 && rc != SQLITE_DONE)
        ret = store_sqlite_fail(w->db, "purge");
    if (ret == 0) {
        sqlite3_bind_int64(idem, 1, now_ms);
        ret = store_sqlite_step_write(w, idem, "purge", NULL);
    }
    if (ret == 0)
        ret = tx(w, "COMMIT", "purge commit");
    if (ret < 0)
        tx(w, "ROLLBACK", "purge rollback");
out:
    pthread_mutex_unlock(&s->wlock);
    if (ret < 0) {
        for (size_t i = 0; i < count; i++)
            free(names[i]);
        free(names);
        return ret;
    }
    *results = names;
    *n = count;
    return 0;
}

static int sq_stats(struct store *base, struct store_stats *out)
{
    struct store_sqlite *s = from_base(base);
    struct store_sqlite_conn *c = store_sqlite_readers_get(&s->readers);
    if (!c)
        return ERR_STORE;
    int ret = ERR_STORE, rc;
    sqlite3_stmt *st = stmt(c, SQ_ST_STATS_STATUS),
                 *q = stmt(c, SQ_ST_STATS_QUEUE);
    if (!st || !q)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        enum task_status status;
        if (name && task_status_parse(name, &status) == 0 &&
            status < TASK_UNKNOWN)
            out->by_status[status] = sqlite3_column_int64(st, 1);
    }
    stmt_done(st);
    if (rc != SQLITE_DONE) {
        store_sqlite_fail(c->db, "stats");
        goto out;
    }
    sqlite3_bind_int(q, 1, STORE_STATS_MODELS);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW &&
           out->n_queue < STORE_STATS_MODELS) {
        copy_col(q, 0, out->queue[out->n_queue].model,
                 sizeof(out->queue[0].model));
        out->queue[out->n_queue++].pending = sqlite3_column_int64(q, 1);
    }
    stmt_done(q);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        store_sqlite_fail(c->db, "stats");
        goto out;
    }
    ret = 0;
out:
    store_sqlite_readers_put(&s->readers, c);
    return ret;
}

static int sq_key_put(struct store *base, const struct store_key *k)
{
    struct store_sqlite *s = from_base(base);
    int ret = ERR_STORE;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = stmt(s->w, SQ_ST_KEY_PUT);
    if (st) {
        bind_text(st, 1, k->key_id);
        sqlite3_bind_blob(st, 2, k->salt, sizeof(k->salt), SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, k->hash, sizeof(k->hash), SQLITE_STATIC);
        bind_text(st, 4, k->name);
        sqlite3_bind_int64(st, 5, k->created_ms);
        sqlite3_bind_int64(st, 6, k->revoked_ms);
        bind_text(st, 7, k->scenario);
        sqlite3_bind_int(st, 8, k->admin);
        bind_text(st, 9, store_quota_name(k->quota));
        sqlite3_bind_int64(st, 10, k->quota_limit);
        bind_text(st, 11, store_period_name(k->quota, k->period));
        sqlite3_bind_int(st, 12, k->balance_set);
        sqlite3_bind_int64(st, 13, k->balance);
        ret = store_sqlite_step_write(s->w, st, "key_put", NULL);
    }
    pthread_mutex_unlock(&s->wlock);
    return ret;
}

static int sq_key_list(struct store *base, struct store_key **out, size_t *n)
{
    struct store_sqlite *s = from_base(base);
    struct store_sqlite_conn *c = store_sqlite_readers_get(&s->readers);
    if (!c)
        return ERR_STORE;
    int ret = ERR_STORE, rc;
    struct store_key *keys = NULL;
    size_t count = 0, cap = 0;
    sqlite3_stmt *st = stmt(c, SQ_ST_KEY_LIST);
    if (!st)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap ? cap * 2 : 8;
            keys = xrealloc(keys, cap * sizeof(*keys));
        }
        struct store_key *k = &keys[count++];
        memset(k, 0, sizeof(*k));
        copy_col(st, 0, k->key_id, sizeof(k->key_id));
        copy_blob(st, 1, k->salt, sizeof(k->salt));
        copy_blob(st, 2, k->hash, sizeof(k->hash));
        copy_col(st, 3, k->name, sizeof(k->name));
        k->created_ms = sqlite3_column_int64(st, 4);
        k->revoked_ms = sqlite3_column_int64(st, 5);
        copy_col(st, 6, k->scenario, sizeof(k->scenario));
        k->admin = sqlite3_column_int(st, 7) != 0;
        k->quota = store_quota_parse((const char *)sqlite3_column_text(st, 8));
        k->quota_limit = sqlite3_column_int64(st, 9);
        k->period =
            store_period_parse((const char *)sqlite3_column_text(st, 10));
        k->balance = sqlite3_column_int64(st, 11);
    }
    stmt_done(st);
    if (rc != SQLITE_DONE) {
        store_sqlite_fail(c->db, "key_list");
        goto out;
    }
    *out = keys;
    *n = count;
    keys = NULL;
    ret = 0;
out:
    free(keys);
    store_sqlite_readers_put(&s->readers, c);
    return ret;
}

static int sq_queue_position(struct store *base, const struct task *t,
                             int64_t *pos)
{
    return store_sqlite_queue_position(&from_base(base)->readers, t, pos);
}

static int sq_secret(struct store *base, const char *name,
                     unsigned char out[32])
{
    struct store_sqlite *s = from_base(base);
    unsigned char fresh[32];
    int ret = id_random(fresh, sizeof(fresh));
    if (ret < 0)
        return ret;
    ret = ERR_STORE;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *put = stmt(s->w, SQ_ST_SECRET_PUT);
    sqlite3_stmt *get = stmt(s->w, SQ_ST_SECRET_GET);
    if (put && get) {
        bind_text(put, 1, name);
        sqlite3_bind_blob(put, 2, fresh, sizeof(fresh), SQLITE_STATIC);
        ret = store_sqlite_step_write(s->w, put, "secret", NULL);
        if (ret == 0) {
            bind_text(get, 1, name);
            if (sqlite3_step(get) == SQLITE_ROW &&
                sqlite3_column_bytes(get, 0) == 32)
                copy_blob(get, 0, out, 32);
            else
                ret = store_sqlite_fail(s->w->db, "secret");
            stmt_done(get);
        }
    }
    pthread_mutex_unlock(&s->wlock);
    return ret;
}

static int sq_key_delete(struct store *base, const char *key_id)
{
    struct store_sqlite *s = from_base(base);
    pthread_mutex_lock(&s->wlock);
    int ret = store_sqlite_key_delete(s->w, key_id);
    pthread_mutex_unlock(&s->wlock);
    return ret;
}

static int sq_usage(struct store *base, const struct store_usage_query *q,
                    struct store_usage_row **rows, size_t *n,
                    struct store_usage_row *total)
{
    struct store_sqlite *s = from_base(base);
    struct store_sqlite_conn *c = store_sqlite_readers_get(&s->readers);
    if (!c)
        return ERR_STORE;
    int ret = store_sqlite_usage(c, q, rows, n, total);
    store_sqlite_readers_put(&s->readers, c);
    return ret;
}

static int sq_usage_purge(struct store *base, int64_t before_ms, int64_t *n)
{
    struct store_sqlite *s = from_base(base);
    pthread_mutex_lock(&s->wlock);
    int ret = store_sqlite_usage_purge(s->w, before_ms, n);
    pthread_mutex_unlock(&s->wlock);
    return ret;
}

static void sq_close(struct store *base)
{
    struct store_sqlite *s = from_base(base);
    store_sqlite_conn_free(s->w);
    store_sqlite_readers_fini(&s->readers);
    pthread_mutex_destroy(&s->wlock);
    free(s->path);
    free(s);
}

static const struct store_ops sqlite_ops = {
    .name = "sqlite",
    .batch_max = 0, /* no limit */
    .commit_batch = sq_commit_batch,
    .get = sq_get,
    .claim = sq_claim,
    .note = sq_note,
    .renew = sq_renew,
    .finish = sq_finish,
    .release = sq_release,
    .release_many = sq_release_many,
    .count_query = sq_count_query,
    .rescue = sq_rescue,
    .cancel = sq_cancel,
    .list = sq_list,
    .purge = sq_purge,
    .stats = sq_stats,
    .key_put = sq_key_put,
    .key_list = sq_key_list,
    .key_delete = sq_key_delete,
    .usage = sq_usage,
    .usage_purge = sq_usage_purge,
    .secret = sq_secret,
    STORE_SQLITE_HOOK_OPS,
    .queue_position = sq_queue_position,
    .close = sq_close,
};

int store_sqlite_open(const char *path, struct store **out, struct errmsg *err)
{
    struct store_sqlite *s = xcalloc(1, sizeof(*s));
    s->base.ops = &sqlite_ops;
    s->path = xstrdup(path);
    pthread_mutex_init(&s->wlock, NULL);
    store_sqlite_readers_init(&s->readers, s->path);
    int ret = store_sqlite_conn_open(path, &s->w, err);
    if (ret < 0)
        goto fail;
    ret = store_sqlite_migrate(s->w, err);
    if (ret < 0)
        goto fail;
    *out = &s->base;
    return 0;
fail:
    sq_close(&s->base);
    *out = NULL;
    return ret;
}
