/*
 * The command engine: one run of an operator's program per task (contract
 * version 1, docs/engines.md).
 *
 * paddock starts argv[0] with argv[1..] (never through a shell) in its own
 * process group, writes the job as one JSON document to its stdin and
 * closes it, reads its stdout line by line ("progress 42" reports
 * progress; "error {json}" names a failure code; other lines are ignored)
 * and keeps the tail of its stderr for messages. Exit 0 with a valid MP4 at
 * the output path is success; anything else is a failure. The stop flag
 * (deadline, shutdown) sends SIGTERM to the group, then SIGKILL after
 * ENGINE_KILL_GRACE_MS.
 */
#include "proc.h"

#include "../log/log.h"
#include "../media/media.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A stdout line longer than this is cut (and counted as garbage). */
#define LINE_MAX_BYTES 4096
/* Bytes of stdout read in all; past it the rest is drained and ignored. */
#define STDOUT_MAX_BYTES (1 << 20)
/* How long output pipes may stay open after the program exited. */
#define PIPE_LINGER_MS 1000

struct command_engine {
    struct engine base;
    char *argv[ENGINE_ARGS_MAX + 1];
};

/* What the program said on stdout. */
struct said {
    char line[LINE_MAX_BYTES + 1];
    size_t len;
    bool cut;
    size_t total;
    int error_code; /* from an "error" line; 0: none */
    char error_msg[LIMIT_ERRMSG];
    int garbage; /* lines that were neither progress nor error */
};

static void said_line(struct said *s, const struct job_ctl *ctl)
{
    s->line[s->len] = '\0';
    int pct;
    char rest;
    if (s->cut) {
        s->garbage++;
    } else if (sscanf(s->line, "progress %d%c", &pct, &rest) == 1 && pct >= 0 &&
               pct <= 100) {
        if (ctl && ctl->progress)
            ctl->progress(ctl->arg, pct < 100 ? pct : 99);
    } else if (strncmp(s->line, "error ", 6) == 0) {
        json_t *e = json_loads(s->line + 6, 0, NULL);
        const char *code =
            e ? json_string_value(json_object_get(e, "code")) : NULL;
        const char *msg =
            e ? json_string_value(json_object_get(e, "message")) : NULL;
        s->error_code = engine_program_code(code);
        snprintf(s->error_msg, sizeof(s->error_msg), "%s",
                 msg ? msg : "the engine reported an error");
        json_decref(e);
    } else if (s->len) {
        s->garbage++;
    }
    s->len = 0;
    s->cut = false;
}

static void said_bytes(struct said *s, const char *p, size_t n,
                       const struct job_ctl *ctl)
{
    for (size_t i = 0; i < n && s->total < STDOUT_MAX_BYTES; i++, s->total++) {
        if (p[i] == '\n') {
            said_line(s, ctl);
        } else if (s->len < LINE_MAX_BYTES) {
            s->line[s->len++] = p[i];
        } else {
            s->cut = true;
        }
    }
}

static bool stop_set(const struct job_ctl *ctl)
{
    return ctl && ctl->stop && atomic_load(ctl->stop);
}

static int command_run(struct engine *e, const struct job *job,
                       const struct job_inputs *in, const char *out_path,
                       const struct job_ctl *ctl, struct job_result *res,
                       struct errmsg *err)
{
    struct command_engine *ce = container_of(e, struct command_engine, base);
    struct said *said = xcalloc(1, sizeof(*said));
    char tail[ENGINE_STDERR_TAIL + 1] = "";
    size_t tail_len = 0, sent = 0;
    int fin = -1, fout = -1, ferr = -1, status = 0, ret;
    pid_t pid = -1;
    int64_t term_at = 0;
    char *doc = engine_job_json(job, in, out_path, NULL);
    size_t doc_len = strlen(doc);

