/* Wall and monotonic clocks; the API's UTC+8 "YYYY-MM-DD HH:mm:ss.SSS"; the
 * one duration syntax. */
#include "core.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t clock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void clock_cond_init(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
}

struct timespec clock_mono_after(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

static void digits(char *p, unsigned v, int n)
{
    while (n-- > 0) {
        p[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* Civil date of a day count since 1970-01-01 (proleptic Gregorian; the
 * days-from-civil inverse of H. Hinnant's public-domain algorithms). */
static void civil(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* Written digit by digit: three times on every query, where snprintf and
 * gmtime_r cost more than the rest of the answer. */
void clock_format(int64_t ms, int offset_min, char out[24])
{
    int64_t local = ms + (int64_t)offset_min * 60000;
    int64_t secs = local >= 0 ? local / 1000 : (local - 999) / 1000;
    unsigned milli = (unsigned)(local - secs * 1000);
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    unsigned sod = (unsigned)(secs - days * 86400);
    int y;
    unsigned m, d;
    civil(days, &y, &m, &d);
    /* Years past 9999 do not occur; keep the width fixed anyway. */
    digits(out, (unsigned)(y < 0 ? 0 : y) % 10000u, 4);
    out[4] = '-';
    digits(out + 5, m, 2);
    out[7] = '-';
    digits(out + 8, d, 2);
    out[10] = ' ';
    digits(out + 11, sod / 3600, 2);
    out[13] = ':';
    digits(out + 14, sod / 60 % 60, 2);
    out[16] = ':';
    digits(out + 17, sod % 60, 2);
    out[19] = '.';
    digits(out + 20, milli, 3);
    out[23] = '\0';
}

int clock_parse_compact(const char *s, int offset_min, int64_t *out_ms)
{
    int v[6];
    static const int width[6] = { 4, 2, 2, 2, 2, 2 };
    if (strlen(s) != 14)
        return ERR_INVALID_PARAMETER;
    for (int i = 0, pos = 0; i < 6; i++) {
        v[i] = 0;
        for (int j = 0; j < width[i]; j++, pos++) {
            if (s[pos] < '0' || s[pos] > '9')
                return ERR_INVALID_PARAMETER;
            v[i] = v[i] * 10 + (s[pos] - '0');
        }
    }
    if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 ||
        v[4] > 59 || v[5] > 59)
        return ERR_INVALID_PARAMETER;
    struct tm tm = {
        .tm_year = v[0] - 1900,
        .tm_mon = v[1] - 1,
        .tm_mday = v[2],
        .tm_hour = v[3],
        .tm_min = v[4],
        .tm_sec = v[5],
    };
    time_t t = timegm(&tm);
    if (tm.tm_mday != v[2]) /* timegm normalised a day like Feb 30 */
        return ERR_INVALID_PARAMETER;
    *out_ms = ((int64_t)t - (int64_t)offset_min * 60) * 1000;
    return 0;
}

int clock_parse_duration(const char *s, int64_t min_ms, int64_t max_ms,
                         int64_t *out_ms)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = { { "ms", 1 },
                  { "s", 1000 },
                  { "m", 60000 },
                  { "h", 3600000 },
                  { "d", 86400000 } };
    int64_t total = 0;
    const char *p = s;

    if (!s || !*s || max_ms < 0)
        return ERR_INVALID_PARAMETER;
    while (*p) {
        int64_t v = 0, k = 0;
        const char *digits = p;
        while (*p >= '0' && *p <= '9') {
            int d = *p++ - '0';
            if (v > (INT64_MAX - d) / 10)
                return ERR_INVALID_PARAMETER;
            v = v * 10 + d;
        }
        if (p == digits)
            return ERR_INVALID_PARAMETER;
        if (!*p && digits == s) {
            k = 1000; /* a bare number: seconds */
        } else {
            /* The longest unit that ends here ("ms", not "m" then "s"). */
            size_t best = 0;
            for (size_t i = 0; i < ARRAY_LEN(units); i++) {
                size_t len = strlen(units[i].unit);
                if (len > best && strncmp(p, units[i].unit, len) == 0 &&
                    (p[len] == '\0' || (p[len] >= '0' && p[len] <= '9'))) {
                    best = len;
                    k = units[i].ms;
                }
            }
            if (!k)
                return ERR_INVALID_PARAMETER;
            p += best;
        }
        /* total <= max_ms here, so this also keeps the sum from
         * overflowing. */
        if (v > (max_ms - total) / k)
            return ERR_INVALID_PARAMETER;
        total += v * k;
    }
    if (total < min_ms)
        return ERR_INVALID_PARAMETER;
    *out_ms = total;
    return 0;
}

void clock_format_duration(int64_t ms, char out[24])
{
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = { { 3600000, "h" }, { 60000, "m" }, { 1000, "s" } };
    for (size_t i = 0; i < ARRAY_LEN(units); i++)
        if (ms != 0 && ms % units[i].ms == 0) {
            snprintf(out, 24, "%lld%s", (long long)(ms / units[i].ms),
                     units[i].unit);
            return;
        }
    snprintf(out, 24, "%lldms", (long long)ms);
}
