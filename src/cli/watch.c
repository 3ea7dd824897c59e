/*
 * paddock wait, and the waiting and downloading that submit --wait and
 * download share: polls that back off, Retry-After, the live status line,
 * and a download written to a temp file beside its target, then renamed.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATUS_MAX 16 /* "SUCCEEDED" and room; longer is not a status */

/* One task being waited for. */
struct watch {
    struct cli *c;
    const char *task_id;
    int64_t start_ms;        /* monotonic */
    char status[STATUS_MAX]; /* last seen; "" before the first answer */
    int progress;            /* percent, -1 when not reported */
    size_t shown;            /* width of the status line on screen */
    int64_t drawn_s;         /* elapsed second last drawn */
};

/* ------------------------------------------------------------ arguments */

int cli_timeout(const struct cli_opts *o, int64_t *ms, struct errmsg *err)
{
    *ms = CLI_WAIT_DEFAULT_MS;
    if (!o->timeout)
        return 0;
    if (clock_parse_duration(o->timeout, 1000, CLI_WAIT_MAX_MS, ms) < 0)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "--timeout: '%.*s' is not a duration from 1s to 7d "
                          "(like 90s, 10m or 1h30m)",
                          40, o->timeout);
    return 0;
}

int cli_check_output(const char *path, struct errmsg *err)
{
    struct stat st;
    char dir[PATH_MAX];

    if (strcmp(path, "-") == 0)
        return 0;
    size_t n = strlen(path);
    if (n == 0 || n >= PATH_MAX - 32)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "-o: the file name is empty or too long");
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "-o %.*s: is a directory; name the file to write",
                          200, path);
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "-o %.*s: directory %.*s does not exist", 200, path,
                          200, dir);
    if (access(dir, W_OK) < 0)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "-o %.*s: directory %.*s is not writable", 200, path,
                          200, dir);
    return 0;
}

/* ---------------------------------------------------------- status line */

static void fmt_elapsed(int64_t ms, char out[32])
{
    int64_t s = ms / 1000;
    if (s >= 3600)
        snprintf(out, 32, "%lld:%02lld:%02lld", (long long)(s / 3600),
                 (long long)(s / 60 % 60), (long long)(s % 60));
    else
        snprintf(out, 32, "%lld:%02lld", (long long)(s / 60),
                 (long long)(s % 60));
}

/* Redraw "TASK_ID  RUNNING  0:12 elapsed  45%" over the previous one. */
static void line_draw(struct watch *w)
{
    if (!w->c->tty || !w->status[0])
        return;
    char el[32], line[CLI_TASK_ID_MAX + 96];
    int64_t ms = clock_mono_ms() - w->start_ms;
    fmt_elapsed(ms, el);
    int n = snprintf(line, sizeof(line), "%s  %-9s  %s elapsed", w->task_id,
                     w->status, el);
    if (w->progress >= 0 && n > 0 && (size_t)n < sizeof(line))
        n +=
            snprintf(line + n, sizeof(line) - (size_t)n, "  %d%%", w->progress);
    if (n < 0)
        return;
    size_t len = strlen(line);
    fprintf(stderr, "\r%s%*s", line, (int)(w->shown > len ? w->shown - len : 0),
            "");
    fflush(stderr);
    w->shown = len;
    w->drawn_s = ms / 1000;
}

/* Make room for a message line; the status line comes back later. */
static void line_clear(struct watch *w)
{
    if (!w->shown)
        return;
    fprintf(stderr, "\r%*s\r", (int)w->shown, "");
    w->shown = 0;
}

/* Leave the status line as it is and go to the next line. */
static void line_end(struct watch *w)
{
    if (!w->shown)
        return;
    fputc('\n', stderr);
    w->shown = 0;
}

