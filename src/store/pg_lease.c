/*
 * The PostgreSQL backend's batches of leases: renewals (with the progress
 * engines reported) and releases, each one statement over arrays however
 * many tasks, so a keeper tick or a shutdown is one round trip and one
 * commit.
 */
#include "pg_int.h"

#include <stdlib.h>

static const struct {
    const char *what, *sql;
} stmts[PG_ST__COUNT] = {
    /* Every lease in one statement: parallel arrays of task ids, owners
     * and progress (NULL: unchanged); the places of the held ones come
     * back. */
    [PG_ST_RENEW] = { "renew",
                      "UPDATE tasks t SET lease_until = $4, "
                      "progress = coalesce(u.p, t.progress) "
                      "FROM unnest($1::text[], $2::text[], $3::integer[]) "
                      "WITH ORDINALITY AS u(id, owner, p, i) "
                      "WHERE t.task_id = u.id AND t.status = 'RUNNING' "
                      "AND t.lease_owner = u.owner RETURNING u.i" },
    /* Many at once: parallel arrays of task ids and owners; the places of
     * the released ones come back (one wake-up for all of them). */
    [PG_ST_RELEASE_MANY] = { "release",
                             "WITH r AS (UPDATE tasks t SET status = "
                             "'PENDING', attempt = attempt - 1, "
                             "lease_owner = NULL, lease_until = NULL, "
                             "lease_token = NULL, progress = 0 "
                             "FROM unnest($1::text[], $2::text[]) "
                             "WITH ORDINALITY AS u(id, owner, i) "
                             "WHERE t.task_id = u.id AND t.status = 'RUNNING' "
                             "AND t.lease_owner = u.owner "
                             "RETURNING t.id, t.key_id, u.i), "
                             "q AS (INSERT INTO pending (id, key_id) "
                             "SELECT id, key_id FROM r RETURNING 1), "
                             "z AS (SELECT pg_notify('" PG_CHANNEL "', '') "
                             "WHERE EXISTS (SELECT 1 FROM q)) "
                             "SELECT r.i FROM r LEFT JOIN (SELECT count(*) "
                             "FROM z) n ON true" },
};

static int run(struct store_pg_conn *c, enum store_pg_stmt id,
               const struct store_pg_params *p, PGresult **out)
{
    return store_pg_run(c, id, stmts[id].what, stmts[id].sql, p, out);
}

/* The progress values as an integer[] literal, NULL for -1. */
static char *progress_array(const struct store_lease *leases, size_t n)
{
    struct buf b = BUF_INIT;
    buf_putc(&b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(&b, ',');
        if (leases[i].progress >= 0)
            buf_printf(&b, "%d", leases[i].progress);
        else
            buf_puts(&b, "NULL");
    }
    buf_putc(&b, '}');
    return buf_take(&b);
}

int store_pg_renew(struct store_pg_pool *pool, struct store_lease *leases,
                   size_t n, int64_t until_ms)
{
    const char **ids = xcalloc(n, sizeof(*ids));
    const char **owners = xcalloc(n, sizeof(*owners));
    for (size_t i = 0; i < n; i++) {
        ids[i] = leases[i].task_id;
        owners[i] = leases[i].owner;
    }
    char *a_ids = store_pg_text_array(ids, n);
    char *a_owners = store_pg_text_array(owners, n);
    char *a_progress = progress_array(leases, n);
    struct store_pg_params p = { 0 };
    p_text(&p, a_ids);
    p_text(&p, a_owners);
    p_text(&p, a_progress);
    p_i64(&p, until_ms);
    int ret, tries = 0; /* the same deadlines again: safe to retry */
    bool retry;
    do {
        struct store_pg_conn *c = store_pg_pool_get(pool);
        PGresult *r;
        if (!c) {
            ret = ERR_STORE;
            break;
        }
        ret = run(c, PG_ST_RENEW, &p, &r);
        if (ret == 0) {
            int rows = PQntuples(r);
            for (int k = 0; k < rows; k++) {
                int64_t i = col_i64(r, k, 0); /* 1-based, as given */
                if (i >= 1 && (size_t)i <= n)
                    leases[i - 1].held = true;
            }
            PQclear(r);
        }
        retry = store_pg_again(c, ret, &tries);
        store_pg_pool_put(pool, c);
    } while (retry);
    free(a_ids);
    free(a_owners);
    free(a_progress);
    free(ids);
    free(owners);
    return ret;
}

int store_pg_release_many(struct store_pg_pool *pool,
                          struct store_lease *leases, size_t n)
{
    const char **ids = xcalloc(n, sizeof(*ids));
    const char **owners = xcalloc(n, sizeof(*owners));
    for (size_t i = 0; i < n; i++) {
        ids[i] = leases[i].task_id;
        owners[i] = leases[i].owner;
    }
    char *a_ids = store_pg_text_array(ids, n);
    char *a_owners = store_pg_text_array(owners, n);
    struct store_pg_params p = { 0 };
    p_text(&p, a_ids);
    p_text(&p, a_owners);
    /* Not retried: a release that committed unseen would be taken for a
     * lost lease, and a second one finds the tasks PENDING. */
    struct store_pg_conn *c = store_pg_pool_get(pool);
    PGresult *r;
    int ret = c ? run(c, PG_ST_RELEASE_MANY, &p, &r) : ERR_STORE;
    if (ret == 0) {
        for (int k = 0; k < PQntuples(r); k++) {
            int64_t i = col_i64(r, k, 0); /* 1-based, as given */
            if (i >= 1 && (size_t)i <= n)
                leases[i - 1].held = true;
        }
        PQclear(r);
    }
    if (c)
        store_pg_pool_put(pool, c);
    free(a_ids);
    free(a_owners);
    free(ids);
    free(owners);
    return ret;
}
