/*
 * What every check of the submit parse shares (job_int.h): the words of a
 * refusal (the message cut on a code point, ", got <value>", a list of the
 * accepted values) and JSON access.
 */
#include "job_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int vfail(struct errmsg *err, int code, const char *fmt, va_list ap)
{
    err->code = code;
    vsnprintf(err->text, sizeof(err->text), fmt, ap);
    /* A cut at LIMIT_ERRMSG may split a code point: drop the partial one so
     * the message stays valid UTF-8 in the JSON answer. */
    size_t n = strlen(err->text);
    for (int k = 0; k < 3 && n > 0 && !utf8_valid(err->text, n); k++)
        err->text[--n] = '\0';
    return code;
}

int job__fail(struct errmsg *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int job__bad(struct errmsg *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(err, ERR_INVALID_PARAMETER, fmt, ap);
    va_end(ap);
    return ERR_INVALID_PARAMETER;
}

/* Bytes of s[0..n) to keep so at most max bytes remain, on a code point
 * boundary. */
size_t job__utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    return max;
}

/* ", got <value>" for a message, or "" when the value is absent. */
const char *job__got(const json_t *v, char out[GOT_MAX])
{
    const char *s;
    size_t n, keep;
    if (!v)
        return "";
    switch (json_typeof(v)) {
    case JSON_STRING:
        s = json_string_value(v);
        n = json_string_length(v);
        keep = job__utf8_cut(s, n, JOB_SHOW_BYTES);
        snprintf(out, GOT_MAX, ", got \"%.*s%s\"", (int)keep, s,
                 keep < n ? "..." : "");
        return out;
    case JSON_INTEGER:
        snprintf(out, GOT_MAX, ", got %" JSON_INTEGER_FORMAT,
                 json_integer_value(v));
        return out;
    case JSON_REAL:
        n = (size_t)snprintf(out, GOT_MAX, ", got %g", json_real_value(v));
        /* 5.0 must not read as the integer 5 it was refused for not being */
        if (n < GOT_MAX - 2 && !strpbrk(out + 6, ".eni"))
            memcpy(out + n, ".0", 3);
        return out;
    case JSON_TRUE:
        return ", got true";
    case JSON_FALSE:
        return ", got false";
    case JSON_OBJECT:
        return ", got an object";
    case JSON_ARRAY:
        return ", got an array";
    default:
        return ", got null";
    }
}

/* "a, b, c" into out (cut to fit). */
void job__join(char *out, size_t cap, const char *const *names, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < cap; i++) {
        int w =
            snprintf(out + used, cap - used, "%s%s", i ? ", " : "", names[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* -------------------------------------------------------- JSON access */

/* A member, or NULL when absent or JSON null (SDKs send unset optionals
 * as null). */
json_t *job__member(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

int job__want_enum(const json_t *v, const char *field, const char *const *names,
                   size_t n, size_t *idx, struct errmsg *err)
{
    const char *s = json_string_value(v); /* NULL unless a string */
    for (size_t i = 0; s && i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            *idx = i;
            return 0;
        }
    }
    char list[LIMIT_ERRMSG / 2], g[GOT_MAX];
    job__join(list, sizeof(list), names, n);
    return job__bad(err, "%s must be one of %s%s", field, list, job__got(v, g));
}

int job__want_int(const json_t *v, const char *field, int64_t min, int64_t max,
                  int64_t *out, struct errmsg *err)
{
    if (json_is_integer(v) && json_integer_value(v) >= min &&
        json_integer_value(v) <= max) {
        *out = json_integer_value(v);
        return 0;
    }
    char g[GOT_MAX];
    return job__bad(err, "%s must be an integer from %lld to %lld%s", field,
                    (long long)min, (long long)max, job__got(v, g));
}
