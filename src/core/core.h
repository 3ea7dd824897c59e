/*
 * core: the pieces every other module stands on.
 *
 * - limits: every bound on input, with the reason for it (one place).
 * - the error table: every failure paddock can report, with its HTTP status
 *   and API code; functions return 0 or a negative ERR_ value.
 * - xmalloc: allocation that aborts on exhaustion (a server that cannot
 *   allocate 64 bytes cannot answer anyway; redis does the same).
 * - struct buf: a growable byte buffer, with a JSON string writer.
 * - ids: uuid v4 (request ids) and time-ordered uuid v7 (task ids).
 * - clock: wall and monotonic milliseconds, UTC+offset formatting.
 * - utf8: validation and code-point counting.
 *
 * Thread safety: every function here may be called from any thread; nothing
 * here holds shared mutable state except the v7 id sequence (atomic).
 */
#ifndef PADDOCK_CORE_H
#define PADDOCK_CORE_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---------------------------------------------------------------- limits */

/* A submit body: base64 images inline (up to 9 refs), so generous. */
#define LIMIT_BODY_BYTES (32u << 20)
/* Request header block (all headers together; http/ answers 431 past it).
 * Real clients send < 2 KiB; nginx's default is 8 KiB lines. */
#define LIMIT_HEADER_BYTES (16u << 10)
/* Connections one process holds at most (also bounded by RLIMIT_NOFILE). */
#define LIMIT_CONNECTIONS 65536
/* Seconds an idle or slow connection may hold a slot. */
#define LIMIT_CONN_TIMEOUT_S 30
/* Prompt length in code points; Chinese text is denser, so half. */
#define LIMIT_PROMPT_CHARS     5000
#define LIMIT_PROMPT_CHARS_CJK 2500
/* A prompt may be 5000 code points of up to 4 bytes each. */
#define LIMIT_PROMPT_BYTES (LIMIT_PROMPT_CHARS * 4)
/* Media entries a request may carry (r2v takes 9 images, edit 1+5). */
#define LIMIT_MEDIA_ITEMS 9
/* A media URL (not a data: URI) longer than this is not a real URL. */
#define LIMIT_URL_BYTES 8192
/* Model names are short identifiers. */
#define LIMIT_MODEL_NAME 64
/* Task ids are uuids (36 chars); anything longer is not ours. */
#define LIMIT_TASK_ID 36
/* An API key as presented by a client. */
#define LIMIT_KEY_BYTES 256
/* Output duration bounds of the API (seconds). */
/* Largest input image and video a worker fetches (docs/api.md s.12). */
#define LIMIT_IMAGE_BYTES  (20ll << 20)
#define LIMIT_VIDEO_BYTES  (100ll << 20)
#define LIMIT_DURATION_MIN 3
#define LIMIT_DURATION_MAX 15
/* Largest seed the API accepts (2^31 - 1). */
#define LIMIT_SEED_MAX 2147483647LL
/* Worker threads one process may run. */
#define LIMIT_WORKERS 256
/* A detailed error message (names the field and the expected value). */
#define LIMIT_ERRMSG 512
/* The config file: a few hundred lines at most. */
#define LIMIT_CONFIG_BYTES (256u << 10)
/* API keys configured in one process. */
#define LIMIT_KEYS   1024
#define LIMIT_ROUTES 256 /* model-routing lines in a configuration */
/* Uploads one key may hold at once, and their bytes together (the upload
 * extension, docs/extensions.md): a client uploads what its next tasks
 * need, not an archive; disk is shared by every key. */
#define LIMIT_UPLOADS_PER_KEY      64
#define LIMIT_UPLOAD_BYTES_PER_KEY (2ll << 30)
/* A sandbox scenario (docs/extensions.md, "Scenarios"), from any one
 * source: nine directives fit several times over, the longest being a
 * failure message. */
#define LIMIT_SCENARIO_BYTES 1024
/* Its durations (queue, run) and the failure message a task may carry. */
#define LIMIT_SCENARIO_MS      (3600 * 1000LL)
#define LIMIT_SCENARIO_MESSAGE 200
/* A task's first N queries a scenario may fail (query-errors=N). */
#define LIMIT_SCENARIO_QUERY_ERRORS 100
/* Tasks whose query-errors an API node counts at once (in memory): older
 * ones are forgotten first. */
