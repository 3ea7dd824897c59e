/*
 * Talking to the endpoint through hh: calls with retries of 429/503, and
 * reporting the answers: errors on stderr with the server's code and
 * message, --json lines on stdout.
 */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ requests */

static void said_retry(void *arg, int rc, const struct errmsg *e,
                       const struct hh_answer *a, int64_t wait_ms)
{
    const char *code = a ? hh_jstr(a->json, "code") : NULL;
    (void)arg, (void)rc, (void)e;
    if (!a) /* no answer: not retried (see cli_retry) */
        return;
    fprintf(stderr, "paddock: HTTP %ld", a->status);
    if (code) {
        fputc(' ', stderr);
        cli_put_clean(stderr, code, 64);
    }
    fprintf(stderr, "; retrying in %lld s\n", (long long)(wait_ms / 1000));
}

/* A one-shot command rides out a few 429 and 503 answers (with the same
 * Idempotency-Key on a submit, so no second task), nothing else. */
static const struct hh_retry cli_retry = {
    .unit_ms = 1000,
    .throttled = CLI_RETRIES,
    .transient = 0,
    .busy_503 = true,
    .retry_after_max_ms = CLI_RETRY_AFTER_MAX_S * 1000LL,
    .on_retry = said_retry,
};

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

/* A call's outcome: a 200 with a JSON object, or the failure reported. */
static int judge(const struct cli *c, int rc, const struct errmsg *err,
                 const struct hh_answer *a)
{
    int ret = cli_request_exit(rc, err);
    if (ret != CLI_EXIT_OK)
        return ret;
    if (a->status == 200 && a->json)
        return CLI_EXIT_OK;
    cli_report_http(c, a);
    return CLI_EXIT_HTTP;
}

int cli_call(struct cli *c, const char *method, const char *path,
             struct hh_answer *a)
{
    struct hh_request q;
    struct errmsg err = { 0 };
    hh_req_init(&q, &c->ep, method, path);
    int rc = hh_call(&c->hc, &q, &cli_retry, a, &err);
    hh_request_fini(&q);
    return judge(c, rc, &err, a);
}

int cli_call_body(struct cli *c, const char *method, const char *path,
                  const struct buf *body, struct hh_answer *a)
{
    struct hh_request q;
    struct errmsg err = { 0 };
    hh_req_init(&q, &c->ep, method, path);
    hh_req_body(&q, "application/json", body->data, body->len);
    int rc = hh_call(&c->hc, &q, &cli_retry, a, &err);
    hh_request_fini(&q);
    return judge(c, rc, &err, a);
}

int cli_call_submit(struct cli *c, const struct buf *body, struct hh_answer *a)
{
    struct errmsg err = { 0 };
    int rc =
        hh_submit(&c->hc, body->data, body->len, c->idem, &cli_retry, a, &err);
    return judge(c, rc, &err, a);
}

/* -------------------------------------------------------------- answers */

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

void cli_print_json(const struct cli *c, const struct hh_answer *a)
{
    if (!c->o.json || !a->json)
        return;
    const char *b = a->body.data;
    size_t n = a->body.len;
    while (n > 0 && (b[n - 1] == '\n' || b[n - 1] == '\r' || b[n - 1] == ' ' ||
                     b[n - 1] == '\t'))
        n--;
    /* The server's own bytes when they fit on one line (JSON strings hold
     * no raw control characters, or jansson would have refused them). */
    if (!memchr(b, '\n', n) && !memchr(b, '\r', n)) {
        fwrite(b, 1, n, stdout);
    } else {
        char *line = json_dumps(a->json, JSON_COMPACT);
        fputs(line ? line : "{}", stdout);
        free(line);
    }
    fputc('\n', stdout);
    fflush(stdout);
}

void cli_report_http(const struct cli *c, const struct hh_answer *a)
{
    const char *code = hh_jstr(a->json, "code");
    const char *msg = hh_jstr(a->json, "message");
    const char *rid = hh_jstr(a->json, "request_id");
    long st = a->status;

    cli_print_json(c, a);
    fprintf(stderr, "paddock: HTTP %ld", st);
    if (code) {
        fputc(' ', stderr);
        cli_put_clean(stderr, code, 64);
    }
    if (msg) {
        fputs(": ", stderr);
        cli_put_clean(stderr, msg, CLI_SHOW_MAX);
    } else if (!a->json && a->body.len) {
        fputs(": ", stderr);
        cli_put_clean(stderr, a->body.data, 200);
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

int cli_report_status(const char *task_id, const struct hh_task *t)
{
    if (t->status == HH_SUCCEEDED)
        return CLI_EXIT_OK;
    fprintf(stderr, "paddock: task %s ", task_id);
    switch (t->status) {
    case HH_FAILED:
        fputs("FAILED: ", stderr);
        cli_put_clean(stderr, t->code ? t->code : "(no code)", 64);
        fputs(": ", stderr);
        cli_put_clean(stderr, t->message ? t->message : "(no message)",
                      CLI_SHOW_MAX);
        fputc('\n', stderr);
        return CLI_EXIT_TASK;
    case HH_CANCELED:
        fputs("was CANCELED\n", stderr);
        return CLI_EXIT_TASK;
    case HH_NONE:
    case HH_UNKNOWN:
        fputs("is UNKNOWN: no such task for this key and endpoint, or it "
              "has expired\n",
              stderr);
        return CLI_EXIT_TASK;
    default:
        fprintf(stderr, "is %s, not finished\n", t->status_text);
        return CLI_EXIT_UNFINISHED;
    }
}

const char *cli_video_url(const char *task_id, const struct hh_task *t)
{
    if (t->video_url)
        return t->video_url;
    fprintf(stderr,
            "paddock: task %s SUCCEEDED but the answer has no http(s) "
            "output.video_url\n",
            task_id);
    return NULL;
}
