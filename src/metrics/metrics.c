/* Counters, per-route request counters and latency histograms, per-engine
 * render histograms; all atomics, written out on demand. */
#include "metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

/* Request latency buckets (seconds) and render time buckets (seconds). */
static const double http_bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                      0.025,  0.05,  0.1,    0.25,  0.5,
                                      1,      2.5,   5,      10 };
static const double render_bounds[] = { 0.5, 1,   2,   5,   10,  30,
                                        60,  120, 300, 600, 1800 };
#define HTTP_BUCKETS   ARRAY_LEN(http_bounds)
#define RENDER_BUCKETS ARRAY_LEN(render_bounds)

/* HTTP statuses paddock answers; anything else counts as "other". */
static const int statuses[] = { 200, 206, 400, 401, 403, 404, 405,
                                409, 413, 416, 429, 500, 503 };
#define N_STATUS (ARRAY_LEN(statuses) + 1)

struct http_series {
    atomic_uint_fast64_t by_status[N_STATUS];
    atomic_uint_fast64_t buckets[HTTP_BUCKETS + 1];
    atomic_uint_fast64_t sum_us;
};

struct render_series {
    atomic_uint_fast64_t buckets[RENDER_BUCKETS + 1];
    atomic_uint_fast64_t sum_ms;
};

static const struct {
    const char *name, *help;
    const char *label; /* NULL, or a series of the entry before's name */
} counter_info[METRIC__COUNT] = {
    [METRIC_CLAIMS] = { "paddock_claims_total",
                        "Tasks claimed by this process's workers.", NULL },
    [METRIC_RESCUED] = { "paddock_rescued_total",
                         "Tasks returned to PENDING after their lease "
                         "expired.",
                         NULL },
    [METRIC_RESCUE_FAILED] = { "paddock_rescue_failed_total",
                               "Tasks failed after running out of "
                               "attempts.",
                               NULL },
    [METRIC_SUCCEEDED] = { "paddock_tasks_succeeded_total",
                           "Tasks this process finished SUCCEEDED.", NULL },
    [METRIC_FAILED] = { "paddock_tasks_failed_total",
                        "Tasks this process finished FAILED.", NULL },
    [METRIC_FETCH_BYTES] = { "paddock_fetch_bytes_total",
                             "Input media bytes downloaded.", NULL },
    [METRIC_STORE_ERRORS] = { "paddock_store_errors_total",
                              "Task store calls that failed.", NULL },
    [METRIC_SUBMITS] = { "paddock_submits_total",
                         "Tasks accepted by this process.", NULL },
    [METRIC_HOOK_DELIVERED] = { "paddock_webhook_deliveries_total",
                                "Webhook delivery attempts by result.",
                                "result=\"delivered\"" },
    [METRIC_HOOK_RETRY] = { "paddock_webhook_deliveries_total", NULL,
                            "result=\"retry\"" },
    [METRIC_HOOK_DEAD] = { "paddock_webhook_deliveries_total", NULL,
                           "result=\"dead\"" },
    [METRIC_QUOTA_REFUSALS] = { "paddock_quota_refusals_total",
                                "Submits this process refused Arrearage (a "
                                "key's quota or balance).",
                                NULL },
};

static atomic_uint_fast64_t counters[METRIC__COUNT];
/* Series keys (route and engine names) and their data, slot by slot. */
static _Atomic(const char *) http_keys[METRICS_SERIES_MAX];
static struct http_series http[METRICS_SERIES_MAX];
static _Atomic(const char *) render_keys[METRICS_SERIES_MAX];
static struct render_series render[METRICS_SERIES_MAX];
/* Billed hundredths of a second by model and resolution (480, 720,
 * 1080). */
static _Atomic(const char *) billed_keys[METRICS_SERIES_MAX];
static atomic_uint_fast64_t billed[METRICS_SERIES_MAX][3];
static pthread_mutex_t add_lock = PTHREAD_MUTEX_INITIALIZER;
static const char other[] = "other"; /* series past the table */
static const char none[] = "none";   /* requests no route matched */

void metrics_add(enum metric_counter c, uint64_t n)
{
    atomic_fetch_add_explicit(&counters[c], n, memory_order_relaxed);
}

/* The slot of `key` in keys[] (claimed on first sight, under a mutex);
 * the last slot takes every key that finds no room. */
static size_t slot_of(_Atomic(const char *) *keys, const char *key)
{
    for (size_t i = 0; i < METRICS_SERIES_MAX - 1; i++) {
        const char *k = atomic_load_explicit(&keys[i], memory_order_acquire);
        if (k == key)
            return i;
        if (k)
            continue;
        pthread_mutex_lock(&add_lock);
        if (!atomic_load_explicit(&keys[i], memory_order_relaxed))
            atomic_store_explicit(&keys[i], key, memory_order_release);
        k = atomic_load_explicit(&keys[i], memory_order_relaxed);
        pthread_mutex_unlock(&add_lock);
        if (k == key)
            return i;
    }
    atomic_store_explicit(&keys[METRICS_SERIES_MAX - 1], other,
                          memory_order_release);
    return METRICS_SERIES_MAX - 1;
}

static size_t bucket(const double *bounds, size_t n, double v)
{
    size_t i = 0;
    while (i < n && v > bounds[i])
        i++;
    return i;
}

void metrics_billed(const char *model, int resolution, int64_t cs)
{
    int r = resolution == 480 ? 0 : resolution == 720 ? 1 : 2;
    if (cs > 0)
        atomic_fetch_add_explicit(&billed[slot_of(billed_keys, model)][r],
                                  (uint64_t)cs, memory_order_relaxed);
}

