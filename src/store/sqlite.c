/*
 * The SQLite backend: WAL, synchronous=FULL (every commit fsync'd), integer
 * row ids in insertion order with the public uuid v7 as a unique secondary
 * index, so both B-trees only ever append (PERFORMANCE.md).
 *
 * Connections: one writer, guarded by wlock (SQLite allows one writer at a
 * time anyway; a mutex is cheaper than busy-waiting on its lock), and a
 * free list of readers opened on demand, one per concurrent reading thread.
 * Each connection keeps its prepared statements.
 */
#include "store.h"

#include "../log/log.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every column of a task, in the order row_to_task() reads them. */
#define TASK_COLS                                                             \
    "task_id, key_id, model, status, spec, prompt, submit_ms, scheduled_ms, " \
    "end_ms, expire_ms, attempt, code, message, usage_input, usage_output, "  \
    "usage_sr, usage_ratio, result"

enum stmt_id {
    ST_INSERT,
    ST_GET,
    ST_CLAIM,
    ST_RENEW,
    ST_FINISH,
    ST_RELEASE,
    ST_RESCUE_REQUEUE,
    ST_RESCUE_FAIL,
    ST_KEY_PUT,
    ST_KEY_LIST,
    ST_SECRET_PUT,
    ST_SECRET_GET,
    ST__COUNT
};

static const char *const stmt_sql[ST__COUNT] = {
    [ST_INSERT] = "INSERT INTO tasks (task_id, key_id, model, status, spec, "
                  "prompt, submit_ms, expire_ms) "
                  "VALUES (?1, ?2, ?3, 'PENDING', ?4, ?5, ?6, ?7)",
    [ST_GET] = "SELECT " TASK_COLS " FROM tasks WHERE task_id = ?1",
    [ST_CLAIM] = "UPDATE tasks SET status = 'RUNNING', "
                 "scheduled_ms = COALESCE(scheduled_ms, ?1), "
                 "attempt = attempt + 1, lease_owner = ?2, lease_until = ?3 "
                 "WHERE id = (SELECT id FROM tasks WHERE status = 'PENDING' "
                 "ORDER BY id LIMIT 1) RETURNING " TASK_COLS,
    [ST_RENEW] = "UPDATE tasks SET lease_until = ?2 "
                 "WHERE status = 'RUNNING' AND lease_owner = ?1",
    [ST_FINISH] = "UPDATE tasks SET status = ?3, end_ms = ?4, code = ?5, "
                  "message = ?6, usage_input = ?7, usage_output = ?8, "
                  "usage_sr = ?9, usage_ratio = ?10, result = ?11, "
                  "lease_owner = NULL, lease_until = NULL "
                  "WHERE task_id = ?1 AND status = 'RUNNING' "
                  "AND lease_owner = ?2",
    [ST_RELEASE] =
        "UPDATE tasks SET status = 'PENDING', attempt = attempt - 1, "
        "lease_owner = NULL, lease_until = NULL "
        "WHERE task_id = ?1 AND status = 'RUNNING' "
        "AND lease_owner = ?2",
    [ST_RESCUE_REQUEUE] = "UPDATE tasks SET status = 'PENDING', "
                          "lease_owner = NULL, lease_until = NULL "
                          "WHERE status = 'RUNNING' AND lease_until < ?1 "
                          "AND attempt < ?2",
    [ST_RESCUE_FAIL] =
        "UPDATE tasks SET status = 'FAILED', end_ms = ?1, "
        "code = 'InternalError.Timeout', "
        "message = 'the task ran out of attempts: its lease expired on "
        "each of ' || attempt || ' attempts', "
        "lease_owner = NULL, lease_until = NULL "
        "WHERE status = 'RUNNING' AND lease_until < ?1 AND attempt >= ?2",
    [ST_KEY_PUT] = "INSERT OR REPLACE INTO keys (key_id, salt, hash, name, "
                   "created_ms, revoked_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_KEY_LIST] = "SELECT key_id, salt, hash, name, created_ms, revoked_ms "
                    "FROM keys ORDER BY created_ms, key_id",
    [ST_SECRET_PUT] = "INSERT OR IGNORE INTO secrets (name, value) "
                      "VALUES (?1, ?2)",
    [ST_SECRET_GET] = "SELECT value FROM secrets WHERE name = ?1",
};

