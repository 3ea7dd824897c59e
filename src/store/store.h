/*
 * store: durable task records, API keys and shared secrets.
 *
 * One interface, several backends: sqlite (default, "sqlite:PATH") and
 * postgres ("postgres://..." or "postgresql://...", a libpq URL: many
 * nodes on one database). Callers use the store_* wrappers only; the
 * registry in store.c is the one place that names a backend, and what the
 * backends implement (struct store_ops) is in store_int.h, for them alone.
 * One conformance suite (tests/unit/test_store.c) runs on each.
 *
 * Durability: every write returns only after its transaction is committed
 * to stable storage; a task_id given to a client is never lost.
 *
 * Leases: a claimed task carries lease_owner and lease_until. finish() and
 * release() change a task only while the caller still holds its lease (a
 * conditional update), so a worker that lost its lease cannot overwrite a
 * result; rescue() returns tasks whose lease expired to PENDING.
 *
 * Threads: a store may be used from any number of threads at once.
 * Ownership: results come back in caller-provided structs whose heap strings
 * the caller releases (task_fini); inputs are borrowed.
 */
#ifndef PADDOCK_STORE_H
#define PADDOCK_STORE_H

#include "../core/core.h"
#include "../task/task.h"

/* An open store (opaque). */
struct store;

/* A key's quota: over a period, in seconds or in amount (micro-units). */
enum store_quota { STORE_QUOTA_NONE, STORE_QUOTA_SECONDS, STORE_QUOTA_AMOUNT };
/* Quota periods: calendar days and months in UTC+8. */
enum store_period { STORE_PERIOD_DAY, STORE_PERIOD_MONTH };

/* What a submit holds on its key's account (the ledger, docs/extensions.md,
 * "Usage"): written with the task, in its transaction; settled or released
 * by the store itself in the transaction that ends the task. */
struct store_hold {
    int64_t cs;     /* seconds held, in hundredths */
    int64_t price;  /* micro-units per second (0: free) */
    int resolution; /* 480, 720 or 1080 */
    bool edit;      /* billed as input + output in hundredths (video-edit),
                       else as the output's whole seconds */
};

/* An API key as kept at rest: only a salted hash of the secret. */
struct store_key {
    char key_id[TASK_KEY_ID_MAX + 1];
    unsigned char salt[16];
    unsigned char hash[32]; /* SHA-256(salt || secret) */
    char name[64];
    int64_t created_ms;
    int64_t revoked_ms; /* 0 while valid */
    /* Its default sandbox scenario (docs/extensions.md, "Scenarios"), as
     * `paddock keys create --scenario` took it; "": none. */
    char scenario[LIMIT_SCENARIO_BYTES + 1];
    /* Usage and quotas (docs/extensions.md, "Usage"). */
    bool admin; /* may use the keys API and others' usage */
    enum store_quota quota;
    int64_t quota_limit; /* hundredths of a second, or micro-units */
    enum store_period period;
    /* The prepaid balance left, in micro-units, or -1: none. Read: what is
     * left now; written: the new balance when balance_set, else kept. */
    int64_t balance;
    bool balance_set;
};

/* A submit: the task plus the checks that must hold in the same
 * transaction as its insert (docs/api.md s.10-11). */
struct store_submit {
    const struct task *task; /* PENDING, with submit_ms and expire_ms */
    /* Idempotency-Key scoped to task->key_id, or NULL; body_hash is the
     * SHA-256 of the request body it was sent with. */
    const char *idem_key;
    unsigned char body_hash[32];
    int64_t max_active; /* per key PENDING+RUNNING; 0: no limit */
    int64_t max_queue;  /* all keys' PENDING; 0: no limit */
    struct store_hold hold;
};

/* A usage report's grouping. */
enum store_group {
    STORE_GROUP_NONE,
    STORE_GROUP_MODEL,
    STORE_GROUP_DAY, /* YYYYMMDD in UTC+8 */
    STORE_GROUP_RESOLUTION,
    STORE_GROUP_KEY,
};

