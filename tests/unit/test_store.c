/*
 * The store conformance suite: every behaviour the API and the workers rely
 * on, run against each backend (SQLite now; PostgreSQL joins with the same
 * cases).
 */
#include "../../src/store/store.h"
#include "unit.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[] = "/tmp/paddock-test-store-XXXXXX";
static char url[256];

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

/* Each case starts on a database of its own. */
static struct store *fresh_store(void)
{
    static int n;
    snprintf(url, sizeof(url), "sqlite:%s/test%d.db", dir, ++n);
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

static void insert_get_roundtrip(void)
{
    struct store *s = fresh_store();
    struct task t, g;
    make_task(&t, "k1", 1777183994373LL);
    CHECK_INT(store_insert(s, &t), 0);
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
    CHECK(store_insert(s, &t) < 0);
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
        CHECK_INT(store_insert(s, &t[i]), 0);
    }
    int64_t now = clock_now_ms();
    for (int i = 0; i < 3; i++) {
        CHECK_INT(store_claim(s, "w1", now, 30000, &c), 0);
        CHECK_STR(c.task_id, t[i].task_id);
        CHECK_INT(c.status, TASK_RUNNING);
        CHECK_INT(c.attempt, 1);
        CHECK_INT(c.scheduled_ms, now);
        CHECK_STR(c.spec, t[i].spec);
        task_fini(&c);
    }
    CHECK_INT(store_claim(s, "w1", now, 30000, &c), ERR_NOT_FOUND);
    for (int i = 0; i < 3; i++)
        task_fini(&t[i]);
    store_close(s);
}

static void finish_needs_the_lease(void)
{
    struct store *s = fresh_store();
    struct task t, c, g;
    make_task(&t, "k1", clock_now_ms());
    CHECK_INT(store_insert(s, &t), 0);
    CHECK_INT(store_claim(s, "w1", clock_now_ms(), 30000, &c), 0);

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
    CHECK_INT(store_insert(s, &t), 0);
    CHECK_INT(store_claim(s, "w1", clock_now_ms(), 30000, &c), 0);
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
    CHECK_INT(store_insert(s, &t), 0);
    int64_t now = clock_now_ms();
    CHECK_INT(store_claim(s, "w1", now, 1000, &c), 0);
    task_fini(&c);

    /* Not expired yet: nothing moves. */
    CHECK_INT(store_rescue(s, now + 500, 3, &requeued, &failed), 0);
    CHECK_INT(requeued + failed, 0);
    /* Renewal pushes the deadline. */
    int renewed = 0;
    CHECK_INT(store_renew(s, "w1", now + 5000, &renewed), 0);
    CHECK_INT(renewed, 1);
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
        CHECK_INT(store_claim(s, "w1", now, 1000, &c), 0);
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
    CHECK_INT(store_insert(s, &t), 0);
    CHECK_INT(store_claim(s, "w1", clock_now_ms(), 30000, &c), 0);
    CHECK_INT(store_release(s, t.task_id, "w2"), ERR_CONFLICT);
    CHECK_INT(store_release(s, t.task_id, "w1"), 0);
    CHECK_INT(store_get(s, t.task_id, &g), 0);
    CHECK_INT(g.status, TASK_PENDING);
    CHECK_INT(g.attempt, 0);
    task_fini(&g);
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
    k.created_ms = 42;
    CHECK_INT(store_key_put(s, &k), 0);
    CHECK_INT(store_key_list(s, &list, &n), 0);
    bool seen = false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].key_id, "abc123") == 0)
            seen = memcmp(list[i].hash, k.hash, 32) == 0 &&
                   memcmp(list[i].salt, k.salt, 16) == 0 &&
                   strcmp(list[i].name, "ci") == 0 &&
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
    CHECK_INT(store_insert(s, &t), 0);
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
    while (store_claim(r->s, r->name, clock_now_ms(), 30000, &c) == 0) {
        memcpy(r->ids[r->claimed++], c.task_id, UUID_STR_LEN + 1);
        task_fini(&c);
    }
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Concurrent claimers: every task is claimed exactly once. */
static void claims_are_exclusive(void)
{
    struct store *s = fresh_store();
    struct task t;
    for (int i = 0; i < RACE_TASKS; i++) {
        make_task(&t, "k3", clock_now_ms());
        CHECK_INT(store_insert(s, &t), 0);
        task_fini(&t);
    }
    struct racer r[RACE_THREADS];
    pthread_t th[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++) {
        r[i] = (struct racer){ .s = s };
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
    store_close(s);
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
}

int main(void)
{
    unit_suite = "store.sqlite";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(insert_get_roundtrip);
    RUN(get_missing);
    RUN(claim_oldest_first);
    RUN(finish_needs_the_lease);
    RUN(failure_is_recorded);
    RUN(rescue_after_lease_expiry);
    RUN(release_gives_back);
    RUN(keys_and_secrets);
    RUN(survives_reopen);
    RUN(claims_are_exclusive);
    RUN(bad_urls);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return UNIT_END();
}