/* Sleep, redrawing the status line as the seconds go by. */
static bool watch_nap(struct watch *w, int64_t ms)
{
    int64_t end = clock_mono_ms() + ms;
    for (int64_t now; (now = clock_mono_ms()) < end;) {
        int64_t step = end - now < 250 ? end - now : 250;
        if (!cli_nap(w->c, step))
            return false;
        if ((clock_mono_ms() - w->start_ms) / 1000 != w->drawn_s)
            line_draw(w);
    }
    return true;
}

/* --------------------------------------------------------------- polling */

static bool terminal(const char *status)
{
    return strcmp(status, "SUCCEEDED") == 0 || strcmp(status, "FAILED") == 0 ||
           strcmp(status, "CANCELED") == 0 || strcmp(status, "UNKNOWN") == 0;
}

/* output.progress as a percent (a number, or a string like "45%"), or
 * -1. */
static int progress_of(json_t *output)
{
    json_t *p = json_object_get(output, "progress");
    double v = -1;
    if (json_is_number(p))
        v = json_number_value(p);
    else if (json_is_string(p))
        v = strtod(json_string_value(p), NULL);
    if (!(v >= 0)) /* NaN too */
        return -1;
    return v > 100 ? 100 : (int)v;
}

/* The status as shown: capital letters and '_' only. */
static void status_of(json_t *output, char out[STATUS_MAX])
{
    const char *s = cli_jstr(output, "task_status");
    size_t n = 0;
    for (; s && s[n] && n + 1 < STATUS_MAX; n++)
        out[n] = (s[n] >= 'A' && s[n] <= 'Z') || s[n] == '_' ? s[n] : '?';
    out[n] = '\0';
}

/* The end of a wait: report, then print or download the video. */
static int finish(struct watch *w, struct cli_reply *rep, const char *out)
{
    struct cli *c = w->c;
    json_t *output = cli_output(rep);
    int ret = cli_report_status(w->task_id, output);
    if (ret != CLI_EXIT_OK)
        return ret;
    const char *url = cli_video_url(w->task_id, output);
    if (!url)
        return CLI_EXIT_HTTP;
    if (out) {
        char *copy = xstrdup(url);
        cli_reply_fini(rep); /* free the answer before a long download */
        ret = cli_download_url(c, copy, out);
        free(copy);
        return ret;
    }
    if (!c->o.json) {
        cli_put_clean(stdout, url, LIMIT_URL_BYTES);
        fputc('\n', stdout);
    }
    return CLI_EXIT_OK;
}