/* Which settlements a usage report sums. */
struct store_usage_query {
    const char *key_id;     /* NULL: every key */
    int64_t from_ms, to_ms; /* settled in [from, to) */
    enum store_group group;
};

/* One row of a usage report (or its total). */
struct store_usage_row {
    char group[LIMIT_MODEL_NAME + 1]; /* the group's value as text */
    int64_t tasks;                    /* settled tasks */
    int64_t cs;                       /* billed seconds, in hundredths */
    int64_t amount;                   /* micro-units */
};

/* The models a claim may take (a worker that serves only some): task
 * model names (a task carries the model an alias means). */
struct store_models {
    const char *const *names;
    size_t n; /* >= 1 */
};

/* Which tasks store_list returns (docs/api.md s.6.2); NULL/-1 fields match
 * all. */
struct store_filter {
    const char *key_id;     /* required: a key sees its own tasks */
    const char *model;      /* or NULL */
    int status;             /* enum task_status, or -1 */
    int64_t from_ms, to_ms; /* submit_ms in [from, to) */
    int64_t now_ms;         /* expired tasks are not listed */
    int64_t offset, limit;  /* paging */
};

/* Gauges for /metrics, read at scrape time. */
#define STORE_STATS_MODELS 16
struct store_stats {
    int64_t by_status[TASK_UNKNOWN]; /* PENDING .. CANCELED */
    struct {
        char model[LIMIT_MODEL_NAME + 1];
        int64_t pending;
    } queue[STORE_STATS_MODELS]; /* pending tasks per model */
    size_t n_queue;
};

/* The end of an asynchronous submit: rc and replay_id as store_submit's. */
typedef void (*store_submit_done)(void *arg, int rc, const char *replay_id);

/*
 * Open the store at `url`: "sqlite:PATH" (or a bare path), or
 * "postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?PARAM=VALUE...]" (libpq's URL,
 * "postgresql://" too; the database must exist). Creates the database (or
 * the tables) and migrates its schema to the current version, then starts
 * the store's commit thread (group commit, store_submit).
 * 0, or ERR_STORE / ERR_INVALID_PARAMETER with a message in *err (which
 * never contains a password).
 */
int store_open(const char *url, struct store **out, struct errmsg *err);
/* Commit the submits queued, stop the store's threads, release it. No call
 * on `s` may be running or start. NULL is fine. */
void store_close(struct store *s);
/* The backend's name ("sqlite", "postgres"). */
const char *store_name(const struct store *s);

/*
 * Insert a new PENDING task after the checks of `sub`, in one transaction;
 * returns after the commit is durable. 0: inserted. 1: an earlier submit
 * with the same idempotency key and body exists; its task id is in
 * replay_id and nothing was inserted. Errors: ERR_IDEMPOTENCY_CONFLICT
 * (same key, other body), ERR_ALLOCATION_QUOTA (the key has max_active
 * unfinished tasks), ERR_THROTTLING (max_queue tasks pending),
 * ERR_ARREARAGE (the hold would take the key over its quota or balance:
 * its open holds, plus its settled usage of the period, plus this hold;
 * a replay is answered first and holds nothing), ERR_STORE.
 * Concurrent submits are serialised: identical ones create one task.
 * Group commit: submits queue for the store's commit thread, which commits
 * what has gathered in one transaction (one fsync) while the next batch
 * gathers; alone, a submit commits at once.
 */
int store_submit(struct store *s, const struct store_submit *sub,
                 char replay_id[UUID_STR_LEN + 1]);
/*
 * store_submit without waiting: done(arg, rc, replay_id) is called once,
 * on a store thread, after the commit (or its failure); `sub` and what it
 * points to must stay valid until then. Returns 0, or ERR_STORE when the
 * submit could not even be queued (done is then not called).
 */
