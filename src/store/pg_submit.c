/*
 * The PostgreSQL backend's submits: a batch of the group commit (store.c)
 * in one transaction, one fsync, on the committer's own connection.
 *
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
 *   A failed commit is reported, never retried.
 */
#include "pg_int.h"

#include <string.h>

#define SUBMIT_SQL                                                  \
    "SELECT rc, replay_id, active, depth FROM paddock_submit_held(" \
    "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, " \
    "$15, $16, $17, $18)"

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
 * transaction, which holds the submit lock: paddock_submit() (migration 1,
 * with the claim delay since migration 4), through paddock_submit_held()
 * (migration 7: the quota first, the task's hold with its insert).
 * Its rc: 0 inserted, 1 replay of replay_id, 2 idempotency conflict, 3 the
 * key's max_active reached, 4 the queue's max_queue reached, 5 the task id
 * exists, 6 the key's quota or balance refused the hold. Its p_active and
 * p_depth are the key's unfinished tasks and all pending tasks as the batch
 * counted them so far, or -1: count them now (at most the limit: a count at the
 * limit refuses either way). active and depth give back what was used, -1 when
 * not looked at; under the lock only this batch adds to either, so the batch
 * keeps them for its next submits and counts each once.
 */
static int submit_one(struct store_pg_conn *c, const struct store_submit *sub,
                      struct count *counts, size_t *n_counts, char *replay_id)
{
    const struct task *t = sub->task;
    struct store_pg_params p = { 0 };
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
    p_i64(&p, t->not_before_ms);
    p_i64(&p, sub->hold.cs);
    p_i64(&p, sub->hold.price);
    p_i64(&p, sub->hold.resolution);
    p_i64(&p, sub->hold.edit);
    int ret = store_pg_run(c, PG_ST_SUBMIT, "submit", SUBMIT_SQL, &p, &r);
    if (ret < 0)
        return ret;
    static const int codes[] = { 0,
                                 1,
                                 ERR_IDEMPOTENCY_CONFLICT,
                                 ERR_ALLOCATION_QUOTA,
                                 ERR_THROTTLING,
                                 ERR_CONFLICT,
                                 ERR_ARREARAGE };
    int64_t rc = PQntuples(r) == 1 ? col_i64(r, 0, 0) : -1;
    if (rc < 0 || rc >= (int64_t)ARRAY_LEN(codes)) {
        ret = store_pg_fail(c, r, "submit result");
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
static int submit_round(struct store_pg_conn *c, struct store_batch_req *batch,
                        size_t n, struct store_batch_req **culprit)
{
    /* One per key and one for the depth, at most. */
    struct count *counts = xcalloc(n + 1, sizeof(*counts));
    size_t n_counts = 0;
    bool any = false;
    *culprit = NULL;
    if (store_pg_sql(c,
                     "BEGIN;"
                     "SELECT pg_advisory_xact_lock(" PG_LOCK_NS
                     ", " PG_LOCK_SUBMIT ")",
                     NULL, "submit", NULL) < 0)
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
    if (store_pg_sql(
            c, any ? "SELECT pg_notify('" PG_CHANNEL "', '');COMMIT" : "COMMIT",
            NULL, "submit commit", NULL) < 0) {
        *culprit = NULL;
        goto fail;
    }
    free(counts);
    return 0;
fail:
    free(counts);
    if (c->pg && !c->bad)
        store_pg_sql(c, "ROLLBACK", NULL, "submit rollback", NULL);
    return ERR_STORE;
}

/* Commit a batch of submits in one transaction (one fsync). A submit whose
 * statement fails is answered ERR_STORE and the others run again without
 * it; a failed commit or connection fails them all (never retried: a
 * commit that failed may still have happened). */
void store_pg_submit_batch(const char *url, struct store_pg_conn *w,
                           struct store_batch_req *batch)
{
    size_t n = 0;
    for (struct store_batch_req *r = batch; r; r = r->next)
        n++;
    int ret = store_pg_conn_ready(url, w);
    while (ret == 0) {
        struct store_batch_req *culprit;
        ret = submit_round(w, batch, n, &culprit);
        if (ret == 0 || !culprit || w->bad)
            break;
        culprit->ret = ERR_STORE;
        culprit->settled = true;
    }
    if (ret < 0)
        for (struct store_batch_req *r = batch; r; r = r->next)
            if (!r->settled)
                r->ret = ERR_STORE;
    if (w->bad)
        store_pg_conn_close(w);
}
