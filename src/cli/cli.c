/*
 * The client commands' tables (commands, options), flag parsing, the
 * endpoint (base URL, dialect, key), the manual pages, and cli_run.
 */
#include "cli.h"

#include <jansson.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define DEFAULT_BASE_URL "http://127.0.0.1:8080"

#define ON(cmd)  (1u << (cmd))
#define ALL_CMDS (ON(CLI__CMDS) - 1)
#define TASK_CMDS \
    (ON(CLI_GET) | ON(CLI_WAIT) | ON(CLI_CANCEL) | ON(CLI_DOWNLOAD))

/* ------------------------------------------------------------- commands */

static const struct command {
    const char *name;
    enum cli_cmd cmd;
    int (*run)(struct cli *c);
    const char *summary;
    const char *synopsis;
    const char *description;
    const char *exit_notes; /* what 0 and 1 mean for this command */
    const char *examples;
} commands[] = {
    { "submit", CLI_SUBMIT, cli_cmd_submit, "create a video-generation task",
      "paddock submit [--model MODEL] [--prompt TEXT] [--image FILE|URL]\n"
      "               [--ref FILE|URL]... [--video FILE|URL]\n"
      "               [--resolution R] [--ratio R] [--duration S] [--seed N]\n"
      "               [--no-watermark] [--audio-setting auto|origin]\n"
      "               [--wait [--timeout T] [-o FILE]] [common options]",
      "Submits one task and prints its task id on standard output. Flags "
      "are checked before anything is sent; for the HappyHorse models "
      "(happyhorse-1.0/1.1-t2v, -i2v, -r2v, happyhorse-1.0-video-edit) the "
      "inputs each model needs are checked too. Other model names are "
      "passed on unchecked, so newer models of an endpoint work.\n"
      "Images may be URLs or local JPEG, PNG or WEBP files: a local file "
      "is sent inline as a data: URL (at most 20 MB; its type comes from "
      "its first bytes, not its name). A video is an http(s) URL the "
      "server can fetch, or a local MP4 or MOV file of at most 100 MB: a "
      "paddock server takes it through its upload extension (POST "
      "/api/v1/uploads, then a paddock-upload:// URL; told apart from "
      "other endpoints by GET /api/v1/models, which only paddock serves); "
      "any other endpoint gets a refusal (exit 2) before anything but that "
      "look is sent.\n"
      "With --wait the command goes on as `paddock wait` would, and with "
      "-o it downloads the video too: submit, wait and download in one.",
      "0: the task was accepted (with --wait: it SUCCEEDED, and with -o "
      "the file is written). 1 (with --wait): it FAILED or was CANCELED.",
      "paddock submit --model t2v --prompt 'a horse on a beach' \\\n"
      "    --resolution 720P --duration 5\n"
      "paddock submit --model i2v --image first.png --wait -o out.mp4\n"
      "paddock submit --video clip.mp4 --prompt 'make it snow' --wait \\\n"
      "    -o snow.mp4\n"
      "paddock submit --model r2v --prompt '[Image 1] runs' --ref a.jpg "
      "\\\n    --ref https://example.com/b.png\n"
      "id=$(paddock submit --prompt 'rain on a window') && paddock wait "
      "\"$id\"" },
    { "get", CLI_GET, cli_cmd_get, "show one task",
      "paddock get TASK_ID [common options]",
      "Queries the task once and prints its fields: status, times, the "
      "prompt, and video_url and usage when it SUCCEEDED, or code and "
      "message when it FAILED. The server's progress is shown when it "
      "reports one.",
      "0: the task is PENDING, RUNNING or SUCCEEDED. 1: it FAILED, was "
      "CANCELED, or is UNKNOWN (no such task, expired, or another key's).",
      "paddock get 0190f0a2-7c1e-7d3a-9a51-3f2b8c1d4e5f\n"
      "paddock get \"$id\" --json | jq -r .output.task_status" },
    { "wait", CLI_WAIT, cli_cmd_wait, "wait for a task to finish",
      "paddock wait TASK_ID [--timeout T] [-o FILE] [common options]",
      "Follows the task until it SUCCEEDED, FAILED or was CANCELED: "
      "through paddock's status stream (GET .../tasks/ID/events) when the "
      "server offers one, else by polls. Polls start one second apart "
      "and slow down to five seconds while nothing changes; a change of "
      "status brings them back to one second. A 429 "
      "or 503 answer is retried after the server's Retry-After; a few "
      "network errors or 5xx answers in a row are ridden out.\n"
      "On a terminal, a status line on standard error shows the status, "
      "the time waited and the progress when the server reports one. At "
      "the end the video URL is printed on standard output, or with -o the "
      "video is downloaded (as `paddock download`).",
      "0: the task SUCCEEDED (with -o: and the file is written). 1: it "
      "FAILED (code and message are printed), was CANCELED, or is UNKNOWN. "
      "4: --timeout passed first; the task goes on.",
      "paddock wait \"$id\" --timeout 10m -o horse.mp4\n"
      "paddock wait \"$id\" --json | tail -n 1 | jq -r .output.video_url" },
    { "cancel", CLI_CANCEL, cli_cmd_cancel, "cancel a pending task",
      "paddock cancel TASK_ID [common options]",
      "Cancels a task that has not started: only a PENDING task can be "
      "canceled; the server refuses any other (HTTP 400 "
      "UnsupportedOperation, exit 3). TTAPI itself does not document "
      "cancel; paddock serves it on both dialects.",
      "0: the task is canceled.", "paddock cancel \"$id\"" },
    { "list", CLI_LIST, cli_cmd_list, "list your tasks",
      "paddock list [--status S] [--model MODEL] [--page N] [--page-size "
      "N]\n             [common options]",
      "Lists the key's tasks of the last 24 hours, newest first, one page "
      "at a time: task id, status, model, creation and end time (in local "
      "time), and the failure code.",
      "0: the page was listed.",
      "paddock list --status FAILED\n"
      "paddock list --page-size 100 --json | jq -r '.data[].task_id'" },
    { "download", CLI_DOWNLOAD, cli_cmd_download,
      "download the video of a finished task",
      "paddock download TASK_ID [-o FILE] [common options]",
      "Queries the task for its video_url and fetches it, without any "
      "key (the link is signed), into FILE (default: TASK_ID.mp4; '-' "
      "for standard output). The video is written as it arrives to a "
      "temporary file beside FILE and renamed when complete, so FILE is "
      "never half written; anything but HTTP 200 is an error.",
      "0: the file is written. 1: the task FAILED, was CANCELED or is "
      "UNKNOWN. 4: the task has not finished yet (see paddock wait).",
      "paddock download \"$id\" -o horse.mp4\n"
      "paddock download \"$id\" -o - | ffprobe -" },
    { "webhooks", CLI_WEBHOOKS, cli_cmd_webhooks,
      "manage your webhook endpoints (paddock)",
      "paddock webhooks create --url URL [--events LIST] [common options]\n"
      "       paddock webhooks list [common options]\n"
      "       paddock webhooks delete WEBHOOK_ID [common options]\n"
      "       paddock webhooks deliveries WEBHOOK_ID [--page N] "
      "[--page-size N]\n       [common options]",
      "A paddock server pushes the key's task events (task.running, "
      "task.succeeded, task.failed, task.canceled) to its webhook "
      "endpoints, signed the Standard Webhooks way "
      "(docs/extensions.md). create registers one and prints its id and "
      "its secret, shown this once; list shows the key's endpoints; "
      "delete removes one; deliveries shows its latest deliveries: event, "
      "attempt, status, time and error.",
      "0: done.",
      "paddock webhooks create --url https://example.com/hooks \\\n"
      "    --events task.succeeded,task.failed\n"
      "paddock webhooks deliveries \"$hook\" --page-size 50" },
    { "usage", CLI_USAGE, cli_cmd_usage, "report the key's billed usage",
      "paddock usage [--start T] [--end T] [--group-by G] [--key-id ID] "
      "[--csv]\n              [common options]",
      "Asks a paddock server (GET /api/v1/usage) for the key's settled "
      "usage: tasks, billed seconds and amount, in total and per group "
      "(model, day, resolution; an admin key also key), over [--start, "
      "--end] (YYYYMMDDhhmmss in the server's time zone; default the last "
      "30 days, at most 366). Failed and canceled tasks cost nothing and "
      "do not appear. With --csv the rows go to standard output as CSV "
      "(a header line, then one line per group) for a spreadsheet or a "
      "billing system; the ledger outlives the tasks (--usage-retention "
      "on the server, 400 days by default).",
      "0: the report was printed.",
      "paddock usage --group-by day --start 20261201000000\n"
      "paddock usage --csv --group-by key --key $ADMIN_KEY > usage.csv" },
};

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