int store_submit_async(struct store *s, const struct store_submit *sub,
                       store_submit_done done, void *arg);
/* The task with `task_id` whatever its key, into *out (caller task_fini()s);
 * ERR_NOT_FOUND when absent. Callers check key_id and expiry. */
int store_get(struct store *s, const char *task_id, struct task *out);
/*
 * Claim a PENDING task for `worker`: the oldest of the key whose turn it
 * is (keys take turns), of one of `models` (NULL: any model). It becomes
 * RUNNING, scheduled_ms set on the first claim, attempt + 1, lease until
 * now + lease_ms. A task whose not_before_ms is after now_ms is passed
 * over (a key whose pending tasks all wait gives its turn to the next).
 * ERR_NOT_FOUND when nothing such is pending.
 */
int store_claim(struct store *s, const char *worker, int64_t now_ms,
                int64_t lease_ms, const struct store_models *models,
                struct task *out);
/* One lease a process renews, with what its engine reported since. */
struct store_lease {
    const char *task_id;
    const char *owner; /* the claim's lease owner */
    int progress;      /* 0..100, or -1: unchanged */
    bool held;         /* out: owner still held it (it was renewed) */
};
/*
 * Extend each lease (task_id while owner holds it) to until_ms and write
 * its progress, all in one transaction (one durable write for many
 * tasks); each .held says whether it still was owner's. 0, or ERR_STORE
 * (then nothing was written). n may be 0.
 */
int store_renew(struct store *s, struct store_lease *leases, size_t n,
                int64_t until_ms);
/*
 * Commit a RUNNING task's outcome (t->status SUCCEEDED with usage and
 * result, or FAILED with code and message; t->end_ms set by the caller)
 * if `worker` still holds its lease; ERR_CONFLICT when it does not.
 */
int store_finish(struct store *s, const struct task *t, const char *worker);
/* Give a claimed task back to PENDING (shutdown) if `worker` holds it; the
 * attempt it used is not counted. ERR_CONFLICT when it does not. */
int store_release(struct store *s, const char *task_id, const char *worker);
/* The same, but the attempt counts (an engine's process died under it:
 * tried again within the attempt limit). ERR_CONFLICT likewise. */
int store_requeue(struct store *s, const char *task_id, const char *worker);
/* store_release for many at once, in one transaction (a shutdown gives
 * back thousands of parked jobs): each .held says whether it was still
 * its owner's (and is PENDING now); .progress is ignored. 0, or ERR_STORE
 * (nothing released). n may be 0. The fault of STORE_OP_RELEASE. */
int store_release_many(struct store *s, struct store_lease *leases, size_t n);
/*
 * Record what the engine running `task_id` reports, if `worker` holds its
 * lease: progress 0..100 (-1: unchanged; a new claim starts at 0) and the
 * engine's reference (NULL: unchanged; kept across attempts, so a later
 * claim resumes from it). Durable on return. ERR_CONFLICT when `worker`
 * does not hold the task.
 */
int store_note(struct store *s, const char *task_id, const char *worker,
               int progress, const char *ref);
/*
 * Count one query of `task_id` for a scenario's query-errors=N (`max`):
 * *count the queries counted now, 1..max, when this one was counted (the
 * caller answers it 500); 0 when max were counted already, or there is no
 * such task. Durable on return, so every node and a restart see it. Only
 * for a task whose query-errors it has not seen used up (task.queries <
 * max): it is a write.
 */
int store_count_query(struct store *s, const char *task_id, int max,
                      int *count);
/* Return RUNNING tasks whose lease ended before now_ms to PENDING, or end
 * them FAILED InternalError.Timeout once they used max_attempts claims. */
int store_rescue(struct store *s, int64_t now_ms, int max_attempts,
                 int *requeued, int *failed);