/* Schema versions: migrations[i] takes user_version i to i + 1. */
static const char *const migrations[] = {
    "CREATE TABLE tasks ("
    " id INTEGER PRIMARY KEY,"
    " task_id TEXT NOT NULL UNIQUE,"
    " key_id TEXT NOT NULL,"
    " model TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " spec TEXT NOT NULL,"
    " prompt TEXT,"
    " submit_ms INTEGER NOT NULL,"
    " scheduled_ms INTEGER,"
    " end_ms INTEGER,"
    " expire_ms INTEGER NOT NULL,"
    " attempt INTEGER NOT NULL DEFAULT 0,"
    " lease_owner TEXT,"
    " lease_until INTEGER,"
    " code TEXT,"
    " message TEXT,"
    " usage_input REAL,"
    " usage_output REAL,"
    " usage_sr INTEGER,"
    " usage_ratio TEXT,"
    " result TEXT);"
    "CREATE INDEX tasks_pending ON tasks (id) WHERE status = 'PENDING';"
    "CREATE INDEX tasks_running ON tasks (lease_until) "
    " WHERE status = 'RUNNING';"
    "CREATE TABLE keys ("
    " key_id TEXT PRIMARY KEY,"
    " salt BLOB NOT NULL,"
    " hash BLOB NOT NULL,"
    " name TEXT NOT NULL DEFAULT '',"
    " created_ms INTEGER NOT NULL,"
    " revoked_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);",
};

struct conn {
    sqlite3 *db;
    sqlite3_stmt *st[ST__COUNT];
    struct conn *next;
};

struct store_sqlite {
    struct store base;
    char *path;
    pthread_mutex_t wlock; /* guards w */
    struct conn *w;
    pthread_mutex_t rlock; /* guards readers */
    struct conn *readers;  /* idle reader connections */
};

static struct store_sqlite *from_base(struct store *s)
{
    return container_of(s, struct store_sqlite, base);
}

static int db_fail(sqlite3 *db, const char *what)
{
    log_error("store failed", "backend=sqlite op=%s error=\"%s\"", what,
              sqlite3_errmsg(db));
    return ERR_STORE;
}

static void conn_free(struct conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(c->st[i]);
    sqlite3_close(c->db);
    free(c);
}

static int conn_open(const char *path, struct conn **out, struct errmsg *err)
{
    struct conn *c = xcalloc(1, sizeof(*c));
    int rc = sqlite3_open_v2(
        path, &c->db,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        errmsg_set(err, ERR_STORE, "cannot open SQLite database %s: %s", path,
                   c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(c->db, 10000);
    /* FULL: a commit is on disk when sqlite3_step returns, in WAL mode too.
     * (NORMAL could lose the last commits on power loss.) */
    rc = sqlite3_exec(c->db,
                      "PRAGMA journal_mode = WAL;"
                      "PRAGMA synchronous = FULL;"
                      "PRAGMA foreign_keys = OFF;",
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        errmsg_set(err, ERR_STORE, "cannot configure SQLite database %s: %s",
                   path, sqlite3_errmsg(c->db));
        goto fail;
    }
    *out = c;
    return 0;
fail:
    conn_free(c);
    *out = NULL;
    return err->code;
}

/* The prepared statement `id` of connection c, reset and unbound. */
static sqlite3_stmt *stmt(struct conn *c, enum stmt_id id)
{
    if (!c->st[id]) {
        if (sqlite3_prepare_v3(c->db, stmt_sql[id], -1,
                               SQLITE_PREPARE_PERSISTENT, &c->st[id],
                               NULL) != SQLITE_OK) {
            db_fail(c->db, "prepare");
            return NULL;
        }
    }
    return c->st[id];
}

static void stmt_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static struct conn *reader_get(struct store_sqlite *s)
{
    pthread_mutex_lock(&s->rlock);
    struct conn *c = s->readers;
    if (c)
        s->readers = c->next;
    pthread_mutex_unlock(&s->rlock);
    if (!c) {
        struct errmsg err = { 0 };
        if (conn_open(s->path, &c, &err) < 0) {
            log_error("store failed", "backend=sqlite op=open error=\"%s\"",
                      errmsg_text(&err));
            return NULL;
        }
    }
    return c;
}

static void reader_put(struct store_sqlite *s, struct conn *c)
{
    pthread_mutex_lock(&s->rlock);
    c->next = s->readers;
    s->readers = c;
    pthread_mutex_unlock(&s->rlock);
}

static int migrate(struct conn *c, struct errmsg *err)
{
    sqlite3_stmt *st = NULL;
    int version = 0;
    if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) !=
            SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        goto fail;
    version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (version > (int)ARRAY_LEN(migrations)) {
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        return errmsg_set(err, ERR_STORE,
                          "the database schema is version %d, newer than "
                          "this paddock (%zu): upgrade paddock",
                          version, ARRAY_LEN(migrations));
    }
    for (int v = version; v < (int)ARRAY_LEN(migrations); v++) {
        if (sqlite3_exec(c->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK)
            goto fail;
        char pragma[64];
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v + 1);
        if (sqlite3_exec(c->db, pragma, NULL, NULL, NULL) != SQLITE_OK)
            goto fail;
    }
    if (sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    return 0;
fail:
    errmsg_set(err, ERR_STORE, "schema migration from version %d failed: %s",
               version, sqlite3_errmsg(c->db));
    sqlite3_finalize(st);
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return err->code;
}

/* ------------------------------------------------------------ helpers */

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void copy_col(sqlite3_stmt *st, int i, char *dst, size_t size)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    snprintf(dst, size, "%s", s ? s : "");
}

static char *dup_col(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    return s ? xstrndup(s, (size_t)sqlite3_column_bytes(st, i)) : NULL;
}

/* Read a row of TASK_COLS into *t. */
static void row_to_task(sqlite3_stmt *st, struct task *t)
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
}

