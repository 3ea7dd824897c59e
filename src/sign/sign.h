/*
 * sign: the cryptography paddock needs, on OpenSSL's libcrypto.
 * SHA-256 for key hashing, HMAC-SHA256 for signed URLs, and a comparison
 * that takes the same time whatever the inputs hold.
 *
 * Threads: any thread. A struct sign_key is read-only after
 * sign_key_new, so one may sign on every thread at once.
 */
#ifndef PADDOCK_SIGN_H
#define PADDOCK_SIGN_H

#include "../core/core.h"

#define SIGN_HASH_LEN 32

/* SHA-256 of the concatenation a || b (b may be NULL with nb 0). */
void sign_sha256(const void *a, size_t na, const void *b, size_t nb,
                 unsigned char out[SIGN_HASH_LEN]);
/* An HMAC-SHA256 key with its inner and outer hash states computed once,
 * so signing a short message costs two small hash updates, not a key
 * schedule and a digest fetch (a signed link is made on every query). */
struct sign_key;
struct sign_key *sign_key_new(const unsigned char *key, size_t nkey);
/* NULL is fine. */
void sign_key_free(struct sign_key *k);
/* HMAC-SHA256 of msg under k; the same bytes as sign_hmac. */
void sign_hmac_keyed(const struct sign_key *k, const void *msg, size_t nmsg,
                     unsigned char out[SIGN_HASH_LEN]);
/* HMAC-SHA256 of msg under key. */
void sign_hmac(const unsigned char *key, size_t nkey, const void *msg,
               size_t nmsg, unsigned char out[SIGN_HASH_LEN]);
/* Equal, in time independent of where the bytes differ. */
bool sign_equal(const void *a, const void *b, size_t n);

#endif
