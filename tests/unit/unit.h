/*
 * A minimal unit-test harness: each TEST is a function; CHECK records a
 * failure with file and line and lets the test go on. Every test prints
 * one line, "PASS suite.name" or "FAIL suite.name", which tests/run.sh counts.
 */
#ifndef PADDOCK_UNIT_H
#define PADDOCK_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_failed_checks;
static int unit_passed, unit_failed;
static const char *unit_suite = "unit";

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                    \
            unit_failed_checks++;                                              \
        }                                                                      \
    } while (0)

#define CHECK_INT(a, b)                                                       \
    do {                                                                      \
        long long a_ = (long long)(a), b_ = (long long)(b);                   \
        if (a_ != b_) {                                                       \
            fprintf(stderr, "  %s:%d: %s == %lld, expected %lld\n", __FILE__, \
                    __LINE__, #a, a_, b_);                                    \
            unit_failed_checks++;                                             \
        }                                                                     \
    } while (0)

#define CHECK_STR(a, b)                                                 \
    do {                                                                \
        const char *a_ = (a), *b_ = (b);                                \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                        \
            fprintf(stderr, "  %s:%d: %s == \"%s\", expected \"%s\"\n", \
                    __FILE__, __LINE__, #a, a_ ? a_ : "(null)",         \
                    b_ ? b_ : "(null)");                                \
            unit_failed_checks++;                                       \
        }                                                               \
    } while (0)

#define RUN(fn)                                      \
    do {                                             \
        int before_ = unit_failed_checks;            \
        fn();                                        \
        if (unit_failed_checks == before_) {         \
            printf("PASS %s.%s\n", unit_suite, #fn); \
            unit_passed++;                           \
        } else {                                     \
            printf("FAIL %s.%s\n", unit_suite, #fn); \
            unit_failed++;                           \
        }                                            \
        fflush(stdout);                              \
    } while (0)

#define UNIT_END() (unit_failed ? 1 : 0)

#endif
