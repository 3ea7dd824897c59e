/*
 * The resident engine: long-lived copies of an operator's program, each
 * loading its model once and then doing one job at a time (contract
 * version 1, docs/engines.md, "The resident engine").
 *
 * `concurrency` copies per process, started on the first check of a node
 * that renders (an API node never starts one). Copy i runs with
 * PADDOCK_SLOT=i and "{slot}" in its arguments replaced by i. Both
 * directions are JSON lines of at most RESIDENT_LINE_MAX bytes: the copy
 * says {"type":"ready"} once loaded, paddock sends {"type":"job","id":...}
 * with the command contract's document, the copy answers progress, done
 * or error lines naming the job's id; other lines are logged and ignored.
 *
 * One manager thread per engine instance owns every copy: it starts them,
 * reads their stdout and stderr, writes their jobs, stops a job with
 * {"type":"cancel"} when its stop flag is set (deadline, shutdown), then
 * SIGTERM to the copy's group after `grace`, SIGKILL 5 s later, and starts
 * the copy again with back-off (1 s doubling to 5 min; a copy that became
 * ready starts again from 1 s). A copy not ready within start-timeout is
 * stopped and started again. A copy that dies holding a job ends it with
 * result.retry: the worker tries the task again within its attempt limit.
 * Jobs are ended (ctl->done) from the manager thread, never under its
 * lock.
 *
 * Capacity: the copies that are ready or busy; while none is ready or
 * starting, check() fails with the last stderr lines (503
 * ModelUnavailable).
 */
#include "proc.h"

#include "../log/log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A line either way: a job's document is a few KiB, prompts included. */
#define RESIDENT_LINE_MAX (64 << 10)
/* Copies of one engine in one process. */
#define RESIDENT_COPIES_MAX 64
/* Restart back-off: from 1 s, doubling, to 5 min. */
#define RESIDENT_BACKOFF_MIN_MS 1000
#define RESIDENT_BACKOFF_MAX_MS (5 * 60 * 1000)
/* stderr lines logged per copy and minute at most (the tail keeps all). */
#define RESIDENT_STDERR_LOG_PER_MIN 30
/* How often the manager looks at stop flags and timers without I/O. */
#define RESIDENT_TICK_MS 100

enum copy_state {
    CP_DOWN,     /* not running; starts at next_start_ms */
    CP_STARTING, /* running, not ready yet */
    CP_READY,    /* ready, idle */
    CP_BUSY,     /* holds a job */
};

/* A job an engine_start handed over; freed after its done. */
struct rjob {
    const struct job *job;
    const struct job_inputs *in;
    const char *out_path;
    const struct job_ctl *ctl;
    char id[80];
    struct rjob *next;
};

/* A job that ended, to report once the lock is let go. */
struct ended {
    struct rjob *j;
    int rc;
    struct job_result res;
    struct errmsg err;
    struct ended *next;
};

struct copy {
    int index;
    enum copy_state state;
    pid_t pid;
    int in, out, err;
    char *line; /* stdout bytes of the line being read */
    size_t line_len;
    bool line_cut;   /* over RESIDENT_LINE_MAX: skipping to its end */
    struct buf outq; /* bytes for its stdin */
    size_t outq_off;
    int64_t started_ms, next_start_ms, backoff_ms;
    int64_t cancel_ms, term_ms; /* when cancel / SIGTERM went (0: not) */
    struct rjob *job;
    char tail[ENGINE_STDERR_TAIL + 1];
    size_t tail_len;
    char errline[256]; /* stderr bytes of the line being read, for the log */
    size_t errline_len;
    int64_t log_window_ms;
    int logged;
};

