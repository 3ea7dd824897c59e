/*
 * The store conformance suite: every behaviour the API and the workers rely
 * on, run against each backend: SQLite always, PostgreSQL when
 * PADDOCK_TEST_PG holds a libpq URL of a server where the user may create
 * databases (tests/pg.sh starts a throw-away one; tests/run.sh runs this
 * suite under it). Each case gets a database of its own. Cases with two
 * handles on one database stand for two nodes (processes).
 */
#include "../../src/sign/sign.h"
#include "../../src/store/store.h"
#include "../../src/store/store_int.h" /* the embedded migrations */
#include "unit.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[] = "/tmp/paddock-test-store-XXXXXX";
static char url[600];
static const char *backend = "sqlite";
/* PostgreSQL: PADDOCK_TEST_PG split around its database name, so each
 * case can name its own; the databases made so far. */
static char pg_prefix[256], pg_query[256];
static int pg_dbs;

/* Reopen the current database. */
static struct store *open_store(void)
{
    struct store *s = NULL;
    struct errmsg err = { 0 };
    int rc = store_open(url, &s, &err);
    if (rc < 0)
        fprintf(stderr, "  store_open(%s): %s\n", url, errmsg_text(&err));
    return s;
}

/* Run SQL on the server's maintenance database (PADDOCK_TEST_PG). */
static int pg_admin(const char *sql)
{
    char admin[600];
    snprintf(admin, sizeof(admin), "%s/postgres%s", pg_prefix, pg_query);
    PGconn *pg = PQconnectdb(admin);
    int ok = PQstatus(pg) == CONNECTION_OK;
    if (ok) {
        PGresult *r = PQexec(pg, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
             PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
    }
    if (!ok)
        fprintf(stderr, "  %s: %s", sql, PQerrorMessage(pg));
    PQfinish(pg);
    return ok ? 0 : -1;
}

/* Run SQL on the current case's database. */
static int pg_case_sql(const char *sql)
{
    PGconn *pg = PQconnectdb(url);
    PGresult *r = PQexec(pg, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
             PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "  %s: %s", sql, PQerrorMessage(pg));
    PQclear(r);
    PQfinish(pg);
    return ok ? 0 : -1;
}

/* A new, empty database for the next case; url names it. */
static void fresh_url(void)
{
    static int n;
    if (strcmp(backend, "sqlite") == 0) {
        snprintf(url, sizeof(url), "sqlite:%s/test%d.db", dir, ++n);
        return;
    }
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE DATABASE paddock_test_%d_%d",
             (int)getpid(), ++pg_dbs);
    pg_admin(sql);
    snprintf(url, sizeof(url), "%s/paddock_test_%d_%d%s", pg_prefix,
             (int)getpid(), pg_dbs, pg_query);
}

/* Each case starts on a database of its own. */
static struct store *fresh_store(void)
{
    fresh_url();
    return open_store();
}

static void make_task(struct task *t, const char *key, int64_t submit_ms)
{
    memset(t, 0, sizeof(*t));
    id_uuid7(t->task_id);
    snprintf(t->key_id, sizeof(t->key_id), "%s", key);
    snprintf(t->model, sizeof(t->model), "happyhorse-1.0-t2v");
    t->status = TASK_PENDING;
    t->spec = xstrdup("{\"model\":\"happyhorse-1.0-t2v\"}");
    t->prompt = xstrdup("a horse \xe4\xb8\xad \"quoted\"");
    t->submit_ms = submit_ms;
    t->expire_ms = submit_ms + 86400000;
}

/* A plain submit: no idempotency key, no limits. */
static int insert(struct store *s, const struct task *t)
{
    struct store_submit sub = { .task = t };
    char replay[UUID_STR_LEN + 1];
    return store_submit(s, &sub, replay);
}

static void insert_get_roundtrip(void)
{
    struct store *s = fresh_store();
    struct task t, g;
    make_task(&t, "k1", 1777183994373LL);
    CHECK_INT(insert(s, &t), 0);
    CHECK_INT(store_get(s, t.task_id, &g), 0);
    CHECK_STR(g.task_id, t.task_id);
    CHECK_STR(g.key_id, "k1");
    CHECK_STR(g.model, "happyhorse-1.0-t2v");
    CHECK_INT(g.status, TASK_PENDING);
    CHECK_STR(g.spec, t.spec);
    CHECK_STR(g.prompt, t.prompt);
    CHECK_INT(g.submit_ms, 1777183994373LL);
    CHECK_INT(g.expire_ms, 1777183994373LL + 86400000);
    CHECK_INT(g.scheduled_ms, 0);
    CHECK_INT(g.end_ms, 0);
    CHECK_INT(g.attempt, 0);
    CHECK(g.result == NULL && g.message == NULL);
    task_fini(&g);
    /* The same id twice is refused, not silently replaced. */
    CHECK(insert(s, &t) < 0);
    task_fini(&t);
    store_close(s);
}

static void get_missing(void)
{
    struct store *s = fresh_store();
    struct task g;
    CHECK_INT(store_get(s, "00000000-0000-7000-8000-000000000000", &g),
              ERR_NOT_FOUND);
    task_fini(&g);
    store_close(s);
}

static void claim_oldest_first(void)
{
    struct store *s = fresh_store();
    struct task t[3], c;
    for (int i = 0; i < 3; i++) {
        make_task(&t[i], "k1", clock_now_ms());
        CHECK_INT(insert(s, &t[i]), 0);
    }
    int64_t now = clock_now_ms();
    for (int i = 0; i < 3; i++) {
        CHECK_INT(store_claim(s, "w1", now, 30000, NULL, &c), 0);
        CHECK_STR(c.task_id, t[i].task_id);
        CHECK_INT(c.status, TASK_RUNNING);
        CHECK_INT(c.attempt, 1);
        CHECK_INT(c.scheduled_ms, now);
        CHECK_STR(c.spec, t[i].spec);
        task_fini(&c);
    }
    CHECK_INT(store_claim(s, "w1", now, 30000, NULL, &c), ERR_NOT_FOUND);
    for (int i = 0; i < 3; i++)
        task_fini(&t[i]);
    store_close(s);
}

static void finish_needs_the_lease(void)
{
    struct store *s = fresh_store();
    struct task t, c, g;
    make_task(&t, "k1", clock_now_ms());
    CHECK_INT(insert(s, &t), 0);
    CHECK_INT(store_claim(s, "w1", clock_now_ms(), 30000, NULL, &c), 0);

    c.status = TASK_SUCCEEDED;
    c.end_ms = clock_now_ms();
    c.usage.output_s = 5;
    c.usage.sr = 720;
    snprintf(c.usage.ratio, sizeof(c.usage.ratio), "16:9");
    c.result = xstrdup("r.mp4");
    CHECK_INT(store_finish(s, &c, "w2"), ERR_CONFLICT); /* not the holder */
    CHECK_INT(store_finish(s, &c, "w1"), 0);
    CHECK_INT(store_finish(s, &c, "w1"), ERR_CONFLICT); /* already done */

    CHECK_INT(store_get(s, t.task_id, &g), 0);
    CHECK_INT(g.status, TASK_SUCCEEDED);
    CHECK_INT(g.end_ms, c.end_ms);
    CHECK_STR(g.result, "r.mp4");
    CHECK_INT(g.usage.sr, 720);
    CHECK(g.usage.output_s == 5.0);
    CHECK_STR(g.usage.ratio, "16:9");
    task_fini(&g);
    task_fini(&c);
    task_fini(&t);
    store_close(s);
}

static void failure_is_recorded(void)
{
    struct store *s = fresh_store();
    struct task t, c, g;
    make_task(&t, "k1", clock_now_ms());
    CHECK_INT(insert(s, &t), 0);
    CHECK_INT(store_claim(s, "w1", clock_now_ms(), 30000, NULL, &c), 0);
    c.status = TASK_FAILED;
    c.end_ms = clock_now_ms();
    snprintf(c.code, sizeof(c.code), "InternalError.Algo");
    c.message = xstrdup("the engine failed: boom");
    CHECK_INT(store_finish(s, &c, "w1"), 0);
    CHECK_INT(store_get(s, t.task_id, &g), 0);
    CHECK_INT(g.status, TASK_FAILED);
    CHECK_STR(g.code, "InternalError.Algo");
    CHECK_STR(g.message, "the engine failed: boom");
    CHECK(g.result == NULL);
    task_fini(&g);
    task_fini(&c);
    task_fini(&t);
    store_close(s);
}

static void rescue_after_lease_expiry(void)
{
    struct store *s = fresh_store();
    struct task t, c, g;
    int requeued, failed;
    make_task(&t, "k1", clock_now_ms());
    CHECK_INT(insert(s, &t), 0);
    int64_t now = clock_now_ms();
    CHECK_INT(store_claim(s, "w1", now, 1000, NULL, &c), 0);
    task_fini(&c);

    /* Not expired yet: nothing moves. */
    CHECK_INT(store_rescue(s, now + 500, 3, &requeued, &failed), 0);
    CHECK_INT(requeued + failed, 0);
    /* Renewal pushes the deadline. */
    struct store_lease l[2] = {
        { .task_id = t.task_id, .owner = "w1", .progress = 40 },
        { .task_id = t.task_id, .owner = "w2", .progress = -1 },
    };
    CHECK_INT(store_renew(s, l, 2, now + 5000), 0);
    CHECK(l[0].held);
    CHECK(!l[1].held); /* not w2's */
    CHECK_INT(store_get(s, t.task_id, &g), 0);
    CHECK_INT(g.progress, 40);
    task_fini(&g);
    CHECK_INT(store_rescue(s, now + 2000, 3, &requeued, &failed), 0);
    CHECK_INT(requeued + failed, 0);
    /* Expired: back to PENDING, keeping the attempt count. */
    CHECK_INT(store_rescue(s, now + 6000, 3, &requeued, &failed), 0);
    CHECK_INT(requeued, 1);
    CHECK_INT(failed, 0);
    CHECK_INT(store_get(s, t.task_id, &g), 0);
    CHECK_INT(g.status, TASK_PENDING);
    CHECK_INT(g.attempt, 1);
    task_fini(&g);

    /* Two more claims that expire: the third ends it. */
    for (int i = 2; i <= 3; i++) {
        CHECK_INT(store_claim(s, "w1", now, 1000, NULL, &c), 0);
        CHECK_INT(c.attempt, i);
        CHECK_INT(c.scheduled_ms, now); /* the first start is kept */
        task_fini(&c);
        CHECK_INT(store_rescue(s, now + 2000, 3, &requeued, &failed), 0);
    }
    CHECK_INT(failed, 1);
    CHECK_INT(store_get(s, t.task_id, &g), 0);
    CHECK_INT(g.status, TASK_FAILED);
    CHECK_STR(g.code, "InternalError.Timeout");
    CHECK(g.message && strstr(g.message, "3 attempts"));
    CHECK(g.end_ms > 0);
    task_fini(&g);
    task_fini(&t);
    store_close(s);
}

