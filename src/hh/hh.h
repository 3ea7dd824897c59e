/*
 * hh: one client of the HappyHorse API (docs/api.md), for every part of
 * paddock that talks to such an endpoint: the CLI (src/cli) and the
 * upstream relay (src/engine/upstream.c).
 *
 * Four layers, each usable without the next:
 * - the endpoint: dialect, base URL and key into the API root (TTAPI's
 *   "/happyhorse" added unless the base has it) and the key's header line.
 * - requests: a struct hh_request describes one call (method, URL,
 *   headers: the key, X-DashScope-Async on a DashScope submit,
 *   Idempotency-Key; the body); hh_request_net turns it into a
 *   struct net_http_req for whichever transport sends it. Nothing here
 *   does I/O.
 * - answers: pure functions over an HTTP status, its Retry-After and the
 *   body: the task fields ("output", or TTAPI's {"data": ...} wrapper),
 *   the status as an enum, progress, video link, failure code and message
 *   (validated before anyone records them), usage; and the poll schedule
 *   (x1.5 from a minimum to a maximum; a Retry-After only ever lengthens
 *   the next wait, up to a cap).
 * - synchronous calls over net_http (struct hh_client): one request, a
 *   call with retries (429 by Retry-After or back-off, 5xx and no answer
 *   a bounded number of times), submit, wait (polls until the task ends,
 *   with a stop flag and a callback per poll), and a capped download of
 *   the video to a file descriptor, with retries.
 *
 * The key: it is in hh_endpoint.auth only. No message this module writes
 * carries it (net_http's name the method and scheme://host/path); the
 * endpoint wipes it when it is released. hh logs nothing: callers say
 * what they want from the callbacks.
 *
 * Threads: everything but struct hh_client is pure or works only on the
 * caller's storage, so any thread may call it. A struct hh_client (and the
 * net_http it borrows) is used by one thread at a time.
 * Ownership: _init/_fini on the caller's storage; borrowed pointers are
 * said per field. An hh_answer owns its body and JSON; an hh_task read
 * from it borrows from it and lives no longer.
 */
#ifndef PADDOCK_HH_H
#define PADDOCK_HH_H

#include "../core/core.h"
#include "../net/net.h"
#include "../task/task.h"

#include <stdatomic.h>

struct json_t;

/* ---------------------------------------------------------------- limits */

/* An API answer: a task is a few KiB, a list page of 100 about 30 KB. */
#define HH_JSON_BYTES (1 << 20)
/* A task id as it goes into a URL path: DashScope and paddock use uuids. */
#define HH_ID_MAX 128
/* An Idempotency-Key we send: a uuid or a paddock task id, with room. */
#define HH_IDEM_MAX 64
/* Bytes of a task status shown (cleaned), with its NUL. */
#define HH_STATUS_SHOW 32
/* Bytes of an answer's message carried into a description (hh_say). */
#define HH_SAY_MAX 300
/* Headers one request carries: key, Accept, Content-Type, async, idem. */
#define HH_HEADERS_MAX 6
/* Longest sleep between two looks at a stop flag. */
#define HH_NAP_SLICE_MS 100
/* A count of retries without end (the stop flag or a deadline ends it). */
#define HH_FOREVER (-1)

#define HH_SUBMIT_PATH "/api/v1/services/aigc/video-generation/video-synthesis"
#define HH_TASKS_PATH  "/api/v1/tasks/"

/* ------------------------------------------------------------- endpoint */

enum hh_dialect { HH_DASHSCOPE, HH_TTAPI };

struct hh_endpoint {
    enum hh_dialect dialect;
    char *root; /* the base URL without trailing '/', "/happyhorse" added
                   for TTAPI unless it ends so already */
    char *auth; /* "Authorization: Bearer KEY" or "TT-API-KEY: KEY": holds
                   the key, so never shown */
};

/* True for a key we can send in a header: 1 to LIMIT_KEY_BYTES bytes of
 * printable ASCII without blanks. */
bool hh_key_ok(const char *key);
/* True for a base URL: http(s)://host[:port][/path], printable ASCII
 * without blanks, no query or fragment, at most LIMIT_URL_BYTES. */
bool hh_base_ok(const char *base);
/* True for a task id we put in a URL path and store: 1 to HH_ID_MAX of
 * letters, digits, '-', '_' and '.', and not "." or "..". */
bool hh_id_ok(const char *id);
/* True for an API code we can record: 1 to TASK_CODE_MAX-1 bytes of
 * printable ASCII without blanks ("InvalidParameter"). */
bool hh_code_ok(const char *code);
/* How messages name a dialect: "DashScope" or "TTAPI" (never an
 * address). */
