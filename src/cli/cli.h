/*
 * cli: paddock as a client of any HappyHorse endpoint (paddock itself,
 * TTAPI, DashScope): `paddock submit|get|wait|cancel|list|download`.
 *
 * - flags: one table (cli.c) gives every option, the commands that take it
 *   and its help line; `paddock help COMMAND` is printed from it. Values are
 *   checked before anything is sent, with messages naming the flag (exit 2).
 * - dialects: DashScope (Authorization: Bearer, X-DashScope-Async on submit,
 *   /api/v1/...) and TTAPI (TT-API-KEY, /happyhorse/api/v1/...), chosen by
 *   --dialect or guessed from the base URL; the key comes from --key or the
 *   environment (PADDOCK_API_KEY, DASHSCOPE_API_KEY, TT_API_KEY).
 * - inputs: URLs are passed on; local JPEG/PNG/WEBP images go inline as
 *   data: URLs (LIMIT_IMAGE_BYTES each); a local MP4/MOV video goes to a
 *   paddock server through its upload extension (POST /api/v1/uploads,
 *   then a paddock-upload:// URL), and is refused by any other endpoint
 *   (GET /api/v1/models, paddock's, tells them apart).
 * - waiting: polls back off from CLI_POLL_MIN_MS to CLI_POLL_MAX_MS (reset
 *   when the status changes), honour Retry-After on 429 and 503, and stop at
 *   --timeout; on a terminal, a live status line on stderr.
 * - downloads: no auth header, HTTP 200 required, CLI_DOWNLOAD_BYTES at most,
 *   written as they arrive to a temp file beside the target, then renamed.
 * - output: text for people; with --json the server's answers, one JSON
 *   document per line, on stdout. Strings from the server are shown with
 *   control characters replaced (no terminal escapes from a remote host).
 *
 * The protocol (endpoint, requests, answers, polling, the download) is
 * hh's, which the upstream relay shares; the requests go through
 * net_http, which has no address guard: the CLI talks to whatever
 * endpoint its user names, 127.0.0.1 included.
 *
 * Threads: one. cli_run is the process's whole work: it catches SIGINT and
 * SIGTERM (the command then stops at the next chance: exit 130, temp files
 * removed); cli_connect calls net_global_init, cli_run its fini.
 * Ownership: nothing outlives cli_run. A struct cli_opts borrows its strings
 * from argv.
 */
#ifndef PADDOCK_CLI_H
#define PADDOCK_CLI_H

#include "../core/core.h"
#include "../hh/hh.h"
#include "../net/net.h"

#include <stdio.h>

/* ---------------------------------------------------------------- limits */

/* A result video: 15 s of 1080P is tens of MB; far more is not a video. */
#define CLI_DOWNLOAD_BYTES (2LL << 30)
/* One query, cancel or list exchange. */
#define CLI_CALL_TIMEOUT_MS 60000
/* A submit: its body may carry nine inline 20 MB images. */
#define CLI_SUBMIT_TIMEOUT_MS 300000
/* An upload: a 100 MB video over a slow uplink. */
#define CLI_UPLOAD_TIMEOUT_MS 900000
/* A download that receives nothing for this long is dead. */
#define CLI_STALL_MS 60000
/* Redirects a download may follow (storage links may redirect once). */
#define CLI_DOWNLOAD_REDIRECTS 5
/* Polling interval: from the minimum, x1.5 per poll, to the maximum. */
#define CLI_POLL_MIN_MS 1000
#define CLI_POLL_MAX_MS 5000
/* A longer Retry-After is taken as this many seconds. */
#define CLI_RETRY_AFTER_MAX_S 300
/* 429/503 answers a one-shot command (submit, get, ...) rides out. */
#define CLI_RETRIES 3
/* Consecutive network errors and 5xx answers `wait` rides out. */
#define CLI_TRANSIENT_MAX 5
/* `wait --timeout`: the default and the largest accepted. */
#define CLI_WAIT_DEFAULT_MS (30LL * 60 * 1000)
#define CLI_WAIT_MAX_MS     (7LL * 24 * 3600 * 1000)
/* A list filter value (--status, --model). */
#define CLI_FILTER_MAX LIMIT_MODEL_NAME
/* Characters of a server string (message, field) shown in text output. */
#define CLI_SHOW_MAX 2000