bool cli_is_command(const char *name)
{
    return find_command(name) != NULL;
}

/* -------------------------------------------------------------- options */

/* K_LIST appends to cli_opts.refs (--ref is the one repeatable flag). */
enum opt_kind { K_STR, K_BOOL, K_LIST };

/* Rows may share a name with different commands and help. */
static const struct opt {
    const char *name; /* "--model" */
    char short_name;  /* 'o', or 0 */
    enum opt_kind kind;
    size_t off;      /* the field of struct cli_opts */
    unsigned cmds;   /* ON(CLI_...) of the commands taking it */
    const char *arg; /* the value's name in help; NULL for flags */
    const char *help;
} opts[] = {
#define F(field) offsetof(struct cli_opts, field)
    { "--model", 0, K_STR, F(model), ON(CLI_SUBMIT), "MODEL",
      "happyhorse-1.0-t2v, -i2v, -r2v, happyhorse-1.0-video-edit, a 1.1 "
      "model, or a shortcut: t2v, i2v, r2v, edit (the 1.0 models). Default: "
      "from the inputs: --video means edit, --ref r2v, --image i2v, and "
      "none t2v." },
    { "--prompt", 0, K_STR, F(prompt), ON(CLI_SUBMIT), "TEXT",
      "What to generate: required by t2v, r2v and video-edit, optional "
      "for i2v. The server keeps up to 5000 characters (2500 with Chinese "
      "text)." },
    { "--image", 0, K_STR, F(image), ON(CLI_SUBMIT), "FILE|URL",
      "The first frame, for i2v: an http(s) URL, a data: URL, or a local "
      "JPEG, PNG or WEBP file of at most 20 MB, sent inline." },
    { "--ref", 0, K_LIST, F(refs), ON(CLI_SUBMIT), "FILE|URL",
      "A reference image, as for --image; repeat it for more, in order "
      "([Image 1], [Image 2], ...): r2v takes 1 to 9, video-edit 0 to 5." },
    { "--video", 0, K_STR, F(video), ON(CLI_SUBMIT), "FILE|URL",
      "The video to edit, for video-edit (MP4 or MOV, 3 to 60 s): an "
      "http(s) URL the server can fetch, a paddock-upload:// URL of an "
      "earlier upload, or a local file of at most 100 MB, uploaded first "
      "when the server is paddock (other endpoints fetch videos by URL "
      "only: put the file where they can fetch it)." },
    { "--resolution", 0, K_STR, F(resolution), ON(CLI_SUBMIT), "R",
      "480P, 720P or 1080P (the server's default: 1080P)." },
    { "--ratio", 0, K_STR, F(ratio), ON(CLI_SUBMIT), "R",
      "16:9 (default), 9:16, 1:1, 4:3, 3:4, 4:5, 5:4, 21:9 or 9:21; for "
      "t2v and r2v (i2v and video-edit follow their input)." },
    { "--duration", 0, K_STR, F(duration), ON(CLI_SUBMIT), "SECONDS",
      "Length of the video, 3 to 15 (default 5); video-edit keeps its "
      "input's length." },
    { "--seed", 0, K_STR, F(seed), ON(CLI_SUBMIT), "N",
      "0 to 2147483647; the same seed and inputs give the same video on "
      "paddock's sandbox engine. Default: random." },
    { "--no-watermark", 0, K_BOOL, F(no_watermark), ON(CLI_SUBMIT), NULL,
      "No visible mark in the bottom-right corner." },
    { "--audio-setting", 0, K_STR, F(audio_setting), ON(CLI_SUBMIT),
      "auto|origin",
      "video-edit: keep the source audio (origin) or not "
      "(auto, the default)." },
    { "--wait", 0, K_BOOL, F(wait), ON(CLI_SUBMIT), NULL,
      "Then wait for the task to finish, as paddock wait does." },
    { "--timeout", 0, K_STR, F(timeout), ON(CLI_SUBMIT) | ON(CLI_WAIT), "T",
      "Give up waiting after T (e.g. 90s, 10m, 1h30m; a bare number is "
      "seconds) with exit status 4; the task goes on. Default: 30m; at "
      "most 7 days." },
    { "--output", 'o', K_STR, F(output), ON(CLI_SUBMIT) | ON(CLI_WAIT), "FILE",
      "When the task SUCCEEDED, download the video to FILE ('-': standard "
      "output). With submit it needs --wait." },
    { "--output", 'o', K_STR, F(output), ON(CLI_DOWNLOAD), "FILE",
      "Where to write the video (default: TASK_ID.mp4; '-': standard "
      "output). Its directory must exist." },
    { "--status", 0, K_STR, F(status), ON(CLI_LIST), "S",
      "Only tasks in status S: PENDING, RUNNING, SUCCEEDED, FAILED or "
      "CANCELED." },
    { "--model", 0, K_STR, F(model), ON(CLI_LIST), "MODEL",
      "Only tasks of this model (a shortcut such as t2v is expanded as "
      "for submit)." },
    { "--url", 0, K_STR, F(url), ON(CLI_WEBHOOKS), "URL",
      "create: the endpoint, an http:// or https:// URL the server can "
      "reach (private addresses only with its --fetch-allow)." },
    { "--events", 0, K_STR, F(events), ON(CLI_WEBHOOKS), "LIST",
      "create: comma-separated events: task.running, task.succeeded, "
      "task.failed, task.canceled (default: all four)." },
    { "--page", 0, K_STR, F(page), ON(CLI_LIST) | ON(CLI_WEBHOOKS), "N",
      "Page number, from 1 (default 1)." },
    { "--page-size", 0, K_STR, F(page_size), ON(CLI_LIST) | ON(CLI_WEBHOOKS),
      "N", "Tasks per page, 1 to 100 (default 10)." },
    { "--start", 0, K_STR, F(start), ON(CLI_USAGE), "YYYYMMDDhhmmss",
      "The report's first second (default: 30 days before its end)." },
    { "--end", 0, K_STR, F(end), ON(CLI_USAGE), "YYYYMMDDhhmmss",
      "The report's last second (default: now)." },
    { "--group-by", 0, K_STR, F(group_by), ON(CLI_USAGE), "G",
      "model (default), day, resolution, or key (admin keys)." },
    { "--key-id", 0, K_STR, F(key_id), ON(CLI_USAGE), "ID",
      "Another key's usage (admin keys)." },
    { "--csv", 0, K_BOOL, F(csv), ON(CLI_USAGE), NULL,
      "Rows as CSV on standard output: GROUP,tasks,seconds,amount." },
    { "--base-url", 0, K_STR, F(base_url), ALL_CMDS, "URL",
      "The endpoint: paddock (http://HOST:PORT), TTAPI "
      "(https://api.ttapi.io) or DashScope "
      "(https://dashscope.aliyuncs.com, or dashscope-intl). A trailing "
      "/api/v1 is ignored. Default: $PADDOCK_BASE_URL, else " DEFAULT_BASE_URL
      "." },
    { "--dialect", 0, K_STR, F(dialect), ALL_CMDS, "ttapi|dashscope",
      "The API dialect. Default: guessed from the base URL: a host "
      "containing 'ttapi' (or a path ending in /happyhorse) is ttapi, "
      "anything else dashscope. paddock serves both." },
    { "--key", 0, K_STR, F(key), ALL_CMDS, "KEY",
      "The API key. Default: $PADDOCK_API_KEY, else $DASHSCOPE_API_KEY, "
      "else $TT_API_KEY. Prefer the environment: other users of the "
      "machine can read command lines." },
    { "--json", 0, K_BOOL, F(json), ON(CLI_WAIT) | ON(CLI_SUBMIT), NULL,
      "Print the server's answers on standard output, one JSON document "
      "per line: the submit answer, then (when waiting) each poll's answer "
      "whose status or progress changed, the last one included." },
    { "--json", 0, K_BOOL, F(json), ALL_CMDS & ~(ON(CLI_WAIT) | ON(CLI_SUBMIT)),
      NULL,
      "Print the server's answer on standard output as one line of JSON "
      "instead of text (error answers too, with the exit status as "
      "usual)." },
    { "--help", 'h', K_BOOL, F(help), ALL_CMDS, NULL, "This manual." },
#undef F
};