/* Run a write statement to completion; *changes = rows changed. */
static int step_write(struct conn *c, sqlite3_stmt *st, const char *what,
                      int *changes)
{
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc != SQLITE_DONE)
        ret = rc == SQLITE_CONSTRAINT ? ERR_CONFLICT : db_fail(c->db, what);
    else if (changes)
        *changes = sqlite3_changes(c->db);
    stmt_done(st);
    return ret;
}

/* -------------------------------------------------------------- ops */

static int sq_insert(struct store *base, const struct task *t)
{
    struct store_sqlite *s = from_base(base);
    int ret = ERR_STORE;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = stmt(s->w, ST_INSERT);
    if (st) {
        bind_text(st, 1, t->task_id);
        bind_text(st, 2, t->key_id);
        bind_text(st, 3, t->model);
        bind_text(st, 4, t->spec);
        bind_text(st, 5, t->prompt);
        sqlite3_bind_int64(st, 6, t->submit_ms);
        sqlite3_bind_int64(st, 7, t->expire_ms);
        ret = step_write(s->w, st, "insert", NULL);
    }
    pthread_mutex_unlock(&s->wlock);
    return ret;
}

static int sq_get(struct store *base, const char *task_id, struct task *out)
{
    struct store_sqlite *s = from_base(base);
    struct conn *c = reader_get(s);
    if (!c)
        return ERR_STORE;
    int ret = ERR_STORE;
    sqlite3_stmt *st = stmt(c, ST_GET);
    if (st) {
        bind_text(st, 1, task_id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            row_to_task(st, out);
            ret = 0;
        } else if (rc == SQLITE_DONE) {
            ret = ERR_NOT_FOUND;
        } else {
            ret = db_fail(c->db, "get");
        }
        stmt_done(st);
    }
    reader_put(s, c);
    return ret;
}

static int sq_claim(struct store *base, const char *worker, int64_t now_ms,
                    int64_t lease_ms, struct task *out)
{
    struct store_sqlite *s = from_base(base);
    int ret = ERR_STORE;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = stmt(s->w, ST_CLAIM);
    if (st) {
        sqlite3_bind_int64(st, 1, now_ms);
        bind_text(st, 2, worker);
        sqlite3_bind_int64(st, 3, now_ms + lease_ms);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            row_to_task(st, out);
            /* Step to the end so the UPDATE's implicit transaction commits
             * before the task leaves this function. */
            rc = sqlite3_step(st);
            ret = rc == SQLITE_DONE ? 0 : db_fail(s->w->db, "claim");
            if (ret < 0)
                task_fini(out);
        } else if (rc == SQLITE_DONE) {
            ret = ERR_NOT_FOUND;
        } else {
            ret = db_fail(s->w->db, "claim");
        }
        stmt_done(st);
    }
    pthread_mutex_unlock(&s->wlock);
    return ret;
}

static int sq_renew(struct store *base, const char *worker, int64_t until_ms,
                    int *renewed)
{
    struct store_sqlite *s = from_base(base);
    int ret = ERR_STORE;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = stmt(s->w, ST_RENEW);
    if (st) {
        bind_text(st, 1, worker);
        sqlite3_bind_int64(st, 2, until_ms);
        ret = step_write(s->w, st, "renew", renewed);
    }
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
    sqlite3_stmt *st = stmt(s->w, ST_FINISH);
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
        ret = step_write(s->w, st, "finish", &changes);
        if (ret == 0 && changes == 0)
            ret = ERR_CONFLICT;
    }
    pthread_mutex_unlock(&s->wlock);
    return ret;
}

