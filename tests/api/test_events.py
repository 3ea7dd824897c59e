"""The status stream, GET /api/v1/tasks/{id}/events (docs/extensions.md,
"Status stream"), and output.queue_position ("Queue position"), over real
HTTP on 127.0.0.1: a sandbox scenario's task seen PENDING, RUNNING with its
progress and SUCCEEDED with increasing ids, then the stream closed;
Last-Event-ID resumes; keep-alive comments at a short interval; another
key's or an unknown task is 404; both dialects; the per-key bound; many
streams at once; queue positions 1..N while queued, none once running.

Timing is only ever waited for (with a generous bound on failure), never
asserted as a ceiling."""

import json
import os
import socket
import subprocess
import time

from lib import BIN, KEY, OTHER_KEY, TT, Server, case, main, t2v

HEADER = "X-Paddock-Scenario"


class Stream:
    """A raw client of one event stream: the head, then events as they
    come (comments kept apart)."""

    def __init__(self, srv, task_id, dialect="dashscope", key=KEY,
                 last=None, timeout=60):
        self.sock = socket.create_connection(("127.0.0.1", srv.port),
                                             timeout=timeout)
        path = "/api/v1/tasks/%s/events" % task_id
        auth = "Authorization: Bearer " + key
        if dialect == "ttapi":
            path, auth = TT + path, "TT-API-KEY: " + key
        req = "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n" % (
            path, srv.port, auth)
        if last is not None:
            req += "Last-Event-ID: %s\r\n" % last
        self.sock.sendall((req + "\r\n").encode())
        self.buf = b""
        self.eof = False
        while b"\r\n\r\n" not in self.buf:
            self._fill()
            assert not self.eof or b"\r\n\r\n" in self.buf, self.buf
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.comments = 0

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
        self.buf += data

    def body(self):
        """The rest of an error answer (Content-Length bytes)."""
        n = int(self.headers["content-length"])
        while len(self.buf) < n and not self.eof:
            self._fill()
        return json.loads(self.buf[:n])

    def next(self):
        """The next event as a dict (id, event, data parsed), or None at
        the end of the stream. Comments are counted."""
        while True:
            while b"\n\n" not in self.buf:
                if self.eof:
                    assert self.buf == b"", self.buf
                    return None
                self._fill()
            block, self.buf = self.buf.split(b"\n\n", 1)
            ev = {}
            for line in block.decode().split("\n"):
                if line.startswith(":"):
                    self.comments += 1
                    continue
                k, _, v = line.partition(": ")
                assert k not in ev, block  # data is one line
                ev[k] = v
            if ev:
                ev["id"] = int(ev["id"])
                ev["data"] = json.loads(ev["data"])
                return ev

    def close(self):
        self.sock.close()


def submit(srv, scenario, key=KEY, dialect="dashscope", seed=1):
    r = srv.submit(t2v(seed=seed), key=key, dialect=dialect,
                   headers={HEADER: scenario})
    assert r.status == 200, r
    body = r.json()
    return (body.get("output") or body.get("data"))["task_id"]


def setup():
    return Server(args=["--stream-keepalive", "300ms", "--workers", "2",
                        "--stream-max-per-key", "40"]).start()


def teardown(srv):
    srv.stop()
    srv.cleanup()


def watch(srv, task_id, **kw):
    s = Stream(srv, task_id, **kw)
    assert s.status == 200, (s.status, s.buf)
    events = []
    while True:
        ev = s.next()
        if ev is None:
            break
        events.append(ev)
    s.close()
    return s, events


@case
def whole_life(srv):
    tid = submit(srv, "queue=1s,run=2s")
    s, events = watch(srv, tid)
    assert s.headers["content-type"] == "text/event-stream", s.headers
    assert "content-length" not in s.headers, s.headers
    assert s.headers.get("x-request-id"), s.headers
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
    kinds = [e["event"] for e in events]
    assert kinds[0] == "PENDING" and kinds[-1] == "SUCCEEDED", kinds
    assert "RUNNING" in kinds, kinds
    for e in events:
        out = e["data"]["output"]
        assert out["task_id"] == tid and out["task_status"] == e["event"]
        assert e["data"]["request_id"] == s.headers["x-request-id"]
    progress = [e["data"]["output"]["progress"] for e in events
                if e["event"] == "RUNNING"]
    assert len(progress) >= 2 and progress == sorted(progress), progress
    assert events[0]["data"]["output"]["queue_position"] >= 1, events[0]
    last = events[-1]["data"]
    assert last["output"]["video_url"].startswith("http://"), last
    assert last["usage"]["duration"] == 3, last
    # The final event is the query's answer, byte for byte but the id.
    q = srv.query(tid).json()
    q["request_id"] = last["request_id"]
    assert q == last, (q, last)
    assert s.comments >= 1  # keep-alives every 300 ms over 3 s


