/*
 * Talking to the endpoint: one request with the dialect's headers, retries
 * of 429/503, reading answers (jansson), and reporting them: errors on
 * stderr with the server's code and message, --json lines on stdout.
 */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------ requests */

/* One request; `type` names the body's Content-Type (NULL: no body). A
 * submit carries the dialect's async header and this run's
 * Idempotency-Key. */
static int request(struct cli *c, const char *method, const char *path,
                   const char *type, const void *data, size_t len, bool submit,
                   int64_t timeout_ms, struct cli_reply *rep,
                   struct errmsg *err)
{
    const char *headers[5];
    size_t n = 0;
    char idem[64], ctype[80];

    memset(rep, 0, sizeof(*rep));
    headers[n++] = c->ep.auth;
    headers[n++] = "Accept: application/json";
    if (type) {
        snprintf(ctype, sizeof(ctype), "Content-Type: %s", type);
        headers[n++] = ctype;
    }
    if (submit && c->ep.dialect == CLI_DASHSCOPE)
        headers[n++] = "X-DashScope-Async: enable";
    if (submit) { /* a retried submit must not make a second task */
        snprintf(idem, sizeof(idem), "Idempotency-Key: %s", c->idem);
        headers[n++] = idem;
    }
    char *url = xasprintf("%s%s", c->ep.root, path);
    struct net_http_req req = {
        .method = method,
        .url = url,
        .headers = headers,
        .n_headers = n,
        .body = data,
        .body_len = len,
        .max_bytes = CLI_JSON_BYTES,
        .timeout_ms = timeout_ms,
        .stop = c->stop,
    };
    int ret = net_http_request(c->http, &req, &rep->r, err);
    free(url);
    if (ret < 0)
        return ret;
    json_error_t jerr;
    json_t *j = json_loadb(rep->r.body.data ? rep->r.body.data : "",
                           rep->r.body.len, 0, &jerr);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    rep->json = j;
    return 0;
}

int cli_request(struct cli *c, const char *method, const char *path,
                const struct buf *body, struct cli_reply *rep,
                struct errmsg *err)
{
    bool submit = c->cmd == CLI_SUBMIT && body;
    return request(c, method, path, body ? "application/json" : NULL,
                   body ? body->data : NULL, body ? body->len : 0, submit,
                   submit ? CLI_SUBMIT_TIMEOUT_MS : CLI_CALL_TIMEOUT_MS, rep,
                   err);
}

int cli_request_file(struct cli *c, const char *path, const void *data,
                     size_t len, struct cli_reply *rep, struct errmsg *err)
{
    return request(c, "POST", path, "application/octet-stream", data, len,
                   false, CLI_UPLOAD_TIMEOUT_MS, rep, err);
}

void cli_reply_fini(struct cli_reply *rep)
{
    if (!rep)
        return;
    json_decref(rep->json);
    rep->json = NULL;
    net_http_resp_fini(&rep->r);
}

bool cli_nap(const struct cli *c, int64_t ms)
{
    int64_t end = clock_mono_ms() + ms;
    for (;;) {
        if (atomic_load(c->stop))
            return false;
        int64_t left = end - clock_mono_ms();
        if (left <= 0)
            return true;
        if (left > 200)
            left = 200;
        struct timespec ts = { 0, (long)left * 1000000L };
        nanosleep(&ts, NULL);
    }
}

static void say_code(const struct cli_reply *rep, char *out, size_t size)
{
    const char *code = cli_jstr(rep->json, "code");
    snprintf(out, size, "HTTP %ld%s%.64s", rep->r.status, code ? " " : "",
             code ? code : "");
}

int cli_request_exit(int rc, const struct errmsg *err)
{
    if (rc == ERR_STOPPED) {
        fprintf(stderr, "paddock: interrupted\n");
        return CLI_EXIT_INTERRUPTED;
    }
    if (rc < 0) {
        fprintf(stderr, "paddock: %s\n", errmsg_text(err));
        return CLI_EXIT_HTTP;
    }
    return CLI_EXIT_OK;
}

int cli_call(struct cli *c, const char *method, const char *path,
             const struct buf *body, struct cli_reply *rep)
{
    struct errmsg err = { 0 };
    for (int attempt = 0;; attempt++) {
        int ret = cli_request_exit(
            cli_request(c, method, path, body, rep, &err), &err);
        if (ret != CLI_EXIT_OK)
            return ret;
        long st = rep->r.status;
        if (st == 200 && rep->json)
            return CLI_EXIT_OK;
        if ((st == 429 || st == 503) && attempt < CLI_RETRIES) {
            int64_t s = rep->r.retry_after_s;
            if (s < 0)
                s = 1 << attempt;
            if (s > CLI_RETRY_AFTER_MAX_S)
                s = CLI_RETRY_AFTER_MAX_S;
            char what[96];
            say_code(rep, what, sizeof(what));
            fprintf(stderr, "paddock: %s; retrying in %lld s\n", what,
                    (long long)s);
            cli_reply_fini(rep);
            if (!cli_nap(c, s * 1000)) {
                fprintf(stderr, "paddock: interrupted\n");
                return CLI_EXIT_INTERRUPTED;
            }
            continue;
        }
        cli_report_http(c, rep);
        return CLI_EXIT_HTTP;
    }
}

