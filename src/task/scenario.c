/*
 * Sandbox scenarios: the directive parser (every value bounded, errors
 * naming the source and the directive), the prompt's "[paddock: ...]"
 * token, the resolution of a scenario for one job from the job's own hash,
 * and the plan's place in the stored job spec. Pure: no I/O, no clock.
 */
#include "task.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* Bumping this changes which tasks of a fail-rate fail, and where in a
 * range their durations fall: do it only with a reason. */
#define PLAN_VERSION "paddock-scenario-1"
/* The source name of a prompt's token, in messages. */
#define TOKEN_SOURCE "input.prompt's [paddock: ...] token"
/* A directive is shown in messages up to this many bytes. */
#define SHOWN_MAX 80
/* Words inside a directive (a duration, a number) are short. */
#define WORD_MAX 24

/* realistic: HappyHorse's observed timing. */
static const int64_t realistic_queue[2] = { 2000, 20000 };
static const int64_t realistic_run[2] = { 40000, 120000 };

/* ------------------------------------------------------------ values */

/* A copy of s[0..n) with a NUL, when it fits a word. */
static bool word(const char *s, size_t n, char out[WORD_MAX])
{
    if (n == 0 || n >= WORD_MAX)
        return false;
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

/* A duration of 0..1h. */
static bool duration(const char *s, size_t n, int64_t *ms)
{
    char w[WORD_MAX];
    return word(s, n, w) &&
           clock_parse_duration(w, 0, LIMIT_SCENARIO_MS, ms) == 0;
}

/* DURATION or MIN..MAX, MIN not above MAX. */
static bool range(const char *s, size_t n, int64_t out[2])
{
    const char *dots = NULL;
    for (size_t i = 0; i + 1 < n && !dots; i++)
        if (s[i] == '.' && s[i + 1] == '.')
            dots = s + i;
    if (!dots) {
        if (!duration(s, n, &out[0]))
            return false;
        out[1] = out[0];
        return true;
    }
    size_t a = (size_t)(dots - s);
    int64_t lo, hi;
    if (!duration(s, a, &lo) || !duration(dots + 2, n - a - 2, &hi) || lo > hi)
        return false;
    out[0] = lo;
    out[1] = hi;
    return true;
}

/* A plain decimal: digits, optionally a point and more digits (no sign,
 * no exponent, no locale); as the nearest double (0.3 is 3 / 10). */
static bool decimal(const char *s, size_t n, double *out)
{
    int64_t digits = 0, scale = 1;
    bool point = false, any = false;
    if (n == 0 || n >= WORD_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.' && !point) {
            point = true;
        } else if (s[i] >= '0' && s[i] <= '9') {
            if (digits > INT64_MAX / 100 || scale > INT64_MAX / 100)
                return false;
            any = true;
            digits = digits * 10 + (s[i] - '0');
            if (point)
                scale *= 10;
        } else {
            return false;
        }
    }
    *out = (double)digits / (double)scale;
    return any;
}

static bool integer(const char *s, size_t n, int64_t min, int64_t max,
                    int64_t *out)
{
    char w[WORD_MAX];
    return word(s, n, w) && w[0] != '-' && parse_i64(w, min, max, out) == 0;
}

/* An API code: a letter, then letters, digits, '.', '_' or '-'
 * ("DataInspectionFailed", "Throttling.RateQuota"). */
