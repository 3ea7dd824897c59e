/* http/form.c: the multipart/form-data parser, cases as data. Each case
 * is fed whole, one byte at a time, and cut in two at every offset; the
 * transcript of callbacks and the outcome must be the same each way. */
#include "../../src/http/http.h"
#include "unit.h"

#include <stdlib.h>

#define CT "multipart/form-data; boundary=XyZ"
#define D  "--XyZ"
#define CD "Content-Disposition: form-data; "

struct form_case {
    const char *content_type;
    const char *body;
    int rc;          /* of init, feed or finish, whichever fails first */
    const char *why; /* a word of the reason, when rc != 0 */
    /* Callbacks: "[name|filename|type]" per part, then "=value" (a
     * collected part), "~bytes" (a streamed one) or nothing (skipped),
     * and "." when it ended. Parts named file... are streamed, skip...
     * skipped, the rest collected. */
    const char *transcript;
};

static const struct form_case cases[] = {
    /* What the DashScope SDK sends (requests + urllib3 2.x). */
    { CT,
      D "\r\n" CD "name=\"OSSAccessKeyId\"\r\n\r\nkid\r\n" D "\r\n" CD
        "name=\"policy\"\r\n\r\neyJ4Ijox\r\n" D "\r\n" CD
        "name=\"file\"; filename=\"a.png\"\r\n\r\n\x89PNG\r\n\x1a\n\r\n" D
        "--\r\n",
      0, NULL,
      "[OSSAccessKeyId||]=kid.[policy||]=eyJ4Ijox.[file|a.png|]~\x89PNG\r\n"
      "\x1a\n." },
    /* A preamble and an epilogue are ignored; padding after a boundary. */
    { CT,
      "ignored\r\n" D " \t\r\n" CD "name=a\r\nContent-Type: text/plain\r\n"
      "X-Other: y\r\n\r\n1\r\n" D "--\r\nepilogue " D "\r\n",
      0, NULL, "[a||text/plain]=1." },
    /* Empty values; a body that looks like a delimiter but is not one. */
    { CT,
      D "\r\n" CD "name=e\r\n\r\n\r\n" D "\r\n" CD
        "name=file\r\n\r\n\r\n--XyQ\r\n-\r\r\n--X\r\n" D "--",
      0, NULL, "[e||]=.[file||]~\r\n--XyQ\r\n-\r\r\n--X." },
    /* Quoted boundary; parameters in any case; quoted-pair. */
    { "Multipart/Form-Data ; charset=utf-8; BOUNDARY=\"a b:c\"",
      "--a b:c\r\ncontent-disposition: FORM-DATA; NAME=\"q\\\"x\"; "
      "filename*=utf-8''%e2%82%ac\r\n\r\nv\r\n--a b:c--",
      0, NULL, "[q\"x|utf-8''%e2%82%ac|]=v." },
    /* A skipped part; a form with no part at all. */
    { CT, D "\r\n" CD "name=skip1\r\n\r\nlots of bytes\r\n" D "--", 0, NULL,
      "[skip1||]." },
    { CT, D "--\r\n", 0, NULL, "" },
    /* Refused: the Content-Type. */
    { "application/octet-stream", "", ERR_INVALID_PARAMETER,
      "not multipart/form-data", "" },
    { "multipart/form-datax; boundary=a", "", ERR_INVALID_PARAMETER,
      "not multipart/form-data", "" },
    { "multipart/form-data", "", ERR_INVALID_PARAMETER, "no boundary", "" },
    { "multipart/form-data; boundary=", "", ERR_INVALID_PARAMETER, "malformed",
      "" },
    { "multipart/form-data; boundary=\"a \"", "", ERR_INVALID_PARAMETER,
      "RFC 2046", "" },
    { "multipart/form-data; boundary=\"a\x01\"", "", ERR_INVALID_PARAMETER,
      "RFC 2046", "" },
    { "multipart/form-data; boundary=\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"",
      "", ERR_INVALID_PARAMETER, "RFC 2046", "" },
    { "multipart/form-data; boundary=a; boundary=b", "", ERR_INVALID_PARAMETER,
      "two boundaries", "" },
    /* Refused: the body. */
    { CT, "no boundary here", ERR_INVALID_PARAMETER, "no boundary", "" },
    { CT, D "\r\n" CD "name=a\r\n\r\nvalue, never closed",
      ERR_INVALID_PARAMETER, "before its closing boundary", "" },
    { CT, D "\r\n" CD "name=a\r\n\r\nv\r\n" D "x\r\n", ERR_INVALID_PARAMETER,
      "more than the boundary", "" },
    { CT, D "\r\n" CD "name=a\r\n\r\nv\r\n" D "\rx", ERR_INVALID_PARAMETER,
      "CRLF", "" },
    { CT, D "\r\nContent-Type: x\r\n\r\nv\r\n" D "--", ERR_INVALID_PARAMETER,
      "no Content-Disposition", "" },
    { CT, D "\r\n\r\nv\r\n" D "--", ERR_INVALID_PARAMETER,
      "no Content-Disposition", "" },
    { CT, D "\r\nContent-Disposition: attachment; name=a\r\n\r\nv\r\n" D "--",
      ERR_INVALID_PARAMETER, "not form-data", "" },
    { CT, D "\r\n" CD "filename=a\r\n\r\nv\r\n" D "--", ERR_INVALID_PARAMETER,
      "no name", "" },
    { CT, D "\r\n" CD "name=\"\"\r\n\r\nv\r\n" D "--", ERR_INVALID_PARAMETER,
      "no name", "" },
    { CT, D "\r\n" CD "name=a; name=b\r\n\r\nv\r\n" D "--",
      ERR_INVALID_PARAMETER, "repeats", "" },
    { CT, D "\r\n" CD "name=\"a\r\n\r\nv\r\n" D "--", ERR_INVALID_PARAMETER,
      "malformed", "" },
    { CT, D "\r\n" CD "name=a\r\n" CD "name=b\r\n\r\nv\r\n" D "--",
      ERR_INVALID_PARAMETER, "two Content-Disposition", "" },
    { CT, D "\r\n" CD "name=a\r\n folded\r\n\r\nv\r\n" D "--",
      ERR_INVALID_PARAMETER, "name: value", "" },
    { CT, D "\r\n" CD "name=a\nX: y\r\n\r\nv\r\n" D "--", ERR_INVALID_PARAMETER,
      "bare CR or LF", "" },
    { CT, D "\r\n" CD "name=a\r\nX: \x01\r\n\r\nv\r\n" D "--",
      ERR_INVALID_PARAMETER, "control byte", "" },
};

