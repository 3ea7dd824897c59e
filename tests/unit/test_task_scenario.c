/*
 * Unit tests of sandbox scenarios (task/scenario.c): the directive parser
 * (good and bad texts as tables), merging of sources, the prompt's token,
 * the resolution of a scenario for a job (deterministic, within ranges),
 * and the plan's round trip through the stored job spec.
 */
#include "../../src/task/task.h"
#include "unit.h"

#include <stdlib.h>

#define SRC "header X-Paddock-Scenario"

/* ------------------------------------------------------- good texts */

static const struct good {
    const char *text;
    unsigned set;
    int64_t queue[2], run[2];
    double speed, fail_rate;
    const char *fail_code, *fail_message;
    int submit_status;
    const char *submit_code;
    int query_errors;
    enum task_link link;
} goods[] = {
    { "", 0, { 0, 0 }, { 0, 0 }, 0, 0, "", "", 0, "", 0, 0 },
    { "  ", 0, { 0, 0 }, { 0, 0 }, 0, 0, "", "", 0, "", 0, 0 },
    { "queue=2s",
      TASK_SC_QUEUE,
      { 2000, 2000 },
      { 0, 0 },
      0,
      0,
      "",
      "",
      0,
      "",
      0,
      0 },
    { "queue=0", TASK_SC_QUEUE, { 0, 0 }, { 0, 0 }, 0, 0, "", "", 0, "", 0, 0 },
    { "run=500ms..1h",
      TASK_SC_RUN,
      { 0, 0 },
      { 500, 3600000 },
      0,
      0,
      "",
      "",
      0,
      "",
      0,
      0 },
    { "realistic",
      TASK_SC_QUEUE | TASK_SC_RUN,
      { 2000, 20000 },
      { 40000, 120000 },
      0,
      0,
      "",
      "",
      0,
      "",
      0,
      0 },
    { "realistic,speed=20",
      TASK_SC_QUEUE | TASK_SC_RUN | TASK_SC_SPEED,
      { 2000, 20000 },
      { 40000, 120000 },
      20,
      0,
      "",
      "",
      0,
      "",
      0,
      0 },
    { "realistic, queue=0",
      TASK_SC_QUEUE | TASK_SC_RUN,
      { 0, 0 },
      { 40000, 120000 },
      0,
      0,
      "",
      "",
      0,
      "",
      0,
      0 },
    { "speed=0.5",
      TASK_SC_SPEED,
      { 0, 0 },
      { 0, 0 },
      0.5,
      0,
      "",
      "",
      0,
      "",
      0,
      0 },
    { "speed=1000",
      TASK_SC_SPEED,
      { 0, 0 },
      { 0, 0 },
      1000,
      0,
      "",
      "",
      0,
      "",
      0,
      0 },
    { "fail=DataInspectionFailed",
      TASK_SC_FAIL,
      { 0, 0 },
      { 0, 0 },
      0,
      0,
      "DataInspectionFailed",
      "",
      0,
      "",
      0,
      0 },
    { "fail=InternalError.Algo:the GPU caught fire",
      TASK_SC_FAIL,
      { 0, 0 },
      { 0, 0 },
      0,
      0,
      "InternalError.Algo",
      "the GPU caught fire",
      0,
      "",
      0,
      0 },
    { "fail=X:a:b",
      TASK_SC_FAIL,
      { 0, 0 },
      { 0, 0 },
      0,
      0,
      "X",
      "a:b",
      0,
      "",
      0,
      0 },
    { "fail-rate=0.3",
      TASK_SC_FAIL_RATE,
      { 0, 0 },
      { 0, 0 },
      0,
      0.3,
      "",
      "",
      0,
      "",
      0,
      0 },
    { "fail-rate=1",
      TASK_SC_FAIL_RATE,
      { 0, 0 },
      { 0, 0 },
      0,
      1,
      "",
      "",
      0,
      "",
      0,
      0 },
    { "submit=429:Throttling.RateQuota",
      TASK_SC_SUBMIT,
      { 0, 0 },
      { 0, 0 },
      0,
      0,
      "",
      "",
      429,
      "Throttling.RateQuota",
      0,
      0 },
    { "submit=503:ModelUnavailable",
      TASK_SC_SUBMIT,
      { 0, 0 },
      { 0, 0 },
      0,
      0,
      "",
      "",
      503,
      "ModelUnavailable",
      0,
      0 },
    { "query-errors=2",
      TASK_SC_QUERY_ERRORS,
      { 0, 0 },
      { 0, 0 },
      0,
      0,
      "",
      "",
      0,
      "",
      2,
      0 },
    { "query-errors=100",
      TASK_SC_QUERY_ERRORS,
      { 0, 0 },
      { 0, 0 },
      0,
      0,
      "",
      "",
      0,
      "",
      100,
      0 },
    { "link=expired",
      TASK_SC_LINK,
      { 0, 0 },
      { 0, 0 },
      0,
      0,
      "",
      "",
      0,
      "",
      0,
      TASK_LINK_EXPIRED },
    { "link=slow",
      TASK_SC_LINK,
      { 0, 0 },
      { 0, 0 },
      0,
      0,
      "",
      "",
      0,
      "",
      0,
      TASK_LINK_SLOW },
    /* Later wins within one text too. */
    { "run=1s,run=2s",
      TASK_SC_RUN,
      { 0, 0 },
      { 2000, 2000 },
      0,
      0,
      "",
      "",
      0,
      "",
      0,
      0 },
};

