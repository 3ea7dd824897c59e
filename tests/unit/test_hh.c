/*
 * Unit tests of src/hh's pure parts: the checks, endpoints, requests and
 * answers as data, and the poll schedule as sequences. The synchronous
 * calls are tested in test_hh_client.c.
 */
#include "../../src/hh/hh.h"
#include "unit.h"

#include <stdlib.h>

/* ------------------------------------------------------------- checks */

static void checks(void)
{
    static const struct {
        const char *s;
        bool key, base, id, code;
    } cases[] = {
        { "abc", true, false, true, true },
        { "sk-0123_x.y", true, false, true, true },
        { "", false, false, false, false },
        { "has space", false, false, false, false },
        { "tab\there", false, false, false, false },
        { "nl\n", false, false, false, false },
        { "..", true, false, false, true },
        { ".", true, false, false, true },
        { "a/b", true, false, false, true },
        { "Vendor.GpuMelted", true, false, true, true },
        { "http://h", true, true, false, true },
        { "https://h:8080/x/", true, true, false, true },
        { "HTTP://H", true, true, false, true },
        { "http://", true, false, false, true },
        { "http:///x", true, false, false, true },
        { "http://:80", true, false, false, true },
        { "http://h/?a=b", true, false, false, true },
        { "http://h/#x", true, false, false, true },
        { "ftp://h", true, false, false, true },
        { "caf\xc3\xa9", false, false, false, false },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        const char *s = cases[i].s;
        if (hh_key_ok(s) != cases[i].key || hh_base_ok(s) != cases[i].base ||
            hh_id_ok(s) != cases[i].id || hh_code_ok(s) != cases[i].code) {
            fprintf(stderr, "  case %zu '%s': key %d base %d id %d code %d\n",
                    i, s, hh_key_ok(s), hh_base_ok(s), hh_id_ok(s),
                    hh_code_ok(s));
            CHECK(false);
        }
    }
    char longer[HH_ID_MAX + 2];
    memset(longer, 'a', sizeof(longer) - 1);
    longer[HH_ID_MAX] = '\0';
    CHECK(hh_id_ok(longer));
    longer[HH_ID_MAX] = 'a';
    longer[HH_ID_MAX + 1] = '\0';
    CHECK(!hh_id_ok(longer));
    char code[TASK_CODE_MAX + 1];
    memset(code, 'C', sizeof(code) - 1);
    code[TASK_CODE_MAX] = '\0';
    CHECK(!hh_code_ok(code));
    code[TASK_CODE_MAX - 1] = '\0';
    CHECK(hh_code_ok(code));
    CHECK(!hh_key_ok(NULL) && !hh_base_ok(NULL) && !hh_id_ok(NULL) &&
          !hh_code_ok(NULL));
    CHECK_STR(hh_dialect_name(HH_DASHSCOPE), "DashScope");
    CHECK_STR(hh_dialect_name(HH_TTAPI), "TTAPI");
}

/* ----------------------------------------------------------- endpoint */

static void endpoints(void)
{
    static const struct {
        enum hh_dialect d;
        const char *base, *key, *root, *auth;
    } good[] = {
        { HH_DASHSCOPE, "https://dashscope.aliyuncs.com", "sk-1",
          "https://dashscope.aliyuncs.com", "Authorization: Bearer sk-1" },
        { HH_DASHSCOPE, "http://127.0.0.1:8080//", "k", "http://127.0.0.1:8080",
          "Authorization: Bearer k" },
        { HH_TTAPI, "https://api.ttapi.io", "tt",
          "https://api.ttapi.io/happyhorse", "TT-API-KEY: tt" },
        { HH_TTAPI, "https://api.ttapi.io/happyhorse/", "tt",
          "https://api.ttapi.io/happyhorse", "TT-API-KEY: tt" },
        { HH_TTAPI, "http://h/HappyHorse", "tt", "http://h/HappyHorse",
          "TT-API-KEY: tt" },
        /* DashScope keeps a path that merely looks like TTAPI's. */
        { HH_DASHSCOPE, "http://h/happyhorse", "k", "http://h/happyhorse",
          "Authorization: Bearer k" },
    };
    struct hh_endpoint ep;
    struct errmsg e = { 0 };
    for (size_t i = 0; i < ARRAY_LEN(good); i++) {
        CHECK_INT(
            hh_endpoint_init(&ep, good[i].d, good[i].base, good[i].key, &e), 0);
        CHECK_STR(ep.root, good[i].root);
        CHECK_STR(ep.auth, good[i].auth);
        CHECK_INT(ep.dialect, good[i].d);
        hh_endpoint_fini(&ep);
        CHECK(ep.root == NULL && ep.auth == NULL);
    }
    /* Refusals name what is wrong, never the key. */
    CHECK_INT(hh_endpoint_init(&ep, HH_DASHSCOPE, "ftp://h", "k", &e),
              ERR_INVALID_PARAMETER);
    CHECK(strstr(e.text, "base URL") != NULL);
    hh_endpoint_fini(&ep);
    CHECK_INT(hh_endpoint_init(&ep, HH_DASHSCOPE, "http://h", "SECRET KEY", &e),
              ERR_INVALID_PARAMETER);
    CHECK(strstr(e.text, "API key") && !strstr(e.text, "SECRET"));
    hh_endpoint_fini(&ep);
    hh_endpoint_fini(NULL);
}

