/*
 * SQLite connections for the SQLite backend (sqlite_int.h): opening one,
 * its prepared statements, the readers' free list, the few calls every op
 * makes, and schema migrations.
 */
#include "sqlite_int.h"

#include "../log/log.h"
#include "../metrics/metrics.h"

#include <stdlib.h>

int store_sqlite_fail(sqlite3 *db, const char *what)
{
    metrics_add(METRIC_STORE_ERRORS, 1);
    log_error("store failed", "backend=sqlite op=%s error=\"%s\"", what,
              sqlite3_errmsg(db));
    return ERR_STORE;
}

void store_sqlite_conn_free(struct store_sqlite_conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < SQ_ST__COUNT; i++)
        sqlite3_finalize(c->st[i]);
    sqlite3_close(c->db);
    free(c);
}

int store_sqlite_conn_open(const char *path, struct store_sqlite_conn **out,
                           struct errmsg *err)
{
    struct store_sqlite_conn *c = xcalloc(1, sizeof(*c));
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
    store_sqlite_conn_free(c);
    *out = NULL;
    return err->code;
}

sqlite3_stmt *store_sqlite_stmt(struct store_sqlite_conn *c,
                                enum store_sqlite_stmt id, const char *sql)
{
    if (!c->st[id]) {
        if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                               &c->st[id], NULL) != SQLITE_OK) {
            store_sqlite_fail(c->db, "prepare");
            return NULL;
        }
    }
    return c->st[id];
}

int store_sqlite_tx(struct store_sqlite_conn *c, const char *sql,
                    const char *what)
{
    if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return store_sqlite_fail(c->db, what);
    return 0;
}

int store_sqlite_step_write(struct store_sqlite_conn *c, sqlite3_stmt *st,
                            const char *what, int *changes)
{
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc != SQLITE_DONE)
        ret = rc == SQLITE_CONSTRAINT ? ERR_CONFLICT
                                      : store_sqlite_fail(c->db, what);
    else if (changes)
        *changes = sqlite3_changes(c->db);
    stmt_done(st);
    return ret;
}

/* ----------------------------------------------------------- readers */

void store_sqlite_readers_init(struct store_sqlite_readers *r, const char *path)
{
    r->path = path;
    pthread_mutex_init(&r->lock, NULL);
    r->idle = NULL;
}

void store_sqlite_readers_fini(struct store_sqlite_readers *r)
{
    while (r->idle) {
        struct store_sqlite_conn *c = r->idle;
        r->idle = c->next;
        store_sqlite_conn_free(c);
    }
    pthread_mutex_destroy(&r->lock);
}

struct store_sqlite_conn *
store_sqlite_readers_get(struct store_sqlite_readers *r)
{
    pthread_mutex_lock(&r->lock);
    struct store_sqlite_conn *c = r->idle;
    if (c)
        r->idle = c->next;
    pthread_mutex_unlock(&r->lock);
    if (!c) {
        struct errmsg err = { 0 };
        if (store_sqlite_conn_open(r->path, &c, &err) < 0) {
            log_error("store failed", "backend=sqlite op=open error=\"%s\"",
                      errmsg_text(&err));
            return NULL;
        }
    }
    return c;
}

void store_sqlite_readers_put(struct store_sqlite_readers *r,
                              struct store_sqlite_conn *c)
{
    pthread_mutex_lock(&r->lock);
    c->next = r->idle;
    r->idle = c;
    pthread_mutex_unlock(&r->lock);
}

/* --------------------------------------------------------- migration */

/* store_sqlite_migrations[v] takes user_version v to v + 1, all of them
 * in one transaction. */
int store_sqlite_migrate(struct store_sqlite_conn *c, struct errmsg *err)
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
    if (version > (int)store_sqlite_migrations_n) {
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        return errmsg_set(err, ERR_STORE,
                          "the database schema is version %d, newer than "
                          "this paddock (%zu): upgrade paddock",
                          version, store_sqlite_migrations_n);
    }
    for (int v = version; v < (int)store_sqlite_migrations_n; v++) {
        if (sqlite3_exec(c->db, store_sqlite_migrations[v], NULL, NULL, NULL) !=
            SQLITE_OK)
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
