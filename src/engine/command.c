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
 * COMMAND_KILL_GRACE_MS.
 */
#include "engine.h"

#include "../log/log.h"
#include "../media/media.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define CONTRACT_VERSION 1
/* Time between SIGTERM and SIGKILL when a run must stop. */
#define COMMAND_KILL_GRACE_MS 5000
/* A stdout line longer than this is cut (and counted as garbage). */
#define LINE_MAX_BYTES 4096
/* Bytes of stdout read in all; past it the rest is drained and ignored. */
#define STDOUT_MAX_BYTES (1 << 20)
/* The tail of stderr kept for the failure message. */
#define STDERR_TAIL 400
/* How long output pipes may stay open after the program exited. */
#define PIPE_LINGER_MS 1000
/* Arguments of the command line. */
#define ARGS_MAX 32

struct command_engine {
    struct engine base;
    char *argv[ARGS_MAX + 1];
};

/* Failure codes a program may name (docs/api.md s.7.3); others become Algo. */
static const int program_codes[] = {
    ERR_ALGO,        ERR_DATA_INSPECTION,         ERR_INVALID_PARAMETER,
    ERR_TIMEOUT,     ERR_UNSUPPORTED_FILE_FORMAT, ERR_INPUT_DOWNLOAD_FAILED,
    ERR_INVALID_URL,
};

