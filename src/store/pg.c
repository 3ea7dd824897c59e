/*
 * The PostgreSQL backend (libpq): many API nodes and worker processes on
 * one database (ARCHITECTURE.md, "Many nodes"). Same behaviour as sqlite.c;
 * what differs is how it holds across processes:
 *
 * - Queue: tasks holds every task; pending holds one row per PENDING task
 *   (the queue proper), written in the same statement as the task's
 *   status. A claim deletes the oldest pending row of the key whose turn
 *   it is, FOR UPDATE SKIP LOCKED, so concurrent claimers never wait for
 *   each other and the dead index entries every claim leaves behind
 *   (PERFORMANCE.md) pile up in a table of at most max_queue rows, which
 *   purge vacuums in milliseconds, not in the indexes of a day of tasks.
 *   (Measured: 20 000 claims of one key without vacuum made the next
 *   claim's pick read 264 pages, 3.7 ms; after VACUUM, 6 pages, 0.06 ms.)
 * - Fairness: turns(key_id, turn), the sequence value of each key's last
 *   claim; a claim serves the key with pending tasks and the lowest turn.
 *   The key row is not locked (a claimer waiting there, or skipping it,
 *   would stall claims of a key that has work); two concurrent claims of
 *   one key both take a task and the turn moves once.
 * - Counters: none are kept. The limits count in the submit transaction,
 *   once per batch: a key's PENDING+RUNNING tasks (an index, at most
 *   max_active entries) and the pending table (at most max_queue rows);
 *   the batch adds what it inserts. A row of counters would be written by
 *   every claim, and hot rows serialise claimers.
 * - Limits across nodes: every submit batch takes one advisory lock first,
 *   so batches of all nodes run their checks one after another, as
 *   SQLite's single writer does; group commit makes that one lock hold per
 *   batch. Taking it first is also what keeps batches free of deadlocks.
 * - Submits: one call of paddock_submit() per submit, one round trip; its
 *   refusals are results, not errors, so a batch needs no savepoint. (A
 *   savepoint per submit would give a batch of more than 64 submits an
 *   overflowed subtransaction cache, which slows every snapshot of every
 *   session of the cluster.) An unexpected error in one submit rolls the
 *   batch back; that submit answers ERR_STORE and the rest run again.
 *
 * Connections: a fixed pool guarded by `lock`, plus one the committer
 * thread owns. Every call is bounded: connect_timeout, TCP keepalives and
 * tcp_user_timeout on the connection, statement_timeout on the server, and
 * a client-side deadline on every wait (a connection that misses it is
 * dropped). A pooled connection found dead (the server restarted) is
 * replaced before anything is sent on it; reads, the claim (idempotent by
 * a token) and idempotent writes are retried once on a fresh connection
 * when the one they used died; a failed commit is reported, never retried.
 */
#include "store_int.h"

#include "../log/log.h"
#include "../metrics/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Connections for the ops (the committer has its own): enough for the
 * HTTP threads and a few workers; more callers wait their turn. */
#define PG_POOL 8
/* The server ends a statement that runs longer (ms). */
#define PG_STATEMENT_TIMEOUT "10000"
/* The client gives up on an answer after this (the server's own limit plus
 * a commit's fsync and the network), and drops the connection. */
#define PG_WAIT_MS 15000
/* Longest wait for a free pooled connection. */
#define PG_POOL_WAIT_MS (2 * PG_WAIT_MS)
/* Submits committed in one transaction: bounds its duration and locks. */
#define PG_BATCH_MAX 512
/* Pending rows deleted by this handle before purge vacuums the table. */
#define PG_VACUUM_EVERY 1000
/* Advisory locks (pg_advisory_xact_lock(ns, id)); ns is "padd". */
#define PG_LOCK_NS      "1885430884"
#define PG_LOCK_MIGRATE "1"
#define PG_LOCK_SUBMIT  "2"
/* The LISTEN/NOTIFY channel of new pending work. */
#define PG_CHANNEL "paddock_work"

/* Every column of a task, in the order row_to_task() reads them. */
#define TASK_COLS                                                             \
    "task_id, key_id, model, status, spec, prompt, submit_ms, scheduled_ms, " \
    "end_ms, expire_ms, attempt, code, message, usage_input, usage_output, "  \
    "usage_sr, usage_ratio, result, progress, ref"

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

enum stmt_id {
    ST_SUBMIT,
    ST_GET,
    ST_CLAIM,
    ST_RENEW,
    ST_FINISH,
    ST_RELEASE,
    ST_NOTE,
    ST_RESCUE,
    ST_CANCEL,
    ST_STATE,
    ST_LIST,
    ST_LIST_COUNT,
    ST_PURGE,
    ST_STATS_STATUS,
    ST_STATS_QUEUE,
    ST_KEY_PUT,
    ST_KEY_LIST,
    ST_SECRET_PUT,
    ST_SECRET_GET,
    ST__COUNT
};

struct stmt {
    const char *what; /* for logs */
    const char *sql;
};

