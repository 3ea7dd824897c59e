/*
 * hook: webhook deliveries (docs/extensions.md, "Webhooks").
 *
 * The outbox is the store's (store.h, "webhooks"): a delivery row is
 * written in the transaction of the status change it tells of. This
 * module sends them: one deliverer per process claims due deliveries
 * under a lease, builds each body once (the event and the task's query
 * answer, kept in the store so every retry sends the same bytes under the
 * same webhook-id), signs it the Standard Webhooks way and POSTs it
 * through net/'s guarded client, many in flight on one thread
 * (net_multi). A 2xx within HOOK_TIMEOUT_MS is delivered; anything else
 * is tried again on the schedule, then dead; a 410 disables the endpoint.
 * It also holds what the API checks and makes: event names, the secret,
 * the schedule option, the signature.
 *
 * Threads: hook_start starts two threads (the deliverer, and a waiter
 * that wakes it on the store's wake-ups); hook_stop ends them. The other
 * functions are pure and reentrant.
 * Ownership: a struct hook borrows its deps; they outlive it.
 */
#ifndef PADDOCK_HOOK_H
#define PADDOCK_HOOK_H

#include "../blob/blob.h"
#include "../net/net.h"
#include "../store/store.h"

/* A receiver has this long to answer (docs/extensions.md). */
#define HOOK_TIMEOUT_MS 10000
/* A claim's lease: the time limit and a margin; a crashed deliverer's
 * deliveries are due again after it. */
#define HOOK_LEASE_MS (HOOK_TIMEOUT_MS + 5000)
/* Deliveries in flight at once in one process: enough to keep every
 * connection net_multi opens to a receiver busy, few enough that queued
 * ones rarely wait long for a connection (their time limit runs). */
#define HOOK_INFLIGHT 256
/* The default of --webhook-schedule. */
#define HOOK_SCHEDULE_DEFAULT "5s,5m,30m,2h,5h,10h,10h"
/* Room for a webhook-signature value: "v1," and base64 of 32 bytes. */
#define HOOK_SIGNATURE_MAX 48

/* The events (names "task.running", ...) as STORE_EV_* bits. */
/* The bit of an event name, or 0 when it is none of the four. */
unsigned hook_event_bit(const char *name);
/* The name of one STORE_EV_* bit ("" for anything else). */
const char *hook_event_name(unsigned bit);

/*
 * The body of a create, {"url": "https://...", "events": [...]}, into url
 * and *events (absent: all four). 0, or ERR_INVALID_PARAMETER with a
 * message naming the field and what it takes: url a string of at most
 * LIMIT_WEBHOOK_URL bytes, http:// or https:// with a host, no spaces or
 * control characters; events a non-empty array of the four names.
 */
int hook_request_parse(const char *body, size_t len,
                       char url[LIMIT_WEBHOOK_URL + 1], unsigned *events,
                       struct errmsg *err);

/* A new secret: "whsec_" and the base64 of 32 random bytes. 0 or
 * ERR_INTERNAL (no randomness). */
int hook_secret_new(char out[LIMIT_WEBHOOK_SECRET + 1]);
/*
 * The webhook-signature value for (id, ts, body) under secret ("whsec_"
 * + base64 key; the key is its decoded bytes): "v1," and the base64 of
 * HMAC-SHA256(key, "id.ts.body"). 0, or ERR_INVALID_PARAMETER for a
 * secret that is not one.
 */
int hook_sign(const char *secret, const char *id, int64_t ts, const char *body,
              size_t len, char out[HOOK_SIGNATURE_MAX + 1]);

/* --webhook-schedule: the delays after the 1st, 2nd, ... failed attempt,
 * comma-separated durations (clock_parse_duration: 100ms..1d), at most
 * LIMIT_WEBHOOK_RETRIES. */
struct hook_schedule {
    int64_t delay_ms[LIMIT_WEBHOOK_RETRIES];
    size_t n;
};
/* 0, or ERR_INVALID_PARAMETER with a message naming the bad entry. */
int hook_schedule_parse(const char *s, struct hook_schedule *out,
                        struct errmsg *err);

/*
 * What the deliverer decides after an attempt of d (its attempts already
 * counting this one): state, next_ms, and whether the endpoint is to be
 * disabled. ok: a 2xx arrived in time; status: the answer's (0: none).
 * Pure: the rules of docs/extensions.md as one function, for the tests.
 */
bool hook_outcome(struct store_delivery *d, const struct hook_schedule *sch,
                  bool ok, int status, int64_t now_ms);

struct hook_deps {
    struct store *store;
    const struct blob *blob;
    const char *url_base;          /* of video_url: the public URL or the bound
                                      address */
    int utc_offset_min;            /* of the *_time strings in data */
    const struct net_allow *allow; /* --fetch-allow; NULL: none */
    struct hook_schedule schedule;
    const char *owner; /* this process's lease name */
};

struct hook;

/* Start the deliverer. 0 or ERR_INTERNAL (*err says why). */
int hook_start(const struct hook_deps *deps, struct hook **out,
               struct errmsg *err);
/* Stop it: transfers in flight end unsettled (their lease brings them
 * back), the threads are joined. NULL is fine. */
void hook_stop(struct hook *h);

#endif