/*
 * Cancel `key_id`'s task if it is PENDING: CANCELED with end_ms = now_ms.
 * Atomic against claim: exactly one of them wins. 0; ERR_NOT_FOUND when
 * the task does not exist, belongs to another key or has expired;
 * ERR_UNSUPPORTED_OPERATION when it is not PENDING (*status says what it
 * is).
 */
int store_cancel(struct store *s, const char *task_id, const char *key_id,
                 int64_t now_ms, enum task_status *status);
/* One page of a key's tasks, newest first, and how many match in all.
 * Caller task_fini()s each of out[0..n) and free()s out. */
int store_list(struct store *s, const struct store_filter *f, struct task **out,
               size_t *n, int64_t *total);
/*
 * Delete up to `limit` finished tasks whose retention ended by now_ms, and
 * expired idempotency keys. *results receives the result file names of the
 * deleted tasks (the caller removes the files, then frees each name and the
 * array); *n how many.
 */
int store_purge(struct store *s, int64_t now_ms, int limit, char ***results,
                size_t *n);

/* Tasks by state and pending tasks per model (at most STORE_STATS_MODELS
 * models, the busiest first). 0 or ERR_STORE. */
int store_stats(struct store *s, struct store_stats *out);

/* Add or replace a key record. */
int store_key_put(struct store *s, const struct store_key *k);
/* All key records (caller free()s *out). */
int store_key_list(struct store *s, struct store_key **out, size_t *n);
/* Delete the key record key_id (its ledger rows stay). ERR_NOT_FOUND when
 * there is none. */
int store_key_delete(struct store *s, const char *key_id);

/*
 * The usage report of q: settled tasks summed per group, in order of the
 * group's value, at most LIMIT_USAGE_ROWS rows (caller free()s *rows),
 * and their total. Released tasks (failed, canceled) cost nothing and are
 * not counted. 0 or ERR_STORE.
 */
int store_usage(struct store *s, const struct store_usage_query *q,
                struct store_usage_row **rows, size_t *n,
                struct store_usage_row *total);
/* Delete ledger entries of tasks that ended before before_ms (and usage
 * totals of periods before it); open holds stay. *n: entries deleted. */
int store_usage_purge(struct store *s, int64_t before_ms, int64_t *n);

/* A 32-byte secret shared by every process on this store (the URL signing
 * key): created at random on first use, the same ever after. */
int store_secret(struct store *s, const char *name, unsigned char out[32]);

/*
 * Wait up to timeout_ms for work announced by any node on this store: a
 * submit committed, a task released or rescued to PENDING. *seen is the
 * caller's count of wake-ups (start at 0, keep it per thread across calls):
 * the wait ends at once if one came since the last call, so one that lands
 * between a claim that found nothing and this call is not lost. 1: woken
 * (claim now; another worker may get there first), 0: timed out (claim
 * anyway: wake-ups are missed while the database restarts).
 * ERR_UNSUPPORTED_OPERATION at once when the backend has none (sqlite: one
 * process, whose worker pool wakes its own threads). Any thread; the first
 * call starts the backend's listener (postgres: LISTEN on a connection of
 * its own).
 */
int store_wait_work(struct store *s, uint64_t *seen, int timeout_ms);

/* ----------------------------------------------------------- webhooks */

/*
 * Webhooks (docs/extensions.md, "Webhooks"): a key's endpoints and the
 * outbox of their deliveries. A delivery row is written by the store
 * itself (a trigger on the tasks table) in the same transaction as the
 * status change it tells of, one per enabled endpoint of the task's key
 * subscribed to the event; a key without endpoints costs one index probe.
 * Any process claims due deliveries under a lease (postgres: FOR UPDATE
 * SKIP LOCKED), so a crashed deliverer's claim comes back when it ends.
 */

/* The events an endpoint subscribes to (bits of store_hook.events). */
#define STORE_EV_RUNNING   1u
#define STORE_EV_SUCCEEDED 2u
#define STORE_EV_FAILED    4u
#define STORE_EV_CANCELED  8u
#define STORE_EV_ALL       15u

