/* Standard base64 (RFC 4648, padded): the check and the decoder that the
 * submit validator and the input fetcher share. */
#include "core.h"

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

const char *base64_problem(const char *s, size_t n, size_t *decoded)
{
    if (n == 0)
        return "the base64 payload is empty";
    if (n % 4 != 0)
        return "the base64 payload is not padded to a multiple of 4";
    size_t pad = s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
    for (size_t i = 0; i < n - pad; i++)
        if (b64_value((unsigned char)s[i]) < 0)
            return "the base64 payload has a character outside "
                   "A-Z a-z 0-9 + / or misplaced padding";
    *decoded = n / 4 * 3 - pad;
    return NULL;
}

size_t base64_decode(const char *s, size_t n, unsigned char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i + 4 <= n && o < cap; i += 4) {
        unsigned v = 0, bytes = 3;
        for (size_t k = 0; k < 4; k++) {
            int d = b64_value((unsigned char)s[i + k]);
            if (d < 0) { /* padding, only at the end of checked input */
                d = 0;
                bytes--;
            }
            v = (v << 6) | (unsigned)d;
        }
        for (unsigned k = 0; k < bytes && o < cap; k++)
            out[o++] = (unsigned char)(v >> (16 - 8 * k));
    }
    return o;
}
