/*
 * Private to src/task's submit parse: job.c (the body, its model and
 * prompt, and the job's store format), job_media.c (the media fields and
 * their URLs), job_params.c (the parameters, the pass-through fields and
 * the rules' JSON), job_check.c (what every field check shares: the words
 * of a refusal and JSON access). Only these files include it.
 */
#ifndef PADDOCK_TASK_JOB_INT_H
#define PADDOCK_TASK_JOB_INT_H

#include "task.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of a client's value quoted back in an error message. */
#define JOB_SHOW_BYTES 40
/* Room for ", got <value>" (job__got). */
#define GOT_MAX (JOB_SHOW_BYTES + 16)

#define KIND_BIT(k)   (1u << (k))
#define KINDS_ALL     0xfu
#define RATIO_KINDS   (KIND_BIT(TASK_T2V) | KIND_BIT(TASK_R2V))
#define DEFAULT_RATIO "16:9"

/* ------------------------------------------------------ job_check.c */

/* Fill err (the text cut on a code point) and return code. */
int job__fail(struct errmsg *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* ERR_INVALID_PARAMETER, the answer to nearly every bad field. */
int job__bad(struct errmsg *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Bytes of s[0..n) to keep so at most max bytes remain, on a code point
 * boundary. */
size_t job__utf8_cut(const char *s, size_t n, size_t max);
/* ", got <value>" for a message (in out, or a constant), or "" when the
 * value is absent. */
const char *job__got(const json_t *v, char out[GOT_MAX]);
/* "a, b, c" into out (cut to fit). */
void job__join(char *out, size_t cap, const char *const *names, size_t n);
/* A member, or NULL when absent or JSON null (SDKs send unset optionals
 * as null). */
json_t *job__member(const json_t *obj, const char *key);
/* v is one of names[0..n): its index in *idx; else a refusal naming
 * field and the list. */
int job__want_enum(const json_t *v, const char *field, const char *const *names,
                   size_t n, size_t *idx, struct errmsg *err);
/* v is an integer in [min, max]: in *out; else a refusal naming field. */
int job__want_int(const json_t *v, const char *field, int64_t min, int64_t max,
                  int64_t *out, struct errmsg *err);

/* ------------------------------------------------------ job_media.c */

/* input.media, or when that is absent or empty the aliases, into
 * job->media, each URL checked and stored (owned by job). */
int job__parse_media(const json_t *input, struct job *job, struct errmsg *err);

/* ----------------------------------------------------- job_params.c */

/* parameters.* (or the defaults) into job; the seed is random_seed's
 * when none is sent. */
int job__parse_params(const json_t *params, int64_t random_seed,
                      struct job *job, struct errmsg *err);
/* The pass-through fields present as compact JSON (*out, owned), or
 * *out untouched when none. */
int job__collect_extra(const json_t *input, const json_t *params, char **out,
                       struct errmsg *err);
/* Whether res is one of the resolution tiers (480, 720, 1080). */
bool job__tier_known(int64_t res);

#endif