int cli_wait_task(struct cli *c, const char *task_id, int64_t timeout_ms,
                  const char *out, bool skip_first)
{
    struct watch w = { .c = c, .task_id = task_id, .progress = -1 };
    struct cli_reply rep = { 0 };
    struct errmsg err = { 0 };
    char path[CLI_TASK_ID_MAX + 32], el[32];
    int64_t interval = CLI_POLL_MIN_MS, delay = 0;
    int transient = 0, ret;

    w.start_ms = clock_mono_ms();
    int64_t deadline = w.start_ms + timeout_ms;
    snprintf(path, sizeof(path), "/api/v1/tasks/%s", task_id);
    if (skip_first) { /* submit answered PENDING a moment ago */
        snprintf(w.status, sizeof(w.status), "PENDING");
        line_draw(&w);
        delay = interval;
    }
    for (;;) {
        if (delay > 0 && !watch_nap(&w, delay)) {
            ret = CLI_EXIT_INTERRUPTED;
            break;
        }
        cli_reply_fini(&rep);
        int rc = cli_request(c, "GET", path, NULL, &rep, &err);
        long st = rc < 0 ? 0 : rep.r.status;
        json_t *output = rc < 0 ? NULL : cli_output(&rep);
        if (rc == ERR_STOPPED) {
            ret = CLI_EXIT_INTERRUPTED;
            break;
        }
        if (st == 200 && cli_jstr(output, "task_status")) {
            char now[STATUS_MAX];
            int pct = progress_of(output);
            status_of(output, now);
            bool changed = strcmp(now, w.status) != 0;
            transient = 0;
            if (c->o.json && (changed || pct != w.progress || terminal(now))) {
                line_clear(&w); /* stdout may be the same terminal */
                cli_print_json(c, &rep);
            }
            if (changed) {
                interval = CLI_POLL_MIN_MS;
                snprintf(w.status, sizeof(w.status), "%s", now);
                if (!c->tty && !c->o.json)
                    fprintf(stderr, "paddock: task %s is %s\n", task_id, now);
            }
            w.progress = pct;
            line_draw(&w);
            if (terminal(now)) {
                line_end(&w);
                ret = finish(&w, &rep, out);
                break;
            }
            delay = interval;
            interval = interval * 3 / 2 > CLI_POLL_MAX_MS ? CLI_POLL_MAX_MS
                                                          : interval * 3 / 2;
        } else if (st == 429 || st == 503) {
            /* The server says when; without a date, the usual pace. */
            int64_t s = rep.r.retry_after_s;
            delay = s < 0                       ? interval
                    : s > CLI_RETRY_AFTER_MAX_S ? CLI_RETRY_AFTER_MAX_S * 1000LL
                                                : s * 1000;
            line_clear(&w);
            fprintf(stderr, "paddock: HTTP %ld; polling again in %lld s\n", st,
                    (long long)((delay + 999) / 1000));
        } else if (rc < 0 || st >= 500 || st == 200) {
            /* A network error, a 5xx or a garbled answer: maybe passing. */
            line_clear(&w);
            if (++transient > CLI_TRANSIENT_MAX) {
                if (rc < 0)
                    fprintf(stderr, "paddock: %s\n", errmsg_text(&err));
                else
                    cli_report_http(c, &rep);
                ret = CLI_EXIT_HTTP;
                break;
            }
            if (rc < 0)
                fprintf(stderr, "paddock: %s; retrying (%d of %d)\n",
                        errmsg_text(&err), transient, CLI_TRANSIENT_MAX);
            else
                fprintf(stderr, "paddock: HTTP %ld%s; retrying (%d of %d)\n",
                        st, st == 200 ? " without output.task_status" : "",
                        transient, CLI_TRANSIENT_MAX);
            delay = interval;
            interval = interval * 3 / 2 > CLI_POLL_MAX_MS ? CLI_POLL_MAX_MS
                                                          : interval * 3 / 2;
        } else { /* 4xx: a wrong key or URL does not get better */
            line_end(&w);
            cli_report_http(c, &rep);
            ret = CLI_EXIT_HTTP;
            break;
        }
        int64_t now = clock_mono_ms();
        if (now >= deadline) {
            line_end(&w);
            fmt_elapsed(timeout_ms, el);
            fprintf(stderr,
                    "paddock: gave up after %s (--timeout): task %s is "
                    "still %s; it goes on (paddock wait %s to wait again)\n",
                    el, task_id, w.status[0] ? w.status : "not seen", task_id);
            ret = CLI_EXIT_UNFINISHED;
            break;
        }
        if (now + delay > deadline)
            delay = deadline - now;
    }
    if (ret == CLI_EXIT_INTERRUPTED) {
        line_end(&w);
        fprintf(stderr, "paddock: interrupted; task %s goes on\n", task_id);
    }
    cli_reply_fini(&rep);
    return ret;
}

int cli_cmd_wait(struct cli *c)
{
    struct errmsg err = { 0 };
    int64_t timeout_ms;
    if (cli_timeout(&c->o, &timeout_ms, &err) < 0 ||
        (c->o.output && cli_check_output(c->o.output, &err) < 0))
        return cli_usage_error(c, &err);
    int ret = cli_connect(c);
    if (ret != CLI_EXIT_OK)
        return ret;
    return cli_wait_task(c, c->o.task_id, timeout_ms, c->o.output, false);
}

/* -------------------------------------------------------------- download */

struct dl_line {
    const char *name;
    int64_t last_ms;
    size_t shown;
};

