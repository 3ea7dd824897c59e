#!/bin/sh
# Run every test against the binaries in $1 (build/asan by default) and end
# with one line: "N passed, N failed". Unit tests print PASS/FAIL per case;
# the API tests (Python, over real HTTP on 127.0.0.1) do the same.
set -u
cd "$(dirname "$0")/.."
O=${1:-build/asan}
export PADDOCK_BIN="$PWD/$O/paddock"
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

run() { # name, command...
    name=$1
    shift
    out=$(mktemp)
    "$@" >"$out" 2>&1
    rc=$?
    cat "$out" | tee -a "$log" | grep -E '^(PASS|FAIL) ' || true
    if [ $rc -ne 0 ] && ! grep -q '^FAIL ' "$out"; then
        # A crash or sanitizer report outside any case still counts.
        echo "FAIL $name (exit $rc)" | tee -a "$log"
    fi
    if [ $rc -ne 0 ]; then
        echo "---- output of $name ----"
        cat "$out"
        echo "----"
    fi
    rm -f "$out"
}

for t in "$O"/tests/unit/test_*; do
    [ -x "$t" ] || continue
    case "$t" in
    *.d) continue ;;
    # The store suite runs on PostgreSQL too, in a throw-away cluster.
    */test_store) run "$(basename "$t")" tests/pg.sh run "$t" ;;
    *) run "$(basename "$t")" "$t" ;;
    esac
done

# Every response the API tests read is logged (tests/api/lib.py), then
# checked against docs/openapi.json (tests/api/check_openapi.py).
PADDOCK_RESPONSE_LOG=$(mktemp)
export PADDOCK_RESPONSE_LOG
trap 'rm -f "$log" "${PADDOCK_RESPONSE_LOG:-}"' EXIT
for t in tests/api/test_*.py; do
    [ -f "$t" ] || continue
    case "$t" in
    # Many nodes on one PostgreSQL, in a throw-away cluster.
    */test_cluster.py) run "$(basename "$t")" tests/pg.sh run python3 "$t" ;;
    *) run "$(basename "$t")" python3 "$t" ;;
    esac
done
run openapi python3 tests/api/check_openapi.py "$PADDOCK_RESPONSE_LOG"
rm -f "$PADDOCK_RESPONSE_LOG"
unset PADDOCK_RESPONSE_LOG

# The Vercel AI SDK against paddock, on Node.js (tests/sdk, docs/sdk.md):
# one case; its packages come from scripts/setup.sh's npm ci.
run sdk.vercel_ai python3 tests/sdk/test_sdk.py

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

passed=$(grep -c '^PASS ' "$log")
failed=$(grep -c '^FAIL ' "$log")
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