struct resident_engine {
    struct engine base;
    char *argv[ENGINE_ARGS_MAX + 1];
    int n_copies;
    int64_t start_timeout_ms, grace_ms;
    pthread_mutex_t lock; /* guards everything below */
    struct copy copies[RESIDENT_COPIES_MAX];
    struct rjob *queue, *queue_tail; /* taken, not yet given to a copy */
    bool started;                    /* the manager runs */
    bool quit;
    pthread_t thread;
    int wake[2]; /* a byte here wakes the manager */
    uint64_t seq;
    char why[LIMIT_ERRMSG]; /* the last reason a copy failed */
};

static void wake(struct resident_engine *re)
{
    char c = 1;
    ssize_t n = write(re->wake[1], &c, 1);
    (void)n; /* full: a wake-up is pending anyway */
}

/* ------------------------------------------------------------ copies */

/* argv with {slot} replaced, and the environment with PADDOCK_SLOT. */
static int copy_spawn(struct resident_engine *re, struct copy *c,
                      struct errmsg *err)
{
    extern char **environ;
    char *argv[ENGINE_ARGS_MAX + 1] = { 0 };
    char slot[16];
    snprintf(slot, sizeof(slot), "%d", c->index);
    for (size_t i = 0; re->argv[i]; i++) {
        struct buf b = BUF_INIT;
        for (const char *p = re->argv[i]; *p;) {
            if (strncmp(p, "{slot}", 6) == 0) {
                buf_puts(&b, slot);
                p += 6;
            } else {
                buf_putc(&b, *p++);
            }
        }
        argv[i] = b.data ? buf_take(&b) : xstrdup("");
    }
    size_t n_env = 0;
    while (environ[n_env])
        n_env++;
    char **envp = xcalloc(n_env + 2, sizeof(char *));
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++)
        if (strncmp(environ[i], "PADDOCK_SLOT=", 13) != 0)
            envp[k++] = environ[i];
    char slot_env[32];
    snprintf(slot_env, sizeof(slot_env), "PADDOCK_SLOT=%d", c->index);
    envp[k] = slot_env;
    int rc = engine_spawn(argv, envp, &c->pid, &c->in, &c->out, &c->err, err);
    for (size_t i = 0; argv[i]; i++)
        free(argv[i]);
    free(envp);
    return rc;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* The copy is gone (or must go): kill what is left, reap it, close its
 * pipes, plan its next start. `ended`: a job it held ends here. */
static void copy_down(struct resident_engine *re, struct copy *c,
                      const char *why, struct ended **ended)
{
    if (c->pid > 0) {
        kill(-c->pid, SIGKILL);
        while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    c->pid = -1;
    close_fd(&c->in);
    close_fd(&c->out);
    close_fd(&c->err);
    buf_fini(&c->outq);
    c->outq_off = 0;
    c->line_len = 0;
    c->line_cut = false;
    snprintf(re->why, sizeof(re->why), "copy %d of %s: %s%s%s", c->index,
             strrchr(re->argv[0], '/') + 1, why,
             c->tail_len ? "; stderr: " : "", c->tail);
    if (c->job) {
        struct ended *e = xcalloc(1, sizeof(*e));
        e->j = c->job;
        e->rc = ERR_ALGO;
        if (c->cancel_ms) { /* stopped on purpose: not a crash */
            e->rc = ERR_STOPPED;
            errmsg_set(&e->err, ERR_STOPPED, "the engine was stopped");
        } else {
            e->res.retry = true;
            errmsg_set(&e->err, ERR_ALGO, "the engine's process %s%s%s", why,
                       c->tail_len ? ": " : "", c->tail);
        }
        e->next = *ended;
        *ended = e;
        c->job = NULL;
    }
    bool had_run = c->state == CP_READY || c->state == CP_BUSY;
    if (had_run || !c->backoff_ms)
        c->backoff_ms = RESIDENT_BACKOFF_MIN_MS;
    else if (c->backoff_ms < RESIDENT_BACKOFF_MAX_MS)
        c->backoff_ms = c->backoff_ms * 2 > RESIDENT_BACKOFF_MAX_MS
                            ? RESIDENT_BACKOFF_MAX_MS
                            : c->backoff_ms * 2;
    c->next_start_ms = clock_mono_ms() + c->backoff_ms;
    c->state = CP_DOWN;
    c->cancel_ms = c->term_ms = 0;
    log_warn("resident copy down",
             "engine=%s copy=%d reason=\"%s\" "
             "restart_in_ms=%lld",
             strrchr(re->argv[0], '/') + 1, c->index, why,
             (long long)c->backoff_ms);
}

static void copy_start(struct resident_engine *re, struct copy *c, int64_t now)
{
    struct errmsg e = { 0 };
    if (!c->line)
        c->line = xmalloc(RESIDENT_LINE_MAX + 1);
    c->tail_len = 0;
    c->tail[0] = '\0';
    if (copy_spawn(re, c, &e) < 0) {
        struct ended *none = NULL;
        c->state = CP_STARTING; /* so the back-off grows */
        copy_down(re, c, errmsg_text(&e), &none);
        return;
    }
    c->state = CP_STARTING;
    c->started_ms = now;
    log_info("resident copy starting", "engine=%s copy=%d pid=%d",
             strrchr(re->argv[0], '/') + 1, c->index, (int)c->pid);
}

/* Queue a line (a JSON object, then '\n') for the copy's stdin. */
static void copy_send(struct copy *c, json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT);
    if (s) {
        buf_puts(&c->outq, s);
        buf_putc(&c->outq, '\n');
        free(s);
    }
}

