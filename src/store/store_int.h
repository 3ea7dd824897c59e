/*
 * store internals: what the base (store.c) and the backends (sqlite*.c,
 * pg*.c) share; nothing outside src/store/ includes this.
 *
 * The base opens a backend through its registry, runs the group commit (a
 * thread per store that gathers submits into batches and hands each batch
 * to the backend's commit_batch) and wraps every op (store.h). A backend
 * implements struct store_ops and never calls into store.c: calls go from
 * the base to a backend, through the registry and the ops, never back.
 *
 * Threads: every op may be called from any number of threads at once,
 * except commit_batch, which only the committer thread calls, one batch
 * at a time. close is called once, after the committer has stopped.
 */
#ifndef PADDOCK_STORE_INT_H
#define PADDOCK_STORE_INT_H

#include "store.h"

/* A submit waiting for its batch; a batch is a list of them. */
struct store_batch_req {
    const struct store_submit *sub; /* borrowed until done is called */
    int ret;      /* commit_batch sets it: store_submit's return value */
    bool settled; /* the backend's own: ret is final (out of the batch) */
    char replay_id[UUID_STR_LEN + 1]; /* with ret 1 or a conflict */
    struct store_batch_req *next;
    store_submit_done done; /* the base's: called after commit_batch */
    void *arg;
};

/* A backend. Each op does what its wrapper in store.h says; the wrapper
 * has already reset the outputs (zeroed structs, NULL arrays, 0 counts). */
struct store_ops {
    const char *name;
    /* Most submits one commit_batch takes (0: no limit). */
    size_t batch_max;
    /* Commit a batch of submits, in one transaction and one fsync where it
     * can: set each request's ret (and replay_id); a submit that fails
     * must not undo the others. */
    void (*commit_batch)(struct store *s, struct store_batch_req *batch);
    int (*get)(struct store *s, const char *task_id, struct task *out);
    int (*claim)(struct store *s, const char *worker, int64_t now_ms,
                 int64_t lease_ms, const struct store_models *models,
                 struct task *out);
    int (*renew)(struct store *s, struct store_lease *leases, size_t n,
                 int64_t until_ms);
    int (*finish)(struct store *s, const struct task *t, const char *worker);
    int (*release)(struct store *s, const char *task_id, const char *worker,
                   bool counted);
    int (*release_many)(struct store *s, struct store_lease *leases, size_t n);
    int (*note)(struct store *s, const char *task_id, const char *worker,
                int progress, const char *ref);
    int (*count_query)(struct store *s, const char *task_id, int max,
                       int *count);
    int (*rescue)(struct store *s, int64_t now_ms, int max_attempts,
                  int *requeued, int *failed);
    int (*cancel)(struct store *s, const char *task_id, const char *key_id,
                  int64_t now_ms, enum task_status *status);
    int (*list)(struct store *s, const struct store_filter *f,
                struct task **out, size_t *n, int64_t *total);
    int (*purge)(struct store *s, int64_t now_ms, int limit, char ***results,
                 size_t *n);
    int (*stats)(struct store *s, struct store_stats *out);
    int (*key_put)(struct store *s, const struct store_key *k);
    int (*key_list)(struct store *s, struct store_key **out, size_t *n);
    int (*key_delete)(struct store *s, const char *key_id);
    int (*usage)(struct store *s, const struct store_usage_query *q,
                 struct store_usage_row **rows, size_t *n,
                 struct store_usage_row *total);
    int (*usage_purge)(struct store *s, int64_t before_ms, int64_t *n);
    int (*secret)(struct store *s, const char *name, unsigned char out[32]);
    int (*hook_put)(struct store *s, const struct store_hook *h, int max);
    int (*hook_list)(struct store *s, const char *key_id,
                     struct store_hook **out, size_t *n);
    int (*hook_get)(struct store *s, const char *webhook_id, const char *key_id,
                    struct store_hook *out);
    int (*hook_delete)(struct store *s, const char *webhook_id,
                       const char *key_id);
    int (*hook_disable)(struct store *s, const char *webhook_id,
                        int64_t now_ms);
    int (*delivery_claim)(struct store *s, const char *owner, int64_t now_ms,
                          int64_t lease_ms, struct store_delivery *out,
                          size_t max, size_t *n);
    int (*delivery_settle)(struct store *s, const char *owner,
                           const struct store_delivery *d, size_t n);
    int (*delivery_list)(struct store *s, const char *webhook_id,
                         int64_t offset, int64_t limit,
                         struct store_delivery **out, size_t *n,
                         int64_t *total);
    int (*delivery_retry)(struct store *s, const char *webhook_id,
                          const char *delivery_id, int64_t now_ms);
    int (*delivery_purge)(struct store *s, int64_t before_ms, int limit,
                          int *n);
    /* Optional (NULL: the base wakes on this process's own writes). */
    int (*wait_hooks)(struct store *s, uint64_t *seen, int timeout_ms);
    int (*queue_position)(struct store *s, const struct task *t, int64_t *pos);
    /* Optional (NULL: only this process's changes are told): tell fn of
     * the changes other processes make (store_watch). */
    void (*watch)(struct store *s, store_changed fn, void *arg);
    /* Optional (NULL: the backend has no wake-ups). */
    int (*wait_work)(struct store *s, uint64_t *seen, int timeout_ms);
    /* Release everything the backend holds, the struct too. Also called on
     * a store its open function is giving up on (the base never saw it). */
    void (*close)(struct store *s);
};

/* The base's own state of a store: the group commit, the fault hooks. */
struct store_common;

/* Embedded first in each backend's struct (container_of): the backend sets
 * ops, the base sets common (NULL while the backend opens). */
struct store {
    const struct store_ops *ops;
    struct store_common *common;
};

/* A quota's kind and period as the keys table writes them ("" for none),
 * and back (anything else reads as none, or as a day). store.c. */
const char *store_quota_name(enum store_quota q);
const char *store_period_name(enum store_quota q, enum store_period p);
enum store_quota store_quota_parse(const char *s);
enum store_period store_period_parse(const char *s);
/* The SQL expression of a usage report's group (store.c): a column of the
 * ledger, or '' for none. */
const char *store_group_column(enum store_group g);

/* The schema migrations, embedded from src/store/sql/ at build time:
 * [i] takes a database from schema version i to i + 1. */
extern const char *const store_pg_migrations[];
extern const size_t store_pg_migrations_n;
extern const char *const store_sqlite_migrations[];
extern const size_t store_sqlite_migrations_n;

/*
 * The backends' open functions, named by the registry in store.c: open the
 * database (`path` after "sqlite:", or the whole postgres URL), migrate its
 * schema, and return the store in *out. 0, or an error with a message in
 * *err (never a password) and *out NULL.
 */
int store_sqlite_open(const char *path, struct store **out, struct errmsg *err);
int store_pg_open(const char *url, struct store **out, struct errmsg *err);

#endif
