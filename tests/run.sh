#!/bin/bash
# Run every test against the binaries in $1 (build/asan by default) and end
# with one line: "N passed, N failed". Unit tests print PASS/FAIL per case;
# the API tests (Python, over real HTTP on 127.0.0.1) do the same.
#
# Test programs run side by side, PADDOCK_TEST_JOBS at a time (default: one
# per core, at least two; most of an API test's time is spent waiting on
# its servers, and more at once starves the cases that watch a deadline
# or a grace run out on a machine this size). Each
# writes to its own file; its PASS/FAIL lines and, when it failed, its
# whole output are printed when it ends, with its time in seconds. Every
# test program starts its own servers on ephemeral ports of 127.0.0.1 and
# its own throw-away PostgreSQL, so none shares anything with another.
# The benchmark's quick run comes last, alone: it measures.
set -u
cd "$(dirname "$0")/.."
O=${1:-build/asan}
export PADDOCK_BIN="$PWD/$O/paddock"
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
cores=$(nproc 2>/dev/null || echo 1)
jobs_max=${PADDOCK_TEST_JOBS:-$((cores > 2 ? cores : 2))}
work=$(mktemp -d)
log="$work/log"
: >"$log"
trap 'rm -rf "$work"' EXIT
started=$(date +%s)

report() { # name, output file, exit status, seconds
    grep -E '^(PASS|FAIL) ' "$2" | tee -a "$log" || true
    if [ "$3" -ne 0 ] && ! grep -q '^FAIL ' "$2"; then
        # A crash or sanitizer report outside any case still counts.
        echo "FAIL $1 (exit $3)" | tee -a "$log"
    fi
    if [ "$3" -ne 0 ]; then
        echo "---- output of $1 ----"
        cat "$2"
        echo "----"
    fi
    echo "# $1: ${4}s"
}

# Results are reported by the parent, in the order the programs end.
running=0
reap() { # wait for one job to end and report it
    local f
    wait -n 2>/dev/null || true
    for f in "$work"/*.rc; do
        [ -e "$f" ] || continue
        local base=${f%.rc}
        report "$(cat "$base.name")" "$base.out" "$(cat "$f")" \
            "$(cat "$base.secs")"
        rm -f "$f"
        running=$((running - 1))
    done
}

seq=0
run() { # name, command...: start it once a slot is free
    local name=$1
    shift
    while [ "$running" -ge "$jobs_max" ]; do reap; done
    seq=$((seq + 1))
    local base="$work/$seq"
    echo "$name" >"$base.name"
    (
        t0=$(date +%s)
        "$@" >"$base.out" 2>&1
        rc=$?
        echo $(($(date +%s) - t0)) >"$base.secs"
        echo $rc >"$base.rc.tmp" && mv "$base.rc.tmp" "$base.rc"
    ) &
    running=$((running + 1))
}

drain() { # wait for every job started so far
    while [ "$running" -gt 0 ]; do reap; done
}

# Formatting, banned functions, and clang's warnings (scripts/lint.sh, the
# same as make lint).
lint() {
    if ./scripts/lint.sh; then
        echo "PASS lint"
    else
        echo "FAIL lint"
        return 1
    fi
}
run lint lint

# Every response the API tests read is logged (tests/api/lib.py), then
# checked against docs/openapi.json (tests/api/check_openapi.py).
PADDOCK_RESPONSE_LOG="$work/responses"
: >"$PADDOCK_RESPONSE_LOG"
export PADDOCK_RESPONSE_LOG

run_test() { # a unit test binary or an API test file
    case "$1" in
    *.d) ;;
    # The store suite runs on PostgreSQL too, in a throw-away cluster.
    */test_store) run "$(basename "$1")" tests/pg.sh run "$1" ;;
    # Many nodes on one PostgreSQL, in a throw-away cluster.
    */test_cluster.py | */test_relay_inflight.py | */test_webhooks.py | \
        */test_usage_cluster.py)
        run "$(basename "$1")" tests/pg.sh run python3 "$1" ;;
    # The usage ledger on both stores: SQLite, then PostgreSQL.
    */test_usage.py)
        run "$(basename "$1")" python3 "$1"
        run "$(basename "$1").postgres" tests/pg.sh run python3 "$1" ;;
    *.py) run "$(basename "$1")" python3 "$1" ;;
    *) [ -x "$1" ] && run "$(basename "$1")" "$1" ;;
    esac
}

# The longest first, so the rest fill the slots around them.
first="tests/api/test_reliability.py tests/api/test_cluster.py
tests/api/test_relay_inflight.py $O/tests/unit/test_store"
for t in $first; do
    [ -e "$t" ] && run_test "$t"
done
for t in "$O"/tests/unit/test_* tests/api/test_*.py; do
    case " $(echo $first) " in
    *" $t "*) continue ;;
    esac
    [ -e "$t" ] && run_test "$t"
done

# The Vercel AI SDK against paddock, on Node.js (tests/sdk, docs/sdk.md):
# one case; its packages come from scripts/setup.sh's npm ci.
run sdk.vercel_ai python3 tests/sdk/test_sdk.py

# The web console in headless chromium driven by playwright-core
# (tests/browser; both from scripts/setup.sh): one case per step, the
# screenshots of every page in build/browser-shots/.
run browser python3 tests/browser/test_browser.py

# The fuzz targets from their seeds (make fuzz runs them longer); built by
# make test's fuzz-prep: the media probe for 10 s, the HTTP front, the
# multipart/form-data parser and the log escaping rule for 5 s each.
fuzz_short() { # name, seconds, seed directory
    if [ -x "build/fuzz/fuzz_$1" ]; then
        rm -rf "build/fuzz/work/$1-short"
        run "fuzz.$1" ./fuzz/run.sh "build/fuzz/fuzz_$1" "$3" \
            "build/fuzz/work/$1-short" "$2"
    else
        echo "FAIL fuzz.$1 (no build/fuzz/fuzz_$1; make fuzz-prep)" |
            tee -a "$log"
    fi
}
fuzz_short probe 10 build/fuzz/corpus/probe
fuzz_short http 5 fuzz/seeds/http
fuzz_short form 5 fuzz/seeds/form
fuzz_short log 5 build/fuzz/corpus/log

# make install into a temporary prefix; the systemd unit verified.
run install tests/install.sh

# Every response logged above, against the OpenAPI document, once all the
# programs that log have ended.
drain
run openapi python3 tests/api/check_openapi.py "$PADDOCK_RESPONSE_LOG"
drain

# The benchmark in quick mode against a release build (bench/README.md):
# it fails when something is broken (a server does not start, a request
# errors), never on a missed target.
BENCH_BUILD=${BENCH_BUILD:-build/release}
bench_quick() {
    if BENCH_QUICK=1 ./bench/run.sh "$BENCH_BUILD"; then
        echo "PASS bench.quick"
    else
        echo "FAIL bench.quick"
        return 1
    fi
}
if [ -x "$BENCH_BUILD/paddock" ]; then
    run bench.quick bench_quick
else
    echo "FAIL bench.quick (no $BENCH_BUILD/paddock; make BUILD=release)" |
        tee -a "$log"
fi

drain
echo "# all tests: $(($(date +%s) - started))s with $jobs_max at a time"

passed=$(grep -c '^PASS ' "$log")
failed=$(grep -c '^FAIL ' "$log")
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