static const struct stmt stmts[ST__COUNT] = {
    [ST_SUBMIT] = { "submit",
                    "SELECT rc, replay_id, active, depth FROM paddock_submit("
                    "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)" },
    [ST_GET] = { "get", "SELECT " TASK_COLS " FROM tasks WHERE task_id = $1" },
    /* paddock_claim() (migration 3): the keys with pending tasks in turn
     * order (a loose index scan: one probe per key, not per task), then
     * the oldest pending row (of the models; NULL: any) of the first key
     * that has one not locked by another claimer. A retried claim (same
     * token) whose first attempt committed gets that task back instead of
     * a second one. */
    [ST_CLAIM] = { "claim", "SELECT " TASK_COLS
                            " FROM paddock_claim($1, $2, $3, $4, $5, $6)" },
    [ST_RENEW] = { "renew", "UPDATE tasks SET lease_until = $2 "
                            "WHERE status = 'RUNNING' AND lease_owner = $1" },
    [ST_FINISH] = { "finish",
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
    [ST_RELEASE] = { "release",
                     "WITH r AS (UPDATE tasks SET status = 'PENDING', "
                     "attempt = attempt - 1, lease_owner = NULL, "
                     "lease_until = NULL, lease_token = NULL, progress = 0 "
                     "WHERE task_id = $1 AND status = 'RUNNING' "
                     "AND lease_owner = $2 RETURNING id, key_id), "
                     "q AS (INSERT INTO pending (id, key_id) "
                     "SELECT id, key_id FROM r RETURNING 1) "
                     "SELECT c.n FROM (SELECT count(*) AS n FROM q) "
                     "c " NOTIFY_IF_N },
    [ST_NOTE] = { "note", "UPDATE tasks SET progress = "
                          "coalesce($3::integer, progress), "
                          "ref = coalesce($4, ref) WHERE task_id = $1 "
                          "AND status = 'RUNNING' AND lease_owner = $2" },
    /* Both halves in one statement: one snapshot, disjoint rows. */
    [ST_RESCUE] = { "rescue",
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
    [ST_CANCEL] = { "cancel",
                    "WITH q AS (DELETE FROM pending WHERE id = (SELECT id "
                    "FROM tasks WHERE task_id = $1 AND key_id = $2) "
                    "RETURNING id) UPDATE tasks SET status = 'CANCELED', "
                    "end_ms = $3, expire_ms = "
                    "GREATEST(expire_ms, $3 + expire_ms - submit_ms)"
                    " WHERE id = (SELECT id FROM q) "
                    "AND status = 'PENDING'" },
    [ST_STATE] = { "cancel", "SELECT key_id, status, expire_ms FROM tasks "
                             "WHERE task_id = $1" },
    /* The page and, in the same snapshot, how many match in all. */
    [ST_LIST] = { "list", "SELECT " TASK_COLS ", count(*) OVER () "
                          "FROM tasks WHERE " LIST_WHERE
                          " ORDER BY submit_ms DESC, id DESC "
                          "LIMIT $7 OFFSET $8" },
    [ST_LIST_COUNT] = { "list",
                        "SELECT count(*) FROM tasks WHERE " LIST_WHERE },
    /* SKIP LOCKED: purges of several nodes never wait for each other or
     * for a submit reusing an expired idempotency key. */
    [ST_PURGE] = { "purge",
                   "WITH d AS (DELETE FROM tasks WHERE id IN (SELECT id "
                   "FROM tasks WHERE expire_ms <= $1 AND status IN " TERMINAL
                   " ORDER BY expire_ms LIMIT $2 FOR UPDATE SKIP LOCKED) "
                   "RETURNING result), "
                   "i AS (DELETE FROM idem WHERE (key_id, idem_key) IN "
                   "(SELECT key_id, idem_key FROM idem WHERE expire_ms <= $1 "
                   "LIMIT $2 FOR UPDATE SKIP LOCKED)) "
                   "SELECT result FROM d WHERE result IS NOT NULL" },
    [ST_STATS_STATUS] = { "stats", "SELECT status, count(*) FROM tasks GROUP "
                                   "BY status" },
    [ST_STATS_QUEUE] = { "stats",
                         "SELECT t.model, count(*) AS n FROM pending p "
                         "JOIN tasks t ON t.id = p.id GROUP BY t.model "
                         "ORDER BY n DESC, t.model LIMIT $1" },
    [ST_KEY_PUT] = { "key_put",
                     "INSERT INTO keys (key_id, salt, hash, name, created_ms, "
                     "revoked_ms) VALUES ($1, $2, $3, $4, $5, $6) "
                     "ON CONFLICT (key_id) DO UPDATE SET salt = EXCLUDED.salt, "
                     "hash = EXCLUDED.hash, name = EXCLUDED.name, "
                     "created_ms = EXCLUDED.created_ms, "
                     "revoked_ms = EXCLUDED.revoked_ms" },
    [ST_KEY_LIST] = { "key_list",
                      "SELECT key_id, salt, hash, name, created_ms, revoked_ms "
                      "FROM keys ORDER BY created_ms, key_id" },
    [ST_SECRET_PUT] = { "secret", "INSERT INTO secrets (name, value) "
                                  "VALUES ($1, $2) ON CONFLICT DO NOTHING" },
    [ST_SECRET_GET] = { "secret", "SELECT value FROM secrets WHERE name = $1" },
};

/* Every new session: the bounds (a transaction left open by a vanished
 * client ends after a minute), and durable commits whatever the server's
 * default (store.h: a write returns after it is on stable storage). */
#define SESSION_SQL                                               \
    "SET statement_timeout = " PG_STATEMENT_TIMEOUT ";"           \
    "SET idle_in_transaction_session_timeout = 60000;"            \
    "SET client_min_messages = warning;"                          \
    "SET bytea_output = 'hex';"                                   \
    "SELECT set_config('synchronous_commit', 'on', false) WHERE " \
    "current_setting('synchronous_commit') = 'off'"

struct pgconn {
    PGconn *pg;        /* NULL until connected */
    uint32_t prepared; /* bit i: stmts[i] is prepared in this session */
    bool bad;          /* failed or timed out: drop it, do not reuse */
    struct pgconn *next;
};

struct store_pg {
    struct store base;
    char *url;
    pthread_mutex_t lock; /* guards idle */
    pthread_cond_t freed; /* a connection went back to idle */
    struct pgconn conns[PG_POOL];
    struct pgconn *idle;
    struct pgconn w;           /* the committer's own */
    atomic_int churn;          /* pending rows deleted since a vacuum */
    pthread_mutex_t wait_lock; /* guards the wake-up state below */
    pthread_cond_t wait_cond;  /* store_wait_work sleepers */
    pthread_t listener;        /* LISTEN thread, started on first wait */
    bool listener_started;     /* under wait_lock */
    atomic_bool listener_stop; /* close() asks it to end */
    uint64_t wake_seq;         /* under wait_lock: notifications seen */
    bool listening;            /* under wait_lock: LISTEN is active */
};

static struct store_pg *from_base(struct store *s)
{
    return container_of(s, struct store_pg, base);
}

/* ------------------------------------------------------------- libpq */

/* A libpq message on one line without quotes, for the log. */
static void clean_msg(const char *in, char *out, size_t size)
{
    size_t n = 0;
    for (; in && *in && n + 1 < size; in++)
        out[n++] = (*in == '\n' || *in == '"' || *in == '\r' || *in == '\t')
                       ? ' '
                       : *in;
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}

static int conn_fail(struct pgconn *c, const PGresult *r, const char *what)
{
    char msg[LIMIT_ERRMSG];
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    clean_msg(r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg), msg,
              sizeof(msg));
    if (PQstatus(c->pg) != CONNECTION_OK)
        c->bad = true;
    metrics_add(METRIC_STORE_ERRORS, 1);
    log_error("store failed",
              "backend=postgres op=\"%s\" sqlstate=%s "
              "error=\"%s\"",
              what, state ? state : "-", msg);
    return state && strcmp(state, "23505") == 0 ? ERR_CONFLICT : ERR_STORE;
}

/* Wait until the socket is ready for `events`; false at the deadline. */
static bool wait_socket(PGconn *pg, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0)
            return false;
        struct pollfd p = { .fd = PQsocket(pg), .events = events };
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return true;
        if (n < 0 && errno != EINTR)
            return false;
    }
}