static void copy_cancel(struct copy *c, int64_t now)
{
    json_t *o = json_pack("{s:s, s:s}", "type", "cancel", "id", c->job->id);
    copy_send(c, o);
    json_decref(o);
    c->cancel_ms = now;
}

/* ------------------------------------------------------------ lines */

static bool is_job(const struct copy *c, const char *id)
{
    return c->job && id && strcmp(c->job->id, id) == 0;
}

/* One line the copy printed. */
static void copy_line(struct resident_engine *re, struct copy *c,
                      const char *line, struct ended **ended)
{
    const char *name = strrchr(re->argv[0], '/') + 1;
    json_t *o = json_loads(line, 0, NULL);
    const char *type = json_string_value(json_object_get(o, "type"));
    const char *id = json_string_value(json_object_get(o, "id"));
    if (!json_is_object(o) || !type) {
        log_warn("resident engine printed an unknown line",
                 "engine=%s copy=%d line=\"%.120s\"", name, c->index, line);
    } else if (strcmp(type, "ready") == 0 && c->state == CP_STARTING) {
        c->state = CP_READY;
        c->backoff_ms = 0;
        re->why[0] = '\0';
        log_info("resident copy ready", "engine=%s copy=%d load_ms=%lld", name,
                 c->index, (long long)(clock_mono_ms() - c->started_ms));
    } else if (strcmp(type, "progress") == 0 && is_job(c, id)) {
        json_t *p = json_object_get(o, "percent");
        const struct job_ctl *ctl = c->job->ctl;
        if (json_is_number(p) && ctl->progress) {
            double v = json_number_value(p);
            ctl->progress(ctl->arg, v <= 0 ? 0 : v >= 99 ? 99 : (int)v);
        }
    } else if ((strcmp(type, "done") == 0 || strcmp(type, "error") == 0) &&
               is_job(c, id)) {
        struct ended *e = xcalloc(1, sizeof(*e));
        e->j = c->job;
        if (c->cancel_ms) {
            e->rc = errmsg_set(&e->err, ERR_STOPPED, "the engine was stopped");
        } else if (strcmp(type, "done") == 0) {
            e->rc = engine_output_check(e->j->job, e->j->out_path, &e->res,
                                        &e->err);
        } else {
            const char *code = json_string_value(json_object_get(o, "code"));
            const char *msg = json_string_value(json_object_get(o, "message"));
            e->rc = errmsg_set(&e->err, engine_program_code(code), "%.400s",
                               msg ? msg : "the engine reported an error");
        }
        e->next = *ended;
        *ended = e;
        c->job = NULL;
        c->cancel_ms = c->term_ms = 0;
        c->state = CP_READY;
    } else {
        log_warn("resident engine line ignored",
                 "engine=%s copy=%d type=%.32s id=%.80s", name, c->index, type,
                 id ? id : "-");
    }
    json_decref(o);
}