/* Exit statuses, documented in every command's help and docs/cli.md. */
enum cli_exit {
    CLI_EXIT_OK = 0,           /* done (wait/download: the task SUCCEEDED) */
    CLI_EXIT_TASK = 1,         /* the task FAILED, was CANCELED or UNKNOWN */
    CLI_EXIT_USAGE = 2,        /* bad flags or inputs; nothing was sent */
    CLI_EXIT_HTTP = 3,         /* network or HTTP error, or a local write */
    CLI_EXIT_UNFINISHED = 4,   /* --timeout passed; task not finished yet */
    CLI_EXIT_INTERRUPTED = 130 /* SIGINT or SIGTERM */
};

/* ----------------------------------------------------------- for main.c */

/* True when `name` is one of the client commands ("submit", "get", ...). */
bool cli_is_command(const char *name);
/* Run client command `name` with its arguments (argv after the command
 * name); returns the process exit status (enum cli_exit). */
int cli_run(const char *name, int argc, char **argv);
/* Print the manual of command `name` to out; 0, or 2 when no such
 * command. */
int cli_help(const char *name, FILE *out);

/* ---------------- between the files of src/cli and tests/unit/test_cli.c */

enum cli_cmd {
    CLI_SUBMIT,
    CLI_GET,
    CLI_WAIT,
    CLI_CANCEL,
    CLI_LIST,
    CLI_DOWNLOAD,
    CLI_WEBHOOKS,
    CLI_USAGE,
    CLI__CMDS
};

/* The flags as given (strings borrowed from argv); checked where used. */
struct cli_opts {
    const char *base_url, *dialect, *key;
    bool json, help;
    /* submit */
    const char *model, *prompt, *image, *video;
    /* Not a flag: the paddock-upload:// URL a local --video became (set by
     * the submit command after its upload; NULL before). */
    const char *video_upload;
    const char *refs[LIMIT_MEDIA_ITEMS];
    size_t n_refs;
    const char *resolution, *ratio, *duration, *seed, *audio_setting;
    bool no_watermark, wait;
    /* wait, download, submit --wait */
    const char *timeout, *output;
    /* list (--model is shared with submit) */
    const char *status, *page, *page_size;
    /* get, wait, cancel, download; webhooks: the webhook id */
    const char *task_id;
    /* webhooks: create|list|delete|deliveries, and create's flags */
    const char *action, *url, *events;
    /* usage */
    const char *start, *end, *group_by, *key_id;
    bool csv;
};

/* One running command. */
struct cli {
    enum cli_cmd cmd;
    struct cli_opts o;
    struct hh_endpoint ep;
    struct net_http *http;
    struct hh_client hc;         /* over ep and http, once connected */
    const atomic_bool *stop;     /* set by SIGINT/SIGTERM */
    bool tty;                    /* stderr is a terminal: live status lines */
    bool net_up;                 /* net_global_init has run */
    char idem[UUID_STR_LEN + 1]; /* this run's submit Idempotency-Key */
};

/* Parse argv (after the command name) into *o; ERR_INVALID_PARAMETER with
 * a message naming the flag. With --help, nothing else is required. */
int cli_parse(enum cli_cmd cmd, int argc, char **argv, struct cli_opts *o,
              struct errmsg *err);
/* Resolve base URL (a trailing /api/v1 dropped, as SDKs give it),
 * dialect and key from *o, falling back on `env` (getenv, or a stand-in in
 * tests); ERR_INVALID_PARAMETER naming the flag or variable. Release with
 * hh_endpoint_fini, also after a failure. */
int cli_endpoint_init(struct hh_endpoint *ep, const struct cli_opts *o,
                      char *(*env)(const char *), struct errmsg *err);
/* The dialect a base URL suggests: a host containing "ttapi" or a path
 * ending in /happyhorse is TTAPI; anything else DashScope. */
enum hh_dialect cli_guess_dialect(const char *url);
/* "video/mp4" (an ISO media file: MP4, MOV) from the first 12 bytes, or
 * NULL. */
const char *cli_video_type(const void *p, size_t n);
/* Check the flags (values, the model's inputs, local files as far as
 * stat and their first bytes) without reading files or writing a body;
 * notes about ignored flags go to `warn` (may be NULL). 0 or
 * ERR_INVALID_PARAMETER naming the flag. */
int cli_submit_check(const struct cli_opts *o, FILE *warn, struct errmsg *err);
/* True when a --video value is a local file (not a URL): it must be
 * uploaded to a paddock server (o->video_upload) before the body. */
