/* http/: the request-head parser (cases as data), unescaping, and the
 * file reply's ranges. The connection machine is tested over real sockets
 * by tests/api/test_hardening.py and fuzzed by fuzz/fuzz_http.c. */
#include "../../src/http/http.h"
#include "unit.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* A head and what the parser must make of it. */
struct head_case {
    const char *text;
    int fault;       /* enum http_fault */
    const char *why; /* a word of the reason, for faults */
    const char *path, *query;
    int64_t length;
    bool chunked, keep_alive;
};

#define H "Host: x\r\n"
static const struct head_case heads[] = {
    { "GET / HTTP/1.1\r\n" H "\r\n", 0, NULL, "/", NULL, -1, false, true },
    { "GET /a%20b?x=1&y HTTP/1.1\r\n" H "\r\n", 0, NULL, "/a b", "x=1&y", -1,
      false, true },
    { "GET /t/%00 HTTP/1.1\r\n" H "\r\n", 0, NULL, "/t/%00", NULL, -1, false,
      true },
    { "GET / HTTP/1.0\r\n\r\n", 0, NULL, "/", NULL, -1, false, false },
    { "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 0, NULL, "/", NULL,
      -1, false, true },
    { "GET / HTTP/1.1\r\n" H "Connection: foo, close\r\n\r\n", 0, NULL, "/",
      NULL, -1, false, false },
    { "GET / HTTP/1.1\n" H "\n", 0, NULL, "/", NULL, -1, false, true },
    { "GET http://example.com/p?q HTTP/1.1\r\n" H "\r\n", 0, NULL, "/p", "q",
      -1, false, true },
    { "POST / HTTP/1.1\r\n" H "Content-Length: 12\r\n\r\n", 0, NULL, "/", NULL,
      12, false, true },
    { "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
      0, NULL, "/", NULL, 5, false, true },
    { "POST / HTTP/1.1\r\n" H "Transfer-Encoding: Chunked\r\n\r\n", 0, NULL,
      "/", NULL, -1, true, true },
    { "GET / HTTP/1.1\r\n" H "X: a\xc3\xa9 \t\r\n\r\n", 0, NULL, "/", NULL, -1,
      false, true },
    /* faults */
    { "GET / HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
      HTTP_FAULT_FRAMING, "different", NULL, NULL, 0, false, false },
    { "POST / HTTP/1.1\r\n" H
      "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
      HTTP_FAULT_FRAMING, "both", NULL, NULL, 0, false, false },
    { "POST / HTTP/1.1\r\n" H
      "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
      HTTP_FAULT_FRAMING, "repeated", NULL, NULL, 0, false, false },
    { "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
      HTTP_FAULT_FRAMING, "HTTP/1.0", NULL, NULL, 0, false, false },
    { "GET / HTTP/1.1\r\nHost : x\r\n\r\n", HTTP_FAULT_FRAMING, "colon", NULL,
      NULL, 0, false, false },
    { "GET / HTTP/1.1\r\n\r\n", HTTP_FAULT_FRAMING, "Host", NULL, NULL, 0,
      false, false },
    { "GET / HTTP/1.1\r\n" H H "\r\n", HTTP_FAULT_FRAMING, "repeated", NULL,
      NULL, 0, false, false },
    { "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", HTTP_FAULT_MALFORMED, "Host", NULL,
      NULL, 0, false, false },
    { "POST / HTTP/1.1\r\n" H "Content-Length: abc\r\n\r\n", HTTP_FAULT_LENGTH,
      "decimal", NULL, NULL, 0, false, false },
    { "POST / HTTP/1.1\r\n" H "Content-Length: -1\r\n\r\n", HTTP_FAULT_LENGTH,
      "decimal", NULL, NULL, 0, false, false },
    { "POST / HTTP/1.1\r\n" H "Content-Length: 1234567890123456789\r\n\r\n",
      HTTP_FAULT_LENGTH, "decimal", NULL, NULL, 0, false, false },
    { "POST / HTTP/1.1\r\n" H "Content-Length: \r\n\r\n", HTTP_FAULT_LENGTH,
      "decimal", NULL, NULL, 0, false, false },
    { "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r\n",
      HTTP_FAULT_CODING, "chunked", NULL, NULL, 0, false, false },
    { "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip, chunked\r\n\r\n",
      HTTP_FAULT_CODING, "codings", NULL, NULL, 0, false, false },
    { "GET / HTTP/2.0\r\n" H "\r\n", HTTP_FAULT_VERSION, "HTTP/1.1", NULL, NULL,
      0, false, false },
    { "GET / FTP/1.0\r\n" H "\r\n", HTTP_FAULT_MALFORMED, "version", NULL, NULL,
      0, false, false },
    { "GET  / HTTP/1.1\r\n" H "\r\n", HTTP_FAULT_MALFORMED, "target", NULL,
      NULL, 0, false, false },
    { "GET nope HTTP/1.1\r\n" H "\r\n", HTTP_FAULT_MALFORMED, "'/'", NULL, NULL,
      0, false, false },
    { "G(T / HTTP/1.1\r\n" H "\r\n", HTTP_FAULT_MALFORMED, "token", NULL, NULL,
      0, false, false },
    { "GET /\x7f HTTP/1.1\r\n" H "\r\n", HTTP_FAULT_MALFORMED, "visible", NULL,
      NULL, 0, false, false },
    { "GET / HTTP/1.1\r\n" H " folded\r\n\r\n", HTTP_FAULT_MALFORMED,
      "obs-fold", NULL, NULL, 0, false, false },
    { "GET / HTTP/1.1\r\n" H "X: a\rb\r\n\r\n", HTTP_FAULT_MALFORMED, "CR",
      NULL, NULL, 0, false, false },
    { "GET / HTTP/1.1\r\n" H "X: a\x01\r\n\r\n", HTTP_FAULT_MALFORMED,
      "control", NULL, NULL, 0, false, false },
    { "GET / HTTP/1.1\r\n" H "no colon\r\n\r\n", HTTP_FAULT_MALFORMED,
      "name: value", NULL, NULL, 0, false, false },
    { "GET / HTTP/1.1\r\n" H ": empty name\r\n\r\n", HTTP_FAULT_MALFORMED,
      "name: value", NULL, NULL, 0, false, false },
};

