#!/bin/sh
# make lint: formatting (clang-format, check mode) and functions we refuse.
set -eu
cd "$(dirname "$0")/.."
files=$(find src tests/unit tests/fakes bench fuzz -name '*.[ch]' 2>/dev/null | sort)
status=0
if ! clang-format --dry-run --Werror $files; then
    echo "lint: formatting differs; run: clang-format -i \$(find src tests/unit tests/fakes bench fuzz -name '*.[ch]')" >&2
    status=1
fi
# Unbounded or non-reentrant libc calls: the code uses the bounded forms.
if grep -nE '\b(sprintf|strcpy|strcat|strtok|atoi|gets)\s*\(' $files; then
    echo "lint: banned function above (use snprintf, buf_*, strtok_r, parse_i64)" >&2
    status=1
fi
# Modules include only modules above them in docs/architecture.md's table;
# the self-test proves the check can fail.
./scripts/check_arch.sh || status=1
./scripts/check_arch.sh --self-test || status=1
# Both compilers must accept the code (the build uses gcc; clang warns
# about different things).
if command -v clang >/dev/null 2>&1; then
    for f in src/*/*.c src/main.c; do
        clang -std=c17 -D_GNU_SOURCE -fsyntax-only -Wall -Wextra -Wshadow \
            -Wstrict-prototypes -Werror $(pkg-config --cflags jansson libpq \
            libmicrohttpd libavformat 2>/dev/null) "$f" || status=1
    done
fi
[ $status -eq 0 ] && echo "lint: ok"
exit $status
