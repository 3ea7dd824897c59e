"""The answer cache (--query-cache) over real HTTP: a finished task's
answer comes from memory byte for byte as the store's would, but for its
own request_id, for every terminal status, in both dialects, with each
request's own Host in video_url; it is filled when the task ends on this
node; live tasks are read from the store every time; an answer goes at its
task's expiry; the memory bound holds. And the access log: one line per
request, not one write(2) each."""

import http.client
import json
import os
import re
import shutil
import socket
import tempfile
import time
import uuid

from lib import KEY, OTHER_KEY, TT, Server, case, main, t2v

UUID_AT = len(b'{"request_id":"')
PROMPT = 'a "quoted" horse \\ on a beach, tab\there, caf\u00e9, \u99ac'
FAILING = {"model": "happyhorse-1.0-i2v",
           "input": {"media": [{"type": "first_frame",
                                "url": "http://127.0.0.1:9/x.png"}]},
           "parameters": {"resolution": "480P"}}


def cache_counts(srv):
    """hit, miss, entries, bytes from /metrics."""
    r = srv.request("GET", "/metrics",
                    headers={"Authorization": "Bearer " + KEY})
    assert r.status == 200, r
    text = r.body.decode()

    def value(pattern):
        m = re.search(r"^" + re.escape(pattern) + r" (\d+)$", text, re.M)
        assert m, (pattern, text[-2000:])
        return int(m.group(1))
    return {"hit": value('paddock_query_cache_lookups_total{result="hit"}'),
            "miss": value('paddock_query_cache_lookups_total{result="miss"}'),
            "entries": value("paddock_query_cache_entries"),
            "bytes": value("paddock_query_cache_bytes")}


def get(srv, tid, dialect="dashscope", host=None):
    """One query: the body's bytes, its request id checked against the
    response's X-Request-Id."""
    if dialect == "dashscope":
        path, headers = "/api/v1/tasks/" + tid, {"Authorization":
                                                 "Bearer " + KEY}
    else:
        path, headers = TT + "/api/v1/tasks/" + tid, {"TT-API-KEY": KEY}
    if host:
        headers["Host"] = host
    r = srv.request("GET", path, headers=headers)
    assert r.status == 200, r
    assert r.body[:UUID_AT] == b'{"request_id":"', r.body[:40]
    rid = r.body[UUID_AT:UUID_AT + 36].decode()
    assert rid == r.headers["x-request-id"], (rid, r.headers)
    uuid.UUID(rid)
    return r.body


def without_id(body):
    return body[:UUID_AT] + b"-" * 36 + body[UUID_AT + 36:]


def submitted(srv, body):
    r = srv.submit(body)
    assert r.status == 200, r
    return r.json()["output"]["task_id"]


def cancel(srv, tid):
    r = srv.request("POST", "/api/v1/tasks/%s/cancel" % tid,
                    headers={"Authorization": "Bearer " + KEY})
    assert r.status == 200, r


@case
def cached_answers_are_the_stores_answers():
    data = tempfile.mkdtemp(prefix="paddock-qcache-")
    try:
        # Three ends: CANCELED (cancelled while no worker runs), then
        # SUCCEEDED and FAILED (rendered).
        srv = Server(data=data, args=["--workers", "0"]).start()
        canceled = submitted(srv, t2v(prompt=PROMPT))
        cancel(srv, canceled)
        succeeded = submitted(srv, t2v(prompt=PROMPT, seed=3))
        failed = submitted(srv, FAILING)
        srv.stop()
        srv = Server(data=data, args=["--workers", "1"]).start()
        for tid, want in ((succeeded, "SUCCEEDED"), (failed, "FAILED")):
            assert srv.wait(tid)["output"]["task_status"] == want
        srv.stop()

        # A fresh cache: the first read of each task is the store's, every
        # later one the cache's. Hosts are named: each server has its own
        # port, which the default Host would carry into video_url.
        reads = [(tid, dialect, host)
                 for tid in (succeeded, failed, canceled)
                 for dialect in ("dashscope", "ttapi")
                 for host in ("paddock.test", "alt.example:8443", "[::1]:9")]
        cached = Server(data=data, args=["--workers", "0"]).start()
        got, ids = {}, set()
        before = cache_counts(cached)
        for r in reads:
            body = got[r] = get(cached, *r)
            ids.add(body[UUID_AT:UUID_AT + 36])
        after = cache_counts(cached)
        cached.stop()
        assert after["miss"] - before["miss"] == 3, (before, after)
        assert after["hit"] - before["hit"] == len(reads) - 3, (before,
                                                                  after)
        assert after["entries"] == 3, after
        assert len(ids) == len(reads), "every answer has its own request_id"

        # The same reads from a server without a cache: the same bytes.
        plain = Server(data=data, args=["--workers", "0", "--query-cache",
                                        "0"]).start()
        for r in reads:
            want = get(plain, *r)
            assert without_id(got[r]) == without_id(want), (r, got[r], want)
        counts = cache_counts(plain)
        plain.stop()
        assert counts["hit"] == 0 and counts["entries"] == 0, counts

        # What the answers say (the comparison above is not of two empty
        # shapes).
        doc = json.loads(got[(succeeded, "ttapi", "alt.example:8443")])
        assert doc["output"]["task_status"] == "SUCCEEDED", doc
        assert doc["output"]["orig_prompt"] == PROMPT, doc
        assert doc["output"]["video_url"].startswith(
            "http://alt.example:8443/files/"), doc
        assert doc["usage"]["duration"] == 3, doc
        doc = json.loads(got[(failed, "dashscope", "paddock.test")])
        assert doc["output"]["task_status"] == "FAILED", doc
        assert doc["output"]["code"] and doc["output"]["message"], doc
        doc = json.loads(got[(canceled, "dashscope", "[::1]:9")])
        assert doc["output"]["task_status"] == "CANCELED", doc
    finally:
        shutil.rmtree(data, ignore_errors=True)