/*
 * Everything the server answers to what was sent: the first error, or the
 * last result. NULL when the connection failed or the deadline passed;
 * c->bad is then set (the connection may still be busy: never reuse it).
 */
static PGresult *wait_result(struct pgconn *c, const char *what)
{
    int64_t deadline = clock_mono_ms() + PG_WAIT_MS;
    PGresult *res = NULL;
    int f;
    while ((f = PQflush(c->pg)) == 1) { /* nonblocking: send the rest */
        if (!wait_socket(c->pg, POLLIN | POLLOUT, deadline) ||
            !PQconsumeInput(c->pg))
            goto broken;
    }
    if (f < 0)
        goto broken;
    for (;;) {
        while (PQisBusy(c->pg)) {
            if (!wait_socket(c->pg, POLLIN, deadline) || !PQconsumeInput(c->pg))
                goto broken;
        }
        PGresult *r = PQgetResult(c->pg);
        if (!r)
            break;
        if (res && PQresultStatus(res) == PGRES_FATAL_ERROR) {
            PQclear(r);
        } else {
            PQclear(res);
            res = r;
        }
    }
    if (PQstatus(c->pg) != CONNECTION_OK)
        c->bad = true;
    if (res)
        return res;
broken:
    PQclear(res);
    c->bad = true;
    conn_fail(c, NULL,
              clock_mono_ms() >= deadline ? "timeout" : (what ? what : "io"));
    return NULL;
}

