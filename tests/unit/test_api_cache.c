/* api/'s answer cache: holes filled per request, keys, expiry, the LRU
 * order and the memory bound (measured on the heap, not taken on trust). */
#include "../../src/api/api_int.h"
#include "unit.h"

#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define HEAP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAP_ASAN 1
#endif
#endif
#ifdef HEAP_ASAN
/* The sanitizer runtime's own count (its header is not always installed). */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

/* Bytes allocated on the heap right now. */
static size_t heap_now(void)
{
#ifdef HEAP_ASAN
    return __sanitizer_get_current_allocated_bytes();
#else
    return mallinfo2().uordblks;
#endif
}

#define NOW   1800000000000LL
#define RID_A "11111111-2222-4333-8444-555555555555"
#define RID_B "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"

/* An answer as api_query writes one: the request id first, a hole for
 * the URL base in video_url (or none). */
static void make_answer(struct buf *b, const char *rid, const char *task_id,
                        size_t pad, size_t *base_at)
{
    buf_reset(b);
    buf_printf(b, "{\"request_id\":\"%s\",\"output\":{\"task_id\":\"%s\"", rid,
               task_id);
    buf_puts(b, ",\"orig_prompt\":\"");
    for (size_t i = 0; i < pad; i++)
        buf_putc(b, (char)('a' + i % 26));
    buf_puts(b, "\",\"video_url\":\"");
    *base_at = b->len;
    buf_printf(b, "/files/%s-1.mp4?expires=1&signature=ab\"}}", task_id);
}

static void task_id_of(unsigned i, char out[UUID_STR_LEN + 1])
{
    snprintf(out, UUID_STR_LEN + 1, "01900000-0000-7000-8000-%012x", i);
}

static void put(struct api_cache *c, const char *task_id, const char *key,
                int64_t expire_ms, size_t pad)
{
    struct buf b = BUF_INIT;
    size_t at;
    make_answer(&b, RID_A, task_id, pad, &at);
    struct api_cache_answer a = { task_id, key, expire_ms, b.data, b.len, at };
    api_cache_put(c, &a, NOW);
    buf_fini(&b);
}

static void holes_are_filled(void)
{
    struct api_cache *c = api_cache_new(1 << 20);
    char id[UUID_STR_LEN + 1];
    task_id_of(1, id);
    put(c, id, "key1", NOW + 60000, 40);

    struct buf got = BUF_INIT, want = BUF_INIT;
    size_t at;
    CHECK_INT(
        api_cache_get(c, id, "key1", NOW, RID_B, "http://h.example:81", &got),
        API_CACHE_HIT);
    make_answer(&want, RID_B, id, 40, &at);
    struct buf whole = BUF_INIT;
    buf_append(&whole, want.data, at);
    buf_puts(&whole, "http://h.example:81");
    buf_puts(&whole, want.data + at);
    CHECK_STR(got.data, whole.data);
    CHECK_INT(got.len, whole.len);

    /* Another request, another base: the entry itself is untouched. */
    buf_reset(&got);
    CHECK_INT(api_cache_get(c, id, "key1", NOW, RID_A, "http://x", &got),
              API_CACHE_HIT);
    CHECK(strstr(got.data, "\"video_url\":\"http://x/files/") != NULL);
    CHECK(strncmp(got.data, "{\"request_id\":\"" RID_A "\"", 52) == 0);

    /* No hole: the bytes as they are, but for the id. */
    char id2[UUID_STR_LEN + 1];
    task_id_of(2, id2);
    make_answer(&want, RID_A, id2, 3, &at);
    struct api_cache_answer a = { id2,       "key1",   NOW + 60000,
                                  want.data, want.len, API_CACHE_NO_BASE };
    api_cache_put(c, &a, NOW);
    buf_reset(&got);
    CHECK_INT(api_cache_get(c, id2, "key1", NOW, RID_B, "http://unused", &got),
              API_CACHE_HIT);
    memcpy(want.data + API_CACHE_ID_AT, RID_B, UUID_STR_LEN);
    CHECK_STR(got.data, want.data);

    buf_fini(&got);
    buf_fini(&want);
    buf_fini(&whole);
    api_cache_free(c);
}

static void keys_and_misses(void)
{
    struct api_cache *c = api_cache_new(1 << 20);
    struct buf got = BUF_INIT;
    char id[UUID_STR_LEN + 1], other[UUID_STR_LEN + 1];
    task_id_of(7, id);
    task_id_of(8, other);
    put(c, id, "key1", NOW + 60000, 10);
    CHECK_INT(api_cache_get(c, other, "key1", NOW, RID_B, "", &got),
              API_CACHE_MISS);
    CHECK_INT(api_cache_get(c, id, "key2", NOW, RID_B, "", &got),
              API_CACHE_GONE);
    CHECK_INT(got.len, 0);
    struct api_cache_stats st;
    api_cache_stats(c, NOW, &st);
    CHECK_INT(st.entries, 1);
    CHECK_INT(st.hits, 1);
    CHECK_INT(st.misses, 1);
    CHECK(st.bytes > 0 && st.bytes <= st.max_bytes);
    buf_fini(&got);
    api_cache_free(c);

    /* Off: NULL, and every call is a harmless no-op. */
    CHECK(api_cache_new(0) == NULL);
    put(NULL, id, "key1", NOW + 1, 1);
    CHECK_INT(api_cache_get(NULL, id, "key1", NOW, RID_B, "", &got),
              API_CACHE_MISS);
    api_cache_stats(NULL, NOW, &st);
    CHECK_INT(st.entries, 0);
    api_cache_free(NULL);
}

