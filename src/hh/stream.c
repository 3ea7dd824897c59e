/*
 * hh_watch: a task followed through paddock's status stream (GET
 * /api/v1/tasks/{id}/events, Server-Sent Events; docs/extensions.md,
 * "Status stream") instead of polls: each event's data is the query
 * answer, read as hh_wait reads a poll's.
 */
#include "hh.h"

#include <stdio.h>
#include <string.h>

/* A server that sends nothing, not even a keep-alive comment, this long:
 * the connection is dead (paddock's comments come every 15 s). */
#define HH_STREAM_STALL_MS 60000
/* Everything one stream may send (a task's life is a few hundred events
 * of a few hundred bytes). */
#define HH_STREAM_BYTES (64 << 20)

struct sse {
    const struct hh_wait *w;
    struct hh_answer *a;
    struct hh_task *t;
    struct buf pending; /* bytes of an event not yet complete */
    char last[HH_STATUS_SHOW];
    bool ended; /* a terminal event came */
};

/* One event block (without its blank line): its data, if it has one, is a
 * query answer. */
static void on_event(struct sse *s, char *block)
{
    const char *data = NULL;
    for (char *line = block, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (strncmp(line, "data:", 5) == 0)
            data = line[5] == ' ' ? line + 6 : line + 5;
    }
    if (!data)
        return; /* a comment (keep-alive) or a field we do not use */
    hh_answer_fini(s->a);
    hh_answer_parse(s->a, 200, -1, data, strlen(data));
    memset(s->t, 0, sizeof(*s->t));
    hh_task_read(s->a, s->t);
    if (s->t->status == HH_NONE)
        return;
    struct hh_poll p = { .a = s->a, .task = s->t };
    p.changed = strcmp(s->t->status_text, s->last) != 0;
    snprintf(s->last, sizeof(s->last), "%s", s->t->status_text);
    s->ended = hh_status_terminal(s->t->status);
    p.delay_ms = s->ended ? -1 : 0;
    if (s->w->on_poll)
        s->w->on_poll(s->w->arg, &p);
}

static int on_body(void *arg, const char *data, size_t n)
{
    struct sse *s = arg;
    buf_append(&s->pending, data, n);
    char *end;
    while (!s->ended && (end = strstr(s->pending.data, "\n\n")) != NULL) {
        size_t len = (size_t)(end - s->pending.data);
        *end = '\0';
        on_event(s, s->pending.data);
        memmove(s->pending.data, end + 2, s->pending.len - len - 2);
        s->pending.len -= len + 2;
        s->pending.data[s->pending.len] = '\0';
    }
    if (s->ended)
        return -1; /* all that matters came: do not wait for the close */
    /* No event is this large: not an event stream. */
    return s->pending.len > HH_JSON_BYTES + 4096 ? -1 : 0;
}

int hh_watch(struct hh_client *c, const char *task_id, const struct hh_wait *w,
             struct hh_answer *a, struct hh_task *t, struct errmsg *err)
{
    struct sse s = { .w = w, .a = a, .t = t };
    struct net_http_req req;
    struct net_http_resp resp = { 0 };
    const char *lines[2];
    char path[sizeof(HH_TASKS_PATH) + HH_ID_MAX + 8];
    struct hh_request q;
    int rc;

    memset(a, 0, sizeof(*a));
    a->retry_after_s = -1;
    memset(t, 0, sizeof(*t));
    if (!hh_id_ok(task_id))
        return hh_req_query(&q, c->ep, task_id, err); /* its refusal */
    if (w->just_submitted)
        snprintf(s.last, sizeof(s.last), "PENDING");
    snprintf(path, sizeof(path), HH_TASKS_PATH "%s/events", task_id);
    hh_req_init(&q, c->ep, "GET", path);
    size_t n = 0;
    if (q.auth)
        lines[n++] = q.auth;
    lines[n++] = "Accept: text/event-stream";
    req = (struct net_http_req){ .method = "GET",
                                 .url = q.url,
                                 .headers = lines,
                                 .n_headers = n,
                                 .max_bytes = HH_STREAM_BYTES,
                                 .stall_ms = HH_STREAM_STALL_MS,
                                 .on_body = on_body,
                                 .on_body_arg = &s,
                                 .stop = c->stop };
    if (w->deadline_ms > 0) {
        req.timeout_ms = w->deadline_ms - clock_mono_ms();
        if (req.timeout_ms <= 0)
            req.timeout_ms = 1;
    }
    rc = net_http_request(c->http, &req, &resp, err);
    if (s.ended) {
        rc = 0; /* stopped by on_body, with the terminal answer */
    } else if (c->stop && atomic_load(c->stop)) {
        rc = errmsg_set(err, ERR_STOPPED, "stopped");
    } else if (w->deadline_ms > 0 && clock_mono_ms() >= w->deadline_ms) {
        rc = errmsg_set(err, ERR_TIMEOUT,
                        "task %s did not end before the deadline", task_id);
    } else if (rc == 0 && resp.status != 200) {
        rc = errmsg_set(err, ERR_UNSUPPORTED_OPERATION,
                        "no status stream here (HTTP %ld)", resp.status);
    } else if (rc == 0 || rc == ERR_STOPPED) {
        rc = errmsg_set(err, ERR_IO,
                        "the status stream of %s ended before the task did",
                        task_id);
    }
    net_http_resp_fini(&resp);
    hh_request_fini(&q);
    buf_fini(&s.pending);
    return rc;
}
