/*
 * The SQLite backend's webhooks: endpoints and the outbox of their
 * deliveries (store.h, "webhooks"). The rows themselves are written by
 * the trigger of migration 005 in the transaction of each status change;
 * writes here go through the writer under its lock, reads through a
 * reader connection.
 */
#include "sqlite_int.h"

#include <stdlib.h>

#define HOOK_COLS \
    "webhook_id, key_id, url, events, secret, created_ms, disabled_ms"
#define DLV_COLS                                                             \
    "d.delivery_id, d.webhook_id, d.task_id, d.event, d.state, d.attempts, " \
    "d.created_ms, d.next_ms, d.updated_ms, d.code, d.error, d.ts, d.body"

static const char *const hook_sql[] = {
    [SQ_ST_HOOK_COUNT] = "SELECT count(*) FROM webhooks WHERE key_id = ?1",
    [SQ_ST_HOOK_PUT] = "INSERT INTO webhooks (" HOOK_COLS ") VALUES "
                       "(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [SQ_ST_HOOK_LIST] = "SELECT " HOOK_COLS " FROM webhooks WHERE key_id = ?1 "
                        "ORDER BY created_ms, webhook_id",
    [SQ_ST_HOOK_GET] = "SELECT " HOOK_COLS " FROM webhooks WHERE "
                       "webhook_id = ?1 AND key_id = ?2",
    [SQ_ST_HOOK_DELETE] = "DELETE FROM webhooks WHERE webhook_id = ?1 AND "
                          "key_id = ?2",
    [SQ_ST_HOOK_DELETE_DLV] = "DELETE FROM deliveries WHERE webhook_id = ?1",
    [SQ_ST_HOOK_DISABLE] = "UPDATE webhooks SET disabled_ms = ?2 WHERE "
                           "webhook_id = ?1 AND disabled_ms = 0",
    [SQ_ST_HOOK_DISABLE_DLV] =
        "UPDATE deliveries SET state = 2, updated_ms = ?2, error = "
        "'endpoint disabled (410 Gone)' WHERE webhook_id = ?1 AND state = 0",
    [SQ_ST_DLV_DUE] = "SELECT " DLV_COLS ", w.url, w.secret, w.key_id FROM "
                      "deliveries d JOIN webhooks w ON w.webhook_id = "
                      "d.webhook_id WHERE d.state = 0 AND d.next_ms <= ?1 "
                      "AND d.lease_until < ?1 AND w.disabled_ms = 0 "
                      "ORDER BY d.next_ms, d.seq LIMIT ?2",
    [SQ_ST_DLV_LEASE] = "UPDATE deliveries SET lease_owner = ?2, "
                        "lease_until = ?3 WHERE delivery_id = ?1",
    [SQ_ST_DLV_SETTLE] =
        "UPDATE deliveries SET state = ?3, attempts = ?4, next_ms = ?5, "
        "code = ?6, error = ?7, updated_ms = ?8, body = coalesce(body, ?9), "
        "ts = CASE WHEN ts = 0 THEN ?10 ELSE ts END, lease_owner = NULL, "
        "lease_until = 0 WHERE delivery_id = ?1 AND lease_owner = ?2",
    [SQ_ST_DLV_COUNT] = "SELECT count(*) FROM deliveries WHERE webhook_id = ?1",
    [SQ_ST_DLV_LIST] = "SELECT " DLV_COLS " FROM deliveries d WHERE "
                       "d.webhook_id = ?1 ORDER BY d.seq DESC LIMIT ?2 "
                       "OFFSET ?3",
    [SQ_ST_DLV_RETRY] = "UPDATE deliveries SET state = 0, next_ms = ?3, "
                        "updated_ms = ?3 WHERE webhook_id = ?1 AND "
                        "delivery_id = ?2",
    [SQ_ST_DLV_PURGE] = "DELETE FROM deliveries WHERE seq IN (SELECT seq FROM "
                        "deliveries WHERE state <> 0 AND updated_ms < ?1 "
                        "LIMIT ?2)",
};

/*
 * A claim's lease and an attempt's outcome are committed without an fsync
 * of their own (synchronous=NORMAL for that transaction; the next FULL
 * commit syncs them with it): lost at a power cut, a delivery is only
 * sent again, which at-least-once allows. The status change that wrote
 * the row is a FULL commit like every other.
 */
static int begin_light(struct store_sqlite_conn *w, const char *what)
{
    if (store_sqlite_tx(w, "PRAGMA synchronous=NORMAL", what) < 0)
        return ERR_STORE;
    if (store_sqlite_tx(w, "BEGIN IMMEDIATE", what) < 0) {
        store_sqlite_tx(w, "PRAGMA synchronous=FULL", what);
        return ERR_STORE;
    }
    return 0;
}

