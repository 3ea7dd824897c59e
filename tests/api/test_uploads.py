"""paddock's upload extension (docs/extensions.md, "Uploads") over real
HTTP on 127.0.0.1: POST /api/v1/uploads in both dialects, the file on disk,
paddock-upload:// URLs in a submit (video-edit and images, input.media and
the aliases), what is refused at submit (another key's upload, an unknown
id, bad syntax, an engine that passes URLs on), the body limit, the
per-key cap, expiry (the sweep and the submit check), a task whose upload
vanished before it ran or whose model moved to a relay meanwhile (the
worker's checks), and `paddock submit --video FILE` end to end
against paddock and refused by an endpoint that is not paddock. The
fixtures are made here with the ffmpeg CLI."""

import datetime
import glob
import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid

from lib import (BIN, KEY, OTHER_KEY, TT, Server, case, ffprobe, main,
                 t2v)

UPLOADS = "/api/v1/uploads"
FIX = {}
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def make_fixtures(d):
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-f",
           "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "4",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           "-c:a", "aac", os.path.join(d, "clip.mp4"))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1280x720", "-frames:v", "1",
           os.path.join(d, "wide.png"))
    with open(os.path.join(d, "notes.mp4"), "w") as f:
        f.write("this is not a video\n" * 100)


def fixture(name):
    with open(os.path.join(FIX["dir"], name), "rb") as f:
        return f.read()


def setup():
    d = tempfile.mkdtemp(prefix="paddock-uploads-")
    make_fixtures(d)
    FIX["dir"] = d
    return Server(args=["--workers", "2"]).start()


def teardown(srv):
    srv.stop()
    srv.cleanup()
    shutil.rmtree(FIX["dir"], ignore_errors=True)


# ------------------------------------------------------------ helpers

def upload(srv, data, key=KEY, dialect="dashscope",
           ctype="application/octet-stream"):
    h = {"Content-Type": ctype}
    if dialect == "dashscope":
        h["Authorization"] = "Bearer " + key
        path = UPLOADS
    else:
        h["TT-API-KEY"] = key
        path = TT + UPLOADS
    return srv.request("POST", path, data, h)


def uploaded(srv, data, **kw):
    """Upload and check the answer; the output object."""
    r = upload(srv, data, **kw)
    assert r.status == 200, r
    assert r.headers["content-type"].startswith("application/json"), r
    body = r.json()
    assert uuid.UUID(body["request_id"]), body
    out = body["output"]
    assert str(uuid.UUID(out["upload_id"])) == out["upload_id"], out
    assert out["url"] == "paddock-upload://" + out["upload_id"], out
    assert out["size"] == len(data), out
    assert TIME_RE.match(out["expires_time"]), out
    return out


def on_disk(srv, upload_id):
    """The upload's files under DATA/uploads/<key dir>/."""
    return glob.glob(os.path.join(srv.data, "uploads", "*", upload_id))


def edit(video_url, **params):
    params.setdefault("resolution", "480P")
    return {"model": "happyhorse-1.0-video-edit",
            "input": {"prompt": "make it snow",
                      "media": [{"type": "video", "url": video_url}]},
            "parameters": params}


def run(srv, body, key=KEY, timeout=180):
    r = srv.submit(body, key=key)
    assert r.status == 200, r
    return srv.wait(r.json()["output"]["task_id"], key=key, timeout=timeout)


def refused(r, *fragments, status=400, code="InvalidParameter"):
    assert r.status == status, r
    body = r.json()
    assert body["code"] == code, body
    for f in fragments:
        assert f in body["message"], (f, body)
    return body


def check_output(srv, out, w, h, seconds):
    assert out["output"]["task_status"] == "SUCCEEDED", out
    r = srv.get_url(out["output"]["video_url"])
    assert r.status == 200, r
    path = os.path.join(FIX["dir"], out["output"]["task_id"] + ".mp4")
    with open(path, "wb") as f:
        f.write(r.body)
    info, video = ffprobe(path)
    assert video["codec_name"] == "h264", video
    assert (video["width"], video["height"]) == (w, h), video
    assert abs(float(info["format"]["duration"]) - seconds) < 0.1, info


def until(what, fn, timeout=30):
    deadline = time.time() + timeout
    while not fn():
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.1)


# ------------------------------------------------------------ the route

