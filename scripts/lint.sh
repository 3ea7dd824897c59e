#!/bin/sh
# make lint: formatting (clang-format, check mode) and functions we refuse.
set -eu
cd "$(dirname "$0")/.."
files=$(find src tests/unit bench -name '*.[ch]' 2>/dev/null | sort)
status=0
if ! clang-format --dry-run --Werror $files; then
    echo "lint: formatting differs; run: clang-format -i \$(find src tests/unit bench -name '*.[ch]')" >&2
    status=1
fi
# Unbounded or non-reentrant libc calls (STYLE.md rule 12).
if grep -nE '\b(sprintf|strcpy|strcat|strtok|atoi|gets)\s*\(' $files; then
    echo "lint: banned function above (use snprintf, buf_*, strtok_r, parse_i64)" >&2
    status=1
fi
[ $status -eq 0 ] && echo "lint: ok"
exit $status