static void end_light(struct store_sqlite_conn *w, int *ret, const char *what)
{
    if (*ret == 0 && store_sqlite_tx(w, "COMMIT", what) < 0)
        *ret = ERR_STORE;
    if (*ret < 0)
        store_sqlite_tx(w, "ROLLBACK", what);
    store_sqlite_tx(w, "PRAGMA synchronous=FULL", what);
}

static sqlite3_stmt *stmt(struct store_sqlite_conn *c,
                          enum store_sqlite_stmt id)
{
    return store_sqlite_stmt(c, id, hook_sql[id]);
}

static void row_hook(sqlite3_stmt *st, struct store_hook *h)
{
    memset(h, 0, sizeof(*h));
    copy_col(st, 0, h->webhook_id, sizeof(h->webhook_id));
    copy_col(st, 1, h->key_id, sizeof(h->key_id));
    copy_col(st, 2, h->url, sizeof(h->url));
    h->events = (unsigned)sqlite3_column_int(st, 3);
    copy_col(st, 4, h->secret, sizeof(h->secret));
    h->created_ms = sqlite3_column_int64(st, 5);
    h->disabled_ms = sqlite3_column_int64(st, 6);
}

/* A row of DLV_COLS (and, claimed, url, secret, key_id after them). */
static void row_delivery(sqlite3_stmt *st, struct store_delivery *d,
                         bool claimed)
{
    memset(d, 0, sizeof(*d));
    copy_col(st, 0, d->delivery_id, sizeof(d->delivery_id));
    copy_col(st, 1, d->webhook_id, sizeof(d->webhook_id));
    copy_col(st, 2, d->task_id, sizeof(d->task_id));
    copy_col(st, 3, d->event, sizeof(d->event));
    d->state = sqlite3_column_int(st, 4);
    d->attempts = sqlite3_column_int(st, 5);
    d->created_ms = sqlite3_column_int64(st, 6);
    d->next_ms = sqlite3_column_int64(st, 7);
    d->updated_ms = sqlite3_column_int64(st, 8);
    d->code = sqlite3_column_int(st, 9);
    copy_col(st, 10, d->error, sizeof(d->error));
    d->ts = sqlite3_column_int64(st, 11);
    if (claimed) {
        d->body = dup_col(st, 12);
        copy_col(st, 13, d->url, sizeof(d->url));
        copy_col(st, 14, d->secret, sizeof(d->secret));
        copy_col(st, 15, d->key_id, sizeof(d->key_id));
    }
}

static int64_t count_of(sqlite3_stmt *st)
{
    int64_t n = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    stmt_done(st);
    return n;
}

int store_sqlite_hook_put(struct store *base, const struct store_hook *h,
                          int max)
{
    struct store_sqlite *s = store_sqlite_of(base);
    struct store_sqlite_conn *w = s->w;
    int ret = ERR_STORE;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *cnt = stmt(w, SQ_ST_HOOK_COUNT);
    sqlite3_stmt *put = stmt(w, SQ_ST_HOOK_PUT);
    if (!cnt || !put || store_sqlite_tx(w, "BEGIN IMMEDIATE", "hook_put") < 0)
        goto out;
    bind_text(cnt, 1, h->key_id);
    int64_t have = count_of(cnt);
    if (have < 0) {
        ret = store_sqlite_fail(w->db, "hook_put");
    } else if (max > 0 && have >= max) {
        ret = ERR_ALLOCATION_QUOTA;
    } else {
        bind_text(put, 1, h->webhook_id);
        bind_text(put, 2, h->key_id);
        bind_text(put, 3, h->url);
        sqlite3_bind_int(put, 4, (int)h->events);
        bind_text(put, 5, h->secret);
        sqlite3_bind_int64(put, 6, h->created_ms);
        sqlite3_bind_int64(put, 7, h->disabled_ms);
        ret = store_sqlite_step_write(w, put, "hook_put", NULL);
    }
    if (ret == 0 && store_sqlite_tx(w, "COMMIT", "hook_put commit") < 0)
        ret = ERR_STORE;
    if (ret < 0)
        store_sqlite_tx(w, "ROLLBACK", "hook_put rollback");
out:
    pthread_mutex_unlock(&s->wlock);
    return ret;
}

