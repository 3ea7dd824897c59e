/*
 * limit: per-key request rate limits (token buckets) for one process.
 *
 * Each key has a bucket of `burst` tokens refilled at `per_s` tokens per
 * second; a request takes one token or is refused with the time until the
 * next token. Buckets live in a fixed table (LIMIT_RATE_SLOTS): a key idle
 * long enough to have a full bucket holds nothing, so its slot may be
 * reused; under more active keys than slots the least recently seen of a
 * probe window is forgotten (it starts again with a full bucket).
 *
 * Threads: limit_rate_take may run on every HTTP thread at once.
 * Ownership: limit_rate_new makes the table; limit_rate_free releases it.
 */
#ifndef PADDOCK_LIMIT_H
#define PADDOCK_LIMIT_H

#include "../core/core.h"

#define LIMIT_RATE_SLOTS 4096

struct limit_rate;

/* per_s <= 0: no limit (take always succeeds). burst >= 1. */
struct limit_rate *limit_rate_new(double per_s, double burst);
/* NULL is fine. */
void limit_rate_free(struct limit_rate *l);
/*
 * Take a token for `key` (up to TASK_KEY_ID_MAX bytes are significant) at
 * now_ms (monotonic). 0, or ERR_RATE_QUOTA with *retry_after_s, the whole
 * seconds (at least 1) until a token is there.
 */
int limit_rate_take(struct limit_rate *l, const char *key, int64_t now_ms,
                    int *retry_after_s);

#endif
