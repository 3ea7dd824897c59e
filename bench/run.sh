#!/bin/sh
# make bench: run bench/bench.py against the paddock binary in $1
# (build/release by default). Compiles the reference program
# bench/sqlite_raw.c and the scale row's engine bench/copy_engine.c next
# to it (and bench/vg_shim.c for the cpu row, when there is valgrind),
# checks the tools, then hands over to Python; BENCH_QUICK=1 is the short
# CI run. Exits non-zero only when something is broken, never on a missed
# target.
set -eu
cd "$(dirname "$0")/.."
O=${1:-build/release}

if [ ! -x "$O/paddock" ]; then
    echo "bench: $O/paddock is missing (make BUILD=release first)" >&2
    exit 2
fi

find_tool() { # name: its path, looking in sbin too (nginx for non-root)
    PATH="$PATH:/usr/sbin:/sbin" command -v "$1" 2>/dev/null || {
        echo "bench: $1 is missing (scripts/setup.sh installs it)" >&2
        exit 2
    }
}
NGINX=$(find_tool nginx)
WRK=$(find_tool wrk)
FFMPEG=$(find_tool ffmpeg)
find_tool python3 >/dev/null

mkdir -p "$O/bench"
${CC:-cc} -O2 -std=c17 -Wall -Wextra -Werror -o "$O/bench/sqlite_raw" \
    bench/sqlite_raw.c -lsqlite3
${CC:-cc} -O2 -std=c17 -Wall -Wextra -Werror -o "$O/bench/copy_engine" \
    bench/copy_engine.c

# The cpu row counts instructions with valgrind's callgrind, when there
# is one (it says n/a otherwise); bench/vg_shim.c gets it past libhwy.
set --
if VALGRIND=$(command -v valgrind 2>/dev/null) &&
    command -v callgrind_annotate >/dev/null 2>&1; then
    ${CC:-cc} -O2 -std=c17 -Wall -Wextra -Werror -shared -fPIC \
        -o "$O/bench/vg_shim.so" bench/vg_shim.c
    set -- --valgrind "$VALGRIND" --vg-shim "$PWD/$O/bench/vg_shim.so"
fi

exec python3 bench/bench.py --bin "$O/paddock" \
    --sqlite-raw "$O/bench/sqlite_raw" --copy-engine "$O/bench/copy_engine" \
    --nginx "$NGINX" --wrk "$WRK" --ffmpeg "$FFMPEG" "$@"
