/* limit: token buckets per key. */
#include "../../src/limit/limit.h"
#include "unit.h"

#include <stdlib.h>

static void burst_then_refill(void)
{
    struct limit_rate *l = limit_rate_new(2, 5); /* 2/s, burst 5 */
    int retry = 0;
    for (int i = 0; i < 5; i++)
        CHECK_INT(limit_rate_take(l, "a", 1000, &retry), 0);
    CHECK_INT(limit_rate_take(l, "a", 1000, &retry), ERR_RATE_QUOTA);
    CHECK_INT(retry, 1);
    /* Keys are independent. */
    CHECK_INT(limit_rate_take(l, "b", 1000, &retry), 0);
    /* Half a second later one token is back, only one. */
    CHECK_INT(limit_rate_take(l, "a", 1500, &retry), 0);
    CHECK_INT(limit_rate_take(l, "a", 1500, &retry), ERR_RATE_QUOTA);
    /* Never more than the burst, however long the pause. */
    int ok = 0;
    for (int i = 0; i < 20; i++)
        ok += limit_rate_take(l, "a", 100000, &retry) == 0;
    CHECK_INT(ok, 5);
    limit_rate_free(l);
}

static void slow_rate_retry_after(void)
{
    struct limit_rate *l = limit_rate_new(0.1, 1); /* one per 10 s */
    int retry = 0;
    CHECK_INT(limit_rate_take(l, "k", 0, &retry), 0);
    CHECK_INT(limit_rate_take(l, "k", 1000, &retry), ERR_RATE_QUOTA);
    CHECK_INT(retry, 9);
    limit_rate_free(l);
}

static void off_means_off(void)
{
    struct limit_rate *l = limit_rate_new(0, 1);
    int retry = 0;
    for (int i = 0; i < 1000; i++)
        CHECK_INT(limit_rate_take(l, "k", 0, &retry), 0);
    limit_rate_free(l);
}

/* More busy keys than slots: nothing breaks, a forgotten key starts with
 * a full bucket, a remembered one keeps its state. */
static void many_keys(void)
{
    struct limit_rate *l = limit_rate_new(1, 1);
    int retry = 0;
    char key[32];
    for (int i = 0; i < 3 * LIMIT_RATE_SLOTS; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        CHECK_INT(limit_rate_take(l, key, 0, &retry), 0);
    }
    snprintf(key, sizeof(key), "key-%d", 3 * LIMIT_RATE_SLOTS - 1);
    CHECK_INT(limit_rate_take(l, key, 0, &retry), ERR_RATE_QUOTA);
    limit_rate_free(l);
}

int main(void)
{
    unit_suite = "limit";
    RUN(burst_then_refill);
    RUN(slow_rate_retry_after);
    RUN(off_means_off);
    RUN(many_keys);
    return UNIT_END();
}
