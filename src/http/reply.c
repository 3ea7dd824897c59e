/* Replies: bodies, headers, files with ranges (RFC 9110 s.14), and the
 * status line of each code paddock sends. */
#include "http_int.h"

#include "../log/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
    int code;
    const char *line; /* "HTTP/1.1 200 OK\r\n" */
} statuses[] = {
    { 100, "HTTP/1.1 100 Continue\r\n" },
    { 200, "HTTP/1.1 200 OK\r\n" },
    { 201, "HTTP/1.1 201 Created\r\n" },
    { 202, "HTTP/1.1 202 Accepted\r\n" },
    { 204, "HTTP/1.1 204 No Content\r\n" },
    { 206, "HTTP/1.1 206 Partial Content\r\n" },
    { 301, "HTTP/1.1 301 Moved Permanently\r\n" },
    { 302, "HTTP/1.1 302 Found\r\n" },
    { 304, "HTTP/1.1 304 Not Modified\r\n" },
    { 400, "HTTP/1.1 400 Bad Request\r\n" },
    { 401, "HTTP/1.1 401 Unauthorized\r\n" },
    { 402, "HTTP/1.1 402 Payment Required\r\n" },
    { 403, "HTTP/1.1 403 Forbidden\r\n" },
    { 404, "HTTP/1.1 404 Not Found\r\n" },
    { 405, "HTTP/1.1 405 Method Not Allowed\r\n" },
    { 408, "HTTP/1.1 408 Request Timeout\r\n" },
    { 409, "HTTP/1.1 409 Conflict\r\n" },
    { 410, "HTTP/1.1 410 Gone\r\n" },
    { 411, "HTTP/1.1 411 Length Required\r\n" },
    { 413, "HTTP/1.1 413 Content Too Large\r\n" },
    { 414, "HTTP/1.1 414 URI Too Long\r\n" },
    { 415, "HTTP/1.1 415 Unsupported Media Type\r\n" },
    { 416, "HTTP/1.1 416 Range Not Satisfiable\r\n" },
    { 422, "HTTP/1.1 422 Unprocessable Content\r\n" },
    { 429, "HTTP/1.1 429 Too Many Requests\r\n" },
    { 431, "HTTP/1.1 431 Request Header Fields Too Large\r\n" },
    { 500, "HTTP/1.1 500 Internal Server Error\r\n" },
    { 501, "HTTP/1.1 501 Not Implemented\r\n" },
    { 502, "HTTP/1.1 502 Bad Gateway\r\n" },
    { 503, "HTTP/1.1 503 Service Unavailable\r\n" },
    { 504, "HTTP/1.1 504 Gateway Timeout\r\n" },
    { 505, "HTTP/1.1 505 HTTP Version Not Supported\r\n" },
};

void http_status_line(struct buf *out, int status)
{
    for (size_t i = 0; i < ARRAY_LEN(statuses); i++) {
        if (statuses[i].code == status) {
            buf_puts(out, statuses[i].line);
            return;
        }
    }
    /* Any other code: the reason phrase is optional (RFC 9112 s.4). */
    buf_printf(out, "HTTP/1.1 %03d \r\n", status);
}

void http_reply_take_body(struct http_reply *rep, int status,
                          const char *content_type, struct buf *body)
{
    free(rep->body);
    rep->status = status;
    rep->content_type = content_type;
    rep->body_len = body->len;
    rep->body = buf_take(body);
}

void http_reply_header(struct http_reply *rep, const char *name,
                       const char *value)
{
    if (rep->n_headers >= HTTP_MAX_REPLY_HEADERS) {
        log_warn("reply header dropped", "name=%s", name);
        return;
    }
    rep->headers[rep->n_headers].name = name;
    rep->headers[rep->n_headers].value = xstrdup(value);
    rep->n_headers++;
}

void http_reply_fini(struct http_reply *rep)
{
    free(rep->body);
    for (size_t i = 0; i < rep->n_headers; i++)
        free(rep->headers[i].value);
    if (rep->fd >= 0)
        close(rep->fd);
    *rep = (struct http_reply){ .fd = -1 };
}

/*
 * A single "bytes=" range against a file of `size` bytes: 1 with
 * [*from, *to] set, 0 to send the whole file (no Range, several ranges or
 * one we do not understand, which RFC 9110 s.14.2 lets us ignore), -1
 * when it cannot be satisfied (416).
 */
static int parse_range(const char *h, uint64_t size, uint64_t *from,
                       uint64_t *to)
{
    if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return 0;
    const char *p = h + 6, *dash = strchr(p, '-');
    if (!dash)
        return 0;
    char a[24] = "", b[24] = "";
    size_t na = (size_t)(dash - p), nb = strlen(dash + 1);
    if (na >= sizeof(a) || nb >= sizeof(b))
        return 0;
    memcpy(a, p, na);
    memcpy(b, dash + 1, nb);
    int64_t x, y;
    if (na == 0) { /* suffix: the last y bytes */
        if (parse_i64(b, 0, INT64_MAX, &y) < 0)
            return 0;
        if (y == 0 || size == 0)
            return -1;
        *from = (uint64_t)y >= size ? 0 : size - (uint64_t)y;
        *to = size - 1;
        return 1;
    }
    if (parse_i64(a, 0, INT64_MAX, &x) < 0)
        return 0;
    if (nb == 0) {
        y = INT64_MAX;
    } else if (parse_i64(b, 0, INT64_MAX, &y) < 0 || y < x) {
        return 0;
    }
    if ((uint64_t)x >= size)
        return -1;
    *from = (uint64_t)x;
    *to = (uint64_t)y >= size ? size - 1 : (uint64_t)y;
    return 1;
}

bool http_etag_matches(const char *inm, const char *quoted)
{
    size_t n = strlen(quoted);
    for (const char *p = inm; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        if (strncmp(p, quoted, n) == 0 &&
            (p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == '\t'))
            return true;
        p = strchr(p, ',');
    }
    return false;
}

int http_reply_file(struct http_req *req, struct http_reply *rep, int fd,
                    uint64_t size, const char *content_type, const char *etag)
{
    char range[96], quoted[136];
    uint64_t from = 0, to = 0;

    snprintf(quoted, sizeof(quoted), "\"%.128s\"", etag ? etag : "");
    http_reply_header(rep, "Accept-Ranges", "bytes");
    if (etag)
        http_reply_header(rep, "ETag", quoted);
    const char *inm = http_req_header(req, "If-None-Match");
    if (etag && inm && http_etag_matches(inm, quoted)) {
        close(fd);
        rep->status = 304;
        return 0;
    }
    int r = parse_range(http_req_header(req, "Range"), size, &from, &to);
    if (r < 0) {
        close(fd);
        snprintf(range, sizeof(range), "bytes */%llu",
                 (unsigned long long)size);
        http_reply_header(rep, "Content-Range", range);
        return ERR_RANGE;
    }
    rep->status = r ? 206 : 200;
    rep->content_type = content_type;
    rep->fd = fd;
    rep->offset = r ? from : 0;
    rep->length = r ? to - from + 1 : size;
    if (r) {
        snprintf(range, sizeof(range), "bytes %llu-%llu/%llu",
                 (unsigned long long)from, (unsigned long long)to,
                 (unsigned long long)size);
        http_reply_header(rep, "Content-Range", range);
    }
    return 0;
}