static void parses_good_texts(void)
{
    for (size_t i = 0; i < ARRAY_LEN(goods); i++) {
        const struct good *g = &goods[i];
        struct task_scenario sc = { 0 };
        struct errmsg e = { 0 };
        int rc = task_scenario_parse(&sc, g->text, strlen(g->text), SRC, &e);
        if (rc != 0)
            fprintf(stderr, "  case %zu '%s': %s\n", i, g->text, e.text);
        CHECK_INT(rc, 0);
        CHECK_INT(sc.set, g->set);
        if (g->set & TASK_SC_QUEUE) {
            CHECK_INT(sc.queue_ms[0], g->queue[0]);
            CHECK_INT(sc.queue_ms[1], g->queue[1]);
        }
        if (g->set & TASK_SC_RUN) {
            CHECK_INT(sc.run_ms[0], g->run[0]);
            CHECK_INT(sc.run_ms[1], g->run[1]);
        }
        if (g->set & TASK_SC_SPEED)
            CHECK(sc.speed == g->speed);
        if (g->set & TASK_SC_FAIL_RATE)
            CHECK(sc.fail_rate == g->fail_rate);
        CHECK_STR(sc.fail_code, g->fail_code);
        CHECK_STR(sc.fail_message, g->fail_message);
        CHECK_INT(sc.submit_status, g->submit_status);
        CHECK_STR(sc.submit_code, g->submit_code);
        CHECK_INT(sc.query_errors, g->query_errors);
        CHECK_INT(sc.link, g->link);
    }
}

/* -------------------------------------------------------- bad texts */