/* ----------------------------------------------------------- requests */

/* The header lines of q, joined by '|'. */
static void lines_of(const struct hh_request *q, char *out, size_t size)
{
    const char *lines[HH_HEADERS_MAX];
    struct net_http_req r;
    size_t n = 0;
    hh_request_net(q, lines, &r);
    out[0] = '\0';
    for (size_t i = 0; i < r.n_headers; i++)
        n += (size_t)snprintf(out + n, size - n, "%s%s", i ? "|" : "",
                              r.headers[i]);
    CHECK(r.max_bytes == HH_JSON_BYTES && r.timeout_ms == 0 && !r.stop);
}

static void requests(void)
{
    struct hh_endpoint ds, tt;
    struct hh_request q;
    struct errmsg e = { 0 };
    char got[1024];
    const char body[] = "{\"model\":\"m\"}";
    CHECK_INT(hh_endpoint_init(&ds, HH_DASHSCOPE, "http://h", "k", &e), 0);
    CHECK_INT(hh_endpoint_init(&tt, HH_TTAPI, "http://h", "k", &e), 0);

    CHECK_INT(hh_req_submit(&q, &ds, body, strlen(body), "idem-1", &e), 0);
    CHECK_STR(q.url, "http://h" HH_SUBMIT_PATH);
    CHECK_STR(q.method, "POST");
    lines_of(&q, got, sizeof(got));
    CHECK_STR(got, "Authorization: Bearer k|Accept: application/json|"
                   "Content-Type: application/json|X-DashScope-Async: enable|"
                   "Idempotency-Key: idem-1");
    CHECK(q.body == body && q.body_len == strlen(body));
    hh_request_fini(&q);

    /* TTAPI: no async header; no key given, no Idempotency-Key. */
    CHECK_INT(hh_req_submit(&q, &tt, body, strlen(body), NULL, &e), 0);
    CHECK_STR(q.url, "http://h/happyhorse" HH_SUBMIT_PATH);
    lines_of(&q, got, sizeof(got));
    CHECK_STR(got, "TT-API-KEY: k|Accept: application/json|"
                   "Content-Type: application/json");
    hh_request_fini(&q);

    char idem[HH_IDEM_MAX + 2];
    memset(idem, 'i', sizeof(idem) - 1);
    idem[sizeof(idem) - 1] = '\0';
    CHECK_INT(hh_req_submit(&q, &ds, body, 1, idem, &e), ERR_INVALID_PARAMETER);
    hh_request_fini(&q);
    CHECK_INT(hh_req_submit(&q, &ds, body, 1, "a\r\nX: y", &e),
              ERR_INVALID_PARAMETER);
    hh_request_fini(&q);

    CHECK_INT(hh_req_query(&q, &tt, "up-1", &e), 0);
    CHECK_STR(q.url, "http://h/happyhorse/api/v1/tasks/up-1");
    CHECK_STR(q.method, "GET");
    lines_of(&q, got, sizeof(got));
    CHECK_STR(got, "TT-API-KEY: k|Accept: application/json");
    hh_request_fini(&q);
    static const char *const bad_ids[] = { "", "..", "../x", "a?b", "a b" };
    for (size_t i = 0; i < ARRAY_LEN(bad_ids); i++) {
        CHECK_INT(hh_req_query(&q, &ds, bad_ids[i], &e), ERR_INVALID_PARAMETER);
        CHECK(q.url == NULL);
        hh_request_fini(&q);
    }

    hh_req_init(&q, &ds, "POST", "/api/v1/uploads");
    hh_req_body(&q, "application/octet-stream", "xyz", 3);
    lines_of(&q, got, sizeof(got));
    CHECK_STR(got, "Authorization: Bearer k|Accept: application/json|"
                   "Content-Type: application/octet-stream");
    hh_request_fini(&q);
    hh_request_fini(NULL);
    hh_endpoint_fini(&ds);
    hh_endpoint_fini(&tt);
}