@case
def a_public_url_is_kept_whole():
    """With --public-url the base is part of the kept answer, whatever the
    request's Host."""
    data = tempfile.mkdtemp(prefix="paddock-qcache-")
    try:
        pub = ["--public-url", "https://video.example.com/a%22b"]
        srv = Server(data=data, args=["--workers", "1"] + pub).start()
        tid = submitted(srv, t2v())
        assert srv.wait(tid)["output"]["task_status"] == "SUCCEEDED"
        first = get(srv, tid, host="one.example")
        second = get(srv, tid, "ttapi", host="two.example")
        srv.stop()
        assert without_id(first) == without_id(second)
        url = json.loads(first)["output"]["video_url"]
        assert url.startswith("https://video.example.com/a%22b/files/"), url
        plain = Server(data=data, args=["--workers", "0", "--query-cache",
                                        "0"] + pub).start()
        want = get(plain, tid, host="three.example")
        plain.stop()
        assert without_id(first) == without_id(want)
    finally:
        shutil.rmtree(data, ignore_errors=True)


@case
def filled_when_the_task_ends_here():
    # --grace 0s: the long render below is given back at the stop.
    srv = Server(args=["--workers", "1", "--grace", "0s"]).start()
    try:
        tid = submitted(srv, t2v(seed=11))
        # Not polled: the finish itself fills the cache.
        deadline = time.time() + 120
        while cache_counts(srv)["entries"] < 1:
            assert time.time() < deadline, "the finish filled nothing"
            time.sleep(0.05)
        before = cache_counts(srv)
        doc = json.loads(get(srv, tid))
        after = cache_counts(srv)
        assert doc["output"]["task_status"] == "SUCCEEDED", doc
        assert after["hit"] == before["hit"] + 1, (before, after)
        assert after["miss"] == before["miss"], (before, after)

        # A cancel too; and a live task is read from the store each time.
        live = submitted(srv, t2v(seed=12, resolution="1080P", duration=15))
        pending = submitted(srv, t2v(seed=13))
        before = cache_counts(srv)
        for _ in range(3):
            assert json.loads(get(srv, live))["output"]["task_status"] in (
                "PENDING", "RUNNING")
        after = cache_counts(srv)
        assert after["miss"] == before["miss"] + 3, (before, after)
        assert after["entries"] == before["entries"], (before, after)
        cancel(srv, pending)
        before = cache_counts(srv)
        doc = json.loads(get(srv, pending, "ttapi"))
        after = cache_counts(srv)
        assert doc["output"]["task_status"] == "CANCELED", doc
        assert after["hit"] == before["hit"] + 1, (before, after)
    finally:
        srv.stop()
        srv.cleanup()


@case
def another_keys_task_stays_unknown():
    srv = Server(args=["--workers", "0"]).start()
    try:
        tid = submitted(srv, t2v())
        cancel(srv, tid)
        for _ in range(2):
            r = srv.query(tid, key=OTHER_KEY)
            assert r.status == 200, r
            assert r.json()["output"] == {"task_id": tid,
                                          "task_status": "UNKNOWN"}, r.body
        assert json.loads(get(srv, tid))["output"]["task_status"] == \
            "CANCELED"
    finally:
        srv.stop()
        srv.cleanup()