static const struct bad {
    const char *text;
    const char *message; /* the whole message */
} bads[] = {
    { "run=soon",
      SRC ": 'run=soon': expected run=DURATION or run=MIN..MAX, durations "
          "from 0 to 1h (500ms, 20s, 2m)" },
    { "run", SRC ": 'run': expected run=DURATION or run=MIN..MAX, durations "
                 "from 0 to 1h (500ms, 20s, 2m)" },
    { "queue=2h", SRC ": 'queue=2h': expected queue=DURATION or "
                      "queue=MIN..MAX, durations from 0 to 1h (500ms, 20s, "
                      "2m)" },
    { "queue=5s..2s", SRC ": 'queue=5s..2s': expected queue=DURATION or "
                          "queue=MIN..MAX, durations from 0 to 1h (500ms, "
                          "20s, 2m)" },
    { "queue=..2s", NULL },
    { "queue=1s..", NULL },
    { "queue=-1s", NULL },
    { "realistic=yes",
      SRC ": 'realistic=yes': expected realistic, without a value "
          "(queue=2s..20s,run=40s..120s)" },
    { "speed=0", SRC ": 'speed=0': expected speed=X, a number above 0 and "
                     "at most 1000 (speed=20)" },
    { "speed=1001", NULL },
    { "speed=-2", NULL },
    { "speed=1e3", NULL },
    { "speed=.", NULL },
    { "speed=1.2.3", NULL },
    { "fail", NULL },
    { "fail=", NULL },
    { "fail=9Lives", NULL },
    { "fail=Data Inspection", NULL },
    { "fail=X:", NULL },
    { "fail-rate=1.5", SRC ": 'fail-rate=1.5': expected fail-rate=P, a "
                           "number from 0 to 1 (fail-rate=0.3)" },
    { "fail-rate=", NULL },
    { "submit=429", NULL },
    { "submit=200:OK", NULL },
    { "submit=600:X", NULL },
    { "submit=429:", NULL },
    { "submit=4299:X", NULL },
    { "query-errors=101", SRC ": 'query-errors=101': expected "
                              "query-errors=N, from 0 to 100" },
    { "query-errors=-1", NULL },
    { "query-errors=two", NULL },
    { "link=fast", SRC ": 'link=fast': expected link=expired or link=slow" },
    { "link", NULL },
    { "frobnicate=1",
      SRC ": 'frobnicate': unknown directive (known: queue, run, realistic, "
          "speed, fail, fail-rate, submit, query-errors, link)" },
    { "Run=1s", NULL },
    { "queue = 1s", NULL }, /* no blanks inside a directive */
    { "run=1s,,queue=1s", SRC ": an empty directive (two commas in a row, "
                              "or one at an end)" },
    { "run=1s,", NULL },
    { ",run=1s", NULL },
    { "run=1s\t\x01", NULL },
};

static void refuses_bad_texts(void)
{
    for (size_t i = 0; i < ARRAY_LEN(bads); i++) {
        const struct bad *b = &bads[i];
        struct task_scenario sc = { .set = TASK_SC_RUN, .run_ms = { 7, 7 } };
        struct errmsg e = { 0 };
        int rc = task_scenario_parse(&sc, b->text, strlen(b->text), SRC, &e);
        if (rc != ERR_INVALID_PARAMETER)
            fprintf(stderr, "  case %zu '%s' was accepted\n", i, b->text);
        CHECK_INT(rc, ERR_INVALID_PARAMETER);
        CHECK_INT(e.code, ERR_INVALID_PARAMETER);
        CHECK(strncmp(e.text, SRC ": ", strlen(SRC) + 2) == 0);
        if (b->message)
            CHECK_STR(e.text, b->message);
        /* A refused text changes nothing. */
        CHECK_INT(sc.set, TASK_SC_RUN);
        CHECK_INT(sc.run_ms[0], 7);
    }
}

static void refuses_long_texts(void)
{
    char text[LIMIT_SCENARIO_BYTES + 2];
    memset(text, ' ', sizeof(text) - 1);
    memcpy(text, "run=1s", 6);
    text[sizeof(text) - 1] = '\0';
    struct task_scenario sc = { 0 };
    struct errmsg e = { 0 };
    CHECK_INT(task_scenario_parse(&sc, text, strlen(text), SRC, &e),
              ERR_INVALID_PARAMETER);
    CHECK(strstr(e.text, "at most 1024 bytes") != NULL);
    /* A message one byte over its limit. */
    char fail[300];
    snprintf(fail, sizeof(fail), "fail=X:%0201d", 0);
    CHECK_INT(task_scenario_parse(&sc, fail, strlen(fail), SRC, &e),
              ERR_INVALID_PARAMETER);
    snprintf(fail, sizeof(fail), "fail=X:%0200d", 0);
    CHECK_INT(task_scenario_parse(&sc, fail, strlen(fail), SRC, &e), 0);
    CHECK_INT(strlen(sc.fail_message), 200);
}

