/*
 * The SQLite backend's usage ops: deleting a key, the usage report over
 * the ledger, and the ledger's own retention. The ledger itself is
 * written by SQL alone (sqlite_submit.c's hold; migration 7's triggers
 * settle or release it with the status change), so nothing here writes a
 * hold or an end.
 */
#include "sqlite_int.h"

#include <stdlib.h>
#include <time.h>

static const char *const sql[SQ_ST__COUNT] = {
    [SQ_ST_KEY_DELETE] = "DELETE FROM keys WHERE key_id = ?1",
    /* Both entries of tasks whose end is older than the cut. */
    [SQ_ST_USAGE_PURGE] = "DELETE FROM ledger WHERE task_id IN (SELECT "
                          "task_id FROM ledger WHERE phase = 1 AND at_ms < ?1 "
                          "LIMIT 10000)",
    [SQ_ST_USAGE_PURGE_TOTALS] =
        "DELETE FROM usage_totals WHERE (substr(period, 1, 1) = 'D' AND "
        "period < ?1) OR (substr(period, 1, 1) = 'M' AND period < ?2)",
};

static sqlite3_stmt *stmt(struct store_sqlite_conn *c,
                          enum store_sqlite_stmt id)
{
    return store_sqlite_stmt(c, id, sql[id]);
}

int store_sqlite_key_delete(struct store_sqlite_conn *w, const char *key_id)
{
    sqlite3_stmt *st = stmt(w, SQ_ST_KEY_DELETE);
    if (!st)
        return ERR_STORE;
    bind_text(st, 1, key_id);
    int changes = 0;
    int ret = store_sqlite_step_write(w, st, "key_delete", &changes);
    return ret < 0 ? ret : changes ? 0 : ERR_NOT_FOUND;
}

/* One report query (grouped by g, or the total for STORE_GROUP_NONE). */
static int report(struct store_sqlite_conn *c,
                  const struct store_usage_query *q, enum store_group g,
                  struct store_usage_row **rows, size_t *n)
{
    const char *col = store_group_column(g);
    char *text = xasprintf(
        "SELECT CAST(%s AS TEXT), count(*), sum(cs), sum(amount) FROM "
        "ledger WHERE phase = 1 AND kind = 'settle' AND at_ms >= ?1 AND "
        "at_ms < ?2 AND (?3 IS NULL OR key_id = ?3) GROUP BY %s ORDER BY %s "
        "LIMIT %d",
        col, col, col, LIMIT_USAGE_ROWS);
    sqlite3_stmt *st = NULL;
    struct store_usage_row *out = NULL;
    size_t count = 0;
    int ret = ERR_STORE, rc;
    if (sqlite3_prepare_v2(c->db, text, -1, &st, NULL) != SQLITE_OK) {
        store_sqlite_fail(c->db, "usage");
        goto out;
    }
    sqlite3_bind_int64(st, 1, q->from_ms);
    sqlite3_bind_int64(st, 2, q->to_ms);
    bind_text(st, 3, q->key_id);
    out = xcalloc(LIMIT_USAGE_ROWS, sizeof(*out));
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && count < LIMIT_USAGE_ROWS) {
        struct store_usage_row *r = &out[count++];
        copy_col(st, 0, r->group, sizeof(r->group));
        r->tasks = sqlite3_column_int64(st, 1);
        r->cs = sqlite3_column_int64(st, 2);
        r->amount = sqlite3_column_int64(st, 3);
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        store_sqlite_fail(c->db, "usage");
        goto out;
    }
    *rows = out;
    *n = count;
    out = NULL;
    ret = 0;
out:
    free(out);
    sqlite3_finalize(st);
    free(text);
    return ret;
}

int store_sqlite_usage(struct store_sqlite_conn *c,
                       const struct store_usage_query *q,
                       struct store_usage_row **rows, size_t *n,
                       struct store_usage_row *total)
{
    struct store_usage_row *t = NULL;
    size_t nt = 0;
    int ret = report(c, q, STORE_GROUP_NONE, &t, &nt);
    if (ret == 0 && nt == 1)
        *total = t[0];
    free(t);
    if (ret == 0 && q->group != STORE_GROUP_NONE)
        ret = report(c, q, q->group, rows, n);
    return ret;
}

/* The periods of the usage totals that begin at or after ms (UTC+8). */
static void period_names(int64_t ms, char day[48], char month[48])
{
    time_t t = (time_t)(ms / 1000 + 8 * 3600);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(day, 48, "D%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday);
    snprintf(month, 48, "M%04d%02d", tm.tm_year + 1900, tm.tm_mon + 1);
}

int store_sqlite_usage_purge(struct store_sqlite_conn *w, int64_t before_ms,
                             int64_t *n)
{
    char day[48], month[48];
    period_names(before_ms, day, month);
    sqlite3_stmt *st = stmt(w, SQ_ST_USAGE_PURGE);
    if (!st)
        return ERR_STORE;
    sqlite3_bind_int64(st, 1, before_ms);
    int changes = 0;
    int ret = store_sqlite_step_write(w, st, "usage purge", &changes);
    if (ret < 0)
        return ret;
    *n = changes;
    if (!(st = stmt(w, SQ_ST_USAGE_PURGE_TOTALS)))
        return ERR_STORE;
    bind_text(st, 1, day);
    bind_text(st, 2, month);
    return store_sqlite_step_write(w, st, "usage purge", NULL);
}