static bool result_ok(const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* Run SQL text: without params a simple query (several statements may
 * follow each other), with params one statement. *out (if given) receives
 * the result; 0 or a negative code, logged. */
static int run_sql(struct pgconn *c, const char *sql, int n,
                   const char *const *params, const char *what, PGresult **out)
{
    int sent =
        n > 0 ? PQsendQueryParams(c->pg, sql, n, NULL, params, NULL, NULL, 0)
              : PQsendQuery(c->pg, sql);
    if (!sent)
        return conn_fail(c, NULL, what);
    PGresult *r = wait_result(c, what);
    if (!r)
        return ERR_STORE;
    if (!result_ok(r)) {
        int ret = conn_fail(c, r, what);
        PQclear(r);
        return ret;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return 0;
}

/* Parameters in text format. */
#define PG_MAX_PARAMS 13
struct params {
    const char *v[PG_MAX_PARAMS];
    char buf[PG_MAX_PARAMS][72]; /* an int64, a double, or 32 bytes as hex */
    int n;
};

static void p_text(struct params *p, const char *s)
{
    p->v[p->n++] = s;
}

static void p_i64(struct params *p, int64_t x)
{
    snprintf(p->buf[p->n], sizeof(p->buf[0]), "%" PRId64, x);
    p->v[p->n] = p->buf[p->n];
    p->n++;
}

static void p_f64(struct params *p, double x)
{
    snprintf(p->buf[p->n], sizeof(p->buf[0]), "%.17g", x);
    p->v[p->n] = p->buf[p->n];
    p->n++;
}

/* bytea's hex input form, \x0102... (n <= 32). */
static void p_bytes(struct params *p, const unsigned char *b, size_t n)
{
    p->buf[p->n][0] = '\\';
    p->buf[p->n][1] = 'x';
    id_hex(b, n, p->buf[p->n] + 2);
    p->v[p->n] = p->buf[p->n];
    p->n++;
}

/* Run stmts[id] as a prepared statement (prepared on first use in each
 * session). 0 with *out (caller PQclear()s), or a negative code. */
static int run(struct pgconn *c, enum stmt_id id, const struct params *p,
               PGresult **out)
{
    char name[16];
    snprintf(name, sizeof(name), "paddock_%d", (int)id);
    *out = NULL;
    if (!(c->prepared & (1u << id))) {
        if (!PQsendPrepare(c->pg, name, stmts[id].sql, 0, NULL))
            return conn_fail(c, NULL, stmts[id].what);
        PGresult *r = wait_result(c, stmts[id].what);
        if (!r)
            return ERR_STORE;
        if (!result_ok(r)) {
            int ret = conn_fail(c, r, stmts[id].what);
            PQclear(r);
            return ret;
        }
        PQclear(r);
        c->prepared |= 1u << id;
    }
    if (!PQsendQueryPrepared(c->pg, name, p ? p->n : 0, p ? p->v : NULL, NULL,
                             NULL, 0))
        return conn_fail(c, NULL, stmts[id].what);
    PGresult *r = wait_result(c, stmts[id].what);
    if (!r)
        return ERR_STORE;
    if (!result_ok(r)) {
        int ret = conn_fail(c, r, stmts[id].what);
        PQclear(r);
        return ret;
    }
    *out = r;
    return 0;
}

/* Rows an UPDATE/INSERT/DELETE changed. */
static int changed(const PGresult *r)
{
    return (int)strtol(PQcmdTuples((PGresult *)r), NULL, 10);
}

/* ------------------------------------------------------------ columns */

static void col_copy(const PGresult *r, int row, int col, char *dst,
                     size_t size)
{
    snprintf(dst, size, "%s",
             PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

static char *col_dup(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    return xstrndup(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

static int64_t col_i64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static double col_f64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    return strtod(PQgetvalue(r, row, col), NULL);
}

/* A bytea column (hex output) into dst[0..n), zero-filled; its length. */
static size_t col_bytes(const PGresult *r, int row, int col, unsigned char *dst,
                        size_t n)
{
    memset(dst, 0, n);
    const char *v = PQgetvalue(r, row, col);
    if (PQgetisnull(r, row, col) || v[0] != '\\' || v[1] != 'x')
        return 0;
    size_t len = 0;
    for (v += 2; v[0] && v[1]; v += 2) {
        int hi = hex_value(v[0]), lo = hex_value(v[1]);
        if (hi < 0 || lo < 0)
            break;
        if (len < n)
            dst[len] = (unsigned char)(hi << 4 | lo);
        len++;
    }
    return len;
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
    t->ref = col_dup(r, row, 19);
}

/* ------------------------------------------------------- connections */

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* NOTICEs ("already exists, skipping") are not news */
}

static void conn_close(struct pgconn *c)
{
    PQfinish(c->pg); /* NULL is fine */
    c->pg = NULL;
    c->prepared = 0;
    c->bad = false;
}

/* Connect c to the server at url and set up its session. */
static int conn_connect(const char *url, struct pgconn *c, struct errmsg *err)
{
    /* Before dbname: the URL may override them (libpq's rule: the last
     * value wins). Keepalives and tcp_user_timeout bound the wait on a
     * server that vanished without closing the connection. */
    static const char *const keys[] = { "connect_timeout",
                                        "application_name",
                                        "keepalives",
                                        "keepalives_idle",
                                        "keepalives_interval",
                                        "keepalives_count",
                                        "tcp_user_timeout",
                                        "dbname",
                                        NULL };
    const char *vals[] = { "5", "paddock", "1", "10", "5",
                           "3", "30000",   url, NULL };
    char msg[LIMIT_ERRMSG];
    conn_close(c);
    c->pg = PQconnectdbParams(keys, vals, 1);
    if (!c->pg)
        return errmsg_set(err, ERR_STORE,
                          "cannot connect to PostgreSQL: "
                          "out of memory");
    if (PQstatus(c->pg) != CONNECTION_OK) {
        clean_msg(PQerrorMessage(c->pg), msg, sizeof(msg));
        errmsg_set(err, ERR_STORE, "cannot connect to PostgreSQL: %s", msg);
        goto fail;
    }
    PQsetNoticeProcessor(c->pg, quiet_notice, NULL);
    if (PQsetnonblocking(c->pg, 1) != 0 ||
        run_sql(c, SESSION_SQL, 0, NULL, "session", NULL) < 0) {
        clean_msg(PQerrorMessage(c->pg), msg, sizeof(msg));
        errmsg_set(err, ERR_STORE, "cannot set up the PostgreSQL session: %s",
                   msg);
        goto fail;
    }
    return 0;
fail:
    conn_close(c);
    return err->code;
}

/* An idle connection has nothing to read; if it has, the server ended it
 * (a restart sends an error, then closes) or said something we did not
 * ask for: either way, start afresh. */
static bool conn_alive(struct pgconn *c)
{
    if (!c->pg || c->bad || PQstatus(c->pg) != CONNECTION_OK ||
        PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        return false;
    struct pollfd p = { .fd = PQsocket(c->pg), .events = POLLIN };
    return poll(&p, 1, 0) == 0;
}

/* Make c usable: keep it if alive, else (re)connect. */
static int conn_ready(struct store_pg *s, struct pgconn *c)
{
    if (conn_alive(c))
        return 0;
    struct errmsg err = { 0 };
    if (conn_connect(s->url, c, &err) < 0) {
        metrics_add(METRIC_STORE_ERRORS, 1);
        log_error("store failed", "backend=postgres op=connect error=\"%s\"",
                  errmsg_text(&err));
        return ERR_STORE;
    }
    return 0;
}

/* A pooled connection, connected; NULL (logged) when none can be had. */
static struct pgconn *conn_get(struct store_pg *s)
{
    struct timespec until = clock_mono_after(PG_POOL_WAIT_MS);
    pthread_mutex_lock(&s->lock);
    while (!s->idle) {
        if (pthread_cond_timedwait(&s->freed, &s->lock, &until) != 0 &&
            !s->idle) {
            pthread_mutex_unlock(&s->lock);
            metrics_add(METRIC_STORE_ERRORS, 1);
            log_error("store failed", "backend=postgres op=pool "
                                      "error=\"no free connection\"");
            return NULL;
        }
    }
    struct pgconn *c = s->idle;
    s->idle = c->next;
    pthread_mutex_unlock(&s->lock);
    if (conn_ready(s, c) < 0) {
        pthread_mutex_lock(&s->lock);
        c->next = s->idle;
        s->idle = c;
        pthread_cond_signal(&s->freed);
        pthread_mutex_unlock(&s->lock);
        return NULL;
    }
    return c;
}

static void conn_put(struct store_pg *s, struct pgconn *c)
{
    if (c->pg && (c->bad || PQstatus(c->pg) != CONNECTION_OK ||
                  PQtransactionStatus(c->pg) != PQTRANS_IDLE))
        conn_close(c);
    pthread_mutex_lock(&s->lock);
    c->next = s->idle;
    s->idle = c;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->lock);
}

/* Try again, once, when the connection died under an op that may run twice
 * (a read, the claim, an idempotent write). */
static bool again(const struct pgconn *c, int ret, int *tries)
{
    return ret == ERR_STORE && c->bad && (*tries)++ == 0;
}

/* --------------------------------------------------------- migration */

/* Bring the schema to the latest version: store_pg_migrations[v] takes
 * version v to v + 1, all of them in one transaction, under an advisory
 * lock (two nodes starting at once); paddock_schema holds the version. */
static int migrate(struct pgconn *c, struct errmsg *err)
{
    PGresult *r = NULL;
    int version = 0;
    const int latest = (int)store_pg_migrations_n;
    char msg[LIMIT_ERRMSG] = "";
    if (run_sql(c,
                "BEGIN;"
                "SELECT pg_advisory_xact_lock(" PG_LOCK_NS ", " PG_LOCK_MIGRATE
                ");"
                "CREATE TABLE IF NOT EXISTS paddock_schema ("
                " version integer NOT NULL)",
                0, NULL, "migrate", NULL) < 0 ||
        run_sql(c, "SELECT max(version) FROM paddock_schema", 0, NULL,
                "migrate", &r) < 0)
        goto fail;
    version = (int)col_i64(r, 0, 0);
    PQclear(r);
    r = NULL;
    if (version > latest) {
        run_sql(c, "ROLLBACK", 0, NULL, "migrate", NULL);
        return errmsg_set(err, ERR_STORE,
                          "the database schema is version %d, newer than "
                          "this paddock (%d): upgrade paddock",
                          version, latest);
    }
    for (int v = version; v < latest; v++)
        if (run_sql(c, store_pg_migrations[v], 0, NULL, "migrate", NULL) < 0)
            goto fail;
    if (version < latest) {
        struct params p = { 0 };
        p_i64(&p, latest);
        if (run_sql(c, "DELETE FROM paddock_schema", 0, NULL, "migrate", NULL) <
                0 ||
            run_sql(c, "INSERT INTO paddock_schema (version) VALUES ($1)", p.n,
                    p.v, "migrate", NULL) < 0)
            goto fail;
    }
    if (run_sql(c, "COMMIT", 0, NULL, "migrate", NULL) < 0)
        goto fail;
    return 0;
fail:
    clean_msg(PQerrorMessage(c->pg), msg, sizeof(msg));
    if (c->pg && !c->bad)
        run_sql(c, "ROLLBACK", 0, NULL, "migrate", NULL);
    return errmsg_set(err, ERR_STORE,
                      "schema migration from version %d failed: %s", version,
                      msg);
}

/* ------------------------------------------------------------ submit */

/* What a batch counted: a limit's count and the limit it was counted to
 * (a count that reached it says only "at least"). */
struct count {
    const char *key_id; /* NULL: the queue depth */
    int64_t n, upto;
};

/* The count for key (NULL: depth) if the batch has one good up to `limit`,
 * else -1 (count again). */
static int64_t count_get(const struct count *counts, size_t n, const char *key,
                         int64_t limit)
{
    for (size_t i = 0; i < n; i++) {
        const struct count *c = &counts[i];
        if ((key && c->key_id && strcmp(c->key_id, key) == 0) ||
            (!key && !c->key_id))
            return c->n < c->upto || limit <= c->upto ? c->n : -1;
    }
    return -1;
}

static void count_put(struct count *counts, size_t *n, const char *key,
                      int64_t value, int64_t upto)
{
    size_t i = 0;
    while (i < *n &&
           !((key && counts[i].key_id && strcmp(counts[i].key_id, key) == 0) ||
             (!key && !counts[i].key_id)))
        i++;
    if (i == *n)
        (*n)++;
    counts[i] = (struct count){ .key_id = key, .n = value, .upto = upto };
}

/*
 * One submit after its checks (store.h, store_submit), run inside the batch
 * transaction, which holds the submit lock: paddock_submit() (migration 1).
 * Its rc: 0 inserted, 1 replay of replay_id, 2 idempotency conflict, 3 the
 * key's max_active reached, 4 the queue's max_queue reached, 5 the task id
 * exists. Its p_active and p_depth are the key's unfinished tasks and all
 * pending tasks as the batch counted them so far, or -1: count them now
 * (at most the limit: a count at the limit refuses either way). active and
 * depth give back what was used, -1 when not looked at; under the lock only
 * this batch adds to either, so the batch keeps them for its next submits
 * and counts each once.
 */
static int submit_one(struct pgconn *c, const struct store_submit *sub,
                      struct count *counts, size_t *n_counts, char *replay_id)
{
    const struct task *t = sub->task;
    struct params p = { 0 };
    PGresult *r;
    p_text(&p, t->task_id);
    p_text(&p, t->key_id);
    p_text(&p, t->model);
    p_text(&p, t->spec);
    p_text(&p, t->prompt);
    p_i64(&p, t->submit_ms);
    p_i64(&p, t->expire_ms);
    p_text(&p, sub->idem_key);
    if (sub->idem_key)
        p_bytes(&p, sub->body_hash, sizeof(sub->body_hash));
    else
        p_text(&p, NULL);
    p_i64(&p, sub->max_active);
    p_i64(&p, sub->max_queue);
    p_i64(&p, count_get(counts, *n_counts, t->key_id, sub->max_active));
    p_i64(&p, count_get(counts, *n_counts, NULL, sub->max_queue));
    int ret = run(c, ST_SUBMIT, &p, &r);
    if (ret < 0)
        return ret;
    static const int codes[] = { 0,
                                 1,
                                 ERR_IDEMPOTENCY_CONFLICT,
                                 ERR_ALLOCATION_QUOTA,
                                 ERR_THROTTLING,
                                 ERR_CONFLICT };
    int64_t rc = PQntuples(r) == 1 ? col_i64(r, 0, 0) : -1;
    if (rc < 0 || rc >= (int64_t)ARRAY_LEN(codes)) {
        ret = conn_fail(c, r, "submit result");
        PQclear(r);
        return ret;
    }
    ret = codes[rc];
    if (rc == 1 || rc == 2)
        col_copy(r, 0, 1, replay_id, UUID_STR_LEN + 1);
    int64_t active = col_i64(r, 0, 2), depth = col_i64(r, 0, 3);
    if (active >= 0)
        count_put(counts, n_counts, t->key_id, active + (rc == 0),
                  sub->max_active);
    if (depth >= 0)
        count_put(counts, n_counts, NULL, depth + (rc == 0), sub->max_queue);
    PQclear(r);
    return ret;
}

/* One try at committing the batch's unsettled submits. 0: committed, each
 * r->ret final. Else ERR_STORE with *culprit the submit whose statement
 * failed (NULL: the transaction as a whole failed). */
static int submit_round(struct store_pg *s, struct store_batch_req *batch,
                        size_t n, struct store_batch_req **culprit)
{
    struct pgconn *c = &s->w;
    /* One per key and one for the depth, at most. */
    struct count *counts = xcalloc(n + 1, sizeof(*counts));
    size_t n_counts = 0;
    bool any = false;
    *culprit = NULL;
    if (run_sql(c,
                "BEGIN;"
                "SELECT pg_advisory_xact_lock(" PG_LOCK_NS ", " PG_LOCK_SUBMIT
                ")",
                0, NULL, "submit", NULL) < 0)
        goto fail;
    for (struct store_batch_req *r = batch; r; r = r->next) {
        if (r->settled)
            continue;
        r->replay_id[0] = '\0';
        r->ret = submit_one(c, r->sub, counts, &n_counts, r->replay_id);
        if (r->ret == ERR_STORE) {
            *culprit = r;
            goto fail;
        }
        any |= r->ret == 0;
    }
    /* The notification goes out with the commit, once per batch. */
    if (run_sql(
            c, any ? "SELECT pg_notify('" PG_CHANNEL "', '');COMMIT" : "COMMIT",
            0, NULL, "submit commit", NULL) < 0) {
        *culprit = NULL;
        goto fail;
    }
    free(counts);
    return 0;
fail:
    free(counts);
    if (c->pg && !c->bad)
        run_sql(c, "ROLLBACK", 0, NULL, "submit rollback", NULL);
    return ERR_STORE;
}

/* Commit a batch of submits in one transaction (one fsync). A submit whose
 * statement fails is answered ERR_STORE and the others run again without
 * it; a failed commit or connection fails them all (never retried: a
 * commit that failed may still have happened). */
static void pg_commit_batch(struct store *base, struct store_batch_req *batch)
{
    struct store_pg *s = from_base(base);
    size_t n = 0;
    for (struct store_batch_req *r = batch; r; r = r->next)
        n++;
    int ret = conn_ready(s, &s->w);
    while (ret == 0) {
        struct store_batch_req *culprit;
        ret = submit_round(s, batch, n, &culprit);
        if (ret == 0 || !culprit || s->w.bad)
            break;
        culprit->ret = ERR_STORE;
        culprit->settled = true;
    }
    if (ret < 0)
        for (struct store_batch_req *r = batch; r; r = r->next)
            if (!r->settled)
                r->ret = ERR_STORE;
    if (s->w.bad)
        conn_close(&s->w);
}

/* --------------------------------------------------------------- ops */

static int pg_get(struct store *base, const char *task_id, struct task *out)
{
    struct store_pg *s = from_base(base);
    struct params p = { 0 };
    int ret, tries = 0;
    bool retry;
    p_text(&p, task_id);
    do {
        struct pgconn *c = conn_get(s);
        PGresult *r;
        if (!c)
            return ERR_STORE;
        ret = run(c, ST_GET, &p, &r);
        if (ret == 0) {
            if (PQntuples(r) == 1)
                row_to_task(r, 0, out);
            else
                ret = ERR_NOT_FOUND;
            PQclear(r);
        }
        retry = again(c, ret, &tries);
        conn_put(s, c);
    } while (retry);
    return ret;
}

/* `models` as a text[] literal: {"a","b"} with " and \\ escaped. */
static char *models_array_new(const struct store_models *models)
{
    struct buf b = BUF_INIT;
    buf_putc(&b, '{');
    for (size_t i = 0; i < models->n; i++) {
        buf_puts(&b, i ? ",\"" : "\"");
        for (const char *c = models->names[i]; *c; c++) {
            if (*c == '"' || *c == '\\')
                buf_putc(&b, '\\');
            buf_putc(&b, *c);
        }
        buf_putc(&b, '"');
    }
    buf_putc(&b, '}');
    return buf_take(&b);
}

static int pg_claim(struct store *base, const char *worker, int64_t now_ms,
                    int64_t lease_ms, const struct store_models *models,
                    struct task *out)
{
    struct store_pg *s = from_base(base);
    struct params p = { 0 };
    char token[UUID_STR_LEN + 1];
    char *names = models ? models_array_new(models) : NULL;
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
        struct pgconn *c = conn_get(s);
        PGresult *r;
        if (!c) {
            ret = ERR_STORE;
            break;
        }
        p.v[2] = tries > 0 ? "true" : "false";
        ret = run(c, ST_CLAIM, &p, &r);
        if (ret == 0) {
            if (PQntuples(r) == 1) {
                row_to_task(r, 0, out);
                atomic_fetch_add(&s->churn, 1);
            } else {
                ret = ERR_NOT_FOUND;
            }
            PQclear(r);
        }
        retry = again(c, ret, &tries);
        conn_put(s, c);
    } while (retry);
    free(names);
    return ret;
}

/* Run one write statement; *n = rows changed. `idempotent`: safe to run
 * twice, so retried once on a fresh connection. */
static int write_op(struct store_pg *s, enum stmt_id id, const struct params *p,
                    bool idempotent, int *n)
{
    int ret, tries = idempotent ? 0 : 1;
    bool retry;
    do {
        struct pgconn *c = conn_get(s);
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
        retry = again(c, ret, &tries);
        conn_put(s, c);
    } while (retry);
    return ret;
}

static int pg_renew(struct store *base, const char *worker, int64_t until_ms,
                    int *renewed)
{
    struct params p = { 0 };
    p_text(&p, worker);
    p_i64(&p, until_ms);
    return write_op(from_base(base), ST_RENEW, &p, true, renewed);
}

static int pg_finish(struct store *base, const struct task *t,
                     const char *worker)
{
    struct params p = { 0 };
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
    int ret = write_op(from_base(base), ST_FINISH, &p, false, &n);
    return ret == 0 && n == 0 ? ERR_CONFLICT : ret;
}

static int pg_release(struct store *base, const char *task_id,
                      const char *worker)
{
    struct params p = { 0 };
    int n = 0;
    p_text(&p, task_id);
    p_text(&p, worker);
    int ret = write_op(from_base(base), ST_RELEASE, &p, false, &n);
    return ret == 0 && n == 0 ? ERR_CONFLICT : ret;
}

static int pg_note(struct store *base, const char *task_id, const char *worker,
                   int progress, const char *ref)
{
    struct params p = { 0 };
    int n = 0;
    p_text(&p, task_id);
    p_text(&p, worker);
    if (progress >= 0)
        p_i64(&p, progress);
    else
        p_text(&p, NULL);
    p_text(&p, ref);
    /* Setting the same values twice is harmless: safe to retry. */
    int ret = write_op(from_base(base), ST_NOTE, &p, true, &n);
    return ret == 0 && n == 0 ? ERR_CONFLICT : ret;
}

static int pg_rescue(struct store *base, int64_t now_ms, int max_attempts,
                     int *requeued, int *failed)
{
    struct store_pg *s = from_base(base);
    struct params p = { 0 };
    PGresult *r;
    p_i64(&p, now_ms);
    p_i64(&p, max_attempts);
    struct pgconn *c = conn_get(s);
    if (!c)
        return ERR_STORE;
    int ret = run(c, ST_RESCUE, &p, &r);
    if (ret == 0) {
        *requeued = (int)col_i64(r, 0, 0);
        *failed = (int)col_i64(r, 0, 1);
        PQclear(r);
    }
    conn_put(s, c);
    return ret;
}

static int pg_cancel(struct store *base, const char *task_id,
                     const char *key_id, int64_t now_ms,
                     enum task_status *status)
{
    struct store_pg *s = from_base(base);
    struct params p = { 0 };
    PGresult *r;
    p_text(&p, task_id);
    p_text(&p, key_id);
    p_i64(&p, now_ms);
    struct pgconn *c = conn_get(s);
    if (!c)
        return ERR_STORE;
    int ret = run(c, ST_CANCEL, &p, &r);
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
    if ((ret = run(c, ST_STATE, &p, &r)) < 0)
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
    conn_put(s, c);
    return ret;
}

static void filter_params(struct params *p, const struct store_filter *f)
{
    p_text(p, f->key_id);
    p_i64(p, f->from_ms);
    p_i64(p, f->to_ms);
    p_i64(p, f->now_ms);
    p_text(p, f->model);
    p_text(p, f->status >= 0 ? task_status_name(f->status) : NULL);
}

static int list_on(struct pgconn *c, const struct store_filter *f,
                   struct task **out, size_t *n, int64_t *total)
{
    struct params p = { 0 };
    PGresult *r;
    filter_params(&p, f);
    p_i64(&p, f->limit);
    p_i64(&p, f->offset);
    int ret = run(c, ST_LIST, &p, &r);
    if (ret < 0)
        return ret;
    int rows = PQntuples(r);
    if (rows > 0) {
        struct task *tasks = xcalloc((size_t)rows, sizeof(*tasks));
        for (int i = 0; i < rows; i++)
            row_to_task(r, i, &tasks[i]);
        *total = col_i64(r, 0, 20);
        *out = tasks;
        *n = (size_t)rows;
        PQclear(r);
        return 0;
    }
    PQclear(r);
    /* An empty page (past the end): the count on its own. */
    p.n = 6;
    if ((ret = run(c, ST_LIST_COUNT, &p, &r)) < 0)
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
        struct pgconn *c = conn_get(s);
        if (!c)
            return ERR_STORE;
        ret = list_on(c, f, out, n, total);
        retry = again(c, ret, &tries);
        conn_put(s, c);
    } while (retry);
    return ret;
}

static int pg_purge(struct store *base, int64_t now_ms, int limit,
                    char ***results, size_t *n)
{
    struct store_pg *s = from_base(base);
    struct params p = { 0 };
    PGresult *r;
    p_i64(&p, now_ms);
    p_i64(&p, limit > 0 ? limit : 0);
    struct pgconn *c = conn_get(s);
    if (!c)
        return ERR_STORE;
    int ret = run(c, ST_PURGE, &p, &r);
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
        run_sql(c, "VACUUM (SKIP_LOCKED) pending", 0, NULL, "vacuum", NULL);
    }
    conn_put(s, c);
    return ret;
}

static int stats_on(struct pgconn *c, struct store_stats *out)
{
    struct params p = { 0 };
    PGresult *r;
    int ret = run(c, ST_STATS_STATUS, NULL, &r);
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
    if ((ret = run(c, ST_STATS_QUEUE, &p, &r)) < 0)
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
        struct pgconn *c = conn_get(s);
        if (!c)
            return ERR_STORE;
        memset(out, 0, sizeof(*out));
        ret = stats_on(c, out);
        retry = again(c, ret, &tries);
        conn_put(s, c);
    } while (retry);
    return ret;
}