@case
def expiry_removes_it():
    srv = Server(args=["--workers", "0", "--retention", "2s"]).start()
    try:
        one, two = submitted(srv, t2v()), submitted(srv, t2v(seed=2))
        cancel(srv, one)
        cancel(srv, two)
        ended = time.time()
        assert cache_counts(srv)["entries"] == 2
        assert json.loads(get(srv, one))["output"]["task_status"] == \
            "CANCELED"
        time.sleep(max(0, ended + 2.5 - time.time()))
        doc = json.loads(get(srv, one))
        assert doc["output"] == {"task_id": one, "task_status": "UNKNOWN"}, \
            doc
        # The other one was never asked for again: gone all the same.
        counts = cache_counts(srv)
        assert counts["entries"] == 0, counts
    finally:
        srv.stop()
        srv.cleanup()


@case
def the_memory_bound_holds():
    limit = 256 << 10
    srv = Server(args=["--workers", "0", "--query-cache", "256K",
                       "--max-active", "0"]).start()
    try:
        tids = []
        for i in range(600):
            tid = submitted(srv, t2v(prompt="horse %d " % i + "x" * 400))
            cancel(srv, tid)
            tids.append(tid)
            if i % 100 == 99:
                counts = cache_counts(srv)
                assert counts["bytes"] <= limit, counts
        for tid in tids:
            get(srv, tid)
        counts = cache_counts(srv)
        assert counts["bytes"] <= limit, counts
        # ~700-byte answers: 600 of them are far more than the bound, which
        # still holds a good share.
        assert 100 < counts["entries"] < 600, counts
        # The latest are kept: reading them again costs no store read.
        before = cache_counts(srv)
        for tid in tids[-20:]:
            get(srv, tid)
        after = cache_counts(srv)
        assert after["hit"] - before["hit"] == 20, (before, after)
    finally:
        srv.stop()
        srv.cleanup()


def raw_query(srv, tid, head_size, pieces):
    """A query whose head is exactly head_size bytes (padded with one
    header), sent in `pieces` parts; the status line's code."""
    start = ("GET /api/v1/tasks/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Authorization: Bearer %s\r\nConnection: close\r\n"
             "X-Pad: " % (tid, KEY)).encode()
    pad = head_size - len(start) - len(b"\r\n\r\n")
    head = start + b"p" * pad + b"\r\n\r\n"
    assert len(head) == head_size
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    step = -(-len(head) // pieces)
    for i in range(0, len(head), step):
        s.sendall(head[i:i + step])
        time.sleep(0.01)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return int(data.split(b" ", 2)[1]), data


@case
def a_head_of_16_kib_is_still_read():
    """A connection holds only what its request needs, and a head of
    exactly 16 KiB (whole or in pieces) is still taken; one byte more is
    431."""
    srv = Server(args=["--workers", "0"]).start()
    try:
        tid = submitted(srv, t2v())
        cancel(srv, tid)
        for pieces in (1, 7, 40):
            status, data = raw_query(srv, tid, 16 << 10, pieces)
            assert status == 200 and b'"CANCELED"' in data, data[:300]
        status, _ = raw_query(srv, tid, (16 << 10) + 1, 3)
        assert status == 431, status
    finally:
        srv.stop()
        srv.cleanup()


def writes_made(pid):
    """write(2)-family calls of a process (/proc/PID/io syscw; a socket's
    sendmsg is not one)."""
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("syscw:"):
                return int(line.split()[1])
    raise AssertionError("no syscw in /proc/%d/io" % pid)


@case
def the_access_log_is_written_in_batches():
    srv = Server(args=["--workers", "0"]).start()
    try:
        tid = submitted(srv, t2v())
        cancel(srv, tid)
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        headers = {"Authorization": "Bearer " + KEY}
        ids = []
        before = writes_made(srv.proc.pid)
        for _ in range(500):
            conn.request("GET", "/api/v1/tasks/" + tid, headers=headers)
            r = conn.getresponse()
            r.read()
            assert r.status == 200
            ids.append(r.getheader("X-Request-Id"))
        made = writes_made(srv.proc.pid) - before
        conn.close()
        # One line each, but not one write each: a batch per 50 ms at most.
        assert made < 100, "%d writes for 500 requests" % made
    finally:
        srv.stop()
    log = srv.log_text()
    srv.cleanup()
    lines = [line for line in log.splitlines() if 'msg="request"' in line]
    for rid in ids:  # every line out by the exit, SIGTERM or not
        assert sum(("request_id=%s " % rid) in line for line in lines) == 1
    assert all(line.startswith("ts=") for line in log.splitlines()
               if line.strip() and not line.startswith("paddock:"))


if __name__ == "__main__":
    main()