static int sq_release(struct store *base, const char *task_id,
                      const char *worker)
{
    struct store_sqlite *s = from_base(base);
    int ret = ERR_STORE, changes = 0;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = stmt(s->w, ST_RELEASE);
    if (st) {
        bind_text(st, 1, task_id);
        bind_text(st, 2, worker);
        ret = step_write(s->w, st, "release", &changes);
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
    sqlite3_stmt *fail = stmt(s->w, ST_RESCUE_FAIL);
    sqlite3_stmt *requeue = stmt(s->w, ST_RESCUE_REQUEUE);
    if (!fail || !requeue)
        goto out;
    if (sqlite3_exec(s->w->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
        SQLITE_OK) {
        db_fail(s->w->db, "rescue");
        goto out;
    }
    sqlite3_bind_int64(fail, 1, now_ms);
    sqlite3_bind_int(fail, 2, max_attempts);
    ret = step_write(s->w, fail, "rescue", failed);
    if (ret == 0) {
        sqlite3_bind_int64(requeue, 1, now_ms);
        sqlite3_bind_int(requeue, 2, max_attempts);
        ret = step_write(s->w, requeue, "rescue", requeued);
    }
    if (sqlite3_exec(s->w->db, ret == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL,
                     NULL) != SQLITE_OK)
        ret = db_fail(s->w->db, "rescue commit");
out:
    pthread_mutex_unlock(&s->wlock);
    return ret;
}

static int sq_key_put(struct store *base, const struct store_key *k)
{
    struct store_sqlite *s = from_base(base);
    int ret = ERR_STORE;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = stmt(s->w, ST_KEY_PUT);
    if (st) {
        bind_text(st, 1, k->key_id);
        sqlite3_bind_blob(st, 2, k->salt, sizeof(k->salt), SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, k->hash, sizeof(k->hash), SQLITE_STATIC);
        bind_text(st, 4, k->name);
        sqlite3_bind_int64(st, 5, k->created_ms);
        sqlite3_bind_int64(st, 6, k->revoked_ms);
        ret = step_write(s->w, st, "key_put", NULL);
    }
    pthread_mutex_unlock(&s->wlock);
    return ret;
}

static void copy_blob(sqlite3_stmt *st, int i, unsigned char *dst, size_t n)
{
    memset(dst, 0, n);
    const void *p = sqlite3_column_blob(st, i);
    size_t len = (size_t)sqlite3_column_bytes(st, i);
    if (p)
        memcpy(dst, p, len < n ? len : n);
}

static int sq_key_list(struct store *base, struct store_key **out, size_t *n)
{
    struct store_sqlite *s = from_base(base);
    struct conn *c = reader_get(s);
    if (!c)
        return ERR_STORE;
    int ret = ERR_STORE, rc;
    struct store_key *keys = NULL;
    size_t count = 0, cap = 0;
    sqlite3_stmt *st = stmt(c, ST_KEY_LIST);
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
    }
    stmt_done(st);
    if (rc != SQLITE_DONE) {
        db_fail(c->db, "key_list");
        goto out;
    }
    *out = keys;
    *n = count;
    keys = NULL;
    ret = 0;
out:
    free(keys);
    reader_put(s, c);
    return ret;
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
    sqlite3_stmt *put = stmt(s->w, ST_SECRET_PUT);
    sqlite3_stmt *get = stmt(s->w, ST_SECRET_GET);
    if (put && get) {
        bind_text(put, 1, name);
        sqlite3_bind_blob(put, 2, fresh, sizeof(fresh), SQLITE_STATIC);
        ret = step_write(s->w, put, "secret", NULL);
        if (ret == 0) {
            bind_text(get, 1, name);
            if (sqlite3_step(get) == SQLITE_ROW &&
                sqlite3_column_bytes(get, 0) == 32)
                copy_blob(get, 0, out, 32);
            else
                ret = db_fail(s->w->db, "secret");
            stmt_done(get);
        }
    }
    pthread_mutex_unlock(&s->wlock);
    return ret;
}

static void sq_close(struct store *base)
{
    struct store_sqlite *s = from_base(base);
    conn_free(s->w);
    while (s->readers) {
        struct conn *c = s->readers;
        s->readers = c->next;
        conn_free(c);
    }
    pthread_mutex_destroy(&s->wlock);
    pthread_mutex_destroy(&s->rlock);
    free(s->path);
    free(s);
}

static const struct store_ops sqlite_ops = {
    .name = "sqlite",
    .insert = sq_insert,
    .get = sq_get,
    .claim = sq_claim,
    .renew = sq_renew,
    .finish = sq_finish,
    .release = sq_release,
    .rescue = sq_rescue,
    .key_put = sq_key_put,
    .key_list = sq_key_list,
    .secret = sq_secret,
    .close = sq_close,
};

int store_sqlite_open(const char *path, struct store **out, struct errmsg *err)
{
    struct store_sqlite *s = xcalloc(1, sizeof(*s));
    s->base.ops = &sqlite_ops;
    s->path = xstrdup(path);
    pthread_mutex_init(&s->wlock, NULL);
    pthread_mutex_init(&s->rlock, NULL);
    int ret = conn_open(path, &s->w, err);
    if (ret < 0)
        goto fail;
    ret = migrate(s->w, err);
    if (ret < 0)
        goto fail;
    *out = &s->base;
    return 0;
fail:
    sq_close(&s->base);
    *out = NULL;
    return ret;
}