static int pg_key_put(struct store *base, const struct store_key *k)
{
    struct params p = { 0 };
    p_text(&p, k->key_id);
    p_bytes(&p, k->salt, sizeof(k->salt));
    p_bytes(&p, k->hash, sizeof(k->hash));
    p_text(&p, k->name);
    p_i64(&p, k->created_ms);
    p_i64(&p, k->revoked_ms);
    return write_op(from_base(base), ST_KEY_PUT, &p, true, NULL);
}

static int key_list_on(struct pgconn *c, struct store_key **out, size_t *n)
{
    PGresult *r;
    int ret = run(c, ST_KEY_LIST, NULL, &r);
    if (ret < 0)
        return ret;
    int rows = PQntuples(r);
    struct store_key *keys =
        xcalloc(rows > 0 ? (size_t)rows : 1, sizeof(*keys));
    for (int i = 0; i < rows; i++) {
        struct store_key *k = &keys[i];
        col_copy(r, i, 0, k->key_id, sizeof(k->key_id));
        col_bytes(r, i, 1, k->salt, sizeof(k->salt));
        col_bytes(r, i, 2, k->hash, sizeof(k->hash));
        col_copy(r, i, 3, k->name, sizeof(k->name));
        k->created_ms = col_i64(r, i, 4);
        k->revoked_ms = col_i64(r, i, 5);
    }
    PQclear(r);
    *out = keys;
    *n = (size_t)rows;
    return 0;
}