@case
def upload_then_video_edit_succeeds(srv):
    clip = fixture("clip.mp4")
    t0 = time.time()
    out = uploaded(srv, clip)
    # Durable on disk, under the key's directory, byte for byte.
    files = on_disk(srv, out["upload_id"])
    assert len(files) == 1, files
    with open(files[0], "rb") as f:
        assert f.read() == clip
    # expires_time: upload time + the retention (24h), in UTC+8.
    exp = datetime.datetime.strptime(out["expires_time"],
                                     "%Y-%m-%d %H:%M:%S.%f")
    exp = exp.replace(tzinfo=datetime.timezone(datetime.timedelta(hours=8)))
    assert abs(exp.timestamp() - (t0 + 86400)) < 60, (out, t0)
    done = run(srv, edit(out["url"]))
    check_output(srv, done, 832, 480, 4)
    assert abs(done["usage"]["input_video_duration"] - 4) < 0.05, done
    # The upload stays for other tasks until it expires.
    assert on_disk(srv, out["upload_id"])
    assert "upload stored" in srv.log_wait("upload stored")


@case
def ttapi_route_and_the_video_url_alias(srv):
    # Any Content-Type: the content decides, later, never a name or type.
    out = uploaded(srv, fixture("clip.mp4"), dialect="ttapi",
                   ctype="application/json")
    body = {"model": "happyhorse-1.0-video-edit",
            "input": {"prompt": "x",  # any case: stored in lower case
                      "video_url": "Paddock-Upload://" +
                      out["upload_id"].upper()},
            "parameters": {"resolution": "480P"}}
    r = srv.submit(body, dialect="ttapi")
    assert r.status == 200, r
    done = srv.wait(r.json()["output"]["task_id"], timeout=180)
    check_output(srv, done, 832, 480, 4)


@case
def images_can_be_uploads_too(srv):
    out = uploaded(srv, fixture("wide.png"))
    done = run(srv, {"model": "happyhorse-1.0-i2v",
                     "input": {"media": [{"type": "first_frame",
                                          "url": out["url"]}]},
                     "parameters": {"resolution": "480P", "duration": 3}})
    check_output(srv, done, 832, 480, 3)


@case
def content_decides_not_the_name(srv):
    # Text uploaded and used as a video: the task FAILS on its content.
    out = uploaded(srv, fixture("notes.mp4"))
    done = run(srv, edit(out["url"]))
    o = done["output"]
    assert o["task_status"] == "FAILED", o
    assert o["code"] == "BadRequest.UnsupportedFileFormat", o


@case
def auth_and_empty_body(srv):
    r = srv.request("POST", UPLOADS, b"x")
    refused(r, status=401, code="InvalidApiKey")
    r = srv.request("POST", TT + UPLOADS, b"x", {"TT-API-KEY": "wrong"})
    assert r.status == 401 and r.json()["status"] == "FAILED", r
    refused(upload(srv, b""), "body is empty")
    r = srv.request("PUT", UPLOADS, headers={"Authorization": "Bearer " + KEY})
    assert r.status == 405, r
    # GET is the upload policy of DashScope SDKs (test_oss_uploads.py).
    r = srv.request("GET", UPLOADS, headers={"Authorization": "Bearer " + KEY})
    refused(r, "action must be getPolicy")


# ------------------------------------------------------------ submit checks

@case
def another_keys_upload_is_refused(srv):
    out = uploaded(srv, fixture("clip.mp4"))
    r = srv.submit(edit(out["url"]), key=OTHER_KEY)
    refused(r, "input.media[0].url: no upload %s for this API key"
            % out["upload_id"], "uploads expire 24h after they are sent")
    # The same through the alias names the alias.
    body = {"model": "happyhorse-1.0-video-edit",
            "input": {"prompt": "x", "video_url": out["url"]}}
    refused(srv.submit(body, key=OTHER_KEY, dialect="ttapi"),
            "input.video_url: no upload " + out["upload_id"])
    # Its owner may.
    r = srv.submit(edit(out["url"]))
    assert r.status == 200, r


@case
def unknown_upload_is_refused(srv):
    gone = str(uuid.uuid4())
    refused(srv.submit(edit("paddock-upload://" + gone)),
            "input.media[0].url: no upload %s for this API key" % gone)
    body = {"model": "happyhorse-1.0-r2v",
            "input": {"prompt": "x", "media": [
                {"type": "reference_image",
                 "url": uploaded(srv, fixture("wide.png"))["url"]},
                {"type": "reference_image",
                 "url": "paddock-upload://" + gone}]}}
    refused(srv.submit(body), "input.media[1].url: no upload " + gone)


@case
def bad_scheme_syntax_is_refused(srv):
    for u in ("paddock-upload://nope", "paddock-upload://",
              "paddock-upload://%s/x" % uuid.uuid4()):
        refused(srv.submit(edit(u)), "input.media[0].url: a "
                "paddock-upload:// URL is the scheme and the upload_id")
    refused(srv.submit(edit("paddock-upload:/" + str(uuid.uuid4()))),
            "must be an http(s) URL or a paddock-upload:// URL")