struct transcript {
    char text[16384];
    size_t len;
};

static void add(struct transcript *t, const char *s, size_t n)
{
    if (n > sizeof(t->text) - 1 - t->len)
        n = sizeof(t->text) - 1 - t->len;
    memcpy(t->text + t->len, s, n);
    t->len += n;
    t->text[t->len] = '\0';
}

static void adds(struct transcript *t, const char *s)
{
    add(t, s ? s : "", strlen(s ? s : ""));
}

static int on_part(void *arg, const struct http_form_part *p)
{
    struct transcript *t = arg;
    adds(t, "[");
    adds(t, p->name);
    adds(t, "|");
    adds(t, p->filename);
    adds(t, "|");
    adds(t, p->type);
    adds(t, "]");
    if (strncmp(p->name, "file", 4) == 0) {
        adds(t, "~");
        return HTTP_FORM_STREAM;
    }
    return strncmp(p->name, "skip", 4) == 0 ? HTTP_FORM_SKIP
                                            : HTTP_FORM_COLLECT;
}

static int on_data(void *arg, const void *d, size_t n)
{
    CHECK(n > 0);
    add(arg, d, n);
    return 0;
}

static int on_end(void *arg, const struct http_form_part *p, const char *v,
                  size_t n)
{
    (void)p;
    if (v) {
        CHECK(v[n] == '\0');
        adds(arg, "=");
        add(arg, v, n);
    }
    adds(arg, ".");
    return 0;
}

static const struct http_form_ops ops = { on_part, on_data, on_end };

/* Feed body in pieces cut at `cuts` (ascending offsets), then finish. */
static int run_cuts(const struct form_case *fc, const size_t *cuts,
                    size_t n_cuts, struct transcript *t)
{
    struct http_form *f = malloc(sizeof(*f));
    t->len = 0;
    t->text[0] = '\0';
    int rc = http_form_init(f, fc->content_type, &ops, t);
    size_t len = strlen(fc->body), at = 0;
    for (size_t i = 0; rc == 0 && i <= n_cuts; i++) {
        size_t to = i < n_cuts ? cuts[i] : len;
        rc = http_form_feed(f, fc->body + at, to - at);
        at = to;
    }
    if (rc == 0)
        rc = http_form_finish(f);
    if (rc && fc->why && !strstr(http_form_why(f), fc->why)) {
        fprintf(stderr, "  '%s' lacks '%s'\n", http_form_why(f), fc->why);
        unit_failed_checks++;
    }
    free(f);
    return rc;
}