static int pg_key_list(struct store *base, struct store_key **out, size_t *n)
{
    struct store_pg *s = from_base(base);
    int ret, tries = 0;
    bool retry;
    do {
        struct pgconn *c = conn_get(s);
        if (!c)
            return ERR_STORE;
        ret = key_list_on(c, out, n);
        retry = again(c, ret, &tries);
        conn_put(s, c);
    } while (retry);
    return ret;
}

/* Insert a fresh secret unless one exists, then read the one that does
 * (two statements: the second sees a concurrent winner's row). */
static int secret_on(struct pgconn *c, const char *name,
                     const unsigned char fresh[32], unsigned char out[32])
{
    struct params p = { 0 };
    PGresult *r;
    p_text(&p, name);
    p_bytes(&p, fresh, 32);
    int ret = run(c, ST_SECRET_PUT, &p, &r);
    if (ret < 0)
        return ret;
    PQclear(r);
    p.n = 1;
    if ((ret = run(c, ST_SECRET_GET, &p, &r)) < 0)
        return ret;
    if (PQntuples(r) != 1 || col_bytes(r, 0, 0, out, 32) != 32)
        ret = conn_fail(c, r, "secret");
    PQclear(r);
    return ret;
}

static int pg_secret(struct store *base, const char *name,
                     unsigned char out[32])
{
    struct store_pg *s = from_base(base);
    unsigned char fresh[32];
    int ret = id_random(fresh, sizeof(fresh)), tries = 0;
    bool retry;
    if (ret < 0)
        return ret;
    do {
        struct pgconn *c = conn_get(s);
        if (!c)
            return ERR_STORE;
        ret = secret_on(c, name, fresh, out);
        retry = again(c, ret, &tries);
        conn_put(s, c);
    } while (retry);
    return ret;
}

