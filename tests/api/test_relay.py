"""The upstream engine (docs/engines.md, "The upstream engine"): a paddock
relaying to a second paddock on 127.0.0.1 (the sandbox engine upstream).
End to end on both dialects, resuming after a SIGKILL without a second
upstream submit, the upstream's refusals (key, throttling, a FAILED code)
and an upstream that is not there. Real servers, real processes; states
are polled for, never timed."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import lib
from lib import BIN, KEY, TT, Server, case, main, t2v

# The key the relay holds for the upstream (the upstream knows no other),
# so the upstream's list for it shows exactly the relay's submits.
UP_KEY = "relay-upstream-key-0123456789"
DIR = tempfile.mkdtemp(prefix="paddock-relay-")


def upstream(*args, data=None):
    return Server(data=data, keys=(UP_KEY,), args=list(args)).start()


def spec(up_port, dialect="dashscope", key=UP_KEY, more=""):
    return ("upstream:%s http://127.0.0.1:%d key=%s poll=100ms "
            "poll-max=300ms %s" % (dialect, up_port, key, more)).strip()


def relay(up_port, *args, data=None, **kw):
    return Server(data=data, args=["--engine", spec(up_port, **kw),
                                   *args]).start()


class Worker:
    """A `paddock worker` process on a data directory (sqlite store),
    reaped by lib.main like a server when a case fails."""

    def __init__(self, data, *args):
        self.data = data
        self.args = list(args)
        self.proc = None
        self.log_path = os.path.join(data, "worker.log")

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [BIN, "worker", "--data", self.data, "--workers", "1",
             *self.args], stdout=self.log, stderr=self.log)
        lib._live.append(self)
        return self

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if not self.proc:
            return
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=60)
        self.proc = None
        self.log.close()
        assert rc == 0, "worker exited %d:\n%s" % (rc, self.log_text()[-4000:])

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None
        self.log.close()


def closed_port():
    """A port bound on 127.0.0.1 that never listens: connecting to it is
    refused, and no other process can take it while `s` is open."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def upstream_list(up, dialect="dashscope"):
    if dialect == "dashscope":
        r = up.request("GET", "/api/v1/tasks?page_size=100",
                       headers={"Authorization": "Bearer " + UP_KEY})
    else:
        r = up.request("GET", TT + "/api/v1/tasks?page_size=100",
                       headers={"TT-API-KEY": UP_KEY})
    assert r.status == 200, r
    return r.json()


def until(what, fn, timeout=120):
    """Poll fn() until it returns something true; that value."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("still not %s after %ds" % (what, timeout))
        time.sleep(0.1)


def submitted(srv, body):
    r = srv.submit(body)
    assert r.status == 200, r
    return r.json()["output"]["task_id"]


def failed(out, code, *fragments):
    assert out["task_status"] == "FAILED", out
    assert out["code"] == code, out
    for f in fragments:
        assert f in out["message"], (f, out)


def stop_all(*procs):
    """Stop those still running, then remove the servers' data."""
    procs = [p for p in procs if p is not None]
    for p in procs:
        if p.proc:
            p.stop()
    for p in procs:
        if hasattr(p, "cleanup"):
            p.cleanup()


def relays_and_serves_the_same_bytes(dialect):
    up = upstream("--workers", "1")
    rl = None
    try:
        rl = relay(up.port, "--workers", "1", dialect=dialect)
        up_hostport = "127.0.0.1:%d" % up.port
        answers = []  # every body the relay answered
        r = rl.submit(t2v(prompt="relayed horse", ratio="1:1", seed=11),
                      dialect=dialect)
        assert r.status == 200, r
        answers.append(r.body)
        tid = r.json()["output"]["task_id"]

        def done():
            q = rl.query(tid, dialect)
            answers.append(q.body)
            st = q.json()["output"]["task_status"]
            return q.json() if st in ("SUCCEEDED", "FAILED") else None
        body = until("finished", done)
        assert body["output"]["task_status"] == "SUCCEEDED", body
        url = body["output"]["video_url"]
        assert url.startswith("http://127.0.0.1:%d/" % rl.port), url
        mine = rl.get_url(url)
        assert mine.status == 200, mine

        # The upstream's one task for the relay's key, and its video.
        listed = upstream_list(up, dialect)
        assert listed["total"] == 1, listed
        up_tid = listed["data"][0]["task_id"]
        assert up_tid != tid
        ub = up.query(up_tid, dialect, key=UP_KEY).json()
        assert ub["output"]["task_status"] == "SUCCEEDED", ub
        assert ub["output"]["orig_prompt"] == "relayed horse", ub
        theirs = up.get_url(ub["output"]["video_url"])
        assert theirs.status == 200, theirs
        assert mine.body == theirs.body, "the relay's MP4 differs"
        # Billed as the upstream billed it.
        assert body["usage"] == ub["usage"], (body, ub)

        other = "dashscope" if dialect == "ttapi" else "ttapi"
        answers.append(rl.query(tid, other).body)
        answers.append(rl.request(
            "GET", "/api/v1/tasks",
            headers={"Authorization": "Bearer " + KEY}).body)
        for a in answers:
            assert up_hostport.encode() not in a, a
        assert "upstream submit" in rl.log_wait("upstream submit")
    finally:
        stop_all(rl, up)