/* An endpoint of a key. */
struct store_hook {
    char webhook_id[UUID_STR_LEN + 1];
    char key_id[TASK_KEY_ID_MAX + 1];
    char url[LIMIT_WEBHOOK_URL + 1];
    unsigned events;                       /* STORE_EV_* bits, not 0 */
    char secret[LIMIT_WEBHOOK_SECRET + 1]; /* "whsec_..." */
    int64_t created_ms;
    int64_t disabled_ms; /* 0 while enabled; when a 410 disabled it */
};

/* Where a delivery stands. */
enum store_dlv_state {
    STORE_DLV_PENDING = 0, /* due at next_ms */
    STORE_DLV_DELIVERED = 1,
    STORE_DLV_DEAD = 2, /* retries used up, or its endpoint disabled */
};

/* The webhook-id of a delivery: "msg_" and 24 hex digits. */
#define STORE_DELIVERY_ID_MAX 32

/* One delivery: an event for one endpoint. */
struct store_delivery {
    char delivery_id[STORE_DELIVERY_ID_MAX + 1]; /* its webhook-id */
    char webhook_id[UUID_STR_LEN + 1];
    char task_id[UUID_STR_LEN + 1];
    char event[24]; /* "task.succeeded" */
    int state;      /* enum store_dlv_state */
    int attempts;   /* made so far */
    int64_t created_ms, next_ms, updated_ms;
    int code;                            /* the last answer's status, 0 */
    char error[LIMIT_WEBHOOK_ERROR + 1]; /* the last failure, "" */
    /* Claimed deliveries only: the endpoint, and what the first attempt
     * built (body NULL and ts 0 before it; the caller sets them for the
     * settle to keep). body is heap: store_delivery_fini. */
    char url[LIMIT_WEBHOOK_URL + 1];
    char secret[LIMIT_WEBHOOK_SECRET + 1];
    char key_id[TASK_KEY_ID_MAX + 1];
    int64_t ts; /* webhook-timestamp, Unix seconds */
    char *body;
};

/* Release d->body; NULL is fine. */
void store_delivery_fini(struct store_delivery *d);

/* Add endpoint h unless its key has max of them already
 * (ERR_ALLOCATION_QUOTA). 0 or ERR_STORE. */
int store_hook_put(struct store *s, const struct store_hook *h, int max);
/* A key's endpoints, oldest first (caller free()s *out). */
int store_hook_list(struct store *s, const char *key_id,
                    struct store_hook **out, size_t *n);
/* Endpoint webhook_id if it is key_id's; ERR_NOT_FOUND otherwise. */
int store_hook_get(struct store *s, const char *webhook_id, const char *key_id,
                   struct store_hook *out);
/* Delete key_id's endpoint and its deliveries; ERR_NOT_FOUND when it has
 * no such endpoint. */
int store_hook_delete(struct store *s, const char *webhook_id,
                      const char *key_id);
/* Disable an endpoint (a 410 Gone): no new deliveries, its pending ones
 * dead. 0 (also when it is gone) or ERR_STORE. */
int store_hook_disable(struct store *s, const char *webhook_id, int64_t now_ms);
/*
 * Claim up to max due deliveries (pending, next_ms <= now_ms, no live
 * lease) of enabled endpoints, oldest first, for `owner` until now_ms +
 * lease_ms, into out[0..*n) (caller store_delivery_fini()s each).
 */
int store_delivery_claim(struct store *s, const char *owner, int64_t now_ms,
                         int64_t lease_ms, struct store_delivery *out,
                         size_t max, size_t *n);
/*
 * Record the attempts of claimed deliveries, all in one transaction:
 * each d[i]'s state, attempts, next_ms, code, error, updated_ms, and its
 * body and ts when the row has none yet; the lease ends. A row `owner`
 * no longer holds (its lease passed to another) is left alone. 0 or
 * ERR_STORE (nothing written).
 */
