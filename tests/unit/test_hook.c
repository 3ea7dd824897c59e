/*
 * hook/'s pure parts: event names, the create body's checks, secrets, the
 * Standard Webhooks signature (the specification's own example), the
 * schedule option and the rule from an attempt to the next state.
 */
#include "../../src/hook/hook.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

static void events_by_name(void)
{
    CHECK_INT(hook_event_bit("task.running"), STORE_EV_RUNNING);
    CHECK_INT(hook_event_bit("task.canceled"), STORE_EV_CANCELED);
    CHECK_INT(hook_event_bit("task.cancelled"), 0);
    CHECK_INT(hook_event_bit(""), 0);
    CHECK_STR(hook_event_name(STORE_EV_FAILED), "task.failed");
    CHECK_STR(hook_event_name(3), "");
}

static int parse(const char *body, char *url, unsigned *ev, struct errmsg *e)
{
    memset(e, 0, sizeof(*e));
    return hook_request_parse(body, strlen(body), url, ev, e);
}

static void create_body_checks(void)
{
    static const struct {
        const char *body, *starts; /* NULL: accepted */
        unsigned events;
    } cases[] = {
        { "{\"url\":\"https://a.example/h\"}", NULL, STORE_EV_ALL },
        { "{\"url\":\"HTTP://a.example:8080/h?x=1\",\"events\":"
          "[\"task.failed\",\"task.succeeded\"]}",
          NULL, STORE_EV_FAILED | STORE_EV_SUCCEEDED },
        { "", "the body", 0 },
        { "[]", "the body", 0 },
        { "{\"url\":\"https://a.example/h\",\"url\":\"x\"}", "the body", 0 },
        { "{}", "url is required", 0 },
        { "{\"url\":null}", "url is required", 0 },
        { "{\"url\":\"file:///etc/passwd\"}", "url must be an http", 0 },
        { "{\"url\":\"http:///x\"}", "url must be a URL with a host", 0 },
        { "{\"url\":\"http://a b/\"}", "url must be a URL without", 0 },
        { "{\"url\":\"http://a\\u0000b/\"}", "the body", 0 },
        { "{\"url\":\"http://a/\",\"events\":\"task.failed\"}", "events must",
          0 },
        { "{\"url\":\"http://a/\",\"events\":[]}", "events must", 0 },
        { "{\"url\":\"http://a/\",\"events\":[1]}", "events[0]", 0 },
        { "{\"url\":\"http://a/\",\"events\":[\"task.failed\",\"x\"]}",
          "events[1]", 0 },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char url[LIMIT_WEBHOOK_URL + 1] = "";
        unsigned ev = 0;
        struct errmsg e;
        int rc = parse(cases[i].body, url, &ev, &e);
        if (!cases[i].starts) {
            CHECK_INT(rc, 0);
            CHECK_INT(ev, cases[i].events);
            CHECK(strncmp(url, "http", 4) == 0 || strncmp(url, "HTTP", 4) == 0);
        } else {
            CHECK_INT(rc, ERR_INVALID_PARAMETER);
            if (strncmp(errmsg_text(&e), cases[i].starts,
                        strlen(cases[i].starts)) != 0)
                CHECK_STR(errmsg_text(&e), cases[i].starts);
        }
    }
    /* The URL's length bound. */
    struct buf b = BUF_INIT;
    buf_puts(&b, "{\"url\":\"https://a.example/");
    for (int i = 0; i < LIMIT_WEBHOOK_URL; i++)
        buf_putc(&b, 'a');
    buf_puts(&b, "\"}");
    char url[LIMIT_WEBHOOK_URL + 1];
    unsigned ev;
    struct errmsg e;
    CHECK_INT(parse(b.data, url, &ev, &e), ERR_INVALID_PARAMETER);
    CHECK(strstr(errmsg_text(&e), "2048") != NULL);
    buf_fini(&b);
}