static bool code_ok(const char *s, size_t n)
{
    if (n == 0 || n >= TASK_CODE_MAX ||
        !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* A failure message: UTF-8 text without control characters. */
static bool message_ok(const char *s, size_t n)
{
    if (n == 0 || n > LIMIT_SCENARIO_MESSAGE || !utf8_valid(s, n))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* -------------------------------------------------------- directives */

/* One directive's value v[0..n) into sc: false when malformed. `has` says
 * whether '=' was there at all. */
typedef bool (*directive_fn)(struct task_scenario *sc, const char *v, size_t n,
                             bool has);

static bool d_queue(struct task_scenario *sc, const char *v, size_t n, bool has)
{
    return has && range(v, n, sc->queue_ms);
}

static bool d_run(struct task_scenario *sc, const char *v, size_t n, bool has)
{
    return has && range(v, n, sc->run_ms);
}

static bool d_realistic(struct task_scenario *sc, const char *v, size_t n,
                        bool has)
{
    (void)v;
    (void)n;
    if (has)
        return false;
    memcpy(sc->queue_ms, realistic_queue, sizeof(sc->queue_ms));
    memcpy(sc->run_ms, realistic_run, sizeof(sc->run_ms));
    return true;
}

static bool d_speed(struct task_scenario *sc, const char *v, size_t n, bool has)
{
    double x;
    if (!has || !decimal(v, n, &x) || !(x > 0 && x <= 1000))
        return false;
    sc->speed = x;
    return true;
}

static bool d_fail(struct task_scenario *sc, const char *v, size_t n, bool has)
{
    const char *colon = has ? memchr(v, ':', n) : NULL;
    size_t code_n = colon ? (size_t)(colon - v) : n;
    if (!has || !code_ok(v, code_n))
        return false;
    size_t msg_n = colon ? n - code_n - 1 : 0;
    if (colon && !message_ok(colon + 1, msg_n))
        return false;
    snprintf(sc->fail_code, sizeof(sc->fail_code), "%.*s", (int)code_n, v);
    snprintf(sc->fail_message, sizeof(sc->fail_message), "%.*s", (int)msg_n,
             colon ? colon + 1 : "");
    return true;
}

static bool d_fail_rate(struct task_scenario *sc, const char *v, size_t n,
                        bool has)
{
    double p;
    if (!has || !decimal(v, n, &p) || !(p >= 0 && p <= 1))
        return false;
    sc->fail_rate = p;
    return true;
}

static bool d_submit(struct task_scenario *sc, const char *v, size_t n,
                     bool has)
{
    const char *colon = has ? memchr(v, ':', n) : NULL;
    int64_t status;
    if (!colon || !integer(v, (size_t)(colon - v), 400, 599, &status) ||
        !code_ok(colon + 1, n - (size_t)(colon - v) - 1))
        return false;
    sc->submit_status = (int)status;
    snprintf(sc->submit_code, sizeof(sc->submit_code), "%.*s",
             (int)(n - (size_t)(colon - v) - 1), colon + 1);
    return true;
}

static bool d_query_errors(struct task_scenario *sc, const char *v, size_t n,
                           bool has)
{
    int64_t k;
    if (!has || !integer(v, n, 0, LIMIT_SCENARIO_QUERY_ERRORS, &k))
        return false;
    sc->query_errors = (int)k;
    return true;
}

static bool d_link(struct task_scenario *sc, const char *v, size_t n, bool has)
{
    if (has && n == 7 && memcmp(v, "expired", 7) == 0)
        sc->link = TASK_LINK_EXPIRED;
    else if (has && n == 4 && memcmp(v, "slow", 4) == 0)
        sc->link = TASK_LINK_SLOW;
    else
        return false;
    return true;
}

static const struct directive {
    const char *name;
    unsigned bits; /* what it sets (realistic: two) */
    directive_fn fn;
    const char *form; /* what a good one looks like */
} directives[] = {
    { "queue", TASK_SC_QUEUE, d_queue,
      "queue=DURATION or queue=MIN..MAX, durations from 0 to 1h "
      "(500ms, 20s, 2m)" },
    { "run", TASK_SC_RUN, d_run,
      "run=DURATION or run=MIN..MAX, durations from 0 to 1h "
      "(500ms, 20s, 2m)" },
    { "realistic", TASK_SC_QUEUE | TASK_SC_RUN, d_realistic,
      "realistic, without a value (queue=2s..20s,run=40s..120s)" },
    { "speed", TASK_SC_SPEED, d_speed,
      "speed=X, a number above 0 and at most 1000 (speed=20)" },
    { "fail", TASK_SC_FAIL, d_fail,
      "fail=CODE or fail=CODE:MESSAGE, CODE an API code "
      "(DataInspectionFailed), MESSAGE up to 200 bytes without commas" },
    { "fail-rate", TASK_SC_FAIL_RATE, d_fail_rate,
      "fail-rate=P, a number from 0 to 1 (fail-rate=0.3)" },
    { "submit", TASK_SC_SUBMIT, d_submit,
      "submit=STATUS:CODE, STATUS from 400 to 599 and CODE an API code "
      "(submit=429:Throttling.RateQuota)" },
    { "query-errors", TASK_SC_QUERY_ERRORS, d_query_errors,
      "query-errors=N, from 0 to 100" },
    { "link", TASK_SC_LINK, d_link, "link=expired or link=slow" },
};

static int bad_directive(struct errmsg *err, const char *source, const char *d,
                         size_t n, const char *why)
{
    int shown = n > SHOWN_MAX ? SHOWN_MAX : (int)n;
    return errmsg_set(err, ERR_INVALID_PARAMETER, "%s: '%.*s%s': %s", source,
                      shown, d, n > SHOWN_MAX ? "..." : "", why);
}

/* One directive d[0..n) (trimmed, non-empty) into sc. */
static int directive(struct task_scenario *sc, const char *d, size_t n,
                     const char *source, struct errmsg *err)
{
    const char *eq = memchr(d, '=', n);
    size_t name_n = eq ? (size_t)(eq - d) : n;
    for (size_t i = 0; i < ARRAY_LEN(directives); i++) {
        const struct directive *x = &directives[i];
        if (strlen(x->name) != name_n || memcmp(x->name, d, name_n) != 0)
            continue;
        const char *v = eq ? eq + 1 : "";
        size_t vn = eq ? n - name_n - 1 : 0;
        if (!x->fn(sc, v, vn, eq != NULL)) {
            char why[LIMIT_ERRMSG / 2];
            snprintf(why, sizeof(why), "expected %s", x->form);
            return bad_directive(err, source, d, n, why);
        }
        sc->set |= x->bits;
        return 0;
    }
    return bad_directive(err, source, d, name_n,
                         "unknown directive (known: queue, run, realistic, "
                         "speed, fail, fail-rate, submit, query-errors, link)");
}

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

int task_scenario_parse(struct task_scenario *sc, const char *text, size_t len,
                        const char *source, struct errmsg *err)
{
    struct task_scenario next = *sc;
    if (len > LIMIT_SCENARIO_BYTES)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "%s: a scenario is at most %d bytes, got %zu", source,
                          LIMIT_SCENARIO_BYTES, len);
    size_t a = 0;
    while (a < len && blank(text[a]))
        a++;
    if (a == len)
        return 0; /* nothing given */
    for (size_t i = 0; i <= len;) {
        size_t end = i;
        while (end < len && text[end] != ',')
            end++;
        size_t lo = i, hi = end;
        while (lo < hi && blank(text[lo]))
            lo++;
        while (hi > lo && blank(text[hi - 1]))
            hi--;
        if (lo == hi)
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "%s: an empty directive (two commas in a row, "
                              "or one at an end)",
                              source);
        for (size_t k = lo; k < hi; k++)
            if ((unsigned char)text[k] < 0x20 || text[k] == 0x7f)
                return bad_directive(err, source, text + lo, hi - lo,
                                     "control characters are not allowed");
        int rc = directive(&next, text + lo, hi - lo, source, err);
        if (rc < 0)
            return rc;
        i = end + 1;
    }
    *sc = next;
    return 0;
}

int task_scenario_from_prompt(struct task_scenario *sc, const char *prompt,
                              char **cleaned, struct errmsg *err)
{
    static const char open[] = TASK_SCENARIO_TOKEN;
    *cleaned = NULL;
    const char *at = prompt ? strstr(prompt, open) : NULL;
    if (!at)
        return 0;
    const char *text = at + sizeof(open) - 1;
    const char *close = strchr(text, ']');
    if (!close)
        return errmsg_set(err, ERR_INVALID_PARAMETER, "%s: no closing ']'",
                          TOKEN_SOURCE);
    if (strstr(close, open))
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "%s: the prompt has more than one; put every "
                          "directive in one token",
                          TOKEN_SOURCE);
    int rc = task_scenario_parse(sc, text, (size_t)(close - text), TOKEN_SOURCE,
                                 err);
    if (rc < 0)
        return rc;
    /* The token goes, and one blank beside it, so "a horse [paddock:
     * run=5s] at dusk" renders as "a horse at dusk". */
    size_t from = (size_t)(at - prompt), to = (size_t)(close + 1 - prompt);
    if (from > 0 && prompt[from - 1] == ' ')
        from--;
    else if (prompt[to] == ' ')
        to++;
    struct buf b = BUF_INIT;
    buf_append(&b, prompt, from);
    buf_puts(&b, prompt + to);
    *cleaned = buf_take(&b);
    if (!*cleaned)
        *cleaned = xstrdup("");
    return 1;
}

