/*
 * The synchronous calls over net_http: one request, retries by the rule
 * of docs/engines.md, submit, the wait for a task's end, and the capped
 * download of its video.
 */
#include "hh.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static bool stopped(const struct hh_client *c)
{
    return c->stop && atomic_load(c->stop);
}

static int stop_error(struct errmsg *err)
{
    return errmsg_set(err, ERR_STOPPED, "stopped");
}

static void answer_clear(struct hh_answer *a)
{
    memset(a, 0, sizeof(*a));
    a->retry_after_s = -1;
}

bool hh_nap(const atomic_bool *stop, int64_t ms)
{
    int64_t end = clock_mono_ms() + ms;
    for (;;) {
        if (stop && atomic_load(stop))
            return false;
        int64_t left = end - clock_mono_ms();
        if (left <= 0)
            return true;
        if (left > HH_NAP_SLICE_MS)
            left = HH_NAP_SLICE_MS;
        struct timespec ts = { left / 1000, (long)(left % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
}

static bool nap(struct hh_client *c, int64_t ms)
{
    return c->nap ? c->nap(c->arg, ms) : hh_nap(c->stop, ms);
}

/* Whether the client may send now (its pace), or was stopped. */
static bool go(struct hh_client *c)
{
    return !stopped(c) && (!c->pace || c->pace(c->arg));
}

/* ------------------------------------------------------------ requests */

int hh_send(struct hh_client *c, const struct hh_request *q,
            struct hh_answer *a, struct errmsg *err)
{
    const char *lines[HH_HEADERS_MAX];
    struct net_http_req req;
    struct net_http_resp resp;

    answer_clear(a);
    if (!go(c))
        return stop_error(err);
    hh_request_net(q, lines, &req);
    req.timeout_ms = q->timeout_ms > 0 ? q->timeout_ms : c->timeout_ms;
    req.stop = c->stop;
    int rc = net_http_request(c->http, &req, &resp, err);
    if (rc == 0)
        hh_answer_take(a, &resp);
    net_http_resp_fini(&resp);
    return rc;
}

/* unit << k, k at most 4: 1, 2, 4, 8, 16, 16, ... units, spread. */
static int64_t backoff(int64_t unit, int k)
{
    return hh_jitter(unit << (k < 4 ? k : 4));
}

int hh_call(struct hh_client *c, const struct hh_request *q,
            const struct hh_retry *r, struct hh_answer *a, struct errmsg *err)
{
    int throttled = 0, transient = 0;
    answer_clear(a);
    for (;;) {
        int rc = hh_send(c, q, a, err);
        long st = rc == 0 ? a->status : 0;
        bool busy = st == 429 || (r->busy_503 && st == 503);
        bool failing = rc < 0 ? rc != ERR_STOPPED : st >= 500 && !busy;
        int64_t wait = -1;
        if (busy && (r->throttled == HH_FOREVER || throttled < r->throttled)) {
            wait = a->retry_after_s >= 0 ? (int64_t)a->retry_after_s * 1000
                                         : backoff(r->unit_ms, throttled);
            if (wait > r->retry_after_max_ms)
                wait = r->retry_after_max_ms;
            throttled++;
        } else if (failing && transient < r->transient) {
            wait = backoff(r->unit_ms, transient++);
        }
        if (wait < 0)
            return rc;
        if (r->on_retry)
            r->on_retry(r->arg, rc, err, rc == 0 ? a : NULL, wait);
        hh_answer_fini(a);
        if (!nap(c, wait))
            return stop_error(err);
    }
}

int hh_submit(struct hh_client *c, const char *body, size_t len,
              const char *idem, const struct hh_retry *r, struct hh_answer *a,
              struct errmsg *err)
{
    struct hh_request q;
    answer_clear(a);
    int rc = hh_req_submit(&q, c->ep, body, len, idem, err);
    if (rc == 0) {
        q.timeout_ms = c->submit_timeout_ms;
        rc = hh_call(c, &q, r, a, err);
    }
    hh_request_fini(&q);
    return rc;
}

int hh_query(struct hh_client *c, const char *task_id, struct hh_answer *a,
             struct errmsg *err)
{
    struct hh_request q;
    answer_clear(a);
    int rc = hh_req_query(&q, c->ep, task_id, err);
    if (rc == 0)
        rc = hh_send(c, &q, a, err);
    hh_request_fini(&q);
    return rc;
}

/* --------------------------------------------------------------- wait */

static void task_clear(struct hh_task *t)
{
    memset(t, 0, sizeof(*t));
    t->progress = -1;
}

int hh_wait(struct hh_client *c, const char *task_id, const struct hh_wait *w,
            struct hh_answer *a, struct hh_task *t, struct errmsg *err)
{
    struct hh_request q;
    struct hh_sched s;
    char last[HH_STATUS_SHOW] = "";
    int transient = 0;
    int64_t delay = 0;

    answer_clear(a);
    task_clear(t);
    int rc = hh_req_query(&q, c->ep, task_id, err);
    if (rc < 0)
        goto out;
    hh_sched_init(&s, w->poll_ms, w->poll_max_ms, w->retry_after_max_ms);
    if (w->just_submitted) {
        snprintf(last, sizeof(last), "PENDING");
        delay = hh_sched_next(&s, -1);
    }
    for (;;) {
        if (delay > 0 && !nap(c, delay)) {
            rc = stop_error(err);
            break;
        }
        hh_answer_fini(a);
        task_clear(t);
        rc = hh_send(c, &q, a, err);
        if (rc == ERR_STOPPED)
            break;
        long st = rc == 0 ? a->status : 0;
        if (rc == 0)
            hh_task_read(a, t);
        struct hh_poll p = { .rc = rc, .err = err, .a = rc == 0 ? a : NULL };
        bool ends = false, late = false;
        if (st == 200 && t->status != HH_NONE) {
            transient = 0;
            p.task = t;
            p.changed = strcmp(t->status_text, last) != 0;
            if (p.changed) {
                snprintf(last, sizeof(last), "%s", t->status_text);
                if (w->reset_on_change)
                    hh_sched_reset(&s);
            }
            ends = hh_status_terminal(t->status);
            delay = ends ? -1 : hh_sched_next(&s, -1);
        } else if (st == 429 || st == 503) {
            delay = hh_sched_next(&s, a->retry_after_s);
        } else if (rc < 0 || st >= 500 || st == 200) {
            /* No answer, a 5xx, a garbled answer: maybe passing. */
            transient++;
            ends =
                w->transient_max != HH_FOREVER && transient > w->transient_max;
            delay =
                ends ? -1 : hh_sched_next(&s, rc == 0 ? a->retry_after_s : -1);
        } else { /* a 4xx: a wrong key or URL does not get better */
            ends = true;
            delay = -1;
        }
        p.transient = transient;
        if (!ends && w->deadline_ms > 0) {
            int64_t now = clock_mono_ms();
            if (now >= w->deadline_ms) {
                late = true;
                delay = -1;
            } else if (now + delay > w->deadline_ms) {
                delay = w->deadline_ms - now;
            }
        }
        p.delay_ms = delay;
        if (w->on_poll)
            w->on_poll(w->arg, &p);
        if (late) {
            rc = errmsg_set(err, ERR_TIMEOUT,
                            "task %s did not end before the deadline", task_id);
            break;
        }
        if (ends)
            break;
    }
out:
    hh_request_fini(&q);
    return rc;
}

/* ----------------------------------------------------------- download */

int hh_download(struct hh_client *c, const struct hh_download *d,
                struct net_http_resp *resp, struct errmsg *err)
{
    int64_t wait = d->backoff_ms;
    memset(resp, 0, sizeof(*resp));
    resp->retry_after_s = -1;
    for (int attempt = 1;; attempt++) {
        if (attempt > 1 &&
            (ftruncate(d->fd, 0) < 0 || lseek(d->fd, 0, SEEK_SET) < 0))
            return errmsg_set(err, ERR_IO, "cannot rewrite the output file: %s",
                              strerror(errno));
        if (!go(c))
            return stop_error(err);
        struct net_http_req req = {
            .method = "GET",
            .url = d->url,
            .max_bytes = d->max_bytes,
            .stall_ms = d->stall_ms,
            .max_redirects = d->max_redirects,
            .to_fd = true,
            .fd = d->fd,
            .stop = c->stop,
            .progress = d->progress,
            .progress_arg = d->arg,
        };
        net_http_resp_fini(resp);
        int rc = net_http_request(c->http, &req, resp, err);
        long st = rc == 0 ? resp->status : 0;
        if (st == 200)
            return 0;
        if (d->on_fail)
            d->on_fail(d->arg, attempt, rc, st);
        bool again = rc == ERR_IO || st >= 500 || st == 429;
        if (!again || attempt >= d->tries)
            return rc;
        if (!nap(c, wait))
            return stop_error(err);
        wait *= 2;
    }
}