static void release_gives_back(void)
{
    struct store *s = fresh_store();
    struct task t, c, g;
    make_task(&t, "k1", clock_now_ms());
    CHECK_INT(insert(s, &t), 0);
    CHECK_INT(store_claim(s, "w1", clock_now_ms(), 30000, NULL, &c), 0);
    CHECK_INT(store_release(s, t.task_id, "w2"), ERR_CONFLICT);
    CHECK_INT(store_release(s, t.task_id, "w1"), 0);
    CHECK_INT(store_get(s, t.task_id, &g), 0);
    CHECK_INT(g.status, TASK_PENDING);
    CHECK_INT(g.attempt, 0);
    task_fini(&g);
    task_fini(&c);
    /* A requeue counts the attempt (its engine's process died). */
    CHECK_INT(store_claim(s, "w3", clock_now_ms(), 30000, NULL, &c), 0);
    CHECK_INT(c.attempt, 1);
    CHECK_INT(store_requeue(s, t.task_id, "w1"), ERR_CONFLICT);
    CHECK_INT(store_requeue(s, t.task_id, "w3"), 0);
    CHECK_INT(store_get(s, t.task_id, &g), 0);
    CHECK_INT(g.status, TASK_PENDING);
    CHECK_INT(g.attempt, 1);
    task_fini(&g);
    task_fini(&c);
    CHECK_INT(store_claim(s, "w4", clock_now_ms(), 30000, NULL, &c), 0);
    CHECK_INT(c.attempt, 2);
    task_fini(&c);
    task_fini(&t);
    store_close(s);
}

/* Many releases at once: each only while its owner holds it; the attempt
 * is not counted; the tasks are claimable again. */
static void release_many_at_once(void)
{
    struct store *s = fresh_store();
    struct task t[3], c;
    struct store_lease l[3];
    int64_t now = clock_now_ms();
    for (int i = 0; i < 3; i++) {
        make_task(&t[i], "k1", now);
        CHECK_INT(insert(s, &t[i]), 0);
        CHECK_INT(store_claim(s, i == 1 ? "w2" : "w1", now, 30000, NULL, &c),
                  0);
        task_fini(&c);
        l[i] = (struct store_lease){ .task_id = t[i].task_id,
                                     .owner = "w1",
                                     .progress = -1 };
    }
    CHECK_INT(store_release_many(s, l, 0), 0);
    CHECK_INT(store_release_many(s, l, 3), 0);
    CHECK(l[0].held && !l[1].held && l[2].held);
    for (int i = 0; i < 3; i++) {
        struct task g;
        CHECK_INT(store_get(s, t[i].task_id, &g), 0);
        CHECK_INT(g.status, i == 1 ? TASK_RUNNING : TASK_PENDING);
        CHECK_INT(g.attempt, i == 1 ? 1 : 0);
        task_fini(&g);
    }
    CHECK_INT(store_claim(s, "w3", now, 30000, NULL, &c), 0);
    CHECK_STR(c.task_id, t[0].task_id);
    task_fini(&c);
    CHECK_INT(store_claim(s, "w3", now, 30000, NULL, &c), 0);
    CHECK_STR(c.task_id, t[2].task_id);
    task_fini(&c);
    /* A failure releases nothing and says so. */
    l[1].owner = "w2";
    store_fault_set(s, STORE_OP_RELEASE, 1, ERR_STORE);
    CHECK_INT(store_release_many(s, &l[1], 1), ERR_STORE);
    CHECK(!l[1].held);
    for (int i = 0; i < 3; i++)
        task_fini(&t[i]);
    store_close(s);
}

/* A task with a claim delay (a sandbox scenario's queue) stays PENDING
 * until it passes, and holds up neither its own key's other tasks nor
 * other keys; it can be canceled meanwhile, and the delay is stored. */
static void claims_wait_for_not_before(void)
{
    struct store *s = fresh_store();
    struct task late, early, other, doomed, only, c;
    int64_t now = clock_now_ms();
    make_task(&late, "k1", now);
    late.not_before_ms = now + 60000;
    make_task(&doomed, "k1", now);
    doomed.not_before_ms = now + 60000;
    make_task(&early, "k1", now);
    make_task(&only, "k2", now); /* a key whose one task waits */
    only.not_before_ms = now + 30000;
    make_task(&other, "k3", now);
    CHECK_INT(insert(s, &late), 0);
    CHECK_INT(insert(s, &doomed), 0);
    CHECK_INT(insert(s, &early), 0);
    CHECK_INT(insert(s, &only), 0);
    CHECK_INT(insert(s, &other), 0);
    const char *seen[2] = { NULL, NULL };
    for (int i = 0; i < 2; i++) {
        CHECK_INT(store_claim(s, "w1", now, 30000, NULL, &c), 0);
        seen[i] = strcmp(c.task_id, early.task_id) == 0   ? "early"
                  : strcmp(c.task_id, other.task_id) == 0 ? "other"
                                                          : "a waiting task";
        task_fini(&c);
    }
    CHECK(strcmp(seen[0], seen[1]) != 0);
    CHECK(strcmp(seen[0], "a waiting task") != 0);
    CHECK(strcmp(seen[1], "a waiting task") != 0);
    CHECK_INT(store_claim(s, "w1", now + 29999, 30000, NULL, &c),
              ERR_NOT_FOUND);
    /* Some models: the same rule. */
    const char *names[] = { "happyhorse-1.0-t2v" };
    struct store_models m = { names, 1 };
    CHECK_INT(store_claim(s, "w1", now + 1, 30000, &m, &c), ERR_NOT_FOUND);
    enum task_status st;
    CHECK_INT(store_cancel(s, doomed.task_id, "k1", now + 2, &st), 0);
    store_close(s);
    s = open_store(); /* the delays are stored */
    CHECK_INT(store_claim(s, "w1", now + 30000, 30000, &m, &c), 0);
    CHECK_STR(c.task_id, only.task_id);
    task_fini(&c);
    CHECK_INT(store_claim(s, "w1", now + 30000, 30000, NULL, &c),
              ERR_NOT_FOUND);
    CHECK_INT(store_claim(s, "w1", now + 60000, 30000, NULL, &c), 0);
    CHECK_STR(c.task_id, late.task_id);
    task_fini(&c);
    CHECK_INT(store_claim(s, "w1", now + 60000, 30000, NULL, &c),
              ERR_NOT_FOUND);
    struct task *each[] = { &late, &early, &other, &doomed, &only };
    for (size_t i = 0; i < ARRAY_LEN(each); i++)
        task_fini(each[i]);
    store_close(s);
}

/* A scenario's query-errors: the first `max` queries are counted, durably
 * (another handle, a restart see the count), then none. */
static void queries_are_counted(void)
{
    struct store *s = fresh_store();
    struct task t, g;
    int n = -1;
    make_task(&t, "k1", clock_now_ms());
    CHECK_INT(insert(s, &t), 0);
    CHECK_INT(store_get(s, t.task_id, &g), 0);
    CHECK_INT(g.queries, 0);
    task_fini(&g);
    CHECK_INT(store_count_query(s, t.task_id, 2, &n), 0);
    CHECK_INT(n, 1);
    store_close(s);
    s = open_store();
    CHECK_INT(store_count_query(s, t.task_id, 2, &n), 0);
    CHECK_INT(n, 2);
    CHECK_INT(store_count_query(s, t.task_id, 2, &n), 0);
    CHECK_INT(n, 0);
    CHECK_INT(store_get(s, t.task_id, &g), 0);
    CHECK_INT(g.queries, 2);
    task_fini(&g);
    CHECK_INT(
        store_count_query(s, "00000000-0000-7000-8000-000000000000", 2, &n), 0);
    CHECK_INT(n, 0);
    store_fault_set(s, STORE_OP_COUNT_QUERY, 1, ERR_STORE);
    CHECK_INT(store_count_query(s, t.task_id, 5, &n), ERR_STORE);
    CHECK_INT(n, 0);
    task_fini(&t);
    store_close(s);
}

/* An engine's progress and reference: only the lease holder writes them;
 * the reference outlives a rescue (the next attempt resumes from it), the
 * progress starts again at 0. */
static void notes_follow_the_lease(void)
{
    struct store *s = fresh_store();
    struct task t, c, g;
    int requeued = 0, failed = 0;
    int64_t now = clock_now_ms();
    make_task(&t, "k1", now);
    CHECK_INT(insert(s, &t), 0);
    CHECK_INT(store_claim(s, "w1", now, 1000, NULL, &c), 0);
    CHECK(c.ref == NULL);
    CHECK_INT(c.progress, 0);
    task_fini(&c);
    CHECK_INT(store_note(s, t.task_id, "w2", 10, "x"), ERR_CONFLICT);
    CHECK_INT(store_note(s, t.task_id, "w1", 40, NULL), 0);
    CHECK_INT(store_note(s, t.task_id, "w1", -1, "upstream-7"), 0);
    CHECK_INT(store_get(s, t.task_id, &g), 0);
    CHECK_INT(g.progress, 40);
    CHECK_STR(g.ref, "upstream-7");
    task_fini(&g);
    CHECK_INT(store_note(s, t.task_id, "w1", 101, NULL), ERR_INVALID_PARAMETER);

    CHECK_INT(store_rescue(s, now + 2000, 3, &requeued, &failed), 0);
    CHECK_INT(requeued, 1);
    CHECK_INT(store_note(s, t.task_id, "w1", 50, NULL), ERR_CONFLICT);
    CHECK_INT(store_claim(s, "w3", now + 2000, 1000, NULL, &c), 0);
    CHECK_STR(c.ref, "upstream-7");
    CHECK_INT(c.progress, 0);
    c.status = TASK_SUCCEEDED;
    c.end_ms = now + 2500;
    c.result = xstrdup("r.mp4");
    CHECK_INT(store_finish(s, &c, "w3"), 0);
    CHECK_INT(store_note(s, t.task_id, "w3", 60, NULL), ERR_CONFLICT);
    task_fini(&c);
    task_fini(&t);
    store_close(s);
}

