/*
 * The upstream engine's own internals, shared by upstream.c (the spec,
 * the calls' meaning, the check) and upstream_relay.c (the in-flight set:
 * one poller thread, a small pool for what blocks). Internal to engine/.
 */
#ifndef PADDOCK_ENGINE_UPSTREAM_INT_H
#define PADDOCK_ENGINE_UPSTREAM_INT_H

#include "engine.h"

#include "../hh/hh.h"
#include "../limit/limit.h"

#include <pthread.h>

/* Retries of a submit after a 5xx or a network error (then it fails). */
#define UPSTREAM_SUBMIT_RETRIES 5
/* Longest wait a Retry-After may ask of us; the deadline bounds the rest. */
#define UPSTREAM_RETRY_AFTER_MAX_MS 60000
/* In-flight tasks of one engine in one process at most (inflight=N). */
#define UPSTREAM_INFLIGHT_MAX 100000

struct upstream_relay;

struct upstream_engine {
    struct engine base;
    struct hh_endpoint ep;   /* root and key header; the key never shown */
    const char *shown;       /* how messages name the upstream: its dialect,
                                never its address (task messages and 503s
                                reach clients) */
    struct limit_rate *rate; /* every request's token: thread-safe */
    double rate_per_s;
    int64_t poll_ms, poll_max_ms, timeout_ms;
    int inflight;         /* capacity: tasks in flight in this process */
    int downloads;        /* the pool: downloads (and ref saves) at once */
    pthread_mutex_t lock; /* guards relay's creation */
    struct upstream_relay *relay; /* made by the first start */
};

/* upstream.c: what the calls mean. */
/* The submit body of a job (the caller frees it), or NULL. */
char *upstream_submit_body(const struct job *job);
/* The paddock error that stands for an upstream's failure code. */
int upstream_code_error(const char *code);
/* A net error in words without the upstream's address (logged whole). */
const char *upstream_net_reason(const struct errmsg *e);
/* 401/403: the upstream refused our key (no message shows it). */
int upstream_key_refused(const struct upstream_engine *ue,
                         const struct hh_answer *a, struct errmsg *err);
/* A token of the engine's bucket now: true, or false (none left). */
bool upstream_token(struct upstream_engine *ue);
/*
 * SUCCEEDED upstream: download `url` into out_path through hc (its pace
 * takes tokens), check the video and bill it from `usage` (the
 * upstream's, else what the file says) into *res. 0 or the failure.
 */
int upstream_fetch(struct upstream_engine *ue, struct hh_client *hc,
                   const char *task_id, const char *url,
                   const struct hh_usage *usage, const struct job *job,
                   const char *out_path, struct job_result *res,
                   struct errmsg *err);

/* upstream_relay.c: the in-flight set. */
/* Take a job (engine_ops.start); the first call starts the poller and
 * the pool. */
int upstream_relay_start(struct upstream_engine *ue, const struct job *job,
                         const char *out_path, const struct job_ctl *ctl,
                         struct errmsg *err);
/* Tasks in flight now. */
int upstream_relay_count(struct upstream_engine *ue);
/* Stop the threads; what is still in flight ends stopped. NULL fine. */
void upstream_relay_free(struct upstream_relay *r);

#endif
