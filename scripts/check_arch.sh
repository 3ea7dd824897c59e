#!/bin/sh
# The modules of src/ depend on each other in one direction: a module may
# include a module above it in the module table of docs/architecture.md,
# never one below it. This reads the table (the order of its rows) and each
# src/*/*.[ch]'s `#include "../X/..."` lines and names every include that
# goes the wrong way. main.c and cli/ sit on top and may include anything.
# The table must list every folder of src/, and only those.
#
#   scripts/check_arch.sh [ROOT]     check the tree at ROOT (default: this repo)
#   scripts/check_arch.sh --self-test
#
# Exit status 0 when the tree keeps the direction, 1 when it does not.
set -eu

# The checker proper, as one awk program over the table, then the sources.
# Paths are relative to the root: the table is docs/architecture.md, a
# source's module is the folder under src/.
# shellcheck disable=SC2016 # awk's $0, not the shell's
prog='
function fail(msg) { print msg; bad = 1 }
function table_done(   m) {
    if (done++)
        return
    if (rows == 0)
        fail(tab ": no module table (rows \"| `src/NAME/` | ...\" under \"" \
             head "\")")
    for (m in isdir)
        if (!(m in rank))
            fail(tab ": src/" m "/ is not in the module table")
    for (m in rank)
        if (!(m in isdir))
            fail(tab ":" at[m] ": src/" m "/ is in the module table but " \
                 "not in src/")
}
BEGIN {
    tab = "docs/architecture.md"
    head = "## Modules and dependency direction"
    n = split(dirs, d, " ")
    for (i = 1; i <= n; i++)
        isdir[d[i]] = 1
}
FILENAME == tab {
    if ($0 ~ /^## /) {
        intable = $0 == head
        next
    }
    if (!intable || $0 !~ /^\|[ \t]*`src\//)
        next
    cell = $0
    sub(/^\|[ \t]*`/, "", cell)
    sub(/`.*/, "", cell)
    if (cell !~ /^src\/[A-Za-z0-9_]+\/$/) {
        fail(tab ":" FNR ": " cell ": a row names a folder of src/, as " \
             "src/NAME/")
        next
    }
    m = substr(cell, 5, length(cell) - 5)
    if (m in rank) {
        fail(tab ":" FNR ": src/" m "/ is in the table twice")
        next
    }
    rank[m] = ++rows
    at[m] = FNR
    next
}
{
    table_done()
    if ($0 !~ /^[ \t]*#[ \t]*include[ \t]*"\.\.\/[A-Za-z0-9_]+\//)
        next
    mod = FILENAME
    sub(/^src\//, "", mod)
    sub(/\/.*/, "", mod)
    dep = $0
    sub(/^[^"]*"\.\.\//, "", dep)
    sub(/\/.*/, "", dep)
    if (mod == "cli" || dep == mod || !(mod in rank))
        next
    if (!(dep in rank))
        fail(FILENAME ":" FNR ": " mod " includes " dep ", which is not " \
             "in the module table of " tab)
    else if (rank[dep] > rank[mod])
        fail(FILENAME ":" FNR ": " mod " includes " dep ", which comes " \
             "after it in the module table of " tab)
}
END {
    table_done()
    exit bad
}
'

check() {
    root=$1
    if [ ! -f "$root/docs/architecture.md" ] || [ ! -d "$root/src" ]; then
        echo "check_arch: $root has no docs/architecture.md or src/" >&2
        return 1
    fi
    dirs=$(cd "$root/src" && find . -mindepth 1 -maxdepth 1 -type d |
        sed 's|^\./||' | sort | tr '\n' ' ')
    files=$(cd "$root" && find src -mindepth 2 -type f \
        \( -name '*.c' -o -name '*.h' \) | sort)
    # shellcheck disable=SC2086 # source paths have no blanks
    (cd "$root" && awk -v dirs="$dirs" "$prog" docs/architecture.md $files)
}

# A small tree: the table a, b, cli; then one violation at a time.
self_test() {
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/docs" "$tmp/src/a" "$tmp/src/b" "$tmp/src/cli"
    cat >"$tmp/docs/architecture.md" <<'EOF'
# t

## Modules and dependency direction

| folder | holds |
|---|---|
| `src/a/` | the bottom |
| `src/b/` | above a |
| `src/cli/` | the top |

## After
| `src/zzz/` | not in the table's section |
EOF
    printf '#include "a.h"\n' >"$tmp/src/a/a.c"
    printf '#include "../a/a.h"\n' >"$tmp/src/b/b.c"
    printf '#include "../b/b.h"\n#include "../a/a.h"\n' >"$tmp/src/cli/c.c"
    ok=0

    if ! out=$(check "$tmp"); then
        echo "check_arch self-test: a good tree failed: $out" >&2
        ok=1
    fi

    printf '/* a */\n#include "../b/b.h"\n' >"$tmp/src/a/x.h"
    want="src/a/x.h:2: a includes b, which comes after it"
    if out=$(check "$tmp"); then
        echo "check_arch self-test: a includes b, but the check passed" >&2
        ok=1
    elif ! printf '%s\n' "$out" | grep -qF "$want"; then
        echo "check_arch self-test: expected '$want', got: $out" >&2
        ok=1
    fi
    rm "$tmp/src/a/x.h"

    mkdir "$tmp/src/c"
    want="src/c/ is not in the module table"
    if out=$(check "$tmp"); then
        echo "check_arch self-test: src/c/ is unlisted, but the check passed" >&2
        ok=1
    elif ! printf '%s\n' "$out" | grep -qF "$want"; then
        echo "check_arch self-test: expected '$want', got: $out" >&2
        ok=1
    fi
    return $ok
}

case "${1:-}" in
--self-test)
    self_test
    ;;
-*)
    echo "usage: $0 [ROOT] | --self-test" >&2
    exit 2
    ;;
*)
    root=${1:-$(dirname "$0")/..}
    if ! out=$(check "$root"); then
        printf '%s\n' "$out" >&2
        echo "check_arch: an include breaks the module order; move the" \
            "code, or the row in docs/architecture.md when the table is" \
            "wrong" >&2
        exit 1
    fi
    ;;
esac