static void copy_stdout(struct resident_engine *re, struct copy *c,
                        const char *p, size_t n, struct ended **ended)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            if (c->line_cut) {
                log_warn(
                    "resident engine line too long", "engine=%s copy=%d max=%d",
                    strrchr(re->argv[0], '/') + 1, c->index, RESIDENT_LINE_MAX);
            } else if (c->line_len) {
                c->line[c->line_len] = '\0';
                copy_line(re, c, c->line, ended);
            }
            c->line_len = 0;
            c->line_cut = false;
        } else if (c->line_len < RESIDENT_LINE_MAX) {
            c->line[c->line_len++] = p[i];
        } else {
            c->line_cut = true;
        }
    }
}

/* stderr: its tail kept, its lines logged within a rate. */
static void copy_stderr(struct resident_engine *re, struct copy *c,
                        const char *p, size_t n, int64_t now)
{
    engine_tail_bytes(c->tail, &c->tail_len, p, n);
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\n' && c->errline_len < sizeof(c->errline) - 1) {
            c->errline[c->errline_len++] = p[i];
            continue;
        }
        if (p[i] != '\n')
            continue;
        c->errline[c->errline_len] = '\0';
        if (now - c->log_window_ms > 60000) {
            c->log_window_ms = now;
            c->logged = 0;
        }
        if (c->logged++ < RESIDENT_STDERR_LOG_PER_MIN)
            log_info("resident engine stderr", "engine=%s copy=%d line=\"%s\"",
                     strrchr(re->argv[0], '/') + 1, c->index, c->errline);
        c->errline_len = 0;
    }
}

/* ------------------------------------------------------------ manager */

/* Timers and states: starts, time-outs, cancels, jobs to copies. */
static void manage(struct resident_engine *re, int64_t now,
                   struct ended **ended)
{
    for (int i = 0; i < re->n_copies; i++) {
        struct copy *c = &re->copies[i];
        if (c->state == CP_DOWN && now >= c->next_start_ms && !re->quit)
            copy_start(re, c, now);
        if (c->state == CP_STARTING &&
            now - c->started_ms > re->start_timeout_ms) {
            char why[96];
            snprintf(why, sizeof(why), "not ready within %lld s",
                     (long long)(re->start_timeout_ms / 1000));
            copy_down(re, c, why, ended);
        }
        if (c->state == CP_BUSY && c->job) {
            const struct job_ctl *ctl = c->job->ctl;
            bool stop = ctl->stop && atomic_load(ctl->stop);
            if (stop && !c->cancel_ms)
                copy_cancel(c, now);
            if (c->cancel_ms && !c->term_ms &&
                now - c->cancel_ms > re->grace_ms) {
                kill(-c->pid, SIGTERM);
                c->term_ms = now;
            }
            if (c->term_ms && now - c->term_ms > ENGINE_KILL_GRACE_MS)
                copy_down(re, c, "ignored cancel and SIGTERM", ended);
        }
        if (c->pid > 0) {
            int status;
            pid_t w = waitpid(c->pid, &status, WNOHANG);
            if (w == c->pid) {
                char why[64];
                if (WIFSIGNALED(status))
                    snprintf(why, sizeof(why), "died of signal %d",
                             WTERMSIG(status));
                else
                    snprintf(why, sizeof(why), "exited with status %d",
                             WEXITSTATUS(status));
                c->pid = -1;
                copy_down(re, c, why, ended);
            }
        }
    }
    /* Queued jobs to idle ready copies. */
    for (int i = 0; i < re->n_copies && re->queue; i++) {
        struct copy *c = &re->copies[i];
        if (c->state != CP_READY)
            continue;
        struct rjob *j = re->queue;
        re->queue = j->next;
        if (!re->queue)
            re->queue_tail = NULL;
        char *doc = engine_job_json(j->job, j->in, j->out_path, j->id);
        if (!doc || strlen(doc) >= RESIDENT_LINE_MAX) {
            struct ended *e = xcalloc(1, sizeof(*e));
            e->j = j;
            e->rc = errmsg_set(&e->err, ERR_INVALID_PARAMETER,
                               "the job is over the contract's %d-byte line",
                               RESIDENT_LINE_MAX);
            e->next = *ended;
            *ended = e;
            free(doc);
            continue;
        }
        buf_puts(&c->outq, doc);
        buf_putc(&c->outq, '\n');
        free(doc);
        c->job = j;
        c->state = CP_BUSY;
        c->cancel_ms = c->term_ms = 0;
    }
}