/* ------------------------------------------------------------ answers */

#define DONE_USAGE                                                       \
    "\"usage\":{\"output_video_duration\":7,\"input_video_duration\":2," \
    "\"SR\":720,\"ratio\":\"1:1\"}"

static void answers(void)
{
    static const struct {
        const char *body;
        enum hh_status status;
        const char *text, *id;
        int progress;
        const char *url, *code, *msg;
        double out_s, in_s;
        int sr;
        const char *ratio;
    } cases[] = {
        { "{\"output\":{\"task_id\":\"t-1\",\"task_status\":\"PENDING\"}}",
          HH_PENDING, "PENDING", "t-1", -1, NULL, NULL, NULL, -1, -1, 0, "" },
        { "{\"output\":{\"task_id\":\"t-1\",\"task_status\":\"RUNNING\","
          "\"progress\":40.7}}",
          HH_RUNNING, "RUNNING", "t-1", 40, NULL, NULL, NULL, -1, -1, 0, "" },
        { "{\"output\":{\"task_status\":\"RUNNING\",\"progress\":\"45%\"}}",
          HH_RUNNING, "RUNNING", NULL, 45, NULL, NULL, NULL, -1, -1, 0, "" },
        { "{\"output\":{\"task_status\":\"RUNNING\",\"progress\":250}}",
          HH_RUNNING, "RUNNING", NULL, 100, NULL, NULL, NULL, -1, -1, 0, "" },
        { "{\"output\":{\"task_status\":\"RUNNING\",\"progress\":-3}}",
          HH_RUNNING, "RUNNING", NULL, -1, NULL, NULL, NULL, -1, -1, 0, "" },
        { "{\"output\":{\"task_id\":\"t-1\",\"task_status\":\"SUCCEEDED\","
          "\"video_url\":\"https://x/v.mp4?sig=1\"}," DONE_USAGE "}",
          HH_SUCCEEDED, "SUCCEEDED", "t-1", -1, "https://x/v.mp4?sig=1", NULL,
          NULL, 7, 2, 720, "1:1" },
        /* Usage inside output; duration when output_video_duration is not
         * there; values out of range dropped. */
        { "{\"output\":{\"task_status\":\"SUCCEEDED\",\"video_url\":"
          "\"ftp://x/v\",\"usage\":{\"duration\":5,\"input_video_duration\":"
          "-1,\"SR\":721,\"ratio\":\"1234567\"}}}",
          HH_SUCCEEDED, "SUCCEEDED", NULL, -1, NULL, NULL, NULL, 5, -1, 0, "" },
        { "{\"usage\":{\"output_video_duration\":5000},\"output\":{"
          "\"task_status\":\"SUCCEEDED\"}}",
          HH_SUCCEEDED, "SUCCEEDED", NULL, -1, NULL, NULL, NULL, -1, -1, 0,
          "" },
        { "{\"output\":{\"task_status\":\"FAILED\",\"code\":"
          "\"Vendor.GpuMelted\",\"message\":\"the GPU melted\"}}",
          HH_FAILED, "FAILED", NULL, -1, NULL, "Vendor.GpuMelted",
          "the GPU melted", -1, -1, 0, "" },
        { "{\"output\":{\"task_status\":\"FAILED\",\"code\":\"bad code\"}}",
          HH_FAILED, "FAILED", NULL, -1, NULL, NULL, NULL, -1, -1, 0, "" },
        { "{\"output\":{\"task_status\":\"CANCELED\"}}", HH_CANCELED,
          "CANCELED", NULL, -1, NULL, NULL, NULL, -1, -1, 0, "" },
        { "{\"output\":{\"task_status\":\"UNKNOWN\"}}", HH_UNKNOWN, "UNKNOWN",
          NULL, -1, NULL, NULL, NULL, -1, -1, 0, "" },
        { "{\"output\":{\"task_status\":\"Queued\\u001b[2J\"}}", HH_OTHER,
          "Q????????J", NULL, -1, NULL, NULL, NULL, -1, -1, 0, "" },
        /* TTAPI's wrapper, with and without "output" inside. */
        { "{\"status\":\"SUCCESS\",\"data\":{\"task_id\":\"tt-9\","
          "\"status\":\"RUNNING\",\"progress\":10}}",
          HH_RUNNING, "RUNNING", "tt-9", 10, NULL, NULL, NULL, -1, -1, 0, "" },
        { "{\"data\":{\"output\":{\"task_id\":\"tt-9\",\"task_status\":"
          "\"SUCCEEDED\",\"video_url\":\"http://v\"}}}",
          HH_SUCCEEDED, "SUCCEEDED", "tt-9", -1, "http://v", NULL, NULL, -1, -1,
          0, "" },
        /* Nothing to read. */
        { "{\"code\":\"InvalidApiKey\",\"message\":\"no\"}", HH_NONE, "", NULL,
          -1, NULL, NULL, NULL, -1, -1, 0, "" },
        { "[1,2]", HH_NONE, "", NULL, -1, NULL, NULL, NULL, -1, -1, 0, "" },
        { "<html>bad gateway</html>", HH_NONE, "", NULL, -1, NULL, NULL, NULL,
          -1, -1, 0, "" },
        { "", HH_NONE, "", NULL, -1, NULL, NULL, NULL, -1, -1, 0, "" },
        { "{\"output\":{\"task_id\":\"../x\",\"task_status\":7}}", HH_NONE, "",
          NULL, -1, NULL, NULL, NULL, -1, -1, 0, "" },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct hh_answer a;
        struct hh_task t;
        hh_answer_parse(&a, 200, -1, cases[i].body, strlen(cases[i].body));
        hh_task_read(&a, &t);
        int before = unit_failed_checks;
        CHECK_INT(t.status, cases[i].status);
        CHECK_STR(t.status_text, cases[i].text);
        CHECK(cases[i].id ? t.task_id && strcmp(t.task_id, cases[i].id) == 0
                          : !t.task_id);
        CHECK_INT(t.progress, cases[i].progress);
        CHECK(cases[i].url
                  ? t.video_url && strcmp(t.video_url, cases[i].url) == 0
                  : !t.video_url);
        CHECK(cases[i].code ? t.code && strcmp(t.code, cases[i].code) == 0
                            : !t.code);
        CHECK(cases[i].msg ? t.message && strcmp(t.message, cases[i].msg) == 0
                           : !t.message);
        CHECK(t.usage.output_s == cases[i].out_s &&
              t.usage.input_s == cases[i].in_s);
        CHECK_INT(t.usage.sr, cases[i].sr);
        CHECK_STR(t.usage.ratio, cases[i].ratio);
        CHECK(a.body.len == strlen(cases[i].body) && a.body.data &&
              a.body.data[a.body.len] == '\0');
        if (unit_failed_checks != before)
            fprintf(stderr, "  answer %zu: %s\n", i, cases[i].body);
        hh_answer_fini(&a);
    }
    CHECK(hh_status_terminal(HH_SUCCEEDED) && hh_status_terminal(HH_FAILED) &&
          hh_status_terminal(HH_CANCELED) && hh_status_terminal(HH_UNKNOWN));
    CHECK(!hh_status_terminal(HH_PENDING) && !hh_status_terminal(HH_RUNNING) &&
          !hh_status_terminal(HH_OTHER) && !hh_status_terminal(HH_NONE));

    /* From a net_http response: its body is taken. */
    struct net_http_resp resp = { .status = 429, .retry_after_s = 3 };
    buf_puts(&resp.body, "{\"code\":\"Throttling\"}");
    struct hh_answer a;
    hh_answer_take(&a, &resp);
    CHECK(resp.body.data == NULL && a.status == 429 && a.retry_after_s == 3);
    CHECK_STR(hh_jstr(a.json, "code"), "Throttling");
    CHECK(hh_jstr(a.json, "nope") == NULL && hh_jstr(NULL, "code") == NULL);
    net_http_resp_fini(&resp);
    hh_answer_fini(&a);
    struct net_http_resp none = { .status = 204, .retry_after_s = -1 };
    hh_answer_take(&a, &none);
    CHECK(a.body.data && a.body.len == 0 && !a.json && !a.output);
    hh_answer_fini(&a);
    hh_answer_fini(NULL);
}

