/* log/: the one escaping rule, and printf conversions passed through. */
#include "../../src/log/log.h"
#include "unit.h"

#include <stdlib.h>

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
    check_format("p=\"x y\"z", "p=\"%s\"%s", "x y", "z");
}

int main(void)
{
    unit_suite = "log";
    RUN(values_are_escaped);
    RUN(numbers_pass_through);
    return UNIT_END();
}
