/* API keys: salted hashes at rest, constant-time comparison. */
#include "auth.h"

#include "../sign/sign.h"

#include <pthread.h>
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

struct auth {
    pthread_rwlock_t lock; /* guards minted, n_minted */
    struct store_key *minted;
    size_t n_minted;
    struct plain_key *plain; /* set up before serving, then read-only */
    size_t n_plain;
};

struct auth *auth_new(void)
{
    struct auth *a = xcalloc(1, sizeof(*a));
    pthread_rwlock_init(&a->lock, NULL);
    return a;
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    pthread_rwlock_destroy(&a->lock);
    free(a->minted);
    free(a->plain);
    free(a);
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
    a->minted = keys;
    a->n_minted = live;
    pthread_rwlock_unlock(&a->lock);
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

    char id[MINT_ID_HEX + 1];
    if (parse_minted(presented, n, id)) {
        int ret = ERR_INVALID_API_KEY;
        pthread_rwlock_rdlock(&a->lock);
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
        if (ret == 0)
            return 0;
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
