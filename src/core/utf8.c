/* UTF-8 validation and the prompt length rule of the API. */
#include "core.h"

#include <string.h>

/* Decode one code point at s[i]; returns its length, 0 when malformed. */
static size_t utf8_decode(const unsigned char *s, size_t n, size_t i,
                          uint32_t *cp)
{
    unsigned char c = s[i];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (i + len > n)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[i + k] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i + k] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = utf8_decode(u, n, i, &cp);
        if (len == 0)
            return false;
        i += len;
    }
    return true;
}

/* CJK ideographs: the unified block, extension A, compatibility, and the
 * supplementary-plane extensions. */
static bool is_cjk(uint32_t cp)
{
    return (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) ||
           (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x20000 && cp <= 0x3134f);
}

size_t utf8_prompt_cut(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t cut_short = n, cut_long = n; /* byte offsets after 2500 / 5000 */
    size_t count = 0;
    bool cjk = false;
    for (size_t i = 0; i < n;) {
        uint32_t cp = 0;
        size_t len = utf8_decode(u, n, i, &cp);
        if (len == 0)
            len = 1; /* callers validate first; never loop forever */
        if (is_cjk(cp))
            cjk = true;
        i += len;
        count++;
        if (count == LIMIT_PROMPT_CHARS_CJK)
            cut_short = i;
        if (count == LIMIT_PROMPT_CHARS) {
            cut_long = i;
            if (cjk)
                break;
        }
    }
    return cjk ? cut_short : cut_long;
}

char *utf8_fix_dup(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    struct buf b = BUF_INIT;
    buf_reserve(&b, n + 1);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = utf8_decode(u, n, i, &cp);
        if (len == 0) {
            buf_puts(&b, "\xef\xbf\xbd"); /* U+FFFD */
            i++;
        } else {
            buf_append(&b, s + i, len);
            i += len;
        }
    }
    return buf_take(&b);
}
