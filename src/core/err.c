/* The error table: one row per failure, mapped to HTTP status and API code. */
#include "core.h"

#include <stdio.h>
#include <string.h>

struct err_row {
    const char *name;
    int status;
    const char *code;
    const char *message;
};

static const struct err_row err_rows[] = {
#define ERR_ROW_(name, status, code, msg) { #name, status, code, msg },
    ERR_MAP(ERR_ROW_)
#undef ERR_ROW_
};

static const struct err_row *err_row(int err)
{
    int i = err - ERR__BASE - 1;
    if (i < 0 || i >= (int)ARRAY_LEN(err_rows))
        return &err_rows[ERR_INTERNAL - ERR__BASE - 1];
    return &err_rows[i];
}

int err_status(int err)
{
    return err_row(err)->status;
}

const char *err_code(int err)
{
    return err_row(err)->code;
}

const char *err_message(int err)
{
    return err_row(err)->message;
}

const char *err_name(int err)
{
    return err == 0 ? "OK" : err_row(err)->name;
}

int err_from_code(const char *code)
{
    for (size_t i = 0; i < ARRAY_LEN(err_rows); i++)
        if (strcmp(err_rows[i].code, code) == 0)
            return ERR__BASE + 1 + (int)i;
    return 0;
}

int errmsg_set(struct errmsg *e, int code, const char *fmt, ...)
{
    va_list ap;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->text, sizeof(e->text), fmt, ap);
    va_end(ap);
    return code;
}

const char *errmsg_text(const struct errmsg *e)
{
    return e->text[0] ? e->text : err_message(e->code);
}