static const struct opt *find_opt(const char *name, size_t len, bool is_short,
                                  enum cli_cmd cmd, bool *elsewhere)
{
    *elsewhere = false;
    for (size_t i = 0; i < ARRAY_LEN(opts); i++) {
        const struct opt *p = &opts[i];
        bool match = is_short ? p->short_name == name[0]
                              : strlen(p->name) == len &&
                                    memcmp(p->name, name, len) == 0;
        if (!match)
            continue;
        if (p->cmds & ON(cmd))
            return p;
        *elsewhere = true;
    }
    return NULL;
}

static const char *cmd_name(enum cli_cmd cmd)
{
    for (size_t i = 0; i < ARRAY_LEN(commands); i++)
        if (commands[i].cmd == cmd)
            return commands[i].name;
    return "?";
}

static int set_value(const struct opt *p, struct cli_opts *o, const char *value,
                     struct errmsg *err)
{
    if (p->kind == K_LIST) {
        if (o->n_refs >= LIMIT_MEDIA_ITEMS)
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "%s: at most %d (a task takes at most %d "
                              "images)",
                              p->name, LIMIT_MEDIA_ITEMS, LIMIT_MEDIA_ITEMS);
        o->refs[o->n_refs++] = value;
    } else { /* the last one given wins, as usual */
        *(const char **)(void *)((char *)o + p->off) = value;
    }
    return 0;
}

