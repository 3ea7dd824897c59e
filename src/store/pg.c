/*
 * The PostgreSQL backend (libpq): many API nodes and worker processes on
 * one database (docs/architecture.md, "What runs"). Same behaviour as
 * sqlite.c; what differs is how it holds across processes:
 *
 * - Queue: tasks holds every task; pending holds one row per PENDING task
 *   (the queue proper), written in the same statement as the task's
 *   status. A claim deletes the oldest pending row of the key whose turn
 *   it is, FOR UPDATE SKIP LOCKED, so concurrent claimers never wait for
 *   each other and the dead index entries every claim leaves behind
 *   (bench/README.md, "Design measurements") pile up in a table of at
 *   most max_queue rows, which purge vacuums in milliseconds, not in the
 *   indexes of a day of tasks.
 *   (Measured: 20 000 claims of one key without vacuum made the next
 *   claim's pick read 264 pages, 3.7 ms; after VACUUM, 6 pages, 0.06 ms.)
 * - Fairness: turns(key_id, turn), the sequence value of each key's last
 *   claim; a claim serves the key with pending tasks and the lowest turn.
 *   The key row is not locked (a claimer waiting there, or skipping it,
 *   would stall claims of a key that has work); two concurrent claims of
 *   one key both take a task and the turn moves once.
 * - Submits and their limits: pg_submit.c.
 *
 * This file holds the ops and their statements; libpq, the pool and the
 * LISTEN thread are in pg_conn.c; keys and secrets in pg_keys.c. Reads, the
 * claim (idempotent by a token) and idempotent writes are retried once on a
 * fresh connection when the one they used died.
 */
#include "pg_int.h"

#include <string.h>

/* Pending rows deleted by this handle before purge vacuums the table. */
#define PG_VACUUM_EVERY 1000

/* Every column of a task, in the order row_to_task() reads them. */
#define TASK_COLS                                                             \
    "task_id, key_id, model, status, spec, prompt, submit_ms, scheduled_ms, " \
    "end_ms, expire_ms, attempt, code, message, usage_input, usage_output, "  \
    "usage_sr, usage_ratio, result, progress, ref, queries, rev, qseq"

/* A task that ends keeps at least the retention it was submitted with from
 * then on (sqlite.c's KEEP_AFTER): every statement that ends one sets
 * expire_ms = GREATEST(expire_ms, END + expire_ms - submit_ms). */

#define TERMINAL "('SUCCEEDED', 'FAILED', 'CANCELED')"

/* Joined to a one-row count c.n: wakes the listeners of every node (at
 * the commit) when n > 0, and keeps the row when it is not. */
#define NOTIFY_IF_N                                    \
    "LEFT JOIN LATERAL (SELECT pg_notify('" PG_CHANNEL \
    "', '') WHERE c.n > 0) z ON true"

/* store_list's filter: $1 key, $2..$3 submit window, $4 now, $5 model or
 * NULL, $6 status or NULL. Finished tasks past retention are gone. */
#define LIST_WHERE                                                            \
    "key_id = $1 AND submit_ms >= $2 AND submit_ms < $3 "                     \
    "AND NOT (status IN " TERMINAL " AND expire_ms <= $4) "                   \
    "AND ($5::text IS NULL OR model = $5) AND ($6::text IS NULL OR status = " \
    "$6)"

struct stmt {
    const char *what; /* for logs */
    const char *sql;
};