static void say(void)
{
    static const struct {
        long status;
        const char *body, *says;
    } cases[] = {
        { 401, "{\"code\":\"InvalidApiKey\",\"message\":\"Invalid API-key.\"}",
          "HTTP 401 InvalidApiKey: Invalid API-key." },
        { 503, "{\"code\":\"ServiceUnavailable\"}",
          "HTTP 503 ServiceUnavailable" },
        { 502, "<html>bad gateway</html>", "HTTP 502" },
        { 400, "{\"code\":\"not ok\",\"message\":\"m\"}", "HTTP 400: m" },
    };
    char out[HH_SAY_MAX + 64];
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct hh_answer a;
        hh_answer_parse(&a, cases[i].status, -1, cases[i].body,
                        strlen(cases[i].body));
        hh_say(&a, out, sizeof(out));
        CHECK_STR(out, cases[i].says);
        hh_answer_fini(&a);
    }
    /* A long message is cut. */
    struct buf b = BUF_INIT;
    buf_puts(&b, "{\"message\":\"");
    for (int i = 0; i < 2 * HH_SAY_MAX; i++)
        buf_putc(&b, 'm');
    buf_puts(&b, "\"}");
    struct hh_answer a;
    hh_answer_parse(&a, 500, -1, b.data, b.len);
    hh_say(&a, out, sizeof(out));
    CHECK_INT(strlen(out), strlen("HTTP 500: ") + HH_SAY_MAX);
    hh_answer_fini(&a);
    buf_fini(&b);
}

