-- wrk script of bench/bench.py: adds the API key, turns the request into a
-- DashScope submit when BENCH_BODY is set, and ends with one line
-- "BENCH_JSON {...}" (counts, errors, latency percentiles in microseconds)
-- that bench.py reads instead of parsing wrk's text.
local key = os.getenv("BENCH_KEY")
if key and key ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. key
end
local body = os.getenv("BENCH_BODY")
if body and body ~= "" then
    wrk.method = "POST"
    wrk.body = body
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["X-DashScope-Async"] = "enable"
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "BENCH_JSON {\"requests\": %d, \"duration_us\": %d, \"bytes\": %d, " ..
        "\"connect\": %d, \"read\": %d, \"write\": %d, \"status\": %d, " ..
        "\"timeout\": %d, \"p50_us\": %d, \"p90_us\": %d, \"p99_us\": %d, " ..
        "\"max_us\": %d}\n",
        summary.requests, summary.duration, summary.bytes,
        e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency.max))
end