/* -------------------------------------------------------- resolution */

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* A field with its length first, so ("ab","c") and ("a","bc") differ. */
static uint64_t hash_str(uint64_t h, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)((uint64_t)n >> (8 * i));
    return fnv1a(fnv1a(h, len, sizeof(len)), s ? s : "", n);
}

static uint64_t hash_int(uint64_t h, int64_t v)
{
    unsigned char b[8]; /* little-endian whatever the host */
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)v >> (8 * i));
    return fnv1a(h, b, sizeof(b));
}

/* The request as the client made it (never the random task id). */
static uint64_t job_hash(const struct job *job)
{
    uint64_t h = hash_str(0xcbf29ce484222325ULL, PLAN_VERSION);
    h = hash_str(h, job->model);
    h = hash_str(h, job->prompt);
    h = hash_int(h, job->seed);
    h = hash_int(h, job->resolution);
    h = hash_str(h, job->ratio);
    h = hash_int(h, job->duration);
    h = hash_int(h, job->watermark);
    h = hash_int(h, job->audio_origin);
    for (size_t i = 0; i < job->n_media; i++) {
        h = hash_int(h, job->media[i].type);
        h = hash_str(h, job->media[i].url);
    }
    return h;
}

/* One draw per purpose, each its own stream of the job's hash. */
static uint64_t draw(uint64_t h, uint64_t purpose)
{
    uint64_t z = h + purpose * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A duration in [r[0], r[1]] picked by u, divided by speed. */
static int64_t pick(const int64_t r[2], uint64_t u, double speed)
{
    uint64_t span = (uint64_t)(r[1] - r[0]) + 1;
    int64_t ms = r[0] + (int64_t)(u % span);
    return (int64_t)((double)ms / speed + 0.5);
}

void task_scenario_plan(const struct task_scenario *sc, const struct job *job,
                        struct job_scenario *out)
{
    memset(out, 0, sizeof(*out));
    if (!sc->set)
        return;
    uint64_t h = job_hash(job);
    double speed = sc->set & TASK_SC_SPEED ? sc->speed : 1;
    out->on = true;
    if (sc->set & TASK_SC_QUEUE)
        out->queue_ms = pick(sc->queue_ms, draw(h, 1), speed);
    if (sc->set & TASK_SC_RUN)
        out->run_ms = pick(sc->run_ms, draw(h, 2), speed);
    if (sc->set & (TASK_SC_FAIL | TASK_SC_FAIL_RATE)) {
        double rate = sc->set & TASK_SC_FAIL_RATE ? sc->fail_rate : 1;
        /* Uniform in [0, 1): a task that fails at P fails at any P' > P. */
        double u = (double)(draw(h, 3) >> 11) * 0x1p-53;
        out->fail = u < rate;
        snprintf(out->fail_code, sizeof(out->fail_code), "%s",
                 sc->set & TASK_SC_FAIL ? sc->fail_code : err_code(ERR_ALGO));
        snprintf(out->fail_message, sizeof(out->fail_message), "%s",
                 sc->set & TASK_SC_FAIL ? sc->fail_message : "");
    }
    if (sc->set & TASK_SC_QUERY_ERRORS)
        out->query_errors = sc->query_errors;
    if (sc->set & TASK_SC_LINK)
        out->link = sc->link;
}

void task_scenario_fail_text(const struct job_scenario *s, char *out,
                             size_t cap)
{
    if (s->fail_message[0])
        snprintf(out, cap, "%s", s->fail_message);
    else
        snprintf(out, cap,
                 "the sandbox failed this task with %s because its scenario "
                 "asked for it",
                 s->fail_code);
}

/* --------------------------------------------------------- the spec */

static const char *const link_names[] = { "normal", "expired", "slow" };

void task_scenario_json(struct buf *b, const struct job_scenario *s)
{
    if (!s->on)
        return;
    buf_printf(b, ",\"scenario\":{\"queue_ms\":%lld,\"run_ms\":%lld",
               (long long)s->queue_ms, (long long)s->run_ms);
    if (s->fail) {
        buf_puts(b, ",\"fail\":");
        buf_json_str(b, s->fail_code);
        if (s->fail_message[0]) {
            buf_puts(b, ",\"fail_message\":");
            buf_json_str(b, s->fail_message);
        }
    }
    if (s->query_errors)
        buf_printf(b, ",\"query_errors\":%d", s->query_errors);
    if (s->link != TASK_LINK_NORMAL)
        buf_printf(b, ",\"link\":\"%s\"", link_names[s->link]);
    buf_putc(b, '}');
}

/* An integer member in [0, max], or 0 when absent. */
static bool member_int(const json_t *obj, const char *key, int64_t max,
                       int64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    *out = 0;
    if (!v)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > max)
        return false;
    *out = json_integer_value(v);
    return true;
}

