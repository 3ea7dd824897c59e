/* Unit tests of src/core: buffers, JSON strings, ids, clock, UTF-8. */
#include "../../src/core/core.h"
#include "unit.h"

#include <time.h>

#include <stdlib.h>

static void buf_grows_and_escapes(void)
{
    struct buf b = BUF_INIT;
    buf_json_str(&b, "a\"b\\c\n\x01\xe4\xb8\xad");
    CHECK_STR(b.data, "\"a\\\"b\\\\c\\n\\u0001\xe4\xb8\xad\"");
    buf_reset(&b);
    for (int i = 0; i < 1000; i++)
        buf_printf(&b, "%d,", i);
    CHECK(b.len > 3000);
    CHECK(strncmp(b.data, "0,1,2,", 6) == 0);
    char *s = buf_take(&b);
    CHECK(b.data == NULL && b.len == 0);
    free(s);
    buf_fini(&b);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void uuid_shapes(void)
{
    char a[UUID_STR_LEN + 1], b[UUID_STR_LEN + 1];
    id_uuid4(a);
    CHECK(id_is_uuid(a));
    CHECK(a[14] == '4');
    CHECK(strchr("89ab", a[19]) != NULL);
    id_uuid7(a);
    CHECK(id_is_uuid(a) && a[14] == '7');
    for (int i = 0; i < 10000; i++) {
        id_uuid7(b);
        CHECK(strcmp(a, b) < 0); /* strictly increasing */
        memcpy(a, b, sizeof(a));
    }
    /* Across many refills of the random pool: all distinct. */
    enum { N = 2000 };
    static char many[N][UUID_STR_LEN + 1];
    for (int i = 0; i < N; i++) {
        id_uuid4(many[i]);
        CHECK(id_is_uuid(many[i]) && many[i][14] == '4');
    }
    qsort(many, N, sizeof(many[0]), cmp_str);
    for (int i = 1; i < N; i++)
        CHECK(strcmp(many[i - 1], many[i]) != 0);
    CHECK(!id_is_uuid("not-a-uuid"));
    CHECK(!id_is_uuid("0123456789abcdef0123456789abcdef0123"));
    CHECK(id_is_uuid("051C7B40-B2C5-4341-AEE4-0123456789AB"));
    CHECK(!id_is_uuid_lower("051C7B40-B2C5-4341-AEE4-0123456789AB"));
    CHECK(id_is_uuid_lower("051c7b40-b2c5-4341-aee4-0123456789ab"));
    CHECK(!id_is_uuid_lower("051c7b40-b2c5-4341-aee4-0123456789a"));
}

/* The digit-by-digit formatter against libc's calendar, over leap years,
 * century rules, month ends, offsets and times before 1970. */
static void clock_matches_libc(void)
{
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        /* 1900..2199, any millisecond */
        int64_t ms = (int64_t)(x % 9467280000000ull) - 2208988800000LL;
        int off = (int)(x >> 40) % (14 * 60 * 2 + 1) - 14 * 60;
        char got[24], want[64]; /* room for any int the compiler imagines */
        clock_format(ms, off, got);
        int64_t local = ms + (int64_t)off * 60000;
        time_t secs =
            (time_t)(local >= 0 ? local / 1000 : (local - 999) / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        snprintf(want, sizeof(want), "%04d-%02d-%02d %02d:%02d:%02d.%03d",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (int)(local - (int64_t)secs * 1000));
        if (strcmp(got, want) != 0) {
            CHECK_STR(got, want);
            break;
        }
    }
}

static void base64_rules(void)
{
    unsigned char out[16];
    size_t len = 0;
    CHECK(base64_problem("aGVsbG8=", 8, &len) == NULL);
    CHECK_INT(len, 5);
    CHECK_INT(base64_decode("aGVsbG8=", 8, out, sizeof(out)), 5);
    CHECK(memcmp(out, "hello", 5) == 0);
    CHECK_INT(base64_decode("aGVsbG8=", 8, out, 2), 2); /* stops at cap */
    CHECK(memcmp(out, "he", 2) == 0);
    CHECK(base64_problem("", 0, &len) != NULL);
    CHECK(base64_problem("aGVsbG8", 7, &len) != NULL);
    CHECK(base64_problem("aGV*bG8=", 8, &len) != NULL);
    CHECK(base64_problem("aG=sbG8=", 8, &len) != NULL);

    /* Encoding: every tail length, and back again. */
    static const struct {
        const char *in, *out;
    } enc[] = {
        { "", "" },
        { "h", "aA==" },
        { "he", "aGU=" },
        { "hel", "aGVs" },
        { "hello", "aGVsbG8=" },
        { "\xff\xfe", "//4=" },
        { "\x89PNG", "iVBORw==" },
    };
    for (size_t i = 0; i < ARRAY_LEN(enc); i++) {
        struct buf b = BUF_INIT;
        buf_puts(&b, "<");
        base64_encode(&b, enc[i].in, strlen(enc[i].in));
        CHECK_INT(b.len, 1 + strlen(enc[i].out));
        CHECK_STR(b.data + 1, enc[i].out);
        buf_fini(&b);
    }
    unsigned char all[256], back[256];
    for (size_t i = 0; i < sizeof(all); i++)
        all[i] = (unsigned char)(255 - i);
    struct buf b = BUF_INIT;
    base64_encode(&b, all, sizeof(all));
    CHECK(base64_problem(b.data, b.len, &len) == NULL);
    CHECK_INT(len, sizeof(all));
    CHECK_INT(base64_decode(b.data, b.len, back, sizeof(back)), sizeof(back));
    CHECK(memcmp(all, back, sizeof(all)) == 0);
    buf_fini(&b);
}

static void clock_utc8(void)
{
    char out[24];
    /* 2026-04-26 06:13:14.373 UTC is 14:13:14.373 at UTC+8. */
    clock_format(1777183994373LL, 480, out);
    CHECK_STR(out, "2026-04-26 14:13:14.373");
    clock_format(1777183994373LL, 0, out);
    CHECK_STR(out, "2026-04-26 06:13:14.373");
    int64_t ms = 0;
    CHECK_INT(clock_parse_compact("20260426141314", 480, &ms), 0);
    CHECK_INT(ms, 1777183994000LL);
    CHECK(clock_parse_compact("20260230000000", 480, &ms) < 0);
    CHECK(clock_parse_compact("2026042614131", 480, &ms) < 0);
    CHECK(clock_parse_compact("2026042614131x", 480, &ms) < 0);
}

static void durations(void)
{
    char out[24];
    static const struct {
        int64_t ms;
        const char *want;
    } cases[] = {
        { 86400000, "24h" }, { 604800000, "168h" }, { 3600000, "1h" },
        { 5400000, "90m" },  { 61000, "61s" },      { 2000, "2s" },
        { 1500, "1500ms" },  { 0, "0ms" },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        clock_format_duration(cases[i].ms, out);
        CHECK_STR(out, cases[i].want);
    }
}

/* The one duration syntax: every form the config, the CLI's --timeout and
 * the relay's words took before they shared it, and what it refuses. */
static void duration_syntax(void)
{
    static const struct {
        const char *s;
        int64_t ms;
    } good[] = {
        { "500ms", 500 },
        { "30s", 30000 },
        { "15m", 900000 },
        { "24h", 86400000 },
        { "7d", 604800000 },
        { "10", 10000 }, /* bare: seconds */
        { "0", 0 },
        { "0ms", 0 },
        { "2s", 2000 },
        { "1m", 60000 },
        { "1h", 3600000 },
        { "90", 90000 },
        { "1h30m", 5400000 },
        { "2d", 172800000 },
        { "1m30s500ms", 90500 },
        { "1m1m", 120000 },
        { "007s", 7000 },
        { "120s", 120000 },
    };
    for (size_t i = 0; i < ARRAY_LEN(good); i++) {
        int64_t ms = -1;
        CHECK_INT(clock_parse_duration(good[i].s, 0, INT64_MAX, &ms), 0);
        CHECK_INT(ms, good[i].ms);
    }
    static const char *const bad[] = {
        "",
        "m",
        "10x",
        "-5s",
        "+5s",
        " 5s",
        "5s ",
        "5 s",
        "5S",
        "1.5s",
        "5m30",
        "ms",
        "s5",
        "5mm",
        "5sm",
        "1y",
        "99999999999999999999s",
        "9223372036854775808ms",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        int64_t ms = -1;
        CHECK_INT(clock_parse_duration(bad[i], 0, INT64_MAX, &ms),
                  ERR_INVALID_PARAMETER);
        CHECK_INT(ms, -1); /* untouched */
    }
    int64_t ms = -1;
    CHECK_INT(clock_parse_duration(NULL, 0, 10, &ms), ERR_INVALID_PARAMETER);
    /* The range is inclusive, and a value past it fails however large. */
    CHECK_INT(clock_parse_duration("1s", 1000, 1000, &ms), 0);
    CHECK_INT(ms, 1000);
    CHECK_INT(clock_parse_duration("999ms", 1000, 5000, &ms),
              ERR_INVALID_PARAMETER);
    CHECK_INT(clock_parse_duration("5001ms", 1000, 5000, &ms),
              ERR_INVALID_PARAMETER);
    CHECK_INT(clock_parse_duration("1h", 10, 3600000, &ms), 0);
    CHECK_INT(ms, 3600000);
    CHECK_INT(clock_parse_duration("106751991168d", 0, INT64_MAX, &ms),
              ERR_INVALID_PARAMETER);
    CHECK_INT(clock_parse_duration("9223372036854775807ms", 0, INT64_MAX, &ms),
              0);
    CHECK_INT(ms, INT64_MAX);
    CHECK_INT(
        clock_parse_duration("9223372036854775807ms1ms", 0, INT64_MAX, &ms),
        ERR_INVALID_PARAMETER);
    /* What clock_format_duration writes reads back. */
    static const int64_t round[] = { 86400000, 5400000, 61000, 1500, 0 };
    for (size_t i = 0; i < ARRAY_LEN(round); i++) {
        char out[24];
        clock_format_duration(round[i], out);
        CHECK_INT(clock_parse_duration(out, 0, INT64_MAX, &ms), 0);
        CHECK_INT(ms, round[i]);
    }
}

static void utf8_rules(void)
{
    CHECK(utf8_valid("plain", 5));
    CHECK(utf8_valid("\xe4\xb8\xad", 3));
    CHECK(!utf8_valid("\xc0\xaf", 2));         /* overlong */
    CHECK(!utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    CHECK(!utf8_valid("\xe4\xb8", 2));         /* truncated */
    CHECK(!utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */

    /* Repair: malformed bytes become U+FFFD, the rest is kept. */
    char *fixed = utf8_fix_dup("ok \xe4\xb8\xad \xff\xe4\xb8");
    CHECK_STR(fixed, "ok \xe4\xb8\xad \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    CHECK(utf8_valid(fixed, strlen(fixed)));
    free(fixed);
    fixed = utf8_fix_dup("");
    CHECK_STR(fixed, "");
    free(fixed);

    size_t n = 6000;
    char *s = malloc(n * 3);
    memset(s, 'a', n);
    CHECK_INT(utf8_prompt_cut(s, n), LIMIT_PROMPT_CHARS);
    CHECK_INT(utf8_prompt_cut(s, 100), 100);
    /* One Chinese character anywhere halves the limit. */
    memcpy(s + 5500, "\xe4\xb8\xad", 3);
    CHECK_INT(utf8_prompt_cut(s, 5503), LIMIT_PROMPT_CHARS_CJK);
    for (size_t i = 0; i < 3000; i++)
        memcpy(s + 3 * i, "\xe4\xb8\xad", 3);
    CHECK_INT(utf8_prompt_cut(s, 9000), 3 * LIMIT_PROMPT_CHARS_CJK);
    free(s);
}

static void error_table(void)
{
    CHECK_INT(err_status(ERR_INVALID_PARAMETER), 400);
    CHECK_STR(err_code(ERR_TOO_LARGE), "BadRequest.TooLarge");
    CHECK_INT(err_status(ERR_MODEL_UNAVAILABLE), 503);
    CHECK_STR(err_code(ERR_SYNC_NOT_SUPPORTED), "AccessDenied");
    CHECK_INT(err_from_code("InternalError.Timeout"), ERR_TIMEOUT);
    CHECK_INT(err_from_code("NoSuchCode"), 0);
    CHECK_INT(err_status(12345), 500);
    struct errmsg e = { 0 };
    errmsg_set(&e, ERR_INVALID_PARAMETER, "parameters.%s must be %d", "x", 3);
    CHECK_STR(errmsg_text(&e), "parameters.x must be 3");
    CHECK(ERR__END < 0);
}

static void numbers(void)
{
    int64_t v;
    CHECK_INT(parse_i64("42", 0, 100, &v), 0);
    CHECK_INT(v, 42);
    CHECK(parse_i64("101", 0, 100, &v) < 0);
    CHECK(parse_i64("", 0, 100, &v) < 0);
    CHECK(parse_i64("4x", 0, 100, &v) < 0);
    CHECK(parse_i64("99999999999999999999", 0, INT64_MAX, &v) < 0);
    CHECK_INT(parse_i64("-5", -10, 10, &v), 0);
    CHECK_INT(v, -5);
}

int main(void)
{
    unit_suite = "core";
    RUN(buf_grows_and_escapes);
    RUN(uuid_shapes);
    RUN(clock_utc8);
    RUN(durations);
    RUN(duration_syntax);
    RUN(base64_rules);
    RUN(clock_matches_libc);
    RUN(utf8_rules);
    RUN(error_table);
    RUN(numbers);
    return UNIT_END();
}
