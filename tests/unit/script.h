/*
 * Test helper: a shell script written into a test's directory, made
 * executable, for the engines and the worker to run (command and
 * resident programs). The path stays valid for the next seven calls.
 */
#ifndef PADDOCK_TEST_SCRIPT_H
#define PADDOCK_TEST_SCRIPT_H

#include <stdio.h>
#include <sys/stat.h>

/* in_dir/name.sh holding "#!/bin/sh", then body; its path, or
 * "/nonexistent" when it cannot be written (the engine then fails). */
static inline const char *unit_script(const char *in_dir, const char *name,
                                      const char *body)
{
    static char paths[8][160];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof(paths[0]), "%s/%s.sh", in_dir, name);
    FILE *f = fopen(p, "w");
    if (!f)
        return "/nonexistent";
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    chmod(p, 0755);
    return p;
}

/* The output path from the job document on stdin, into $out. */
#define UNIT_READ_OUTPUT \
    "out=$(sed -n 's/.*\"output\": *\"\\([^\"]*\\)\".*/\\1/p')\n"

#endif