int store_sqlite_hook_list(struct store *base, const char *key_id,
                           struct store_hook **out, size_t *n)
{
    struct store_sqlite *s = store_sqlite_of(base);
    struct store_sqlite_conn *c = store_sqlite_readers_get(&s->readers);
    if (!c)
        return ERR_STORE;
    int ret = ERR_STORE, rc = SQLITE_ERROR;
    struct store_hook *v = NULL;
    size_t count = 0, cap = 0;
    sqlite3_stmt *st = stmt(c, SQ_ST_HOOK_LIST);
    if (st) {
        bind_text(st, 1, key_id);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (count == cap) {
                cap = cap ? cap * 2 : 4;
                v = xrealloc(v, cap * sizeof(*v));
            }
            row_hook(st, &v[count++]);
        }
        stmt_done(st);
    }
    if (rc == SQLITE_DONE) {
        *out = v;
        *n = count;
        v = NULL;
        ret = 0;
    } else {
        store_sqlite_fail(c->db, "hook_list");
    }
    free(v);
    store_sqlite_readers_put(&s->readers, c);
    return ret;
}

int store_sqlite_hook_get(struct store *base, const char *webhook_id,
                          const char *key_id, struct store_hook *out)
{
    struct store_sqlite *s = store_sqlite_of(base);
    struct store_sqlite_conn *c = store_sqlite_readers_get(&s->readers);
    if (!c)
        return ERR_STORE;
    int ret = ERR_STORE;
    sqlite3_stmt *st = stmt(c, SQ_ST_HOOK_GET);
    if (st) {
        bind_text(st, 1, webhook_id);
        bind_text(st, 2, key_id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            row_hook(st, out);
            ret = 0;
        } else if (rc == SQLITE_DONE) {
            ret = ERR_NOT_FOUND;
        } else {
            ret = store_sqlite_fail(c->db, "hook_get");
        }
        stmt_done(st);
    }
    store_sqlite_readers_put(&s->readers, c);
    return ret;
}

/* Two writes on the writer in one transaction: the first with (a, b)
 * must change a row (else `none`), the second takes (a, c). */
static int write_pair(struct store_sqlite *s, enum store_sqlite_stmt first,
                      enum store_sqlite_stmt second, const char *a,
                      const char *b, int64_t c, int none, const char *what)
{
    struct store_sqlite_conn *w = s->w;
    int ret = ERR_STORE, changes = 0;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st1 = stmt(w, first), *st2 = stmt(w, second);
    if (!st1 || !st2 || store_sqlite_tx(w, "BEGIN IMMEDIATE", what) < 0)
        goto out;
    bind_text(st1, 1, a);
    if (b)
        bind_text(st1, 2, b);
    else
        sqlite3_bind_int64(st1, 2, c);
    ret = store_sqlite_step_write(w, st1, what, &changes);
    if (ret == 0 && changes == 0)
        ret = none;
    if (ret == 0 && changes > 0) {
        bind_text(st2, 1, a);
        sqlite3_bind_int64(st2, 2, c);
        ret = store_sqlite_step_write(w, st2, what, NULL);
    }
    if (ret == 0 && store_sqlite_tx(w, "COMMIT", what) < 0)
        ret = ERR_STORE;
    if (ret < 0)
        store_sqlite_tx(w, "ROLLBACK", what);
out:
    pthread_mutex_unlock(&s->wlock);
    return ret;
}

int store_sqlite_hook_delete(struct store *base, const char *webhook_id,
                             const char *key_id)
{
    return write_pair(store_sqlite_of(base), SQ_ST_HOOK_DELETE,
                      SQ_ST_HOOK_DELETE_DLV, webhook_id, key_id, 0,
                      ERR_NOT_FOUND, "hook_delete");
}

int store_sqlite_hook_disable(struct store *base, const char *webhook_id,
                              int64_t now_ms)
{
    return write_pair(store_sqlite_of(base), SQ_ST_HOOK_DISABLE,
                      SQ_ST_HOOK_DISABLE_DLV, webhook_id, NULL, now_ms, 0,
                      "hook_disable");
}

int store_sqlite_delivery_claim(struct store *base, const char *owner,
                                int64_t now_ms, int64_t lease_ms,
                                struct store_delivery *out, size_t max,
                                size_t *n)
{
    struct store_sqlite *s = store_sqlite_of(base);
    struct store_sqlite_conn *w = s->w;
    int ret = ERR_STORE, rc = SQLITE_ERROR;
    size_t got = 0;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *due = stmt(w, SQ_ST_DLV_DUE);
    sqlite3_stmt *lease = stmt(w, SQ_ST_DLV_LEASE);
    if (!due || !lease || begin_light(w, "delivery_claim") < 0)
        goto out;
    sqlite3_bind_int64(due, 1, now_ms);
    sqlite3_bind_int64(due, 2, (int64_t)max);
    while (got < max && (rc = sqlite3_step(due)) == SQLITE_ROW)
        row_delivery(due, &out[got++], true);
    stmt_done(due);
    ret = rc == SQLITE_DONE || got == max
              ? 0
              : store_sqlite_fail(w->db, "delivery_claim");
    for (size_t i = 0; i < got && ret == 0; i++) {
        bind_text(lease, 1, out[i].delivery_id);
        bind_text(lease, 2, owner);
        sqlite3_bind_int64(lease, 3, now_ms + lease_ms);
        ret = store_sqlite_step_write(w, lease, "delivery_claim", NULL);
    }
    end_light(w, &ret, "delivery_claim");
out:
    pthread_mutex_unlock(&s->wlock);
    if (ret < 0) {
        for (size_t i = 0; i < got; i++)
            store_delivery_fini(&out[i]);
        got = 0;
    }
    *n = got;
    return ret;
}