#define LIMIT_SCENARIO_COUNTED 65536

/* Webhooks (docs/extensions.md, "Webhooks"): endpoints per key (each a
 * write per status change of the key's tasks), an endpoint's URL, its
 * secret ("whsec_" + base64 of 32 random bytes), the retries of
 * --webhook-schedule, a receiver's answer read (its status is what
 * counts), a delivery's error text, a page of deliveries. */
#define LIMIT_WEBHOOKS_PER_KEY 16
#define LIMIT_WEBHOOK_URL      2048
#define LIMIT_WEBHOOK_SECRET   64
#define LIMIT_WEBHOOK_RETRIES  16
#define LIMIT_WEBHOOK_ANSWER   (64 << 10)
#define LIMIT_WEBHOOK_ERROR    200
#define LIMIT_WEBHOOK_PAGE     100
/* A usage report covers at most this many days (a year and a day: one
 * row per day fits an answer), and keys' ledger rows are kept for at most
 * --usage-retention (docs/extensions.md, "Usage"). */
#define LIMIT_USAGE_DAYS 366
/* Rows one usage answer holds at most (group_by=key over many keys). */
#define LIMIT_USAGE_ROWS 10000
/* A price per second: at most this many units (micro-units: 10^6 each). */
#define LIMIT_PRICE_UNITS 1000000
/* A quota: at most this many seconds, or units of amount. */
#define LIMIT_QUOTA 1000000000000LL
/* Keys the keys API lists at most (store-wide; docs/extensions.md). */
#define LIMIT_KEYS_LISTED 10000

/* ----------------------------------------------------------- error table */

/*
 * X(name, http_status, api_code, default_message).
 * The HTTP layer maps a code to status and body through this table only.
 */
#define ERR_MAP(X)                                                            \
    X(INVALID_PARAMETER, 400, "InvalidParameter", "invalid parameter")        \
    X(EMPTY_MODEL, 400, "BadRequest.EmptyModel", "model is required")         \
    X(EMPTY_INPUT, 400, "BadRequest.EmptyInput", "input is required")         \
    X(UNSUPPORTED_OPERATION, 400, "UnsupportedOperation",                     \
      "the task is not PENDING")                                              \
    X(NO_API_KEY, 401, "InvalidApiKey", "No API-key provided.")               \
    X(INVALID_API_KEY, 401, "InvalidApiKey", "Invalid API-key provided.")     \
    X(ACCESS_DENIED, 403, "AccessDenied", "access denied")                    \
    X(SYNC_NOT_SUPPORTED, 403, "AccessDenied",                                \
      "current user api does not support synchronous calls")                  \
    X(BAD_SIGNATURE, 403, "AccessDenied",                                     \
      "the link signature is invalid or expired")                             \
    X(MODEL_NOT_FOUND, 404, "ModelNotFound", "model not found")               \
    X(NOT_FOUND, 404, "NotFound", "not found")                                \
    X(METHOD_NOT_ALLOWED, 405, "MethodNotAllowed", "method not allowed")      \
    X(TOO_LARGE, 413, "BadRequest.TooLarge", "request body is too large")     \
    X(RANGE, 416, "InvalidRange", "range not satisfiable")                    \
    X(RATE_QUOTA, 429, "Throttling.RateQuota", "request rate limit exceeded") \
    X(ALLOCATION_QUOTA, 429, "Throttling.AllocationQuota",                    \
      "too many unfinished tasks for this key")                               \
    X(THROTTLING, 429, "Throttling", "the task queue is full")                \
    X(INTERNAL, 500, "InternalError", "internal error")                       \
    X(NOMEM, 500, "InternalError", "out of memory")                           \
    X(IO, 500, "InternalError", "I/O error")                                  \
    X(STORE, 500, "InternalError", "task store error")                        \
    X(MODEL_UNAVAILABLE, 503, "ModelUnavailable", "model unavailable")        \
    X(SHUTTING_DOWN, 503, "ServiceUnavailable",                               \
      "this server is shutting down; retry")                                  \
    X(INPUT_DOWNLOAD_FAILED, 400, "BadRequest.InputDownloadFailed",           \
      "input download failed")                                                \
    X(INVALID_URL, 400, "InvalidURL", "URL not allowed")                      \
    X(UNSUPPORTED_FILE_FORMAT, 400, "BadRequest.UnsupportedFileFormat",       \
      "unsupported file format")                                              \
    X(DATA_INSPECTION, 400, "DataInspectionFailed", "content refused")        \
    X(TIMEOUT, 500, "InternalError.Timeout", "the engine timed out")          \
    X(ALGO, 500, "InternalError.Algo", "the engine failed")                   \
    X(STOPPED, 500, "InternalError", "stopped")                               \
    X(CONFLICT, 409, "Conflict", "state changed concurrently")                \
    /* OSS PostObject's own codes, on paddock's upload host only. */          \
    X(OSS_MALFORMED_POST, 400, "MalformedPOSTRequest",                        \
      "The body of your POST request is not well-formed "                     \
      "multipart/form-data.")                                                 \
    X(OSS_INVALID_ARGUMENT, 400, "InvalidArgument", "a form field is wrong")  \
    X(OSS_INVALID_POLICY, 400, "InvalidPolicyDocument",                       \
      "the policy is not a policy document")                                  \
    X(OSS_SIGNATURE, 403, "SignatureDoesNotMatch",                            \
      "The request signature we calculated does not match the signature you " \
      "provided.")                                                            \
    X(OSS_TOO_LARGE, 400, "EntityTooLarge",                                   \
      "Your proposed upload exceeds the maximum allowed size.")               \
    X(OSS_TOO_SMALL, 400, "EntityTooSmall",                                   \
      "Your proposed upload is smaller than the minimum allowed size.")       \
    X(OSS_OBJECT_NAME, 400, "InvalidObjectName",                              \
      "The specified object is not valid.")                                   \
    X(OSS_EXISTS, 409, "FileAlreadyExists", "The object already exists.")     \
    X(IDEMPOTENCY_CONFLICT, 409, "IdempotencyConflict",                       \
      "this Idempotency-Key was used with a different body")                  \
    X(BAD_REQUEST, 400, "BadRequest", "the request is not valid HTTP/1.1")    \
    X(HEADERS_TOO_LARGE, 431, "BadRequest.TooLarge",                          \
      "the request headers are too large")                                    \
    X(NOT_IMPLEMENTED, 501, "NotImplemented", "not implemented")              \
    X(HTTP_VERSION, 505, "BadRequest.HttpVersion",                            \
      "only HTTP/1.0 and HTTP/1.1 are served")                                \
    X(BUSY, 503, "ServiceUnavailable", "the server is busy; retry")           \
    /* A key's quota or balance (docs/extensions.md, "Usage"); TTAPI's        \
     * dialect answers it 402 in its own shape. */                            \
    X(ARREARAGE, 400, "Arrearage",                                            \
      "Access denied, please make sure your account is in good standing.")