/* Sources in order: engine < key < token < header, per directive. */
static void later_sources_win_per_directive(void)
{
    struct task_scenario sc = { 0 };
    struct errmsg e = { 0 };
    const char *engine = "realistic,fail=A", *key = "run=1s,query-errors=3";
    const char *header = "fail=C,link=slow";
    CHECK_INT(task_scenario_parse(&sc, engine, strlen(engine), "e", &e), 0);
    CHECK_INT(task_scenario_parse(&sc, key, strlen(key), "k", &e), 0);
    char *clean = NULL;
    CHECK_INT(task_scenario_from_prompt(&sc, "a [paddock: fail=B,run=2s] cat",
                                        &clean, &e),
              1);
    CHECK_STR(clean, "a cat");
    free(clean);
    CHECK_INT(task_scenario_parse(&sc, header, strlen(header), "h", &e), 0);
    CHECK_INT(sc.queue_ms[0], 2000); /* the engine's realistic */
    CHECK_INT(sc.queue_ms[1], 20000);
    CHECK_INT(sc.run_ms[0], 2000); /* the token's over the key's */
    CHECK_INT(sc.query_errors, 3); /* the key's */
    CHECK_STR(sc.fail_code, "C");  /* the header's */
    CHECK_INT(sc.link, TASK_LINK_SLOW);
}

/* ------------------------------------------------------------ token */

static const struct token_case {
    const char *prompt;
    int rc;
    const char *cleaned; /* rc 1 */
    const char *error;   /* rc < 0: part of the message */
} tokens[] = {
    { "a horse", 0, NULL, NULL },
    { "[paddock: run=5s] a horse", 1, "a horse", NULL },
    { "a horse [paddock: run=5s]", 1, "a horse", NULL },
    { "a horse [paddock:run=5s] at dusk", 1, "a horse at dusk", NULL },
    { "a horse[paddock: run=5s]at dusk", 1, "a horseat dusk", NULL },
    { "[paddock: run=5s]", 1, "", NULL },
    { "[paddock: ]", 1, "", NULL },
    { "[Paddock: run=5s] stays", 0, NULL, NULL },
    { "a [paddock: run=5s", ERR_INVALID_PARAMETER, NULL,
      "input.prompt's [paddock: ...] token: no closing ']'" },
    { "[paddock: run=1s] [paddock: queue=1s]", ERR_INVALID_PARAMETER, NULL,
      "more than one" },
    { "[paddock: run=later]", ERR_INVALID_PARAMETER, NULL,
      "input.prompt's [paddock: ...] token: 'run=later': expected" },
};

static void reads_the_prompt_token(void)
{
    for (size_t i = 0; i < ARRAY_LEN(tokens); i++) {
        const struct token_case *t = &tokens[i];
        struct task_scenario sc = { 0 };
        struct errmsg e = { 0 };
        char *clean = NULL;
        int rc = task_scenario_from_prompt(&sc, t->prompt, &clean, &e);
        if (rc != t->rc)
            fprintf(stderr, "  case %zu '%s': rc %d %s\n", i, t->prompt, rc,
                    e.text);
        CHECK_INT(rc, t->rc);
        if (t->rc == 1)
            CHECK_STR(clean, t->cleaned);
        else
            CHECK(clean == NULL);
        if (t->rc < 0)
            CHECK(strstr(e.text, t->error) != NULL);
        free(clean);
    }
    char *clean = (char *)"x";
    struct task_scenario sc = { 0 };
    CHECK_INT(task_scenario_from_prompt(&sc, NULL, &clean, NULL), 0);
    CHECK(clean == NULL);
}

