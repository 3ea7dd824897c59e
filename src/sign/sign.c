/* SHA-256, HMAC-SHA256 and constant-time comparison through libcrypto. */
#include "sign.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sign_sha256(const void *a, size_t na, const void *b, size_t nb,
                 unsigned char out[SIGN_HASH_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned len = 0;
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
        !EVP_DigestUpdate(ctx, a, na) ||
        (nb && !EVP_DigestUpdate(ctx, b, nb)) ||
        !EVP_DigestFinal_ex(ctx, out, &len)) {
        /* Only fails when libcrypto cannot allocate; nothing sane follows. */
        fprintf(stderr, "paddock: SHA-256 failed\n");
        abort();
    }
    EVP_MD_CTX_free(ctx);
}

void sign_hmac(const unsigned char *key, size_t nkey, const void *msg,
               size_t nmsg, unsigned char out[SIGN_HASH_LEN])
{
    unsigned len = SIGN_HASH_LEN;
    if (!HMAC(EVP_sha256(), key, (int)nkey, msg, nmsg, out, &len)) {
        fprintf(stderr, "paddock: HMAC-SHA256 failed\n");
        abort();
    }
}

/* SHA-256's block: keys are padded (or hashed) to this. */
#define BLOCK 64

struct sign_key {
    EVP_MD_CTX *inner; /* SHA-256 state after (key ^ ipad) */
    EVP_MD_CTX *outer; /* SHA-256 state after (key ^ opad) */
};

static void die(const char *what)
{
    /* Only fails when libcrypto cannot allocate; nothing sane follows. */
    fprintf(stderr, "paddock: %s failed\n", what);
    abort();
}

static EVP_MD_CTX *keyed_state(const unsigned char k[BLOCK], unsigned char pad)
{
    unsigned char block[BLOCK];
    for (int i = 0; i < BLOCK; i++)
        block[i] = k[i] ^ pad;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
        !EVP_DigestUpdate(ctx, block, BLOCK))
        die("HMAC key setup");
    OPENSSL_cleanse(block, sizeof(block));
    return ctx;
}

struct sign_key *sign_key_new(const unsigned char *key, size_t nkey)
{
    unsigned char k[BLOCK] = { 0 };
    if (nkey > BLOCK)
        sign_sha256(key, nkey, NULL, 0, k); /* RFC 2104: long keys hashed */
    else
        memcpy(k, key, nkey);
    struct sign_key *sk = xcalloc(1, sizeof(*sk));
    sk->inner = keyed_state(k, 0x36);
    sk->outer = keyed_state(k, 0x5c);
    OPENSSL_cleanse(k, sizeof(k));
    return sk;
}

void sign_key_free(struct sign_key *k)
{
    if (!k)
        return;
    EVP_MD_CTX_free(k->inner);
    EVP_MD_CTX_free(k->outer);
    free(k);
}

void sign_hmac_keyed(const struct sign_key *k, const void *msg, size_t nmsg,
                     unsigned char out[SIGN_HASH_LEN])
{
    unsigned char ih[SIGN_HASH_LEN];
    unsigned len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_MD_CTX_copy_ex(ctx, k->inner) ||
        !EVP_DigestUpdate(ctx, msg, nmsg) ||
        !EVP_DigestFinal_ex(ctx, ih, &len) ||
        !EVP_MD_CTX_copy_ex(ctx, k->outer) ||
        !EVP_DigestUpdate(ctx, ih, sizeof(ih)) ||
        !EVP_DigestFinal_ex(ctx, out, &len))
        die("HMAC-SHA256");
    EVP_MD_CTX_free(ctx);
}

bool sign_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}
