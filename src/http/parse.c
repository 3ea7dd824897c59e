/* The request-head parser (RFC 9112 sections 2-7), pure: no I/O. */
#include "http.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

/* tchar of RFC 9110 5.6.2. */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Bytes a field value may hold: HTAB, SP, VCHAR, obs-text. */
static bool is_value_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

size_t http_unescape(char *s, bool plus)
{
    /* Most paths have nothing to decode: start at the first that may. */
    char *w = s + strcspn(s, plus ? "%+" : "%");
    for (const char *r = w; *r; r++) {
        int hi, lo;
        if (r[0] == '%' && (hi = hex_value(r[1])) >= 0 &&
            (lo = hex_value(r[2])) >= 0 && (hi | lo) != 0) {
            /* "%00" stays literal: a NUL would cut the string short and
             * make "/tasks/%00" look like "/tasks/", another route. */
            *w++ = (char)(hi * 16 + lo);
            r += 2;
        } else if (plus && *r == '+') {
            *w++ = ' ';
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

/* The next line of [*p, end): NUL-terminated in place (CRLF or LF), *p
 * moved past it. NULL when a CR is not followed by LF, or no line end. */
static char *next_line(char **p, char *end)
{
    char *s = *p;
    char *nl = memchr(s, '\n', (size_t)(end - s));
    if (!nl)
        return NULL;
    char *e = nl;
    if (e > s && e[-1] == '\r')
        e--;
    if (memchr(s, '\r', (size_t)(e - s)))
        return NULL; /* a bare CR inside a line */
    *e = '\0';
    *p = nl + 1;
    return s;
}

/* A Content-Length value: 1 to 18 digits (no sign, no list). */
static bool parse_length(const char *v, int64_t *out)
{
    size_t n = strlen(v);
    if (n == 0 || n > 18)
        return false;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        x = x * 10 + (v[i] - '0');
    }
    *out = x;
    return true;
}

/* Does the comma list `v` hold `token` (case-insensitive)? */
static bool list_has(const char *v, const char *token)
{
    size_t tn = strlen(token);
    while (*v) {
        while (is_ows(*v) || *v == ',')
            v++;
        const char *s = v;
        while (*v && *v != ',')
            v++;
        const char *e = v;
        while (e > s && is_ows(e[-1]))
            e--;
        if ((size_t)(e - s) == tn && strncasecmp(s, token, tn) == 0)
            return true;
    }
    return false;
}

/* Transfer-Encoding: only "chunked", once. */
static int check_coding(const char *v, const char **why)
{
    const char *s = v;
    while (is_ows(*s))
        s++;
    size_t n = strlen(s);
    while (n && is_ows(s[n - 1]))
        n--;
    if (n == 7 && strncasecmp(s, "chunked", 7) == 0)
        return 0;
    if (list_has(v, "chunked")) {
        *why = "Transfer-Encoding lists codings besides a single chunked";
        return HTTP_FAULT_CODING;
    }
    *why = "only the chunked transfer coding is supported";
    return HTTP_FAULT_CODING;
}

/* Host: a uri-host with an optional port; may be empty. */
static bool host_ok(const char *v)
{
    for (const char *p = v; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || strchr(".-_~:[]%!$&'()*+,;=", c)))
            return false;
    }
    return true;
}

/* The request line: method SP target SP HTTP/1.x. */
static int parse_request_line(char *line, struct http_head *h, const char **why)
{
    char *sp1 = strchr(line, ' ');
    if (!sp1 || sp1 == line || sp1 - line > 32) {
        *why = "the request line has no method";
        return HTTP_FAULT_MALFORMED;
    }
    for (char *p = line; p < sp1; p++) {
        if (!is_tchar((unsigned char)*p)) {
            *why = "the method is not a token";
            return HTTP_FAULT_MALFORMED;
        }
    }
    *sp1 = '\0';
    char *target = sp1 + 1;
    char *sp2 = strchr(target, ' ');
    if (!sp2 || sp2 == target) {
        *why = "the request line has no target";
        return HTTP_FAULT_MALFORMED;
    }
    *sp2 = '\0';
    for (char *p = target; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f) {
            *why = "the request target holds a byte outside visible ASCII";
            return HTTP_FAULT_MALFORMED;
        }
    }
    const char *ver = sp2 + 1;
    if (strncmp(ver, "HTTP/", 5) != 0 || strchr(ver, ' ')) {
        *why = "the request line does not end with an HTTP version";
        return HTTP_FAULT_MALFORMED;
    }
    if (strcmp(ver, "HTTP/1.1") == 0) {
        h->minor = 1;
    } else if (strcmp(ver, "HTTP/1.0") == 0) {
        h->minor = 0;
    } else {
        *why = "only HTTP/1.0 and HTTP/1.1 are served";
        return HTTP_FAULT_VERSION;
    }
    h->method = line;

    /* absolute-form: the path is what follows the authority. */
    if (strncasecmp(target, "http://", 7) == 0 ||
        strncasecmp(target, "https://", 8) == 0) {
        char *slash = strchr(strchr(target, ':') + 3, '/');
        if (!slash) {
            *why = "an absolute request target needs a path";
            return HTTP_FAULT_MALFORMED;
        }
        target = slash;
    } else if (target[0] != '/' && strcmp(target, "*") != 0) {
        *why = "the request target must begin with '/'";
        return HTTP_FAULT_MALFORMED;
    }
    char *q = strchr(target, '?');
    if (q) {
        *q = '\0';
        h->query = q + 1;
    }
    http_unescape(target, false);
    h->path = target;
    return 0;
}