@case
def relay_end_to_end_dashscope():
    relays_and_serves_the_same_bytes("dashscope")


@case
def relay_end_to_end_ttapi():
    relays_and_serves_the_same_bytes("ttapi")


@case
def resume_after_kill_submits_once():
    """The relay dies (SIGKILL) while its task waits upstream; the rescued
    task resumes the saved upstream task instead of submitting again."""
    up_data = tempfile.mkdtemp(prefix="paddock-up-", dir=DIR)
    rl_data = tempfile.mkdtemp(prefix="paddock-rl-", dir=DIR)
    up = upstream("--workers", "0", data=up_data)  # its tasks stay PENDING
    rl = worker = None
    try:
        rl = relay(up.port, "--workers", "1", "--lease", "2s", data=rl_data)
        tid = submitted(rl, t2v(prompt="survives a crash"))
        until("submitted upstream", lambda: upstream_list(up)["total"] == 1)
        # The upstream id is saved (the next attempt will find it).
        until("ref saved",
              lambda: "engine reference saved" in rl.log_text())
        rl.kill()
        before = rl.log_text().count("upstream resume")
        rl = relay(up.port, "--workers", "1", "--lease", "2s", data=rl_data)
        until("resumed", lambda: rl.log_text().count("upstream resume") >
              before)
        worker = Worker(up_data).start()  # the upstream renders now
        body = rl.wait(tid, timeout=120)
        assert body["output"]["task_status"] == "SUCCEEDED", body
        listed = upstream_list(up)
        assert listed["total"] == 1, listed  # exactly one submit
        assert listed["data"][0]["status"] == "SUCCEEDED", listed
    finally:
        stop_all(worker, rl, up)


@case
def wrong_upstream_key():
    """A relay whose key the upstream refuses is down (503) for clients;
    a task that reaches a worker with that key fails on the key."""
    up = upstream("--workers", "1")
    bad_key = "WRONG-UPSTREAM-KEY-77"
    rl = api = worker = None
    try:
        rl = relay(up.port, "--workers", "1", key=bad_key)
        r = rl.submit(t2v())
        assert r.status == 503, r
        assert r.json()["code"] == "ModelUnavailable", r
        assert "key" in r.json()["message"], r
        assert bad_key not in r.body.decode(), r
        assert "127.0.0.1:%d" % up.port not in r.body.decode(), r
        rl.stop()
        rl.cleanup()
        rl = None

        # An API node that takes tasks (its engine passes its check), and
        # a worker that holds the wrong key.
        data = tempfile.mkdtemp(prefix="paddock-rl-", dir=DIR)
        api = relay(up.port, "--workers", "0", data=data)
        worker = Worker(data, "--engine", spec(up.port, key=bad_key)).start()
        out = api.wait(submitted(api, t2v()), timeout=120)["output"]
        failed(out, "InternalError.Algo", "refused paddock's key",
               "HTTP 401")
        assert bad_key not in out["message"], out
        assert "127.0.0.1:%d" % up.port not in out["message"], out
        assert upstream_list(up)["total"] == 0
        assert bad_key not in worker.log_text()
    finally:
        stop_all(worker, api, rl, up)