bool cli_local_video(const struct cli_opts *o);
/* The submit body for *o (flags checked, local images read and inlined),
 * into *body; ERR_INVALID_PARAMETER naming the flag (a local --video
 * without o->video_upload: the refusal of an endpoint that is not
 * paddock). Warnings about flags the model ignores go to `warn` (may be
 * NULL). */
int cli_submit_body(const struct cli_opts *o, struct buf *body, FILE *warn,
                    struct errmsg *err);
/* Expand a --model value ("t2v", "1.1-i2v", a full name) into out;
 * ERR_INVALID_PARAMETER for what cannot be a model name. */
int cli_model(const char *arg, char out[LIMIT_MODEL_NAME + 1],
              struct errmsg *err);
/* --timeout into *ms (CLI_WAIT_DEFAULT_MS when absent); naming the flag. */
int cli_timeout(const struct cli_opts *o, int64_t *ms, struct errmsg *err);
/* After a command's own checks: resolve the endpoint and key (exit 2 when
 * they are wrong) and set up HTTP (exit 3); CLI_EXIT_OK when ready. */
int cli_connect(struct cli *c);
/* Print a usage error of the running command; returns CLI_EXIT_USAGE. */
int cli_usage_error(const struct cli *c, const struct errmsg *err);
/* Check an -o target before any work: "-" (stdout), or a file whose
 * directory exists and is writable; ERR_INVALID_PARAMETER. */
int cli_check_output(const char *path, struct errmsg *err);

/* call.c: requests, answers, output. */

/* A request without a body (GET, or a POST like cancel) to ep.root + path
 * that must answer 200 with a JSON object, riding out up to CLI_RETRIES
 * 429/503 answers (Retry-After). CLI_EXIT_OK with *a, or the failure
 * reported on stderr and its exit status; *a is to be released either
 * way. */
int cli_call(struct cli *c, const char *method, const char *path,
             struct hh_answer *a);
/* cli_call with a JSON body (a webhook create). */
int cli_call_body(struct cli *c, const char *method, const char *path,
                  const struct buf *body, struct hh_answer *a);
/* The submit of `body` likewise, with this run's Idempotency-Key. */
int cli_call_submit(struct cli *c, const struct buf *body, struct hh_answer *a);
/* The exit status of a request's result: CLI_EXIT_OK when an answer
 * arrived (rc >= 0); else the failure (interrupted, or no answer) reported
 * on stderr and its status. */
int cli_request_exit(int rc, const struct errmsg *err);
/* Report a non-200 answer on stderr: HTTP status, the server's code and
 * message, its request id; with --json the body also goes to stdout. */
void cli_report_http(const struct cli *c, const struct hh_answer *a);
/* With --json: the answer as one line on stdout. */
void cli_print_json(const struct cli *c, const struct hh_answer *a);
/* Write s to f with control characters replaced by '?', at most max
 * bytes. */
void cli_put_clean(FILE *f, const char *s, size_t max);
/* How the task ended, on stderr ("task ID FAILED: CODE: message"; nothing
 * for SUCCEEDED); returns its exit status: 0 SUCCEEDED, 1 FAILED,
 * CANCELED or UNKNOWN (no status counts as UNKNOWN), 4 any other. */
int cli_report_status(const char *task_id, const struct hh_task *t);

/* The task's video_url when it SUCCEEDED with an http(s) link (borrowed);
 * else NULL, said on stderr. */
const char *cli_video_url(const char *task_id, const struct hh_task *t);

/* The commands (submit.c, query.c, watch.c). */
int cli_cmd_submit(struct cli *c);
int cli_cmd_get(struct cli *c);
int cli_cmd_wait(struct cli *c);
int cli_cmd_cancel(struct cli *c);
int cli_cmd_list(struct cli *c);
int cli_cmd_download(struct cli *c);
/* webhooks.c: paddock webhooks create|list|delete|deliveries. */
int cli_cmd_webhooks(struct cli *c);
int cli_cmd_usage(struct cli *c); /* usage.c */

/* watch.c: poll task_id until it ends or timeout_ms passes; with `out`,
 * download the video there. just_submitted: the caller just saw the task
 * PENDING (after submit), so the first poll waits. Returns the exit
 * status. */
int cli_wait_task(struct cli *c, const char *task_id, int64_t timeout_ms,
                  const char *out, bool just_submitted);
/* Fetch `url` (no auth) into `path` ("-": stdout); the exit status. */
int cli_download_url(struct cli *c, const char *url, const char *path);

#endif