@case
def body_over_the_limit_is_413(_srv):
    small = Server(args=["--workers", "0", "--upload-limit", "256K"]).start()
    try:
        refused(upload(small, b"\0" * (300 << 10)), "limit", status=413,
                code="BadRequest.TooLarge")
        assert not glob.glob(os.path.join(small.data, "uploads", "*", "*"))
        out = uploaded(small, b"\0" * (200 << 10))  # under it: fine
        assert on_disk(small, out["upload_id"])
    finally:
        small.stop()
        small.cleanup()


@case
def per_key_cap(_srv):
    srv = Server(args=["--workers", "0"]).start()
    try:
        for _ in range(64):
            uploaded(srv, b"tiny")
        r = upload(srv, b"one more")
        body = refused(r, "this key holds 64 uploads", "may hold 64 uploads",
                       status=429, code="Throttling.AllocationQuota")
        retry = int(r.headers["retry-after"])
        assert 0 < retry <= 86400, r.headers
        # Another key has its own.
        uploaded(srv, b"tiny", key=OTHER_KEY)
        assert body["request_id"]
    finally:
        srv.stop()
        srv.cleanup()


@case
def an_engine_that_takes_urls_refuses_uploads(_srv):
    """A relay (the upstream engine passes URLs on, local_media=false)
    cannot use an upload: 400 at submit, naming the field and engine."""
    up = Server(keys=("up-key-0123456789",), args=["--workers", "0"]).start()
    relay = Server(args=["--workers", "0", "--engine",
                         "upstream:dashscope http://127.0.0.1:%d "
                         "key=up-key-0123456789" % up.port]).start()
    try:
        out = uploaded(relay, fixture("clip.mp4"))
        refused(relay.submit(edit(out["url"])), "input.media[0].url:",
                "happyhorse-1.0-video-edit is served by engine default "
                "(upstream)", "cannot read an upload")
    finally:
        relay.stop()
        relay.cleanup()
        up.stop()
        up.cleanup()


# ------------------------------------------------------------ lifetimes

@case
def uploads_expire(_srv):
    srv = Server(args=["--workers", "1", "--retention", "2s"]).start()
    try:
        t0 = time.time()
        out = uploaded(srv, fixture("clip.mp4"))
        exp = datetime.datetime.strptime(out["expires_time"],
                                         "%Y-%m-%d %H:%M:%S.%f")
        exp = exp.replace(
            tzinfo=datetime.timezone(datetime.timedelta(hours=8)))
        assert abs(exp.timestamp() - (t0 + 2)) < 2, (out, t0)
        assert on_disk(srv, out["upload_id"])
        # The janitor sweeps it (every half retention here, at least 1 s).
        until("the upload to go", lambda: not on_disk(srv, out["upload_id"]),
              timeout=15)
        # The sweep logs once it has removed its whole batch.
        until("the sweep's log line",
              lambda: "expired uploads deleted" in srv.log_text(), timeout=15)
        refused(srv.submit(edit(out["url"])),
                "no upload " + out["upload_id"],
                "uploads expire 2s after they are sent")
    finally:
        srv.stop()
        srv.cleanup()


@case
def task_whose_upload_vanished_fails(_srv):
    """Accepted while the upload was there; gone before a worker ran the
    task: FAILED InputDownloadFailed, saying so."""
    data = tempfile.mkdtemp(prefix="paddock-uploads-gone-")
    srv = Server(data=data, args=["--workers", "0"]).start()
    try:
        out = uploaded(srv, fixture("clip.mp4"))
        r = srv.submit(edit(out["url"]))
        assert r.status == 200, r
        task_id = r.json()["output"]["task_id"]
        srv.stop()
        for f in on_disk(srv, out["upload_id"]):
            os.unlink(f)
        srv = Server(data=data, args=["--workers", "1"]).start()
        done = srv.wait(task_id, timeout=120)
        o = done["output"]
        assert o["task_status"] == "FAILED", o
        assert o["code"] == "BadRequest.InputDownloadFailed", o
        assert ("media[0]: paddock-upload://%s: no such upload for this API "
                "key" % out["upload_id"]) in o["message"], o
    finally:
        srv.stop()
        shutil.rmtree(data, ignore_errors=True)


