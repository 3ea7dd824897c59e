/*
 * Structured log lines on stderr, and the one escaping rule for every
 * value in them: a %s argument is written so it cannot end its field or
 * its line. Inside quotes in the format (path="%s") it is escaped (\" \\
 * \n \r \t \u00XX for other control bytes); outside quotes it is written
 * as is when it is a plain token, else quoted and escaped. Other
 * conversions (numbers) are formatted as printf does.
 */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* What the buffer holds before a writer flushes it itself: a few hundred
 * request lines, far more than a flush interval brings at 50k lines/s
 * on this buffer's two halves. */
#define LOG_BUFFER_BYTES (64u << 10)

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

/*
 * What each byte needs: BYTE_PLAIN may stand in an unquoted value,
 * BYTE_QUOTED only inside quotes (space and '='), BYTE_ESCAPED must be
 * escaped even there (control bytes, DEL, '"' and '\\'). Bytes >= 0x80
 * pass (the line stays UTF-8 when the value is).
 */
enum { BYTE_PLAIN, BYTE_QUOTED, BYTE_ESCAPED };
#define BYTE_CLASS(c)                                                      \
    ((c) < 0x20 || (c) == 0x7f || (c) == '"' || (c) == '\\' ? BYTE_ESCAPED \
     : (c) == ' ' || (c) == '='                             ? BYTE_QUOTED  \
                                                            : BYTE_PLAIN)
#define CLASS4(c) \
    BYTE_CLASS(c), BYTE_CLASS((c) + 1), BYTE_CLASS((c) + 2), BYTE_CLASS((c) + 3)
#define CLASS16(c) CLASS4(c), CLASS4((c) + 4), CLASS4((c) + 8), CLASS4((c) + 12)
#define CLASS64(c) \
    CLASS16(c), CLASS16((c) + 16), CLASS16((c) + 32), CLASS16((c) + 48)
static const unsigned char byte_class[256] = { CLASS64(0), CLASS64(64),
                                               CLASS64(128), CLASS64(192) };

void log_escape(struct buf *out, const char *s, size_t n, bool quoted)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned need = n ? BYTE_PLAIN : BYTE_QUOTED; /* "" must be quoted */
    size_t i = 0;
    for (; i < n; i++) {
        unsigned k = byte_class[u[i]];
        if (k > need)
            need = k;
        if (k == BYTE_ESCAPED)
            break;
    }
    if (need == BYTE_PLAIN && !quoted) {
        buf_append(out, s, n);
        return;
    }
    if (!quoted)
        buf_putc(out, '"');
    size_t run = 0; /* bytes copied as they are, in one append */
    for (; i < n; i++) {
        unsigned char c = u[i];
        if (byte_class[c] != BYTE_ESCAPED)
            continue;
        buf_append(out, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':
            buf_puts(out, "\\\"");
            break;
        case '\\':
            buf_puts(out, "\\\\");
            break;
        case '\n':
            buf_puts(out, "\\n");
            break;
        case '\r':
            buf_puts(out, "\\r");
            break;
        case '\t':
            buf_puts(out, "\\t");
            break;
        default:
            buf_printf(out, "\\u%04x", c);
        }
    }
    buf_append(out, s + run, n - run);
    if (!quoted)
        buf_putc(out, '"');
}

/* A decimal integer, as %d, %lld, %u or %zu with no flags would write it
 * (the access line has three: no printf for them). */
static void put_integer(struct buf *out, bool negative, unsigned long long v)
{
    char d[24];
    size_t i = sizeof(d);
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (negative)
        d[--i] = '-';
    buf_append(out, d + i, sizeof(d) - i);
}

static void put_signed(struct buf *out, long long v)
{
    put_integer(out, v < 0,
                v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v);
}

/* The length modifier of a conversion, as the argument's type needs. */
enum lmod { M_NONE, M_HH, M_H, M_L, M_LL, M_Z, M_J, M_T, M_BIGL };