static void parses_heads(void)
{
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        const struct head_case *hc = &heads[i];
        size_t n = strlen(hc->text);
        char *buf = malloc(n + 1);
        memcpy(buf, hc->text, n + 1);
        struct http_head h;
        const char *why = NULL;
        int rc = http_parse_head(buf, n, &h, &why);
        if (rc != hc->fault)
            fprintf(stderr, "  case %zu: %s\n", i, why);
        CHECK_INT(rc, hc->fault);
        if (rc == 0 && hc->fault == 0) {
            CHECK_STR(h.path, hc->path);
            if (hc->query)
                CHECK_STR(h.query, hc->query);
            else
                CHECK(h.query == NULL);
            CHECK_INT(h.content_length, hc->length);
            CHECK_INT(h.chunked, hc->chunked);
            CHECK_INT(h.keep_alive, hc->keep_alive);
        } else if (hc->why) {
            if (!strstr(why, hc->why))
                fprintf(stderr, "  case %zu: '%s' lacks '%s'\n", i, why,
                        hc->why);
            CHECK(strstr(why, hc->why) != NULL);
        }
        free(buf);
    }
}

static void header_values_are_trimmed(void)
{
    char buf[] = "GET / HTTP/1.1\r\nHost: x\r\nAuthorization:   Bearer k  "
                 "\r\nEmpty:\r\nExpect: 100-continue\r\n\r\n";
    struct http_head h;
    const char *why;
    CHECK_INT(http_parse_head(buf, strlen(buf), &h, &why), 0);
    CHECK_INT(h.n, 4);
    CHECK_STR(h.h[1].name, "Authorization");
    CHECK_STR(h.h[1].value, "Bearer k");
    CHECK_STR(h.h[2].value, "");
    CHECK(h.expect_continue);
}

static void too_many_headers(void)
{
    char buf[8192];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= HTTP_MAX_HEADERS; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X%d: y\r\n", i);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
    struct http_head h;
    const char *why;
    CHECK_INT(http_parse_head(buf, n, &h, &why), HTTP_FAULT_HEAD_SIZE);
}

static void nul_is_refused(void)
{
    char buf[] = "GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n";
    struct http_head h;
    const char *why;
    CHECK_INT(http_parse_head(buf, sizeof(buf) - 1, &h, &why),
              HTTP_FAULT_MALFORMED);
}

static void unescapes(void)
{
    char a[] = "/a%2Fb%zz%4";
    http_unescape(a, false);
    CHECK_STR(a, "/a/b%zz%4");
    char b[] = "x+y%2B%00";
    http_unescape(b, true);
    CHECK_STR(b, "x y+%00");
    char c[] = "a+b";
    http_unescape(c, false);
    CHECK_STR(c, "a+b");
}

int main(void)
{
    unit_suite = "http";
    RUN(parses_heads);
    RUN(header_values_are_trimmed);
    RUN(too_many_headers);
    RUN(nul_is_refused);
    RUN(unescapes);
    return UNIT_END();
}