int store_sqlite_delivery_settle(struct store *base, const char *owner,
                                 const struct store_delivery *d, size_t n)
{
    struct store_sqlite *s = store_sqlite_of(base);
    struct store_sqlite_conn *w = s->w;
    int ret = ERR_STORE;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = stmt(w, SQ_ST_DLV_SETTLE);
    if (!st || begin_light(w, "delivery_settle") < 0)
        goto out;
    ret = 0;
    for (size_t i = 0; i < n && ret == 0; i++) {
        bind_text(st, 1, d[i].delivery_id);
        bind_text(st, 2, owner);
        sqlite3_bind_int(st, 3, d[i].state);
        sqlite3_bind_int(st, 4, d[i].attempts);
        sqlite3_bind_int64(st, 5, d[i].next_ms);
        sqlite3_bind_int(st, 6, d[i].code);
        bind_text(st, 7, d[i].error);
        sqlite3_bind_int64(st, 8, d[i].updated_ms);
        bind_text(st, 9, d[i].body);
        sqlite3_bind_int64(st, 10, d[i].ts);
        ret = store_sqlite_step_write(w, st, "delivery_settle", NULL);
    }
    end_light(w, &ret, "delivery_settle");
out:
    pthread_mutex_unlock(&s->wlock);
    return ret;
}

int store_sqlite_delivery_list(struct store *base, const char *webhook_id,
                               int64_t offset, int64_t limit,
                               struct store_delivery **out, size_t *n,
                               int64_t *total)
{
    struct store_sqlite *s = store_sqlite_of(base);
    struct store_sqlite_conn *c = store_sqlite_readers_get(&s->readers);
    if (!c)
        return ERR_STORE;
    int ret = ERR_STORE, rc = SQLITE_ERROR;
    struct store_delivery *v = NULL;
    size_t count = 0;
    sqlite3_stmt *cnt = stmt(c, SQ_ST_DLV_COUNT);
    sqlite3_stmt *st = stmt(c, SQ_ST_DLV_LIST);
    if (!cnt || !st)
        goto out;
    bind_text(cnt, 1, webhook_id);
    int64_t all = count_of(cnt);
    if (all < 0)
        goto out;
    v = xcalloc(limit > 0 ? (size_t)limit : 1, sizeof(*v));
    bind_text(st, 1, webhook_id);
    sqlite3_bind_int64(st, 2, limit);
    sqlite3_bind_int64(st, 3, offset);
    while ((int64_t)count < limit && (rc = sqlite3_step(st)) == SQLITE_ROW)
        row_delivery(st, &v[count++], false);
    stmt_done(st);
    if (rc == SQLITE_DONE || (int64_t)count == limit) {
        *out = v;
        *n = count;
        *total = all;
        v = NULL;
        ret = 0;
    }
out:
    if (ret < 0)
        store_sqlite_fail(c->db, "delivery_list");
    free(v);
    store_sqlite_readers_put(&s->readers, c);
    return ret;
}

int store_sqlite_delivery_retry(struct store *base, const char *webhook_id,
                                const char *delivery_id, int64_t now_ms)
{
    struct store_sqlite *s = store_sqlite_of(base);
    int ret = ERR_STORE, changes = 0;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = stmt(s->w, SQ_ST_DLV_RETRY);
    if (st) {
        bind_text(st, 1, webhook_id);
        bind_text(st, 2, delivery_id);
        sqlite3_bind_int64(st, 3, now_ms);
        ret = store_sqlite_step_write(s->w, st, "delivery_retry", &changes);
        if (ret == 0 && changes == 0)
            ret = ERR_NOT_FOUND;
    }
    pthread_mutex_unlock(&s->wlock);
    return ret;
}

int store_sqlite_delivery_purge(struct store *base, int64_t before_ms,
                                int limit, int *n)
{
    struct store_sqlite *s = store_sqlite_of(base);
    int ret = ERR_STORE, changes = 0;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = stmt(s->w, SQ_ST_DLV_PURGE);
    if (st) {
        sqlite3_bind_int64(st, 1, before_ms);
        sqlite3_bind_int(st, 2, limit);
        ret = store_sqlite_step_write(s->w, st, "delivery_purge", &changes);
    }
    pthread_mutex_unlock(&s->wlock);
    *n = ret == 0 ? changes : 0;
    return ret;
}
