/* log/: the one escaping rule, and printf conversions passed through. */
#include "../../src/log/log.h"
#include "unit.h"

#include <fcntl.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void check_format(const char *want, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void check_format(const char *want, const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    log_vformat(&b, fmt, ap);
    va_end(ap);
    CHECK_STR(b.data ? b.data : "", want);
    buf_fini(&b);
}

static void values_are_escaped(void)
{
    /* The forged line: CR LF, spaces and quotes in a path. */
    check_format("path=\"/nosuch\\r\\nls=fake level=error msg=\\\"X\\\"\"",
                 "path=\"%s\"", "/nosuch\r\nls=fake level=error msg=\"X\"");
    check_format("path=\"a\\\\b\\tc\\u0001\\u007f\"", "path=\"%s\"",
                 "a\\b\tc\x01\x7f");
    /* Unquoted: a plain token as is, anything else quoted. */
    check_format("k=abc", "k=%s", "abc");
    check_format("k=\"a b\"", "k=%s", "a b");
    check_format("k=\"a=b\"", "k=%s", "a=b");
    check_format("k=\"\"", "k=%s", "");
    check_format("k=\"x\\n level=error\"", "k=%s", "x\n level=error");
    check_format("k=\xc3\xa9t\xc3\xa9", "k=%s", "\xc3\xa9t\xc3\xa9");
    /* Every byte by its class: the edges of each. */
    for (int c = 1; c < 256; c++) {
        char in[4] = { 'a', (char)c, 'b', 0 }, want[32];
        struct buf b = BUF_INIT;
        log_format(&b, "k=%s", in);
        bool plain = c > 0x20 && c != 0x7f && c != '"' && c != '=' && c != '\\';
        bool bare = c >= 0x20 && c != 0x7f && c != '"' && c != '\\';
        if (plain)
            snprintf(want, sizeof(want), "k=a%cb", c);
        else if (bare)
            snprintf(want, sizeof(want), "k=\"a%cb\"", c);
        else if (c == '"' || c == '\\')
            snprintf(want, sizeof(want), "k=\"a\\%cb\"", c);
        else if (c == '\n' || c == '\r' || c == '\t')
            snprintf(want, sizeof(want), "k=\"a\\%cb\"",
                     c == '\n'   ? 'n'
                     : c == '\r' ? 'r'
                                 : 't');
        else
            snprintf(want, sizeof(want), "k=\"a\\u%04xb\"", c);
        CHECK_STR(b.data, want);
        buf_fini(&b);
    }
    const char *volatile none = NULL; /* not a constant the compiler sees */
    check_format("k=(null)", "k=%s", none);
}

static void numbers_pass_through(void)
{
    check_format("a=1 b=-2 c=3 d=4 e=ff f=1.50 g=x h=%",
                 "a=%d b=%lld c=%zu "
                 "d=%u e=%x f=%.2f g=%c h=%%",
                 1, -2LL, (size_t)3, 4u, 255, 1.5, 'x');
    check_format("a=\"abc\" b=  7", "a=\"%.3s\" b=%*d", "abcdef", 3, 7);
    check_format("s=ab", "s=%.*s", 2, "abcd");
    /* Bare integers are written without printf: the same digits. */
    check_format("a=0 b=-1 c=-9223372036854775808 d=18446744073709551615",
                 "a=%d b=%ld c=%lld d=%llu", 0, -1L, (long long)INT64_MIN,
                 (unsigned long long)UINT64_MAX);
    check_format("a=-2147483648 b=4294967295 c=7 d=+5 e=05",
                 "a=%d b=%u c=%zu "
                 "d=%+d e=%02d",
                 INT32_MIN, UINT32_MAX, (size_t)7, 5, 5);
    for (long long v = 1; v > 0 && v < INT64_MAX / 3; v = v * 3 + 1) {
        char want[64];
        struct buf b = BUF_INIT;
        snprintf(want, sizeof(want), "v=%lld w=%lld", v, -v);
        log_format(&b, "v=%lld w=%lld", v, -v);
        CHECK_STR(b.data, want);
        buf_fini(&b);
    }
    check_format("p=\"x y\"z", "p=\"%s\"%s", "x y", "z");
}

/* ------------------------------------------------- the buffered writer */

static char out_path[64];
static int saved_stderr = -1;