const char *hh_dialect_name(enum hh_dialect d);

/* The endpoint of `base` (see hh_base_ok) and `key` (hh_key_ok) in
 * dialect d; 0 or ERR_INVALID_PARAMETER (saying which, never the key).
 * Release with hh_endpoint_fini, also after a failure. */
int hh_endpoint_init(struct hh_endpoint *ep, enum hh_dialect d,
                     const char *base, const char *key, struct errmsg *err);
/* Wipes the key; an endpoint filled with zeroes is fine. */
void hh_endpoint_fini(struct hh_endpoint *ep);

/* ------------------------------------------------------------- requests */

/* One call, described; no I/O. Strings marked borrowed must outlive it. */
struct hh_request {
    const char *method;          /* "GET" or "POST" (static) */
    char *url;                   /* owned: the root and the path */
    const char *auth;            /* borrowed from the endpoint; NULL: none */
    char ctype[80];              /* "Content-Type: ..." line, or "" */
    bool async;                  /* send "X-DashScope-Async: enable" */
    char idem[HH_IDEM_MAX + 24]; /* "Idempotency-Key: ..." line, or "" */
    const char *body;            /* borrowed; NULL: none */
    size_t body_len;
    int64_t timeout_ms; /* the whole exchange; 0: the client's */
};

/* `method` to ep's root + `path` (which starts with '/'), no body. */
void hh_req_init(struct hh_request *q, const struct hh_endpoint *ep,
                 const char *method, const char *path);
/* A body of `len` bytes (borrowed) of Content-Type `type`. */
void hh_req_body(struct hh_request *q, const char *type, const void *body,
                 size_t len);
/* The submit of a JSON body (borrowed): POST HH_SUBMIT_PATH with the
 * dialect's async header and, unless idem is NULL or "", that
 * Idempotency-Key (a retried submit finds its first task again).
 * ERR_INVALID_PARAMETER when idem is over HH_IDEM_MAX or not printable
 * ASCII; q is then still to be released. */
int hh_req_submit(struct hh_request *q, const struct hh_endpoint *ep,
                  const char *body, size_t len, const char *idem,
                  struct errmsg *err);
/* GET HH_TASKS_PATH + task_id; ERR_INVALID_PARAMETER unless hh_id_ok
 * (q is then still to be released). */
int hh_req_query(struct hh_request *q, const struct hh_endpoint *ep,
                 const char *task_id, struct errmsg *err);
/* NULL is fine. */
void hh_request_fini(struct hh_request *q);
/* The net_http request for q: method, URL, headers (their list in
 * `lines`, pointing into q), body and the HH_JSON_BYTES answer cap; every
 * other field zero (the sender sets timeout_ms, stop, ...). *out is valid
 * while q and lines are. */
void hh_request_net(const struct hh_request *q,
                    const char *lines[HH_HEADERS_MAX],
                    struct net_http_req *out);

/* -------------------------------------------------------------- answers */

/* One answer of the API. */
struct hh_answer {
    long status;           /* the HTTP status */
    int retry_after_s;     /* its Retry-After in seconds; -1: none */
    struct buf body;       /* the body as it came, NUL-ended (owned) */
    struct json_t *json;   /* the body when it is a JSON object (owned) */
    struct json_t *output; /* the task fields (borrowed from json):
                              "output", TTAPI's "data"."output" or "data";
                              NULL when there are none */
};

/* Parse an answer from its parts (the body is copied). Pure. */
void hh_answer_parse(struct hh_answer *a, long status, int retry_after_s,
                     const char *body, size_t len);
/* The same from a net_http response, whose body is taken (resp is left
 * empty, still to be released). */
void hh_answer_take(struct hh_answer *a, struct net_http_resp *resp);
/* NULL and a zeroed answer are fine. */
void hh_answer_fini(struct hh_answer *a);
/* obj[key] when it is a string (borrowed), else NULL; obj may be NULL. */
const char *hh_jstr(const struct json_t *obj, const char *key);

enum hh_status {
    HH_NONE, /* the answer has no task status */
    HH_PENDING,
    HH_RUNNING,
    HH_SUCCEEDED,
    HH_FAILED,
    HH_CANCELED,
    HH_UNKNOWN, /* the API's UNKNOWN: no such task for this key */
    HH_OTHER    /* a status string that is none of these */
};

/* What an upstream bills (absent or out of range: -1, 0 or ""). */
struct hh_usage {
    double output_s; /* output_video_duration, else duration; -1: none, or
                        not within 0..3600 */
    double input_s;  /* input_video_duration; -1 likewise */
    int sr;          /* SR when 480, 720 or 1080, else 0 */
    char ratio[TASK_RATIO_MAX]; /* "" when absent or too long */
};