int cli_parse(enum cli_cmd cmd, int argc, char **argv, struct cli_opts *o,
              struct errmsg *err)
{
    const char *extra = NULL;
    bool no_more = false;

    memset(o, 0, sizeof(*o));
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *value = NULL, *name = a;
        size_t len;
        bool is_short = false, elsewhere;
        if (no_more || a[0] != '-' || a[1] == '\0') {
            if (cmd == CLI_WEBHOOKS && !o->action)
                o->action = a;
            else if (cmd == CLI_WEBHOOKS && !o->task_id)
                o->task_id = a;
            else if (o->task_id || !(TASK_CMDS & ON(cmd)))
                extra = extra ? extra : a;
            else
                o->task_id = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            no_more = true;
            continue;
        }
        if (a[1] == '-') {
            const char *eq = strchr(a, '=');
            len = eq ? (size_t)(eq - a) : strlen(a);
            value = eq ? eq + 1 : NULL;
        } else { /* -o FILE, -oFILE, -h */
            is_short = true;
            name = a + 1;
            len = 1;
            value = a[2] ? a + 2 : NULL;
        }
        const struct opt *p = find_opt(name, len, is_short, cmd, &elsewhere);
        if (!p) {
            if (elsewhere)
                return errmsg_set(err, ERR_INVALID_PARAMETER,
                                  "%.*s does not apply to paddock %s",
                                  (int)(is_short ? 2 : len), a, cmd_name(cmd));
            return errmsg_set(err, ERR_INVALID_PARAMETER, "unknown option %.*s",
                              (int)(is_short ? 2 : len), a);
        }
        if (p->kind == K_BOOL) {
            if (value)
                return errmsg_set(err, ERR_INVALID_PARAMETER,
                                  "%s takes no value", p->name);
            *(bool *)((char *)o + p->off) = true;
            continue;
        }
        if (!value) {
            if (i + 1 >= argc)
                return errmsg_set(err, ERR_INVALID_PARAMETER,
                                  "%s needs a value (%s)", p->name, p->arg);
            value = argv[++i];
        }
        if (set_value(p, o, value, err) < 0)
            return err->code;
    }
    if (o->help)
        return 0;
    if (extra)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "unexpected argument '%.*s'", 100, extra);
    if ((TASK_CMDS & ON(cmd)) && !o->task_id)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "TASK_ID is missing: paddock %s TASK_ID [options]",
                          cmd_name(cmd));
    if (o->task_id && !hh_id_ok(o->task_id)) /* it goes into a URL path */
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "TASK_ID '%.*s' is not a task id (letters, digits, "
                          "'-', '_' and '.', at most %d)",
                          100, o->task_id, HH_ID_MAX);
    if (o->dialect && strcmp(o->dialect, "ttapi") != 0 &&
        strcmp(o->dialect, "dashscope") != 0)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "--dialect: '%.*s' is not ttapi or dashscope", 40,
                          o->dialect);
    if (cmd == CLI_SUBMIT && o->output && !o->wait)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "-o needs --wait with submit (or use paddock wait "
                          "TASK_ID -o FILE)");
    if (cmd == CLI_SUBMIT && o->timeout && !o->wait)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "--timeout needs --wait with submit");
    return 0;
}