static void io(struct resident_engine *re, struct pollfd *p, int n, int64_t now,
               struct ended **ended)
{
    char b[8192];
    for (int i = 0; i < re->n_copies; i++) {
        struct copy *c = &re->copies[i];
        for (int k = 1; k < n; k++) {
            if (!p[k].revents)
                continue;
            if (p[k].fd == c->out && c->out >= 0) {
                ssize_t r = read(c->out, b, sizeof(b));
                if (r > 0)
                    copy_stdout(re, c, b, (size_t)r, ended);
                else if (r == 0 || errno != EAGAIN)
                    copy_down(re, c, "closed its stdout", ended);
            } else if (p[k].fd == c->err && c->err >= 0) {
                ssize_t r = read(c->err, b, sizeof(b));
                if (r > 0)
                    copy_stderr(re, c, b, (size_t)r, now);
                else if (r == 0 || errno != EAGAIN)
                    close_fd(&c->err);
            } else if (p[k].fd == c->in && c->in >= 0 &&
                       c->outq_off < c->outq.len) {
                ssize_t w = write(c->in, c->outq.data + c->outq_off,
                                  c->outq.len - c->outq_off);
                if (w > 0)
                    c->outq_off += (size_t)w;
                else if (w < 0 && errno != EAGAIN)
                    copy_down(re, c, "closed its stdin", ended);
                if (c->outq_off == c->outq.len) {
                    buf_reset(&c->outq);
                    c->outq_off = 0;
                }
            }
        }
    }
}

static void report(struct ended *e)
{
    while (e) {
        struct ended *next = e->next;
        const struct job_ctl *ctl = e->j->ctl;
        if (e->rc == 0 && ctl->progress)
            ctl->progress(ctl->arg, 100);
        ctl->done(ctl->arg, e->rc, &e->res, &e->err);
        free(e->j);
        free(e);
        e = next;
    }
}

static void *manager_main(void *arg)
{
    struct resident_engine *re = arg;
    struct pollfd p[1 + 3 * RESIDENT_COPIES_MAX];
    pthread_mutex_lock(&re->lock);
    for (;;) {
        struct ended *ended = NULL;
        int64_t now = clock_mono_ms();
        manage(re, now, &ended);
        bool live = false;
        int n = 0;
        p[n++] = (struct pollfd){ .fd = re->wake[0], .events = POLLIN };
        for (int i = 0; i < re->n_copies; i++) {
            struct copy *c = &re->copies[i];
            live |= c->pid > 0;
            if (c->out >= 0)
                p[n++] = (struct pollfd){ .fd = c->out, .events = POLLIN };
            if (c->err >= 0)
                p[n++] = (struct pollfd){ .fd = c->err, .events = POLLIN };
            if (c->in >= 0 && c->outq_off < c->outq.len)
                p[n++] = (struct pollfd){ .fd = c->in, .events = POLLOUT };
        }
        bool quit = re->quit && !live && !re->queue;
        pthread_mutex_unlock(&re->lock);
        report(ended);
        if (quit)
            return NULL;
        poll(p, (nfds_t)n, RESIDENT_TICK_MS);
        if (p[0].revents) {
            char drain[64];
            while (read(re->wake[0], drain, sizeof(drain)) > 0)
                ;
        }
        pthread_mutex_lock(&re->lock);
        ended = NULL;
        io(re, p, n, clock_mono_ms(), &ended);
        if (ended) {
            pthread_mutex_unlock(&re->lock);
            report(ended);
            pthread_mutex_lock(&re->lock);
        }
    }
}