static void check_case(size_t i, int rc, const struct transcript *t)
{
    const struct form_case *fc = &cases[i];
    if (rc != fc->rc || (rc == 0 && strcmp(t->text, fc->transcript) != 0))
        fprintf(stderr, "  case %zu: rc %d, transcript \"%s\"\n", i, rc,
                t->text);
    CHECK_INT(rc, fc->rc);
    if (rc == 0)
        CHECK_STR(t->text, fc->transcript);
}

static void parses_forms_whole(void)
{
    struct transcript t;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        check_case(i, run_cuts(&cases[i], NULL, 0, &t), &t);
}

static void parses_forms_byte_by_byte(void)
{
    static size_t cuts[1024];
    struct transcript t;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        size_t n = strlen(cases[i].body);
        CHECK(n <= ARRAY_LEN(cuts));
        for (size_t k = 0; k + 1 < n && k < ARRAY_LEN(cuts); k++)
            cuts[k] = k + 1;
        check_case(i, run_cuts(&cases[i], cuts, n ? n - 1 : 0, &t), &t);
    }
}

static void parses_forms_cut_anywhere(void)
{
    struct transcript t;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        size_t n = strlen(cases[i].body);
        for (size_t cut = 0; cut <= n; cut++)
            check_case(i, run_cuts(&cases[i], &cut, 1, &t), &t);
    }
}

/* Bounds: a head over HTTP_FORM_HEAD_MAX, a collected value over
 * HTTP_FORM_VALUE_MAX; a streamed part of any size is fine. */
static void bounds(void)
{
    static char body[3 * HTTP_FORM_VALUE_MAX];
    struct transcript t;
    struct form_case fc = { CT, body, 0, NULL, NULL };
    size_t n = (size_t)snprintf(
        body, sizeof(body), D "\r\n" CD "name=a\r\nX: %0*d\r\n\r\nv\r\n" D "--",
        HTTP_FORM_HEAD_MAX, 0);
    CHECK(n < sizeof(body));
    fc.why = "headers are over";
    CHECK_INT(run_cuts(&fc, NULL, 0, &t), ERR_TOO_LARGE);
    for (int size = HTTP_FORM_VALUE_MAX; size <= HTTP_FORM_VALUE_MAX + 1;
         size++) {
        snprintf(body, sizeof(body),
                 D "\r\n" CD "name=a\r\n\r\n%0*d\r\n" D "--", size, 0);
        fc.why = "over 4096 bytes";
        CHECK_INT(run_cuts(&fc, NULL, 0, &t),
                  size > HTTP_FORM_VALUE_MAX ? ERR_TOO_LARGE : 0);
        snprintf(body, sizeof(body),
                 D "\r\n" CD "name=file\r\n\r\n%0*d\r\n" D "--", size * 2, 0);
        CHECK_INT(run_cuts(&fc, NULL, 0, &t), 0);
        CHECK_INT(t.len, strlen("[file||]~.") + (size_t)size * 2);
    }
}

static int refuse_file(void *arg, const struct http_form_part *p)
{
    (void)arg;
    return strcmp(p->name, "file") == 0 ? -42 : HTTP_FORM_COLLECT;
}

/* A callback's refusal stops the parser, which then keeps refusing. */
static void callbacks_stop_it(void)
{
    static const struct http_form_ops stop = { refuse_file, on_data, on_end };
    struct http_form f;
    struct transcript t = { .len = 0 };
    const char *body = cases[0].body;
    CHECK_INT(http_form_init(&f, CT, &stop, &t), 0);
    CHECK_INT(http_form_feed(&f, body, strlen(body)), -42);
    CHECK_INT(http_form_parts(&f), 3);
    CHECK_INT(http_form_feed(&f, "x", 1), -42);
    CHECK_INT(http_form_finish(&f), -42);
}

int main(void)
{
    unit_suite = "http_form";
    RUN(parses_forms_whole);
    RUN(parses_forms_byte_by_byte);
    RUN(parses_forms_cut_anywhere);
    RUN(bounds);
    RUN(callbacks_stop_it);
    return UNIT_END();
}
