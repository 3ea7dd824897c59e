/*
 * libFuzzer target for the multipart/form-data parser (src/http/form.c),
 * two ways, by the input's first byte:
 *
 * - raw: a Content-Type line, then the body, parsed twice, whole and in
 *   pieces whose sizes the first byte picks; both runs must agree (the
 *   same outcome, the same callbacks byte for byte, as a digest). Within a
 *   run: streamed and collected bytes never outnumber the body's, a
 *   collected value is NUL-terminated and within its bound, and a part's
 *   strings are there until its end.
 * - round trip: the input, cut at 0xff bytes, is the values of fields
 *   (the last one a file), encoded as a client would; parsed in pieces,
 *   every value must come back exactly.
 *
 * A crash, a sanitizer report or a disagreement is a bug.
 */
#include "../src/http/http.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
    uint64_t digest;
    size_t bytes; /* body bytes handed out, streamed or collected */
    bool in_part;
};

static void mix(struct run *r, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        r->digest = (r->digest ^ b[i]) * 1099511628211ull;
}

static void mix_str(struct run *r, const char *s)
{
    mix(r, s ? s : "\x01", s ? strlen(s) + 1 : 1);
}

/* The mode comes from the name: each kind gets exercised. */
static int on_part(void *arg, const struct http_form_part *p)
{
    struct run *r = arg;
    if (r->in_part || !p->name || !p->name[0])
        __builtin_trap();
    r->in_part = true;
    mix(r, "[", 1);
    mix_str(r, p->name);
    mix_str(r, p->filename);
    mix_str(r, p->type);
    switch ((unsigned char)p->name[0] % 4) {
    case 0:
        return HTTP_FORM_STREAM;
    case 1:
        return HTTP_FORM_SKIP;
    case 2:
        return p->name[1] == '!' ? -7 : HTTP_FORM_COLLECT; /* a refusal */
    default:
        return HTTP_FORM_COLLECT;
    }
}

static int on_data(void *arg, const void *d, size_t n)
{
    struct run *r = arg;
    if (!r->in_part || n == 0)
        __builtin_trap();
    r->bytes += n;
    mix(r, d, n);
    return 0;
}

static int on_end(void *arg, const struct http_form_part *p, const char *v,
                  size_t n)
{
    struct run *r = arg;
    if (!r->in_part || !p->name)
        __builtin_trap();
    r->in_part = false;
    if (v) {
        if (n > HTTP_FORM_VALUE_MAX || v[n] != '\0')
            __builtin_trap();
        r->bytes += n;
        mix(r, "=", 1);
        mix(r, v, n);
    }
    mix(r, "]", 1);
    return 0;
}

static const struct http_form_ops ops = { on_part, on_data, on_end };

/* One parse of body, in pieces of `step` bytes (0: whole). */
static int parse(const char *ct, const uint8_t *body, size_t n, size_t step,
                 struct run *r)
{
    static struct http_form f;
    *r = (struct run){ .digest = 14695981039346656037ull };
    int rc = http_form_init(&f, ct, &ops, r);
    for (size_t off = 0; rc == 0 && off < n;) {
        size_t k = step && n - off > step ? step : n - off;
        rc = http_form_feed(&f, body + off, k);
        off += k;
    }
    if (rc == 0)
        rc = http_form_finish(&f);
    if (r->bytes > n || (rc != 0) != (http_form_why(&f)[0] != '\0' || rc == -7))
        __builtin_trap();
    mix(r, &rc, sizeof(rc));
    return rc;
}

/* ------------------------------------------------------- round trip */

#define RT_PARTS 8
#define RT_B     "rt-boundary-0123"

struct rt {
    const uint8_t *want[RT_PARTS];
    size_t want_len[RT_PARTS];
    size_t n, at, got; /* parts, the one being read, its bytes so far */
};

static int rt_part(void *arg, const struct http_form_part *p)
{
    struct rt *r = arg;
    if (r->at >= r->n || p->name[0] != 'f' ||
        (size_t)(p->name[1] - '0') != r->at)
        __builtin_trap();
    r->got = 0;
    return r->at + 1 == r->n ? HTTP_FORM_STREAM : HTTP_FORM_COLLECT;
}

static int rt_data(void *arg, const void *d, size_t n)
{
    struct rt *r = arg;
    if (r->got + n > r->want_len[r->at] ||
        memcmp(r->want[r->at] + r->got, d, n) != 0)
        __builtin_trap();
    r->got += n;
    return 0;
}

static int rt_end(void *arg, const struct http_form_part *p, const char *v,
                  size_t n)
{
    struct rt *r = arg;
    (void)p;
    if (v && rt_data(r, v, n) != 0)
        __builtin_trap();
    if (r->got != r->want_len[r->at])
        __builtin_trap();
    r->at++;
    return 0;
}

static void round_trip(const uint8_t *data, size_t size, size_t step)
{
    static const struct http_form_ops rt_ops = { rt_part, rt_data, rt_end };
    static uint8_t body[1 << 17];
    static struct http_form f;
    struct rt r = { .n = 0 };
    size_t len = 0;
    const uint8_t *p = data, *end = data + size;
    while (r.n < RT_PARTS) {
        const uint8_t *cut = memchr(p, 0xff, (size_t)(end - p));
        const uint8_t *e = cut ? cut : end;
        r.want[r.n] = p;
        r.want_len[r.n] = (size_t)(e - p);
        r.n++;
        if (!cut)
            break;
        p = cut + 1;
    }
    for (size_t i = 0; i < r.n; i++) {
        if (r.want_len[i] > HTTP_FORM_VALUE_MAX ||
            len + r.want_len[i] + 256 > sizeof(body))
            return;
        /* A value holding the delimiter cannot be sent: a client picks
         * another boundary. */
        if (memmem(r.want[i], r.want_len[i], "\r\n--" RT_B, 4 + 16))
            return;
        len += (size_t)snprintf((char *)body + len, sizeof(body) - len,
                                "--" RT_B "\r\nContent-Disposition: "
                                "form-data; name=\"f%zu\"%s\r\n\r\n",
                                i, i + 1 == r.n ? "; filename=\"x\"" : "");
        memcpy(body + len, r.want[i], r.want_len[i]);
        len += r.want_len[i];
        memcpy(body + len, "\r\n", 2);
        len += 2;
    }
    len += (size_t)snprintf((char *)body + len, sizeof(body) - len,
                            "--" RT_B "--\r\n");
    if (http_form_init(&f, "multipart/form-data; boundary=" RT_B, &rt_ops,
                       &r) != 0)
        __builtin_trap();
    for (size_t off = 0; off < len;) {
        size_t k = len - off > step ? step : len - off;
        if (http_form_feed(&f, body + off, k) != 0)
            __builtin_trap();
        off += k;
    }
    if (http_form_finish(&f) != 0 || r.at != r.n)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t step = (size_t)(data[0] % 13) + 1;
    if (data[0] & 0x80) {
        round_trip(data + 1, size - 1, step);
        return 0;
    }
    const uint8_t *rest = data + 1;
    size_t n = size - 1;
    const uint8_t *nl = memchr(rest, '\n', n < 256 ? n : 256);
    if (!nl)
        return 0;
    char ct[257];
    size_t ct_len = (size_t)(nl - rest);
    memcpy(ct, rest, ct_len);
    ct[ct_len] = '\0';
    const uint8_t *body = nl + 1;
    n -= ct_len + 1;

    struct run whole, pieces;
    int a = parse(ct, body, n, 0, &whole);
    int b = parse(ct, body, n, step, &pieces);
    if (a != b || whole.digest != pieces.digest)
        __builtin_trap();
    return 0;
}