int store_delivery_settle(struct store *s, const char *owner,
                          const struct store_delivery *d, size_t n);
/* A page of an endpoint's deliveries, latest first, and how many it has
 * (caller store_delivery_fini()s each and free()s *out). */
int store_delivery_list(struct store *s, const char *webhook_id, int64_t offset,
                        int64_t limit, struct store_delivery **out, size_t *n,
                        int64_t *total);
/* Make delivery_id of webhook_id due now (a manual retry; a dead one
 * pending again, its attempt count kept). ERR_NOT_FOUND. */
int store_delivery_retry(struct store *s, const char *webhook_id,
                         const char *delivery_id, int64_t now_ms);
/* Delete up to limit delivered and dead deliveries last changed before
 * before_ms; *n how many. */
int store_delivery_purge(struct store *s, int64_t before_ms, int limit, int *n);
/*
 * Wait up to timeout_ms for a delivery written or made due by any
 * process on this store (store_wait_work's rules for *seen). 1 woken, 0
 * timed out. sqlite: the writes of this process (one process per
 * database); postgres: NOTIFY paddock_hooks from any node.
 */
int store_wait_hooks(struct store *s, uint64_t *seen, int timeout_ms);
/*
 * The PENDING task t's place in the queue (1: the next claimed), into
 * *pos, read from per-key counters (never a walk over the queue): exact
 * for FIFO claims within a key taking turns across keys, an estimate
 * otherwise (docs/extensions.md, "Queue position"). ERR_NOT_FOUND when
 * its key has no queue row.
 */
int store_queue_position(struct store *s, const struct task *t, int64_t *pos);

/*
 * Changes of a task's status or progress (the status stream). fn(arg,
 * task_id) is called after the commit of each change made through this
 * store (claim, renew with progress, note with progress, finish, release,
 * requeue, cancel; not rescue); on postgres also for the changes of every
 * node (LISTEN on a connection of its own, from the thread it starts
 * here), so a change may be told twice. It runs on the thread that made
 * the change, or the listener: it must be quick and must not call the
 * store. Any thread; fn NULL stops it: the listener never calls it after
 * that returns (the callers of the ops that tell it are the caller's to
 * stop first).
 */
typedef void (*store_changed)(void *arg, const char *task_id);
void store_watch(struct store *s, store_changed fn, void *arg);

/* ------------------------------------------------------------ for tests */

/* The ops a fault can be set on. */
enum store_op {
    STORE_OP_SUBMIT, /* store_submit and store_submit_async */
    STORE_OP_GET,
    STORE_OP_CLAIM,
    STORE_OP_RENEW,
    STORE_OP_FINISH,
    STORE_OP_RELEASE,
    STORE_OP_NOTE,
    STORE_OP_RESCUE,
    STORE_OP_CANCEL,
    STORE_OP_LIST,
    STORE_OP_PURGE,
    STORE_OP_STATS,
    STORE_OP_KEY_PUT,
    STORE_OP_KEY_LIST,
    STORE_OP_SECRET,
    STORE_OP_WAIT_WORK,
    STORE_OP_COUNT_QUERY,
    STORE_OP_HOOK, /* every store_hook_* and store_delivery_* call */
    STORE_OP_QUEUE_POSITION,
    STORE_OP_KEY_DELETE,
    STORE_OP_USAGE,
    STORE_OP_USAGE_PURGE,
    STORE_OP__COUNT
};

/*
 * For tests: the nth call of `op` on `s` from now on (1: the next one)
 * fails with `err`, a negative ERR_ code (anything else: ERR_STORE),
 * without reaching the backend; its outputs are what any failure leaves
 * (store_submit_async: done is not called). It fires once; the calls
 * before and after it run as usual. nth 0 clears the op's fault; a new one
 * replaces it. Any thread. Always compiled in: on an op with no fault set,
 * a call costs one atomic load more.
 */
void store_fault_set(struct store *s, enum store_op op, int nth, int err);

#endif
