/*
 * The PostgreSQL backend's usage ops: deleting a key, the usage report
 * over the ledger, and the ledger's retention. As on SQLite, the ledger
 * is written by SQL alone (paddock_submit_held's hold, migration 7's
 * triggers), never here. Unprepared statements: these run rarely.
 */
#include "pg_int.h"

#include <string.h>
#include <time.h>

struct exec_args {
    const char *sql, *what;
    const struct store_pg_params *p;
    PGresult **out;
};

static int exec_on(struct store_pg_conn *c, void *arg)
{
    struct exec_args *a = arg;
    return store_pg_sql(c, a->sql, a->p, a->what, a->out);
}

/* Run sql with p on a pooled connection, once more on a fresh one when the
 * connection died (every statement here may run twice). */
static int exec(struct store_pg_pool *pool, const char *sql,
                const struct store_pg_params *p, const char *what,
                PGresult **out)
{
    struct exec_args a = { .sql = sql, .what = what, .p = p, .out = out };
    return store_pg_with(pool, exec_on, &a);
}

int store_pg_key_delete(struct store_pg_pool *pool, const char *key_id)
{
    struct store_pg_params p = { 0 };
    PGresult *r;
    p_text(&p, key_id);
    int ret =
        exec(pool, "DELETE FROM keys WHERE key_id = $1", &p, "key_delete", &r);
    if (ret < 0)
        return ret;
    bool gone = strcmp(PQcmdTuples(r), "0") != 0;
    PQclear(r);
    return gone ? 0 : ERR_NOT_FOUND;
}

static int report(struct store_pg_pool *pool, const struct store_usage_query *q,
                  enum store_group g, struct store_usage_row **rows, size_t *n)
{
    const char *col = store_group_column(g);
    char *sql = xasprintf(
        "SELECT (%s)::text, count(*), coalesce(sum(cs), 0), "
        "coalesce(sum(amount), 0) FROM ledger WHERE phase = 1 AND kind = "
        "'settle' AND at_ms >= $1 AND at_ms < $2 AND ($3::text IS NULL OR "
        "key_id = $3) GROUP BY 1 ORDER BY 1 LIMIT %d",
        col, LIMIT_USAGE_ROWS);
    struct store_pg_params p = { 0 };
    PGresult *r;
    p_i64(&p, q->from_ms);
    p_i64(&p, q->to_ms);
    p_text(&p, q->key_id);
    int ret = exec(pool, sql, &p, "usage", &r);
    free(sql);
    if (ret < 0)
        return ret;
    int m = PQntuples(r);
    struct store_usage_row *out = xcalloc(m > 0 ? (size_t)m : 1, sizeof(*out));
    for (int i = 0; i < m; i++) {
        col_copy(r, i, 0, out[i].group, sizeof(out[i].group));
        out[i].tasks = col_i64(r, i, 1);
        out[i].cs = col_i64(r, i, 2);
        out[i].amount = col_i64(r, i, 3);
    }
    PQclear(r);
    *rows = out;
    *n = (size_t)m;
    return 0;
}

int store_pg_usage(struct store_pg_pool *pool,
                   const struct store_usage_query *q,
                   struct store_usage_row **rows, size_t *n,
                   struct store_usage_row *total)
{
    struct store_usage_row *t = NULL;
    size_t nt = 0;
    int ret = report(pool, q, STORE_GROUP_NONE, &t, &nt);
    if (ret == 0 && nt == 1)
        *total = t[0];
    free(t);
    if (ret == 0 && q->group != STORE_GROUP_NONE)
        ret = report(pool, q, q->group, rows, n);
    return ret;
}

int store_pg_usage_purge(struct store_pg_pool *pool, int64_t before_ms,
                         int64_t *n)
{
    time_t t = (time_t)(before_ms / 1000 + 8 * 3600); /* periods: UTC+8 */
    struct tm tm;
    gmtime_r(&t, &tm);
    char day[48], month[48];
    snprintf(day, sizeof(day), "D%04d%02d%02d", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday);
    snprintf(month, sizeof(month), "M%04d%02d", tm.tm_year + 1900,
             tm.tm_mon + 1);
    struct store_pg_params p = { 0 };
    PGresult *r;
    p_i64(&p, before_ms);
    int ret = exec(pool,
                   "DELETE FROM ledger WHERE task_id IN (SELECT task_id FROM "
                   "ledger WHERE phase = 1 AND at_ms < $1 LIMIT 10000)",
                   &p, "usage purge", &r);
    if (ret < 0)
        return ret;
    *n = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    struct store_pg_params q = { 0 };
    p_text(&q, day);
    p_text(&q, month);
    ret = exec(pool,
               "DELETE FROM usage_totals WHERE (left(period, 1) = 'D' AND "
               "period < $1) OR (left(period, 1) = 'M' AND period < $2)",
               &q, "usage purge", &r);
    if (ret == 0)
        PQclear(r);
    return ret;
}
