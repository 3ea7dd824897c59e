/* Wall and monotonic clocks; the API's UTC+8 "YYYY-MM-DD HH:mm:ss.SSS". */
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

void clock_format(int64_t ms, int offset_min, char out[24])
{
    int64_t local = ms + (int64_t)offset_min * 60000;
    time_t secs = (time_t)(local >= 0 ? local / 1000 : (local - 999) / 1000);
    int milli = (int)(local - (int64_t)secs * 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* Years past 9999 do not occur; the cast keeps the width provable. */
    snprintf(out, 24, "%04u-%02u-%02u %02u:%02u:%02u.%03u",
             (unsigned)(tm.tm_year + 1900) % 10000u, (unsigned)tm.tm_mon + 1,
             (unsigned)tm.tm_mday, (unsigned)tm.tm_hour, (unsigned)tm.tm_min,
             (unsigned)tm.tm_sec, (unsigned)milli);
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
