/* Unit tests of src/auth: plain and minted keys, hashing at rest. */
#include "../../src/auth/auth.h"
#include "unit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

static char dir[] = "/tmp/paddock-test-auth-XXXXXX";

static void plain_keys(void)
{
    struct auth *a = auth_new();
    char id[TASK_KEY_ID_MAX + 1], id2[TASK_KEY_ID_MAX + 1];
    CHECK_INT(auth_add_plain(a, "secret-one"), 0);
    CHECK_INT(auth_add_plain(a, "secret-two"), 0);
    CHECK(auth_add_plain(a, "") < 0);
    CHECK_INT(auth_check(a, "secret-one", id), 0);
    CHECK(strncmp(id, "cfg_", 4) == 0 && strlen(id) == 20);
    CHECK_INT(auth_check(a, "secret-two", id2), 0);
    CHECK(strcmp(id, id2) != 0);
    CHECK_INT(auth_check(a, "secret-on", id), ERR_INVALID_API_KEY);
    CHECK_INT(auth_check(a, "", id), ERR_NO_API_KEY);
    CHECK_INT(auth_check(a, NULL, id), ERR_NO_API_KEY);
    char big[LIMIT_KEY_BYTES + 10];
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK_INT(auth_check(a, big, id), ERR_INVALID_API_KEY);
    auth_free(a);
    /* The id is a function of the key: stable across processes. */
    a = auth_new();
    auth_add_plain(a, "secret-two");
    CHECK_INT(auth_check(a, "secret-two", id), 0);
    CHECK_STR(id, id2);
    auth_free(a);
}

static void minted_keys(void)
{
    char url[256];
    snprintf(url, sizeof(url), "sqlite:%s/k.db", dir);
    struct store *s = NULL;
    struct errmsg err = { 0 };
    CHECK_INT(store_open(url, &s, &err), 0);
    struct store_key rec;
    char secret[AUTH_SECRET_MAX], id[TASK_KEY_ID_MAX + 1];
    CHECK_INT(auth_key_mint("ci", &rec, secret), 0);
    CHECK(strncmp(secret, "pdk_", 4) == 0 && strlen(secret) == 4 + 12 + 1 + 48);
    /* Only the hash is kept: the record holds no part of the secret
     * beyond the id. */
    CHECK(memmem(&rec, sizeof(rec), secret + 17, 16) == NULL);
    CHECK_INT(store_key_put(s, &rec), 0);

    struct auth *a = auth_new();
    CHECK_INT(auth_check(a, secret, id), ERR_INVALID_API_KEY); /* not yet */
    CHECK_INT(auth_reload(a, s), 0);
    CHECK_INT(auth_count(a), 1);
    CHECK_INT(auth_check(a, secret, id), 0);
    CHECK_STR(id, rec.key_id);
    char wrong[AUTH_SECRET_MAX];
    memcpy(wrong, secret, sizeof(wrong));
    wrong[30] = wrong[30] == 'a' ? 'b' : 'a';
    CHECK_INT(auth_check(a, wrong, id), ERR_INVALID_API_KEY);

    rec.revoked_ms = clock_now_ms();
    CHECK_INT(store_key_put(s, &rec), 0);
    CHECK_INT(auth_reload(a, s), 0);
    CHECK_INT(auth_check(a, secret, id), ERR_INVALID_API_KEY);
    CHECK_INT(auth_count(a), 0);
    auth_free(a);
    store_close(s);
}

/* Remembered keys answer exactly as checked ones: many keys sharing the
 * table's slots, near misses of a remembered key, both kinds. */
static void remembered_keys(void)
{
    struct auth *a = auth_new();
    char ids[600][TASK_KEY_ID_MAX + 1], id[TASK_KEY_ID_MAX + 1];
    char secret[32];
    for (int i = 0; i < 600; i++) {
        snprintf(secret, sizeof(secret), "plain-key-%d", i);
        CHECK_INT(auth_add_plain(a, secret), 0);
    }
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 600; i++) {
            snprintf(secret, sizeof(secret), "plain-key-%d", i);
            CHECK_INT(auth_check(a, secret, id), 0);
            if (round == 0)
                memcpy(ids[i], id, sizeof(id));
            else
                CHECK_STR(id, ids[i]);
        }
    }
    CHECK_INT(auth_check(a, "plain-key-1", id), 0);
    CHECK_INT(auth_check(a, "plain-key-1x", id), ERR_INVALID_API_KEY);
    CHECK_INT(auth_check(a, "plain-key-", id), ERR_INVALID_API_KEY);
    CHECK_INT(auth_check(a, "plain-key-2", id), 0);
    CHECK_STR(id, ids[2]);
    /* A long key is checked every time, and still right. */
    char big[LIMIT_KEY_BYTES];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK_INT(auth_add_plain(a, big), 0);
    CHECK_INT(auth_check(a, big, id), 0);
    CHECK_INT(auth_check(a, big, ids[0]), 0);
    CHECK_STR(id, ids[0]);
    auth_free(a);
}

struct hammer {
    struct auth *a;
    const char *secret;
    atomic_bool stop;
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    char id[TASK_KEY_ID_MAX + 1];
    while (!atomic_load(&h->stop))
        auth_check(h->a, h->secret, id);
    return NULL;
}

/* A key revoked while other threads keep presenting it is refused from the
 * reload on: no check that began before the reload can bring it back. */
static void revoked_while_in_use(void)
{
    char url[256];
    snprintf(url, sizeof(url), "sqlite:%s/r.db", dir);
    struct store *s = NULL;
    struct errmsg err = { 0 };
    CHECK_INT(store_open(url, &s, &err), 0);
    struct auth *a = auth_new();
    for (int round = 0; round < 20; round++) {
        struct store_key rec;
        char secret[AUTH_SECRET_MAX], id[TASK_KEY_ID_MAX + 1];
        CHECK_INT(auth_key_mint("busy", &rec, secret), 0);
        CHECK_INT(store_key_put(s, &rec), 0);
        CHECK_INT(auth_reload(a, s), 0);
        CHECK_INT(auth_check(a, secret, id), 0);
        struct hammer h = { .a = a, .secret = secret };
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&t[i], NULL, hammer_main, &h);
        rec.revoked_ms = clock_now_ms();
        CHECK_INT(store_key_put(s, &rec), 0);
        CHECK_INT(auth_reload(a, s), 0);
        for (int i = 0; i < 2000; i++)
            CHECK_INT(auth_check(a, secret, id), ERR_INVALID_API_KEY);
        atomic_store(&h.stop, true);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        CHECK_INT(auth_check(a, secret, id), ERR_INVALID_API_KEY);
    }
    auth_free(a);
    store_close(s);
}

int main(void)
{
    unit_suite = "auth";
    if (!mkdtemp(dir))
        return 1;
    RUN(plain_keys);
    RUN(minted_keys);
    RUN(remembered_keys);
    RUN(revoked_while_in_use);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return UNIT_END();
}
