"""The command engine (docs/engines.md): the worked example end to end, and
every way an operator's program can misbehave: hangs, ignores SIGTERM,
prints garbage, writes no file, writes a non-MP4, exits non-zero, names a
failure code. Real servers on 127.0.0.1, real processes."""

import base64
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time

from lib import Server, case, ffprobe, main, t2v

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "..", "examples", "engines",
                       "ffmpeg_engine.py")
DIR = tempfile.mkdtemp(prefix="paddock-engines-")


def engine(name, body):
    """A throw-away engine program in Python."""
    path = os.path.join(DIR, name)
    with open(path, "w") as f:
        f.write("#!/usr/bin/env python3\nimport json, os, signal, sys, time\n"
                "job = json.load(sys.stdin)\n" + body)
    os.chmod(path, 0o755)
    return path


def serve(program, *args):
    return Server(args=["--workers", "1", "--engine",
                        "command:" + os.path.abspath(program), *args]).start()


def run(srv, body=None, timeout=120):
    r = srv.submit(body or t2v())
    assert r.status == 200, r
    return srv.wait(r.json()["output"]["task_id"], timeout=timeout)["output"]


def failed(out, code, *fragments):
    assert out["task_status"] == "FAILED", out
    assert out["code"] == code, out
    for f in fragments:
        assert f in out["message"], (f, out)


@case
def example_engine_end_to_end():
    srv = serve(EXAMPLE)
    try:
        r = srv.submit(t2v(resolution="480P", ratio="1:1", duration=3, seed=7))
        body = srv.wait(r.json()["output"]["task_id"], timeout=120)
        assert body["output"]["task_status"] == "SUCCEEDED", body
        assert abs(body["usage"]["output_video_duration"] - 3) <= 0.1, body
        got = srv.get_url(body["output"]["video_url"])
        path = os.path.join(DIR, "example.mp4")
        with open(path, "wb") as f:
            f.write(got.body)
        info, video = ffprobe(path)
        assert (video["width"], video["height"]) == (624, 624), video
        # i2v: the image paddock fetched, scaled and cropped to the size.
        png = subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
             "color=c=red:size=400x300", "-frames:v", "1", "-f", "image2",
             "-c:v", "png", "-"], check=True, capture_output=True).stdout
        out = run(srv, {"model": "happyhorse-1.0-i2v", "input": {"media": [
            {"type": "first_frame", "url": "data:image/png;base64," +
             base64.b64encode(png).decode()}]},
            "parameters": {"resolution": "480P", "duration": 3}})
        assert out["task_status"] == "SUCCEEDED", out
        # The engine's own refusal, with its code: this one renders t2v
        # and i2v only.
        ref = subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
             "color=c=blue:size=400x400", "-frames:v", "1", "-f", "image2",
             "-c:v", "png", "-"], check=True, capture_output=True).stdout
        r2v = {"model": "happyhorse-1.0-r2v",
               "input": {"prompt": "x", "media": [
                   {"type": "reference_image",
                    "url": "data:image/png;base64," +
                    base64.b64encode(ref).decode()}]}}
        failed(run(srv, r2v), "InvalidParameter", "t2v and i2v only")
        # Inputs the API does not take never reach the program: paddock
        # measures them first, as for the sandbox (docs/engines.md).
        r2v["input"]["media"][0]["url"] = (
            "data:image/png;base64," + base64.b64encode(png).decode())
        failed(run(srv, r2v), "InvalidParameter", "media[0] image is 400x300",
               "short side")
        r2v["input"]["media"][0]["url"] = "data:image/png;base64,iVBORw0KGgo="
        failed(run(srv, r2v), "BadRequest.UnsupportedFileFormat", "media[0]")
    finally:
        srv.stop()
        srv.cleanup()


@case
def hanging_engine_hits_the_deadline():
    prog = engine("hang.py", "time.sleep(1000)\n")
    srv = serve(prog, "--deadline", "1s")
    try:
        failed(run(srv), "InternalError.Timeout", "1 s")
    finally:
        srv.stop()
        srv.cleanup()


