/*
 * The answer cache: the query answers of terminal tasks, kept as the bytes
 * of the reply with the request's own parts left as holes, in a bounded
 * LRU split into shards. A terminal task never changes (on PostgreSQL
 * too: no statement touches a finished row but the purge at its expiry),
 * so an entry is right on every node for as long as it lives.
 */
#include "api_int.h"

#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Shards: a lookup locks one, so HTTP threads polling different tasks
 * rarely meet; a power of two. */
#define SHARDS 16
/* Buckets per shard: at most one per this many bytes of its budget (an
 * answer is ~600 bytes, its entry ~800), a power of two; the table starts
 * at MIN_BUCKETS and doubles as entries come (an idle cache costs little). */
#define BYTES_PER_BUCKET 1024
#define MIN_BUCKETS      16
/* An answer larger than this share of its shard is not kept: one huge
 * answer must not push out hundreds of ordinary ones. */
#define LARGEST_SHARE 8
/* Expired entries are looked for in a shard at most this often. */
#define SWEEP_MS 1000

struct entry {
    struct entry *hnext;       /* bucket chain */
    struct entry *prev, *next; /* LRU list: head is the most recent */
    uint64_t hash;
    int64_t expire_ms;
    size_t charge; /* what this entry costs the bound */
    size_t len;
    size_t base_at; /* API_CACHE_NO_BASE: no base hole */
    char task_id[UUID_STR_LEN + 1];
    char key_id[TASK_KEY_ID_MAX + 1];
    char body[]; /* len bytes, then a NUL */
};

struct shard {
    pthread_mutex_t lock; /* guards everything below */
    struct entry **buckets;
    size_t mask;        /* buckets - 1 */
    size_t max_buckets; /* the table's most */
    struct entry *head, *tail;
    size_t own;    /* its bucket table and share of the cache's struct */
    size_t budget; /* for entries: its share of the bound, less the most
                      own can grow to */
    size_t bytes, entries;
    uint64_t hits, misses;
    int64_t swept_ms;
};

struct api_cache {
    size_t max_bytes;
    struct shard shards[SHARDS];
};