/* ------------------------------------------------------- wake-ups */

/* How often the listener looks at its stop flag; how long it waits before
 * connecting again after losing the server. */
#define PG_LISTEN_TICK_MS  200
#define PG_LISTEN_RETRY_MS 1000

/* A new sequence number for the sleepers: something may have changed. */
static void wake_all(struct store_pg *s)
{
    pthread_mutex_lock(&s->wait_lock);
    s->wake_seq++;
    pthread_cond_broadcast(&s->wait_cond);
    pthread_mutex_unlock(&s->wait_lock);
}

/* LISTEN on a connection of its own; every notification (a commit that
 * made work on any node) wakes the sleepers of this handle. After losing
 * the server it wakes them too (notifications may have been missed) and
 * connects again. */
static void *listener_main(void *arg)
{
    struct store_pg *s = arg;
    struct pgconn c = { 0 };
    while (!atomic_load(&s->listener_stop)) {
        if (!c.pg || c.bad || PQstatus(c.pg) != CONNECTION_OK) {
            struct errmsg err = { 0 };
            if (conn_connect(s->url, &c, &err) < 0 ||
                run_sql(&c, "LISTEN " PG_CHANNEL, 0, NULL, "listen", NULL) <
                    0) {
                conn_close(&c);
                for (int t = 0; t < PG_LISTEN_RETRY_MS / PG_LISTEN_TICK_MS &&
                                !atomic_load(&s->listener_stop);
                     t++)
                    nanosleep(&(struct timespec){ .tv_nsec = PG_LISTEN_TICK_MS *
                                                             1000000L },
                              NULL);
                continue;
            }
            wake_all(s);
        }
        struct pollfd p = { .fd = PQsocket(c.pg), .events = POLLIN };
        int n = poll(&p, 1, PG_LISTEN_TICK_MS);
        if (n <= 0)
            continue;
        if (!PQconsumeInput(c.pg)) {
            c.bad = true;
            wake_all(s);
            continue;
        }
        bool any = false;
        PGnotify *note;
        while ((note = PQnotifies(c.pg)) != NULL) {
            any = true;
            PQfreemem(note);
        }
        if (any)
            wake_all(s);
    }
    conn_close(&c);
    return NULL;
}