static void expiry_drops(void)
{
    struct api_cache *c = api_cache_new(1 << 20);
    struct buf got = BUF_INIT;
    struct api_cache_stats st;
    char id[UUID_STR_LEN + 1], id2[UUID_STR_LEN + 1];
    task_id_of(1, id);
    task_id_of(2, id2);
    put(c, id, "key1", NOW + 100, 10);
    put(c, id2, "key1", NOW + 100, 10);
    /* Already expired: not kept. */
    put(c, "01900000-0000-7000-8000-0000000000ff", "key1", NOW, 10);
    api_cache_stats(c, NOW, &st);
    CHECK_INT(st.entries, 2);
    CHECK_INT(api_cache_get(c, id, "key1", NOW + 99, RID_B, "", &got),
              API_CACHE_HIT);
    buf_reset(&got);
    /* At its expiry a lookup answers GONE and drops it... */
    CHECK_INT(api_cache_get(c, id, "key1", NOW + 100, RID_B, "", &got),
              API_CACHE_GONE);
    CHECK_INT(got.len, 0);
    CHECK_INT(api_cache_get(c, id, "key1", NOW + 100, RID_B, "", &got),
              API_CACHE_MISS);
    /* ...and the stats sweep the rest without a lookup. */
    api_cache_stats(c, NOW + 100, &st);
    CHECK_INT(st.entries, 0);
    buf_fini(&got);
    api_cache_free(c);
}

static void least_recent_goes_first(void)
{
    struct api_cache *c = api_cache_new(256 << 10);
    struct buf got = BUF_INIT;
    char first[UUID_STR_LEN + 1], kept[UUID_STR_LEN + 1];
    task_id_of(0, first);
    task_id_of(1, kept);
    put(c, first, "k", NOW + 60000, 100);
    put(c, kept, "k", NOW + 60000, 100);
    for (unsigned i = 2; i < 5000; i++) {
        char id[UUID_STR_LEN + 1];
        task_id_of(i, id);
        put(c, id, "k", NOW + 60000, 100);
        buf_reset(&got);
        CHECK_INT(api_cache_get(c, kept, "k", NOW, RID_B, "", &got),
                  API_CACHE_HIT); /* used all along: never evicted */
    }
    buf_reset(&got);
    CHECK_INT(api_cache_get(c, first, "k", NOW, RID_B, "", &got),
              API_CACHE_MISS);
    /* An answer too large for its share is not kept at all. */
    char big[UUID_STR_LEN + 1];
    task_id_of(99999, big);
    put(c, big, "k", NOW + 60000, 200 << 10);
    buf_reset(&got);
    CHECK_INT(api_cache_get(c, big, "k", NOW, RID_B, "", &got), API_CACHE_MISS);
    buf_fini(&got);
    api_cache_free(c);
}

/* The case: 100 000 distinct terminal tasks through a cache far
 * smaller than their answers (~70 MB of them through 4 MB). */
static void bound_holds_under_100k_tasks(void)
{
    const size_t max = 4u << 20;
    size_t before = heap_now();
    struct api_cache *c = api_cache_new((int64_t)max);
    struct api_cache_stats st;
    size_t peak = 0;
    for (unsigned i = 0; i < 100000; i++) {
        char id[UUID_STR_LEN + 1];
        task_id_of(i, id);
        put(c, id, "k", NOW + 60000, 400 + (i * 7919) % 1200);
        if (i % 1000 == 999) {
            size_t held = heap_now() - before;
            if (held > peak)
                peak = held;
            api_cache_stats(c, NOW, &st);
            CHECK(st.bytes <= max);
        }
    }
    api_cache_stats(c, NOW, &st);
    fprintf(stderr,
            "  100000 answers: %zu kept, %zu bytes counted, peak "
            "heap %zu of %zu\n",
            st.entries, st.bytes, peak, max);
    CHECK(st.entries > 2000); /* it does keep what fits */
    CHECK(st.bytes <= max);
    CHECK(peak <= max);
    api_cache_free(c);
    CHECK(heap_now() <= before + 4096);
}

struct racer {
    struct api_cache *c;
    unsigned seed;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct buf got = BUF_INIT;
    for (unsigned i = 0; i < 20000; i++) {
        char id[UUID_STR_LEN + 1];
        unsigned n = (r->seed * 2654435761u + i * 40503u) % 3000;
        task_id_of(n, id);
        buf_reset(&got);
        if (api_cache_get(r->c, id, "k", NOW, RID_B, "http://b", &got) ==
            API_CACHE_MISS)
            put(r->c, id, "k", NOW + 60000, 50 + n % 300);
        else if (strncmp(got.data, "{\"request_id\":\"" RID_B, 51) != 0)
            return "a hit without its request id";
    }
    buf_fini(&got);
    return NULL;
}

static void threads_share_it(void)
{
    struct api_cache *c = api_cache_new(512 << 10);
    pthread_t t[4];
    struct racer r[4];
    for (unsigned i = 0; i < 4; i++) {
        r[i] = (struct racer){ c, i + 1 };
        pthread_create(&t[i], NULL, race, &r[i]);
    }
    for (unsigned i = 0; i < 4; i++) {
        void *why = NULL;
        pthread_join(t[i], &why);
        CHECK(why == NULL);
    }
    struct api_cache_stats st;
    api_cache_stats(c, NOW, &st);
    CHECK(st.bytes <= st.max_bytes);
    CHECK_INT(st.hits + st.misses, 80000);
    api_cache_free(c);
}

int main(void)
{
    unit_suite = "api_cache";
    RUN(holes_are_filled);
    RUN(keys_and_misses);
    RUN(expiry_drops);
    RUN(least_recent_goes_first);
    RUN(bound_holds_under_100k_tasks);
    RUN(threads_share_it);
    return UNIT_END();
}