/* ------------------------------------------------------------- endpoint */

/* The host part of scheme://[user@]host[:port]/..., into out. */
static void url_host(const char *url, char *out, size_t size)
{
    const char *s = strstr(url, "://");
    s = s ? s + 3 : url;
    size_t n = strcspn(s, "/?#");
    const char *at = memchr(s, '@', n);
    if (at) {
        n -= (size_t)(at + 1 - s);
        s = at + 1;
    }
    snprintf(out, size, "%.*s", (int)n, s);
}

static bool ends_with_ci(const char *s, size_t n, const char *tail)
{
    size_t t = strlen(tail);
    return n >= t && strncasecmp(s + n - t, tail, t) == 0;
}

enum hh_dialect cli_guess_dialect(const char *url)
{
    char host[256];
    url_host(url, host, sizeof(host));
    for (char *p = host; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    size_t n = strcspn(url, "?#");
    while (n > 0 && url[n - 1] == '/')
        n--;
    if (strstr(host, "ttapi") || ends_with_ci(url, n, "/happyhorse"))
        return HH_TTAPI;
    return HH_DASHSCOPE;
}

static const char *const key_vars[] = { "PADDOCK_API_KEY", "DASHSCOPE_API_KEY",
                                        "TT_API_KEY" };

int cli_endpoint_init(struct hh_endpoint *ep, const struct cli_opts *o,
                      char *(*env)(const char *), struct errmsg *err)
{
    const char *base = o->base_url, *base_from = "--base-url";
    const char *key = o->key, *key_from = "--key";
    enum hh_dialect dialect;

    memset(ep, 0, sizeof(*ep));
    if (!base) {
        base = env("PADDOCK_BASE_URL");
        base_from = "$PADDOCK_BASE_URL";
        if (!base || !base[0]) {
            base = DEFAULT_BASE_URL;
            base_from = "the default base URL";
        }
    }
    if (!hh_base_ok(base))
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "%s: '%.*s' is not an http:// or https:// URL "
                          "(like https://dashscope.aliyuncs.com or "
                          "http://127.0.0.1:8080)",
                          base_from, 200, base);
    /* Accept the base URLs SDKs use: a trailing / or /api/v1 goes. */
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    if (ends_with_ci(base, n, "/api/v1"))
        n -= strlen("/api/v1");

