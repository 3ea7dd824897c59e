/* SHA-256, HMAC-SHA256 and constant-time comparison through libcrypto. */
#include "sign.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>

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

bool sign_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}