/* ------------------------------------------------------- resolution */

static void job_init(struct job *j, int64_t seed)
{
    memset(j, 0, sizeof(*j));
    snprintf(j->model, sizeof(j->model), "happyhorse-1.0-t2v");
    j->kind = TASK_T2V;
    j->prompt = xstrdup("a horse on a beach");
    j->resolution = 720;
    snprintf(j->ratio, sizeof(j->ratio), "16:9");
    j->duration = 5;
    j->seed = seed;
}

static struct task_scenario scenario_of(const char *text)
{
    struct task_scenario sc = { 0 };
    struct errmsg e = { 0 };
    if (task_scenario_parse(&sc, text, strlen(text), SRC, &e) < 0)
        fprintf(stderr, "  '%s': %s\n", text, e.text);
    return sc;
}

static void plans_are_deterministic(void)
{
    struct task_scenario sc = scenario_of("realistic,fail-rate=0.5");
    struct job a, b;
    job_init(&a, 42);
    job_init(&b, 42);
    struct job_scenario pa, pb;
    task_scenario_plan(&sc, &a, &pa);
    task_scenario_plan(&sc, &b, &pb);
    CHECK(pa.on);
    CHECK_INT(pa.queue_ms, pb.queue_ms);
    CHECK_INT(pa.run_ms, pb.run_ms);
    CHECK_INT(pa.fail, pb.fail);
    CHECK(pa.queue_ms >= 2000 && pa.queue_ms <= 20000);
    CHECK(pa.run_ms >= 40000 && pa.run_ms <= 120000);
    /* Other seeds land elsewhere in the ranges. */
    int64_t lo = INT64_MAX, hi = 0;
    for (int s = 0; s < 200; s++) {
        struct job j;
        struct job_scenario p;
        job_init(&j, s);
        task_scenario_plan(&sc, &j, &p);
        CHECK(p.queue_ms >= 2000 && p.queue_ms <= 20000);
        CHECK(p.run_ms >= 40000 && p.run_ms <= 120000);
        lo = p.run_ms < lo ? p.run_ms : lo;
        hi = p.run_ms > hi ? p.run_ms : hi;
        task_job_fini(&j);
    }
    CHECK(lo < 50000 && hi > 110000);
    /* No scenario: no plan. */
    struct task_scenario none = { 0 };
    task_scenario_plan(&none, &a, &pa);
    CHECK(!pa.on);
    task_job_fini(&a);
    task_job_fini(&b);
}

static void speed_divides_durations(void)
{
    struct task_scenario sc = scenario_of("queue=20s,run=100s,speed=20");
    struct job j;
    job_init(&j, 1);
    struct job_scenario p;
    task_scenario_plan(&sc, &j, &p);
    CHECK_INT(p.queue_ms, 1000);
    CHECK_INT(p.run_ms, 5000);
    sc = scenario_of("run=1s,speed=0.5");
    task_scenario_plan(&sc, &j, &p);
    CHECK_INT(p.run_ms, 2000);
    task_job_fini(&j);
}