    if (o->dialect)
        dialect = strcmp(o->dialect, "ttapi") == 0 ? HH_TTAPI : HH_DASHSCOPE;
    else
        dialect = cli_guess_dialect(base);

    for (size_t i = 0; !key && i < ARRAY_LEN(key_vars); i++) {
        const char *v = env(key_vars[i]);
        if (v && v[0]) {
            key = v;
            key_from = key_vars[i];
        }
    }
    if (!key)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "no API key: give --key or set PADDOCK_API_KEY, "
                          "DASHSCOPE_API_KEY or TT_API_KEY");
    if (!hh_key_ok(key))
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "%s%s: an API key is 1 to %d printable ASCII "
                          "characters without spaces",
                          key_from[0] == '-' ? "" : "$", key_from,
                          LIMIT_KEY_BYTES);
    char *root = xstrndup(base, n);
    int ret = hh_endpoint_init(ep, dialect, root, key, err);
    free(root);
    return ret;
}

/* ---------------------------------------------------------------- help */

/* Paragraphs of `text` ('\n' ends one) wrapped at 78 columns, indented. */
static void wrap(FILE *out, int indent, const char *text)
{
    const int width = 78;
    while (*text) {
        size_t para = strcspn(text, "\n");
        const char *p = text, *end = text + para;
        while (p < end) {
            int col = indent;
            fprintf(out, "%*s", indent, "");
            bool first = true;
            while (p < end) {
                while (p < end && *p == ' ')
                    p++;
                size_t w = strcspn(p, " \n");
                if (p + w > end)
                    w = (size_t)(end - p);
                if (w == 0)
                    break;
                if (!first && col + 1 + (int)w > width)
                    break;
                fprintf(out, "%s%.*s", first ? "" : " ", (int)w, p);
                col += (first ? 0 : 1) + (int)w;
                first = false;
                p += w;
            }
            fputc('\n', out);
        }
        text = *end ? end + 1 : end;
    }
}

