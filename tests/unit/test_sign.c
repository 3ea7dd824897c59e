/* sign: SHA-256 and HMAC-SHA256 against RFC test vectors; the pre-keyed
 * HMAC gives the same bytes as the one-shot. */
#include "../../src/sign/sign.h"
#include "unit.h"

static void hex(const unsigned char *b, char *out)
{
    id_hex(b, SIGN_HASH_LEN, out);
}

/* RFC 4231 test cases 1, 2 and 6 (a key longer than the block). */
static void hmac_rfc4231(void)
{
    unsigned char mac[SIGN_HASH_LEN], k1[20], k6[131];
    char h[2 * SIGN_HASH_LEN + 1];
    memset(k1, 0x0b, sizeof(k1));
    memset(k6, 0xaa, sizeof(k6));
    static const char m6[] = "Test Using Larger Than Block-Size Key - Hash "
                             "Key First";
    struct {
        const unsigned char *key;
        size_t nkey;
        const char *msg, *want;
    } rows[] = {
        { k1, sizeof(k1), "Hi There",
          "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
        { (const unsigned char *)"Jefe", 4, "what do ya want for nothing?",
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
        { k6, sizeof(k6), m6,
          "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
    };
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        sign_hmac(rows[i].key, rows[i].nkey, rows[i].msg, strlen(rows[i].msg),
                  mac);
        hex(mac, h);
        CHECK_STR(h, rows[i].want);
        struct sign_key *k = sign_key_new(rows[i].key, rows[i].nkey);
        sign_hmac_keyed(k, rows[i].msg, strlen(rows[i].msg), mac);
        hex(mac, h);
        CHECK_STR(h, rows[i].want);
        sign_key_free(k);
    }
}

static void keyed_equals_one_shot(void)
{
    unsigned char key[32], a[SIGN_HASH_LEN], b[SIGN_HASH_LEN];
    char msg[300];
    for (int i = 0; i < 32; i++)
        key[i] = (unsigned char)(i * 7 + 1);
    struct sign_key *k = sign_key_new(key, sizeof(key));
    for (size_t n = 0; n < sizeof(msg); n += 13) {
        for (size_t j = 0; j < n; j++)
            msg[j] = (char)('a' + (j * 31 + n) % 26);
        sign_hmac(key, sizeof(key), msg, n, a);
        sign_hmac_keyed(k, msg, n, b);
        CHECK(memcmp(a, b, sizeof(a)) == 0);
    }
    sign_key_free(k);
}

static void sha256_abc(void)
{
    unsigned char d[SIGN_HASH_LEN];
    char h[2 * SIGN_HASH_LEN + 1];
    sign_sha256("ab", 2, "c", 1, d);
    hex(d, h);
    CHECK_STR(
        h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int main(void)
{
    unit_suite = "sign";
    RUN(hmac_rfc4231);
    RUN(keyed_equals_one_shot);
    RUN(sha256_abc);
    return UNIT_END();
}