static void fail_rate_is_a_stable_fraction(void)
{
    struct task_scenario sc30 = scenario_of("fail-rate=0.3");
    struct task_scenario sc50 = scenario_of("fail-rate=0.5,fail=X:why");
    int fails = 0;
    for (int s = 0; s < 1000; s++) {
        struct job j;
        struct job_scenario p30, p50, again;
        job_init(&j, s);
        task_scenario_plan(&sc30, &j, &p30);
        task_scenario_plan(&sc50, &j, &p50);
        task_scenario_plan(&sc30, &j, &again);
        fails += p30.fail;
        CHECK_INT(again.fail, p30.fail);
        CHECK(!p30.fail || p50.fail); /* a higher rate fails a superset */
        if (p30.fail)
            CHECK_STR(p30.fail_code, "InternalError.Algo");
        if (p50.fail) {
            CHECK_STR(p50.fail_code, "X");
            CHECK_STR(p50.fail_message, "why");
        }
        task_job_fini(&j);
    }
    CHECK(fails > 250 && fails < 350);
    /* fail alone always fails; fail-rate=0 never. */
    struct task_scenario always = scenario_of("fail=DataInspectionFailed");
    struct task_scenario never = scenario_of("fail=X,fail-rate=0");
    struct job j;
    struct job_scenario p;
    job_init(&j, 5);
    task_scenario_plan(&always, &j, &p);
    CHECK(p.fail);
    char text[256];
    task_scenario_fail_text(&p, text, sizeof(text));
    CHECK(strstr(text, "DataInspectionFailed") != NULL);
    task_scenario_plan(&never, &j, &p);
    CHECK(!p.fail);
    task_job_fini(&j);
}

/* The plan travels in the stored spec, exactly. */
static void plan_round_trips_in_the_spec(void)
{
    struct task_scenario sc =
        scenario_of("queue=3s,run=1s..9s,fail=Bad.Code:\xc3\xa9t\xc3\xa9 "
                    "\"quoted\",query-errors=4,link=expired");
    struct job j, back;
    job_init(&j, 9);
    task_scenario_plan(&sc, &j, &j.scenario);
    char *spec = task_job_to_json(&j);
    CHECK_INT(task_job_from_json(spec, &back), 0);
    CHECK(back.scenario.on);
    CHECK_INT(back.scenario.queue_ms, 3000);
    CHECK_INT(back.scenario.run_ms, j.scenario.run_ms);
    CHECK(back.scenario.fail);
    CHECK_STR(back.scenario.fail_code, "Bad.Code");
    CHECK_STR(back.scenario.fail_message, "\xc3\xa9t\xc3\xa9 \"quoted\"");
    CHECK_INT(back.scenario.query_errors, 4);
    CHECK_INT(back.scenario.link, TASK_LINK_EXPIRED);
    task_job_fini(&back);
    free(spec);
    /* Without a scenario the spec has no member at all. */
    memset(&j.scenario, 0, sizeof(j.scenario));
    spec = task_job_to_json(&j);
    CHECK(strstr(spec, "scenario") == NULL);
    CHECK_INT(task_job_from_json(spec, &back), 0);
    CHECK(!back.scenario.on);
    task_job_fini(&back);
    free(spec);
    /* A damaged member is refused, not half read. */
    static const char *const broken[] = {
        "{\"queue_ms\":-1}",
        "{\"run_ms\":3600001}",
        "{\"fail\":7}",
        "{\"fail\":\"9x\"}",
        "{\"link\":\"fast\"}",
        "{\"query_errors\":101}",
        "[]",
    };
    for (size_t i = 0; i < ARRAY_LEN(broken); i++) {
        char *doc = xasprintf("{\"model\":\"happyhorse-1.0-t2v\",\"media\":[],"
                              "\"resolution\":720,\"ratio\":\"16:9\","
                              "\"duration\":5,\"watermark\":true,\"seed\":1,"
                              "\"audio_setting\":\"auto\",\"scenario\":%s}",
                              broken[i]);
        CHECK_INT(task_job_from_json(doc, &back), ERR_INTERNAL);
        free(doc);
    }
    task_job_fini(&j);
}

int main(void)
{
    unit_suite = "task_scenario";
    RUN(parses_good_texts);
    RUN(refuses_bad_texts);
    RUN(refuses_long_texts);
    RUN(later_sources_win_per_directive);
    RUN(reads_the_prompt_token);
    RUN(plans_are_deterministic);
    RUN(speed_divides_durations);
    RUN(fail_rate_is_a_stable_fraction);
    RUN(plan_round_trips_in_the_spec);
    return UNIT_END();
}