enum {
    ERR__BASE = -128,
#define ERR_ENUM_(name, status, code, msg) ERR_##name,
    ERR_MAP(ERR_ENUM_)
#undef ERR_ENUM_
        ERR__END
};

/* HTTP status of an error code (500 for an unknown value). */
int err_status(int err);
/* API code string ("InvalidParameter"); static storage. */
const char *err_code(int err);
/* Default message; static storage. */
const char *err_message(int err);
/* The ERR_ name ("INVALID_PARAMETER") for logs. */
const char *err_name(int err);
/* Error code whose API code string is `code`, or 0 if none matches. */
int err_from_code(const char *code);

/*
 * An error with a detailed message, filled where the failure is understood
 * (the field name, the measured value) and carried up unchanged.
 */
struct errmsg {
    int code;
    char text[LIMIT_ERRMSG];
};

/* Set e->code and a printf-formatted message; returns `code` for chaining. */
int errmsg_set(struct errmsg *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The message, or the table's default when none was written. */
const char *errmsg_text(const struct errmsg *e);

/* --------------------------------------------------------------- memory */

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---------------------------------------------------------------- buffer */

struct buf {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
};

#define BUF_INIT   \
    {              \
        NULL, 0, 0 \
    }

void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Append `s` as a JSON string literal, quotes included. */
void buf_json_str(struct buf *b, const char *s);
void buf_json_strn(struct buf *b, const char *s, size_t n);
void buf_reset(struct buf *b);
/* Hand the storage to the caller (free() it); the buffer becomes empty. */
char *buf_take(struct buf *b);
void buf_fini(struct buf *b);

/* ------------------------------------------------------------------- ids */

#define UUID_STR_LEN 36

/* Random (v4) uuid, lower-case, into out[37]. */
void id_uuid4(char out[UUID_STR_LEN + 1]);
/* Time-ordered (v7) uuid: sorts by creation, strictly increasing within a
 * process; used for task ids so index appends stay cheap. */
void id_uuid7(char out[UUID_STR_LEN + 1]);
/* True when s is a canonical lower- or upper-case uuid string. */
bool id_is_uuid(const char *s);
/* The same in lower case only, as paddock writes its ids. */
bool id_is_uuid_lower(const char *s);
/* Fill buf with n cryptographically random bytes; 0 or ERR_IO. */
int id_random(void *buf, size_t n);
/* Lower-case hex of n bytes into out (2n+1 bytes). */
void id_hex(const void *p, size_t n, char *out);
/* The value of one hex digit (either case), or -1. */
int hex_value(char c);

/* ----------------------------------------------------------------- clock */

/* Milliseconds since the Unix epoch. */
int64_t clock_now_ms(void);
/* Monotonic milliseconds, for timeouts and intervals. */
int64_t clock_mono_ms(void);
/* Monotonic microseconds, for latencies. */
int64_t clock_mono_us(void);
/* A condition variable whose timed waits use the monotonic clock (a wall
 * clock step neither cuts nor stretches them), and the deadline `ms` from
 * now on that clock for pthread_cond_timedwait. */
void clock_cond_init(pthread_cond_t *c);
struct timespec clock_mono_after(int64_t ms);
/* Format epoch ms as "YYYY-MM-DD HH:mm:ss.SSS" at UTC+offset_min into
 * out[24]. */
void clock_format(int64_t ms, int offset_min, char out[24]);
/* Parse "YYYYMMDDhhmmss" at UTC+offset_min into epoch ms; 0 or
 * ERR_INVALID_PARAMETER. */
int clock_parse_compact(const char *s, int offset_min, int64_t *out_ms);
/*
 * The one duration syntax of every option, flag and engine word: groups of
 * digits and a unit, ms, s, m, h or d ("500ms", "90s", "1h30m", "2d"), or
 * a bare number of seconds ("30"). Into *out_ms: 0, or
 * ERR_INVALID_PARAMETER when s is not one or lies outside [min_ms, max_ms]
 * (then *out_ms is untouched).
 */
int clock_parse_duration(const char *s, int64_t min_ms, int64_t max_ms,
                         int64_t *out_ms);
/* A duration in the largest of h, m, s and ms that divides it exactly
 * ("24h", "90m", "2s", "1500ms": what clock_parse_duration reads) into
 * out[24]. */
void clock_format_duration(int64_t ms, char out[24]);

/* -------------------------------------------------------------------- fd */

/* Write all n bytes (retrying short writes and EINTR): 0, or the errno. */
int write_full(int fd, const void *p, size_t n);

/* ---------------------------------------------------------------- base64 */

/* Why s[0..n) is not padded standard base64, or NULL with *decoded set to
 * the byte count it decodes to. */
const char *base64_problem(const char *s, size_t n, size_t *decoded);
/* Decode whole quads of checked base64 s[0..n) into out[0..cap); returns
 * the bytes written (stops at cap). */
size_t base64_decode(const char *s, size_t n, unsigned char *out, size_t cap);
/* Append the padded standard base64 of data[0..n) to b. */
void base64_encode(struct buf *b, const void *data, size_t n);

/* ------------------------------------------------------------------ utf8 */

/* True when s[0..n) is well-formed UTF-8 (no overlongs, no surrogates). */
bool utf8_valid(const char *s, size_t n);
/*
 * Cut a valid UTF-8 string to the prompt limit: LIMIT_PROMPT_CHARS code
 * points, or LIMIT_PROMPT_CHARS_CJK when it contains a CJK ideograph.
 * Returns the byte length to keep.
 */
size_t utf8_prompt_cut(const char *s, size_t n);
/* A copy of the C string s (caller frees) that is valid UTF-8: each byte
 * that does not start a well-formed sequence becomes U+FFFD. For text from
 * outside (a program's stderr, a message cut short) bound for a client. */
char *utf8_fix_dup(const char *s);

/* ----------------------------------------------------------------- misc */

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Parse a decimal int64 in [min, max] from the whole of s; 0 or
 * ERR_INVALID_PARAMETER. */
int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

#endif
