/* metrics: counters, per-route series, histograms in the text format. */
#include "../../src/metrics/metrics.h"
#include "unit.h"

#include <pthread.h>
#include <stdlib.h>

static const char route_a[] = "alpha", engine_x[] = "xengine";

static bool has(const struct buf *b, const char *line)
{
    return strstr(b->data, line) != NULL;
}

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10000; i++) {
        metrics_http(route_a, 200, 300);
        metrics_add(METRIC_CLAIMS, 1);
    }
    return NULL;
}

static void counts_from_many_threads(void)
{
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, hammer, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    metrics_http(route_a, 404, 2000000); /* 2 s */
    metrics_http(NULL, 404, 10);
    metrics_http(route_a, 418, 10); /* an unexpected status */
    metrics_render(engine_x, 1500);
    struct buf b = BUF_INIT;
    metrics_write(&b);
    CHECK(has(&b, "paddock_claims_total 40000\n"));
    CHECK(has(&b, "paddock_http_requests_total{route=\"alpha\",status=\"200\"} "
                  "40000\n"));
    CHECK(has(&b, "paddock_http_requests_total{route=\"alpha\",status=\"404\"} "
                  "1\n"));
    CHECK(has(&b, "{route=\"alpha\",status=\"other\"} 1\n"));
    CHECK(has(&b, "paddock_http_requests_total{route=\"none\",status=\"404\"} "
                  "1\n"));
    /* 300 us falls in the first bucket (0.5 ms); buckets are cumulative. */
    CHECK(has(&b, "paddock_http_request_duration_seconds_bucket{route="
                  "\"alpha\",le=\"0.0005\"} 40001\n"));
    CHECK(has(&b, "paddock_http_request_duration_seconds_bucket{route="
                  "\"alpha\",le=\"1\"} 40001\n"));
    CHECK(has(&b, "paddock_http_request_duration_seconds_bucket{route="
                  "\"alpha\",le=\"2.5\"} 40002\n"));
    CHECK(has(&b, "paddock_http_request_duration_seconds_count{route="
                  "\"alpha\"} 40002\n"));
    CHECK(has(&b, "paddock_render_seconds_bucket{engine=\"xengine\",le="
                  "\"1\"} 0\n"));
    CHECK(has(&b, "paddock_render_seconds_bucket{engine=\"xengine\",le="
                  "\"2\"} 1\n"));
    CHECK(has(&b, "# TYPE paddock_render_seconds histogram\n"));
    buf_fini(&b);
}

/* More route names than slots: the rest fold into "other". */
static void series_are_bounded(void)
{
    static char names[METRICS_SERIES_MAX + 8][16];
    for (int i = 0; i < METRICS_SERIES_MAX + 8; i++) {
        snprintf(names[i], sizeof(names[i]), "r%d", i);
        metrics_http(names[i], 200, 1);
    }
    struct buf b = BUF_INIT;
    metrics_write(&b);
    CHECK(has(&b, "{route=\"other\",status=\"200\"}"));
    buf_fini(&b);
}

int main(void)
{
    unit_suite = "metrics";
    RUN(counts_from_many_threads);
    RUN(series_are_bounded);
    return UNIT_END();
}