/* Lines as they are (synopsis, examples), indented. */
static void verbatim(FILE *out, int indent, const char *text)
{
    while (*text) {
        size_t n = strcspn(text, "\n");
        fprintf(out, "%*s%.*s\n", indent, "", (int)n, text);
        text += n + (text[n] == '\n');
    }
}

static void print_opts(FILE *out, enum cli_cmd cmd, bool common)
{
    for (size_t i = 0; i < ARRAY_LEN(opts); i++) {
        const struct opt *p = &opts[i];
        if (!(p->cmds & ON(cmd)) || (p->cmds == ALL_CMDS) != common)
            continue;
        char head[80];
        if (p->short_name)
            snprintf(head, sizeof(head), "-%c, %s%s%s", p->short_name, p->name,
                     p->arg ? " " : "", p->arg ? p->arg : "");
        else
            snprintf(head, sizeof(head), "%s%s%s", p->name, p->arg ? " " : "",
                     p->arg ? p->arg : "");
        fprintf(out, "    %s\n", head);
        wrap(out, 8, p->help);
    }
}

int cli_help(const char *name, FILE *out)
{
    const struct command *c = find_command(name);
    if (!c)
        return 2;
    fprintf(out, "NAME\n    paddock %s - %s\n\nSYNOPSIS\n", c->name,
            c->summary);
    verbatim(out, 4, c->synopsis);
    fputs("\nDESCRIPTION\n", out);
    wrap(out, 4, c->description);
    fputs("\nOPTIONS\n", out);
    print_opts(out, c->cmd, false);
    fputs("\nCOMMON OPTIONS\n", out);
    print_opts(out, c->cmd, true);
    fputs("\nENVIRONMENT\n", out);
    fputs("    PADDOCK_BASE_URL\n", out);
    wrap(out, 8, "The base URL when --base-url is not given.");
    fputs("    PADDOCK_API_KEY, DASHSCOPE_API_KEY, TT_API_KEY\n", out);
    wrap(out, 8,
         "The API key when --key is not given; the first one set wins. It "
         "is sent as 'Authorization: Bearer KEY' (dashscope) or "
         "'TT-API-KEY: KEY' (ttapi).");
    fputs("    http_proxy, https_proxy, no_proxy\n", out);
    wrap(out, 8, "Proxies, as for curl(1).");
    fputs("\nEXIT STATUS\n", out);
    wrap(out, 4, c->exit_notes);
    wrap(out, 4,
         "2: a usage error (bad flag or input, no key); nothing was sent. "
         "3: a network or HTTP error (the HTTP status and the server's code "
         "and message are printed), or a local file could not be written. "
         "130: interrupted (SIGINT or SIGTERM).");
    fputs("\nEXAMPLES\n", out);
    verbatim(out, 4, c->examples);
    fputs("\nSEE ALSO\n    paddock help, docs/cli.md\n", out);
    return 0;
}