static char *job_json(const struct job *job, const struct job_inputs *in,
                      const char *out_path)
{
    json_t *media = json_array();
    for (size_t i = 0; i < job->n_media; i++) {
        json_t *m = json_pack("{s:s, s:s}", "type",
                              task_media_type_name(job->media[i].type), "url",
                              job->media[i].url);
        if (in && i < in->n && in->path[i])
            json_object_set_new(m, "path", json_string(in->path[i]));
        json_array_append_new(media, m);
    }
    json_t *params = json_pack("{s:i, s:s, s:i, s:b, s:I, s:s}", "resolution",
                               job->resolution, "ratio", job->ratio, "duration",
                               job->duration, "watermark", job->watermark,
                               "seed", (json_int_t)job->seed, "audio_setting",
                               job->audio_origin ? "origin" : "auto");
    json_t *root = json_pack(
        "{s:i, s:s, s:s, s:s?, s:o, s:o, s:s}", "version", CONTRACT_VERSION,
        "model", job->model, "kind", task_kind_name(job->kind), "prompt",
        job->prompt, "parameters", params, "media", media, "output", out_path);
    if (job->extra) {
        json_t *extra = json_loads(job->extra, 0, NULL);
        if (extra)
            json_object_set_new(root, "extra", extra);
    }
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

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
        s->error_code = ERR_ALGO;
        for (size_t i = 0; code && i < ARRAY_LEN(program_codes); i++)
            if (strcmp(code, err_code(program_codes[i])) == 0)
                s->error_code = program_codes[i];
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

/* Keep the last STDERR_TAIL bytes seen, quotes and newlines blanked: one
 * memmove per read, whatever the program writes. */
static void tail_bytes(char *tail, size_t *len, const char *p, size_t n)
{
    if (n > STDERR_TAIL) {
        p += n - STDERR_TAIL;
        n = STDERR_TAIL;
    }
    if (*len + n > STDERR_TAIL) {
        size_t drop = *len + n - STDERR_TAIL;
        memmove(tail, tail + drop, *len - drop);
        *len -= drop;
    }
    for (size_t i = 0; i < n; i++)
        tail[(*len)++] = p[i] == '\n' || p[i] == '"' ? ' ' : p[i];
    tail[*len] = '\0';
}

static void set_nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static bool stop_set(const struct job_ctl *ctl)
{
    return ctl && ctl->stop && atomic_load(ctl->stop);
}

/* Start the program with three pipes; 0 or ERR_ALGO. */
static int spawn(struct command_engine *ce, pid_t *pid, int *in, int *out,
                 int *errfd, struct errmsg *err)
{
    int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    int ret = 0;
    if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0 ||
        pipe2(perr, O_CLOEXEC) < 0) {
        ret = errmsg_set(err, ERR_ALGO, "cannot create pipes: %s",
                         strerror(errno));
        goto out;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
    posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
    posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
    posix_spawnattr_init(&at);
    /* Its own process group, so a stop reaches its children too; default
     * signal dispositions and an empty mask (ours blocks SIGTERM). */
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP |
                                      POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    int rc = posix_spawn(pid, ce->argv[0], &fa, &at, ce->argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (rc != 0) {
        ret = errmsg_set(err, ERR_ALGO, "cannot start the engine %s: %s",
                         ce->argv[0], strerror(rc));
        goto out;
    }
    *in = pin[1];
    *out = pout[0];
    *errfd = perr[0];
    pin[1] = pout[0] = perr[0] = -1;
out:
    for (int i = 0; i < 2; i++) {
        if (pin[i] >= 0)
            close(pin[i]);
        if (pout[i] >= 0)
            close(pout[i]);
        if (perr[i] >= 0)
            close(perr[i]);
    }
    return ret;
}

static int command_run(struct engine *e, const struct job *job,
                       const struct job_inputs *in, const char *out_path,
                       const struct job_ctl *ctl, struct job_result *res,
                       struct errmsg *err)
{
    struct command_engine *ce = container_of(e, struct command_engine, base);
    struct said *said = xcalloc(1, sizeof(*said));
    char tail[STDERR_TAIL + 1] = "";
    size_t tail_len = 0, sent = 0;
    int fin = -1, fout = -1, ferr = -1, status = 0, ret;
    pid_t pid = -1;
    int64_t term_at = 0;
    char *doc = job_json(job, in, out_path);
    size_t doc_len = strlen(doc);

    unlink(out_path);
    if ((ret = spawn(ce, &pid, &fin, &fout, &ferr, err)) < 0)
        goto out;
    set_nonblock(fin);
    set_nonblock(fout);
    set_nonblock(ferr);
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
        if (!exited && term_at && now - term_at > COMMAND_KILL_GRACE_MS)
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
                tail_bytes(tail, &tail_len, b, (size_t)n);
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
    struct task_media_info info;
    struct errmsg probe = { 0 };
    if (access(out_path, F_OK) != 0) {
        ret = errmsg_set(err, ERR_ALGO,
                         "the engine exited 0 but wrote no video at the "
                         "output path");
        goto out;
    }
    if (media_probe_file(out_path, TASK_MEDIA_VIDEO, "the engine's output",
                         &info, &probe) < 0) {
        ret = errmsg_set(err, ERR_ALGO, "%s", errmsg_text(&probe));
        goto out;
    }
    memset(&res->usage, 0, sizeof(res->usage));
    res->usage.output_s = info.duration_s;
    res->usage.sr = job->resolution;
    snprintf(res->usage.ratio, sizeof(res->usage.ratio), "%s", job->ratio);
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
    /* Clients read this (503): the program's name, not where it lives. */
    const char *slash = strrchr(ce->argv[0], '/');
    struct stat st;
    int rc = stat(ce->argv[0], &st);
    if (rc == 0 && !S_ISREG(st.st_mode))
        errno = EISDIR;
    if (rc < 0 || !S_ISREG(st.st_mode) || access(ce->argv[0], X_OK) < 0)
        return errmsg_set(err, ERR_MODEL_UNAVAILABLE,
                          "the engine program %.100s cannot be run on this "
                          "node: %s",
                          slash + 1, strerror(errno));
    return 0;
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
    size_t n = 0;
    const char *p = cmdline;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        const char *w = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if (n == ARGS_MAX) {
            command_free(&ce->base);
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "engine command: more than %d words", ARGS_MAX);
        }
        ce->argv[n++] = xstrndup(w, (size_t)(p - w));
    }
    /* Whether the file is there and runs is the check's question (an API
     * node names the render hosts' programs without having them). */
    if (n == 0 || ce->argv[0][0] != '/') {
        int rc = errmsg_set(err, ERR_INVALID_PARAMETER,
                            "engine command: '%.200s' is not a program "
                            "given by its absolute path",
                            n ? ce->argv[0] : "");
        command_free(&ce->base);
        return rc;
    }
    *out = &ce->base;
    return 0;
}
