/* API keys: salted hashes at rest, constant-time comparison. */
#include "auth.h"

#include "../sign/sign.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MINT_PREFIX     "pdk_"
#define MINT_ID_HEX     12
#define MINT_SECRET_HEX 48

struct plain_key {
    unsigned char hash[SIGN_HASH_LEN]; /* SHA-256 of the secret */
    char key_id[TASK_KEY_ID_MAX + 1];
};

/*
 * Verified keys: a presented key that passed, and its tenant, so the next
 * request with it is a table probe and a constant-time compare instead of
 * a SHA-256. Direct-mapped by a hash of the key (a collision replaces the
 * slot). A minted key's slot goes when the minted keys change
 * (auth_reload), so a revoked key is refused from the next reload on.
 * The keys are held as presented, as the request that brought them is.
 */
#define VERIFIED_SLOTS 256 /* a power of two */
#define VERIFIED_KEY   128 /* longer keys are hashed every time */

struct verified {
    uint64_t hash;
    size_t len; /* 0: empty */
    bool minted;
    char key[VERIFIED_KEY];
    char key_id[TASK_KEY_ID_MAX + 1];
};

struct auth {
    pthread_rwlock_t lock; /* guards minted, n_minted */
    struct store_key *minted;
    size_t n_minted;
    /* Bumped (under lock) when the minted keys change: a check that
     * verified against older ones does not fill a slot. */
    atomic_uint_fast64_t generation;
    struct plain_key *plain; /* set up before serving, then read-only */
    size_t n_plain;
    pthread_rwlock_t vlock;    /* guards verified */
    struct verified *verified; /* VERIFIED_SLOTS, made at the first fill */
};

struct auth *auth_new(void)
{
    struct auth *a = xcalloc(1, sizeof(*a));
    pthread_rwlock_init(&a->lock, NULL);
    pthread_rwlock_init(&a->vlock, NULL);
    return a;
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    pthread_rwlock_destroy(&a->lock);
    pthread_rwlock_destroy(&a->vlock);
    free(a->minted);
    free(a->plain);
    if (a->verified)
        explicit_bzero(a->verified, VERIFIED_SLOTS * sizeof(*a->verified));
    free(a->verified);
    free(a);
}

