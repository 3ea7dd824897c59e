/*
 * The SQLite backend's own parts, shared by its files: sqlite.c (the ops),
 * sqlite_submit.c (a batch of submits in one transaction) and
 * sqlite_conn.c (connections, their prepared statements, the readers'
 * free list, migrations). Nothing else includes this.
 *
 * A connection is used by one thread at a time: the writer under the
 * store's writer lock, a reader between readers_get and readers_put.
 */
#ifndef PADDOCK_STORE_SQLITE_INT_H
#define PADDOCK_STORE_SQLITE_INT_H

#include "store_int.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

/* The prepared statements of a connection; each file keeps the text of
 * its own. */
enum store_sqlite_stmt {
    /* sqlite.c's */
    SQ_ST_CANCEL,
    SQ_ST_STATE,
    SQ_ST_LIST_COUNT,
    SQ_ST_LIST,
    SQ_ST_EXPIRED,
    SQ_ST_DELETE,
    SQ_ST_IDEM_PURGE,
    SQ_ST_STATS_STATUS,
    SQ_ST_STATS_QUEUE,
    SQ_ST_GET,
    SQ_ST_RENEW,
    SQ_ST_FINISH,
    SQ_ST_RELEASE,
    SQ_ST_NOTE,
    SQ_ST_COUNT_QUERY,
    SQ_ST_RESCUE_REQUEUE,
    SQ_ST_RESCUE_FAIL,
    SQ_ST_KEY_PUT,
    SQ_ST_KEY_LIST,
    SQ_ST_SECRET_PUT,
    SQ_ST_SECRET_GET,
    /* sqlite_claim.c's */
    SQ_ST_NEXT_KEY,
    SQ_ST_TURN,
    SQ_ST_FIX_PENDING,
    SQ_ST_HAS_PENDING,
    SQ_ST_CLAIM,
    SQ_ST_CLAIM_READY,
    SQ_ST_CLAIM_MODELS,
    /* sqlite_submit.c's */
    SQ_ST_INSERT,
    SQ_ST_IDEM_GET,
    SQ_ST_IDEM_PUT,
    SQ_ST_KEY_ACTIVE,
    SQ_ST_QUEUE_DEPTH,
    /* sqlite_hooks.c's */
    SQ_ST_HOOK_COUNT,
    SQ_ST_HOOK_PUT,
    SQ_ST_HOOK_LIST,
    SQ_ST_HOOK_GET,
    SQ_ST_HOOK_DELETE,
    SQ_ST_HOOK_DELETE_DLV,
    SQ_ST_HOOK_DISABLE,
    SQ_ST_HOOK_DISABLE_DLV,
    SQ_ST_DLV_DUE,
    SQ_ST_DLV_LEASE,
    SQ_ST_DLV_SETTLE,
    SQ_ST_DLV_COUNT,
    SQ_ST_DLV_LIST,
    SQ_ST_DLV_RETRY,
    SQ_ST_DLV_PURGE,
    /* sqlite_queue.c's */
    SQ_ST_QUEUE_POSITION,
    SQ_ST_QUOTA_OK,
    SQ_ST_HOLD,
    /* sqlite_usage.c's */
    SQ_ST_KEY_DELETE,
    SQ_ST_USAGE_PURGE,
    SQ_ST_USAGE_PURGE_TOTALS,
    SQ_ST__COUNT
};

/* Every column of a task, in the order store_sqlite_row_task reads them. */
#define SQ_TASK_COLS                                                          \
    "task_id, key_id, model, status, spec, prompt, submit_ms, scheduled_ms, " \
    "end_ms, expire_ms, attempt, code, message, usage_input, usage_output, "  \
    "usage_sr, usage_ratio, result, progress, ref, queries, rev, qseq"

/* One connection and the statements prepared on it so far. */
struct store_sqlite_conn {
    sqlite3 *db;
    sqlite3_stmt *st[SQ_ST__COUNT];
    struct store_sqlite_conn *next; /* the readers' free list */
};

/* Open a connection to path (created if absent) in WAL mode with
 * synchronous=FULL. 0, or ERR_STORE with *err. */
int store_sqlite_conn_open(const char *path, struct store_sqlite_conn **out,
                           struct errmsg *err);
/* NULL is fine. */
void store_sqlite_conn_free(struct store_sqlite_conn *c);
/* Statement `id` (text `sql`) of c, prepared on first use; NULL (logged)
 * when it cannot be. Hand it back with stmt_done. */
sqlite3_stmt *store_sqlite_stmt(struct store_sqlite_conn *c,
                                enum store_sqlite_stmt id, const char *sql);
/* Log the failure of `what` on db; ERR_STORE. */
int store_sqlite_fail(sqlite3 *db, const char *what);
/* Run SQL without results (BEGIN, COMMIT, ...); 0 or ERR_STORE, logged. */
int store_sqlite_tx(struct store_sqlite_conn *c, const char *sql,
                    const char *what);
/* Run a write statement to completion and hand it back; *changes (if
 * given) = rows changed. ERR_CONFLICT on a constraint, else ERR_STORE. */
int store_sqlite_step_write(struct store_sqlite_conn *c, sqlite3_stmt *st,
                            const char *what, int *changes);
/* Bring the schema to the latest version (store_sqlite_migrations). */
int store_sqlite_migrate(struct store_sqlite_conn *c, struct errmsg *err);

