/*
 * The multipart/form-data parser (RFC 7578, RFC 2046 s5.1), pure: bytes
 * in, callbacks out, nothing allocated. A body is a preamble, then parts
 * each opened by a delimiter line, then the closing delimiter and an
 * epilogue; the delimiter is CRLF "--" boundary, and the body's start
 * counts as a CRLF so the first one needs none.
 */
#include "http.h"

#include <string.h>
#include <strings.h>

enum state {
    F_PREAMBLE, /* looking for the first delimiter */
    F_AFTER,    /* after a delimiter: "--", or padding and CRLF */
    F_HEAD,     /* a part's headers, up to the empty line */
    F_BODY,     /* a part's body, up to the next delimiter */
    F_EPILOGUE, /* after the closing delimiter: ignored */
};

/* Where F_AFTER is in "--" / LWSP* CRLF. */
enum after { A_START, A_DASH, A_PAD, A_CR };

static int fail(struct http_form *f, int err, const char *why)
{
    f->err = err;
    f->why = why;
    return err;
}

/* bchars of RFC 2046 (a space too, but not last). */
static bool is_bchar(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') || (c && strchr("'()+_,-./:=? ", c));
}

/* tchar of RFC 9110 5.6.2. */
static bool is_tchar(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ows(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/*
 * One parameter of a header value at *p (just after a ';'): its name and
 * value (token or quoted-string, unescaped) NUL-terminated in place; *p
 * moved past it and the ';' that ends it. False when malformed.
 */
static bool next_param(char **p, char **name, char **value)
{
    char *s = (char *)skip_ows(*p);
    *name = s;
    while (is_tchar(*s))
        s++;
    if (s == *name)
        return false;
    char *name_end = s;
    s = (char *)skip_ows(s);
    if (*s != '=')
        return false;
    *name_end = '\0';
    s = (char *)skip_ows(s + 1);
    if (*s == '"') {
        char *w = ++s;
        *value = w;
        for (;; s++) {
            if (!*s)
                return false; /* no closing quote */
            if (*s == '"')
                break;
            if (*s == '\\' && s[1])
                s++;
            *w++ = *s;
        }
        s++;
        *w = '\0';
        s = (char *)skip_ows(s);
        if (*s && *s != ';')
            return false;
    } else {
        *value = s;
        while (is_tchar(*s))
            s++;
        if (s == *value)
            return false;
        char *end = s;
        s = (char *)skip_ows(s);
        if (*s && *s != ';')
            return false;
        if (*s == ';')
            s++;
        *end = '\0'; /* perhaps over that ';' */
        *p = s;
        return true;
    }
    if (*s == ';')
        s++;
    *p = s;
    return true;
}

/* Content-Disposition: form-data; name="..."[; filename="..."]. */
static int parse_disposition(struct http_form *f, char *v)
{
    if (strncasecmp(v, "form-data", 9) != 0 || is_tchar(v[9]))
        return fail(f, ERR_INVALID_PARAMETER,
                    "a part's Content-Disposition is not form-data");
    char *p = (char *)skip_ows(v + 9);
    if (*p != ';' && *p)
        return fail(f, ERR_INVALID_PARAMETER,
                    "a part's Content-Disposition is malformed");
    if (*p == ';')
        p++;
    while (*skip_ows(p)) {
        char *name, *value;
        if (!next_param(&p, &name, &value))
            return fail(f, ERR_INVALID_PARAMETER,
                        "a part's Content-Disposition is malformed");
        const char **slot = NULL;
        if (strcasecmp(name, "name") == 0)
            slot = &f->part.name;
        else if (strcasecmp(name, "filename") == 0 ||
                 strcasecmp(name, "filename*") == 0)
            slot = &f->part.filename;
        if (slot && *slot)
            return fail(f, ERR_INVALID_PARAMETER,
                        "a part's Content-Disposition repeats a parameter");
        if (slot)
            *slot = value;
    }
    if (!f->part.name || !f->part.name[0])
        return fail(f, ERR_INVALID_PARAMETER, "a part has no name");
    return 0;
}

/* The part's head in f->head[0, head_len), ending with CRLF CRLF (or
 * just CRLF when it has no header): fill f->part. */
static int parse_head(struct http_form *f)
{
    bool disposition = false;
    char *p = f->head, *end = f->head + f->head_len - 2; /* the last CRLF */
    f->part = (struct http_form_part){ 0 };
    *end = '\0';
    if (memchr(f->head, '\0', (size_t)(end - f->head)))
        return fail(f, ERR_INVALID_PARAMETER, "a part's head holds a NUL");
    while (p < end) {
        char *eol = strstr(p, "\r\n");
        char *line = p;
        if (!eol)
            return fail(f, ERR_INVALID_PARAMETER, "a part's head is cut");
        *eol = '\0';
        p = eol + 2;
        if (strpbrk(line, "\r\n"))
            return fail(f, ERR_INVALID_PARAMETER,
                        "a part's header line holds a bare CR or LF");
        char *colon = line;
        while (is_tchar(*colon))
            colon++;
        if (colon == line || *colon != ':')
            return fail(f, ERR_INVALID_PARAMETER,
                        "a part's header line is not name: value");
        *colon = '\0';
        char *v = (char *)skip_ows(colon + 1);
        for (char *c = v; *c; c++)
            if ((unsigned char)*c < 0x20 && *c != '\t')
                return fail(f, ERR_INVALID_PARAMETER,
                            "a part's header value holds a control byte");
        size_t vn = strlen(v);
        while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
            v[--vn] = '\0';
        if (strcasecmp(line, "Content-Disposition") == 0) {
            if (disposition)
                return fail(f, ERR_INVALID_PARAMETER,
                            "a part has two Content-Disposition headers");
            disposition = true;
            int rc = parse_disposition(f, v);
            if (rc)
                return rc;
        } else if (strcasecmp(line, "Content-Type") == 0) {
            f->part.type = v;
        }
    }
    if (!disposition)
        return fail(f, ERR_INVALID_PARAMETER,
                    "a part has no Content-Disposition");
    return 0;
}

int http_form_init(struct http_form *f, const char *content_type,
                   const struct http_form_ops *ops, void *arg)
{
    char ct[512];
    *f = (struct http_form){ .ops = ops, .arg = arg, .why = "" };
    if (!content_type || strlen(content_type) >= sizeof(ct))
        return fail(f, ERR_INVALID_PARAMETER,
                    "the Content-Type is not multipart/form-data");
    memcpy(ct, content_type, strlen(content_type) + 1);
    char *p = (char *)skip_ows(ct);
    if (strncasecmp(p, "multipart/form-data", 19) != 0 || is_tchar(p[19]))
        return fail(f, ERR_INVALID_PARAMETER,
                    "the Content-Type is not multipart/form-data");
    p = (char *)skip_ows(p + 19);
    const char *boundary = NULL;
    if (*p == ';') {
        p++;
        while (*skip_ows(p)) {
            char *name, *value;
            if (!next_param(&p, &name, &value))
                return fail(f, ERR_INVALID_PARAMETER,
                            "the Content-Type's parameters are malformed");
            if (strcasecmp(name, "boundary") == 0) {
                if (boundary)
                    return fail(f, ERR_INVALID_PARAMETER,
                                "the Content-Type has two boundaries");
                boundary = value;
            }
        }
    } else if (*p) {
        return fail(f, ERR_INVALID_PARAMETER,
                    "the Content-Type's parameters are malformed");
    }
    size_t n = boundary ? strlen(boundary) : 0;
    if (n == 0)
        return fail(f, ERR_INVALID_PARAMETER,
                    "the multipart/form-data Content-Type has no boundary");
    bool ok = n <= HTTP_FORM_BOUNDARY_MAX && boundary[n - 1] != ' ';
    for (size_t i = 0; ok && i < n; i++)
        ok = is_bchar(boundary[i]);
    if (!ok)
        return fail(f, ERR_INVALID_PARAMETER,
                    "the boundary is not 1 to 70 characters of RFC 2046");
    memcpy(f->delim, "\r\n--", 4);
    memcpy(f->delim + 4, boundary, n + 1);
    f->dlen = 4 + n;
    f->state = F_PREAMBLE;
    f->match = 2; /* the body's start stands for a CRLF */
    return 0;
}

/* Body bytes of the current part, as its mode says. */
static int emit(struct http_form *f, const char *d, size_t n)
{
    if (!n || f->state != F_BODY || f->mode == HTTP_FORM_SKIP)
        return 0;
    if (f->mode == HTTP_FORM_STREAM) {
        int rc = f->ops->data(f->arg, d, n);
        return rc < 0 ? fail(f, rc, "") : 0;
    }
    if (n > HTTP_FORM_VALUE_MAX - f->value_len)
        return fail(f, ERR_TOO_LARGE, "a form field is over 4096 bytes");
    memcpy(f->value + f->value_len, d, n);
    f->value_len += n;
    return 0;
}

/* A delimiter ended the body of the current part (or the preamble). */
static int delimiter(struct http_form *f)
{
    if (f->state == F_BODY) {
        bool collected = f->mode == HTTP_FORM_COLLECT;
        f->value[f->value_len] = '\0';
        int rc = f->ops->end(f->arg, &f->part, collected ? f->value : NULL,
                             collected ? f->value_len : 0);
        if (rc < 0)
            return fail(f, rc, "");
    }
    f->state = F_AFTER;
    f->sub = A_START;
    f->match = 0;
    return 0;
}

/* The part's head is complete: ask what to do with its body. */
static int begin_part(struct http_form *f)
{
    int rc = parse_head(f);
    if (rc)
        return rc;
    f->parts++;
    rc = f->ops->part(f->arg, &f->part);
    if (rc < 0)
        return fail(f, rc, "");
    if (rc != HTTP_FORM_COLLECT && rc != HTTP_FORM_STREAM &&
        rc != HTTP_FORM_SKIP)
        return fail(f, ERR_INVALID_PARAMETER, "no mode for a part");
    f->mode = rc;
    f->value_len = 0;
    f->state = F_BODY;
    f->match = 0;
    return 0;
}

/* F_AFTER: one byte of "--" or of LWSP* CRLF. */
static int after(struct http_form *f, char c)
{
    switch (f->sub) {
    case A_START:
        if (c == '-') {
            f->sub = A_DASH;
            return 0;
        }
        /* fall through */
    case A_PAD:
        if (c == ' ' || c == '\t') {
            f->sub = A_PAD;
            return 0;
        }
        if (c == '\r') {
            f->sub = A_CR;
            return 0;
        }
        return fail(f, ERR_INVALID_PARAMETER,
                    "a boundary line holds more than the boundary");
    case A_DASH:
        if (c != '-')
            return fail(f, ERR_INVALID_PARAMETER,
                        "a boundary line holds more than the boundary");
        f->state = F_EPILOGUE;
        return 0;
    default: /* A_CR */
        if (c != '\n')
            return fail(f, ERR_INVALID_PARAMETER,
                        "a boundary line does not end with CRLF");
        f->state = F_HEAD;
        f->head_len = 0;
        return 0;
    }
}

/* F_HEAD: one byte of a part's head. */
static int head_byte(struct http_form *f, char c)
{
    if (f->head_len >= HTTP_FORM_HEAD_MAX)
        return fail(f, ERR_TOO_LARGE, "a part's headers are over 1024 bytes");
    f->head[f->head_len++] = c;
    f->head[f->head_len] = '\0';
    size_t n = f->head_len;
    if ((n == 2 && memcmp(f->head, "\r\n", 2) == 0) ||
        (n >= 4 && memcmp(f->head + n - 4, "\r\n\r\n", 4) == 0))
        return begin_part(f);
    return 0;
}

/*
 * F_PREAMBLE and F_BODY: find the delimiter. f->match bytes of it were
 * seen and held back; since the boundary holds no CR, a mismatch can
 * only restart at a CR, so the held bytes are body (a plain restart,
 * no failure table needed). Returns the bytes used.
 */
static size_t scan(struct http_form *f, const char *d, size_t n, int *rc)
{
    size_t i = 0;
    *rc = 0;
    while (i < n) {
        if (f->match == 0) {
            const char *cr = memchr(d + i, '\r', n - i);
            size_t run = cr ? (size_t)(cr - (d + i)) : n - i;
            if ((*rc = emit(f, d + i, run)) != 0)
                return i;
            i += run;
            if (!cr)
                return i;
            f->match = 1;
            i++;
            continue;
        }
        if (d[i] == f->delim[f->match]) {
            i++;
            if (++f->match == f->dlen) {
                *rc = delimiter(f);
                return i;
            }
            continue;
        }
        /* Not the delimiter: what was held is body (or preamble, the
         * body's start among it), and d[i] is looked at again. */
        if ((*rc = emit(f, f->delim, f->match)) != 0)
            return i;
        f->match = 0;
    }
    return i;
}

int http_form_feed(struct http_form *f, const void *data, size_t n)
{
    const char *d = data;
    size_t i = 0;
    if (f->err)
        return f->err;
    while (i < n) {
        int rc = 0;
        switch (f->state) {
        case F_PREAMBLE:
        case F_BODY:
            i += scan(f, d + i, n - i, &rc);
            break;
        case F_AFTER:
            rc = after(f, d[i++]);
            break;
        case F_HEAD:
            rc = head_byte(f, d[i++]);
            break;
        default: /* F_EPILOGUE */
            return 0;
        }
        if (rc)
            return rc;
    }
    return 0;
}

int http_form_finish(struct http_form *f)
{
    if (f->err)
        return f->err;
    if (f->state != F_EPILOGUE)
        return fail(f, ERR_INVALID_PARAMETER,
                    f->state == F_PREAMBLE
                        ? "the body holds no boundary of its Content-Type"
                        : "the form ends before its closing boundary");
    return 0;
}

const char *http_form_why(const struct http_form *f)
{
    return f->why ? f->why : "";
}

size_t http_form_parts(const struct http_form *f)
{
    return f->parts;
}