/* The first check of a node that renders starts the copies. */
static int ensure_started(struct resident_engine *re)
{
    if (re->started)
        return 0;
    if (pipe2(re->wake, O_CLOEXEC | O_NONBLOCK) < 0)
        return ERR_INTERNAL;
    for (int i = 0; i < re->n_copies; i++)
        re->copies[i].next_start_ms = 0;
    if (pthread_create(&re->thread, NULL, manager_main, re) != 0) {
        close_fd(&re->wake[0]);
        close_fd(&re->wake[1]);
        return ERR_INTERNAL;
    }
    re->started = true;
    return 0;
}

/* ------------------------------------------------------------ the ops */

static int resident_start(struct engine *e, const struct job *job,
                          const struct job_inputs *in, const char *out_path,
                          const struct job_ctl *ctl, struct errmsg *err)
{
    struct resident_engine *re = container_of(e, struct resident_engine, base);
    pthread_mutex_lock(&re->lock);
    if (!re->started || re->quit) {
        pthread_mutex_unlock(&re->lock);
        return errmsg_set(err, ERR_MODEL_UNAVAILABLE,
                          "the resident engine is not running on this node");
    }
    struct rjob *j = xcalloc(1, sizeof(*j));
    j->job = job;
    j->in = in;
    j->out_path = out_path;
    j->ctl = ctl;
    /* Unique per attempt: the task id and this process's count. */
    snprintf(j->id, sizeof(j->id), "%.40s-%llu",
             ctl->task_id ? ctl->task_id : "job",
             (unsigned long long)++re->seq);
    unlink(out_path);
    if (re->queue_tail)
        re->queue_tail->next = j;
    else
        re->queue = j;
    re->queue_tail = j;
    pthread_mutex_unlock(&re->lock);
    wake(re);
    return 0;
}

static int resident_capacity(struct engine *e, int configured)
{
    (void)configured; /* the copies were made from it */
    struct resident_engine *re = container_of(e, struct resident_engine, base);
    int n = 0;
    pthread_mutex_lock(&re->lock);
    for (int i = 0; i < re->n_copies; i++)
        n += re->copies[i].state == CP_READY || re->copies[i].state == CP_BUSY;
    pthread_mutex_unlock(&re->lock);
    return n;
}

static int resident_check(struct engine *e, const atomic_bool *stop,
                          struct errmsg *err)
{
    (void)stop;
    struct resident_engine *re = container_of(e, struct resident_engine, base);
    int rc = engine_program_check(re->argv[0], err);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&re->lock);
    if (ensure_started(re) < 0) {
        pthread_mutex_unlock(&re->lock);
        return errmsg_set(err, ERR_MODEL_UNAVAILABLE,
                          "cannot start the resident engine's manager");
    }
    bool able = false;
    for (int i = 0; i < re->n_copies; i++) {
        enum copy_state s = re->copies[i].state;
        /* Starting counts: a copy loading its model will serve soon. A
         * copy down since its first start (next_start_ms 0) is about to
         * start. */
        able |= s != CP_DOWN || re->copies[i].next_start_ms == 0;
    }
    if (!able)
        rc = errmsg_set(err, ERR_MODEL_UNAVAILABLE,
                        "no copy of the resident engine can serve: %s",
                        re->why[0] ? re->why : "all are restarting");
    pthread_mutex_unlock(&re->lock);
    return rc;
}

