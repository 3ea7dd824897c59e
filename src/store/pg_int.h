/*
 * The PostgreSQL backend's own parts, shared by its files: pg.c (the ops),
 * pg_submit.c (a batch of submits in one transaction) and pg_conn.c (libpq:
 * the one exec path, connections, the pool, migrations, the LISTEN
 * thread). Nothing else includes this.
 *
 * Every call on a connection is bounded: connect_timeout, TCP keepalives
 * and tcp_user_timeout on the connection, statement_timeout on the server,
 * and a client-side deadline on every wait (a connection that misses it is
 * marked bad and dropped). A connection is used by one thread at a time:
 * the pool hands it out, the committer owns its own.
 */
#ifndef PADDOCK_STORE_PG_INT_H
#define PADDOCK_STORE_PG_INT_H

#include "store_int.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

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
/* Advisory locks (pg_advisory_xact_lock(ns, id)); ns is "padd". */
#define PG_LOCK_NS      "1885430884"
#define PG_LOCK_MIGRATE "1"
#define PG_LOCK_SUBMIT  "2"
/* The LISTEN/NOTIFY channel of new pending work. */
#define PG_CHANNEL "paddock_work"
/* The channel of new deliveries (migration 005's trigger notifies it). */
#define PG_HOOKS_CHANNEL "paddock_hooks"
/* The channel of task changes (payload: the task id), notified by the
 * tasks_rev trigger (migration 006) at the commit. */
#define PG_TASK_CHANNEL "paddock_task"

/* The prepared statements of a session, one bit each in
 * store_pg_conn.prepared; each file keeps the text of its own. */
enum store_pg_stmt {
    /* pg.c's */
    PG_ST_GET,
    PG_ST_CLAIM,
    PG_ST_RENEW,
    PG_ST_FINISH,
    PG_ST_RELEASE,
    PG_ST_RELEASE_MANY,
    PG_ST_NOTE,
    PG_ST_COUNT_QUERY,
    PG_ST_RESCUE,
    PG_ST_CANCEL,
    PG_ST_STATE,
    PG_ST_LIST,
    PG_ST_LIST_COUNT,
    PG_ST_PURGE,
    PG_ST_STATS_STATUS,
    PG_ST_STATS_QUEUE,
    PG_ST_KEY_PUT,
    PG_ST_KEY_LIST,
    PG_ST_SECRET_PUT,
    PG_ST_SECRET_GET,
    /* pg_submit.c's */
    PG_ST_SUBMIT,
    /* pg_queue.c's */
    PG_ST_QUEUE_POSITION,
    PG_ST__COUNT
};

/* One session. */
struct store_pg_conn {
    PGconn *pg;        /* NULL until connected */
    uint32_t prepared; /* bit i: statement i is prepared in this session */
    bool bad;          /* failed or timed out: drop it, do not reuse */
    struct store_pg_conn *next; /* the pool's idle list */
};

/* ------------------------------------------------------------- exec */

/* Parameters in text format. */
#define PG_MAX_PARAMS 18
struct store_pg_params {
    const char *v[PG_MAX_PARAMS];
    char buf[PG_MAX_PARAMS][72]; /* an int64, a double, or 32 bytes as hex */
    int n;
};

static inline void p_text(struct store_pg_params *p, const char *s)
{
    p->v[p->n++] = s;
}

static inline void p_i64(struct store_pg_params *p, int64_t x)
{
    snprintf(p->buf[p->n], sizeof(p->buf[0]), "%" PRId64, x);
    p->v[p->n] = p->buf[p->n];
    p->n++;
}

static inline void p_f64(struct store_pg_params *p, double x)
{
    snprintf(p->buf[p->n], sizeof(p->buf[0]), "%.17g", x);
    p->v[p->n] = p->buf[p->n];
    p->n++;
}

/* bytea's hex input form, \x0102... (n <= 32). */
static inline void p_bytes(struct store_pg_params *p, const unsigned char *b,
                           size_t n)
{
    p->buf[p->n][0] = '\\';
    p->buf[p->n][1] = 'x';
    id_hex(b, n, p->buf[p->n] + 2);
    p->v[p->n] = p->buf[p->n];
    p->n++;
}

