/* Strict number parsing for flags, headers and query strings. */
#include "core.h"

int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    bool neg = false;
    int64_t v = 0;
    if (*s == '-') {
        neg = true;
        s++;
    }
    if (*s == '\0')
        return ERR_INVALID_PARAMETER;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return ERR_INVALID_PARAMETER;
        if (v > (INT64_MAX - (*s - '0')) / 10)
            return ERR_INVALID_PARAMETER;
        v = v * 10 + (*s - '0');
    }
    if (neg)
        v = -v;
    if (v < min || v > max)
        return ERR_INVALID_PARAMETER;
    *out = v;
    return 0;
}