/* The task in an answer; pointers borrow from the answer. */
struct hh_task {
    enum hh_status status;            /* output.task_status, else .status */
    char status_text[HH_STATUS_SHOW]; /* as given, A-Z and '_' kept, every
                                         other byte '?', cut; "" for none */
    const char *task_id;              /* when hh_id_ok, else NULL */
    int progress;          /* output.progress (a number, or "45%") as 0 to
                              100; -1 when absent */
    const char *video_url; /* output.video_url when http(s)://, else NULL */
    const char *code;      /* output.code when hh_code_ok, else NULL */
    const char *message;   /* output.message, else NULL */
    struct hh_usage usage; /* the answer's "usage", else output.usage */
};

/* Read the task fields of `a` (any status; all empty without output). */
void hh_task_read(const struct hh_answer *a, struct hh_task *t);
/* True for SUCCEEDED, FAILED, CANCELED and UNKNOWN. */
bool hh_status_terminal(enum hh_status s);
/* "HTTP 401 InvalidApiKey: Invalid API-key provided." from an error
 * answer (its top-level code when hh_code_ok, its message cut at
 * HH_SAY_MAX), into out. */
void hh_say(const struct hh_answer *a, char *out, size_t size);

/* ------------------------------------------------------------- schedule */

/* The waits between the looks at one task: min, x1.5 each, up to max. */
struct hh_sched {
    int64_t min_ms, max_ms, retry_max_ms;
    int64_t next_ms; /* the interval the next hh_sched_next gives */
};

/* min_ms <= max_ms, both > 0; a Retry-After counts up to retry_max_ms. */
void hh_sched_init(struct hh_sched *s, int64_t min_ms, int64_t max_ms,
                   int64_t retry_max_ms);
/* The wait before the next look: the current interval, or a longer
 * Retry-After (retry_after_s > 0, capped at retry_max_ms); the interval
 * then grows x1.5 up to max_ms. */
int64_t hh_sched_next(struct hh_sched *s, int retry_after_s);
/* A retry's back-off spread at random over [ms/2, 3ms/2) (ms itself when
 * under 2 or when no random bytes come): requests that failed together do
 * not all try again together. A Retry-After is never spread: it is the
 * server's least wait. Used by hh_call and by the relay's own retries. */
int64_t hh_jitter(int64_t ms);
/* Back to min_ms (the status changed: look again soon). */
void hh_sched_reset(struct hh_sched *s);

/* ---------------------------------------------------- synchronous calls */

struct hh_client {
    const struct hh_endpoint *ep; /* borrowed */
    struct net_http *http;        /* borrowed; one thread at a time */
    const atomic_bool *stop;      /* may be NULL; set: calls end soon with
                                     ERR_STOPPED */
    int64_t timeout_ms;           /* one API request; > 0 */
    int64_t submit_timeout_ms;    /* a submit (inline images); 0: as above */
    /* May be NULL: called before every request (downloads included); false
     * ends the call with ERR_STOPPED. The relay's token bucket. */
    bool (*pace)(void *arg);
    /* May be NULL (then hh_nap on stop): every sleep between requests;
     * false when stopped. The CLI redraws its status line in it. */
    bool (*nap)(void *arg, int64_t ms);
    void *arg;
};

/* Sleep ms in slices of HH_NAP_SLICE_MS until done (true) or *stop is set
 * (false; stop may be NULL). */
bool hh_nap(const atomic_bool *stop, int64_t ms);

/* Send q once. 0 when an answer arrived, whatever its status (*a, to be
 * released in every case), else net_http's error or ERR_STOPPED. */
int hh_send(struct hh_client *c, const struct hh_request *q,
            struct hh_answer *a, struct errmsg *err);

/* When a call tries again (docs/engines.md, "The rule for upstream
 * errors"). The k-th wait of a kind (from 0) is unit_ms << min(k, 4)
 * unless a Retry-After says. */
struct hh_retry {
    int64_t unit_ms;
    int throttled; /* 429s ridden out (waiting Retry-After, at most
                      retry_after_max_ms, or the back-off); HH_FOREVER */
    int transient; /* 5xx answers and requests without an answer ridden
                      out (after the back-off) */
    bool busy_503; /* a 503 counts as a 429, not as a 5xx */
    int64_t retry_after_max_ms;
    /* May be NULL: before each wait; a is NULL when no answer came (rc,
     * e say why). */
    void (*on_retry)(void *arg, int rc, const struct errmsg *e,
                     const struct hh_answer *a, int64_t wait_ms);
    void *arg;
};

