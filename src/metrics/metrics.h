/*
 * metrics: process-wide counters and histograms, written in the Prometheus
 * text format (version 0.0.4) for GET /metrics.
 *
 * Recording is lock-free (relaxed atomics) on every path but the first
 * sighting of a new route or engine name, which takes a mutex once. Series
 * keyed by name are keyed by the pointer of a string that lives as long as
 * the process (a route table entry, an engine's ops name); at most
 * METRICS_SERIES_MAX of each kind, more are folded into "other".
 *
 * Gauges that live in the store (tasks by state, queue depth per model) are
 * not kept here: the /metrics handler reads them at scrape time.
 *
 * Threads: every function may run on any thread at any time.
 */
#ifndef PADDOCK_METRICS_H
#define PADDOCK_METRICS_H

#include "../core/core.h"

#define METRICS_SERIES_MAX 32

/* Plain counters. */
enum metric_counter {
    METRIC_CLAIMS,        /* tasks claimed by this process's workers */
    METRIC_RESCUED,       /* tasks returned to PENDING after a lost lease */
    METRIC_RESCUE_FAILED, /* tasks failed after max-attempts */
    METRIC_SUCCEEDED,     /* tasks this process finished SUCCEEDED */
    METRIC_FAILED,        /* ... FAILED */
    METRIC_FETCH_BYTES,   /* input media bytes downloaded */
    METRIC_STORE_ERRORS,  /* store calls that failed */
    METRIC_SUBMITS,       /* tasks accepted (committed) by this process */
    /* Webhook attempts of this process's deliverer, by result (one
     * series each of paddock_webhook_deliveries_total). */
    METRIC_HOOK_DELIVERED, /* a 2xx in time */
    METRIC_HOOK_RETRY,     /* failed, tried again later */
    METRIC_HOOK_DEAD,      /* failed for the last time, or 410 */
    METRIC_QUOTA_REFUSALS, /* submits refused Arrearage (quota, balance) */
    METRIC__COUNT
};

/* Add n to a counter. */
void metrics_add(enum metric_counter c, uint64_t n);
/* A task of `model` (a static string: the model table's name) billed cs
 * hundredths of a second at `resolution` (480, 720, 1080). */
void metrics_billed(const char *model, int resolution, int64_t cs);
/* One HTTP request on `route` (a static string; NULL: no route matched,
 * labelled "none")
 * answered `status` after `us` microseconds. */
void metrics_http(const char *route, int status, int64_t us);
/* One engine run of `engine` (static string) that took `ms`. */
void metrics_render(const char *engine, int64_t ms);
/* Append every series held here to b. */
void metrics_write(struct buf *b);
/* Append a gauge's HELP/TYPE header, then call metrics_gauge per series. */
void metrics_gauge_header(struct buf *b, const char *name, const char *help);
/* One gauge sample: name{label="value"} v (label may be NULL). */
void metrics_gauge(struct buf *b, const char *name, const char *label,
                   const char *value, double v);

#endif
