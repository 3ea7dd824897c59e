/*
 * The deliverer: one thread that claims due deliveries, builds, signs and
 * sends them, many at once on one net_multi, and settles their outcomes
 * in batches (one store transaction for many); and a waiter thread that
 * turns the store's wake-ups into a net_multi_wakeup.
 */
#include "hook.h"

#include "../log/log.h"
#include "../metrics/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Deliveries claimed in one store call. */
#define CLAIM_BATCH 128
/* With nothing announced, look for due deliveries this often (retries
 * that came due, another node's, a dead deliverer's leases). */
#define POLL_MS 1000
/* Settle at once past this many outcomes, else within SETTLE_MS. */
#define SETTLE_BATCH 256
#define SETTLE_MS    5

/* One delivery in flight. */
struct flight {
    struct hook *h;
    struct store_delivery d;
    int64_t body_len;
};

struct hook {
    struct hook_deps d;
    struct net_multi *m;
    pthread_t deliverer, waiter;
    bool started_d, started_w;
    atomic_bool stop;
    atomic_bool poked; /* the waiter saw a wake-up */
    size_t inflight;
    /* Outcomes not yet written, and the endpoints to disable. */
    struct store_delivery *settle;
    size_t n_settle, cap_settle;
    int64_t first_unsettled_ms;
    char (*disable)[UUID_STR_LEN + 1];
    size_t n_disable, cap_disable;
    int64_t next_claim_ms;
    struct store_delivery claimed[CLAIM_BATCH]; /* a claim's rows */
};

/* ----------------------------------------------------------- the body */