static void secrets_and_signatures(void)
{
    char a[LIMIT_WEBHOOK_SECRET + 1], b[LIMIT_WEBHOOK_SECRET + 1];
    CHECK_INT(hook_secret_new(a), 0);
    CHECK_INT(hook_secret_new(b), 0);
    CHECK(strncmp(a, "whsec_", 6) == 0);
    CHECK_INT(strlen(a), 6 + 44); /* base64 of 32 bytes */
    CHECK(strcmp(a, b) != 0);
    /* The example of the Standard Webhooks specification. */
    char sig[HOOK_SIGNATURE_MAX + 1];
    const char *body = "{\"test\": 2432232314}";
    CHECK_INT(hook_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                        "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
                        strlen(body), sig),
              0);
    CHECK_STR(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    CHECK_INT(hook_sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "m", 1, body,
                        strlen(body), sig),
              ERR_INVALID_PARAMETER);
    CHECK_INT(hook_sign("whsec_!!", "m", 1, body, strlen(body), sig),
              ERR_INVALID_PARAMETER);
}

static void schedule_option(void)
{
    struct hook_schedule s;
    struct errmsg e = { 0 };
    CHECK_INT(hook_schedule_parse(HOOK_SCHEDULE_DEFAULT, &s, &e), 0);
    CHECK_INT(s.n, 7);
    CHECK_INT(s.delay_ms[0], 5000);
    CHECK_INT(s.delay_ms[1], 300000);
    CHECK_INT(s.delay_ms[6], 36000000);
    CHECK_INT(hook_schedule_parse("200ms", &s, &e), 0);
    CHECK_INT(s.n, 1);
    CHECK_INT(hook_schedule_parse("", &s, &e), 0);
    CHECK_INT(s.n, 0); /* no retries: one attempt */
    static const char *const bad[] = { "5s,,5m",
                                       "5s,",
                                       "50ms",
                                       "2d",
                                       "5x",
                                       "1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,"
                                       "1s,1s,1s,1s,1s" };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        CHECK_INT(hook_schedule_parse(bad[i], &s, &e), ERR_INVALID_PARAMETER);
        CHECK(strncmp(errmsg_text(&e), "--webhook-schedule", 18) == 0);
    }
}

static void attempts_to_states(void)
{
    struct hook_schedule s = { .delay_ms = { 100, 1000 }, .n = 2 };
    struct store_delivery d = { .attempts = 1 };
    CHECK(!hook_outcome(&d, &s, false, 500, 10000));
    CHECK_INT(d.state, STORE_DLV_PENDING);
    CHECK_INT(d.next_ms, 10100);
    CHECK_INT(d.code, 500);
    d.attempts = 2;
    CHECK(!hook_outcome(&d, &s, false, 0, 20000));
    CHECK_INT(d.state, STORE_DLV_PENDING);
    CHECK_INT(d.next_ms, 21000);
    d.attempts = 3;
    CHECK(!hook_outcome(&d, &s, false, 301, 30000));
    CHECK_INT(d.state, STORE_DLV_DEAD);
    d.attempts = 4; /* a manual retry that failed too */
    CHECK(!hook_outcome(&d, &s, false, 500, 40000));
    CHECK_INT(d.state, STORE_DLV_DEAD);
    d.attempts = 1;
    CHECK(!hook_outcome(&d, &s, true, 204, 50000));
    CHECK_INT(d.state, STORE_DLV_DELIVERED);
    CHECK_INT(d.updated_ms, 50000);
    d.attempts = 1;
    CHECK(hook_outcome(&d, &s, false, 410, 60000)); /* disable it */
    CHECK_INT(d.state, STORE_DLV_DEAD);
    CHECK(strstr(d.error, "410") != NULL);
}

int main(void)
{
    unit_suite = "hook";
    RUN(events_by_name);
    RUN(create_body_checks);
    RUN(secrets_and_signatures);
    RUN(schedule_option);
    RUN(attempts_to_states);
    return UNIT_END();
}
