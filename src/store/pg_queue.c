/*
 * The PostgreSQL backend's queue position of a PENDING task, from the
 * queue_pos and turns tables (one row per key): never a walk over the
 * pending rows. docs/extensions.md, "Queue position", says what the
 * number means.
 */
#include "pg_int.h"

/* $1 the task's key, $2 its qseq; as sqlite_queue.c's. */
static const char sql_position[] =
    "WITH me AS (SELECT coalesce(t.turn, 0) AS turn, "
    "greatest(1, least(q.pending, $2::bigint - q.claimed)) AS j "
    "FROM queue_pos q LEFT JOIN turns t ON t.key_id = q.key_id "
    "WHERE q.key_id = $1) "
    "SELECT me.j + coalesce((SELECT sum(least(q.pending, me.j - 1) + "
    "CASE WHEN q.pending >= me.j AND (coalesce(t.turn, 0), q.key_id) < "
    "(me.turn, $1::text) THEN 1 ELSE 0 END) FROM queue_pos q "
    "LEFT JOIN turns t ON t.key_id = q.key_id "
    "WHERE q.pending > 0 AND q.key_id <> $1), 0) FROM me";

int store_pg_queue_position(struct store_pg_pool *pool, const struct task *t,
                            int64_t *pos)
{
    struct store_pg_params p = { 0 };
    int ret, tries = 0;
    bool retry;
    p_text(&p, t->key_id);
    p_i64(&p, t->qseq);
    do {
        struct store_pg_conn *c = store_pg_pool_get(pool);
        PGresult *r;
        if (!c)
            return ERR_STORE;
        ret = store_pg_run(c, PG_ST_QUEUE_POSITION, "queue_position",
                           sql_position, &p, &r);
        if (ret == 0) {
            if (PQntuples(r) == 1)
                *pos = col_i64(r, 0, 0);
            else
                ret = ERR_NOT_FOUND;
            PQclear(r);
        }
        retry = store_pg_again(c, ret, &tries);
        store_pg_pool_put(pool, c);
    } while (retry);
    return ret;
}