/* FNV-1a over the task id: ids are uuids, already well spread. */
static uint64_t hash_id(const char *id)
{
    uint64_t h = 14695981039346656037ull;
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

static struct shard *shard_of(struct api_cache *c, uint64_t h)
{
    return &c->shards[(h >> 60) & (SHARDS - 1)];
}

/* What an allocation of n bytes takes from the heap: its usable size and
 * the allocator's header, so the bound is on memory, not on payload. */
static size_t heap_charge(void *p)
{
    return malloc_usable_size(p) + sizeof(size_t);
}

struct api_cache *api_cache_new(int64_t max_bytes)
{
    if (max_bytes <= 0)
        return NULL;
    struct api_cache *c = xcalloc(1, sizeof(*c));
    c->max_bytes = (size_t)max_bytes;
    size_t fixed = heap_charge(c);
    size_t each = c->max_bytes / SHARDS;
    for (size_t i = 0; i < SHARDS; i++) {
        struct shard *s = &c->shards[i];
        size_t n = MIN_BUCKETS;
        while (n < each / BYTES_PER_BUCKET)
            n *= 2;
        pthread_mutex_init(&s->lock, NULL);
        s->max_buckets = n;
        s->buckets = xcalloc(MIN_BUCKETS, sizeof(*s->buckets));
        s->mask = MIN_BUCKETS - 1;
        s->own = heap_charge(s->buckets) + fixed / SHARDS;
        /* The cache's own tables are paid for out of the same bound, at
         * the size they may grow to. */
        size_t most = n * sizeof(*s->buckets) + 4096 + fixed / SHARDS;
        s->budget = each > most ? each - most : 0;
    }
    return c;
}

/* Double the bucket table while entries outnumber buckets. */
static void grow(struct shard *s)
{
    size_t n = s->mask + 1;
    if (s->entries <= n || n >= s->max_buckets)
        return;
    struct entry **nb = calloc(2 * n, sizeof(*nb));
    if (!nb)
        return; /* longer chains, still right */
    for (size_t i = 0; i < n; i++) {
        for (struct entry *e = s->buckets[i], *next; e; e = next) {
            next = e->hnext;
            struct entry **b = &nb[e->hash & (2 * n - 1)];
            e->hnext = *b;
            *b = e;
        }
    }
    s->own -= heap_charge(s->buckets);
    free(s->buckets);
    s->buckets = nb;
    s->mask = 2 * n - 1;
    s->own += heap_charge(nb);
}

static void lru_unlink(struct shard *s, struct entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        s->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        s->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(struct shard *s, struct entry *e)
{
    e->prev = NULL;
    e->next = s->head;
    if (s->head)
        s->head->prev = e;
    else
        s->tail = e;
    s->head = e;
}

static struct entry *find(struct shard *s, uint64_t h, const char *task_id)
{
    for (struct entry *e = s->buckets[h & s->mask]; e; e = e->hnext)
        if (e->hash == h && strcmp(e->task_id, task_id) == 0)
            return e;
    return NULL;
}

/* Take e out of the shard (the caller frees it, after the unlock). */
static void drop(struct shard *s, struct entry *e)
{
    struct entry **p = &s->buckets[e->hash & s->mask];
    while (*p != e)
        p = &(*p)->hnext;
    *p = e->hnext;
    lru_unlink(s, e);
    s->bytes -= e->charge;
    s->entries--;
}

/* Take out every expired entry, at most once per SWEEP_MS (or now when
 * `force`); they go on *gone, chained through hnext. */
static void sweep(struct shard *s, int64_t now_ms, bool force,
                  struct entry **gone)
{
    if (!force && now_ms - s->swept_ms < SWEEP_MS)
        return;
    s->swept_ms = now_ms;
    for (struct entry *e = s->head, *next; e; e = next) {
        next = e->next;
        if (e->expire_ms > now_ms)
            continue;
        drop(s, e);
        e->hnext = *gone;
        *gone = e;
    }
}

static void free_chain(struct entry *e)
{
    while (e) {
        struct entry *next = e->hnext;
        free(e);
        e = next;
    }
}

void api_cache_put(struct api_cache *c, const struct api_cache_answer *a,
                   int64_t now_ms)
{
    const size_t id_end = API_CACHE_ID_AT + UUID_STR_LEN;
    if (!c || a->expire_ms <= now_ms || a->len < id_end ||
        (a->base_at != API_CACHE_NO_BASE &&
         (a->base_at < id_end || a->base_at > a->len)))
        return;
    uint64_t h = hash_id(a->task_id);
    struct shard *s = shard_of(c, h);
    struct entry *e = malloc(sizeof(*e) + a->len + 1);
    if (!e)
        return; /* a cache may forget */
    e->charge = heap_charge(e);
    if (e->charge > s->budget / LARGEST_SHARE) {
        free(e);
        return;
    }
    e->hash = h;
    e->expire_ms = a->expire_ms;
    e->len = a->len;
    e->base_at = a->base_at;
    snprintf(e->task_id, sizeof(e->task_id), "%s", a->task_id);
    snprintf(e->key_id, sizeof(e->key_id), "%s", a->key_id);
    memcpy(e->body, a->body, a->len);
    e->body[a->len] = '\0';

    struct entry *gone = NULL;
    pthread_mutex_lock(&s->lock);
    if (find(s, h, a->task_id)) {
        /* Filled meanwhile (a finish and a read at once): the same bytes. */
        e->hnext = gone;
        gone = e;
    } else {
        struct entry **b = &s->buckets[h & s->mask];
        e->hnext = *b;
        *b = e;
        lru_push(s, e);
        s->bytes += e->charge;
        s->entries++;
        grow(s);
        sweep(s, now_ms, false, &gone);
        while (s->bytes > s->budget && s->tail) {
            struct entry *old = s->tail;
            drop(s, old);
            old->hnext = gone;
            gone = old;
        }
    }
    pthread_mutex_unlock(&s->lock);
    free_chain(gone);
}

enum api_cache_result api_cache_get(struct api_cache *c, const char *task_id,
                                    const char *key_id, int64_t now_ms,
                                    const char *request_id, const char *base,
                                    struct buf *out)
{
    if (!c)
        return API_CACHE_MISS;
    uint64_t h = hash_id(task_id);
    struct shard *s = shard_of(c, h);
    size_t base_len = strlen(base);
    enum api_cache_result r = API_CACHE_MISS;
    struct entry *gone = NULL;

    /* Most answers fit: no allocation under the lock. */
    buf_reserve(out, 1024 + base_len);
    pthread_mutex_lock(&s->lock);
    struct entry *e = find(s, h, task_id);
    if (e && e->expire_ms <= now_ms) {
        drop(s, e);
        e->hnext = gone;
        gone = e;
        e = NULL;
        r = API_CACHE_GONE;
    } else if (e && strcmp(e->key_id, key_id) != 0) {
        r = API_CACHE_GONE; /* another key's task looks like no task */
    } else if (e) {
        lru_unlink(s, e);
        lru_push(s, e);
        size_t start = out->len;
        buf_reserve(out, e->len + base_len);
        if (e->base_at == API_CACHE_NO_BASE) {
            buf_append(out, e->body, e->len);
        } else {
            buf_append(out, e->body, e->base_at);
            buf_append(out, base, base_len);
            buf_append(out, e->body + e->base_at, e->len - e->base_at);
        }
        /* The request's own id, over the one the answer was made with
         * (before any base hole: put checked). */
        memcpy(out->data + start + API_CACHE_ID_AT, request_id, UUID_STR_LEN);
        r = API_CACHE_HIT;
    }
    if (r == API_CACHE_MISS)
        s->misses++;
    else
        s->hits++;
    sweep(s, now_ms, false, &gone);
    pthread_mutex_unlock(&s->lock);
    free_chain(gone);
    return r;
}

void api_cache_stats(struct api_cache *c, int64_t now_ms,
                     struct api_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!c)
        return;
    out->max_bytes = c->max_bytes;
    for (size_t i = 0; i < SHARDS; i++) {
        struct shard *s = &c->shards[i];
        struct entry *gone = NULL;
        pthread_mutex_lock(&s->lock);
        sweep(s, now_ms, true, &gone);
        out->entries += s->entries;
        out->bytes += s->bytes + s->own;
        out->hits += s->hits;
        out->misses += s->misses;
        pthread_mutex_unlock(&s->lock);
        free_chain(gone);
    }
}

void api_cache_free(struct api_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < SHARDS; i++) {
        struct shard *s = &c->shards[i];
        for (struct entry *e = s->head, *next; e; e = next) {
            next = e->next;
            free(e);
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->lock);
    }
    free(c);
}