static const struct stmt stmts[PG_ST_SUBMIT] = {
    [PG_ST_GET] = { "get",
                    "SELECT " TASK_COLS " FROM tasks WHERE task_id = $1" },
    /* paddock_claim() (migration 3): the keys with pending tasks in turn
     * order (a loose index scan: one probe per key, not per task), then
     * the oldest pending row (of the models; NULL: any) of the first key
     * that has one not locked by another claimer. A retried claim (same
     * token) whose first attempt committed gets that task back instead of
     * a second one. */
    [PG_ST_CLAIM] = { "claim", "SELECT " TASK_COLS
                               " FROM paddock_claim($1, $2, $3, $4, $5, $6)" },
    [PG_ST_FINISH] = { "finish",
                       "UPDATE tasks SET status = $3, end_ms = $4, code = $5, "
                       "expire_ms = "
                       "GREATEST(expire_ms, $4 + expire_ms - submit_ms)"
                       ", message = $6, usage_input = $7, "
                       "usage_output = $8, usage_sr = $9, "
                       "usage_ratio = $10, result = $11, "
                       "lease_owner = NULL, lease_until = NULL, "
                       "lease_token = NULL WHERE task_id = $1 "
                       "AND status = 'RUNNING' AND lease_owner = $2" },
    /* Released and rescued tasks are new work for idle workers too. */
    [PG_ST_RELEASE] = { "release",
                        "WITH r AS (UPDATE tasks SET status = 'PENDING', "
                        "attempt = attempt - $3, lease_owner = NULL, "
                        "lease_until = NULL, lease_token = NULL, progress = 0 "
                        "WHERE task_id = $1 AND status = 'RUNNING' "
                        "AND lease_owner = $2 RETURNING id, key_id), "
                        "q AS (INSERT INTO pending (id, key_id) "
                        "SELECT id, key_id FROM r RETURNING 1) "
                        "SELECT c.n FROM (SELECT count(*) AS n FROM q) "
                        "c " NOTIFY_IF_N },
    [PG_ST_COUNT_QUERY] = { "queries", "UPDATE tasks SET queries = queries + 1 "
                                       "WHERE task_id = $1 AND queries < $2 "
                                       "RETURNING queries" },
    [PG_ST_NOTE] = { "note", "UPDATE tasks SET progress = "
                             "coalesce($3::integer, progress), "
                             "ref = coalesce($4, ref) WHERE task_id = $1 "
                             "AND status = 'RUNNING' AND lease_owner = $2" },
    /* Both halves in one statement: one snapshot, disjoint rows. */
    [PG_ST_RESCUE] = { "rescue",
                       "WITH failed AS (UPDATE tasks SET status = 'FAILED', "
                       "end_ms = $1, expire_ms = "
                       "GREATEST(expire_ms, $1 + expire_ms - submit_ms)"
                       ", code = 'InternalError.Timeout', "
                       "message = 'the task ran out of attempts: its "
                       "lease expired on each of ' || attempt || "
                       "' attempts', lease_owner = NULL, "
                       "lease_until = NULL, lease_token = NULL "
                       "WHERE status = 'RUNNING' AND lease_until < $1 "
                       "AND attempt >= $2 RETURNING 1), "
                       "requeued AS (UPDATE tasks SET status = "
                       "'PENDING', lease_owner = NULL, "
                       "lease_until = NULL, lease_token = NULL, progress = 0 "
                       "WHERE status = 'RUNNING' AND lease_until < $1 "
                       "AND attempt < $2 RETURNING id, key_id), "
                       "queued AS (INSERT INTO pending (id, key_id) "
                       "SELECT id, key_id FROM requeued RETURNING 1) "
                       "SELECT c.n, c.f FROM (SELECT (SELECT count(*) "
                       "FROM queued) AS n, (SELECT count(*) FROM "
                       "failed) AS f) c " NOTIFY_IF_N },
    /* Whoever deletes the pending row wins, claim or cancel. */
    [PG_ST_CANCEL] = { "cancel",
                       "WITH q AS (DELETE FROM pending WHERE id = (SELECT id "
                       "FROM tasks WHERE task_id = $1 AND key_id = $2) "
                       "RETURNING id) UPDATE tasks SET status = 'CANCELED', "
                       "end_ms = $3, expire_ms = "
                       "GREATEST(expire_ms, $3 + expire_ms - submit_ms)"
                       " WHERE id = (SELECT id FROM q) "
                       "AND status = 'PENDING'" },
    [PG_ST_STATE] = { "cancel", "SELECT key_id, status, expire_ms FROM tasks "
                                "WHERE task_id = $1" },
    /* The page and, in the same snapshot, how many match in all. */
    [PG_ST_LIST] = { "list", "SELECT " TASK_COLS ", count(*) OVER () "
                             "FROM tasks WHERE " LIST_WHERE
                             " ORDER BY submit_ms DESC, id DESC "
                             "LIMIT $7 OFFSET $8" },
    [PG_ST_LIST_COUNT] = { "list",
                           "SELECT count(*) FROM tasks WHERE " LIST_WHERE },
    /* SKIP LOCKED: purges of several nodes never wait for each other or
     * for a submit reusing an expired idempotency key. */
    [PG_ST_PURGE] = { "purge",
                      "WITH d AS (DELETE FROM tasks WHERE id IN (SELECT id "
                      "FROM tasks WHERE expire_ms <= $1 AND status IN " TERMINAL
                      " ORDER BY expire_ms LIMIT $2 FOR UPDATE SKIP LOCKED) "
                      "RETURNING result), "
                      "i AS (DELETE FROM idem WHERE (key_id, idem_key) IN "
                      "(SELECT key_id, idem_key FROM idem WHERE expire_ms <= "
                      "$1 "
                      "LIMIT $2 FOR UPDATE SKIP LOCKED)) "
                      "SELECT result FROM d WHERE result IS NOT NULL" },
    [PG_ST_STATS_STATUS] = { "stats",
                             "SELECT status, count(*) FROM tasks GROUP "
                             "BY status" },
    [PG_ST_STATS_QUEUE] = { "stats",
                            "SELECT t.model, count(*) AS n FROM pending p "
                            "JOIN tasks t ON t.id = p.id GROUP BY t.model "
                            "ORDER BY n DESC, t.model LIMIT $1" },
};