static int pg_wait_work(struct store *base, uint64_t *seen, int timeout_ms)
{
    struct store_pg *s = from_base(base);
    struct timespec until = clock_mono_after(timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&s->wait_lock);
    if (!s->listener_started) {
        if (pthread_create(&s->listener, NULL, listener_main, s) != 0) {
            pthread_mutex_unlock(&s->wait_lock);
            log_error("store failed", "backend=postgres op=listen "
                                      "error=\"cannot start a thread\"");
            return ERR_STORE;
        }
        s->listener_started = true;
    }
    while (s->wake_seq == *seen)
        if (pthread_cond_timedwait(&s->wait_cond, &s->wait_lock, &until) != 0)
            break;
    bool woken = s->wake_seq != *seen;
    *seen = s->wake_seq;
    pthread_mutex_unlock(&s->wait_lock);
    return woken ? 1 : 0;
}

static void pg_close(struct store *base)
{
    struct store_pg *s = from_base(base);
    if (s->listener_started) {
        atomic_store(&s->listener_stop, true);
        pthread_join(s->listener, NULL);
    }
    conn_close(&s->w);
    for (int i = 0; i < PG_POOL; i++)
        conn_close(&s->conns[i]);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->freed);
    pthread_mutex_destroy(&s->wait_lock);
    pthread_cond_destroy(&s->wait_cond);
    free(s->url);
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
    .note = pg_note,
    .rescue = pg_rescue,
    .cancel = pg_cancel,
    .list = pg_list,
    .purge = pg_purge,
    .stats = pg_stats,
    .key_put = pg_key_put,
    .key_list = pg_key_list,
    .secret = pg_secret,
    .wait_work = pg_wait_work,
    .close = pg_close,
};

int store_pg_open(const char *url, struct store **out, struct errmsg *err)
{
    char *perr = NULL, msg[LIMIT_ERRMSG];
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    *out = NULL;
    if (!opts) {
        clean_msg(perr ? perr : "out of memory", msg, sizeof(msg));
        PQfreemem(perr);
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "store URL is not a valid PostgreSQL URL: %s", msg);
    }
    PQconninfoFree(opts);

    struct store_pg *s = xcalloc(1, sizeof(*s));
    s->base.ops = &pg_ops;
    s->url = xstrdup(url);
    pthread_mutex_init(&s->lock, NULL);
    clock_cond_init(&s->freed);
    pthread_mutex_init(&s->wait_lock, NULL);
    clock_cond_init(&s->wait_cond);
    atomic_init(&s->churn, 0);
    atomic_init(&s->listener_stop, false);
    for (int i = PG_POOL - 1; i >= 0; i--) {
        s->conns[i].next = s->idle;
        s->idle = &s->conns[i];
    }
    /* The first pooled connection migrates and stays open. */
    int ret = conn_connect(url, &s->conns[0], err);
    if (ret < 0)
        goto fail;
    ret = migrate(&s->conns[0], err);
    if (ret < 0)
        goto fail;
    *out = &s->base;
    return 0;
fail:
    pg_close(&s->base);
    return ret;
}