/* Column `col` of row `row` as text into dst (NULL: ""). */
static inline void col_copy(const PGresult *r, int row, int col, char *dst,
                            size_t size)
{
    snprintf(dst, size, "%s",
             PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

/* Column `col` of row `row` as an integer (NULL: 0). */
static inline int64_t col_i64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* names[0..n) as a text[] literal, {"a","b"} with " and \ escaped
 * (caller free()s). */
char *store_pg_text_array(const char *const *names, size_t n);

/* pg_lease.c: store_renew and store_release_many on a connection of the
 * pool (store.h says what they do). */
struct store_pg_pool;
int store_pg_renew(struct store_pg_pool *pool, struct store_lease *leases,
                   size_t n, int64_t until_ms);
int store_pg_release_many(struct store_pg_pool *pool,
                          struct store_lease *leases, size_t n);

/* pg_keys.c: store_key_put, store_key_list and store_secret (store.h)
 * on a connection of the pool. */
int store_pg_key_put(struct store_pg_pool *pool, const struct store_key *k);
int store_pg_key_list(struct store_pg_pool *pool, struct store_key **out,
                      size_t *n);
int store_pg_secret(struct store_pg_pool *pool, const char *name,
                    unsigned char out[32]);

/* pg_usage.c: deleting a key, the usage report and the ledger's
 * retention, on a connection of the pool. */
int store_pg_key_delete(struct store_pg_pool *pool, const char *key_id);
int store_pg_usage(struct store_pg_pool *pool,
                   const struct store_usage_query *q,
                   struct store_usage_row **rows, size_t *n,
                   struct store_usage_row *total);
int store_pg_usage_purge(struct store_pg_pool *pool, int64_t before_ms,
                         int64_t *n);

/*
 * Run SQL text on c: without parameters (p NULL or empty) as a simple
 * query, so several statements may follow each other; with them, one
 * statement. 0 with *out (if given; caller PQclear()s) the result, or a
 * negative code, logged under `what`.
 */
int store_pg_sql(struct store_pg_conn *c, const char *sql,
                 const struct store_pg_params *p, const char *what,
                 PGresult **out);
/* Run statement `id` (text `sql`) as a prepared statement, prepared on
 * first use in each session; as store_pg_sql, *out required. */
int store_pg_run(struct store_pg_conn *c, enum store_pg_stmt id,
                 const char *what, const char *sql,
                 const struct store_pg_params *p, PGresult **out);
/* Log the failure of `what` (r's error, else the connection's), mark the
 * connection bad if it broke; ERR_CONFLICT for a unique violation, else
 * ERR_STORE. */
int store_pg_fail(struct store_pg_conn *c, const PGresult *r, const char *what);

/* ------------------------------------------------------- connections */

/* Make c usable: keep it if it is alive and idle, else connect it afresh
 * to url (logged on failure). 0 or ERR_STORE. */
int store_pg_conn_ready(const char *url, struct store_pg_conn *c);
/* Close c (if open); it can be made ready again. */
void store_pg_conn_close(struct store_pg_conn *c);

/* A fixed set of connections, connected on demand. */
struct store_pg_pool {
    char *url;
    pthread_mutex_t lock; /* guards idle */
    pthread_cond_t freed; /* a connection went back to idle */
    struct store_pg_conn conns[PG_POOL];
    struct store_pg_conn *idle;
};

/* Check url (ERR_INVALID_PARAMETER when libpq cannot parse it), then
 * connect the first connection (ERR_STORE); *err says why. The pool is
 * ready for _fini either way. */
int store_pg_pool_init(struct store_pg_pool *p, const char *url,
                       struct errmsg *err);
void store_pg_pool_fini(struct store_pg_pool *p);
/* A connection, ready; NULL (logged) when none can be had in time. */
struct store_pg_conn *store_pg_pool_get(struct store_pg_pool *p);
/* Give c back; a connection left bad or in a transaction is closed. */
void store_pg_pool_put(struct store_pg_pool *p, struct store_pg_conn *c);

/* pg_queue.c: store_queue_position (store.h). */
int store_pg_queue_position(struct store_pg_pool *pool, const struct task *t,
                            int64_t *pos);

/* Try again, once, when the connection died under an op that may run twice
 * (a read, the claim, an idempotent write). */
static inline bool store_pg_again(const struct store_pg_conn *c, int ret,
                                  int *tries)
{
    return ret == ERR_STORE && c->bad && (*tries)++ == 0;
}

/* fn(c, arg) on a pooled connection, and once more on a fresh one when
 * the connection died under it (store_pg_again: fn may run twice). */
typedef int (*store_pg_op)(struct store_pg_conn *c, void *arg);
int store_pg_with(struct store_pg_pool *pool, store_pg_op fn, void *arg);

/* Bring the schema to the latest version (store_pg_migrations) on c. */
int store_pg_migrate(struct store_pg_conn *c, struct errmsg *err);

/* --------------------------------------------------------- wake-ups */

/* The LISTEN thread of one store and its sleepers. */
struct store_pg_listen {
    const char *url;      /* borrowed from the pool */
    pthread_mutex_t lock; /* guards the fields below but stop */
    pthread_cond_t cond;  /* store_wait_work sleepers */
    pthread_t thread;     /* started on the first wait */
    bool started;
    uint64_t seq;       /* notifications (and reconnects) seen */
    uint64_t hooks_seq; /* the same on PG_HOOKS_CHANNEL */
    atomic_bool stop;   /* _fini asks the thread to end */
    /* store_watch: told of PG_TASK_CHANNEL's task ids (set before the
     * thread starts, or under lock). */
    store_changed changed;
    void *changed_arg;
};

void store_pg_listen_init(struct store_pg_listen *l, const char *url);
/* Stop the thread (if started), release. */
void store_pg_listen_fini(struct store_pg_listen *l);
/* store_watch (store.h): LISTEN to task changes too, and start the
 * thread now. */
void store_pg_listen_watch(struct store_pg_listen *l, store_changed fn,
                           void *arg);
/* store_wait_work (store.h), or store_wait_hooks when `hooks`; the first
 * call starts the thread. */
int store_pg_listen_wait(struct store_pg_listen *l, bool hooks, uint64_t *seen,
                         int timeout_ms);

/* ----------------------------------------------------------- submits */

/* Submits committed in one transaction: bounds its duration and locks. */
#define PG_BATCH_MAX 512

/* Commit a batch of submits on the committer's connection w (store_ops
 * commit_batch). */
void store_pg_submit_batch(const char *url, struct store_pg_conn *w,
                           struct store_batch_req *batch);

/* ----------------------------------------------------------- the backend */

struct store_pg {
    struct store base;
    struct store_pg_pool pool;     /* for the ops */
    struct store_pg_conn w;        /* the committer's own */
    struct store_pg_listen listen; /* wake-ups (store_wait_work) */
    atomic_int churn;              /* pending rows deleted since a vacuum */
};

static inline struct store_pg *store_pg_of(struct store *s)
{
    return container_of(s, struct store_pg, base);
}

/* The webhook ops (pg_hooks.c), named in pg.c's ops table. */
int store_pg_hook_put(struct store *s, const struct store_hook *h, int max);
int store_pg_hook_list(struct store *s, const char *key_id,
                       struct store_hook **out, size_t *n);
int store_pg_hook_get(struct store *s, const char *webhook_id,
                      const char *key_id, struct store_hook *out);
int store_pg_hook_delete(struct store *s, const char *webhook_id,
                         const char *key_id);
int store_pg_hook_disable(struct store *s, const char *webhook_id,
                          int64_t now_ms);
int store_pg_delivery_claim(struct store *s, const char *owner, int64_t now_ms,
                            int64_t lease_ms, struct store_delivery *out,
                            size_t max, size_t *n);
int store_pg_delivery_settle(struct store *s, const char *owner,
                             const struct store_delivery *d, size_t n);
int store_pg_delivery_list(struct store *s, const char *webhook_id,
                           int64_t offset, int64_t limit,
                           struct store_delivery **out, size_t *n,
                           int64_t *total);
int store_pg_delivery_retry(struct store *s, const char *webhook_id,
                            const char *delivery_id, int64_t now_ms);
int store_pg_delivery_purge(struct store *s, int64_t before_ms, int limit,
                            int *n);
int store_pg_wait_hooks(struct store *s, uint64_t *seen, int timeout_ms);
#define STORE_PG_HOOK_OPS                                               \
    .hook_put = store_pg_hook_put, .hook_list = store_pg_hook_list,     \
    .hook_get = store_pg_hook_get, .hook_delete = store_pg_hook_delete, \
    .hook_disable = store_pg_hook_disable,                              \
    .delivery_claim = store_pg_delivery_claim,                          \
    .delivery_settle = store_pg_delivery_settle,                        \
    .delivery_list = store_pg_delivery_list,                            \
    .delivery_retry = store_pg_delivery_retry,                          \
    .delivery_purge = store_pg_delivery_purge,                          \
    .wait_hooks = store_pg_wait_hooks

#endif