@case
def resume_after_last_event_id(srv):
    tid = submit(srv, "run=1s", seed=2)
    _, events = watch(srv, tid)
    assert len(events) >= 3, events
    mid = events[len(events) // 2]["id"]
    _, again = watch(srv, tid, last=mid)
    assert again and all(e["id"] > mid for e in again), (mid, again)
    assert again[-1]["event"] == "SUCCEEDED", again
    # Resumed after the terminal event: nothing newer, closed at once.
    _, none = watch(srv, tid, last=events[-1]["id"])
    assert none == [], none
    bad = Stream(srv, tid, last="x1")
    assert bad.status == 400, bad.status
    err = bad.body()
    assert err["code"] == "InvalidParameter", err
    assert "Last-Event-ID" in err["message"], err
    bad.close()


@case
def keep_alive_comments(srv):
    tid = submit(srv, "queue=2s", seed=3)
    s = Stream(srv, tid)
    first = s.next()
    assert first["event"] == "PENDING", first
    while s.buf.count(b": keep-alive\n\n") < 2:  # 300 ms apart, queued
        s._fill()
        assert not s.eof, s.buf
    s.close()


@case
def other_key_and_unknown_are_404(srv):
    tid = submit(srv, "run=0s", seed=4)
    for task, key in ((tid, OTHER_KEY),
                      ("0190d2c4-0000-7000-8000-000000000000", KEY),
                      ("not-a-uuid", KEY)):
        for dialect in ("dashscope", "ttapi"):
            s = Stream(srv, task, dialect=dialect, key=key)
            assert s.status == 404, (task, key, s.status)
            body = s.body()
            assert body["code"] == "NotFound", body
            assert body["request_id"], body
            s.close()
    s = Stream(srv, tid, key="wrong-key")
    assert s.status == 401, s.status
    s.close()
    # The same answers through http.client (recorded for the OpenAPI check).
    r = srv.request("GET", "/api/v1/tasks/%s/events" % tid,
                    headers={"Authorization": "Bearer " + OTHER_KEY})
    assert r.status == 404, r


@case
def ttapi_dialect(srv):
    tid = submit(srv, "run=500ms", dialect="ttapi", seed=5)
    s, events = watch(srv, tid, dialect="ttapi")
    assert events[-1]["event"] == "SUCCEEDED", events
    assert events[-1]["data"]["output"]["task_id"] == tid


@case
def recorded_through_http_client(srv):
    tid = submit(srv, "run=0s", seed=6)
    srv.wait(tid)
    r = srv.request("GET", "/api/v1/tasks/%s/events" % tid,
                    headers={"Authorization": "Bearer " + KEY})
    assert r.status == 200, r
    assert r.headers["content-type"] == "text/event-stream", r
    text = r.body.decode()
    assert text.startswith("id: ") and "\nevent: SUCCEEDED\n" in text, text


@case
def many_streams_and_the_key_bound(srv):
    tid = submit(srv, "queue=3s", seed=7)
    streams = [Stream(srv, tid) for _ in range(40)]
    assert all(s.status == 200 for s in streams)
    over = Stream(srv, tid)
    assert over.status == 429, over.status
    body = over.body()
    assert body["code"] == "Throttling" and "stream" in body["message"], body
    assert over.headers.get("retry-after"), over.headers
    over.close()
    # The other key is not held back by this one's streams.
    other = submit(srv, "run=0s", key=OTHER_KEY, seed=8)
    _, ev = watch(srv, other, key=OTHER_KEY)
    assert ev[-1]["event"] == "SUCCEEDED", ev
    for s in streams:
        kinds = []
        while True:
            e = s.next()
            if e is None:
                break
            kinds.append(e["event"])
        assert kinds[0] == "PENDING" and kinds[-1] == "SUCCEEDED", kinds
        s.close()
    # Closed streams gave their slots back.
    deadline = time.time() + 30
    while True:
        s = Stream(srv, tid)
        if s.status == 200 or time.time() > deadline:
            break
        s.close()
        time.sleep(0.1)
    assert s.status == 200, s.status
    s.close()


@case
def the_process_bound_is_503(_):
    srv = Server(args=["--stream-max", "2", "--workers", "0"]).start()
    try:
        tid = submit(srv, "run=0s", seed=14)
        held = [Stream(srv, tid), Stream(srv, tid)]
        assert [s.status for s in held] == [200, 200]
        for dialect in ("dashscope", "ttapi"):
            over = Stream(srv, tid, dialect=dialect)
            assert over.status == 503, over.status
            body = over.body()
            assert body["code"] == "ServiceUnavailable", body
            assert "--stream-max" in body["message"], body
            assert over.headers.get("retry-after"), over.headers
            over.close()
        for s in held:
            assert s.next()["event"] == "PENDING"
            s.close()
    finally:
        srv.stop()
        srv.cleanup()


@case
def cancel_is_an_event(srv):
    tid = submit(srv, "queue=5s", seed=9)
    s = Stream(srv, tid)
    assert s.next()["event"] == "PENDING"
    r = srv.request("POST", "/api/v1/tasks/%s/cancel" % tid,
                    headers={"Authorization": "Bearer " + KEY})
    assert r.status == 200, r
    e = s.next()
    assert e["event"] == "CANCELED", e
    assert s.next() is None
    s.close()


@case
def queue_positions(_):
    # One render thread, held by a long run: the rest wait in turn order.
    srv = Server(args=["--workers", "1"]).start()
    try:
        first = submit(srv, "run=30s", seed=10)
        srv.wait(first, want=("RUNNING",))
        a = [submit(srv, "run=0s", seed=20 + i) for i in range(3)]
        b = [submit(srv, "run=0s", key=OTHER_KEY, seed=30 + i)
             for i in range(2)]
        got = {}
        for tid, key in [(t, KEY) for t in a] + [(t, OTHER_KEY) for t in b]:
            out = srv.query(tid, key=key).json()["output"]
            assert out["task_status"] == "PENDING", out
            got[tid] = out["queue_position"]
        # Keys take turns; within a key, first come first served.
        assert sorted(got.values()) == [1, 2, 3, 4, 5], got
        assert got[a[0]] < got[a[1]] < got[a[2]], got
        assert got[b[0]] < got[b[1]], got
        turns = sorted(got, key=got.get)
        keys = ["a" if t in a else "b" for t in turns]
        assert keys in (list("ababa"), list("babaa")), keys
        tt = srv.query(a[0], dialect="ttapi").json()["output"]
        assert tt["queue_position"] == got[a[0]], tt
        run = srv.query(first).json()["output"]
        assert run["task_status"] == "RUNNING", run
        assert "queue_position" not in run, run
    finally:
        srv.stop()
        srv.cleanup()


def cli_wait(srv, task_id, *args):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PADDOCK_", "DASHSCOPE_", "TT_"))
           and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env.update(PADDOCK_BASE_URL=srv.base, PADDOCK_API_KEY=KEY)
    return subprocess.run([BIN, "wait", task_id, "--json", *args], env=env,
                          capture_output=True, text=True, timeout=120)


@case
def cli_wait_uses_the_stream(srv):
    tid = submit(srv, "run=2s", seed=11)
    p = cli_wait(srv, tid)
    assert p.returncode == 0, (p.returncode, p.stderr)
    answers = [json.loads(line) for line in p.stdout.splitlines()
               if line.startswith("{")]
    assert answers[-1]["output"]["task_status"] == "SUCCEEDED", p.stdout
    assert any(a["output"].get("progress", 0) > 0 for a in answers), p.stdout
    log = srv.log_wait('path="/api/v1/tasks/%s/events"' % tid)
    assert 'path="/api/v1/tasks/%s/events"' % tid in log
    assert 'path="/api/v1/tasks/%s" ' % tid not in log  # never polled
    # TTAPI's root (/happyhorse) too.
    tid = submit(srv, "run=0s", seed=12)
    p = cli_wait(srv, tid, "--dialect", "ttapi")
    assert p.returncode == 0, (p.returncode, p.stderr)
    log = srv.log_wait('path="/happyhorse/api/v1/tasks/%s/events"' % tid)
    assert 'path="/happyhorse/api/v1/tasks/%s/events"' % tid in log


@case
def cli_wait_polls_without_a_stream(_):
    srv = Server(args=["--stream-max", "0"]).start()
    try:
        tid = submit(srv, "run=1s", seed=13)
        p = cli_wait(srv, tid)
        assert p.returncode == 0, (p.returncode, p.stderr)
        assert '"SUCCEEDED"' in p.stdout.splitlines()[-1], p.stdout
        log = srv.log_wait('path="/api/v1/tasks/%s" ' % tid)
        assert 'path="/api/v1/tasks/%s/events"' % tid in log  # 404, then
        assert 'path="/api/v1/tasks/%s" ' % tid in log  # polls
    finally:
        srv.stop()
        srv.cleanup()


if __name__ == "__main__":
    main(setup, teardown)