/* "2026-05-01T12:00:00.123Z" */
static void iso_utc(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

/* The event's body: {"type","timestamp","data": the task's query
 * answer}, built once. The data of a task.running event whose task has
 * moved on shows it as it was when it ran. ERR_NOT_FOUND when the task
 * is gone (purged). */
static int build_body(struct hook *h, struct store_delivery *d, int64_t now)
{
    struct task t = { 0 };
    int rc = store_get(h->d.store, d->task_id, &t);
    if (rc < 0)
        return rc;
    struct task shown = t; /* borrows t's strings */
    if (strcmp(d->event, "task.running") == 0 && t.status != TASK_RUNNING) {
        shown.status = TASK_RUNNING;
        shown.end_ms = 0;
        shown.result = NULL;
        shown.message = NULL;
        shown.code[0] = '\0';
        memset(&shown.usage, 0, sizeof(shown.usage));
    }
    struct buf url = BUF_INIT, b = BUF_INIT;
    struct task_view view = { .utc_offset_min = h->d.utc_offset_min };
    if (shown.status == TASK_SUCCEEDED && shown.result) {
        blob_url(h->d.blob, &url, h->d.url_base, shown.result, t.expire_ms);
        view.video_url = url.data;
    }
    char when[32];
    iso_utc(d->created_ms ? d->created_ms : now, when);
    buf_puts(&b, "{\"type\":");
    buf_json_str(&b, d->event);
    buf_puts(&b, ",\"timestamp\":");
    buf_json_str(&b, when);
    buf_puts(&b, ",\"data\":");
    task_json_query(&b, d->delivery_id, d->task_id, &shown, &view);
    buf_puts(&b, "}");
    d->body = xstrndup(b.data, b.len);
    d->ts = now / 1000;
    buf_fini(&b);
    buf_fini(&url);
    task_fini(&t);
    return 0;
}

/* --------------------------------------------------------- outcomes */

static void settle_add(struct hook *h, const struct store_delivery *d,
                       int64_t now)
{
    if (h->n_settle == h->cap_settle) {
        h->cap_settle = h->cap_settle ? h->cap_settle * 2 : 64;
        h->settle = xrealloc(h->settle, h->cap_settle * sizeof(*h->settle));
    }
    if (h->n_settle == 0)
        h->first_unsettled_ms = now;
    h->settle[h->n_settle++] = *d; /* the body goes with it */
}

/* The outcome of an attempt (d->attempts counts it); `final`: no retry
 * could help. */
static void conclude(struct hook *h, struct store_delivery *d, bool ok,
                     int status, const char *error, int64_t now, bool final)
{
    bool gone = hook_outcome(d, &h->d.schedule, ok, status, now);
    if (final && d->state == STORE_DLV_PENDING) {
        d->state = STORE_DLV_DEAD;
        d->next_ms = now;
    }
    if (!ok && !gone)
        snprintf(d->error, sizeof(d->error), "%s", error);
    if (gone) {
        if (h->n_disable == h->cap_disable) {
            h->cap_disable = h->cap_disable ? h->cap_disable * 2 : 8;
            h->disable =
                xrealloc(h->disable, h->cap_disable * sizeof(*h->disable));
        }
        memcpy(h->disable[h->n_disable++], d->webhook_id, UUID_STR_LEN + 1);
    }
    metrics_add(d->state == STORE_DLV_DELIVERED ? METRIC_HOOK_DELIVERED
                : d->state == STORE_DLV_PENDING ? METRIC_HOOK_RETRY
                                                : METRIC_HOOK_DEAD,
                1);
    if (!ok)
        log_info("webhook attempt failed",
                 "delivery_id=%s webhook_id=%s task_id=%s event=%s "
                 "attempt=%d next=%s error=\"%s\"",
                 d->delivery_id, d->webhook_id, d->task_id, d->event,
                 d->attempts, d->state == STORE_DLV_PENDING ? "retry" : "dead",
                 d->error);
    settle_add(h, d, now);
}

/* Write the outcomes gathered (one transaction), then disable the
 * endpoints that answered 410. A failed write leaves the rows leased:
 * they come due again when the lease ends (at least once). */
static void settle_flush(struct hook *h)
{
    if (h->n_settle > 0) {
        if (store_delivery_settle(h->d.store, h->d.owner, h->settle,
                                  h->n_settle) < 0)
            metrics_add(METRIC_STORE_ERRORS, 1);
        for (size_t i = 0; i < h->n_settle; i++)
            store_delivery_fini(&h->settle[i]);
        h->n_settle = 0;
    }
    for (size_t i = 0; i < h->n_disable; i++) {
        log_warn("webhook disabled", "webhook_id=%s reason=\"410 Gone\"",
                 h->disable[i]);
        if (store_hook_disable(h->d.store, h->disable[i], clock_now_ms()) < 0)
            metrics_add(METRIC_STORE_ERRORS, 1);
    }
    h->n_disable = 0;
}

/* ------------------------------------------------------------ sending */

static void on_done(void *arg, int rc, const struct net_http_resp *resp,
                    const struct errmsg *err)
{
    struct flight *f = arg;
    struct hook *h = f->h;
    h->inflight--;
    if (rc == ERR_STOPPED || atomic_load(&h->stop)) {
        store_delivery_fini(&f->d); /* the lease brings it back */
        free(f);
        return;
    }
    int status = rc == 0 || rc == ERR_TOO_LARGE ? (int)resp->status : 0;
    bool ok = status >= 200 && status <= 299;
    char why[LIMIT_WEBHOOK_ERROR + 1];
    if (ok)
        why[0] = '\0';
    else if (status)
        snprintf(why, sizeof(why), "HTTP %d", status);
    else
        snprintf(why, sizeof(why), "%s", errmsg_text(err));
    conclude(h, &f->d, ok, status, why, clock_now_ms(), false);
    free(f);
}

/* Build (the first time), sign and send one claimed delivery. */
static void start_one(struct hook *h, struct store_delivery *d, int64_t now)
{
    struct errmsg err = { 0 };
    char sig[HOOK_SIGNATURE_MAX + 1], ts[32];
    d->attempts++;
    if (!d->body) {
        int rc = build_body(h, d, now);
        if (rc == ERR_NOT_FOUND) {
            conclude(h, d, false, 0, "the task no longer exists", now, true);
            return;
        }
        if (rc < 0) { /* the store: leave it leased, it comes back */
            metrics_add(METRIC_STORE_ERRORS, 1);
            store_delivery_fini(d);
            return;
        }
    }
    if (hook_sign(d->secret, d->delivery_id, d->ts, d->body, strlen(d->body),
                  sig) < 0) {
        conclude(h, d, false, 0, "the endpoint's secret is unusable", now,
                 true);
        return;
    }
    snprintf(ts, sizeof(ts), "%lld", (long long)d->ts);
    char id_h[64], ts_h[64], sig_h[96];
    snprintf(id_h, sizeof(id_h), "webhook-id: %s", d->delivery_id);
    snprintf(ts_h, sizeof(ts_h), "webhook-timestamp: %s", ts);
    snprintf(sig_h, sizeof(sig_h), "webhook-signature: %s", sig);
    const char *headers[] = { "Content-Type: application/json", id_h, ts_h,
                              sig_h };
    struct net_http_req req = {
        .method = "POST",
        .url = d->url,
        .headers = headers,
        .n_headers = ARRAY_LEN(headers),
        .body = d->body,
        .body_len = strlen(d->body),
        .max_bytes = LIMIT_WEBHOOK_ANSWER,
        .timeout_ms = HOOK_TIMEOUT_MS,
        .max_redirects = 0, /* a 3xx is a failure, not followed */
        .guarded = true,
        .allow = h->d.allow,
    };
    struct flight *f = xcalloc(1, sizeof(*f));
    f->h = h;
    f->d = *d; /* the body goes with it */
    d->body = NULL;
    if (net_multi_add(h->m, &req, on_done, f, &err) < 0) {
        /* A URL net/ refuses outright: retrying cannot change it. */
        conclude(h, &f->d, false, 0, errmsg_text(&err), now,
                 err.code == ERR_INVALID_URL);
        free(f);
        return;
    }
    h->inflight++;
}

/* Claim what is due while there is room; true when a claim came back
 * full (more may be due). */
static bool claim_some(struct hook *h, int64_t now)
{
    size_t room = HOOK_INFLIGHT - h->inflight, n = 0;
    if (room > CLAIM_BATCH)
        room = CLAIM_BATCH;
    if (room == 0)
        return false;
    struct store_delivery *got = h->claimed;
    if (store_delivery_claim(h->d.store, h->d.owner, now, HOOK_LEASE_MS, got,
                             room, &n) < 0)
        metrics_add(METRIC_STORE_ERRORS, 1);
    for (size_t i = 0; i < n; i++)
        start_one(h, &got[i], now);
    return n == room;
}

static void *deliverer_main(void *arg)
{
    struct hook *h = arg;
    while (!atomic_load(&h->stop)) {
        int64_t now = clock_now_ms();
        bool poked = atomic_exchange(&h->poked, false);
        bool more = false;
        if (poked || now >= h->next_claim_ms) {
            more = claim_some(h, now);
            h->next_claim_ms = now + POLL_MS;
        }
        int timeout = more ? 0 : (int)(h->next_claim_ms - now);
        if (h->n_settle > 0 && timeout > SETTLE_MS)
            timeout = SETTLE_MS;
        if (timeout < 0)
            timeout = 0;
        net_multi_run(h->m, timeout);
        now = clock_now_ms();
        if (h->n_settle >= SETTLE_BATCH ||
            (h->n_settle > 0 &&
             (h->inflight == 0 || now - h->first_unsettled_ms >= SETTLE_MS)))
            settle_flush(h);
        if (more)
            h->next_claim_ms = now; /* claim again at once */
    }
    settle_flush(h);
    return NULL;
}

/* Sleeps on the store's wake-ups and pokes the deliverer. */
static void *waiter_main(void *arg)
{
    struct hook *h = arg;
    uint64_t seen = 0;
    while (!atomic_load(&h->stop)) {
        int rc = store_wait_hooks(h->d.store, &seen, 200);
        if (rc == 1) {
            atomic_store(&h->poked, true);
            net_multi_wakeup(h->m);
        }
    }
    return NULL;
}

int hook_start(const struct hook_deps *deps, struct hook **out,
               struct errmsg *err)
{
    struct hook *h = xcalloc(1, sizeof(*h));
    *out = NULL;
    h->d = *deps;
    atomic_init(&h->stop, false);
    atomic_init(&h->poked, true);
    int rc = net_multi_new(&h->m, err);
    if (rc < 0)
        goto fail;
    if (pthread_create(&h->deliverer, NULL, deliverer_main, h) != 0) {
        rc = errmsg_set(err, ERR_INTERNAL, "cannot start the deliverer");
        goto fail;
    }
    h->started_d = true;
    if (pthread_create(&h->waiter, NULL, waiter_main, h) != 0) {
        rc = errmsg_set(err, ERR_INTERNAL, "cannot start the deliverer");
        goto fail;
    }
    h->started_w = true;
    *out = h;
    return 0;
fail:
    hook_stop(h);
    return rc;
}

void hook_stop(struct hook *h)
{
    if (!h)
        return;
    atomic_store(&h->stop, true);
    if (h->m)
        net_multi_wakeup(h->m);
    if (h->started_w)
        pthread_join(h->waiter, NULL);
    if (h->started_d)
        pthread_join(h->deliverer, NULL);
    net_multi_free(h->m); /* what is in flight ends unsettled */
    for (size_t i = 0; i < h->n_settle; i++)
        store_delivery_fini(&h->settle[i]);
    free(h->settle);
    free(h->disable);
    free(h);
}
