/* Standard base64 (RFC 4648, padded): the check and the decoder that the
 * submit validator and the input fetcher share, and the encoder the CLI
 * inlines local images with. */
#include "core.h"

static const char b64_digits[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

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

/* Straight into the buffer: a 20 MB image is encoded in one pass, with no
 * copy of its text. */
void base64_encode(struct buf *b, const void *data, size_t n)
{
    const unsigned char *p = data;
    buf_reserve(b, (n + 2) / 3 * 4);
    char *o = b->data + b->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *o++ = b64_digits[v >> 18];
        *o++ = b64_digits[(v >> 12) & 63];
        *o++ = b64_digits[(v >> 6) & 63];
        *o++ = b64_digits[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        *o++ = b64_digits[v >> 18];
        *o++ = b64_digits[(v >> 12) & 63];
        *o++ = i + 1 < n ? b64_digits[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}