/* One header line into h->h[]: name, colon, OWS, value, OWS. */
static int parse_field(char *line, struct http_head *h, const char **why)
{
    if (is_ows(line[0])) {
        *why = "a header line begins with whitespace (obs-fold)";
        return HTTP_FAULT_MALFORMED;
    }
    char *p = line;
    while (is_tchar((unsigned char)*p))
        p++;
    if (*p != ':' || p == line) {
        const char *q = p;
        while (is_ows(*q))
            q++;
        if (p != line && q != p && *q == ':') { /* "Host : x" (RFC 9112 5.1) */
            *why = "whitespace between a header name and its colon";
            return HTTP_FAULT_FRAMING;
        }
        *why = "a header line is not name: value";
        return HTTP_FAULT_MALFORMED;
    }
    *p++ = '\0';
    while (is_ows(*p))
        p++;
    char *v = p, *end = p + strlen(p);
    for (char *c = v; c < end; c++) {
        if (!is_value_byte((unsigned char)*c)) {
            *why = "a header value holds a control byte";
            return HTTP_FAULT_MALFORMED;
        }
    }
    while (end > v && is_ows(end[-1]))
        end--;
    *end = '\0';
    if (h->n >= HTTP_MAX_HEADERS) {
        *why = "more than 100 header fields";
        return HTTP_FAULT_HEAD_SIZE;
    }
    h->h[h->n].name = line;
    h->h[h->n].value = v;
    h->n++;
    return 0;
}

/* The framing and connection headers, once every field is in. */
static int check_framing(struct http_head *h, const char **why)
{
    int hosts = 0, te = 0;
    bool has_length = false;
    bool close = false, keep = false;
    for (size_t i = 0; i < h->n; i++) {
        const char *name = h->h[i].name, *v = h->h[i].value;
        if (strcasecmp(name, "Host") == 0) {
            hosts++;
            if (!host_ok(v)) {
                *why = "the Host header is not a host name";
                return HTTP_FAULT_MALFORMED;
            }
        } else if (strcasecmp(name, "Content-Length") == 0) {
            int64_t n;
            if (!parse_length(v, &n)) {
                *why = "Content-Length must be a decimal number of bytes";
                return HTTP_FAULT_LENGTH;
            }
            if (has_length && n != h->content_length) {
                *why = "two different Content-Length headers";
                return HTTP_FAULT_FRAMING;
            }
            has_length = true;
            h->content_length = n;
        } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
            te++;
            int rc = check_coding(v, why);
            if (rc)
                return rc;
        } else if (strcasecmp(name, "Connection") == 0) {
            close |= list_has(v, "close");
            keep |= list_has(v, "keep-alive");
        } else if (strcasecmp(name, "Expect") == 0) {
            h->expect_continue = strcasecmp(v, "100-continue") == 0;
        }
    }
    if (te > 1) {
        *why = "Transfer-Encoding is repeated";
        return HTTP_FAULT_FRAMING;
    }
    if (te && has_length) {
        *why = "both Content-Length and Transfer-Encoding";
        return HTTP_FAULT_FRAMING;
    }
    if (te && h->minor == 0) {
        *why = "Transfer-Encoding in an HTTP/1.0 request";
        return HTTP_FAULT_FRAMING;
    }
    if (h->minor == 1 && hosts != 1) {
        *why = hosts ? "the Host header is repeated"
                     : "an HTTP/1.1 request needs a Host header";
        return HTTP_FAULT_FRAMING;
    }
    h->chunked = te == 1;
    h->keep_alive = h->minor == 1 ? !close : keep && !close;
    return 0;
}

int http_parse_head(char *buf, size_t len, struct http_head *h,
                    const char **why)
{
    char *p = buf, *end = buf + len;
    /* The fields, not the table (1.6 KB): only h[0, n) is read. */
    memset(h, 0, offsetof(struct http_head, h));
    h->content_length = -1;
    *why = "";
    if (memchr(buf, '\0', len)) {
        *why = "the request head holds a NUL byte";
        return HTTP_FAULT_MALFORMED;
    }
    char *line = next_line(&p, end);
    if (!line) {
        *why = "a line ends with a bare CR, or the head is cut short";
        return HTTP_FAULT_MALFORMED;
    }
    int rc = parse_request_line(line, h, why);
    if (rc)
        return rc;
    for (;;) {
        line = next_line(&p, end);
        if (!line) {
            *why = "a line ends with a bare CR, or the head is cut short";
            return HTTP_FAULT_MALFORMED;
        }
        if (!line[0])
            break;
        rc = parse_field(line, h, why);
        if (rc)
            return rc;
    }
    if (p != end) {
        *why = "bytes after the end of the head";
        return HTTP_FAULT_MALFORMED;
    }
    return check_framing(h, why);
}