void log_vformat(struct buf *out, const char *fmt, va_list ap)
{
    bool quoted = false; /* inside a "..." of the format itself */
    const char *lit = fmt;
    for (const char *p = fmt; *p;) {
        if (*p != '%') {
            if (*p == '"')
                quoted = !quoted;
            p++;
            continue;
        }
        buf_append(out, lit, (size_t)(p - lit));
        const char *spec = p++;
        if (*p == '%') {
            buf_putc(out, '%');
            lit = ++p;
            continue;
        }
        int width = -1, prec = -1;
        bool bare = true; /* no flag, width or precision */
        while (*p == '-' || *p == '+' || *p == ' ' || *p == '#' || *p == '0')
            p++, bare = false;
        if (*p == '*') {
            width = va_arg(ap, int);
            p++;
            bare = false;
        }
        while (*p >= '0' && *p <= '9')
            p++, bare = false;
        if (*p == '.') {
            p++;
            bare = false;
            prec = 0;
            if (*p == '*') {
                prec = va_arg(ap, int);
                p++;
            }
            while (*p >= '0' && *p <= '9')
                prec = prec * 10 + (*p++ - '0');
        }
        enum lmod m = M_NONE;
        if (p[0] == 'h' && p[1] == 'h')
            m = M_HH, p += 2;
        else if (p[0] == 'l' && p[1] == 'l')
            m = M_LL, p += 2;
        else if (*p == 'h')
            m = M_H, p++;
        else if (*p == 'l')
            m = M_L, p++;
        else if (*p == 'z')
            m = M_Z, p++;
        else if (*p == 'j')
            m = M_J, p++;
        else if (*p == 't')
            m = M_T, p++;
        else if (*p == 'L')
            m = M_BIGL, p++;
        char conv = *p;
        if (!conv)
            break;
        p++;
        lit = p;
        if (conv == 's') {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            size_t n = prec >= 0 ? strnlen(s, (size_t)prec) : strlen(s);
            log_escape(out, s, n, quoted);
            continue;
        }
        if (bare && (conv == 'd' || conv == 'i') &&
            (m == M_NONE || m == M_L || m == M_LL)) {
            put_signed(out, m == M_LL  ? va_arg(ap, long long)
                            : m == M_L ? va_arg(ap, long)
                                       : va_arg(ap, int));
            continue;
        }
        if (bare && conv == 'u' && (m == M_NONE || m == M_Z || m == M_LL)) {
            put_integer(out, false,
                        m == M_LL  ? va_arg(ap, unsigned long long)
                        : m == M_Z ? va_arg(ap, size_t)
                                   : va_arg(ap, unsigned));
            continue;
        }
        /* Numbers and the rest: printf itself, on this one conversion. */
        char one[32];
        size_t sl = (size_t)(p - spec);
        if (sl >= sizeof(one))
            break;
        memcpy(one, spec, sl);
        one[sl] = '\0';
        bool stars = strchr(one, '*') != NULL;
        if (stars) { /* the star values were taken above: write them in */
            char fixed[64];
            size_t w = 0;
            for (size_t i = 0; i < sl && w < sizeof(fixed) - 24; i++) {
                if (one[i] != '*') {
                    fixed[w++] = one[i];
                    continue;
                }
                bool is_prec = i > 0 && one[i - 1] == '.';
                w += (size_t)snprintf(fixed + w, sizeof(fixed) - w, "%d",
                                      is_prec ? prec : width);
            }
            fixed[w] = '\0';
            if (w >= sizeof(one))
                break;
            memcpy(one, fixed, w + 1);
        }
        switch (conv) {
        case 'd':
        case 'i':
            if (m == M_LL)
                buf_printf(out, one, va_arg(ap, long long));
            else if (m == M_L)
                buf_printf(out, one, va_arg(ap, long));
            else if (m == M_Z)
                buf_printf(out, one, va_arg(ap, ptrdiff_t));
            else if (m == M_J)
                buf_printf(out, one, va_arg(ap, intmax_t));
            else if (m == M_T)
                buf_printf(out, one, va_arg(ap, ptrdiff_t));
            else
                buf_printf(out, one, va_arg(ap, int));
            break;
        case 'u':
        case 'x':
        case 'X':
        case 'o':
            if (m == M_LL)
                buf_printf(out, one, va_arg(ap, unsigned long long));
            else if (m == M_L)
                buf_printf(out, one, va_arg(ap, unsigned long));
            else if (m == M_Z)
                buf_printf(out, one, va_arg(ap, size_t));
            else if (m == M_J)
                buf_printf(out, one, va_arg(ap, uintmax_t));
            else if (m == M_T)
                buf_printf(out, one, va_arg(ap, size_t));
            else
                buf_printf(out, one, va_arg(ap, unsigned));
            break;
        case 'c':
            buf_printf(out, one, va_arg(ap, int));
            break;
        case 'p':
            buf_printf(out, one, va_arg(ap, void *));
            break;
        case 'f':
        case 'F':
        case 'e':
        case 'E':
        case 'g':
        case 'G':
        case 'a':
        case 'A':
            if (m == M_BIGL)
                buf_printf(out, one, va_arg(ap, long double));
            else
                buf_printf(out, one, va_arg(ap, double));
            break;
        default: /* not a conversion this logger knows: stop the line */
            return;
        }
    }
    if (lit && *lit)
        buf_puts(out, lit);
}