/* FNV-1a: only picks a slot; the compare decides. */
static uint64_t key_hash(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

/* The tenant of an already verified key: true with key_id filled. */
static bool verified_find(struct auth *a, const char *p, size_t n, uint64_t h,
                          char key_id[TASK_KEY_ID_MAX + 1])
{
    bool found = false;
    if (n > VERIFIED_KEY)
        return false;
    pthread_rwlock_rdlock(&a->vlock);
    const struct verified *v =
        a->verified ? &a->verified[h & (VERIFIED_SLOTS - 1)] : NULL;
    if (v && v->len == n && v->hash == h && sign_equal(v->key, p, n)) {
        memcpy(key_id, v->key_id, TASK_KEY_ID_MAX + 1);
        found = true;
    }
    pthread_rwlock_unlock(&a->vlock);
    return found;
}

/* Remember a key that passed against the minted keys of `generation`
 * (any, for a plain key). */
static void verified_put(struct auth *a, const char *p, size_t n, uint64_t h,
                         const char *key_id, bool minted, uint64_t generation)
{
    if (n > VERIFIED_KEY)
        return;
    pthread_rwlock_wrlock(&a->vlock);
    if (!a->verified)
        a->verified = xcalloc(VERIFIED_SLOTS, sizeof(*a->verified));
    if (!minted || atomic_load(&a->generation) == generation) {
        struct verified *v = &a->verified[h & (VERIFIED_SLOTS - 1)];
        v->hash = h;
        v->len = n;
        v->minted = minted;
        memcpy(v->key, p, n);
        snprintf(v->key_id, sizeof(v->key_id), "%s", key_id);
    }
    pthread_rwlock_unlock(&a->vlock);
}

/* The minted keys changed: forget every minted key verified so far. */
static void verified_forget_minted(struct auth *a)
{
    pthread_rwlock_wrlock(&a->vlock);
    for (size_t i = 0; a->verified && i < VERIFIED_SLOTS; i++)
        if (a->verified[i].minted)
            explicit_bzero(&a->verified[i], sizeof(a->verified[i]));
    pthread_rwlock_unlock(&a->vlock);
}

/* The same live keys, in the same order. */
static bool same_keys(const struct store_key *x, size_t nx,
                      const struct store_key *y, size_t ny)
{
    if (nx != ny)
        return false;
    for (size_t i = 0; i < nx; i++)
        if (strcmp(x[i].key_id, y[i].key_id) != 0 ||
            memcmp(x[i].hash, y[i].hash, sizeof(x[i].hash)) != 0 ||
            memcmp(x[i].salt, y[i].salt, sizeof(x[i].salt)) != 0)
            return false;
    return true;
}

int auth_add_plain(struct auth *a, const char *secret)
{
    size_t n = strlen(secret);
    if (n == 0 || n > LIMIT_KEY_BYTES || a->n_plain >= LIMIT_KEYS)
        return ERR_INVALID_PARAMETER;
    a->plain = xrealloc(a->plain, (a->n_plain + 1) * sizeof(*a->plain));
    struct plain_key *k = &a->plain[a->n_plain++];
    sign_sha256(secret, n, NULL, 0, k->hash);
    /* The tenant id is a hash of the hash: stable, and it reveals nothing
     * that would help guess the key. */
    unsigned char idh[SIGN_HASH_LEN];
    sign_sha256("paddock-key-id", 14, k->hash, sizeof(k->hash), idh);
    char hex[17];
    id_hex(idh, 8, hex);
    snprintf(k->key_id, sizeof(k->key_id), "cfg_%s", hex);
    return 0;
}

int auth_reload(struct auth *a, struct store *s)
{
    struct store_key *keys = NULL;
    size_t n = 0;
    int ret = store_key_list(s, &keys, &n);
    if (ret < 0)
        return ret;
    size_t live = 0;
    for (size_t i = 0; i < n; i++)
        if (keys[i].revoked_ms == 0)
            keys[live++] = keys[i];
    pthread_rwlock_wrlock(&a->lock);
    struct store_key *old = a->minted;
    bool changed = !same_keys(old, a->n_minted, keys, live);
    a->minted = keys;
    a->n_minted = live;
    if (changed)
        atomic_fetch_add(&a->generation, 1);
    pthread_rwlock_unlock(&a->lock);
    if (changed)
        verified_forget_minted(a);
    free(old);
    return 0;
}

size_t auth_count(struct auth *a)
{
    pthread_rwlock_rdlock(&a->lock);
    size_t n = a->n_plain + a->n_minted;
    pthread_rwlock_unlock(&a->lock);
    return n;
}

static bool is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* A minted token: "pdk_" id "_" secret, lower-case hex. */
static bool parse_minted(const char *p, size_t n, char id[MINT_ID_HEX + 1])
{
    const size_t pre = sizeof(MINT_PREFIX) - 1;
    if (n != pre + MINT_ID_HEX + 1 + MINT_SECRET_HEX ||
        memcmp(p, MINT_PREFIX, pre) != 0 || p[pre + MINT_ID_HEX] != '_' ||
        !is_hex(p + pre, MINT_ID_HEX) ||
        !is_hex(p + pre + MINT_ID_HEX + 1, MINT_SECRET_HEX))
        return false;
    memcpy(id, p + pre, MINT_ID_HEX);
    id[MINT_ID_HEX] = '\0';
    return true;
}

int auth_check(struct auth *a, const char *presented,
               char key_id[TASK_KEY_ID_MAX + 1])
{
    if (!presented || !presented[0])
        return ERR_NO_API_KEY;
    size_t n = strnlen(presented, LIMIT_KEY_BYTES + 1);
    if (n > LIMIT_KEY_BYTES)
        return ERR_INVALID_API_KEY;

    uint64_t hash = key_hash(presented, n);
    if (verified_find(a, presented, n, hash, key_id))
        return 0;

    char id[MINT_ID_HEX + 1];
    if (parse_minted(presented, n, id)) {
        int ret = ERR_INVALID_API_KEY;
        pthread_rwlock_rdlock(&a->lock);
        uint64_t generation = atomic_load(&a->generation);
        for (size_t i = 0; i < a->n_minted; i++) {
            const struct store_key *k = &a->minted[i];
            if (strcmp(k->key_id, id) != 0)
                continue;
            unsigned char h[SIGN_HASH_LEN];
            sign_sha256(k->salt, sizeof(k->salt), presented, n, h);
            if (sign_equal(h, k->hash, sizeof(h))) {
                snprintf(key_id, TASK_KEY_ID_MAX + 1, "%s", k->key_id);
                ret = 0;
            }
            break;
        }
        pthread_rwlock_unlock(&a->lock);
        if (ret == 0) {
            verified_put(a, presented, n, hash, key_id, true, generation);
            return 0;
        }
    }

    unsigned char h[SIGN_HASH_LEN];
    sign_sha256(presented, n, NULL, 0, h);
    int found = -1;
    for (size_t i = 0; i < a->n_plain; i++) /* every entry: constant time */
        if (sign_equal(h, a->plain[i].hash, sizeof(h)))
            found = (int)i;
    if (found < 0)
        return ERR_INVALID_API_KEY;
    snprintf(key_id, TASK_KEY_ID_MAX + 1, "%s", a->plain[found].key_id);
    verified_put(a, presented, n, hash, key_id, false, 0);
    return 0;
}

int auth_key_mint(const char *name, struct store_key *rec,
                  char out_secret[AUTH_SECRET_MAX])
{
    unsigned char raw[MINT_ID_HEX / 2 + MINT_SECRET_HEX / 2];
    int ret = id_random(raw, sizeof(raw));
    if (ret < 0)
        return ret;
    ret = id_random(rec->salt, sizeof(rec->salt));
    if (ret < 0)
        return ret;
    char id[MINT_ID_HEX + 1], secret[MINT_SECRET_HEX + 1];
    id_hex(raw, MINT_ID_HEX / 2, id);
    id_hex(raw + MINT_ID_HEX / 2, MINT_SECRET_HEX / 2, secret);
    snprintf(out_secret, AUTH_SECRET_MAX, MINT_PREFIX "%s_%s", id, secret);
    snprintf(rec->key_id, sizeof(rec->key_id), "%s", id);
    snprintf(rec->name, sizeof(rec->name), "%s", name ? name : "");
    sign_sha256(rec->salt, sizeof(rec->salt), out_secret, strlen(out_secret),
                rec->hash);
    rec->created_ms = clock_now_ms();
    rec->revoked_ms = 0;
    rec->scenario[0] = '\0';
    rec->admin = false;
    rec->quota = STORE_QUOTA_NONE;
    rec->quota_limit = 0;
    rec->period = STORE_PERIOD_DAY;
    rec->balance = -1; /* none */
    rec->balance_set = true;
    return 0;
}

bool auth_key_scenario(struct auth *a, const char *key_id,
                       char out[LIMIT_SCENARIO_BYTES + 1])
{
    bool found = false;
    out[0] = '\0';
    pthread_rwlock_rdlock(&a->lock);
    for (size_t i = 0; i < a->n_minted && !found; i++) {
        const struct store_key *k = &a->minted[i];
        if (k->scenario[0] && strcmp(k->key_id, key_id) == 0) {
            memcpy(out, k->scenario, sizeof(k->scenario));
            found = true;
        }
    }
    pthread_rwlock_unlock(&a->lock);
    return found;
}

bool auth_key_admin(struct auth *a, const char *key_id)
{
    bool admin = false;
    pthread_rwlock_rdlock(&a->lock);
    for (size_t i = 0; i < a->n_minted; i++)
        if (strcmp(a->minted[i].key_id, key_id) == 0) {
            admin = a->minted[i].admin;
            break;
        }
    pthread_rwlock_unlock(&a->lock);
    return admin;
}
