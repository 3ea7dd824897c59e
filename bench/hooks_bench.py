"""The hooks row of make bench (bench/README.md): webhook deliveries per
second to a loopback receiver on SQLite, and the time from a task's
SUCCEEDED to its delivery (p99). Called by bench.py with itself as `b`
(its Paddock, row, verdicts, submit_many)."""

import calendar
import http.server
import json
import os
import sqlite3
import threading
import time


class Receiver:
    """A keep-alive HTTP/1.1 receiver on 127.0.0.1 that answers 204 and
    notes when each webhook-id arrived (the first time)."""

    def __init__(self):
        self.seen = {}
        self.lock = threading.Lock()
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                now = time.time()
                wid = self.headers["webhook-id"]
                with recv.lock:
                    if wid not in recv.seen:
                        recv.seen[wid] = (now, body)
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d/hook" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def count(self):
        with self.lock:
            return len(self.seen)

    def wait(self, n, timeout):
        deadline = time.time() + timeout
        while self.count() < n and time.time() < deadline:
            time.sleep(0.01)
        return self.count()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def create_hook(b, server, url, events):
    status, _, body = server.request(
        "POST", "/api/v1/webhooks", json.dumps({"url": url,
                                                "events": events}),
        {"Authorization": "Bearer " + b.KEY,
         "Content-Type": "application/json"})
    if status != 200:
        raise b.Broken("webhook create: HTTP %d %r" % (status, body[:200]))
    return json.loads(body)["output"]["webhook_id"]


def drain_rate(b, ctx, recv, n):
    """n deliveries already in the outbox when the server starts: the
    time from its start until the receiver has them all. The backlog is
    the outbox rows of n finished tasks, written into the database while
    the server is stopped, so the row measures delivering alone."""
    args = ["--workers", "2", "--max-active", "0", "--max-queue", "0",
            "--fetch-allow", "127.0.0.1/32", "--engine",
            "sandbox fail=InternalError.Algo"]
    m = ctx.own(b.Paddock(ctx.binary, ctx.tmp, "hooks-drain", args).start())
    b.submit_many(m, n)
    deadline = time.time() + 300
    while b.metric(m, "paddock_tasks", "FAILED") < n:
        if time.time() > deadline:
            raise b.Broken("hooks: %d tasks did not end" % n)
        time.sleep(0.2)
    hook = create_hook(b, m, recv.url, ["task.failed"])
    m.stop()
    db = sqlite3.connect(os.path.join(m.data, "paddock.db"))
    now = int(time.time() * 1000)
    db.execute("INSERT INTO deliveries (delivery_id, webhook_id, task_id, "
               "event, created_ms, next_ms, updated_ms) SELECT 'msg_' || "
               "lower(hex(randomblob(12))), ?, task_id, 'task.failed', ?, ?, "
               "? FROM tasks", (hook, now, now, now))
    db.commit()
    db.close()
    t0 = time.time()
    m.start()
    got = recv.wait(n, 120)
    with recv.lock:
        times = sorted(t for t, _ in recv.seen.values())
    m.stop()
    if got < n:
        raise b.Broken("hooks: %d of %d deliveries arrived" % (got, n))
    # From the first arrival to the last: the server's start is not part.
    return (n - 1) / (times[-1] - times[0]), times[0] - t0


def succeeded_latency(b, ctx, recv, n):
    """n sandbox renders, each delivered as task.succeeded: the delay from
    the task's end_time (the commit) to its arrival, in ms."""
    m = ctx.own(b.Paddock(ctx.binary, ctx.tmp, "hooks-latency", [
        "--workers", "2", "--fetch-allow", "127.0.0.1/32", "--utc-offset",
        "+00:00"]).start())
    create_hook(b, m, recv.url, ["task.succeeded"])
    base = recv.count()
    b.submit_many(m, n, threads=2)
    got = recv.wait(base + n, 600)
    m.stop()
    if got < base + n:
        raise b.Broken("hooks: %d of %d succeeded deliveries" % (got - base,
                                                                 n))
    lat = []
    with recv.lock:
        for at, body in recv.seen.values():
            doc = json.loads(body)
            if doc["type"] != "task.succeeded":
                continue
            end = calendar.timegm(time.strptime(
                doc["data"]["output"]["end_time"][:19],
                "%Y-%m-%d %H:%M:%S"))
            end += int(doc["data"]["output"]["end_time"][20:23]) / 1000.0
            lat.append((at - end) * 1000.0)
    lat.sort()
    return lat[min(len(lat) - 1, int(len(lat) * 0.99))], lat[len(lat) // 2]


def run(ctx, b):
    n = 2000 if b.QUICK else 20000
    k = 50 if b.QUICK else 300
    recv = Receiver()
    try:
        rate, first_s = drain_rate(b, ctx, recv, n)
        p99, p50 = succeeded_latency(b, ctx, recv, k)
    finally:
        recv.stop()
    return [b.row("webhook deliveries/s", paddock=round(rate),
                  unit="deliveries/s", target="≥ 1000",
                  verdict=b.verdict_at_least(rate, 1000),
                  note="SQLite; a backlog of %d in the outbox at start "
                       "(first arrival %.2f s after it), first to last "
                       "arrival, to a Python receiver on 127.0.0.1 (the "
                       "receiver may be the bound)" % (n, first_s)),
            b.row("SUCCEEDED to delivery p99", paddock=round(p99, 1),
                  unit="ms", target="< 100", verdict=b.verdict_below(p99, 100),
                  note="%d renders; p50 %.1f ms; end_time (ms) to arrival"
                       % (k, p50))]