/* Send stderr to a fresh file (the logger writes to fd 2). */
static void capture(void)
{
    snprintf(out_path, sizeof(out_path), "/tmp/paddock-test-log-XXXXXX");
    int fd = mkstemp(out_path);
    if (fd < 0) {
        perror("mkstemp");
        exit(1);
    }
    saved_stderr = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

static void release(void)
{
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    unlink(out_path);
}

static char *captured(void)
{
    FILE *f = fopen(out_path, "rb");
    struct buf b = BUF_INIT;
    char chunk[4096];
    size_t n;
    buf_puts(&b, "");
    while (f && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(&b, chunk, n);
    if (f)
        fclose(f);
    return buf_take(&b);
}

static size_t count(const char *s, const char *what)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

/* write(2) calls this process made so far (/proc/self/io syscw). */
static long writes_made(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    long n = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "syscw: ", 7) == 0)
            n = strtol(line + 7, NULL, 10);
    if (f)
        fclose(f);
    return n;
}

static void buffered_lines_share_a_write(void)
{
    capture();
    log_buffer_start();
    long before = writes_made();
    for (int i = 0; i < 1000; i++)
        log_info("request", "n=%d path=\"%s\"", i, "/a b");
    long made = writes_made() - before;
    /* Not one write per line: a flush per LOG_FLUSH_MS at most (and per
     * 64 KiB: ~80 bytes a line fill it less than twice). */
    CHECK(made >= 0 && made < 20);
    /* Out within the flush interval, without anything else happening. */
    char *got = NULL;
    for (int waited = 0; waited < 2000; waited += 10) {
        free(got);
        got = captured();
        if (count(got, "msg=\"request\"") == 1000)
            break;
        nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
    }
    CHECK_INT(count(got, "msg=\"request\""), 1000);
    CHECK(strstr(got, " n=999 path=\"/a b\"\n") != NULL);
    free(got);

    /* A warning goes out at once, after the lines before it. */
    log_info("first", "k=%d", 1);
    log_info("second", "k=%d", 2);
    log_warn("third", "k=%d", 3);
    got = captured();
    const char *a = strstr(got, "msg=\"first\""),
               *b = strstr(got, "msg=\"second\"");
    const char *c = strstr(got, "msg=\"third\"");
    CHECK(a && b && c && a < b && b < c);
    free(got);

    /* At the stop every line is out; afterwards each goes at once. */
    log_info("last buffered", "k=%d", 4);
    log_buffer_stop();
    got = captured();
    CHECK(strstr(got, "msg=\"last buffered\"") != NULL);
    free(got);
    log_info("unbuffered", "k=%d", 5);
    got = captured();
    CHECK(strstr(got, "msg=\"unbuffered\"") != NULL);
    free(got);
    release();
}

#define THREADS 4
#define LINES   5000

static void *log_many(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < LINES; i++)
        log_info("line", "t=%d i=%d pad=\"%s\"", t, i,
                 "0123456789012345678901234567890123456789");
    return NULL;
}

/* Many threads through the buffer (it fills and flushes many times):
 * every line once, whole, each thread's in its order. */
static void threads_keep_lines_whole(void)
{
    capture();
    log_buffer_start();
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, log_many, (void *)(intptr_t)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    log_buffer_stop();
    char *got = captured();
    int next[THREADS] = { 0 };
    size_t lines = 0;
    bool whole = true;
    for (char *line = got, *end; *line; line = end + 1) {
        end = strchr(line, '\n');
        if (!end)
            break;
        *end = '\0'; /* sscanf would measure the rest of the text */
        int t, i;
        char *f = strstr(line, " t=");
        if (!f || sscanf(f, " t=%d i=%d", &t, &i) != 2 || t < 0 ||
            t >= THREADS || i != next[t] ||
            strncmp(end - 42, "\"0123456789", 11) != 0 || end[-1] != '"') {
            whole = false;
            break;
        }
        next[t]++;
        lines++;
    }
    CHECK(whole);
    CHECK_INT(lines, THREADS * LINES);
    free(got);
    release();
}

int main(void)
{
    unit_suite = "log";
    RUN(values_are_escaped);
    RUN(numbers_pass_through);
    RUN(buffered_lines_share_a_write);
    RUN(threads_keep_lines_whole);
    return UNIT_END();
}
