"""Shared helpers of the API tests: start a real paddock on 127.0.0.1, talk
HTTP to it, probe MP4s with ffprobe. Standard library only.

Each test file registers cases with @case and calls main(); every case
prints one line, "PASS api.<file>.<case>" or "FAIL ...", which tests/run.sh
counts. A case fails on any exception, with the traceback and the server's
log.
"""

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

BIN = os.environ.get("PADDOCK_BIN", "build/asan/paddock")
KEY = "test-key-0123456789"
OTHER_KEY = "test-key-other"
SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"
TT = "/happyhorse"

_cases = []
_live = []  # servers started and not yet stopped; main() reaps them


def _reap():
    """Kill what a case left running (it failed before its stop): no
    server outlives the case that started it."""
    while _live:
        srv = _live.pop()
        if srv.proc:
            srv.kill()


def case(fn):
    _cases.append(fn)
    return fn


class Server:
    """A paddock serve process on an ephemeral port of 127.0.0.1."""

    def __init__(self, data=None, args=(), keys=(KEY, OTHER_KEY), env=None):
        self.own_data = data is None
        self.data = data or tempfile.mkdtemp(prefix="paddock-api-")
        self.args = list(args)
        self.keys = list(keys)
        self.env = env
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.data, "server.log")
        self.stdout_lines = []

    def start(self, timeout=60):
        cmd = [BIN, "serve", "--listen", "127.0.0.1:0", "--data", self.data]
        for k in self.keys:
            cmd += ["--api-key", k]
        cmd += self.args
        env = dict(os.environ)
        env.pop("PADDOCK_API_KEY", None)
        if self.env:
            env.update(self.env)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                     stderr=self.log, env=env)
        _live.append(self)
        deadline = time.time() + timeout
        while time.time() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                break
            self.stdout_lines.append(line)
            if "listening on http://" in line:
                self.base = line.strip().split("listening on ")[1]
                self.port = int(self.base.rsplit(":", 1)[1])
                return self
        raise AssertionError("server did not start: %s\n%s" %
                             ("".join(self.stdout_lines), self.log_text()))

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, check=True):
        """SIGTERM and wait; a clean exit (no leak report) is required."""
        if not self.proc:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("server did not stop on SIGTERM")
        finally:
            self.proc.stdout.close()
            self.log.close()
            self.proc = None
        if check and rc != 0:
            raise AssertionError("server exited %d:\n%s" %
                                 (rc, self.log_text()[-6000:]))

    def kill(self):
        """SIGKILL: no chance to clean up, as in a crash."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        self.proc = None

    def cleanup(self):
        if self.proc:
            self.kill()
        if self.own_data:
            shutil.rmtree(self.data, ignore_errors=True)

    # ------------------------------------------------------------ HTTP

    def request(self, method, path, body=None, headers=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return Response(resp.status, resp.getheaders(), data)

    def submit(self, body, dialect="dashscope", key=KEY, headers=None):
        h = {"Content-Type": "application/json"}
        if dialect == "dashscope":
            h["Authorization"] = "Bearer " + key
            h["X-DashScope-Async"] = "enable"
            path = SUBMIT
        else:
            h["TT-API-KEY"] = key
            path = TT + SUBMIT
        h.update(headers or {})
        return self.request("POST", path, body, h)

    def query(self, task_id, dialect="dashscope", key=KEY):
        if dialect == "dashscope":
            return self.request("GET", "/api/v1/tasks/" + task_id,
                                headers={"Authorization": "Bearer " + key})
        return self.request("GET", TT + "/api/v1/tasks/" + task_id,
                            headers={"TT-API-KEY": key})

    def wait(self, task_id, want=("SUCCEEDED", "FAILED", "CANCELED"),
             timeout=120, dialect="dashscope", key=KEY):
        deadline = time.time() + timeout
        while True:
            r = self.query(task_id, dialect, key)
            assert r.status == 200, r
            status = r.json()["output"]["task_status"]
            if status in want:
                return r.json()
            if time.time() > deadline:
                raise AssertionError("task %s still %s after %ds" %
                                     (task_id, status, timeout))
            time.sleep(0.1)

    def get_url(self, url, headers=None, method="GET"):
        u = urllib.parse.urlsplit(url)
        path = u.path + ("?" + u.query if u.query else "")
        return self.request(method, path, headers=headers)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "HTTP %d %s %r" % (self.status, self.headers,
                                  self.body[:600])


def t2v(prompt="a horse running on a beach", **params):
    body = {"model": "happyhorse-1.0-t2v", "input": {"prompt": prompt}}
    params.setdefault("resolution", "480P")
    params.setdefault("duration", 3)
    body["parameters"] = params
    return body


def ffprobe(path):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format",
         "-count_frames", "-of", "json", path],
        check=True, capture_output=True).stdout
    info = json.loads(out)
    video = [s for s in info["streams"] if s["codec_type"] == "video"][0]
    return info, video


def main(setup=None, teardown=None):
    """Run every registered case; exit 1 if any failed."""
    name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    name = name[5:] if name.startswith("test_") else name
    only = set(sys.argv[1:])
    state = setup() if setup else None
    _live.clear()  # servers of setup() are shared by every case
    failed = 0
    try:
        for fn in _cases:
            if only and fn.__name__ not in only:
                continue
            try:
                try:
                    fn(state) if setup else fn()
                finally:
                    _reap()  # what this case started (setup's live on)
                print("PASS api.%s.%s" % (name, fn.__name__), flush=True)
            except Exception:
                failed += 1
                print("FAIL api.%s.%s" % (name, fn.__name__), flush=True)
                traceback.print_exc()
                if isinstance(state, Server):
                    sys.stderr.write(state.log_text()[-4000:])
    finally:
        if teardown:
            try:
                teardown(state)
            except Exception:
                failed += 1
                print("FAIL api.%s.teardown" % name, flush=True)
                traceback.print_exc()
    sys.exit(1 if failed else 0)
