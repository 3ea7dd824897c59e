/*
 * log: one structured line per event on stderr, logfmt style:
 *   ts=2026-11-28T20:56:09.123Z level=info msg="task finished" task_id=...
 * Callers pass the key=value part as a printf format. Every %s value goes
 * through one escaping rule (log_escape), so no value can end its field or
 * forge a line: inside quotes in the format (path="%s") it is escaped;
 * outside quotes it is written as is when it is a plain token, else quoted.
 * Never pass secrets: keys, signatures and signed URLs stay out of logs.
 *
 * Output: each line is written with one write(2), at once, until
 * log_buffer_start; from then on info and debug lines are gathered in
 * memory and written many at a time (one write(2) per LOG_FLUSH_MS at
 * most, or per 64 KiB): a line waits at most LOG_FLUSH_MS, and is written
 * before any warn or error line that follows it (those go out at once),
 * at log_flush, log_buffer_stop and exit. Lines are never cut or
 * interleaved, and come out in the order they were logged.
 *
 * Threads: any thread.
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

/*
 * The escaping rule: append s[0, n) as a logfmt value. quoted: the value
 * sits inside quotes already (escape \" \\ \n \r \t and other control
 * bytes as \u00XX); else written as is when every byte is printable and
 * none of space " = \, otherwise quoted and escaped. Bytes >= 0x80 pass
 * unchanged (the line stays UTF-8 when the value is).
 */
void log_escape(struct buf *out, const char *s, size_t n, bool quoted);
/* The fields part of a line, as log_write makes it: for tests and fuzz. */
void log_format(struct buf *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_vformat(struct buf *out, const char *fmt, va_list ap);

/* The longest a buffered line waits for its write. */
#define LOG_FLUSH_MS 50

/* Buffer info and debug lines from now on (starts the flusher thread;
 * call it after blocking signals, which the thread inherits). */
void log_buffer_start(void);
/* Write what is buffered now. */
void log_flush(void);
/* Flush, stop the flusher, and write each line at once again. */
void log_buffer_stop(void);

#define log_debug(msg, ...) log_write(LOG_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...)  log_write(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...)  log_write(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_write(LOG_ERROR, msg, __VA_ARGS__)

#endif