@case
def engine_ignoring_sigterm_is_killed():
    prog = engine("stubborn.py",
                  "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                  "while True:\n    time.sleep(0.1)\n")
    srv = serve(prog, "--deadline", "1s")
    try:
        t0 = time.time()
        failed(run(srv), "InternalError.Timeout")
        assert time.time() - t0 < 30
        # The engine's own command line (the server's names it too).
        out = subprocess.run(["pgrep", "-f", "python3 " + prog],
                             capture_output=True)
        assert out.returncode == 1, "the engine is still running"
    finally:
        srv.stop()
        srv.cleanup()


@case
def garbage_and_no_file():
    prog = engine("garbage.py",
                  "for i in range(2000):\n"
                  "    print('x' * (i % 7000), 'progress', i)\n"
                  "sys.stdout.flush()\n")
    srv = serve(prog)
    try:
        failed(run(srv), "InternalError.Algo", "no video")
    finally:
        srv.stop()
        srv.cleanup()


@case
def raw_bytes_on_stderr_reach_the_client_as_utf8():
    """What a program says on stderr goes into the task's message: raw
    bytes and characters cut short become U+FFFD, never invalid UTF-8
    (PostgreSQL would refuse to store the failure)."""
    prog = engine("raw.py",
                  "sys.stderr.buffer.write(b'bad \\xff\\xfe model \\xe4\\xb8')\n"
                  "sys.stderr.flush()\n"
                  "sys.exit(3)\n")
    srv = serve(prog)
    try:
        r = srv.submit(t2v())
        tid = r.json()["output"]["task_id"]
        srv.wait(tid)
        raw = srv.query(tid).body
        text = raw.decode("utf-8")  # strict: raises on invalid UTF-8
        out = json.loads(text)["output"]
        failed(out, "InternalError.Algo", "status 3", "bad \ufffd\ufffd model")
    finally:
        srv.stop()
        srv.cleanup()


@case
def non_mp4_output_refused():
    prog = engine("text.py",
                  "open(job['output'], 'w').write('not a video\\n' * 100)\n")
    srv = serve(prog)
    try:
        failed(run(srv), "InternalError.Algo", "output")
        assert not os.listdir(os.path.join(srv.data, "results"))
    finally:
        srv.stop()
        srv.cleanup()


@case
def nonzero_exit_and_error_json():
    prog = engine("refuse.py",
                  "print('progress 10', flush=True)\n"
                  "print('error ' + json.dumps({'code': 'DataInspectionFailed',"
                  " 'message': 'the prompt was refused'}), flush=True)\n"
                  "sys.exit(3)\n")
    srv = serve(prog)
    try:
        failed(run(srv), "DataInspectionFailed", "the prompt was refused")
    finally:
        srv.stop()
        srv.cleanup()
    prog = engine("crash.py",
                  "sys.stderr.write('CUDA out of memory\\n')\nsys.exit(9)\n")
    srv = serve(prog)
    try:
        failed(run(srv), "InternalError.Algo", "status 9",
               "CUDA out of memory")
    finally:
        srv.stop()
        srv.cleanup()


@case
def background_helper_holding_the_pipes_does_not_block():
    """The program leaves a child that keeps stdout open and exits 0 with
    a good video: the task succeeds at once, not at the deadline, and the
    child is gone with it."""
    prog = engine("leaves_child.py",
                  "import subprocess\n"
                  "subprocess.Popen(['sleep', '1000'])\n"
                  "subprocess.run(['ffmpeg', '-v', 'error', '-y', '-f', "
                  "'lavfi', '-i', 'testsrc2=size=832x480:rate=24', '-t', "
                  "'3', '-c:v', 'libx264', '-preset', 'ultrafast', "
                  "'-pix_fmt', 'yuv420p', job['output']], check=True)\n")
    srv = serve(prog, "--deadline", "60s")
    try:
        t0 = time.time()
        out = run(srv)
        assert out["task_status"] == "SUCCEEDED", out
        assert time.time() - t0 < 30, "waited for the helper's pipes"
    finally:
        srv.stop()
        srv.cleanup()


@case
def running_task_cannot_be_canceled_but_shutdown_stops_it():
    prog = engine("slow.py", "time.sleep(1000)\n")
    data = tempfile.mkdtemp(prefix="paddock-cmd-")
    srv = Server(data=data, args=["--workers", "1", "--grace", "0",
                                  "--engine", "command:" + prog]).start()
    try:
        tid = srv.submit(t2v()).json()["output"]["task_id"]
        srv.wait(tid, want=("RUNNING",))
        r = srv.request("POST", "/api/v1/tasks/%s/cancel" % tid,
                        headers={"Authorization": "Bearer test-key-0123456789"})
        assert r.status == 400, r
        srv.stop()  # SIGTERM: the engine is stopped, the task given back
        assert subprocess.run(["pgrep", "-f", "python3 " + prog]).returncode == 1
        db = sqlite3.connect(os.path.join(data, "paddock.db"))
        status = db.execute("SELECT status FROM tasks WHERE task_id = ?",
                            (tid,)).fetchone()[0]
        db.close()
        assert status == "PENDING", status
    finally:
        srv.cleanup()
        shutil.rmtree(data, ignore_errors=True)


@case
def bad_engine_spec_refused_at_start():
    for spec in ("command:relative/path", "command:/nonexistent/engine",
                 "warp-drive"):
        p = subprocess.run([os.environ.get("PADDOCK_BIN", "build/asan/paddock"),
                            "serve", "--listen", "127.0.0.1:0", "--data", DIR,
                            "--engine", spec], capture_output=True, text=True,
                           timeout=30)
        assert p.returncode != 0, (spec, p)
        assert "engine" in p.stderr, (spec, p.stderr)


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(DIR, ignore_errors=True)