/* ----------------------------------------------------------- schedule */

static void schedule(void)
{
    static const struct {
        int64_t min, max, retry_max;
        int retry_after[8]; /* per call; -1 none */
        int64_t waits[8];   /* what each call gives; 0 ends the list */
    } cases[] = {
        /* x1.5 up to the maximum. */
        { 1000,
          5000,
          300000,
          { -1, -1, -1, -1, -1, -1 },
          { 1000, 1500, 2250, 3375, 5000, 5000 } },
        /* A Retry-After lengthens the one wait it comes with, only. */
        { 1000,
          5000,
          300000,
          { -1, 4, -1, 1, 0, -1 },
          { 1000, 4000, 2250, 3375, 5000, 5000 } },
        /* capped */
        { 100, 300, 2000, { 60, -1, 3600 }, { 2000, 150, 2000 } },
        /* min == max: a steady pace */
        { 10, 10, 60000, { -1, -1, -1 }, { 10, 10, 10 } },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct hh_sched s;
        hh_sched_init(&s, cases[i].min, cases[i].max, cases[i].retry_max);
        for (size_t k = 0; k < 8 && cases[i].waits[k]; k++) {
            int64_t got = hh_sched_next(&s, cases[i].retry_after[k]);
            if (got != cases[i].waits[k]) {
                fprintf(stderr, "  schedule %zu call %zu: %lld, not %lld\n", i,
                        k, (long long)got, (long long)cases[i].waits[k]);
                CHECK(false);
            }
        }
    }
    struct hh_sched s;
    hh_sched_init(&s, 1000, 5000, 60000);
    for (int k = 0; k < 10; k++)
        hh_sched_next(&s, -1);
    hh_sched_reset(&s);
    CHECK_INT(hh_sched_next(&s, -1), 1000);
    CHECK_INT(hh_sched_next(&s, -1), 1500);
}

int main(void)
{
    unit_suite = "hh";
    RUN(checks);
    RUN(endpoints);
    RUN(requests);
    RUN(answers);
    RUN(say);
    RUN(schedule);
    return UNIT_END();
}
