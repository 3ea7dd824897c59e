/* The "trivially fast engine" of the scale row (bench/README.md): a
 * command engine (docs/engines.md, contract version 1) that copies a
 * pre-made MP4 to the task's output path.
 *
 *   copy_engine /abs/path/clip.mp4
 *
 * Reads the job document from stdin to end-of-file, takes the top-level
 * "output" string, copies the clip there and exits 0. No model work, no
 * encoding: what is left of a task is paddock's own path (claim, spawn,
 * probe, fsync and rename of the result, finish). On any failure it
 * prints an `error` line and exits 1, so the task FAILs with the reason.
 * C, not a script: an interpreter's start-up would be what we measure. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DOC_MAX      (1 << 20)
#define PATH_MAX_LEN 4096

static int fail(const char *what, const char *detail)
{
    printf("error {\"code\": \"InternalError.Algo\", \"message\": "
           "\"copy_engine: %s%s%s\"}\n",
           what, detail ? ": " : "", detail ? detail : "");
    fflush(stdout);
    return 1;
}

/* Reads the JSON string starting at doc[*i] == '"' into out (escapes
 * \" \\ \/ \b \f \n \r \t; \u only below 0x80); advances *i past the
 * closing quote, even when out is too small. Returns the length, -1 when
 * malformed or too long for out. */
static long read_string(const char *doc, size_t len, size_t *i, char *out,
                        size_t cap)
{
    size_t n = 0;
    int bad = 0;
    for ((*i)++; *i < len; (*i)++) {
        char c = doc[*i];
        if (c == '"') {
            (*i)++;
            if (out && !bad)
                out[n] = '\0';
            return bad ? -1 : (long)n;
        }
        if (c == '\\') {
            if (++*i >= len)
                return -1;
            c = doc[*i];
            switch (c) {
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            case 'u': {
                if (*i + 4 >= len)
                    return -1;
                char hex[5] = { doc[*i + 1], doc[*i + 2], doc[*i + 3],
                                doc[*i + 4], 0 };
                long v = strtol(hex, NULL, 16);
                if (v <= 0 || v >= 0x80) /* a path needs none of these */
                    bad = 1;
                c = (char)v;
                *i += 4;
                break;
            }
            default:
                break; /* " \ / stand for themselves */
            }
        }
        if (out && !bad) {
            if (n + 1 >= cap)
                bad = 1;
            else
                out[n] = c;
        }
        n++;
    }
    return -1;
}

/* The value of the top-level key "output", into out. */
static int find_output(const char *doc, size_t len, char *out, size_t cap)
{
    int depth = 0;
    int want_key = 0; /* at depth 1, the next string is a key */
    for (size_t i = 0; i < len;) {
        char c = doc[i];
        if (c == '"') {
            char key[16];
            int is_key = depth == 1 && want_key;
            long n =
                read_string(doc, len, &i, is_key ? key : NULL, sizeof(key));
            want_key = 0;
            if (!is_key || n < 0 || strcmp(key, "output") != 0)
                continue;
            while (i < len && (doc[i] == ' ' || doc[i] == ':' ||
                               doc[i] == '\n' || doc[i] == '\t'))
                i++;
            if (i >= len || doc[i] != '"')
                return -1;
            return read_string(doc, len, &i, out, cap) > 0 ? 0 : -1;
        }
        if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']')
            depth--;
        if ((c == '{' && depth == 1) || (c == ',' && depth == 1))
            want_key = 1;
        i++;
    }
    return -1;
}

int main(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] != '/')
        return fail("usage: copy_engine /abs/path/clip.mp4", NULL);
    static char doc[DOC_MAX];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(0, doc + len, sizeof(doc) - len);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail("reading the job", strerror(errno));
        }
        len += (size_t)n;
        if (len == sizeof(doc))
            return fail("job document too large", NULL);
    }
    char out[PATH_MAX_LEN];
    if (find_output(doc, len, out, sizeof(out)) < 0)
        return fail("no \\\"output\\\" path in the job", NULL);

    int in = open(argv[1], O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return fail("cannot open the clip", strerror(errno));
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return fail("cannot create the output", strerror(errno));
    static char buf[1 << 16];
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail("reading the clip", strerror(errno));
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                return fail("writing the output", strerror(errno));
            }
            off += w;
        }
    }
    /* No fsync: paddock fsyncs the result before it renames it. */
    if (close(fd) < 0)
        return fail("writing the output", strerror(errno));
    close(in);
    return 0;
}
