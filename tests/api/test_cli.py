"""The `paddock` CLI (submit, get, wait, cancel, list, download) over real
HTTP on 127.0.0.1: end to end in both dialects against a live paddock, the
documented exit codes (0 done, 1 task failed, 2 usage, 3 HTTP, 4 not
finished, 130 interrupted), --json lines, local images sent as data: URLs,
the live status line on a terminal, and Retry-After against a scripted
fake endpoint."""

import http.server
import json
import os
import pty
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time

from lib import BIN, KEY, Server, case, ffprobe, main

FAST = ["--resolution", "480P", "--duration", "3"]


class State:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="paddock-cli-")
        self.srv = Server().start()
        # No workers: tasks stay PENDING (cancel, --timeout, download).
        self.idle = Server(args=["--workers", "0"]).start()


def setup():
    return State()


def teardown(st):
    for s in (st.srv, st.idle):
        s.stop()
        s.cleanup()
    shutil.rmtree(st.tmp, ignore_errors=True)


def cli_env(srv=None, key=KEY, base=None):
    env = dict(os.environ)
    for k in ("PADDOCK_API_KEY", "DASHSCOPE_API_KEY", "TT_API_KEY",
              "PADDOCK_BASE_URL", "http_proxy", "https_proxy", "HTTP_PROXY",
              "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    env["PADDOCK_BASE_URL"] = base or srv.base
    if key is not None:
        env["PADDOCK_API_KEY"] = key
    return env


def cli(srv, *args, key=KEY, base=None, timeout=90, env_extra=None):
    env = cli_env(srv, key, base)
    env.update(env_extra or {})
    return subprocess.run([BIN, *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def ok(p):
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    return p


def rc(p, want, *fragments):
    assert p.returncode == want, (want, p.returncode, p.stdout, p.stderr)
    for f in fragments:
        assert f in p.stderr, (f, p.stderr)
    return p


def check_mp4(path, w, h, seconds=3):
    info, video = ffprobe(path)
    assert video["codec_name"] == "h264", video
    assert (video["width"], video["height"]) == (w, h), video
    assert abs(float(info["format"]["duration"]) - seconds) < 0.2, info


def no_temp_files(d):
    left = [f for f in os.listdir(d) if f.startswith(".")]
    assert not left, left


# ------------------------------------------------------------ end to end


def submit_wait_download(st, dialect):
    srv = st.srv
    d = tempfile.mkdtemp(dir=st.tmp)
    sub = ok(cli(srv, "submit", "--dialect", dialect, "--prompt",
                 "a horse on a beach", *FAST))
    task_id = sub.stdout.strip()
    assert len(task_id) == 36, sub.stdout
    w = ok(cli(srv, "wait", task_id, "--dialect", dialect))
    url = w.stdout.strip()
    assert url.startswith(srv.base + "/files/"), w.stdout
    out = os.path.join(d, "v.mp4")
    dl = ok(cli(srv, "download", task_id, "--dialect", dialect, "-o", out))
    assert "wrote " + out in dl.stderr, dl.stderr
    check_mp4(out, 832, 480)
    no_temp_files(d)
    g = ok(cli(srv, "get", task_id, "--dialect", dialect))
    assert "SUCCEEDED" in g.stdout and "usage.SR" in g.stdout, g.stdout
    return task_id


@case
def e2e_dashscope(st):
    task_id = submit_wait_download(st, "dashscope")
    log = st.srv.log_wait('path="/api/v1/tasks/%s"' % task_id)
    assert 'path="/api/v1/tasks/%s"' % task_id in log


@case
def e2e_ttapi(st):
    task_id = submit_wait_download(st, "ttapi")
    log = st.srv.log_wait('path="/happyhorse/api/v1/tasks/%s"' % task_id)
    # Every call went to the TTAPI routes with TT-API-KEY.
    assert ('path="/happyhorse/api/v1/services/aigc/video-generation/'
            'video-synthesis"') in log
    assert 'path="/happyhorse/api/v1/tasks/%s"' % task_id in log


@case
def submit_wait_output_one_command(st):
    d = tempfile.mkdtemp(dir=st.tmp)
    out = os.path.join(d, "out.mp4")
    p = ok(cli(st.srv, "submit", "--model", "t2v", "--prompt", "a horse",
               "--ratio", "9:16", "--seed", "42", *FAST, "--wait", "-o",
               out))
    assert len(p.stdout.strip()) == 36, p.stdout  # the task id
    check_mp4(out, 480, 832)
    no_temp_files(d)
    # -o - writes the video to stdout instead.
    q = subprocess.run([BIN, "download", p.stdout.strip(), "-o", "-"],
                       env=cli_env(st.srv), capture_output=True, timeout=60)
    assert q.returncode == 0, q.stderr
    with open(out, "rb") as f:
        assert f.read() == q.stdout


@case
def local_png_as_data_url(st):
    d = tempfile.mkdtemp(dir=st.tmp)
    png = os.path.join(d, "first frame.png")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=720x1280", "-frames:v", "1", png],
                   check=True)
    out = os.path.join(d, "i2v.mp4")
    p = ok(cli(st.srv, "submit", "--model", "happyhorse-1.0-i2v", "--image",
               png, *FAST, "--wait", "-o", out))
    task_id = p.stdout.strip()
    # The server refuses loopback URLs (no --fetch-allow): success means
    # the image came inline. The stored spec shows the data: URL, and the
    # output took the image's 9:16 shape.
    check_mp4(out, 480, 832)
    db = sqlite3.connect(os.path.join(st.srv.data, "paddock.db"))
    try:
        spec, = db.execute("SELECT spec FROM tasks WHERE task_id = ?",
                           (task_id,)).fetchone()
    finally:
        db.close()
    media = json.loads(spec)["media"]
    assert media[0]["type"] == "first_frame", media
    assert media[0]["url"].startswith("data:image/png;base64,iVBORw0KGgo")
    # A file that is not an image is refused before anything is sent.
    txt = os.path.join(d, "notes.png")
    with open(txt, "w") as f:
        f.write("not a picture")
    rc(cli(st.srv, "submit", "--image", txt), 2, "--image", "not a JPEG")


# ------------------------------------------------------------ exit codes


@case
def wrong_key_is_3(st):
    p = rc(cli(st.srv, "get", "0190f0a2-7c1e-7d3a-9a51-3f2b8c1d4e5f",
               key="wrong-key"), 3, "HTTP 401 InvalidApiKey",
           "Invalid API-key provided.")
    p = rc(cli(st.srv, "submit", "--prompt", "x", "--dialect", "ttapi",
               key="wrong-key"), 3, "HTTP 401",
           "Wrong TT-API-KEY or email is not activated.")
    assert p.stdout == "", p.stdout


@case
def usage_errors_are_2(st):
    cases = [
        (["submit", "--bogus"], "unknown option --bogus"),
        (["submit", "--prompt", "x", "--duration", "20"], "--duration"),
        (["submit", "--prompt", "x", "--resolution", "4K"], "--resolution"),
        (["submit", "--model", "i2v"], "--image is required"),
        (["submit", "--model", "edit", "--prompt", "x", "--video",
          "clip.mp4"], "--video clip.mp4: No such file"),
        (["submit", "-o", "x.mp4", "--prompt", "x"], "-o needs --wait"),
        (["wait"], "TASK_ID is missing"),
        (["wait", "abc", "--timeout", "soon"], "--timeout"),
        (["get", "abc", "--prompt", "x"], "does not apply to paddock get"),
        (["get", "abc", "--dialect", "openai"], "--dialect"),
        (["list", "--page-size", "500"], "--page-size"),
        (["download", "abc", "-o", "/nonexistent/dir/x.mp4"],
         "does not exist"),
    ]
    for args, fragment in cases:
        p = rc(cli(st.srv, *args), 2, fragment)
        assert "Try 'paddock help" in p.stderr, p.stderr
    # No key anywhere.
    rc(cli(st.srv, "get", "abc", key=None), 2, "no API key")
    # A bad base URL.
    rc(cli(st.srv, "get", "abc", base="ftp://x"), 2, "$PADDOCK_BASE_URL")


@case
def failed_task_is_1(st):
    # Loopback without --fetch-allow: the task FAILS with InvalidURL.
    p = rc(cli(st.srv, "submit", "--model", "i2v", "--image",
               "http://127.0.0.1:9/missing.png", *FAST, "--wait", "-o",
               os.path.join(st.tmp, "never.mp4")),
           1, "FAILED", "InvalidURL", "loopback")
    assert not os.path.exists(os.path.join(st.tmp, "never.mp4"))
    task_id = p.stdout.strip()
    rc(cli(st.srv, "get", task_id), 1)
    rc(cli(st.srv, "download", task_id, "-o",
           os.path.join(st.tmp, "x.mp4")), 1, "InvalidURL")


@case
def network_error_is_3(st):
    p = rc(cli(st.srv, "get", "abc", base="http://127.0.0.1:1"), 3)
    assert "127.0.0.1 port 1" in p.stderr, p.stderr


# ------------------------------------------------------------ --json


@case
def json_output_parses(st):
    srv = st.srv
    sub = ok(cli(srv, "submit", "--json", "--prompt", "json please", *FAST))
    lines = sub.stdout.splitlines()
    assert len(lines) == 1, sub.stdout
    task_id = json.loads(lines[0])["output"]["task_id"]
    w = ok(cli(srv, "wait", task_id, "--json"))
    docs = [json.loads(line) for line in w.stdout.splitlines()]
    assert docs and docs[-1]["output"]["task_status"] == "SUCCEEDED", docs
    assert docs[-1]["output"]["video_url"].startswith("http://")
    for cmd in (["get", task_id], ["list", "--page-size", "100"]):
        p = ok(cli(srv, *cmd, "--json"))
        assert len(p.stdout.splitlines()) == 1, p.stdout
        json.loads(p.stdout)
    listed = json.loads(ok(cli(srv, "list", "--json")).stdout)
    assert any(t["task_id"] == task_id for t in listed["data"]), listed
    # submit --wait --json: the submit answer, then the polls.
    p = ok(cli(srv, "submit", "--json", "--prompt", "x", *FAST, "--wait"))
    docs = [json.loads(line) for line in p.stdout.splitlines()]
    assert docs[0]["output"]["task_status"] == "PENDING", docs
    assert docs[-1]["output"]["task_status"] == "SUCCEEDED", docs
    # An error answer is JSON too, with exit 3.
    p = rc(cli(srv, "get", task_id, "--json", key="nope"), 3)
    assert json.loads(p.stdout)["code"] == "InvalidApiKey", p.stdout


# ------------------------------------------------------------ terminal


@case
def tty_status_line(st):
    srv = st.srv
    task_id = ok(cli(srv, "submit", "--prompt", "slow", "--resolution",
                     "720P", "--duration", "8")).stdout.strip()
    env = cli_env(srv)
    # util-linux script(1) runs the command on a pseudo-terminal.
    p = subprocess.run(["script", "-q", "-e", "-c",
                        "%s wait %s" % (BIN, task_id), "/dev/null"],
                       env=env, capture_output=True, timeout=90)
    assert p.returncode == 0, p
    out = p.stdout.decode(errors="replace")
    assert "\r" + task_id in out, out
    assert "elapsed" in out, out
    assert "SUCCEEDED" in out, out
    assert "0:0" in out, out  # m:ss
    # Not on a terminal: no carriage returns, just the changes.
    p = ok(cli(srv, "wait", task_id))
    assert "\r" not in p.stderr, p.stderr


class Fake(http.server.BaseHTTPRequestHandler):
    """A scripted HappyHorse endpoint: 429 with Retry-After, then RUNNING
    with progress, then SUCCEEDED with a video on this same server."""

    hits = []
    video = b""
    streams = 0  # status stream requests (answered 404)

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.endswith("/events"):  # no status stream, as DashScope
            Fake.streams += 1
            return self.reply(404, {"code": "NotFound", "message": "no"})
        n = len([h for h in Fake.hits if h[1].startswith("/api/")])
        Fake.hits.append((time.time(), self.path, dict(self.headers)))
        port = self.server.server_address[1]
        if self.path == "/v.mp4":
            if Fake.video is None:
                return self.reply(404, b"no such file")
            return self.reply(200, Fake.video)
        out = {"task_id": "t-1", "task_status": "RUNNING"}
        if n == 0:
            return self.reply(429, {"request_id": "r0",
                                    "code": "Throttling.RateQuota",
                                    "message": "slow down"},
                              [("Retry-After", "2")])
        if n == 1:
            out["progress"] = 40
        else:
            out["task_status"] = "SUCCEEDED"
            out["video_url"] = "http://127.0.0.1:%d/v.mp4" % port
        self.reply(200, {"request_id": "r%d" % n, "output": out})


def run_on_pty(args, env, timeout=60):
    """Run with stderr on a pseudo-terminal; (rc, stdout, terminal)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=slave,
                         stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []

    def reader():
        while True:
            try:
                d = os.read(master, 4096)
            except OSError:
                return
            if not d:
                return
            chunks.append(d)

    t = threading.Thread(target=reader)
    t.start()
    out = p.stdout.read()
    p.wait(timeout)
    t.join(10)
    os.close(master)
    return p.returncode, out, b"".join(chunks).decode(errors="replace")


@case
def retry_after_and_progress(st):
    fake = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Fake)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    try:
        Fake.hits = []
        Fake.streams = 0
        Fake.video = b"\0\0\0\x18ftypmp42" + os.urandom(200000)
        base = "http://127.0.0.1:%d" % fake.server_address[1]
        out = os.path.join(st.tmp, "fake.mp4")
        env = cli_env(base=base, key="fake-key")
        code, stdout, term = run_on_pty(
            [BIN, "wait", "t-1", "-o", out, "--timeout", "1m"], env)
        assert code == 0, (code, stdout, term)
        polls = [h for h in Fake.hits if h[1].startswith("/api/")]
        assert [h[1] for h in polls] == ["/api/v1/tasks/t-1"] * 3, polls
        assert Fake.streams == 1  # asked for the stream first, then polled
        # Retry-After: 2 was honoured.
        assert polls[1][0] - polls[0][0] >= 1.9, polls
        assert "HTTP 429; polling again in 2 s" in term, term
        assert "RUNNING" in term and "40%" in term, term
        assert "elapsed" in term, term
        for _, path, headers in polls:
            assert headers.get("Authorization") == "Bearer fake-key"
        # The download carries no key.
        dl = [h for h in Fake.hits if h[1] == "/v.mp4"]
        assert len(dl) == 1 and "Authorization" not in dl[0][2], dl
        with open(out, "rb") as f:
            assert f.read() == Fake.video
        # The link answers 404: exit 3, and no file, not even a temp one.
        Fake.hits = [(0, "/api/429", {}), (0, "/api/40%", {})]
        Fake.video = None
        os.unlink(out)
        p = rc(cli(None, "download", "t-1", "-o", out, base=base,
                   key="fake-key"), 3, "HTTP 404 downloading", "/v.mp4",
               "no such file")
        assert not os.path.exists(out)
        no_temp_files(st.tmp)
    finally:
        fake.shutdown()
        fake.server_close()


# ------------------------------------------------------ cancel and list


@case
def cancel_pending_then_list(st):
    srv = st.idle
    task_id = ok(cli(srv, "submit", "--prompt", "never runs",
                     *FAST)).stdout.strip()
    p = ok(cli(srv, "cancel", task_id))
    assert task_id in p.stdout, p.stdout
    p = ok(cli(srv, "list", "--status", "canceled"))
    rows = [line for line in p.stdout.splitlines()
            if line.startswith(task_id)]
    assert len(rows) == 1 and "CANCELED" in rows[0], p.stdout
    assert "happyhorse-1.0-t2v" in rows[0], rows
    assert p.stdout.startswith("TASK_ID"), p.stdout
    # Canceling again: the server's 400, exit 3.
    rc(cli(srv, "cancel", task_id), 3, "HTTP 400 UnsupportedOperation")
    rc(cli(srv, "wait", task_id), 1, "CANCELED")
    rc(cli(srv, "cancel", "0190f0a2-7c1e-7d3a-9a51-3f2b8c1d4e5f"), 3,
       "HTTP 404 NotFound")


@case
def timeout_and_unfinished_are_4(st):
    srv = st.idle
    task_id = ok(cli(srv, "submit", "--prompt", "pending",
                     *FAST)).stdout.strip()
    t0 = time.time()
    rc(cli(srv, "wait", task_id, "--timeout", "2s"), 4, "gave up after",
       "PENDING")
    assert 1.5 < time.time() - t0 < 15
    rc(cli(srv, "download", task_id, "-o", os.path.join(st.tmp, "p.mp4")),
       4, "PENDING", "paddock wait")
    assert not os.path.exists(os.path.join(st.tmp, "p.mp4"))


@case
def interrupt_is_130(st):
    srv = st.idle
    task_id = ok(cli(srv, "submit", "--prompt", "pending",
                     *FAST)).stdout.strip()
    p = subprocess.Popen([BIN, "wait", task_id], env=cli_env(srv),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 130, (p.returncode, out, err)
    assert "interrupted" in err, err


@case
def help_pages(st):
    for cmd in ("submit", "get", "wait", "cancel", "list", "download"):
        a = ok(cli(st.srv, "help", cmd))
        b = ok(cli(st.srv, cmd, "--help"))
        assert a.stdout == b.stdout, cmd
        for part in ("SYNOPSIS", "OPTIONS", "ENVIRONMENT", "EXIT STATUS",
                     "EXAMPLES", "PADDOCK_API_KEY"):
            assert part in a.stdout, (cmd, part)
    top = ok(cli(st.srv, "help")).stdout
    assert "submit" in top and "download" in top, top


if __name__ == "__main__":
    main(setup, teardown)
