/*
 * store: durable task records, API keys and shared secrets.
 *
 * One interface (struct store_ops), several backends: sqlite.c (default,
 * "sqlite:PATH"), later pg.c ("postgres://..."). Callers use the store_*
 * wrappers only; the registry in store.c is the one place that names a
 * backend. One conformance suite (tests/unit/test_store.c) runs on each.
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

struct store;

/* An API key as kept at rest: only a salted hash of the secret. */
struct store_key {
    char key_id[TASK_KEY_ID_MAX + 1];
    unsigned char salt[16];
    unsigned char hash[32]; /* SHA-256(salt || secret) */
    char name[64];
    int64_t created_ms;
    int64_t revoked_ms; /* 0 while valid */
};

struct store_ops {
    const char *name;
    int (*insert)(struct store *s, const struct task *t);
    int (*get)(struct store *s, const char *task_id, struct task *out);
    int (*claim)(struct store *s, const char *worker, int64_t now_ms,
                 int64_t lease_ms, struct task *out);
    int (*renew)(struct store *s, const char *worker, int64_t until_ms,
                 int *renewed);
    int (*finish)(struct store *s, const struct task *t, const char *worker);
    int (*release)(struct store *s, const char *task_id, const char *worker);
    int (*rescue)(struct store *s, int64_t now_ms, int max_attempts,
                  int *requeued, int *failed);
    int (*key_put)(struct store *s, const struct store_key *k);
    int (*key_list)(struct store *s, struct store_key **out, size_t *n);
    int (*secret)(struct store *s, const char *name, unsigned char out[32]);
    void (*close)(struct store *s);
};

/* Embedded first in each backend's struct (container_of). */
struct store {
    const struct store_ops *ops;
};

/*
 * Open the store at `url`: "sqlite:PATH" (or a bare path). Creates the
 * database and migrates its schema to the current version.
 * 0, or ERR_STORE / ERR_INVALID_PARAMETER with a message in *err.
 */
int store_open(const char *url, struct store **out, struct errmsg *err);
/* NULL is fine. */
void store_close(struct store *s);
/* The backend's name ("sqlite"). */
const char *store_name(const struct store *s);

/* Insert a new PENDING task; returns after the commit is durable. */
int store_insert(struct store *s, const struct task *t);
/* The task with `task_id` whatever its key, into *out (caller task_fini()s);
 * ERR_NOT_FOUND when absent. Callers check key_id and expiry. */
int store_get(struct store *s, const char *task_id, struct task *out);
/*
 * Claim the oldest PENDING task for `worker`: RUNNING, scheduled_ms set on
 * the first claim, attempt + 1, lease until now + lease_ms. ERR_NOT_FOUND
 * when nothing is pending.
 */
int store_claim(struct store *s, const char *worker, int64_t now_ms,
                int64_t lease_ms, struct task *out);
/* Extend every lease `worker` holds to `until_ms`; *renewed = how many. */
int store_renew(struct store *s, const char *worker, int64_t until_ms,
                int *renewed);
/*
 * Commit a RUNNING task's outcome (t->status SUCCEEDED with usage and
 * result, or FAILED with code and message; t->end_ms set by the caller)
 * if `worker` still holds its lease; ERR_CONFLICT when it does not.
 */
int store_finish(struct store *s, const struct task *t, const char *worker);
/* Give a claimed task back to PENDING (shutdown) if `worker` holds it; the
 * attempt it used is not counted. ERR_CONFLICT when it does not. */
int store_release(struct store *s, const char *task_id, const char *worker);
/* Return RUNNING tasks whose lease ended before now_ms to PENDING, or end
 * them FAILED InternalError.Timeout once they used max_attempts claims. */
int store_rescue(struct store *s, int64_t now_ms, int max_attempts,
                 int *requeued, int *failed);

/* Add or replace a key record. */
int store_key_put(struct store *s, const struct store_key *k);
/* All key records (caller free()s *out). */
int store_key_list(struct store *s, struct store_key **out, size_t *n);
/* A 32-byte secret shared by every process on this store (the URL signing
 * key): created at random on first use, the same ever after. */
int store_secret(struct store *s, const char *name, unsigned char out[32]);

/* Backends (only store.c calls these). */
int store_sqlite_open(const char *path, struct store **out, struct errmsg *err);

#endif
