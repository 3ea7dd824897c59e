/* Token buckets in an open-addressed table under one mutex (a take is a
 * hash, a few compares and arithmetic: far below the cost of a request). */
#include "limit.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 64
#define PROBE   16

struct slot {
    char key[KEY_MAX + 1]; /* "" : free */
    double tokens;
    int64_t seen_ms;
};

struct limit_rate {
    double per_s, burst;
    pthread_mutex_t lock;
    struct slot slots[LIMIT_RATE_SLOTS];
};

struct limit_rate *limit_rate_new(double per_s, double burst)
{
    struct limit_rate *l = xcalloc(1, sizeof(*l));
    l->per_s = per_s;
    l->burst = burst < 1 ? 1 : burst;
    pthread_mutex_init(&l->lock, NULL);
    return l;
}

void limit_rate_free(struct limit_rate *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->lock);
    free(l);
}

static uint32_t hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* Tokens a slot holds at now_ms. */
static double level(const struct limit_rate *l, const struct slot *s,
                    int64_t now_ms)
{
    double t = s->tokens + (double)(now_ms - s->seen_ms) * l->per_s / 1000.0;
    return t > l->burst ? l->burst : t;
}

/* The slot of `key`, or the one to give it: a free one, one whose bucket
 * refilled (it remembers nothing), else the stalest of the window. */
static struct slot *find(struct limit_rate *l, const char *key, size_t n,
                         int64_t now_ms)
{
    uint32_t h = hash(key, n);
    struct slot *spare = NULL;
    for (int i = 0; i < PROBE; i++) {
        struct slot *s = &l->slots[(h + (uint32_t)i) % LIMIT_RATE_SLOTS];
        if (s->key[0] && strncmp(s->key, key, n) == 0 && s->key[n] == '\0')
            return s;
        if (!s->key[0] || level(l, s, now_ms) >= l->burst) {
            if (!spare || spare->key[0])
                spare = s;
        } else if (!spare || (spare->key[0] && s->seen_ms < spare->seen_ms)) {
            spare = s;
        }
    }
    memcpy(spare->key, key, n);
    spare->key[n] = '\0';
    spare->tokens = l->burst;
    spare->seen_ms = now_ms;
    return spare;
}

int limit_rate_take(struct limit_rate *l, const char *key, int64_t now_ms,
                    int *retry_after_s)
{
    if (l->per_s <= 0)
        return 0;
    size_t n = strnlen(key, KEY_MAX);
    int ret = 0;
    pthread_mutex_lock(&l->lock);
    struct slot *s = find(l, key, n, now_ms);
    double t = level(l, s, now_ms);
    s->seen_ms = now_ms;
    if (t >= 1) {
        s->tokens = t - 1;
    } else {
        s->tokens = t;
        double wait_s = (1 - t) / l->per_s;
        *retry_after_s = (int)ceil(wait_s) > 0 ? (int)ceil(wait_s) : 1;
        ret = ERR_RATE_QUOTA;
    }
    pthread_mutex_unlock(&l->lock);
    return ret;
}