/* Reset a statement and clear its bindings for its next use. */
static inline void stmt_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Bind text, or NULL. */
static inline void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Column i as text into dst (NULL: ""). */
static inline void copy_col(sqlite3_stmt *st, int i, char *dst, size_t size)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    snprintf(dst, size, "%s", s ? s : "");
}

/* Column i as a new string (NULL: NULL). */
static inline char *dup_col(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    return s ? xstrndup(s, (size_t)sqlite3_column_bytes(st, i)) : NULL;
}

/* Column i as bytes into dst[0..n), zero-filled. */
static inline void copy_blob(sqlite3_stmt *st, int i, unsigned char *dst,
                             size_t n)
{
    memset(dst, 0, n);
    const void *p = sqlite3_column_blob(st, i);
    size_t len = (size_t)sqlite3_column_bytes(st, i);
    if (p)
        memcpy(dst, p, len < n ? len : n);
}

/* Idle reader connections, opened on demand: one per reading thread. */
struct store_sqlite_readers {
    const char *path;     /* borrowed */
    pthread_mutex_t lock; /* guards idle */
    struct store_sqlite_conn *idle;
};

void store_sqlite_readers_init(struct store_sqlite_readers *r,
                               const char *path);
/* Close every idle reader (none may be out), release. */
void store_sqlite_readers_fini(struct store_sqlite_readers *r);
/* An idle reader, or a new one; NULL (logged) when none can be opened. */
struct store_sqlite_conn *
store_sqlite_readers_get(struct store_sqlite_readers *r);
void store_sqlite_readers_put(struct store_sqlite_readers *r,
                              struct store_sqlite_conn *c);

/* The backend (sqlite.c): the writer under its lock, the readers. */
struct store_sqlite {
    struct store base;
    char *path;
    pthread_mutex_t wlock; /* guards w */
    struct store_sqlite_conn *w;
    struct store_sqlite_readers readers;
};

static inline struct store_sqlite *store_sqlite_of(struct store *s)
{
    return container_of(s, struct store_sqlite, base);
}

/* The webhook ops (sqlite_hooks.c), named in sqlite.c's ops table. */
int store_sqlite_hook_put(struct store *s, const struct store_hook *h, int max);
int store_sqlite_hook_list(struct store *s, const char *key_id,
                           struct store_hook **out, size_t *n);
int store_sqlite_hook_get(struct store *s, const char *webhook_id,
                          const char *key_id, struct store_hook *out);
int store_sqlite_hook_delete(struct store *s, const char *webhook_id,
                             const char *key_id);
int store_sqlite_hook_disable(struct store *s, const char *webhook_id,
                              int64_t now_ms);
int store_sqlite_delivery_claim(struct store *s, const char *owner,
                                int64_t now_ms, int64_t lease_ms,
                                struct store_delivery *out, size_t max,
                                size_t *n);
int store_sqlite_delivery_settle(struct store *s, const char *owner,
                                 const struct store_delivery *d, size_t n);
int store_sqlite_delivery_list(struct store *s, const char *webhook_id,
                               int64_t offset, int64_t limit,
                               struct store_delivery **out, size_t *n,
                               int64_t *total);
int store_sqlite_delivery_retry(struct store *s, const char *webhook_id,
                                const char *delivery_id, int64_t now_ms);
int store_sqlite_delivery_purge(struct store *s, int64_t before_ms, int limit,
                                int *n);
#define STORE_SQLITE_HOOK_OPS                                               \
    .hook_put = store_sqlite_hook_put, .hook_list = store_sqlite_hook_list, \
    .hook_get = store_sqlite_hook_get,                                      \
    .hook_delete = store_sqlite_hook_delete,                                \
    .hook_disable = store_sqlite_hook_disable,                              \
    .delivery_claim = store_sqlite_delivery_claim,                          \
    .delivery_settle = store_sqlite_delivery_settle,                        \
    .delivery_list = store_sqlite_delivery_list,                            \
    .delivery_retry = store_sqlite_delivery_retry,                          \
    .delivery_purge = store_sqlite_delivery_purge

/* Read a row of SQ_TASK_COLS into *t (sqlite.c). */
void store_sqlite_row_task(sqlite3_stmt *st, struct task *t);

/* Claim on the writer w, which the caller holds (store_ops claim), in a
 * transaction of its own (sqlite_claim.c). */
int store_sqlite_claim(struct store_sqlite_conn *w, const char *worker,
                       int64_t now_ms, int64_t lease_ms,
                       const struct store_models *models, struct task *out);

/* The usage ops (sqlite_usage.c): key_delete and usage_purge on the
 * writer w, which the caller holds; usage on a reader. */
int store_sqlite_key_delete(struct store_sqlite_conn *w, const char *key_id);
int store_sqlite_usage(struct store_sqlite_conn *c,
                       const struct store_usage_query *q,
                       struct store_usage_row **rows, size_t *n,
                       struct store_usage_row *total);
int store_sqlite_usage_purge(struct store_sqlite_conn *w, int64_t before_ms,
                             int64_t *n);

/* Commit a batch of submits on the writer w, which the caller holds
 * (store_ops commit_batch). */
void store_sqlite_submit_batch(struct store_sqlite_conn *w,
                               struct store_batch_req *batch);

/* sqlite_queue.c: store_queue_position on a reader (store.h). */
int store_sqlite_queue_position(struct store_sqlite_readers *readers,
                                const struct task *t, int64_t *pos);

#endif
