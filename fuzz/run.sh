#!/bin/sh
# Run one fuzzer for a bounded time and print one line like tests/run.sh:
# "PASS fuzz.NAME" or "FAIL fuzz.NAME" (then the report), NAME from the
# binary's (fuzz_http: fuzz.http), with fuzz/NAME.dict when there is one.
# New inputs go to WORK_DIR, the log to WORK_DIR.log, a crashing input to
# WORK_DIR-crash-<sha1> (reproduce: BINARY that-file).
# Usage: fuzz/run.sh BINARY CORPUS_DIR WORK_DIR SECONDS
set -u
bin=${1:?} corpus=${2:?} work=${3:?} secs=${4:-10}
name=$(basename "$bin" | sed 's/^fuzz_//')
dict="$(dirname "$0")/$name.dict"
mkdir -p "$work" "$corpus"
log="${work%/}.log" # beside the corpus, not in it
set -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="${work%/}-" -print_final_stats=1
[ -f "$dict" ] && set -- "$@" -dict="$dict"
if "$bin" "$@" "$work" "$corpus" >"$log" 2>&1; then
    echo "PASS fuzz.$name ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs in ${secs} s)"
else
    echo "FAIL fuzz.$name"
    tail -n 60 "$log"
    exit 1
fi