int task_scenario_from_json(const struct json_t *obj, struct job_scenario *out)
{
    int64_t queue, run, qe;
    memset(out, 0, sizeof(*out));
    if (!obj)
        return 0;
    /* A spec's durations were divided by a speed, never multiplied. */
    if (!json_is_object(obj) ||
        !member_int(obj, "queue_ms", LIMIT_SCENARIO_MS, &queue) ||
        !member_int(obj, "run_ms", LIMIT_SCENARIO_MS, &run) ||
        !member_int(obj, "query_errors", LIMIT_SCENARIO_QUERY_ERRORS, &qe))
        return ERR_INTERNAL;
    const json_t *fail = json_object_get(obj, "fail");
    const json_t *msg = json_object_get(obj, "fail_message");
    const json_t *link = json_object_get(obj, "link");
    if (fail) {
        const char *c = json_string_value(fail);
        if (!c || !code_ok(c, strlen(c)))
            return ERR_INTERNAL;
        out->fail = true;
        snprintf(out->fail_code, sizeof(out->fail_code), "%s", c);
    }
    if (msg) {
        const char *m = json_string_value(msg);
        if (!m || !message_ok(m, strlen(m)))
            return ERR_INTERNAL;
        snprintf(out->fail_message, sizeof(out->fail_message), "%s", m);
    }
    if (link) {
        const char *l = json_string_value(link);
        size_t i = 0;
        while (l && i < ARRAY_LEN(link_names) && strcmp(l, link_names[i]))
            i++;
        if (!l || i == ARRAY_LEN(link_names))
            return ERR_INTERNAL;
        out->link = (enum task_link)i;
    }
    out->on = true;
    out->queue_ms = queue;
    out->run_ms = run;
    out->query_errors = (int)qe;
    return 0;
}
