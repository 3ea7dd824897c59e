/*
 * libFuzzer target for log/'s escaping rule: any bytes as the values of a
 * line (three of them, quoted and unquoted), and the line must still be
 * one line of exactly those three fields, each reading back as the bytes
 * that went in. A forged field or line, a lost byte, or a sanitizer report
 * is a bug.
 */
#include "../src/log/log.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Undo log_escape for one value at *p (quoted or a plain token); the
 * bytes go to out. false when the line is not well-formed there. */
static bool read_value(const char **p, struct buf *out)
{
    const char *s = *p;
    if (*s != '"') {
        while (*s && *s != ' ')
            buf_putc(out, *s++);
        *p = s;
        return true;
    }
    for (s++; *s != '"'; s++) {
        if (!*s)
            return false;
        if (*s != '\\') {
            buf_putc(out, *s);
            continue;
        }
        s++;
        switch (*s) {
        case '"':
        case '\\':
            buf_putc(out, *s);
            break;
        case 'n':
            buf_putc(out, '\n');
            break;
        case 'r':
            buf_putc(out, '\r');
            break;
        case 't':
            buf_putc(out, '\t');
            break;
        case 'u': {
            unsigned v = 0;
            for (int i = 1; i <= 4; i++) {
                int h = hex_value(s[i]);
                if (h < 0)
                    return false;
                v = v * 16 + (unsigned)h;
            }
            if (v > 0xff)
                return false;
            buf_putc(out, (char)v);
            s += 4;
            break;
        }
        default:
            return false;
        }
    }
    *p = s + 1;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Three NUL-free values, split at the input's first two NULs. */
    char *copy = malloc(size + 1);
    memcpy(copy, data, size);
    copy[size] = '\0';
    const char *v[3] = { copy, "", "" };
    char *z = memchr(copy, '\0', size);
    if (z && z < copy + size) {
        v[1] = z + 1;
        char *z2 = memchr(z + 1, '\0', (size_t)(copy + size - z - 1));
        if (z2)
            v[2] = z2 + 1;
    }
    struct buf line = BUF_INIT;
    log_format(&line, "a=%s b=\"%s\" c=%.40s", v[0], v[1], v[2]);
    for (size_t i = 0; i < line.len; i++) {
        unsigned char ch = (unsigned char)line.data[i];
        if (ch < 0x20 || ch == 0x7f) /* no control byte survives */
            __builtin_trap();
    }
    const char *p = line.data ? line.data : "";
    const char *keys[3] = { "a=", "b=", "c=" };
    for (int i = 0; i < 3; i++) {
        if (strncmp(p, keys[i], 2) != 0)
            __builtin_trap();
        p += 2;
        struct buf got = BUF_INIT;
        bool quoted = *p == '"';
        if (!read_value(&p, &got))
            __builtin_trap();
        size_t want = i == 2 ? strnlen(v[2], 40) : strlen(v[i]);
        if (i == 1 && !quoted) /* inside quotes in the format: stays so */
            __builtin_trap();
        if (got.len != want || (want && memcmp(got.data, v[i], want) != 0))
            __builtin_trap();
        buf_fini(&got);
        if (i < 2 && *p++ != ' ')
            __builtin_trap();
    }
    if (*p) /* nothing after the third field */
        __builtin_trap();
    buf_fini(&line);
    free(copy);
    return 0;
}