/* ------------------------------------------------------------------ run */

int cli_usage_error(const struct cli *c, const struct errmsg *err)
{
    const char *name = cmd_name(c->cmd);
    fprintf(stderr, "paddock %s: %s\nTry 'paddock help %s'.\n", name,
            errmsg_text(err), name);
    return CLI_EXIT_USAGE;
}

static atomic_bool stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop_flag, true);
}

int cli_connect(struct cli *c)
{
    struct errmsg err = { 0 };
    if (cli_endpoint_init(&c->ep, &c->o, getenv, &err) < 0)
        return cli_usage_error(c, &err);
    if (net_global_init(&err) < 0)
        goto failed;
    c->net_up = true;
    if (net_http_new(&c->http, &err) < 0)
        goto failed;
    c->hc = (struct hh_client){
        .ep = &c->ep,
        .http = c->http,
        .stop = c->stop,
        .timeout_ms = CLI_CALL_TIMEOUT_MS,
        .submit_timeout_ms = CLI_SUBMIT_TIMEOUT_MS,
    };
    return CLI_EXIT_OK;
failed:
    fprintf(stderr, "paddock: %s\n", errmsg_text(&err));
    return CLI_EXIT_HTTP;
}

int cli_run(const char *name, int argc, char **argv)
{
    const struct command *cmd = find_command(name);
    struct cli c = { .stop = &stop_flag };
    struct errmsg err = { 0 };

    if (!cmd) {
        fprintf(stderr, "paddock: unknown command '%s'\n", name);
        return CLI_EXIT_USAGE;
    }
    c.cmd = cmd->cmd;
    if (cli_parse(cmd->cmd, argc, argv, &c.o, &err) < 0)
        return cli_usage_error(&c, &err);
    if (c.o.help) {
        cli_help(name, stdout);
        return CLI_EXIT_OK;
    }

    /* Stop at the next chance on ^C, removing any temp file. */
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    c.tty = isatty(STDERR_FILENO) == 1;
    id_uuid4(c.idem);

    int ret = cmd->run(&c);
    if (fflush(stdout) != 0 && ret == CLI_EXIT_OK) {
        fprintf(stderr, "paddock: writing to standard output failed\n");
        ret = CLI_EXIT_HTTP;
    }
    net_http_free(c.http);
    if (c.net_up)
        net_global_fini();
    hh_endpoint_fini(&c.ep);
    return ret;
}