@case
def upstream_throttles_then_accepts():
    """The upstream takes one unfinished task per key: the relay's second
    submit is answered 429 until the first is done, and both succeed."""
    up_data = tempfile.mkdtemp(prefix="paddock-up-", dir=DIR)
    up = upstream("--workers", "0", "--max-active", "1", data=up_data)
    rl = worker = None
    try:
        rl = relay(up.port, "--workers", "2")
        a = submitted(rl, t2v(prompt="first"))
        b = submitted(rl, t2v(prompt="second"))
        until("throttled", lambda: "status=429" in rl.log_text())
        assert upstream_list(up)["total"] == 1
        worker = Worker(up_data).start()
        for tid in (a, b):
            body = rl.wait(tid, timeout=180)
            assert body["output"]["task_status"] == "SUCCEEDED", body
        assert upstream_list(up)["total"] == 2
    finally:
        stop_all(worker, rl, up)


@case
def upstream_failure_code_passed_through():
    """The upstream cannot fetch the image (loopback is refused there):
    its code and message become the relay's task's, exactly."""
    up = upstream("--workers", "1")
    rl = None
    try:
        rl = relay(up.port, "--workers", "1")
        body = {"model": "happyhorse-1.0-i2v",
                "input": {"prompt": "from a picture", "media": [
                    {"type": "first_frame",
                     "url": "http://127.0.0.1:1/x.png"}]},
                "parameters": {"resolution": "480P", "duration": 3}}
        out = rl.wait(submitted(rl, body), timeout=120)["output"]
        assert out["task_status"] == "FAILED", out
        listed = upstream_list(up)
        assert listed["total"] == 1, listed
        theirs = up.query(listed["data"][0]["task_id"],
                          key=UP_KEY).json()["output"]
        assert theirs["task_status"] == "FAILED", theirs
        assert theirs["code"] in ("InvalidURL",
                                  "BadRequest.InputDownloadFailed"), theirs
        assert out["code"] == theirs["code"], (out, theirs)
        assert out["message"] == theirs["message"], (out, theirs)
    finally:
        stop_all(rl, up)


@case
def upstream_unreachable():
    """Nothing listens at the upstream's address: the relay is down (503)
    for clients, and a task that reaches a worker fails 'unreachable'
    after the submit retries (1+2+4+8+16 x poll=50ms)."""
    sock, port = closed_port()
    rl = api = worker = None
    up = upstream("--workers", "1")  # a live one, for the API node only
    try:
        rl = relay(port, "--workers", "1")
        r = rl.submit(t2v())
        assert r.status == 503, r
        assert r.json()["code"] == "ModelUnavailable", r
        assert "unreachable" in r.json()["message"], r
        rl.stop()
        rl.cleanup()
        rl = None

        data = tempfile.mkdtemp(prefix="paddock-rl-", dir=DIR)
        api = relay(up.port, "--workers", "0", data=data)
        unreachable = ("upstream:dashscope http://127.0.0.1:%d key=%s "
                       "poll=50ms poll-max=100ms" % (port, UP_KEY))
        worker = Worker(data, "--engine", unreachable).start()
        out = api.wait(submitted(api, t2v()), timeout=120)["output"]
        failed(out, "InternalError.Algo", "unreachable")
        # Clients read task messages: the upstream's address stays out.
        assert "127.0.0.1:%d" % port not in out["message"], out
        assert worker.log_text().count("upstream submit retried") == 5
    finally:
        stop_all(worker, api, rl, up)
        sock.close()


@case
def bad_upstream_specs_refused_at_start():
    env = dict(os.environ)
    env.pop("PADDOCK_UNSET_KEY_VAR", None)
    for s, says in (
            ("upstream:dashscope", "DIALECT BASE_URL"),
            ("upstream:grpc http://127.0.0.1:1 key=k", "dashscope or ttapi"),
            ("upstream:dashscope http://127.0.0.1:1", "key"),
            ("upstream:ttapi http://127.0.0.1:1 key-env=PADDOCK_UNSET_KEY_VAR",
             "PADDOCK_UNSET_KEY_VAR"),
            ("upstream:dashscope http://127.0.0.1:1 key=k poll=often",
             "poll=DURATION"),
            ("upstream:dashscope http://127.0.0.1:1 key=k rate=-1", "rate=N"),
            ("upstream:dashscope http://127.0.0.1:1 key=k kee=SECRET",
             "kee")):
        p = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0",
                            "--data", DIR, "--engine", s],
                           capture_output=True, text=True, timeout=30,
                           env=env)
        assert p.returncode != 0, (s, p)
        assert says in p.stderr, (s, p.stderr)
        assert "SECRET" not in p.stderr, (s, p.stderr)


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(DIR, ignore_errors=True)