static void keys_and_secrets(void)
{
    struct store *s = fresh_store();
    struct store_key k = { 0 }, *list = NULL;
    size_t n = 0;
    snprintf(k.key_id, sizeof(k.key_id), "abc123");
    memset(k.salt, 7, sizeof(k.salt));
    memset(k.hash, 9, sizeof(k.hash));
    snprintf(k.name, sizeof(k.name), "ci");
    snprintf(k.scenario, sizeof(k.scenario), "realistic,speed=20");
    k.created_ms = 42;
    CHECK_INT(store_key_put(s, &k), 0);
    CHECK_INT(store_key_list(s, &list, &n), 0);
    bool seen = false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].key_id, "abc123") == 0)
            seen = memcmp(list[i].hash, k.hash, 32) == 0 &&
                   memcmp(list[i].salt, k.salt, 16) == 0 &&
                   strcmp(list[i].name, "ci") == 0 &&
                   strcmp(list[i].scenario, "realistic,speed=20") == 0 &&
                   list[i].created_ms == 42 && list[i].revoked_ms == 0;
    CHECK(seen);
    free(list);

    unsigned char a[32], b[32];
    CHECK_INT(store_secret(s, "url-signing", a), 0);
    CHECK_INT(store_secret(s, "url-signing", b), 0);
    CHECK(memcmp(a, b, 32) == 0);
    store_close(s);
    s = open_store(); /* the same after a restart */
    CHECK_INT(store_secret(s, "url-signing", b), 0);
    CHECK(memcmp(a, b, 32) == 0);
    CHECK_INT(store_secret(s, "other", b), 0);
    CHECK(memcmp(a, b, 32) != 0);
    store_close(s);
}

static void survives_reopen(void)
{
    struct store *s = fresh_store();
    struct task t, g;
    make_task(&t, "k2", clock_now_ms());
    CHECK_INT(insert(s, &t), 0);
    store_close(s);
    s = open_store();
    CHECK_INT(store_get(s, t.task_id, &g), 0);
    CHECK_STR(g.key_id, "k2");
    task_fini(&g);
    task_fini(&t);
    store_close(s);
}

#define RACE_TASKS   200
#define RACE_THREADS 4