@case
def task_moved_to_a_relay_fails(_srv):
    """Accepted on a sandbox; its model served by a relay (URLs only) when
    a worker runs it: FAILED InvalidParameter, naming the engine."""
    data = tempfile.mkdtemp(prefix="paddock-uploads-moved-")
    srv = Server(data=data, args=["--workers", "0"]).start()
    up = relay = None
    try:
        out = uploaded(srv, fixture("clip.mp4"))
        r = srv.submit(edit(out["url"]))
        assert r.status == 200, r
        task_id = r.json()["output"]["task_id"]
        srv.stop()
        up = Server(keys=("up-key-0123456789",),
                    args=["--workers", "0"]).start()
        relay = Server(data=data, args=[
            "--workers", "1", "--engine",
            "upstream:dashscope http://127.0.0.1:%d key=up-key-0123456789"
            % up.port]).start()
        o = relay.wait(task_id, timeout=120)["output"]
        assert o["task_status"] == "FAILED", o
        assert o["code"] == "InvalidParameter", o
        assert ("media[0]: happyhorse-1.0-video-edit is served by engine "
                "default (upstream), which passes URLs on and cannot read a "
                "paddock-upload:// upload") in o["message"], o
    finally:
        for s in (relay, up):
            if s:
                s.stop()
        if up:
            up.cleanup()
        shutil.rmtree(data, ignore_errors=True)


# ------------------------------------------------------------ the CLI

def cli(base, *args, key=KEY, timeout=240):
    env = dict(os.environ)
    for k in ("PADDOCK_API_KEY", "DASHSCOPE_API_KEY", "TT_API_KEY",
              "PADDOCK_BASE_URL", "http_proxy", "https_proxy", "HTTP_PROXY",
              "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    env["PADDOCK_BASE_URL"] = base
    env["PADDOCK_API_KEY"] = key
    return subprocess.run([BIN, *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


@case
def cli_submit_local_video(srv):
    clip = os.path.join(FIX["dir"], "clip.mp4")
    for dialect in ("dashscope", "ttapi"):
        out = os.path.join(FIX["dir"], "cli-%s.mp4" % dialect)
        p = cli(srv.base, "submit", "--video", clip, "--model",
                "happyhorse-1.0-video-edit", "--prompt", "x", "--resolution",
                "480P", "--dialect", dialect, "--wait", "-o", out)
        assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
        task_id = p.stdout.strip()
        assert len(task_id) == 36, p.stdout
        m = re.search(r"uploaded .*clip\.mp4 \((\d+) bytes\) as "
                      r"paddock-upload://([0-9a-f-]{36})", p.stderr)
        assert m, p.stderr
        assert int(m.group(1)) == os.path.getsize(clip), p.stderr
        assert on_disk(srv, m.group(2))
        info, video = ffprobe(out)
        assert (video["width"], video["height"]) == (832, 480), video
        assert abs(float(info["format"]["duration"]) - 4) < 0.1, info
        # The task names the upload, as the server stored it.
        assert srv.query(task_id).json()["output"]["task_status"] == \
            "SUCCEEDED"


@case
def cli_local_video_checks(srv):
    notes = os.path.join(FIX["dir"], "notes.mp4")
    p = cli(srv.base, "submit", "--video", notes, "--prompt", "x")
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "not an MP4 or MOV video" in p.stderr, p.stderr
    # A wrong key against paddock: the models look says so (exit 3).
    p = cli(srv.base, "submit", "--video",
            os.path.join(FIX["dir"], "clip.mp4"), "--prompt", "x",
            key="wrong-key")
    assert p.returncode == 3, (p.returncode, p.stderr)
    assert "HTTP 401" in p.stderr, p.stderr


class NotPaddock(http.server.BaseHTTPRequestHandler):
    """An endpoint that is not paddock: no /api/v1/models (404); records
    every request."""
    seen = []

    def log_message(self, *args):
        pass

    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        NotPaddock.seen.append((self.command, self.path))
        body = json.dumps({"code": "NotFound", "message": "no"}).encode()
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = answer
    do_POST = answer


@case
def cli_local_video_refused_by_other_endpoints(srv):
    fake = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotPaddock)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    try:
        NotPaddock.seen.clear()
        base = "http://127.0.0.1:%d" % fake.server_address[1]
        p = cli(base, "submit", "--video",
                os.path.join(FIX["dir"], "clip.mp4"), "--prompt", "x",
                key="fake-key")
        assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
        assert "local video files are accepted by paddock servers only" in \
            p.stderr, p.stderr
        assert p.stdout == "", p.stdout
        # Only the look at /api/v1/models was sent: no upload, no task.
        assert NotPaddock.seen == [("GET", "/api/v1/models")], \
            NotPaddock.seen
        # A video URL goes straight to the submit, as before.
        NotPaddock.seen.clear()
        p = cli(base, "submit", "--video", "https://example.com/v.mp4",
                "--prompt", "x", key="fake-key")
        assert p.returncode == 3, (p.returncode, p.stderr)
        assert [m for m, _ in NotPaddock.seen] == ["POST"], NotPaddock.seen
    finally:
        fake.shutdown()
        fake.server_close()


if __name__ == "__main__":
    main(setup, teardown)