static struct store_pg *from_base(struct store *s)
{
    return store_pg_of(s);
}

/* Run stmts[id] on c: 0 with *out (caller PQclear()s), or a negative code. */
static int run(struct store_pg_conn *c, enum store_pg_stmt id,
               const struct store_pg_params *p, PGresult **out)
{
    return store_pg_run(c, id, stmts[id].what, stmts[id].sql, p, out);
}

/* ------------------------------------------------------------ columns */

/* Rows an UPDATE/INSERT/DELETE changed. */
static int changed(const PGresult *r)
{
    return (int)strtol(PQcmdTuples((PGresult *)r), NULL, 10);
}

static char *col_dup(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    return xstrndup(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

static double col_f64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    return strtod(PQgetvalue(r, row, col), NULL);
}

/* Read row `row` of a TASK_COLS result into *t. */
static void row_to_task(const PGresult *r, int row, struct task *t)
{
    memset(t, 0, sizeof(*t));
    col_copy(r, row, 0, t->task_id, sizeof(t->task_id));
    col_copy(r, row, 1, t->key_id, sizeof(t->key_id));
    col_copy(r, row, 2, t->model, sizeof(t->model));
    if (task_status_parse(PQgetvalue(r, row, 3), &t->status) < 0)
        t->status = TASK_UNKNOWN;
    t->spec = col_dup(r, row, 4);
    t->prompt = col_dup(r, row, 5);
    t->submit_ms = col_i64(r, row, 6);
    t->scheduled_ms = col_i64(r, row, 7);
    t->end_ms = col_i64(r, row, 8);
    t->expire_ms = col_i64(r, row, 9);
    t->attempt = (int)col_i64(r, row, 10);
    col_copy(r, row, 11, t->code, sizeof(t->code));
    t->message = col_dup(r, row, 12);
    t->usage.input_s = col_f64(r, row, 13);
    t->usage.output_s = col_f64(r, row, 14);
    t->usage.sr = (int)col_i64(r, row, 15);
    col_copy(r, row, 16, t->usage.ratio, sizeof(t->usage.ratio));
    t->result = col_dup(r, row, 17);
    t->progress = (int)col_i64(r, row, 18);
    t->queries = (int)col_i64(r, row, 20);
    t->rev = col_i64(r, row, 21);
    t->qseq = col_i64(r, row, 22);
    t->ref = col_dup(r, row, 19);
}

/* --------------------------------------------------------------- ops */

static void pg_commit_batch(struct store *base, struct store_batch_req *batch)
{
    struct store_pg *s = from_base(base);
    store_pg_submit_batch(s->pool.url, &s->w, batch);
}

static int pg_get(struct store *base, const char *task_id, struct task *out)
{
    struct store_pg *s = from_base(base);
    struct store_pg_params p = { 0 };
    int ret, tries = 0;
    bool retry;
    p_text(&p, task_id);
    do {
        struct store_pg_conn *c = store_pg_pool_get(&s->pool);
        PGresult *r;
        if (!c)
            return ERR_STORE;
        ret = run(c, PG_ST_GET, &p, &r);
        if (ret == 0) {
            if (PQntuples(r) == 1)
                row_to_task(r, 0, out);
            else
                ret = ERR_NOT_FOUND;
            PQclear(r);
        }
        retry = store_pg_again(c, ret, &tries);
        store_pg_pool_put(&s->pool, c);
    } while (retry);
    return ret;
}

static int pg_claim(struct store *base, const char *worker, int64_t now_ms,
                    int64_t lease_ms, const struct store_models *models,
                    struct task *out)
{
    struct store_pg *s = from_base(base);
    struct store_pg_params p = { 0 };
    char token[UUID_STR_LEN + 1];
    char *names = models ? store_pg_text_array(models->names, models->n) : NULL;
    int ret, tries = 0;
    bool retry;
    id_uuid4(token); /* a retry finds what the first try took */
    p_text(&p, worker);
    p_text(&p, token);
    p_text(&p, "false");
    p_i64(&p, now_ms);
    p_i64(&p, now_ms + lease_ms);
    p_text(&p, names);
    do {
        struct store_pg_conn *c = store_pg_pool_get(&s->pool);
        PGresult *r;
        if (!c) {
            ret = ERR_STORE;
            break;
        }
        p.v[2] = tries > 0 ? "true" : "false";
        ret = run(c, PG_ST_CLAIM, &p, &r);
        if (ret == 0) {
            if (PQntuples(r) == 1) {
                row_to_task(r, 0, out);
                atomic_fetch_add(&s->churn, 1);
            } else {
                ret = ERR_NOT_FOUND;
            }
            PQclear(r);
        }
        retry = store_pg_again(c, ret, &tries);
        store_pg_pool_put(&s->pool, c);
    } while (retry);
    free(names);
    return ret;
}

/* Run one write statement; *n = rows changed. `idempotent`: safe to run
 * twice, so retried once on a fresh connection. */
static int write_op(struct store_pg *s, enum store_pg_stmt id,
                    const struct store_pg_params *p, bool idempotent, int *n)
{
    int ret, tries = idempotent ? 0 : 1;
    bool retry;
    do {
        struct store_pg_conn *c = store_pg_pool_get(&s->pool);
        PGresult *r;
        if (!c)
            return ERR_STORE;
        ret = run(c, id, p, &r);
        if (ret == 0) {
            /* Rows changed, or the count the statement selects. */
            if (n)
                *n = PQntuples(r) == 1 ? (int)col_i64(r, 0, 0) : changed(r);
            PQclear(r);
        }
        retry = store_pg_again(c, ret, &tries);
        store_pg_pool_put(&s->pool, c);
    } while (retry);
    return ret;
}

static int pg_renew(struct store *base, struct store_lease *leases, size_t n,
                    int64_t until_ms)
{
    return store_pg_renew(&from_base(base)->pool, leases, n, until_ms);
}

static int pg_release_many(struct store *base, struct store_lease *leases,
                           size_t n)
{
    return store_pg_release_many(&from_base(base)->pool, leases, n);
}

static int pg_finish(struct store *base, const struct task *t,
                     const char *worker)
{
    struct store_pg_params p = { 0 };
    bool ok = t->status == TASK_SUCCEEDED;
    int n = 0;
    p_text(&p, t->task_id);
    p_text(&p, worker);
    p_text(&p, task_status_name(t->status));
    p_i64(&p, t->end_ms);
    p_text(&p, ok ? NULL : t->code);
    p_text(&p, ok ? NULL : t->message);
    if (ok) {
        p_f64(&p, t->usage.input_s);
        p_f64(&p, t->usage.output_s);
        p_i64(&p, t->usage.sr);
        p_text(&p, t->usage.ratio[0] ? t->usage.ratio : NULL);
        p_text(&p, t->result);
    } else {
        for (int i = 0; i < 5; i++)
            p_text(&p, NULL);
    }
    int ret = write_op(from_base(base), PG_ST_FINISH, &p, false, &n);
    return ret == 0 && n == 0 ? ERR_CONFLICT : ret;
}

static int pg_release(struct store *base, const char *task_id,
                      const char *worker, bool counted)
{
    struct store_pg_params p = { 0 };
    int n = 0;
    p_text(&p, task_id);
    p_text(&p, worker);
    p_i64(&p, counted ? 0 : 1);
    int ret = write_op(from_base(base), PG_ST_RELEASE, &p, false, &n);
    return ret == 0 && n == 0 ? ERR_CONFLICT : ret;
}

static int pg_count_query(struct store *base, const char *task_id, int max,
                          int *count)
{
    struct store_pg_params p = { 0 };
    p_text(&p, task_id);
    p_i64(&p, max);
    /* Not retried: a count that committed unseen would be counted twice. */
    int ret = write_op(from_base(base), PG_ST_COUNT_QUERY, &p, false, count);
    if (ret < 0)
        *count = 0;
    return ret;
}

static int pg_note(struct store *base, const char *task_id, const char *worker,
                   int progress, const char *ref)
{
    struct store_pg_params p = { 0 };
    int n = 0;
    p_text(&p, task_id);
    p_text(&p, worker);
    if (progress >= 0)
        p_i64(&p, progress);
    else
        p_text(&p, NULL);
    p_text(&p, ref);
    /* Setting the same values twice is harmless: safe to retry. */
    int ret = write_op(from_base(base), PG_ST_NOTE, &p, true, &n);
    return ret == 0 && n == 0 ? ERR_CONFLICT : ret;
}

static int pg_rescue(struct store *base, int64_t now_ms, int max_attempts,
                     int *requeued, int *failed)
{
    struct store_pg *s = from_base(base);
    struct store_pg_params p = { 0 };
    PGresult *r;
    p_i64(&p, now_ms);
    p_i64(&p, max_attempts);
    struct store_pg_conn *c = store_pg_pool_get(&s->pool);
    if (!c)
        return ERR_STORE;
    int ret = run(c, PG_ST_RESCUE, &p, &r);
    if (ret == 0) {
        *requeued = (int)col_i64(r, 0, 0);
        *failed = (int)col_i64(r, 0, 1);
        PQclear(r);
    }
    store_pg_pool_put(&s->pool, c);
    return ret;
}

static int pg_cancel(struct store *base, const char *task_id,
                     const char *key_id, int64_t now_ms,
                     enum task_status *status)
{
    struct store_pg *s = from_base(base);
    struct store_pg_params p = { 0 };
    PGresult *r;
    p_text(&p, task_id);
    p_text(&p, key_id);
    p_i64(&p, now_ms);
    struct store_pg_conn *c = store_pg_pool_get(&s->pool);
    if (!c)
        return ERR_STORE;
    int ret = run(c, PG_ST_CANCEL, &p, &r);
    if (ret < 0)
        goto out;
    int n = changed(r);
    PQclear(r);
    if (n == 1) {
        *status = TASK_CANCELED;
        atomic_fetch_add(&s->churn, 1);
        goto out;
    }
    /* Not canceled: say why without telling another key anything. */
    p.n = 1;
    if ((ret = run(c, PG_ST_STATE, &p, &r)) < 0)
        goto out;
    ret = ERR_NOT_FOUND;
    if (PQntuples(r) == 1) {
        enum task_status now = TASK_UNKNOWN;
        task_status_parse(PQgetvalue(r, 0, 1), &now);
        bool gone = task_status_terminal(now) && col_i64(r, 0, 2) <= now_ms;
        if (strcmp(PQgetvalue(r, 0, 0), key_id) == 0 && !gone) {
            *status = now;
            ret = ERR_UNSUPPORTED_OPERATION;
        }
    }
    PQclear(r);
out:
    store_pg_pool_put(&s->pool, c);
    return ret;
}

static void filter_params(struct store_pg_params *p,
                          const struct store_filter *f)
{
    p_text(p, f->key_id);
    p_i64(p, f->from_ms);
    p_i64(p, f->to_ms);
    p_i64(p, f->now_ms);
    p_text(p, f->model);
    p_text(p, f->status >= 0 ? task_status_name(f->status) : NULL);
}

static int list_on(struct store_pg_conn *c, const struct store_filter *f,
                   struct task **out, size_t *n, int64_t *total)
{
    struct store_pg_params p = { 0 };
    PGresult *r;
    filter_params(&p, f);
    p_i64(&p, f->limit);
    p_i64(&p, f->offset);
    int ret = run(c, PG_ST_LIST, &p, &r);
    if (ret < 0)
        return ret;
    int rows = PQntuples(r);
    if (rows > 0) {
        struct task *tasks = xcalloc((size_t)rows, sizeof(*tasks));
        for (int i = 0; i < rows; i++)
            row_to_task(r, i, &tasks[i]);
        *total = col_i64(r, 0, 23); /* after TASK_COLS */
        *out = tasks;
        *n = (size_t)rows;
        PQclear(r);
        return 0;
    }
    PQclear(r);
    /* An empty page (past the end): the count on its own. */
    p.n = 6;
    if ((ret = run(c, PG_ST_LIST_COUNT, &p, &r)) < 0)
        return ret;
    *total = col_i64(r, 0, 0);
    PQclear(r);
    return 0;
}

static int pg_list(struct store *base, const struct store_filter *f,
                   struct task **out, size_t *n, int64_t *total)
{
    struct store_pg *s = from_base(base);
    int ret, tries = 0;
    bool retry;
    do {
        struct store_pg_conn *c = store_pg_pool_get(&s->pool);
        if (!c)
            return ERR_STORE;
        ret = list_on(c, f, out, n, total);
        retry = store_pg_again(c, ret, &tries);
        store_pg_pool_put(&s->pool, c);
    } while (retry);
    return ret;
}

static int pg_purge(struct store *base, int64_t now_ms, int limit,
                    char ***results, size_t *n)
{
    struct store_pg *s = from_base(base);
    struct store_pg_params p = { 0 };
    PGresult *r;
    p_i64(&p, now_ms);
    p_i64(&p, limit > 0 ? limit : 0);
    struct store_pg_conn *c = store_pg_pool_get(&s->pool);
    if (!c)
        return ERR_STORE;
    int ret = run(c, PG_ST_PURGE, &p, &r);
    if (ret == 0) {
        int rows = PQntuples(r);
        char **names = xcalloc(rows > 0 ? (size_t)rows : 1, sizeof(char *));
        for (int i = 0; i < rows; i++)
            names[i] = col_dup(r, i, 0);
        *results = names;
        *n = (size_t)rows;
        PQclear(r);
    }
    /* Claims and cancels leave dead rows in the pending table; vacuum it
     * here, on the janitor's period, rather than wait for autovacuum's
     * minute: a claim walks every dead entry of its key until then. */
    if (ret == 0 && atomic_load(&s->churn) >= PG_VACUUM_EVERY) {
        atomic_store(&s->churn, 0);
        store_pg_sql(c, "VACUUM (SKIP_LOCKED) pending", NULL, "vacuum", NULL);
    }
    store_pg_pool_put(&s->pool, c);
    return ret;
}

static int stats_on(struct store_pg_conn *c, struct store_stats *out)
{
    struct store_pg_params p = { 0 };
    PGresult *r;
    int ret = run(c, PG_ST_STATS_STATUS, NULL, &r);
    if (ret < 0)
        return ret;
    for (int i = 0; i < PQntuples(r); i++) {
        enum task_status status;
        if (task_status_parse(PQgetvalue(r, i, 0), &status) == 0 &&
            status < TASK_UNKNOWN)
            out->by_status[status] = col_i64(r, i, 1);
    }
    PQclear(r);
    p_i64(&p, STORE_STATS_MODELS);
    if ((ret = run(c, PG_ST_STATS_QUEUE, &p, &r)) < 0)
        return ret;
    for (int i = 0; i < PQntuples(r) && out->n_queue < STORE_STATS_MODELS;
         i++) {
        col_copy(r, i, 0, out->queue[out->n_queue].model,
                 sizeof(out->queue[0].model));
        out->queue[out->n_queue++].pending = col_i64(r, i, 1);
    }
    PQclear(r);
    return 0;
}

static int pg_stats(struct store *base, struct store_stats *out)
{
    struct store_pg *s = from_base(base);
    int ret, tries = 0;
    bool retry;
    do {
        struct store_pg_conn *c = store_pg_pool_get(&s->pool);
        if (!c)
            return ERR_STORE;
        memset(out, 0, sizeof(*out));
        ret = stats_on(c, out);
        retry = store_pg_again(c, ret, &tries);
        store_pg_pool_put(&s->pool, c);
    } while (retry);
    return ret;
}

static int pg_key_put(struct store *base, const struct store_key *k)
{
    return store_pg_key_put(&from_base(base)->pool, k);
}

static int pg_key_list(struct store *base, struct store_key **out, size_t *n)
{
    return store_pg_key_list(&from_base(base)->pool, out, n);
}

static int pg_key_delete(struct store *base, const char *key_id)
{
    return store_pg_key_delete(&from_base(base)->pool, key_id);
}

static int pg_usage(struct store *base, const struct store_usage_query *q,
                    struct store_usage_row **rows, size_t *n,
                    struct store_usage_row *total)
{
    return store_pg_usage(&from_base(base)->pool, q, rows, n, total);
}

static int pg_usage_purge(struct store *base, int64_t before_ms, int64_t *n)
{
    return store_pg_usage_purge(&from_base(base)->pool, before_ms, n);
}

static int pg_secret(struct store *base, const char *name,
                     unsigned char out[32])
{
    return store_pg_secret(&from_base(base)->pool, name, out);
}

static int pg_queue_position(struct store *base, const struct task *t,
                             int64_t *pos)
{
    return store_pg_queue_position(&from_base(base)->pool, t, pos);
}

static void pg_watch(struct store *base, store_changed fn, void *arg)
{
    store_pg_listen_watch(&from_base(base)->listen, fn, arg);
}

static int pg_wait_work(struct store *base, uint64_t *seen, int timeout_ms)
{
    return store_pg_listen_wait(&from_base(base)->listen, false, seen,
                                timeout_ms);
}

static void pg_close(struct store *base)
{
    struct store_pg *s = from_base(base);
    store_pg_listen_fini(&s->listen); /* before the pool: it uses its URL */
    store_pg_conn_close(&s->w);
    store_pg_pool_fini(&s->pool);
    free(s);
}

static const struct store_ops pg_ops = {
    .name = "postgres",
    .batch_max = PG_BATCH_MAX,
    .commit_batch = pg_commit_batch,
    .get = pg_get,
    .claim = pg_claim,
    .renew = pg_renew,
    .finish = pg_finish,
    .release = pg_release,
    .release_many = pg_release_many,
    .count_query = pg_count_query,
    .note = pg_note,
    .rescue = pg_rescue,
    .cancel = pg_cancel,
    .list = pg_list,
    .purge = pg_purge,
    .stats = pg_stats,
    .key_put = pg_key_put,
    .key_list = pg_key_list,
    .key_delete = pg_key_delete,
    .usage = pg_usage,
    .usage_purge = pg_usage_purge,
    .secret = pg_secret,
    .queue_position = pg_queue_position,
    .wait_work = pg_wait_work,
    STORE_PG_HOOK_OPS,
    .watch = pg_watch,
    .close = pg_close,
};

int store_pg_open(const char *url, struct store **out, struct errmsg *err)
{
    struct store_pg *s = xcalloc(1, sizeof(*s));
    *out = NULL;
    s->base.ops = &pg_ops;
    atomic_init(&s->churn, 0);
    int ret = store_pg_pool_init(&s->pool, url, err);
    store_pg_listen_init(&s->listen, s->pool.url);
    if (ret < 0)
        goto fail;
    /* The first pooled connection migrates and stays open. */
    ret = store_pg_migrate(&s->pool.conns[0], err);
    if (ret < 0)
        goto fail;
    *out = &s->base;
    return 0;
fail:
    pg_close(&s->base);
    return ret;
}
