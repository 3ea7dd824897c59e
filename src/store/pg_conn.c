/*
 * libpq for the PostgreSQL backend (pg_int.h): the one path a statement
 * takes (send, wait with a deadline, check the result), sessions, the
 * pool, schema migrations and the LISTEN thread.
 *
 * A pooled connection found dead (the server restarted) is replaced
 * before anything is sent on it.
 */
#include "pg_int.h"

#include "../log/log.h"
#include "../metrics/metrics.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>

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

int store_pg_fail(struct store_pg_conn *c, const PGresult *r, const char *what)
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

/* ------------------------------------------------------------- exec */

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
static PGresult *wait_result(struct store_pg_conn *c, const char *what)
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
    store_pg_fail(c, NULL,
                  clock_mono_ms() >= deadline ? "timeout"
                                              : (what ? what : "io"));
    return NULL;
}

/* After a PQsend* call that returned `sent`: wait for the answer and check
 * it. 0 with *out (if given, else cleared), or a negative code, logged. */
static int exec(struct store_pg_conn *c, int sent, const char *what,
                PGresult **out)
{
    if (!sent)
        return store_pg_fail(c, NULL, what);
    PGresult *r = wait_result(c, what);
    if (!r)
        return ERR_STORE;
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        int ret = store_pg_fail(c, r, what);
        PQclear(r);
        return ret;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return 0;
}

int store_pg_sql(struct store_pg_conn *c, const char *sql,
                 const struct store_pg_params *p, const char *what,
                 PGresult **out)
{
    bool params = p && p->n > 0;
    return exec(
        c,
        params ? PQsendQueryParams(c->pg, sql, p->n, NULL, p->v, NULL, NULL, 0)
               : PQsendQuery(c->pg, sql),
        what, out);
}

int store_pg_run(struct store_pg_conn *c, enum store_pg_stmt id,
                 const char *what, const char *sql,
                 const struct store_pg_params *p, PGresult **out)
{
    char name[16];
    snprintf(name, sizeof(name), "paddock_%d", (int)id);
    *out = NULL;
    if (!(c->prepared & (1u << id))) {
        int ret = exec(c, PQsendPrepare(c->pg, name, sql, 0, NULL), what, NULL);
        if (ret < 0)
            return ret;
        c->prepared |= 1u << id;
    }
    return exec(c,
                PQsendQueryPrepared(c->pg, name, p ? p->n : 0, p ? p->v : NULL,
                                    NULL, NULL, 0),
                what, out);
}

char *store_pg_text_array(const char *const *names, size_t n)
{
    struct buf b = BUF_INIT;
    buf_putc(&b, '{');
    for (size_t i = 0; i < n; i++) {
        buf_puts(&b, i ? ",\"" : "\"");
        for (const char *c = names[i]; *c; c++) {
            if (*c == '"' || *c == '\\')
                buf_putc(&b, '\\');
            buf_putc(&b, *c);
        }
        buf_putc(&b, '"');
    }
    buf_putc(&b, '}');
    return buf_take(&b);
}

/* ------------------------------------------------------- connections */

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* NOTICEs ("already exists, skipping") are not news */
}

void store_pg_conn_close(struct store_pg_conn *c)
{
    PQfinish(c->pg); /* NULL is fine */
    c->pg = NULL;
    c->prepared = 0;
    c->bad = false;
}

/* Connect c to the server at url and set up its session. */
static int conn_connect(const char *url, struct store_pg_conn *c,
                        struct errmsg *err)
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
    store_pg_conn_close(c);
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
        store_pg_sql(c, SESSION_SQL, NULL, "session", NULL) < 0) {
        clean_msg(PQerrorMessage(c->pg), msg, sizeof(msg));
        errmsg_set(err, ERR_STORE, "cannot set up the PostgreSQL session: %s",
                   msg);
        goto fail;
    }
    return 0;
fail:
    store_pg_conn_close(c);
    return err->code;
}

/* An idle connection has nothing to read; if it has, the server ended it
 * (a restart sends an error, then closes) or said something we did not
 * ask for: either way, start afresh. */
static bool conn_alive(struct store_pg_conn *c)
{
    if (!c->pg || c->bad || PQstatus(c->pg) != CONNECTION_OK ||
        PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        return false;
    struct pollfd p = { .fd = PQsocket(c->pg), .events = POLLIN };
    return poll(&p, 1, 0) == 0;
}

int store_pg_conn_ready(const char *url, struct store_pg_conn *c)
{
    if (conn_alive(c))
        return 0;
    struct errmsg err = { 0 };
    if (conn_connect(url, c, &err) < 0) {
        metrics_add(METRIC_STORE_ERRORS, 1);
        log_error("store failed", "backend=postgres op=connect error=\"%s\"",
                  errmsg_text(&err));
        return ERR_STORE;
    }
    return 0;
}

/* -------------------------------------------------------------- pool */

int store_pg_pool_init(struct store_pg_pool *p, const char *url,
                       struct errmsg *err)
{
    char *perr = NULL, msg[LIMIT_ERRMSG];
    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
    clock_cond_init(&p->freed);
    for (int i = PG_POOL - 1; i >= 0; i--) {
        p->conns[i].next = p->idle;
        p->idle = &p->conns[i];
    }
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (!opts) {
        clean_msg(perr ? perr : "out of memory", msg, sizeof(msg));
        PQfreemem(perr);
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "store URL is not a valid PostgreSQL URL: %s", msg);
    }
    PQconninfoFree(opts);
    p->url = xstrdup(url);
    /* The first connection is made now: a store that cannot reach its
     * server fails to open. */
    return conn_connect(url, &p->conns[0], err);
}

