"""Shared helpers of the API tests: start a real paddock on 127.0.0.1, talk
HTTP to it, probe MP4s with ffprobe. Standard library only.

Each test file registers cases with @case and calls main(); every case
prints one line, "PASS api.<file>.<case>" or "FAIL ...", which tests/run.sh
counts. A case fails on any exception, with the traceback and the server's
log.
"""

import base64
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

BIN = os.environ.get("PADDOCK_BIN", "build/asan/paddock")
KEY = "test-key-0123456789"
OTHER_KEY = "test-key-other"
SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"
TT = "/happyhorse"

# ------------------------------------------------------------ recording

# With PADDOCK_RESPONSE_LOG naming a file, every HTTP response a test reads
# from a paddock this process started is appended to it as one JSON line;
# tests/api/check_openapi.py then checks each against docs/openapi.json.
# The hook sits in http.client, so requests made without Server.request
# are recorded too; it only observes (the test reads the body as before).
RESPONSE_LOG = os.environ.get("PADDOCK_RESPONSE_LOG")
_paddock_ports = set()  # ports of the paddock servers started here
_case_name = None  # "api.<file>.<case>" while a case (or setup) runs
_record_lock = threading.Lock()
_RECORD_BODY_MAX = 64 << 10  # request bodies larger than this: length only
_RECORD_HEADER_MAX = 1024  # request header values are cut to this


def _is_text(content_type):
    t = (content_type or "").split(";")[0].strip().lower()
    return t == "application/json" or t.startswith("text/")


def _record(sent, port, resp, data):
    method, target, body, req_headers = sent
    path, _, query = target.partition("?")
    rec = {"case": _case_name, "port": port, "method": method,
           "target": target, "path": path, "query": query,
           "request_headers": {k: str(v)[:_RECORD_HEADER_MAX]
                               for k, v in req_headers.items()},
           "status": resp.status}
    if isinstance(body, str):
        body = body.encode()
    if body is not None and not isinstance(body, bytes):
        rec["request_body_omitted"] = "not bytes (%s)" % type(body).__name__
    elif body is not None and len(body) > _RECORD_BODY_MAX:
        rec["request_body_omitted"] = "%d bytes" % len(body)
    elif body is not None:
        try:
            rec["request_body"] = body.decode()
        except UnicodeDecodeError:
            rec["request_body_omitted"] = "not UTF-8"
    headers = {}
    for k, v in resp.getheaders():
        k = k.lower()
        headers[k] = headers[k] + ", " + v if k in headers else v
    rec["headers"] = headers
    rec["content_type"] = headers.get("content-type")
    rec["body_length"] = len(data)
    if data and not _is_text(rec["content_type"]):
        rec["body_binary"] = True  # a video: its bytes are not recorded
    else:
        try:
            rec["body"] = data.decode()
        except UnicodeDecodeError:
            rec["body_base64"] = base64.b64encode(data).decode()
    line = (json.dumps(rec, ensure_ascii=False) + "\n").encode()
    # One write(2) on an O_APPEND descriptor: tests/run.sh runs test files
    # side by side, and their lines must not interleave.
    with _record_lock:
        fd = os.open(RESPONSE_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                     0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def _install_recorder():
    conn_cls, resp_cls = http.client.HTTPConnection, http.client.HTTPResponse
    request, getresponse, read = (conn_cls.request, conn_cls.getresponse,
                                  resp_cls.read)

    def request_hook(self, method, url, body=None, headers={}, **kw):
        self._paddock_sent = (method, url, body, dict(headers))
        return request(self, method, url, body, headers, **kw)

    def getresponse_hook(self):
        resp = getresponse(self)
        sent = getattr(self, "_paddock_sent", None)
        if sent and self.host == "127.0.0.1" and self.port in _paddock_ports:
            resp._paddock_sent = (sent, self.port)
        return resp

    def read_hook(self, amt=None):
        data = read(self, amt)
        pending = getattr(self, "_paddock_sent", None)
        if pending and amt is None:  # the whole body: record it once
            self._paddock_sent = None
            _record(pending[0], pending[1], self, data)
        return data

    conn_cls.request = request_hook
    conn_cls.getresponse = getresponse_hook
    resp_cls.read = read_hook


if RESPONSE_LOG:
    _install_recorder()

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
                _paddock_ports.add(self.port)
                return self
        raise AssertionError("server did not start: %s\n%s" %
                             ("".join(self.stdout_lines), self.log_text()))

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_wait(self, text, timeout=10):
        """The log once it holds `text`: info lines are written in batches
        (up to LOG_FLUSH_MS, 50 ms, after they were logged)."""
        deadline = time.time() + timeout
        while True:
            log = self.log_text()
            if text in log or time.time() > deadline:
                return log
            time.sleep(0.02)

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
    global _case_name
    _case_name = "api.%s.setup" % name
    state = setup() if setup else None
    _live.clear()  # servers of setup() are shared by every case
    failed = 0
    try:
        # The cases of this file only: a case that imports another test
        # file for its helpers registers that file's cases too.
        for fn in list(_cases):
            if only and fn.__name__ not in only:
                continue
            _case_name = "api.%s.%s" % (name, fn.__name__)
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
            _case_name = "api.%s.teardown" % name
            try:
                teardown(state)
            except Exception:
                failed += 1
                print("FAIL api.%s.teardown" % name, flush=True)
                traceback.print_exc()
    sys.exit(1 if failed else 0)
