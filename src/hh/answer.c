/*
 * Reading answers of the API (pure): the task fields of both dialects,
 * its status, progress, link, failure and usage, each checked before a
 * caller records or follows it; and the poll schedule.
 */
#include "hh.h"

#include <jansson.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ answers */

/* "output" (DashScope and paddock), or TTAPI's {"data": {"output": ...}}
 * or {"data": {...}} wrapper. */
static json_t *output_of(json_t *root)
{
    json_t *out = json_object_get(root, "output");
    if (json_is_object(out))
        return out;
    json_t *data = json_object_get(root, "data");
    if (!json_is_object(data))
        return NULL;
    out = json_object_get(data, "output");
    return json_is_object(out) ? out : data;
}

static void parse_json(struct hh_answer *a)
{
    json_t *j =
        json_loadb(a->body.data ? a->body.data : "", a->body.len, 0, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    a->json = j;
    a->output = output_of(j);
}

void hh_answer_parse(struct hh_answer *a, long status, int retry_after_s,
                     const char *body, size_t len)
{
    memset(a, 0, sizeof(*a));
    a->status = status;
    a->retry_after_s = retry_after_s;
    buf_append(&a->body, body ? body : "", body ? len : 0);
    parse_json(a);
}

void hh_answer_take(struct hh_answer *a, struct net_http_resp *resp)
{
    memset(a, 0, sizeof(*a));
    a->status = resp->status;
    a->retry_after_s = resp->retry_after_s;
    a->body = resp->body;
    memset(&resp->body, 0, sizeof(resp->body));
    if (!a->body.data) /* NUL-ended even when empty */
        buf_append(&a->body, "", 0);
    parse_json(a);
}

void hh_answer_fini(struct hh_answer *a)
{
    if (!a)
        return;
    json_decref(a->json);
    buf_fini(&a->body);
    memset(a, 0, sizeof(*a));
    a->retry_after_s = -1;
}

const char *hh_jstr(const struct json_t *obj, const char *key)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* --------------------------------------------------------------- task */

static const struct {
    const char *name;
    enum hh_status status;
} statuses[] = {
    { "PENDING", HH_PENDING },     { "RUNNING", HH_RUNNING },
    { "SUCCEEDED", HH_SUCCEEDED }, { "FAILED", HH_FAILED },
    { "CANCELED", HH_CANCELED },   { "UNKNOWN", HH_UNKNOWN },
};

static double jnum(json_t *obj, const char *name, double dflt)
{
    json_t *v = obj ? json_object_get(obj, name) : NULL;
    return json_is_number(v) ? json_number_value(v) : dflt;
}

/* A number, or a string like "45%", as 0..100; -1 for anything else. */
static int percent(json_t *p)
{
    double v = -1;
    if (json_is_number(p))
        v = json_number_value(p);
    else if (json_is_string(p))
        v = strtod(json_string_value(p), NULL);
    if (!(v >= 0)) /* NaN too */
        return -1;
    return v > 100 ? 100 : (int)v;
}

/* A duration billed: 0 to an hour, else -1. */
static double seconds(double v)
{
    return v >= 0 && v <= 3600 ? v : -1;
}

static void usage_read(json_t *root, json_t *output, struct hh_usage *u)
{
    json_t *usage = json_object_get(root, "usage");
    if (!json_is_object(usage))
        usage = json_object_get(output, "usage");
    if (!json_is_object(usage))
        usage = NULL;
    u->output_s = seconds(
        jnum(usage, "output_video_duration", jnum(usage, "duration", -1)));
    u->input_s = seconds(jnum(usage, "input_video_duration", -1));
    double sr = jnum(usage, "SR", 0);
    u->sr = sr == 480 || sr == 720 || sr == 1080 ? (int)sr : 0;
    const char *ratio = hh_jstr(usage, "ratio");
    snprintf(u->ratio, sizeof(u->ratio), "%s",
             ratio && strlen(ratio) < sizeof(u->ratio) ? ratio : "");
}

void hh_task_read(const struct hh_answer *a, struct hh_task *t)
{
    json_t *out = a->output;
    memset(t, 0, sizeof(*t));
    t->progress = -1;
    const char *st = hh_jstr(out, "task_status");
    if (!st)
        st = hh_jstr(out, "status");
    if (st) {
        t->status = HH_OTHER;
        for (size_t i = 0; i < ARRAY_LEN(statuses); i++)
            if (strcmp(st, statuses[i].name) == 0)
                t->status = statuses[i].status;
        size_t i = 0;
        for (; st[i] && i + 1 < sizeof(t->status_text); i++)
            t->status_text[i] =
                (st[i] >= 'A' && st[i] <= 'Z') || st[i] == '_' ? st[i] : '?';
        t->status_text[i] = '\0';
    }
    const char *id = hh_jstr(out, "task_id");
    t->task_id = hh_id_ok(id) ? id : NULL;
    t->progress = percent(out ? json_object_get(out, "progress") : NULL);
    const char *url = hh_jstr(out, "video_url");
    if (url && (strncasecmp(url, "http://", 7) == 0 ||
                strncasecmp(url, "https://", 8) == 0))
        t->video_url = url;
    const char *code = hh_jstr(out, "code");
    t->code = hh_code_ok(code) ? code : NULL;
    t->message = hh_jstr(out, "message");
    usage_read(a->json, out, &t->usage);
}

bool hh_status_terminal(enum hh_status s)
{
    return s == HH_SUCCEEDED || s == HH_FAILED || s == HH_CANCELED ||
           s == HH_UNKNOWN;
}

void hh_say(const struct hh_answer *a, char *out, size_t size)
{
    const char *code = hh_jstr(a->json, "code");
    const char *msg = hh_jstr(a->json, "message");
    if (!hh_code_ok(code))
        code = NULL;
    snprintf(out, size, "HTTP %ld%s%s%s%.*s", a->status, code ? " " : "",
             code ? code : "", msg ? ": " : "", HH_SAY_MAX, msg ? msg : "");
}

/* ----------------------------------------------------------- schedule */

void hh_sched_init(struct hh_sched *s, int64_t min_ms, int64_t max_ms,
                   int64_t retry_max_ms)
{
    s->min_ms = min_ms > 0 ? min_ms : 1;
    s->max_ms = max_ms > s->min_ms ? max_ms : s->min_ms;
    s->retry_max_ms = retry_max_ms;
    s->next_ms = s->min_ms;
}

int64_t hh_sched_next(struct hh_sched *s, int retry_after_s)
{
    int64_t wait = s->next_ms;
    if (retry_after_s > 0) {
        int64_t ra = (int64_t)retry_after_s * 1000;
        if (ra > s->retry_max_ms)
            ra = s->retry_max_ms;
        if (ra > wait)
            wait = ra;
    }
    int64_t grown = s->next_ms + s->next_ms / 2;
    s->next_ms = grown < s->max_ms ? grown : s->max_ms;
    return wait;
}

int64_t hh_jitter(int64_t ms)
{
    uint32_t r = 0;
    if (ms < 2 || id_random(&r, sizeof(r)) < 0)
        return ms;
    return ms / 2 + (int64_t)(r % (uint64_t)ms);
}

void hh_sched_reset(struct hh_sched *s)
{
    s->next_ms = s->min_ms;
}
