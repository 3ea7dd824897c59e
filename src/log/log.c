/* Structured log lines on stderr. */
#include "log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_min = LOG_INFO;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_set_level(enum log_level level)
{
    atomic_store(&log_min, (int)level);
}

int log_level_parse(const char *name, enum log_level *out)
{
    for (size_t i = 0; i < ARRAY_LEN(level_names); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return ERR_INVALID_PARAMETER;
}

bool log_enabled(enum log_level level)
{
    return (int)level >= atomic_load(&log_min);
}

void log_write(enum log_level level, const char *msg, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char ts[24];
    clock_format(clock_now_ms(), 0, ts);
    ts[10] = 'T';
    struct buf b = BUF_INIT;
    buf_printf(&b, "ts=%sZ level=%s msg=", ts, level_names[level]);
    buf_json_str(&b, msg);
    if (fmt && fmt[0]) {
        va_list ap;
        buf_putc(&b, ' ');
        va_start(ap, fmt);
        buf_vprintf(&b, fmt, ap);
        va_end(ap);
    }
    buf_putc(&b, '\n');
    ssize_t n = write(STDERR_FILENO, b.data, b.len);
    (void)n;
    buf_fini(&b);
}
