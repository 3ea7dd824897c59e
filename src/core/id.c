/* Random bytes, uuid v4 request ids and time-ordered uuid v7 task ids. */
#include "core.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

int id_random(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return ERR_IO;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void id_hex(const void *p, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* getrandom(2) without GRND_NONBLOCK only fails on a broken kernel; an id
 * that may collide is worse than stopping. */
static void random_or_die(void *b, size_t n)
{
    if (id_random(b, n) < 0) {
        fprintf(stderr, "paddock: getrandom failed\n");
        abort();
    }
}

/* Ids are made for every request: their random bytes come from a
 * per-thread pool of getrandom(2) output, one system call per 32 ids
 * instead of one each. (paddock never forks without exec, so no two
 * processes share a pool.) */
#define ID_POOL_BYTES 512

static void random_pooled(unsigned char b[16])
{
    static _Thread_local unsigned char pool[ID_POOL_BYTES];
    static _Thread_local size_t used = ID_POOL_BYTES;
    if (used == ID_POOL_BYTES) {
        random_or_die(pool, sizeof(pool));
        used = 0;
    }
    memcpy(b, pool + used, 16);
    memset(pool + used, 0, 16); /* handed out once */
    used += 16;
}

static void uuid_format(const unsigned char b[16], char out[UUID_STR_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
}

void id_uuid4(char out[UUID_STR_LEN + 1])
{
    unsigned char b[16];
    random_pooled(b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    uuid_format(b, out);
}

/*
 * v7: 48-bit Unix ms, then 12 bits of sub-ms sequence, then 62 random bits.
 * The (ms, seq) pair is strictly increasing within the process, so ids made
 * in the same millisecond still sort in creation order.
 */
static pthread_mutex_t v7_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t v7_last_ms;
static unsigned v7_seq;

void id_uuid7(char out[UUID_STR_LEN + 1])
{
    unsigned char b[16];
    random_pooled(b);
    int64_t ms = clock_now_ms();
    pthread_mutex_lock(&v7_lock);
    if (ms <= v7_last_ms) {
        ms = v7_last_ms;
        if (++v7_seq > 0xfff) { /* 4096 ids in one ms: borrow the next */
            ms++;
            v7_seq = 0;
        }
    } else {
        v7_seq = 0;
    }
    v7_last_ms = ms;
    unsigned seq = v7_seq;
    pthread_mutex_unlock(&v7_lock);

    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)((uint64_t)ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (seq >> 8));
    b[7] = (unsigned char)(seq & 0xff);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    uuid_format(b, out);
}

bool id_is_uuid_lower(const char *s)
{
    return id_is_uuid(s) && strspn(s, "0123456789abcdef-") == UUID_STR_LEN;
}

bool id_is_uuid(const char *s)
{
    for (int i = 0; i < UUID_STR_LEN; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                     (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return s[UUID_STR_LEN] == '\0';
}
