/*
 * sign: the cryptography paddock needs, on OpenSSL's libcrypto.
 * SHA-256 for key hashing, HMAC-SHA256 for signed URLs, and a comparison
 * that takes the same time whatever the inputs hold.
 *
 * Threads: any thread; no shared state.
 */
#ifndef PADDOCK_SIGN_H
#define PADDOCK_SIGN_H

#include "../core/core.h"

#define SIGN_HASH_LEN 32

/* SHA-256 of the concatenation a || b (b may be NULL with nb 0). */
void sign_sha256(const void *a, size_t na, const void *b, size_t nb,
                 unsigned char out[SIGN_HASH_LEN]);
/* HMAC-SHA256 of msg under key. */
void sign_hmac(const unsigned char *key, size_t nkey, const void *msg,
               size_t nmsg, unsigned char out[SIGN_HASH_LEN]);
/* Equal, in time independent of where the bytes differ. */
bool sign_equal(const void *a, const void *b, size_t n);

#endif