static void on_progress(void *arg, int64_t got, int64_t total)
{
    struct dl_line *d = arg;
    int64_t now = clock_mono_ms();
    if (now - d->last_ms < 250 || got == 0)
        return;
    d->last_ms = now;
    char line[PATH_MAX + 64];
    int n;
    if (total > 0)
        n = snprintf(line, sizeof(line), "downloading %s: %.1f of %.1f MB",
                     d->name, (double)got / (1 << 20),
                     (double)total / (1 << 20));
    else
        n = snprintf(line, sizeof(line), "downloading %s: %.1f MB", d->name,
                     (double)got / (1 << 20));
    if (n < 0)
        return;
    size_t len = strlen(line);
    fprintf(stderr, "\r%s%*s", line, (int)(d->shown > len ? d->shown - len : 0),
            "");
    fflush(stderr);
    d->shown = len;
}

/* "DIR/.NAME.XXXXXX" beside path, for mkostemp. */
static char *temp_beside(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return xasprintf(".%s.XXXXXX", path);
    return xasprintf("%.*s/.%s.XXXXXX", (int)(slash - path), path, slash + 1);
}

int cli_download_url(struct cli *c, const char *url, const char *path)
{
    bool to_stdout = strcmp(path, "-") == 0;
    struct net_http_resp resp = { 0 };
    struct errmsg err = { 0 };
    struct dl_line line = { .name = path };
    char shown[NET_URL_SHOW_SIZE];
    char *tmp = NULL;
    int fd = -1, ret = CLI_EXIT_HTTP;

    net_url_show(url, shown);
    if (to_stdout) {
        fflush(stdout);
        fd = STDOUT_FILENO;
        line.name = "standard output";
    } else {
        tmp = temp_beside(path);
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "paddock: cannot create a file beside %s: %s\n",
                    path, strerror(errno));
            free(tmp);
            tmp = NULL;
            goto out;
        }
        mode_t mask = umask(0); /* the file gets the usual 0666 & ~umask */
        umask(mask);
        fchmod(fd, 0666 & ~mask);
    }
    struct net_http_req req = {
        .method = "GET",
        .url = url, /* no key: the link is signed */
        .max_bytes = CLI_DOWNLOAD_BYTES,
        .stall_ms = CLI_STALL_MS,
        .max_redirects = CLI_DOWNLOAD_REDIRECTS,
        .to_fd = true,
        .fd = fd,
        .stop = c->stop,
        .progress = c->tty ? on_progress : NULL,
        .progress_arg = &line,
    };
    int rc = net_http_request(c->http, &req, &resp, &err);
    if (line.shown)
        fprintf(stderr, "\r%*s\r", (int)line.shown, "");
    if (rc == ERR_STOPPED) {
        fprintf(stderr, "paddock: download interrupted\n");
        ret = CLI_EXIT_INTERRUPTED;
        goto out;
    }
    if (rc < 0) {
        fprintf(stderr, "paddock: download failed: %s\n", errmsg_text(&err));
        goto out;
    }
    if (resp.status != 200) {
        fprintf(stderr, "paddock: HTTP %ld downloading %s", resp.status, shown);
        if (resp.body.len) {
            fputs(": ", stderr);
            cli_put_clean(stderr, resp.body.data, 200);
        }
        fputc('\n', stderr);
        goto out;
    }
    if (!to_stdout) {
        if (fsync(fd) < 0 || close(fd) < 0) {
            fd = -1;
            fprintf(stderr, "paddock: writing %s: %s\n", tmp, strerror(errno));
            goto out;
        }
        fd = -1;
        if (rename(tmp, path) < 0) {
            fprintf(stderr, "paddock: renaming %s to %s: %s\n", tmp, path,
                    strerror(errno));
            goto out;
        }
        free(tmp);
        tmp = NULL;
        fprintf(stderr, "paddock: wrote %s (%lld bytes)\n", path,
                (long long)resp.bytes);
    }
    ret = CLI_EXIT_OK;
out:
    if (fd >= 0 && !to_stdout)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    net_http_resp_fini(&resp);
    return ret;
}