static int resident_configure(struct engine *e, int concurrency,
                              const char *const *opts, size_t n,
                              struct errmsg *err)
{
    struct resident_engine *re = container_of(e, struct resident_engine, base);
    if (concurrency > RESIDENT_COPIES_MAX)
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "concurrency: at most %d copies of a resident "
                          "engine",
                          RESIDENT_COPIES_MAX);
    re->n_copies = concurrency > 0 ? concurrency : 1;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(opts[i], '=');
        size_t k = eq ? (size_t)(eq - opts[i]) : strlen(opts[i]);
        int64_t ms;
        bool timeout = k == 13 && strncmp(opts[i], "start-timeout", 13) == 0;
        bool grace = k == 5 && strncmp(opts[i], "grace", 5) == 0;
        if (!timeout && !grace)
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "unknown engine option '%.*s' (known for a "
                              "resident engine: concurrency, deadline, "
                              "start-timeout, grace)",
                              (int)(k < 60 ? k : 60), opts[i]);
        if (clock_parse_duration(eq + 1, timeout ? 1000 : 0,
                                 timeout ? INT64_C(24) * 3600000 : 3600000,
                                 &ms) < 0)
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "%s: '%.60s' is not valid: expected a duration "
                              "%s",
                              timeout ? "start-timeout" : "grace", eq + 1,
                              timeout ? "from 1s to 24h (10m)"
                                      : "from 0 to 1h (5s)");
        if (timeout)
            re->start_timeout_ms = ms;
        else
            re->grace_ms = ms;
    }
    return 0;
}

static void resident_free(struct engine *e)
{
    struct resident_engine *re = container_of(e, struct resident_engine, base);
    if (re->started) {
        pthread_mutex_lock(&re->lock);
        re->quit = true;
        struct ended *ended = NULL;
        for (int i = 0; i < re->n_copies; i++)
            if (re->copies[i].state != CP_DOWN || re->copies[i].pid > 0)
                copy_down(re, &re->copies[i], "stopped at exit", &ended);
        pthread_mutex_unlock(&re->lock);
        report(ended);
        wake(re);
        pthread_join(re->thread, NULL);
        close_fd(&re->wake[0]);
        close_fd(&re->wake[1]);
    }
    for (int i = 0; i < RESIDENT_COPIES_MAX; i++) {
        free(re->copies[i].line);
        buf_fini(&re->copies[i].outq);
    }
    for (size_t i = 0; re->argv[i]; i++)
        free(re->argv[i]);
    pthread_mutex_destroy(&re->lock);
    free(re);
}

static const struct engine_ops resident_ops = {
    .name = "resident",
    .local_media = true,
    .start = resident_start,
    .computes = true,
    .capacity = resident_capacity,
    .configure = resident_configure,
    .check = resident_check,
    .host_check = true,
    .free = resident_free,
};

int engine_resident_new(const char *cmdline, struct engine **out,
                        struct errmsg *err)
{
    struct resident_engine *re = xcalloc(1, sizeof(*re));
    re->base.ops = &resident_ops;
    re->n_copies = 1;
    re->start_timeout_ms = 10 * 60 * 1000;
    re->grace_ms = 5000;
    re->wake[0] = re->wake[1] = -1;
    pthread_mutex_init(&re->lock, NULL);
    for (int i = 0; i < RESIDENT_COPIES_MAX; i++) {
        struct copy *c = &re->copies[i];
        c->index = i;
        c->pid = -1;
        c->in = c->out = c->err = -1;
    }
    int rc = engine_argv(cmdline, re->argv, "resident", err);
    if (rc < 0) {
        resident_free(&re->base);
        return rc;
    }
    *out = &re->base;
    return 0;
}
