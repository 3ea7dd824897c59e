/*
 * What the engines that run an operator's program share (command.c runs
 * one per task, resident.c keeps copies running): the job document of the
 * contract (docs/engines.md), the failure codes a program may name, the
 * spawn into a process group of its own, the stderr tail, the check of the
 * program file and of the MP4 it wrote. Internal to engine/.
 */
#ifndef PADDOCK_ENGINE_PROC_H
#define PADDOCK_ENGINE_PROC_H

#include "engine.h"

#include <sys/types.h>

#define ENGINE_CONTRACT_VERSION 1
/* Words of a program's command line. */
#define ENGINE_ARGS_MAX 32
/* The tail of stderr kept for failure messages and `paddock models`. */
#define ENGINE_STDERR_TAIL 400
/* Time between SIGTERM and SIGKILL when a program must stop. */
#define ENGINE_KILL_GRACE_MS 5000

/* The job as the contract's JSON document (version, model, kind, prompt,
 * parameters, media with local paths, output, extra); when `id` is not
 * NULL, also "type":"job" and "id" (the resident contract's line). The
 * caller frees it. */
char *engine_job_json(const struct job *job, const struct job_inputs *in,
                      const char *out_path, const char *id);
/* The error a program's code names (ERR_ALGO for one it may not use). */
int engine_program_code(const char *code);
/* Split `cmdline` into argv (an absolute program path, then arguments;
 * no shell); `what` names the engine in messages. 0 or
 * ERR_INVALID_PARAMETER. argv[n] is NULL; free each word. */
int engine_argv(const char *cmdline, char *argv[ENGINE_ARGS_MAX + 1],
                const char *what, struct errmsg *err);
/* Whether the program is there and executable (named, not its path, in
 * the message: clients read it in a 503). */
int engine_program_check(const char *program, struct errmsg *err);
/* Start argv (envp: NULL for ours) in its own process group, default
 * signals, with pipes for stdin, stdout and stderr (non-blocking on our
 * side). 0 or ERR_ALGO. */
int engine_spawn(char *const argv[], char *const envp[], pid_t *pid, int *in,
                 int *out, int *errfd, struct errmsg *err);
/* Keep the last ENGINE_STDERR_TAIL bytes seen in tail (quotes and
 * newlines blanked, NUL-ended). */
void engine_tail_bytes(char *tail, size_t *len, const char *p, size_t n);
/* The program says it wrote out_path: there, a video paddock can read;
 * *res gets its usage. 0 or ERR_ALGO naming what is wrong. */
int engine_output_check(const struct job *job, const char *out_path,
                        struct job_result *res, struct errmsg *err);

#endif