void metrics_http(const char *route, int status, int64_t us)
{
    struct http_series *s = &http[slot_of(http_keys, route ? route : none)];
    size_t si = ARRAY_LEN(statuses);
    for (size_t i = 0; i < ARRAY_LEN(statuses); i++)
        if (statuses[i] == status)
            si = i;
    atomic_fetch_add_explicit(&s->by_status[si], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(
        &s->buckets[bucket(http_bounds, HTTP_BUCKETS, (double)us / 1e6)], 1,
        memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_us, (uint64_t)(us > 0 ? us : 0),
                              memory_order_relaxed);
}

void metrics_render(const char *engine, int64_t ms)
{
    struct render_series *s = &render[slot_of(render_keys, engine)];
    atomic_fetch_add_explicit(
        &s->buckets[bucket(render_bounds, RENDER_BUCKETS, (double)ms / 1e3)], 1,
        memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_ms, (uint64_t)(ms > 0 ? ms : 0),
                              memory_order_relaxed);
}

static uint64_t get(atomic_uint_fast64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

static void header(struct buf *b, const char *name, const char *type,
                   const char *help)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Buckets are cumulative in the text format. */
static void histogram(struct buf *b, const char *name, const char *label,
                      const char *value, const double *bounds, size_t n,
                      atomic_uint_fast64_t *buckets, double sum)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= n; i++) {
        cum += get(&buckets[i]);
        if (i < n)
            buf_printf(b, "%s_bucket{%s=\"%s\",le=\"%g\"} %llu\n", name, label,
                       value, bounds[i], (unsigned long long)cum);
        else
            buf_printf(b, "%s_bucket{%s=\"%s\",le=\"+Inf\"} %llu\n", name,
                       label, value, (unsigned long long)cum);
    }
    buf_printf(b, "%s_sum{%s=\"%s\"} %.6f\n%s_count{%s=\"%s\"} %llu\n", name,
               label, value, sum, name, label, value, (unsigned long long)cum);
}

void metrics_write(struct buf *b)
{
    for (int c = 0; c < METRIC__COUNT; c++) {
        if (counter_info[c].help)
            header(b, counter_info[c].name, "counter", counter_info[c].help);
        if (counter_info[c].label)
            buf_printf(b, "%s{%s} %llu\n", counter_info[c].name,
                       counter_info[c].label,
                       (unsigned long long)get(&counters[c]));
        else
            buf_printf(b, "%s %llu\n", counter_info[c].name,
                       (unsigned long long)get(&counters[c]));
    }
    header(b, "paddock_billed_seconds_total", "counter",
           "Seconds billed for tasks this process finished SUCCEEDED.");
    static const char *const res[] = { "480P", "720P", "1080P" };
    for (size_t i = 0; i < METRICS_SERIES_MAX; i++) {
        const char *model = atomic_load(&billed_keys[i]);
        for (size_t k = 0; model && k < 3; k++) {
            uint64_t v = get(&billed[i][k]);
            if (v)
                buf_printf(b,
                           "paddock_billed_seconds_total{model=\"%s\","
                           "resolution=\"%s\"} %llu.%02llu\n",
                           model, res[k], (unsigned long long)(v / 100),
                           (unsigned long long)(v % 100));
        }
    }
    header(b, "paddock_http_requests_total", "counter",
           "HTTP requests by route and status.");
    for (size_t i = 0; i < METRICS_SERIES_MAX; i++) {
        const char *route = atomic_load(&http_keys[i]);
        for (size_t k = 0; route && k < N_STATUS; k++) {
            uint64_t v = get(&http[i].by_status[k]);
            if (!v)
                continue;
            if (k < ARRAY_LEN(statuses))
                buf_printf(b,
                           "paddock_http_requests_total{route=\"%s\","
                           "status=\"%d\"} %llu\n",
                           route, statuses[k], (unsigned long long)v);
            else
                buf_printf(b,
                           "paddock_http_requests_total{route=\"%s\","
                           "status=\"other\"} %llu\n",
                           route, (unsigned long long)v);
        }
    }
    header(b, "paddock_http_request_duration_seconds", "histogram",
           "Time from a request's first byte to its answer, by route.");
    for (size_t i = 0; i < METRICS_SERIES_MAX; i++)
        if (atomic_load(&http_keys[i]))
            histogram(b, "paddock_http_request_duration_seconds", "route",
                      atomic_load(&http_keys[i]), http_bounds, HTTP_BUCKETS,
                      http[i].buckets, (double)get(&http[i].sum_us) / 1e6);
    header(b, "paddock_render_seconds", "histogram",
           "Engine run time of finished tasks, by engine.");
    for (size_t i = 0; i < METRICS_SERIES_MAX; i++)
        if (atomic_load(&render_keys[i]))
            histogram(b, "paddock_render_seconds", "engine",
                      atomic_load(&render_keys[i]), render_bounds,
                      RENDER_BUCKETS, render[i].buckets,
                      (double)get(&render[i].sum_ms) / 1e3);
}

void metrics_gauge_header(struct buf *b, const char *name, const char *help)
{
    header(b, name, "gauge", help);
}

void metrics_gauge(struct buf *b, const char *name, const char *label,
                   const char *value, double v)
{
    if (label)
        buf_printf(b, "%s{%s=\"%s\"} %g\n", name, label, value, v);
    else
        buf_printf(b, "%s %g\n", name, v);
}