    unlink(out_path);
    if ((ret = engine_spawn(ce->argv, NULL, &pid, &fin, &fout, &ferr, err)) < 0)
        goto out;
    /* Until the program has exited and its output is read: a descendant
     * that keeps the pipes open (a background helper, a daemon outside
     * the group) holds them at most PIPE_LINGER_MS past the exit. */
    bool exited = false;
    int64_t exited_at = 0;
    int idle_ms = 1; /* the wait once every pipe is closed: doubling */
    while (!exited || fout >= 0 || ferr >= 0) {
        int64_t now = clock_mono_ms();
        if (!exited) {
            pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid || (w < 0 && errno != EINTR)) {
                if (w < 0) { /* cannot learn how it ended: not a success */
                    ret = errmsg_set(err, ERR_ALGO,
                                     "cannot wait for the engine: %s",
                                     strerror(errno));
                    pid = -1;
                    goto out;
                }
                exited = true;
                exited_at = now;
                kill(-pid, SIGKILL); /* what it left behind goes too */
            }
        }
        if (exited && now - exited_at > PIPE_LINGER_MS)
            break;
        if (!exited && stop_set(ctl) && !term_at) {
            kill(-pid, SIGTERM);
            term_at = now;
        }
        if (!exited && term_at && now - term_at > ENGINE_KILL_GRACE_MS)
            kill(-pid, SIGKILL);
        struct pollfd p[3] = { { .fd = fout, .events = POLLIN },
                               { .fd = ferr, .events = POLLIN },
                               { .fd = fin, .events = POLLOUT } };
        /* With every pipe closed the program is usually exiting: look
         * again soon, backing off in case it lives on without output. */
        int wait_ms = exited ? 10 : 100;
        if (fin < 0 && fout < 0 && ferr < 0) {
            wait_ms = idle_ms;
            idle_ms = idle_ms < 64 ? idle_ms * 2 : 100;
        }
        if (poll(p, 3, wait_ms) < 0 && errno != EINTR)
            break;
        char b[4096];
        if (fin >= 0 && p[2].revents) {
            ssize_t n = write(fin, doc + sent, doc_len - sent);
            if (n > 0)
                sent += (size_t)n;
            if (sent == doc_len || (n < 0 && errno != EAGAIN)) {
                close(fin); /* end of the job: the program sees EOF */
                fin = -1;
            }
        }
        if (fout >= 0 && p[0].revents) {
            ssize_t n = read(fout, b, sizeof(b));
            if (n > 0)
                said_bytes(said, b, (size_t)n, ctl);
            else if (n == 0 || errno != EAGAIN) {
                close(fout);
                fout = -1;
            }
        }
        if (ferr >= 0 && p[1].revents) {
            ssize_t n = read(ferr, b, sizeof(b));
            if (n > 0)
                engine_tail_bytes(tail, &tail_len, b, (size_t)n);
            else if (n == 0 || errno != EAGAIN) {
                close(ferr);
                ferr = -1;
            }
        }
    }
    if (said->len)
        said_line(said, ctl);
    if (!exited) { /* poll failed: end it and learn how */
        kill(-pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        pid = -1;
        ret = errmsg_set(err, ERR_ALGO, "lost the engine's output: %s",
                         strerror(errno));
        goto out;
    }
    pid = -1; /* reaped */

    if (term_at) {
        ret = errmsg_set(err, ERR_STOPPED, "the engine was stopped");
        goto out;
    }
    if (said->error_code) {
        ret = errmsg_set(err, said->error_code, "%s", said->error_msg);
        goto out;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (WIFSIGNALED(status))
            ret = errmsg_set(err, ERR_ALGO, "the engine died of signal %d%s%s",
                             WTERMSIG(status), tail_len ? ": " : "", tail);
        else
            ret = errmsg_set(err, ERR_ALGO,
                             "the engine exited with status %d%s%s",
                             WEXITSTATUS(status), tail_len ? ": " : "", tail);
        goto out;
    }
    if ((ret = engine_output_check(job, out_path, res, err)) < 0)
        goto out;
    if (ctl && ctl->progress)
        ctl->progress(ctl->arg, 100);
    if (said->garbage)
        log_debug("engine printed unknown lines", "count=%d", said->garbage);
    ret = 0;
out:
    if (pid > 0) {
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    if (fin >= 0)
        close(fin);
    if (fout >= 0)
        close(fout);
    if (ferr >= 0)
        close(ferr);
    free(doc);
    free(said);
    return ret;
}

/* The program must still be there and executable (it may be replaced or
 * removed while paddock runs). */
static int command_check(struct engine *e, const atomic_bool *stop,
                         struct errmsg *err)
{
    (void)stop; /* a stat: nothing to give up */
    struct command_engine *ce = container_of(e, struct command_engine, base);
    return engine_program_check(ce->argv[0], err);
}

static void command_free(struct engine *e)
{
    struct command_engine *ce = container_of(e, struct command_engine, base);
    for (size_t i = 0; ce->argv[i]; i++)
        free(ce->argv[i]);
    free(ce);
}

static const struct engine_ops command_ops = {
    .name = "command",
    .local_media = true,
    .run = command_run,
    .check = command_check,
    .host_check = true,
    .free = command_free,
};

int engine_command_new(const char *cmdline, struct engine **out,
                       struct errmsg *err)
{
    struct command_engine *ce = xcalloc(1, sizeof(*ce));
    ce->base.ops = &command_ops;
    int rc = engine_argv(cmdline, ce->argv, "command", err);
    if (rc < 0) {
        command_free(&ce->base);
        return rc;
    }
    *out = &ce->base;
    return 0;
}
