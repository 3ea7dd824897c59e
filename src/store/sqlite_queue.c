/*
 * The SQLite backend's queue position of a PENDING task, from the queues
 * table alone (one row per key: its pending count, its turn, the numbers
 * given and claimed): never a walk over the tasks. docs/extensions.md,
 * "Queue position", says what the number means.
 */
#include "sqlite_int.h"

/* ?1 the task's key, ?2 its qseq. j: the round of the key's claims that
 * takes the task (its place in the key's FIFO). Before it go every key's
 * first j - 1 tasks, then the keys ahead of its key in turn order that
 * have a j-th. */
static const char sql_position[] =
    "WITH me AS (SELECT turn, max(1, min(pending, ?2 - claimed)) AS j "
    "FROM queues WHERE key_id = ?1) "
    "SELECT me.j + coalesce((SELECT sum(min(q.pending, me.j - 1) + "
    "(q.pending >= me.j AND (q.turn < me.turn OR (q.turn = me.turn AND "
    "q.key_id < ?1)))) FROM queues q WHERE q.pending > 0 AND "
    "q.key_id <> ?1), 0) FROM me";

int store_sqlite_queue_position(struct store_sqlite_readers *readers,
                                const struct task *t, int64_t *pos)
{
    struct store_sqlite_conn *c = store_sqlite_readers_get(readers);
    if (!c)
        return ERR_STORE;
    int ret = ERR_STORE;
    sqlite3_stmt *st = store_sqlite_stmt(c, SQ_ST_QUEUE_POSITION, sql_position);
    if (st) {
        bind_text(st, 1, t->key_id);
        sqlite3_bind_int64(st, 2, t->qseq);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *pos = sqlite3_column_int64(st, 0);
            ret = 0;
        } else if (rc == SQLITE_DONE) {
            ret = ERR_NOT_FOUND;
        } else {
            ret = store_sqlite_fail(c->db, "queue_position");
        }
        stmt_done(st);
    }
    store_sqlite_readers_put(readers, c);
    return ret;
}