/* -------------------------------------------------------------- answers */

const char *cli_jstr(const struct json_t *obj, const char *key)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

struct json_t *cli_output(const struct cli_reply *rep)
{
    json_t *out = json_object_get(rep->json, "output");
    if (json_is_object(out))
        return out;
    /* A TTAPI-style {"status": ..., "data": {...}} wrapper. */
    json_t *data = json_object_get(rep->json, "data");
    if (!json_is_object(data))
        return NULL;
    out = json_object_get(data, "output");
    if (json_is_object(out))
        return out;
    return json_object_get(data, "task_id") ? data : NULL;
}

void cli_put_clean(FILE *f, const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    for (; p[i] && i < max; i++) {
        unsigned char ch = p[i];
        /* C0 controls, DEL, and C1 controls encoded in UTF-8 (0xC2
         * 0x80..0x9F): a terminal may act on them. */
        if (ch < 0x20 || ch == 0x7f) {
            fputc(ch == '\t' ? ' ' : '?', f);
        } else if (ch == 0xc2 && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f) {
            fputc('?', f);
            i++;
        } else {
            fputc(ch, f);
        }
    }
    if (p[i])
        fputs("...", f);
}

void cli_print_json(const struct cli *c, const struct cli_reply *rep)
{
    if (!c->o.json || !rep->json)
        return;
    const char *b = rep->r.body.data;
    size_t n = rep->r.body.len;
    while (n > 0 && (b[n - 1] == '\n' || b[n - 1] == '\r' || b[n - 1] == ' ' ||
                     b[n - 1] == '\t'))
        n--;
    /* The server's own bytes when they fit on one line (JSON strings hold
     * no raw control characters, or jansson would have refused them). */
    if (!memchr(b, '\n', n) && !memchr(b, '\r', n)) {
        fwrite(b, 1, n, stdout);
    } else {
        char *line = json_dumps(rep->json, JSON_COMPACT);
        fputs(line ? line : "{}", stdout);
        free(line);
    }
    fputc('\n', stdout);
    fflush(stdout);
}

void cli_report_http(const struct cli *c, const struct cli_reply *rep)
{
    const char *code = cli_jstr(rep->json, "code");
    const char *msg = cli_jstr(rep->json, "message");
    const char *rid = cli_jstr(rep->json, "request_id");
    long st = rep->r.status;

    cli_print_json(c, rep);
    fprintf(stderr, "paddock: HTTP %ld", st);
    if (code) {
        fputc(' ', stderr);
        cli_put_clean(stderr, code, 64);
    }
    if (msg) {
        fputs(": ", stderr);
        cli_put_clean(stderr, msg, CLI_SHOW_MAX);
    } else if (!rep->json && rep->r.body.len) {
        fputs(": ", stderr);
        cli_put_clean(stderr, rep->r.body.data, 200);
    }
    if (rid) {
        fputs(" (request_id ", stderr);
        cli_put_clean(stderr, rid, 64);
        fputc(')', stderr);
    }
    if (st >= 300 && st <= 399)
        fputs(" (a redirect: check --base-url, e.g. https:// for http://)",
              stderr);
    else if (st == 200)
        fputs(": the answer is not a JSON object", stderr);
    else if (st == 404 && !code && !msg)
        fputs(" (check --base-url and --dialect)", stderr);
    fputc('\n', stderr);
}

int cli_report_status(const char *task_id, struct json_t *output)
{
    const char *st = cli_jstr(output, "task_status");
    if (!st)
        st = "UNKNOWN";
    if (strcmp(st, "SUCCEEDED") == 0)
        return CLI_EXIT_OK;
    fprintf(stderr, "paddock: task %s ", task_id);
    if (strcmp(st, "FAILED") == 0) {
        const char *code = cli_jstr(output, "code");
        const char *msg = cli_jstr(output, "message");
        fputs("FAILED: ", stderr);
        cli_put_clean(stderr, code ? code : "(no code)", 64);
        fputs(": ", stderr);
        cli_put_clean(stderr, msg ? msg : "(no message)", CLI_SHOW_MAX);
        fputc('\n', stderr);
        return CLI_EXIT_TASK;
    }
    if (strcmp(st, "CANCELED") == 0) {
        fputs("was CANCELED\n", stderr);
        return CLI_EXIT_TASK;
    }
    if (strcmp(st, "UNKNOWN") == 0) {
        fputs("is UNKNOWN: no such task for this key and endpoint, or it "
              "has expired\n",
              stderr);
        return CLI_EXIT_TASK;
    }
    fputs("is ", stderr);
    cli_put_clean(stderr, st, 32);
    fputs(", not finished\n", stderr);
    return CLI_EXIT_UNFINISHED;
}

const char *cli_video_url(const char *task_id, struct json_t *output)
{
    const char *url = cli_jstr(output, "video_url");
    if (url &&
        (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0))
        return url;
    fprintf(stderr,
            "paddock: task %s SUCCEEDED but the answer has no http(s) "
            "output.video_url\n",
            task_id);
    return NULL;
}