void store_pg_pool_fini(struct store_pg_pool *p)
{
    for (int i = 0; i < PG_POOL; i++)
        store_pg_conn_close(&p->conns[i]);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->freed);
    free(p->url);
    p->url = NULL;
}

struct store_pg_conn *store_pg_pool_get(struct store_pg_pool *p)
{
    struct timespec until = clock_mono_after(PG_POOL_WAIT_MS);
    pthread_mutex_lock(&p->lock);
    while (!p->idle) {
        if (pthread_cond_timedwait(&p->freed, &p->lock, &until) != 0 &&
            !p->idle) {
            pthread_mutex_unlock(&p->lock);
            metrics_add(METRIC_STORE_ERRORS, 1);
            log_error("store failed", "backend=postgres op=pool "
                                      "error=\"no free connection\"");
            return NULL;
        }
    }
    struct store_pg_conn *c = p->idle;
    p->idle = c->next;
    pthread_mutex_unlock(&p->lock);
    if (store_pg_conn_ready(p->url, c) < 0) {
        pthread_mutex_lock(&p->lock);
        c->next = p->idle;
        p->idle = c;
        pthread_cond_signal(&p->freed);
        pthread_mutex_unlock(&p->lock);
        return NULL;
    }
    return c;
}

void store_pg_pool_put(struct store_pg_pool *p, struct store_pg_conn *c)
{
    if (c->pg && (c->bad || PQstatus(c->pg) != CONNECTION_OK ||
                  PQtransactionStatus(c->pg) != PQTRANS_IDLE))
        store_pg_conn_close(c);
    pthread_mutex_lock(&p->lock);
    c->next = p->idle;
    p->idle = c;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

/* --------------------------------------------------------- migration */

/* store_pg_migrations[v] takes version v to v + 1, all of them in one
 * transaction, under an advisory lock (two nodes starting at once);
 * paddock_schema holds the version. */
int store_pg_migrate(struct store_pg_conn *c, struct errmsg *err)
{
    PGresult *r = NULL;
    int version = 0;
    const int latest = (int)store_pg_migrations_n;
    char msg[LIMIT_ERRMSG] = "";
    if (store_pg_sql(c,
                     "BEGIN;"
                     "SELECT pg_advisory_xact_lock(" PG_LOCK_NS
                     ", " PG_LOCK_MIGRATE ");"
                     "CREATE TABLE IF NOT EXISTS paddock_schema ("
                     " version integer NOT NULL)",
                     NULL, "migrate", NULL) < 0 ||
        store_pg_sql(c, "SELECT max(version) FROM paddock_schema", NULL,
                     "migrate", &r) < 0)
        goto fail;
    version = (int)col_i64(r, 0, 0);
    PQclear(r);
    r = NULL;
    if (version > latest) {
        store_pg_sql(c, "ROLLBACK", NULL, "migrate", NULL);
        return errmsg_set(err, ERR_STORE,
                          "the database schema is version %d, newer than "
                          "this paddock (%d): upgrade paddock",
                          version, latest);
    }
    for (int v = version; v < latest; v++)
        if (store_pg_sql(c, store_pg_migrations[v], NULL, "migrate", NULL) < 0)
            goto fail;
    if (version < latest) {
        struct store_pg_params p = { 0 };
        p_i64(&p, latest);
        if (store_pg_sql(c, "DELETE FROM paddock_schema", NULL, "migrate",
                         NULL) < 0 ||
            store_pg_sql(c, "INSERT INTO paddock_schema (version) VALUES ($1)",
                         &p, "migrate", NULL) < 0)
            goto fail;
    }
    if (store_pg_sql(c, "COMMIT", NULL, "migrate", NULL) < 0)
        goto fail;
    return 0;
fail:
    clean_msg(PQerrorMessage(c->pg), msg, sizeof(msg));
    if (c->pg && !c->bad)
        store_pg_sql(c, "ROLLBACK", NULL, "migrate", NULL);
    return errmsg_set(err, ERR_STORE,
                      "schema migration from version %d failed: %s", version,
                      msg);
}

/* ---------------------------------------------------------- wake-ups */

/* How often the listener looks at its stop flag; how long it waits before
 * connecting again after losing the server. */
#define PG_LISTEN_TICK_MS  200
#define PG_LISTEN_RETRY_MS 1000

/* A new sequence number for the sleepers: something may have changed. */
static void wake_all(struct store_pg_listen *l, bool work, bool hooks)
{
    pthread_mutex_lock(&l->lock);
    l->seq += work;
    l->hooks_seq += hooks;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

/* LISTEN on a connection of its own; every notification (a commit that
 * made work on any node) wakes the sleepers of this store. After losing
 * the server it wakes them too (notifications may have been missed) and
 * connects again. */
static void *listener_main(void *arg)
{
    struct store_pg_listen *l = arg;
    struct store_pg_conn c = { 0 };
    bool tasks_on = false; /* LISTEN PG_TASK_CHANNEL sent on c */
    while (!atomic_load(&l->stop)) {
        if (!c.pg || c.bad || PQstatus(c.pg) != CONNECTION_OK) {
            struct errmsg err = { 0 };
            tasks_on = false;
            if (conn_connect(l->url, &c, &err) < 0 ||
                store_pg_sql(&c,
                             "LISTEN " PG_CHANNEL ";LISTEN " PG_HOOKS_CHANNEL,
                             NULL, "listen", NULL) < 0) {
                store_pg_conn_close(&c);
                for (int t = 0; t < PG_LISTEN_RETRY_MS / PG_LISTEN_TICK_MS &&
                                !atomic_load(&l->stop);
                     t++)
                    nanosleep(&(struct timespec){ .tv_nsec = PG_LISTEN_TICK_MS *
                                                             1000000L },
                              NULL);
                continue;
            }
            wake_all(l, true, true);
        }
        pthread_mutex_lock(&l->lock);
        bool changed = l->changed != NULL;
        pthread_mutex_unlock(&l->lock);
        if (changed && !tasks_on) {
            if (store_pg_sql(&c, "LISTEN " PG_TASK_CHANNEL, NULL, "listen",
                             NULL) < 0)
                continue; /* c is bad: connect again */
            tasks_on = true;
        }
        struct pollfd p = { .fd = PQsocket(c.pg), .events = POLLIN };
        int n = poll(&p, 1, PG_LISTEN_TICK_MS);
        if (n <= 0)
            continue;
        if (!PQconsumeInput(c.pg)) {
            c.bad = true;
            wake_all(l, true, true);
            continue;
        }
        bool work = false, hooks = false;
        PGnotify *note;
        while ((note = PQnotifies(c.pg)) != NULL) {
            if (strcmp(note->relname, PG_TASK_CHANNEL) == 0) {
                /* Under the lock: once store_watch(NULL) returns, the
                 * watcher is never called again. */
                pthread_mutex_lock(&l->lock);
                if (l->changed && note->extra && note->extra[0])
                    l->changed(l->changed_arg, note->extra);
                pthread_mutex_unlock(&l->lock);
            } else if (strcmp(note->relname, PG_HOOKS_CHANNEL) == 0) {
                hooks = true;
            } else {
                work = true;
            }
            PQfreemem(note);
        }
        if (work || hooks)
            wake_all(l, work, hooks);
    }
    store_pg_conn_close(&c);
    return NULL;
}

void store_pg_listen_init(struct store_pg_listen *l, const char *url)
{
    memset(l, 0, sizeof(*l));
    l->url = url;
    pthread_mutex_init(&l->lock, NULL);
    clock_cond_init(&l->cond);
    atomic_init(&l->stop, false);
}

void store_pg_listen_fini(struct store_pg_listen *l)
{
    if (l->started) {
        atomic_store(&l->stop, true);
        pthread_join(l->thread, NULL);
    }
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->cond);
}

/* Start the thread (l->lock held). */
static int listen_start(struct store_pg_listen *l)
{
    if (l->started)
        return 0;
    if (pthread_create(&l->thread, NULL, listener_main, l) != 0) {
        log_error("store failed", "backend=postgres op=listen "
                                  "error=\"cannot start a thread\"");
        return ERR_STORE;
    }
    l->started = true;
    return 0;
}

void store_pg_listen_watch(struct store_pg_listen *l, store_changed fn,
                           void *arg)
{
    pthread_mutex_lock(&l->lock);
    l->changed = fn; /* the thread LISTENs to task changes at its next tick */
    l->changed_arg = arg;
    listen_start(l);
    pthread_mutex_unlock(&l->lock);
}

int store_pg_listen_wait(struct store_pg_listen *l, bool hooks, uint64_t *seen,
                         int timeout_ms)
{
    struct timespec until = clock_mono_after(timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&l->lock);
    if (listen_start(l) < 0) {
        pthread_mutex_unlock(&l->lock);
        return ERR_STORE;
    }
    uint64_t *seq = hooks ? &l->hooks_seq : &l->seq;
    while (*seq == *seen)
        if (pthread_cond_timedwait(&l->cond, &l->lock, &until) != 0)
            break;
    bool woken = *seq != *seen;
    *seen = *seq;
    pthread_mutex_unlock(&l->lock);
    return woken ? 1 : 0;
}

int store_pg_with(struct store_pg_pool *pool, store_pg_op fn, void *arg)
{
    int ret, tries = 0;
    bool retry;
    do {
        struct store_pg_conn *c = store_pg_pool_get(pool);
        if (!c)
            return ERR_STORE;
        ret = fn(c, arg);
        retry = store_pg_again(c, ret, &tries);
        store_pg_pool_put(pool, c);
    } while (retry);
    return ret;
}
