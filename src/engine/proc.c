/* The pieces engine/ shares among the engines that run a program. */
#include "proc.h"

#include "../media/media.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

/* Failure codes a program may name (docs/api.md s.7); others become Algo. */
static const int program_codes[] = {
    ERR_ALGO,        ERR_DATA_INSPECTION,         ERR_INVALID_PARAMETER,
    ERR_TIMEOUT,     ERR_UNSUPPORTED_FILE_FORMAT, ERR_INPUT_DOWNLOAD_FAILED,
    ERR_INVALID_URL,
};

int engine_program_code(const char *code)
{
    for (size_t i = 0; code && i < ARRAY_LEN(program_codes); i++)
        if (strcmp(code, err_code(program_codes[i])) == 0)
            return program_codes[i];
    return ERR_ALGO;
}

char *engine_job_json(const struct job *job, const struct job_inputs *in,
                      const char *out_path, const char *id)
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
    json_t *root =
        json_pack("{s:i, s:s, s:s, s:s?, s:o, s:o, s:s}", "version",
                  ENGINE_CONTRACT_VERSION, "model", job->model, "kind",
                  task_kind_name(job->kind), "prompt", job->prompt,
                  "parameters", params, "media", media, "output", out_path);
    if (id) {
        json_object_set_new(root, "type", json_string("job"));
        json_object_set_new(root, "id", json_string(id));
    }
    if (job->extra) {
        json_t *extra = json_loads(job->extra, 0, NULL);
        if (extra)
            json_object_set_new(root, "extra", extra);
    }
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

int engine_argv(const char *cmdline, char *argv[ENGINE_ARGS_MAX + 1],
                const char *what, struct errmsg *err)
{
    size_t n = 0;
    const char *p = cmdline;
    memset(argv, 0, sizeof(char *) * (ENGINE_ARGS_MAX + 1));
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        const char *w = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if (n == ENGINE_ARGS_MAX)
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "engine %s: more than %d words", what,
                              ENGINE_ARGS_MAX);
        argv[n++] = xstrndup(w, (size_t)(p - w));
    }
    /* Whether the file is there and runs is the check's question (an API
     * node names the render hosts' programs without having them). */
    if (n == 0 || argv[0][0] != '/')
        return errmsg_set(err, ERR_INVALID_PARAMETER,
                          "engine %s: '%.200s' is not a program given by "
                          "its absolute path",
                          what, n ? argv[0] : "");
    return 0;
}

int engine_program_check(const char *program, struct errmsg *err)
{
    const char *slash = strrchr(program, '/');
    struct stat st;
    int rc = stat(program, &st);
    if (rc == 0 && !S_ISREG(st.st_mode))
        errno = EISDIR;
    if (rc < 0 || !S_ISREG(st.st_mode) || access(program, X_OK) < 0)
        return errmsg_set(err, ERR_MODEL_UNAVAILABLE,
                          "the engine program %.100s cannot be run on this "
                          "node: %s",
                          slash ? slash + 1 : program, strerror(errno));
    return 0;
}

void engine_tail_bytes(char *tail, size_t *len, const char *p, size_t n)
{
    if (n > ENGINE_STDERR_TAIL) {
        p += n - ENGINE_STDERR_TAIL;
        n = ENGINE_STDERR_TAIL;
    }
    if (*len + n > ENGINE_STDERR_TAIL) {
        size_t drop = *len + n - ENGINE_STDERR_TAIL;
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

int engine_spawn(char *const argv[], char *const envp[], pid_t *pid, int *in,
                 int *out, int *errfd, struct errmsg *err)
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
    int rc = posix_spawn(pid, argv[0], &fa, &at, argv, envp ? envp : environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (rc != 0) {
        ret = errmsg_set(err, ERR_ALGO, "cannot start the engine %s: %s",
                         argv[0], strerror(rc));
        goto out;
    }
    *in = pin[1];
    *out = pout[0];
    *errfd = perr[0];
    set_nonblock(*in);
    set_nonblock(*out);
    set_nonblock(*errfd);
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

int engine_output_check(const struct job *job, const char *out_path,
                        struct job_result *res, struct errmsg *err)
{
    struct task_media_info info;
    struct errmsg probe = { 0 };
    if (access(out_path, F_OK) != 0)
        return errmsg_set(err, ERR_ALGO,
                          "the engine reported success but wrote no video at "
                          "the output path");
    if (media_probe_file(out_path, TASK_MEDIA_VIDEO, "the engine's output",
                         &info, &probe) < 0)
        return errmsg_set(err, ERR_ALGO, "%s", errmsg_text(&probe));
    memset(&res->usage, 0, sizeof(res->usage));
    res->usage.output_s = info.duration_s;
    res->usage.sr = job->resolution;
    snprintf(res->usage.ratio, sizeof(res->usage.ratio), "%s", job->ratio);
    return 0;
}