void log_format(struct buf *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vformat(out, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ output */

/*
 * The buffered writer (log_buffer_start): lines are appended to one half
 * of a double buffer under `lock`; a flush swaps the halves and writes the
 * full one with one write(2) under `wlock`, which orders every write to
 * stderr (a flush, a warn or error line, a line too large to buffer), so
 * lines come out whole and in the order they were appended.
 */
static struct {
    pthread_mutex_t lock;  /* guards on, stopping, cur, len, waiting */
    pthread_mutex_t wlock; /* held while writing to stderr */
    pthread_cond_t cond;   /* the flusher sleeps here */
    bool on, stopping, waiting, started;
    int cur; /* the half being filled */
    size_t len;
    pthread_t thread;
    char half[2][LOG_BUFFER_BYTES];
} lb = { .lock = PTHREAD_MUTEX_INITIALIZER,
         .wlock = PTHREAD_MUTEX_INITIALIZER };

/* All of [p, p+n) to stderr (a short write is retried; an error drops
 * the rest: there is nowhere to report it). */
static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Write what is buffered; the caller holds wlock. */
static void flush_locked(void)
{
    pthread_mutex_lock(&lb.lock);
    const char *p = lb.half[lb.cur];
    size_t n = lb.len;
    lb.cur ^= 1; /* appends go to the other half while this one is out */
    lb.len = 0;
    pthread_mutex_unlock(&lb.lock);
    write_all(p, n);
}

void log_flush(void)
{
    pthread_mutex_lock(&lb.wlock);
    flush_locked();
    pthread_mutex_unlock(&lb.wlock);
}

/* Append a line when buffering is on: false when the caller must write
 * it itself (buffering off, or the line larger than a half). */
static bool buffer_line(const char *p, size_t n)
{
    for (;;) {
        pthread_mutex_lock(&lb.lock);
        if (!lb.on || n > LOG_BUFFER_BYTES) {
            pthread_mutex_unlock(&lb.lock);
            return false;
        }
        if (lb.len + n <= LOG_BUFFER_BYTES) {
            bool wake = lb.len == 0 && lb.waiting;
            memcpy(lb.half[lb.cur] + lb.len, p, n);
            lb.len += n;
            if (wake)
                pthread_cond_signal(&lb.cond);
            pthread_mutex_unlock(&lb.lock);
            return true;
        }
        pthread_mutex_unlock(&lb.lock);
        log_flush(); /* full: this thread writes it, then appends */
    }
}

/* Once per process: the condition on the monotonic clock, and the last
 * lines written at exit whatever path it takes. */
static void log_buffer_init(void)
{
    clock_cond_init(&lb.cond);
    atexit(log_flush);
}

/* The flusher: a line waits at most LOG_FLUSH_MS for its write. */
static void *flusher_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lb.lock);
    while (!lb.stopping) {
        if (lb.len == 0) {
            lb.waiting = true;
            pthread_cond_wait(&lb.cond, &lb.lock);
            lb.waiting = false;
            continue;
        }
        struct timespec until = clock_mono_after(LOG_FLUSH_MS);
        while (!lb.stopping &&
               pthread_cond_timedwait(&lb.cond, &lb.lock, &until) == 0)
            ; /* woken early (a signal meant for a wait above): sleep on */
        pthread_mutex_unlock(&lb.lock);
        log_flush();
        pthread_mutex_lock(&lb.lock);
    }
    pthread_mutex_unlock(&lb.lock);
    return NULL;
}

void log_buffer_start(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, log_buffer_init);
    pthread_mutex_lock(&lb.lock);
    if (lb.on) {
        pthread_mutex_unlock(&lb.lock);
        return;
    }
    lb.stopping = false;
    lb.started = pthread_create(&lb.thread, NULL, flusher_main, NULL) == 0;
    /* No flusher, no buffering: a line must not wait for the next one. */
    lb.on = lb.started;
    pthread_mutex_unlock(&lb.lock);
}

void log_buffer_stop(void)
{
    pthread_mutex_lock(&lb.lock);
    bool started = lb.started;
    lb.on = false;
    lb.stopping = true;
    lb.started = false;
    pthread_cond_broadcast(&lb.cond);
    pthread_mutex_unlock(&lb.lock);
    if (started)
        pthread_join(lb.thread, NULL);
    log_flush();
}

void log_write(enum log_level level, const char *msg, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char ts[24];
    clock_format(clock_now_ms(), 0, ts);
    ts[10] = 'T';
    struct buf b = BUF_INIT;
    buf_reserve(&b, 256);
    buf_puts(&b, "ts=");
    buf_append(&b, ts, 23);
    buf_puts(&b, "Z level=");
    buf_puts(&b, level_names[level]);
    buf_puts(&b, " msg=");
    buf_json_str(&b, msg);
    if (fmt && fmt[0]) {
        va_list ap;
        buf_putc(&b, ' ');
        va_start(ap, fmt);
        log_vformat(&b, fmt, ap);
        va_end(ap);
    }
    buf_putc(&b, '\n');
    /* Warnings and errors go out at once, after what was buffered. */
    if (level >= LOG_WARN || !buffer_line(b.data, b.len)) {
        pthread_mutex_lock(&lb.wlock);
        flush_locked();
        write_all(b.data, b.len);
        pthread_mutex_unlock(&lb.wlock);
    }
    buf_fini(&b);
}