struct racer {
    struct store *s;
    char name[24];
    int claimed;
    char (*ids)[UUID_STR_LEN + 1];
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct task c;
    while (store_claim(r->s, r->name, clock_now_ms(), 30000, NULL, &c) == 0) {
        memcpy(r->ids[r->claimed++], c.task_id, UUID_STR_LEN + 1);
        task_fini(&c);
    }
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Concurrent claimers, half on each handle: every task claimed once. */
static void claim_race(struct store *s, struct store *s2)
{
    struct task t;
    for (int i = 0; i < RACE_TASKS; i++) {
        make_task(&t, i % 2 ? "k3" : "k4", clock_now_ms());
        CHECK_INT(insert(i % 2 ? s : s2, &t), 0);
        task_fini(&t);
    }
    struct racer r[RACE_THREADS];
    pthread_t th[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++) {
        r[i] = (struct racer){ .s = i % 2 ? s2 : s };
        snprintf(r[i].name, sizeof(r[i].name), "racer%d", i);
        r[i].ids = xcalloc(RACE_TASKS, UUID_STR_LEN + 1);
        pthread_create(&th[i], NULL, race, &r[i]);
    }
    char(*all)[UUID_STR_LEN + 1] =
        xcalloc(RACE_TASKS * RACE_THREADS, UUID_STR_LEN + 1);
    int total = 0;
    for (int i = 0; i < RACE_THREADS; i++) {
        pthread_join(th[i], NULL);
        memcpy(all[total], r[i].ids, (size_t)r[i].claimed * sizeof(*all));
        total += r[i].claimed;
        free(r[i].ids);
    }
    CHECK_INT(total, RACE_TASKS);
    qsort(all, (size_t)total, sizeof(*all), cmp_id);
    for (int i = 1; i < total; i++)
        CHECK(strcmp(all[i - 1], all[i]) != 0);
    free(all);
}

static void claims_are_exclusive(void)
{
    struct store *s = fresh_store();
    claim_race(s, s);
    store_close(s);
}

/* Two nodes on one database: claims are exclusive across them too. */
static void claims_are_exclusive_across_nodes(void)
{
    struct store *s = fresh_store(), *s2 = open_store();
    claim_race(s, s2);
    store_close(s2);
    store_close(s);
}

/* ------------------------------------------------- submit with checks */

static struct store_submit idem_submit(const struct task *t, const char *key,
                                       unsigned char body)
{
    struct store_submit sub = { .task = t, .idem_key = key };
    memset(sub.body_hash, body, sizeof(sub.body_hash));
    return sub;
}

static void idempotent_submit(void)
{
    struct store *s = fresh_store();
    struct task a, b, g;
    char replay[UUID_STR_LEN + 1];
    int64_t now = clock_now_ms();
    make_task(&a, "k1", now);
    make_task(&b, "k1", now + 1);
    struct store_submit sa = idem_submit(&a, "order-17", 1);
    struct store_submit sb = idem_submit(&b, "order-17", 1);
    CHECK_INT(store_submit(s, &sa, replay), 0);
    CHECK_STR(replay, "");
    /* Same key, same body: the first task, nothing new stored. */
    CHECK_INT(store_submit(s, &sb, replay), 1);
    CHECK_STR(replay, a.task_id);
    CHECK_INT(store_get(s, b.task_id, &g), ERR_NOT_FOUND);
    /* Same key, another body: a conflict naming nothing else. */
    sb = idem_submit(&b, "order-17", 2);
    CHECK_INT(store_submit(s, &sb, replay), ERR_IDEMPOTENCY_CONFLICT);
    /* The same idempotency key under another API key is another task. */
    snprintf(b.key_id, sizeof(b.key_id), "k2");
    sb = idem_submit(&b, "order-17", 1);
    CHECK_INT(store_submit(s, &sb, replay), 0);
    task_fini(&a);
    task_fini(&b);
    store_close(s);
}

#define IDEM_THREADS 20

struct idem_racer {
    struct store *s;
    struct task t;
    int rc;
    char replay[UUID_STR_LEN + 1];
};

static void *idem_race(void *arg)
{
    struct idem_racer *r = arg;
    struct store_submit sub = idem_submit(&r->t, "same", 7);
    r->rc = store_submit(r->s, &sub, r->replay);
    return NULL;
}

/* 20 concurrent identical submits, half on each handle: one task; 19
 * replays of it. */
static void idem_race_on(struct store *s, struct store *s2)
{
    struct idem_racer r[IDEM_THREADS];
    pthread_t th[IDEM_THREADS];
    for (int i = 0; i < IDEM_THREADS; i++) {
        r[i] = (struct idem_racer){ .s = i % 2 ? s2 : s };
        make_task(&r[i].t, "k1", clock_now_ms());
        pthread_create(&th[i], NULL, idem_race, &r[i]);
    }
    int created = 0, replayed = 0;
    const char *winner = NULL;
    for (int i = 0; i < IDEM_THREADS; i++) {
        pthread_join(th[i], NULL);
        if (r[i].rc == 0) {
            created++;
            winner = r[i].t.task_id;
        }
        replayed += r[i].rc == 1;
    }
    CHECK_INT(created, 1);
    CHECK_INT(replayed, IDEM_THREADS - 1);
    for (int i = 0; i < IDEM_THREADS && winner; i++)
        if (r[i].rc == 1)
            CHECK_STR(r[i].replay, winner);
    struct store_filter f = {
        .key_id = "k1", .status = -1, .to_ms = INT64_MAX, .limit = 100
    };
    struct task *page;
    size_t n;
    int64_t total;
    CHECK_INT(store_list(s, &f, &page, &n, &total), 0);
    CHECK_INT(total, 1);
    for (size_t i = 0; i < n; i++)
        task_fini(&page[i]);
    free(page);
    for (int i = 0; i < IDEM_THREADS; i++)
        task_fini(&r[i].t);
}

static void idempotent_concurrent(void)
{
    struct store *s = fresh_store();
    idem_race_on(s, s);
    store_close(s);
}

static void idempotent_across_nodes(void)
{
    struct store *s = fresh_store(), *s2 = open_store();
    idem_race_on(s, s2);
    store_close(s2);
    store_close(s);
}

static int submit_limited(struct store *s, const char *key, int64_t active,
                          int64_t queue, char *task_id)
{
    struct task t;
    char replay[UUID_STR_LEN + 1];
    make_task(&t, key, clock_now_ms());
    struct store_submit sub = { .task = &t,
                                .max_active = active,
                                .max_queue = queue };
    int rc = store_submit(s, &sub, replay);
    if (task_id)
        memcpy(task_id, t.task_id, UUID_STR_LEN + 1);
    task_fini(&t);
    return rc;
}

/* Per-key unfinished tasks and the global queue depth, counted by the
 * store through every state change. */
static void limits(void)
{
    struct store *s = fresh_store();
    char id[UUID_STR_LEN + 1];
    struct task c;
    CHECK_INT(submit_limited(s, "a", 2, 0, NULL), 0);
    CHECK_INT(submit_limited(s, "a", 2, 0, NULL), 0);
    CHECK_INT(submit_limited(s, "a", 2, 0, NULL), ERR_ALLOCATION_QUOTA);
    CHECK_INT(submit_limited(s, "b", 2, 0, NULL), 0); /* per key */
    /* Running still counts; finished does not. */
    CHECK_INT(store_claim(s, "w", clock_now_ms(), 30000, NULL, &c), 0);
    CHECK_INT(submit_limited(s, "a", 2, 0, NULL), ERR_ALLOCATION_QUOTA);
    c.status = TASK_FAILED;
    c.end_ms = clock_now_ms();
    snprintf(c.code, sizeof(c.code), "InternalError.Algo");
    CHECK_INT(store_finish(s, &c, "w"), 0);
    task_fini(&c);
    /* The claim served "a" (it queued first): its slot is free again. */
    CHECK_INT(submit_limited(s, "a", 2, 0, NULL), 0);
    CHECK_INT(submit_limited(s, "a", 2, 0, NULL), ERR_ALLOCATION_QUOTA);
    /* Canceled frees a slot too. */
    CHECK_INT(submit_limited(s, "c", 1, 0, id), 0);
    CHECK_INT(submit_limited(s, "c", 1, 0, NULL), ERR_ALLOCATION_QUOTA);
    CHECK_INT(store_cancel(s, id, "c", clock_now_ms(), NULL), 0);
    CHECK_INT(submit_limited(s, "c", 1, 0, NULL), 0);
    /* Queue depth: pending tasks of every key (a:2 b:1 c:1). */
    CHECK_INT(submit_limited(s, "d", 0, 4, NULL), ERR_THROTTLING);
    CHECK_INT(submit_limited(s, "d", 0, 5, NULL), 0);
    store_close(s);
}

/* Key A queues 100 tasks, then key B one: B's task is the first or second
 * claim, whatever A's backlog. */
static void claims_are_fair(void)
{
    struct store *s = fresh_store();
    char b_id[UUID_STR_LEN + 1];
    for (int i = 0; i < 100; i++)
        CHECK_INT(submit_limited(s, "A", 0, 0, NULL), 0);
    CHECK_INT(submit_limited(s, "B", 0, 0, b_id), 0);
    int at = -1;
    for (int i = 0; i < 101; i++) {
        struct task c;
        CHECK_INT(store_claim(s, "w", clock_now_ms(), 30000, NULL, &c), 0);
        if (strcmp(c.task_id, b_id) == 0)
            at = i;
        task_fini(&c);
    }
    CHECK(at >= 0 && at <= 1);
    /* Round robin: with A and C both backlogged, claims alternate. */
    for (int i = 0; i < 4; i++) {
        CHECK_INT(submit_limited(s, "A", 0, 0, NULL), 0);
        CHECK_INT(submit_limited(s, "C", 0, 0, NULL), 0);
    }
    char prev[TASK_KEY_ID_MAX + 1] = "";
    for (int i = 0; i < 8; i++) {
        struct task c;
        CHECK_INT(store_claim(s, "w", clock_now_ms(), 30000, NULL, &c), 0);
        CHECK(strcmp(prev, c.key_id) != 0);
        snprintf(prev, sizeof(prev), "%s", c.key_id);
        task_fini(&c);
    }
    store_close(s);
}

/* A worker of some models claims only those, keys still taking turns;
 * a task given back (release, rescue) keeps its model for the filter. */
static void claims_by_model(void)
{
    struct store *s = fresh_store();
    static const char *const i2v_only[] = { "happyhorse-1.0-i2v" };
    static const char *const both[] = { "happyhorse-1.0-t2v",
                                        "happyhorse-1.0-i2v" };
    static const char *const other[] = { "no-such-model" };
    const struct store_models m_i2v = { i2v_only, 1 }, m_both = { both, 2 },
                              m_other = { other, 1 };
    int64_t now = clock_now_ms();
    struct task t, c;
    /* Key A: t2v, i2v, t2v; key B: i2v. */
    for (int i = 0; i < 4; i++) {
        make_task(&t, i < 3 ? "A" : "B", now + i);
        if (i == 1 || i == 3)
            snprintf(t.model, sizeof(t.model), "happyhorse-1.0-i2v");
        CHECK_INT(insert(s, &t), 0);
        task_fini(&t);
    }
    CHECK_INT(store_claim(s, "w", now, 30000, &m_other, &c), ERR_NOT_FOUND);
    CHECK_INT(store_claim(s, "w", now, 30000, &m_i2v, &c), 0);
    CHECK_STR(c.model, "happyhorse-1.0-i2v");
    /* Given back: the filter finds it again, after the other key's i2v
     * (that key's turn now: turns hold within the filter). */
    CHECK_INT(store_release(s, c.task_id, "w"), 0);
    char first[TASK_KEY_ID_MAX + 1];
    snprintf(first, sizeof(first), "%s", c.key_id);
    task_fini(&c);
    for (int i = 0; i < 2; i++) {
        CHECK_INT(store_claim(s, "w2", now, 1000, &m_i2v, &c), 0);
        CHECK_STR(c.model, "happyhorse-1.0-i2v");
        CHECK(i == 1 ? strcmp(c.key_id, first) == 0
                     : strcmp(c.key_id, first) != 0);
        task_fini(&c);
    }
    CHECK_INT(store_claim(s, "w", now, 30000, &m_i2v, &c), ERR_NOT_FOUND);
    /* w2's leases (1 s) run out: rescued to PENDING, claimable by model. */
    int requeued = 0, failed = 0;
    CHECK_INT(store_rescue(s, now + 2000, 3, &requeued, &failed), 0);
    CHECK_INT(requeued, 2);
    for (int i = 0; i < 2; i++) {
        CHECK_INT(store_claim(s, "w", now + 2000, 30000, &m_i2v, &c), 0);
        CHECK_STR(c.model, "happyhorse-1.0-i2v");
        task_fini(&c);
    }
    /* The t2v tasks stayed for a worker that takes them. */
    for (int i = 0; i < 2; i++) {
        CHECK_INT(store_claim(s, "w", now, 30000, &m_both, &c), 0);
        CHECK_STR(c.model, "happyhorse-1.0-t2v");
        CHECK_STR(c.key_id, "A");
        task_fini(&c);
    }
    CHECK_INT(store_claim(s, "w", now, 30000, NULL, &c), ERR_NOT_FOUND);
    store_close(s);
}

/* ------------------------------------------------------- cancel, list */

static void cancel_rules(void)
{
    struct store *s = fresh_store();
    char id[UUID_STR_LEN + 1], id2[UUID_STR_LEN + 1];
    enum task_status st;
    struct task g, c;
    int64_t now = clock_now_ms();
    CHECK_INT(submit_limited(s, "k", 0, 0, id), 0);
    /* Another key: the same answer as no task at all. */
    CHECK_INT(store_cancel(s, id, "other", now, &st), ERR_NOT_FOUND);
    CHECK_INT(
        store_cancel(s, "01900000-0000-7000-8000-000000000000", "k", now, &st),
        ERR_NOT_FOUND);
    CHECK_INT(store_cancel(s, id, "k", now + 5, &st), 0);
    CHECK_INT(st, TASK_CANCELED);
    CHECK_INT(store_get(s, id, &g), 0);
    CHECK_INT(g.status, TASK_CANCELED);
    CHECK_INT(g.end_ms, now + 5);
    CHECK_INT(g.scheduled_ms, 0);
    task_fini(&g);
    /* Twice: not PENDING any more. */
    CHECK_INT(store_cancel(s, id, "k", now, &st), ERR_UNSUPPORTED_OPERATION);
    CHECK_INT(st, TASK_CANCELED);
    /* A canceled task is never claimed; a running one cannot be canceled. */
    CHECK_INT(submit_limited(s, "k", 0, 0, id2), 0);
    CHECK_INT(store_claim(s, "w", now, 30000, NULL, &c), 0);
    CHECK_STR(c.task_id, id2);
    CHECK_INT(store_cancel(s, id2, "k", now, &st), ERR_UNSUPPORTED_OPERATION);
    CHECK_INT(st, TASK_RUNNING);
    task_fini(&c);
    CHECK_INT(store_claim(s, "w", now, 30000, NULL, &c), ERR_NOT_FOUND);
    store_close(s);
}

struct cancel_race {
    struct store *s;
    const char *id;
    int rc;
};

static void *cancel_thread(void *arg)
{
    struct cancel_race *r = arg;
    r->rc = store_cancel(r->s, r->id, "k", clock_now_ms(), NULL);
    return NULL;
}

/* Cancel against claim, many times: exactly one of them wins each time. */
static void cancel_races_claim(void)
{
    struct store *s = fresh_store();
    for (int round = 0; round < 50; round++) {
        char id[UUID_STR_LEN + 1];
        CHECK_INT(submit_limited(s, "k", 0, 0, id), 0);
        struct cancel_race r = { .s = s, .id = id };
        pthread_t th;
        pthread_create(&th, NULL, cancel_thread, &r);
        struct task c;
        int claimed = store_claim(s, "w", clock_now_ms(), 30000, NULL, &c);
        pthread_join(th, NULL);
        if (claimed == 0)
            task_fini(&c);
        CHECK((claimed == 0) != (r.rc == 0));
        CHECK(claimed == 0 || claimed == ERR_NOT_FOUND);
        CHECK(r.rc == 0 || r.rc == ERR_UNSUPPORTED_OPERATION);
    }
    store_close(s);
}

static void list_filters(void)
{
    struct store *s = fresh_store();
    int64_t base = 1777000000000LL;
    struct task t;
    /* 30 tasks of key k, one a minute, two models; 5 of another key. */
    for (int i = 0; i < 30; i++) {
        make_task(&t, "k", base + i * 60000LL);
        if (i % 3 == 0)
            snprintf(t.model, sizeof(t.model), "happyhorse-1.0-i2v");
        CHECK_INT(insert(s, &t), 0);
        task_fini(&t);
    }
    for (int i = 0; i < 5; i++) {
        make_task(&t, "other", base + i * 60000LL);
        CHECK_INT(insert(s, &t), 0);
        task_fini(&t);
    }
    struct task c;
    CHECK_INT(store_claim(s, "w", base, 30000, NULL, &c), 0); /* k's oldest */
    task_fini(&c);

    struct store_filter f = { .key_id = "k",
                              .status = -1,
                              .from_ms = base,
                              .to_ms = base + 30 * 60000LL,
                              .now_ms = base,
                              .limit = 10 };
    struct task *page;
    size_t n;
    int64_t total;
    CHECK_INT(store_list(s, &f, &page, &n, &total), 0);
    CHECK_INT(total, 30);
    CHECK_INT(n, 10);
    if (n == 10) { /* newest first */
        CHECK_INT(page[0].submit_ms, base + 29 * 60000LL);
        CHECK_INT(page[9].submit_ms, base + 20 * 60000LL);
    }
    for (size_t i = 0; i < n; i++)
        task_fini(&page[i]);
    free(page);
    f.offset = 25; /* the last page is short */
    CHECK_INT(store_list(s, &f, &page, &n, &total), 0);
    CHECK_INT(n, 5);
    for (size_t i = 0; i < n; i++)
        task_fini(&page[i]);
    free(page);
    f.offset = 0;
    f.model = "happyhorse-1.0-i2v";
    CHECK_INT(store_list(s, &f, &page, &n, &total), 0);
    CHECK_INT(total, 10);
    for (size_t i = 0; i < n; i++) {
        CHECK_STR(page[i].model, "happyhorse-1.0-i2v");
        task_fini(&page[i]);
    }
    free(page);
    f.model = NULL;
    f.status = TASK_RUNNING;
    CHECK_INT(store_list(s, &f, &page, &n, &total), 0);
    CHECK_INT(total, 1);
    if (n == 1)
        CHECK_INT(page[0].submit_ms, base);
    for (size_t i = 0; i < n; i++)
        task_fini(&page[i]);
    free(page);
    f.status = -1; /* a window of 5 minutes: [10, 15) */
    f.from_ms = base + 10 * 60000LL;
    f.to_ms = base + 15 * 60000LL;
    CHECK_INT(store_list(s, &f, &page, &n, &total), 0);
    CHECK_INT(total, 5);
    for (size_t i = 0; i < n; i++)
        task_fini(&page[i]);
    free(page);
    store_close(s);
}

/* ------------------------------------------------------------ purge */

static void purge_expired(void)
{
    struct store *s = fresh_store();
    int64_t now = clock_now_ms();
    struct task old, fresh, pending, c;
    char replay[UUID_STR_LEN + 1];
    make_task(&old, "k", now - 10000);
    old.expire_ms = now - 5000; /* submitted 10 s ago, kept 5 s */
    struct store_submit sub = idem_submit(&old, "idem-old", 1);
    CHECK_INT(store_submit(s, &sub, replay), 0);
    CHECK_INT(store_claim(s, "w", now - 9000, 30000, NULL, &c), 0);
    c.status = TASK_SUCCEEDED;
    c.end_ms = now - 8000;
    c.usage.output_s = 5;
    c.result = xstrdup("old-1.mp4");
    CHECK_INT(store_finish(s, &c, "w"), 0);
    task_fini(&c);
    make_task(&pending, "k", now - 10000); /* expired but never ran */
    pending.expire_ms = now - 5000;
    CHECK_INT(insert(s, &pending), 0);
    make_task(&fresh, "k", now);
    CHECK_INT(insert(s, &fresh), 0);

    char **names;
    size_t n;
    CHECK_INT(store_purge(s, now, 100, &names, &n), 0);
    CHECK_INT(n, 1);
    if (n == 1)
        CHECK_STR(names[0], "old-1.mp4");
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    CHECK_INT(store_get(s, old.task_id, &c), ERR_NOT_FOUND);
    /* Unfinished tasks are never deleted: they are not lost. */
    CHECK_INT(store_get(s, pending.task_id, &c), 0);
    task_fini(&c);
    CHECK_INT(store_get(s, fresh.task_id, &c), 0);
    task_fini(&c);
    /* The idempotency key went with its retention: reusable. */
    make_task(&c, "k", now);
    sub = idem_submit(&c, "idem-old", 9);
    CHECK_INT(store_submit(s, &sub, replay), 0);
    task_fini(&c);
    /* A task finishing after its expiry is kept for another retention. */
    CHECK_INT(store_claim(s, "w", now, 30000, NULL, &c), 0);
    CHECK_STR(c.task_id, pending.task_id);
    c.status = TASK_FAILED;
    c.end_ms = now;
    snprintf(c.code, sizeof(c.code), "InternalError.Algo");
    CHECK_INT(store_finish(s, &c, "w"), 0);
    task_fini(&c);
    CHECK_INT(store_get(s, pending.task_id, &c), 0);
    CHECK_INT(c.expire_ms, now + 5000);
    task_fini(&c);
    task_fini(&old);
    task_fini(&pending);
    task_fini(&fresh);
    store_close(s);
}

/* ------------------------------------------------------ group commit */

#define GROUP_THREADS 8
#define GROUP_EACH    50

static void *group_submitter(void *arg)
{
    struct store *s = arg;
    for (int i = 0; i < GROUP_EACH; i++)
        if (submit_limited(s, "g", 0, 0, NULL) != 0)
            return (void *)1;
    return NULL;
}

/* Many threads submitting at once: every submit durable and counted. */
static void group_commit(void)
{
    struct store *s = fresh_store();
    pthread_t th[GROUP_THREADS];
    for (int i = 0; i < GROUP_THREADS; i++)
        pthread_create(&th[i], NULL, group_submitter, s);
    for (int i = 0; i < GROUP_THREADS; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        CHECK(ret == NULL);
    }
    store_close(s);
    s = open_store();
    struct store_filter f = {
        .key_id = "g", .status = TASK_PENDING, .to_ms = INT64_MAX, .limit = 1
    };
    struct task *page;
    size_t n;
    int64_t total;
    CHECK_INT(store_list(s, &f, &page, &n, &total), 0);
    CHECK_INT(total, GROUP_THREADS * GROUP_EACH);
    for (size_t i = 0; i < n; i++)
        task_fini(&page[i]);
    free(page);
    CHECK_INT(submit_limited(s, "g", GROUP_THREADS * GROUP_EACH, 0, NULL),
              ERR_ALLOCATION_QUOTA);
    store_close(s);
}

/* ------------------------------------------------ many nodes, restarts */

#define NODE_THREADS 8
#define NODE_EACH    10

struct limit_racer {
    struct store *s;
    const char *key; /* NULL: a key of its own per submit */
    int64_t active, queue;
    int ok, quota, throttled, other;
};

static void *limit_race(void *arg)
{
    struct limit_racer *r = arg;
    for (int i = 0; i < NODE_EACH; i++) {
        char key[32];
        snprintf(key, sizeof(key), "%s-%d", r->key ? r->key : "q", i);
        int rc = submit_limited(r->s, r->key ? r->key : key, r->active,
                                r->queue, NULL);
        r->ok += rc == 0;
        r->quota += rc == ERR_ALLOCATION_QUOTA;
        r->throttled += rc == ERR_THROTTLING;
        r->other +=
            rc != 0 && rc != ERR_ALLOCATION_QUOTA && rc != ERR_THROTTLING;
    }
    return NULL;
}

/* 8 threads on two handles submit 80 tasks at once; what is accepted. */
static void limit_race_on(struct store *s, struct store *s2, const char *key,
                          int64_t active, int64_t queue, int *ok, int *quota,
                          int *throttled)
{
    struct limit_racer r[NODE_THREADS];
    pthread_t th[NODE_THREADS];
    *ok = *quota = *throttled = 0;
    for (int i = 0; i < NODE_THREADS; i++) {
        r[i] = (struct limit_racer){
            .s = i % 2 ? s2 : s, .key = key, .active = active, .queue = queue
        };
        pthread_create(&th[i], NULL, limit_race, &r[i]);
    }
    for (int i = 0; i < NODE_THREADS; i++) {
        pthread_join(th[i], NULL);
        *ok += r[i].ok;
        *quota += r[i].quota;
        *throttled += r[i].throttled;
        CHECK_INT(r[i].other, 0);
    }
}

/* Limits count what the database holds, not what one node saw. */
static void limits_hold_across_nodes(void)
{
    struct store *s = fresh_store(), *s2 = open_store();
    int ok, quota, throttled;
    limit_race_on(s, s2, "x", 25, 0, &ok, &quota, &throttled);
    CHECK_INT(ok, 25);
    CHECK_INT(quota, NODE_THREADS * NODE_EACH - 25);
    /* 25 pending now; the queue takes 15 more, whatever the key. */
    limit_race_on(s, s2, NULL, 0, 40, &ok, &quota, &throttled);
    CHECK_INT(ok, 15);
    CHECK_INT(throttled, NODE_THREADS * NODE_EACH - 15);
    store_close(s2);
    store_close(s);
}

struct opener {
    struct store *s;
};

static void *open_thread(void *arg)
{
    ((struct opener *)arg)->s = open_store();
    return NULL;
}

/* Nodes starting at once on a new database: one migrates, all work. */
static void concurrent_open(void)
{
    fresh_url();
    struct opener o[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, open_thread, &o[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        CHECK(o[i].s != NULL);
        if (o[i].s)
            CHECK_INT(submit_limited(o[i].s, "k", 0, 0, NULL), 0);
    }
    for (int i = 0; i < 4; i++)
        store_close(o[i].s);
}

/* Idle workers wake when any node makes work: a submit, a release, a
 * rescue. (Backends without wake-ups say so at once.) */
static void wake_ups(void)
{
    struct store *s = fresh_store(), *s2 = open_store();
    uint64_t seen = 0;
    int rc = store_wait_work(s2, &seen, 5000);
    if (rc == ERR_UNSUPPORTED_OPERATION) {
        CHECK_STR(store_name(s), "sqlite");
        goto out;
    }
    CHECK(rc == 0 || rc == 1);                    /* listening from now on */
    CHECK_INT(store_wait_work(s2, &seen, 50), 0); /* nothing new */
    /* A submit on the other node; the wait comes after it and still sees
     * it (the wake-up is counted, not lost). */
    CHECK_INT(submit_limited(s, "k", 0, 0, NULL), 0);
    CHECK_INT(store_wait_work(s2, &seen, 10000), 1);
    struct task c;
    CHECK_INT(store_claim(s2, "w", clock_now_ms(), 1000, NULL, &c), 0);
    CHECK_INT(store_wait_work(s2, &seen, 50), 0);
    CHECK_INT(store_release(s2, c.task_id, "w"), 0);
    CHECK_INT(store_wait_work(s2, &seen, 10000), 1);
    task_fini(&c);
    int64_t now = clock_now_ms();
    CHECK_INT(store_claim(s2, "w", now, 1000, NULL, &c), 0);
    task_fini(&c);
    int requeued = 0;
    CHECK_INT(store_wait_work(s2, &seen, 50), 0);
    CHECK_INT(store_rescue(s, now + 2000, 3, &requeued, NULL), 0);
    CHECK_INT(requeued, 1);
    CHECK_INT(store_wait_work(s2, &seen, 10000), 1);
out:
    store_close(s2);
    store_close(s);
}

/* The server, through tests/pg.sh (PADDOCK_TEST_PG_CTL). */
static int pg_ctl(const char *verb)
{
    const char *ctl = getenv("PADDOCK_TEST_PG_CTL");
    char cmd[700];
    if (!ctl || !*ctl) {
        fprintf(stderr,
                "  PADDOCK_TEST_PG_CTL is not set: cannot %s the "
                "server\n",
                verb);
        return -1;
    }
    snprintf(cmd, sizeof(cmd), "%s %s", ctl, verb);
    return system(cmd) == 0 ? 0 : -1;
}

static int count_tasks(struct store *s, const char *key)
{
    struct store_filter f = {
        .key_id = key, .status = -1, .to_ms = INT64_MAX, .limit = 1
    };
    struct task *page;
    size_t n;
    int64_t total = -1;
    if (store_list(s, &f, &page, &n, &total) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        task_fini(&page[i]);
    free(page);
    return (int)total;
}

/* ------------------------------------------------------------ faults */

#define FAULT_THREADS 4
#define FAULT_EACH    50

struct fault_racer {
    struct store *s;
    const char *task_id;
    int failed, other;
};

static void *fault_race(void *arg)
{
    struct fault_racer *r = arg;
    for (int i = 0; i < FAULT_EACH; i++) {
        struct task g;
        int rc = store_get(r->s, r->task_id, &g);
        r->failed += rc == ERR_STORE;
        r->other += rc != 0 && rc != ERR_STORE;
        task_fini(&g);
    }
    return NULL;
}

static void never_done(void *arg, int rc, const char *replay_id)
{
    (void)rc;
    (void)replay_id;
    *(bool *)arg = true;
}

/* store_fault_set: the nth call of one op fails with the error given and
 * changes nothing; the calls around it, and other ops, run as usual. */
static void faults_fail_the_nth_call(void)
{
    struct store *s = fresh_store();
    struct task t, c, g;
    make_task(&t, "f", clock_now_ms());
    CHECK_INT(insert(s, &t), 0);
    CHECK_INT(store_claim(s, "w", clock_now_ms(), 30000, NULL, &c), 0);
    c.status = TASK_SUCCEEDED;
    c.end_ms = clock_now_ms();
    c.result = xstrdup("f.mp4");
    store_fault_set(s, STORE_OP_FINISH, 2, ERR_STORE);
    CHECK_INT(store_finish(s, &c, "other"), ERR_CONFLICT); /* the 1st */
    struct store_lease l = { .task_id = c.task_id,
                             .owner = "w",
                             .progress = -1 };
    CHECK_INT(store_renew(s, &l, 1, clock_now_ms() + 30000), 0);
    CHECK(l.held);
    CHECK_INT(store_finish(s, &c, "w"), ERR_STORE); /* the 2nd */
    CHECK_INT(store_get(s, t.task_id, &g), 0);
    CHECK_INT(g.status, TASK_RUNNING);
    task_fini(&g);
    CHECK_INT(store_finish(s, &c, "w"), 0); /* once only */
    task_fini(&c);

    /* A faulted call's outputs are those of any failure. */
    store_fault_set(s, STORE_OP_GET, 1, ERR_NOT_FOUND);
    CHECK_INT(store_get(s, t.task_id, &g), ERR_NOT_FOUND);
    CHECK_STR(g.task_id, "");
    CHECK(g.result == NULL);
    CHECK_INT(store_get(s, t.task_id, &g), 0);
    CHECK_INT(g.status, TASK_SUCCEEDED);
    task_fini(&g);

    /* A faulted submit stores nothing and, async, is never answered. */
    store_fault_set(s, STORE_OP_SUBMIT, 1, ERR_THROTTLING);
    CHECK_INT(submit_limited(s, "f2", 0, 0, NULL), ERR_THROTTLING);
    CHECK_INT(count_tasks(s, "f2"), 0);
    struct task a;
    bool answered = false;
    make_task(&a, "f2", clock_now_ms());
    struct store_submit sub = { .task = &a };
    store_fault_set(s, STORE_OP_SUBMIT, 1, ERR_STORE);
    CHECK_INT(store_submit_async(s, &sub, never_done, &answered), ERR_STORE);
    /* nth 0 clears a fault. */
    store_fault_set(s, STORE_OP_SUBMIT, 1, ERR_STORE);
    store_fault_set(s, STORE_OP_SUBMIT, 0, ERR_STORE);
    CHECK_INT(submit_limited(s, "f2", 0, 0, NULL), 0);
    CHECK_INT(count_tasks(s, "f2"), 1);

    /* Many threads at once: exactly one call is the nth. */
    struct fault_racer r[FAULT_THREADS];
    pthread_t th[FAULT_THREADS];
    store_fault_set(s, STORE_OP_GET, FAULT_THREADS * FAULT_EACH / 2 + 1,
                    ERR_STORE);
    for (int i = 0; i < FAULT_THREADS; i++) {
        r[i] = (struct fault_racer){ .s = s, .task_id = t.task_id };
        pthread_create(&th[i], NULL, fault_race, &r[i]);
    }
    int failed = 0;
    for (int i = 0; i < FAULT_THREADS; i++) {
        pthread_join(th[i], NULL);
        failed += r[i].failed;
        CHECK_INT(r[i].other, 0);
    }
    CHECK_INT(failed, 1);
    store_close(s);
    CHECK(!answered);
    task_fini(&a);
    task_fini(&t);
}

/* The server restarts (and is down for a while): every op answers, an
 * error while it is down, success once it is back; nothing acknowledged
 * is lost. */
static void server_restart(void)
{
    struct store *s = fresh_store();
    struct task t, c, g;
    make_task(&t, "r", clock_now_ms());
    CHECK_INT(insert(s, &t), 0);
    CHECK_INT(submit_limited(s, "r", 0, 0, NULL), 0);
    CHECK_INT(store_claim(s, "w", clock_now_ms(), 30000, NULL, &c), 0);
    CHECK_STR(c.task_id, t.task_id);

    uint64_t seen = 0; /* the listener is up before the restart */
    CHECK(store_wait_work(s, &seen, 5000) >= 0);

    CHECK_INT(pg_ctl("restart"), 0);
    /* Every pooled connection died: each op reconnects first. */
    CHECK_INT(store_get(s, t.task_id, &g), 0);
    task_fini(&g);
    CHECK_INT(submit_limited(s, "r", 0, 0, NULL), 0);
    c.status = TASK_SUCCEEDED;
    c.end_ms = clock_now_ms();
    c.result = xstrdup("r.mp4");
    CHECK_INT(store_finish(s, &c, "w"), 0);
    task_fini(&c);
    CHECK_INT(store_claim(s, "w", clock_now_ms(), 30000, NULL, &c), 0);
    task_fini(&c);
    CHECK_INT(count_tasks(s, "r"), 3);
    /* The listener connected again: wake-ups still come. */
    CHECK_INT(store_wait_work(s, &seen, 10000), 1);
    CHECK_INT(submit_limited(s, "r2", 0, 0, NULL), 0);
    CHECK_INT(store_wait_work(s, &seen, 10000), 1);

    CHECK_INT(pg_ctl("stop"), 0);
    CHECK_INT(store_get(s, t.task_id, &g), ERR_STORE);
    task_fini(&g);
    CHECK(submit_limited(s, "r", 0, 0, NULL) == ERR_STORE);
    CHECK_INT(store_claim(s, "w", clock_now_ms(), 30000, NULL, &c), ERR_STORE);
    struct store_lease l = { .task_id = t.task_id,
                             .owner = "w",
                             .progress = -1 };
    CHECK_INT(store_renew(s, &l, 1, clock_now_ms()), ERR_STORE);
    CHECK(!l.held);
    CHECK_INT(pg_ctl("start"), 0);

    CHECK_INT(store_get(s, t.task_id, &g), 0);
    CHECK_INT(g.status, TASK_SUCCEEDED);
    task_fini(&g);
    CHECK_INT(submit_limited(s, "r", 0, 0, NULL), 0);
    CHECK_INT(count_tasks(s, "r"), 4);
    CHECK_INT(count_tasks(s, "r2"), 1);
    task_fini(&t);
    store_close(s);
    /* And a store opened while the server is down says so at once. */
    CHECK_INT(pg_ctl("stop"), 0);
    s = open_store();
    CHECK(s == NULL);
    store_close(s);
    CHECK_INT(pg_ctl("start"), 0);
}

/* A database migrated by a newer paddock is refused, not misread. */
static void newer_schema_refused(void)
{
    struct store *s = fresh_store();
    CHECK(s != NULL);
    CHECK_STR(store_name(s), "postgres");
    store_close(s);
    CHECK_INT(pg_case_sql("UPDATE paddock_schema SET version = 999"), 0);
    struct errmsg err = { 0 };
    CHECK(store_open(url, &s, &err) == ERR_STORE);
    CHECK(strstr(err.text, "newer") != NULL);
}

static void bad_urls(void)
{
    struct store *s = NULL;
    struct errmsg err = { 0 };
    CHECK(store_open("mysql://x", &s, &err) < 0);
    CHECK(strstr(err.text, "not supported") != NULL);
    CHECK(s == NULL);
    CHECK(store_open("sqlite:/nonexistent-dir/x/y.db", &s, &err) < 0);
    CHECK(s == NULL);
    /* Nothing listens there: an error, at once. */
    CHECK_INT(store_open("postgres://paddock:secret@127.0.0.1:1/x", &s, &err),
              ERR_STORE);
    CHECK(s == NULL);
    CHECK(strstr(err.text, "secret") == NULL);
    CHECK_INT(store_open("postgresql://[::1", &s, &err), ERR_INVALID_PARAMETER);
    CHECK(s == NULL);
}

/* ------------------------------------------------ frozen migrations */

/* The SHA-256 of each released migration (src/store/sql/README.md): a
 * database that ran one never runs it again, so it must not change. A new
 * file adds its line here when it is released. */
static const char *const pg_sums[] = {
    "48cb8cecae4235cd2a5f3c8690fae2102f6c7691fc524e10e5f32766d87e36d5",
    "7ffbdb5a3244eae83d6cf31419f9bd64b8e69a914514b12a6c14af76b61d5339",
    "b9069504e453eba8245a57a7540d98ca9c43d2a854bfdff02804ccff1d8d22fd",
    "b913aa48cfef33c88c18148b9601953a5133b4ebbfedc6a536edfedd2d43ac91",
    "7f70a3e38334931a62fad0e5e6a130d19eaf271614331b462493d231b176c656",
    "1bb45313db99605266202904813b12853d3dc97827e60b0d82b8b10177305c38",
    "f2825df3d039ad09a49ccba528c2f96d7592efaf992186b64f6575cce1b82248",
};
static const char *const sqlite_sums[] = {
    "7ba48bbc53951c044914d777304d580eb316cbe4ee393008269c66b33d7a648d",
    "d074653772d303082df937a8cc9d1cc07145fd194f46683429d3768e02b9efa8",
    "5c473953a319cf594d8585c3719bb225dd02320075bfef44ce503d89e7c529ad",
    "04ed0acad003e2243e00b0ed39f1c57fda158a1551567af115ed8a224cb73021",
    "657267742bec1a041ac6b6fe728f89c50b7a2c9f4feebd676dee78f49c5e7ddd",
    "bfd58041069011b7db2d23a1de4c19e63333c3e6a6000557617a1912e3e1b432",
    "b7ca47120edd4635d9ef2b3aae6cf5e0dc497fc7e5b11f385fd45986d40c59b1",
};

static void check_frozen(const char *name, const char *const *m, size_t n,
                         const char *const *sums, size_t n_sums)
{
    if (n != n_sums) {
        fprintf(stderr, "  %s: %zu migrations, %zu known sums\n", name, n,
                n_sums);
        unit_failed_checks++;
    }
    for (size_t i = 0; i < n && i < n_sums; i++) {
        unsigned char h[SIGN_HASH_LEN];
        char hex[2 * SIGN_HASH_LEN + 1];
        sign_sha256(m[i], strlen(m[i]), NULL, 0, h);
        id_hex(h, sizeof(h), hex);
        if (strcmp(hex, sums[i]) != 0) {
            fprintf(stderr, "  %s migration %03zu changed (sha256 %s)\n", name,
                    i + 1, hex);
            unit_failed_checks++;
        }
    }
}

static void migrations_are_frozen(void)
{
    check_frozen("pg", store_pg_migrations, store_pg_migrations_n, pg_sums,
                 ARRAY_LEN(pg_sums));
    check_frozen("sqlite", store_sqlite_migrations, store_sqlite_migrations_n,
                 sqlite_sums, ARRAY_LEN(sqlite_sums));
}

/* Many leases renewed in one call: each held or not on its own, progress
 * written, the new deadline keeping rescue away. */
static void renew_many_at_once(void)
{
    enum { N = 120 };
    struct store *s = fresh_store();
    struct task claimed[N];
    struct store_lease l[N];
    char owners[N][32];
    int64_t now = clock_now_ms();
    for (int i = 0; i < N; i++) {
        struct task t;
        make_task(&t, i % 2 ? "ka" : "kb", now);
        CHECK_INT(insert(s, &t), 0);
        task_fini(&t);
    }
    for (int i = 0; i < N; i++) {
        snprintf(owners[i], sizeof(owners[i]), "proc/%d", i);
        CHECK_INT(store_claim(s, owners[i], now, 1000, NULL, &claimed[i]), 0);
        /* Every third names another owner: not held, not renewed. */
        l[i] = (struct store_lease){ .task_id = claimed[i].task_id,
                                     .owner = i % 3 ? owners[i] : "stranger",
                                     .progress = i % 2 ? i % 100 : -1 };
    }
    CHECK_INT(store_renew(s, l, N, now + 60000), 0);
    int held = 0, requeued = 0, failed = 0;
    for (int i = 0; i < N; i++) {
        CHECK_INT(l[i].held, i % 3 != 0);
        held += l[i].held;
    }
    CHECK_INT(held, N - N / 3);
    CHECK_INT(store_rescue(s, now + 5000, 3, &requeued, &failed), 0);
    CHECK_INT(requeued, N / 3); /* only the ones not renewed */
    for (int i = 1; i < N; i += 3) {
        struct task g;
        CHECK_INT(store_get(s, claimed[i].task_id, &g), 0);
        CHECK_INT(g.status, TASK_RUNNING);
        CHECK_INT(g.progress, i % 2 ? i % 100 : 0);
        task_fini(&g);
    }
    CHECK_INT(store_renew(s, l, 0, now), 0); /* nothing: fine */
    for (int i = 0; i < N; i++)
        task_fini(&claimed[i]);
    store_close(s);
}

#include "test_store_hooks.inc"
/* ------------------------------------------------ the status stream */

static pthread_mutex_t told_lock = PTHREAD_MUTEX_INITIALIZER;
static int told_n;
static char told_last[UUID_STR_LEN + 1];

static void on_changed(void *arg, const char *task_id)
{
    (void)arg;
    pthread_mutex_lock(&told_lock);
    told_n++;
    snprintf(told_last, sizeof(told_last), "%s", task_id);
    pthread_mutex_unlock(&told_lock);
}

static int64_t rev_of(struct store *s, const char *task_id)
{
    struct task g;
    int64_t rev = -1;
    if (store_get(s, task_id, &g) == 0)
        rev = g.rev;
    task_fini(&g);
    return rev;
}

/* Every change of status or progress counts once in rev, and is told. */
static void revision_counts_changes(void)
{
    struct store *s = fresh_store();
    struct task t, c;
    store_watch(s, on_changed, NULL);
    told_n = 0;
    make_task(&t, "k1", clock_now_ms());
    CHECK_INT(insert(s, &t), 0);
    CHECK_INT(rev_of(s, t.task_id), 0);
    CHECK_INT(store_claim(s, "w1", clock_now_ms(), 30000, NULL, &c), 0);
    CHECK_INT(rev_of(s, t.task_id), 1);
    CHECK_INT(store_note(s, t.task_id, "w1", 30, NULL), 0);
    CHECK_INT(rev_of(s, t.task_id), 2);
    CHECK_INT(store_note(s, t.task_id, "w1", 30, "ref-1"), 0); /* same */
    CHECK_INT(rev_of(s, t.task_id), 2);
    struct store_lease l = { .task_id = t.task_id,
                             .owner = "w1",
                             .progress = 60 };
    CHECK_INT(store_renew(s, &l, 1, clock_now_ms() + 30000), 0);
    CHECK(l.held);
    CHECK_INT(rev_of(s, t.task_id), 3);
    l.progress = -1;
    CHECK_INT(store_renew(s, &l, 1, clock_now_ms() + 30000), 0);
    CHECK_INT(rev_of(s, t.task_id), 3);
    c.status = TASK_SUCCEEDED;
    c.end_ms = clock_now_ms();
    c.result = xstrdup("r.mp4");
    CHECK_INT(store_finish(s, &c, "w1"), 0);
    CHECK_INT(rev_of(s, t.task_id), 4);
    pthread_mutex_lock(&told_lock);
    CHECK(told_n >= 4); /* postgres tells its own changes twice */
    CHECK_STR(told_last, t.task_id);
    pthread_mutex_unlock(&told_lock);
    task_fini(&t);
    task_fini(&c);
    store_close(s);
}

static int64_t position_of(struct store *s, const char *task_id)
{
    struct task g;
    int64_t pos = -1;
    if (store_get(s, task_id, &g) == 0 && store_queue_position(s, &g, &pos) < 0)
        pos = -2;
    task_fini(&g);
    return pos;
}

/* Keys take turns: ka's 3 and kb's 2 go ka1 kb1 ka2 kb2 ka3. */
static void queue_positions_follow_turns(void)
{
    struct store *s = fresh_store();
    char ids[5][UUID_STR_LEN + 1];
    const char *keys[5] = { "ka", "ka", "ka", "kb", "kb" };
    for (int i = 0; i < 5; i++) {
        struct task t;
        make_task(&t, keys[i], clock_now_ms());
        CHECK_INT(insert(s, &t), 0);
        memcpy(ids[i], t.task_id, sizeof(ids[i]));
        task_fini(&t);
    }
    CHECK_INT(position_of(s, ids[0]), 1);
    CHECK_INT(position_of(s, ids[3]), 2);
    CHECK_INT(position_of(s, ids[1]), 3);
    CHECK_INT(position_of(s, ids[4]), 4);
    CHECK_INT(position_of(s, ids[2]), 5);
    struct task c;
    CHECK_INT(store_claim(s, "w1", clock_now_ms(), 30000, NULL, &c), 0);
    CHECK_STR(c.task_id, ids[0]);
    task_fini(&c);
    /* ka had its turn: kb1 ka2 kb2 ka3. */
    CHECK_INT(position_of(s, ids[3]), 1);
    CHECK_INT(position_of(s, ids[1]), 2);
    CHECK_INT(position_of(s, ids[4]), 3);
    CHECK_INT(position_of(s, ids[2]), 4);
    CHECK_INT(store_claim(s, "w1", clock_now_ms(), 30000, NULL, &c), 0);
    CHECK_STR(c.task_id, ids[3]);
    task_fini(&c);
    CHECK_INT(position_of(s, ids[1]), 1);
    CHECK_INT(position_of(s, ids[4]), 2);
    CHECK_INT(position_of(s, ids[2]), 3);
    store_close(s);
}

/* ------------------------------------------------ the usage ledger */

/* A submit of key's task holding `cs` hundredths of a second at `price`
 * micro-units per second (idem: an Idempotency-Key, or NULL). */
static int submit_held(struct store *s, const char *key, int64_t cs,
                       int64_t price, const char *idem, char *id)
{
    struct task t;
    make_task(&t, key, clock_now_ms());
    struct store_submit sub = {
        .task = &t,
        .idem_key = idem,
        .hold = { .cs = cs, .price = price, .resolution = 720 },
    };
    char replay[UUID_STR_LEN + 1] = "";
    int rc = store_submit(s, &sub, replay);
    if (id)
        snprintf(id, UUID_STR_LEN + 1, "%s", rc == 1 ? replay : t.task_id);
    task_fini(&t);
    return rc;
}

/* Claim the next task and end it: SUCCEEDED with output_s, or FAILED. */
static void claim_and_end(struct store *s, bool ok, double output_s)
{
    struct task c;
    CHECK_INT(store_claim(s, "w", clock_now_ms(), 30000, NULL, &c), 0);
    c.status = ok ? TASK_SUCCEEDED : TASK_FAILED;
    c.end_ms = clock_now_ms();
    c.usage.output_s = output_s;
    c.usage.sr = 720;
    if (ok)
        c.result = xstrdup("r.mp4");
    else
        snprintf(c.code, sizeof(c.code), "InternalError.Algo");
    CHECK_INT(store_finish(s, &c, "w"), 0);
    CHECK_INT(store_finish(s, &c, "w"), ERR_CONFLICT); /* once */
    task_fini(&c);
}

static void usage_of(struct store *s, const char *key, enum store_group g,
                     struct store_usage_row *total,
                     struct store_usage_row **rows, size_t *n)
{
    struct store_usage_query q = {
        .key_id = key, .from_ms = 0, .to_ms = clock_now_ms() + 60000, .group = g
    };
    CHECK_INT(store_usage(s, &q, rows, n, total), 0);
}

/* Settled at SUCCEEDED with the billed seconds, released otherwise, once
 * per task whatever the retries; amounts exact in micro-units. */
static void ledger_settles_once(void)
{
    struct store *s = fresh_store();
    struct store_usage_row total, *rows;
    size_t n;
    char id[UUID_STR_LEN + 1];
    /* 1.234567 a second: 5 s is 6.172835, 7 s 8.641969. */
    CHECK_INT(submit_held(s, "ku", 500, 1234567, NULL, NULL), 0);
    CHECK_INT(submit_held(s, "ku", 500, 1234567, NULL, NULL), 0);
    CHECK_INT(submit_held(s, "ku", 500, 1234567, NULL, id), 0);
    CHECK_INT(store_cancel(s, id, "ku", clock_now_ms(), NULL), 0);
    claim_and_end(s, true, 5.0);
    /* The second: claimed, its lease lost (a crash), rescued, then run
     * again and SUCCEEDED: one settlement. */
    struct task c;
    int64_t now = clock_now_ms();
    int requeued = 0, failed = 0;
    CHECK_INT(store_claim(s, "dead", now, 10, NULL, &c), 0);
    task_fini(&c);
    CHECK_INT(store_rescue(s, now + 1000, 3, &requeued, &failed), 0);
    CHECK_INT(requeued, 1);
    claim_and_end(s, true, 7.04); /* whole seconds: 7 */
    usage_of(s, "ku", STORE_GROUP_MODEL, &total, &rows, &n);
    CHECK_INT(total.tasks, 2);
    CHECK_INT(total.cs, 1200);
    CHECK_INT(total.amount, 6172835 + 8641969);
    CHECK_INT(n, 1);
    if (n == 1) {
        CHECK_STR(rows[0].group, "happyhorse-1.0-t2v");
        CHECK_INT(rows[0].cs, 1200);
    }
    free(rows);
    /* A failure costs nothing. */
    CHECK_INT(submit_held(s, "ku", 500, 1234567, NULL, NULL), 0);
    claim_and_end(s, false, 0);
    usage_of(s, "ku", STORE_GROUP_RESOLUTION, &total, &rows, &n);
    CHECK_INT(total.tasks, 2);
    CHECK_INT(total.cs, 1200);
    CHECK_INT(n, 1);
    if (n == 1)
        CHECK_STR(rows[0].group, "720");
    free(rows);
    /* Other keys see nothing of it; every key (admin) sees it all. */
    usage_of(s, "other", STORE_GROUP_DAY, &total, &rows, &n);
    CHECK_INT(total.tasks, 0);
    CHECK_INT(n, 0);
    free(rows);
    usage_of(s, NULL, STORE_GROUP_KEY, &total, &rows, &n);
    CHECK_INT(n, 1);
    if (n == 1)
        CHECK_STR(rows[0].group, "ku");
    free(rows);
    /* Purge: ended entries go; the report after it is empty. */
    int64_t purged = 0;
    CHECK_INT(store_usage_purge(s, clock_now_ms() + 1000, &purged), 0);
    CHECK_INT(purged, 8); /* four tasks: a hold and an end each */
    usage_of(s, "ku", STORE_GROUP_NONE, &total, &rows, &n);
    CHECK_INT(total.tasks, 0);
    free(rows);
    store_close(s);
}

static void put_quota_key(struct store *s, const char *id, enum store_quota q,
                          int64_t limit, int64_t balance)
{
    struct store_key k = { 0 };
    snprintf(k.key_id, sizeof(k.key_id), "%s", id);
    k.created_ms = clock_now_ms();
    k.quota = q;
    k.quota_limit = limit;
    k.period = STORE_PERIOD_DAY;
    k.balance = balance;
    k.balance_set = true;
    CHECK_INT(store_key_put(s, &k), 0);
}

static int64_t balance_of(struct store *s, const char *id)
{
    struct store_key *keys;
    size_t n;
    int64_t b = -2;
    CHECK_INT(store_key_list(s, &keys, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i].key_id, id) == 0)
            b = keys[i].balance;
    free(keys);
    return b;
}

/* Holds count against the quota at once; a release gives them back; a
 * replay holds nothing; a balance pays for settled amounts. */
static void quotas_hold(void)
{
    struct store *s = fresh_store();
    char id[UUID_STR_LEN + 1], again[UUID_STR_LEN + 1];
    put_quota_key(s, "q", STORE_QUOTA_SECONDS, 1000, -1); /* 10 s a day */
    CHECK_INT(submit_held(s, "q", 500, 0, "i1", id), 0);
    CHECK_INT(submit_held(s, "q", 500, 0, NULL, NULL), 0);
    CHECK_INT(submit_held(s, "q", 500, 0, NULL, NULL), ERR_ARREARAGE);
    /* The same request again is answered with its task, not refused. */
    CHECK_INT(submit_held(s, "q", 500, 0, "i1", again), 1);
    CHECK_STR(again, id);
    /* A cancel releases its hold; a success keeps what it billed. */
    CHECK_INT(store_cancel(s, id, "q", clock_now_ms(), NULL), 0);
    CHECK_INT(submit_held(s, "q", 300, 0, NULL, NULL), 0);
    CHECK_INT(submit_held(s, "q", 300, 0, NULL, NULL), ERR_ARREARAGE);
    claim_and_end(s, true, 5.0); /* the second: 5 s settled */
    CHECK_INT(submit_held(s, "q", 200, 0, NULL, NULL), 0); /* 5+3+2 */
    CHECK_INT(submit_held(s, "q", 100, 0, NULL, NULL), ERR_ARREARAGE);
    CHECK_INT(submit_held(s, "free", 500, 0, NULL, NULL), 0); /* per key */

    /* A balance of 10 units at 1 a second: two 5 s holds, then none;
     * 5 s settled leave 5 units. */
    put_quota_key(s, "b", STORE_QUOTA_NONE, 0, 10000000);
    CHECK_INT(balance_of(s, "b"), 10000000);
    CHECK_INT(submit_held(s, "b", 500, 1000000, NULL, NULL), 0);
    CHECK_INT(submit_held(s, "b", 500, 1000000, NULL, NULL), 0);
    CHECK_INT(submit_held(s, "b", 100, 1000000, NULL, NULL), ERR_ARREARAGE);
    /* Run every pending task: b's bill 5 s each. */
    struct task c;
    while (store_claim(s, "w", clock_now_ms(), 30000, NULL, &c) == 0) {
        c.status = TASK_SUCCEEDED;
        c.end_ms = clock_now_ms();
        c.usage.output_s = strcmp(c.key_id, "b") == 0 ? 5.0 : 1.0;
        c.result = xstrdup("r.mp4");
        CHECK_INT(store_finish(s, &c, "w"), 0);
        task_fini(&c);
    }
    CHECK_INT(balance_of(s, "b"), 0);
    CHECK_INT(submit_held(s, "b", 100, 1000000, NULL, NULL), ERR_ARREARAGE);
    /* A top-up sets what is left; a free task needs no balance. */
    put_quota_key(s, "b", STORE_QUOTA_NONE, 0, 3000000);
    CHECK_INT(balance_of(s, "b"), 3000000);
    CHECK_INT(submit_held(s, "b", 300, 1000000, NULL, NULL), 0);
    CHECK_INT(submit_held(s, "b", 500, 0, NULL, NULL), 0);
    CHECK_INT(store_key_delete(s, "b"), 0);
    CHECK_INT(store_key_delete(s, "b"), ERR_NOT_FOUND);
    store_close(s);
}

static void run_suite(void)
{
    RUN(revision_counts_changes);
    RUN(queue_positions_follow_turns);
    RUN(ledger_settles_once);
    RUN(quotas_hold);
    RUN(insert_get_roundtrip);
    RUN(get_missing);
    RUN(claim_oldest_first);
    RUN(finish_needs_the_lease);
    RUN(failure_is_recorded);
    RUN(rescue_after_lease_expiry);
    RUN(release_gives_back);
    RUN(release_many_at_once);
    RUN(claims_wait_for_not_before);
    RUN(queries_are_counted);
    RUN(renew_many_at_once);
    RUN(notes_follow_the_lease);
    RUN(keys_and_secrets);
    RUN(survives_reopen);
    RUN(claims_are_exclusive);
    RUN(claims_are_exclusive_across_nodes);
    RUN(idempotent_submit);
    RUN(idempotent_concurrent);
    RUN(idempotent_across_nodes);
    RUN(limits);
    RUN(limits_hold_across_nodes);
    RUN(claims_are_fair);
    RUN(claims_by_model);
    RUN(cancel_rules);
    RUN(cancel_races_claim);
    RUN(list_filters);
    RUN(purge_expired);
    RUN(group_commit);
    RUN(concurrent_open);
    RUN(wake_ups);
    RUN(faults_fail_the_nth_call);
    RUN(bad_urls);
    RUN(hooks_per_key);
    RUN(deliveries_follow_status_changes);
    RUN(delivery_leases_and_settles);
    RUN(disabled_endpoints_and_purge);
    RUN(delivery_claims_are_exclusive);
    RUN(hooks_wake_ups);
}

/* PADDOCK_TEST_PG: "postgresql://USER@HOST:PORT/DB?QUERY" → the parts
 * around DB. 0, or -1 when it is not such a URL. */
static int pg_split(const char *base)
{
    const char *auth = strstr(base, "://");
    const char *slash = auth ? strchr(auth + 3, '/') : NULL;
    if (!slash || (size_t)(slash - base) >= sizeof(pg_prefix))
        return -1;
    snprintf(pg_prefix, sizeof(pg_prefix), "%.*s", (int)(slash - base), base);
    const char *q = strchr(slash, '?');
    snprintf(pg_query, sizeof(pg_query), "%s", q ? q : "");
    return 0;
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    unit_suite = "store";
    RUN(migrations_are_frozen);
    unit_suite = "store.sqlite";
    run_suite();

    const char *pg = getenv("PADDOCK_TEST_PG");
    if (pg && *pg) {
        unit_suite = "store.postgres";
        backend = "postgres";
        if (pg_split(pg) < 0) {
            fprintf(stderr, "PADDOCK_TEST_PG is not a postgresql:// URL\n");
            return 1;
        }
        run_suite();
        RUN(newer_schema_refused);
        RUN(server_restart);
        for (int i = 1; i <= pg_dbs; i++) {
            char sql[128];
            snprintf(sql, sizeof(sql),
                     "DROP DATABASE IF EXISTS paddock_test_%d_%d WITH (FORCE)",
                     (int)getpid(), i);
            pg_admin(sql);
        }
    } else {
        fprintf(stderr,
                "store: PADDOCK_TEST_PG is not set: the PostgreSQL "
                "cases did not run (tests/pg.sh run %s)\n",
                "build/asan/tests/unit/test_store");
    }
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return UNIT_END();
}
