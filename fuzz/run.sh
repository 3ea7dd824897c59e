#!/bin/sh
# Run the probe fuzzer for a bounded time and print one line like
# tests/run.sh: "PASS fuzz.probe" or "FAIL fuzz.probe" (then the report).
# New inputs go to WORK_DIR, the log to WORK_DIR.log, a crashing input to
# WORK_DIR-crash-<sha1> (reproduce: BINARY that-file).
# Usage: fuzz/run.sh BINARY CORPUS_DIR WORK_DIR SECONDS
set -u
bin=${1:?} corpus=${2:?} work=${3:?} secs=${4:-10}
mkdir -p "$work"
log="${work%/}.log" # beside the corpus, not in it
if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -dict="$(dirname "$0")/probe.dict" -artifact_prefix="${work%/}-" \
    -print_final_stats=1 "$work" "$corpus" >"$log" 2>&1; then
    echo "PASS fuzz.probe ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs in ${secs} s)"
else
    echo "FAIL fuzz.probe"
    tail -n 60 "$log"
    exit 1
fi