/* Send q, retrying as r says. 0 with the last answer in *a (200, one r
 * does not retry, or the last retried one), or the last request's error
 * (no answer; ERR_STOPPED). *a is to be released in every case. */
int hh_call(struct hh_client *c, const struct hh_request *q,
            const struct hh_retry *r, struct hh_answer *a, struct errmsg *err);
/* hh_req_submit and hh_call (c->submit_timeout_ms). The caller judges *a:
 * 200 with an output.task_id is a task. */
int hh_submit(struct hh_client *c, const char *body, size_t len,
              const char *idem, const struct hh_retry *r, struct hh_answer *a,
              struct errmsg *err);
/* One look at task_id (hh_req_query, hh_send). */
int hh_query(struct hh_client *c, const char *task_id, struct hh_answer *a,
             struct errmsg *err);

/* One look of hh_wait, as its callback sees it. */
struct hh_poll {
    int rc; /* 0: an answer came; else why not (err) */
    const struct errmsg *err;
    const struct hh_answer *a;  /* when rc == 0 */
    const struct hh_task *task; /* when the answer is a 200 with a task
                                   status, else NULL */
    bool changed;               /* that status differs from the last one */
    int transient;              /* failures in a row, this one included */
    int64_t delay_ms;           /* the wait before the next look; -1: the
                                   wait ends with this look */
};

struct hh_wait {
    int64_t poll_ms, poll_max_ms, retry_after_max_ms; /* the schedule */
    bool just_submitted;  /* the task is PENDING: wait before looking */
    bool reset_on_change; /* a new status brings the interval back to
                             poll_ms */
    int transient_max;    /* 5xx, no answer and 200s without a status in a
                             row ridden out; HH_FOREVER. 429 and 503 always
                             are (after their Retry-After) */
    int64_t deadline_ms;  /* clock_mono_ms() to give up at; 0: none */
    void (*on_poll)(void *arg, const struct hh_poll *p); /* may be NULL */
    void *arg;
};

/*
 * Look at task_id until it ends. 0 with the last answer in *a and its task
 * in *t: a terminal status (a 200), or an answer that ends the wait
 * (another 4xx; past transient_max, a 5xx or a 200 without a status).
 * Else the error of the last request past transient_max, ERR_STOPPED, or
 * ERR_TIMEOUT at the deadline. *a is to be released in every case.
 */
int hh_wait(struct hh_client *c, const char *task_id, const struct hh_wait *w,
            struct hh_answer *a, struct hh_task *t, struct errmsg *err);

/*
 * hh_wait through paddock's status stream (GET .../tasks/{id}/events):
 * on_poll is called for each event (delay_ms 0, or -1 at the terminal
 * one) as it arrives, with nothing polled. 0 with the terminal answer in
 * *a and *t; ERR_STOPPED; ERR_TIMEOUT at w->deadline_ms; else the stream
 * could not be had or ended early (ERR_UNSUPPORTED_OPERATION: the server
 * answered something else, an older server or another service; any
 * other: the connection), and the caller polls with hh_wait instead. *a
 * is to be released in every case.
 */
int hh_watch(struct hh_client *c, const char *task_id, const struct hh_wait *w,
             struct hh_answer *a, struct hh_task *t, struct errmsg *err);

/* A video download: no key is sent (the link is signed, and may point
 * elsewhere than the API). */
struct hh_download {
    const char *url;
    int fd;            /* written from its offset; with tries > 1 a
                          regular file, emptied before each retry */
    int64_t max_bytes; /* > 0 */
    int64_t stall_ms;  /* nothing for this long ends a try */
    int max_redirects;
    int tries;          /* >= 1; network errors, 5xx and 429 try again */
    int64_t backoff_ms; /* before the second try, doubled after each */
    /* May be NULL: as net_http_req.progress. */
    void (*progress)(void *arg, int64_t got, int64_t total);
    /* May be NULL: after each try that did not bring a 200. */
    void (*on_fail)(void *arg, int attempt, int rc, long status);
    void *arg;
};

/* Download d->url into d->fd. 0 when an answer arrived (resp->status 200:
 * the video is in; another: the last try's, its body's start in
 * resp->body), else the last try's error: ERR_TOO_LARGE over max_bytes
 * (not retried), ERR_STOPPED, ERR_IO (no answer; or the file could not
 * be rewritten), ... *resp is to be released in every case. */
int hh_download(struct hh_client *c, const struct hh_download *d,
                struct net_http_resp *resp, struct errmsg *err);

#endif
