/*
 * paddock wait, and the waiting and downloading that submit --wait and
 * download share: hh's wait (polls that back off, Retry-After) drawn as
 * the live status line, and hh's download written to a temp file beside
 * its target, then renamed.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One task being waited for. */
struct watch {
    struct cli *c;
    const char *task_id;
    int64_t start_ms;            /* monotonic */
    char status[HH_STATUS_SHOW]; /* last seen; "" before the first answer */
    int progress;                /* percent, -1 when not reported */
    size_t shown;                /* width of the status line on screen */
    int64_t drawn_s;             /* elapsed second last drawn */
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
    char el[32], line[HH_ID_MAX + HH_STATUS_SHOW + 96];
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

/* Sleep, redrawing the status line as the seconds go by (hh_wait's nap). */
static bool watch_nap(void *arg, int64_t ms)
{
    struct watch *w = arg;
    int64_t end = clock_mono_ms() + ms;
    for (int64_t now; (now = clock_mono_ms()) < end;) {
        int64_t step = end - now < 250 ? end - now : 250;
        if (!hh_nap(w->c->stop, step))
            return false;
        if ((clock_mono_ms() - w->start_ms) / 1000 != w->drawn_s)
            line_draw(w);
    }
    return true;
}

/* --------------------------------------------------------------- polling */

/* What one look shows: --json lines, the status line, and the looks that
 * failed and will be tried again. */
static void on_poll(void *arg, const struct hh_poll *p)
{
    struct watch *w = arg;
    struct cli *c = w->c;
    const struct hh_task *t = p->task;
    if (t) {
        bool end = hh_status_terminal(t->status);
        if (c->o.json && (p->changed || t->progress != w->progress || end)) {
            line_clear(w); /* stdout may be the same terminal */
            cli_print_json(c, p->a);
        }
        if (p->changed) {
            snprintf(w->status, sizeof(w->status), "%s", t->status_text);
            if (!c->tty && !c->o.json)
                fprintf(stderr, "paddock: task %s is %s\n", w->task_id,
                        w->status);
        }
        w->progress = t->progress;
        line_draw(w);
        if (p->delay_ms < 0)
            line_end(w);
        return;
    }
    if (p->delay_ms < 0) { /* the wait ends on it: said after */
        line_end(w);
        return;
    }
    long st = p->rc == 0 ? p->a->status : 0;
    line_clear(w);
    if (st == 429 || st == 503) /* the server says when */
        fprintf(stderr, "paddock: HTTP %ld; polling again in %lld s\n", st,
                (long long)((p->delay_ms + 999) / 1000));
    else if (p->rc < 0)
        fprintf(stderr, "paddock: %s; retrying (%d of %d)\n",
                errmsg_text(p->err), p->transient, CLI_TRANSIENT_MAX);
    else
        fprintf(stderr, "paddock: HTTP %ld%s; retrying (%d of %d)\n", st,
                st == 200 ? " without output.task_status" : "", p->transient,
                CLI_TRANSIENT_MAX);
}

/* The end of a wait: report, then print or download the video. */
static int finish(struct watch *w, struct hh_answer *a, const struct hh_task *t,
                  const char *out)
{
    struct cli *c = w->c;
    int ret = cli_report_status(w->task_id, t);
    if (ret != CLI_EXIT_OK)
        return ret;
    const char *url = cli_video_url(w->task_id, t);
    if (!url)
        return CLI_EXIT_HTTP;
    if (out) {
        char *copy = xstrdup(url);
        hh_answer_fini(a); /* free the answer before a long download */
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
                  const char *out, bool just_submitted)
{
    struct watch w = { .c = c, .task_id = task_id, .progress = -1 };
    struct hh_answer a;
    struct hh_task t;
    struct errmsg err = { 0 };
    char el[32];
    int ret;

    w.start_ms = clock_mono_ms();
    const struct hh_wait hw = {
        .poll_ms = CLI_POLL_MIN_MS,
        .poll_max_ms = CLI_POLL_MAX_MS,
        .retry_after_max_ms = CLI_RETRY_AFTER_MAX_S * 1000LL,
        .just_submitted = just_submitted,
        .reset_on_change = true,
        .transient_max = CLI_TRANSIENT_MAX,
        .deadline_ms = w.start_ms + timeout_ms,
        .on_poll = on_poll,
        .arg = &w,
    };
    if (just_submitted) { /* submit answered PENDING a moment ago */
        snprintf(w.status, sizeof(w.status), "PENDING");
        line_draw(&w);
    }
    c->hc.nap = watch_nap;
    c->hc.arg = &w;
    /* The server's status stream when it offers one; else, or when it
     * breaks off, polls. */
    int rc = hh_watch(&c->hc, task_id, &hw, &a, &t, &err);
    if (rc < 0 && rc != ERR_STOPPED && rc != ERR_TIMEOUT) {
        hh_answer_fini(&a);
        err = (struct errmsg){ 0 };
        rc = hh_wait(&c->hc, task_id, &hw, &a, &t, &err);
    }
    c->hc.nap = NULL;
    c->hc.arg = NULL;
    if (rc == ERR_STOPPED) {
        line_end(&w);
        fprintf(stderr, "paddock: interrupted; task %s goes on\n", task_id);
        ret = CLI_EXIT_INTERRUPTED;
    } else if (rc == ERR_TIMEOUT) {
        fmt_elapsed(timeout_ms, el);
        fprintf(stderr,
                "paddock: gave up after %s (--timeout): task %s is "
                "still %s; it goes on (paddock wait %s to wait again)\n",
                el, task_id, w.status[0] ? w.status : "not seen", task_id);
        ret = CLI_EXIT_UNFINISHED;
    } else if (rc < 0) {
        fprintf(stderr, "paddock: %s\n", errmsg_text(&err));
        ret = CLI_EXIT_HTTP;
    } else if (a.status == 200 && hh_status_terminal(t.status)) {
        ret = finish(&w, &a, &t, out);
    } else { /* 4xx: a wrong key or URL does not get better */
        cli_report_http(c, &a);
        ret = CLI_EXIT_HTTP;
    }
    hh_answer_fini(&a);
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
    const struct hh_download d = {
        .url = url, /* no key: the link is signed */
        .fd = fd,
        .max_bytes = CLI_DOWNLOAD_BYTES,
        .stall_ms = CLI_STALL_MS,
        .max_redirects = CLI_DOWNLOAD_REDIRECTS,
        .tries = 1, /* stdout cannot be rewound */
        .progress = c->tty ? on_progress : NULL,
        .arg = &line,
    };
    int rc = hh_download(&c->hc, &d, &resp, &err);
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
