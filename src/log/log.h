/*
 * log: one structured line per event on stderr, logfmt style:
 *   ts=2026-11-28T20:56:09.123Z level=info msg="task finished" task_id=...
 * Callers pass the key=value part already formatted (values that may hold
 * spaces go through log_quote). Never pass secrets: keys, signatures and
 * signed URLs stay out of logs.
 *
 * Threads: any thread; each line is written with one write(2), so lines from
 * different threads never interleave.
 */
#ifndef PADDOCK_LOG_H
#define PADDOCK_LOG_H

#include "../core/core.h"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Lines below `level` are dropped (default LOG_INFO). */
void log_set_level(enum log_level level);
/* Parse "debug", "info", "warn", "error"; 0 or ERR_INVALID_PARAMETER. */
int log_level_parse(const char *name, enum log_level *out);
/* True when a line at `level` would be written (skip building it if not). */
bool log_enabled(enum log_level level);
/* Write one line: msg, then the printf-formatted key=value fields. */
void log_write(enum log_level level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(msg, ...) log_write(LOG_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...)  log_write(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...)  log_write(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_write(LOG_ERROR, msg, __VA_ARGS__)

#endif
