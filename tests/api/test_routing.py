"""Model routing (docs/config.md, "Models and engines"): which engine serves
which model name, aliases, 404 ModelNotFound for what is not routed, 503
ModelUnavailable while an engine is down, the models table (GET
/api/v1/models and `paddock models`), per-engine run caps and deadlines,
and output.progress of RUNNING tasks. Real servers on 127.0.0.1."""

import base64
import json
import os
import subprocess
import tempfile
import time

from lib import BIN, KEY, TT, Server, case, main, t2v

DIR = tempfile.mkdtemp(prefix="paddock-routing-")
CLIP = os.path.join(DIR, "clip.mp4")
# An i2v first frame within docs/api.md s.3.6 (each side 300 px or more):
# a command engine's inputs are held to the same limits as the sandbox's.
FRAME = os.path.join(DIR, "frame.png")


def setup():
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc2=size=320x240:rate=24:duration=3",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt",
                    "yuv420p", CLIP], check=True)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "color=c=red:size=320x320", "-frames:v", "1",
                    FRAME], check=True)


def engine(name, body):
    """A throw-away command engine (docs/engines.md) that copies CLIP."""
    path = os.path.join(DIR, name)
    with open(path, "w") as f:
        f.write("#!/usr/bin/env python3\n"
                "import json, shutil, sys, time\n"
                "job = json.load(sys.stdin)\n" + body +
                "shutil.copyfile(%r, job['output'])\n" % CLIP)
    os.chmod(path, 0o755)
    return path


def config(lines):
    path = os.path.join(DIR, "conf-%d.conf" % time.monotonic_ns())
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def models(srv, dialect="dashscope", key=KEY):
    if dialect == "dashscope":
        r = srv.request("GET", "/api/v1/models",
                        headers={"Authorization": "Bearer " + key})
    else:
        r = srv.request("GET", TT + "/api/v1/models",
                        headers={"TT-API-KEY": key})
    assert r.status == 200, r
    return {m["name"]: m for m in r.json()["models"]}


def submit_ok(srv, body):
    r = srv.submit(body)
    assert r.status == 200, r
    return r.json()["output"]["task_id"]


@case
def default_table_serves_every_model():
    srv = Server(args=["--workers", "1"]).start()
    try:
        table = models(srv)
        assert len(table) == 7, table
        assert table == models(srv, "ttapi"), "dialects disagree"
        t2v_row = table["happyhorse-1.0-t2v"]
        assert t2v_row["model"] == "happyhorse-1.0-t2v", t2v_row
        assert t2v_row["task"] == "t2v"
        assert t2v_row["engine"] == "default"
        assert t2v_row["backend"] == "sandbox"
        assert t2v_row["available"] is True
        assert t2v_row["media"] == [], t2v_row
        p = t2v_row["parameters"]
        assert p["resolution"]["enum"] == ["480P", "720P", "1080P"], p
        assert p["duration"] == {"minimum": 3, "maximum": 15,
                                 "default": 5}, p
        assert "16:9" in p["ratio"]["enum"] and "audio_setting" not in p
        edit = table["happyhorse-1.0-video-edit"]
        assert edit["media"] == [
            {"type": "reference_image", "min": 0, "max": 5},
            {"type": "video", "min": 1, "max": 1}] or edit["media"] == [
            {"type": "video", "min": 1, "max": 1},
            {"type": "reference_image", "min": 0, "max": 5}], edit
        assert "duration" not in edit["parameters"]
        assert "ratio" not in edit["parameters"]
        assert edit["parameters"]["audio_setting"]["enum"] == ["auto",
                                                               "origin"]
        r2v = table["happyhorse-1.1-r2v"]
        assert r2v["media"] == [{"type": "reference_image", "min": 1,
                                 "max": 9}], r2v
        # The table is behind the key like every API route.
        r = srv.request("GET", "/api/v1/models")
        assert r.status == 401, r
    finally:
        srv.stop()
        srv.cleanup()


@case
def routes_aliases_and_model_not_found():
    fast = engine("fast.py", "")
    conf = config([
        "engine.fast = sandbox",
        "engine.gpu = command:" + fast,
        "engine.gpu.concurrency = 2",
        "model.happyhorse-1.0-t2v = fast",
        "model.happyhorse-1.0-i2v = gpu",
        "alias.wan2.2-t2v-plus = happyhorse-1.0-t2v",
    ])
    srv = Server(args=["--workers", "2", "--config", conf]).start()
    try:
        table = models(srv)
        assert sorted(table) == ["happyhorse-1.0-i2v", "happyhorse-1.0-t2v",
                                 "wan2.2-t2v-plus"], table
        alias = table["wan2.2-t2v-plus"]
        assert alias["model"] == "happyhorse-1.0-t2v", alias
        assert alias["engine"] == "fast" and alias["backend"] == "sandbox"
        assert table["happyhorse-1.0-i2v"]["backend"] == "command"

        # Not routed: 404 ModelNotFound naming what is served.
        body = t2v()
        body["model"] = "happyhorse-1.1-t2v"
        r = srv.submit(body)
        assert r.status == 404, r
        assert r.json()["code"] == "ModelNotFound", r.json()
        assert "wan2.2-t2v-plus" in r.json()["message"], r.json()
        assert "happyhorse-1.1-t2v" in r.json()["message"], r.json()

        # The alias runs as the model it names, on that model's engine.
        body["model"] = "wan2.2-t2v-plus"
        body["parameters"] = {"resolution": "480P", "duration": 3}
        tid = submit_ok(srv, body)
        out = srv.wait(tid)
        assert out["output"]["task_status"] == "SUCCEEDED", out
        assert out["usage"]["SR"] == 480, out
        listed = srv.request("GET", "/api/v1/tasks",
                             headers={"Authorization": "Bearer " + KEY})
        rows = {t["task_id"]: t for t in listed.json()["data"]}
        assert rows[tid]["model_name"] == "happyhorse-1.0-t2v", rows[tid]
        assert "engine=fast backend=sandbox" in \
            srv.log_wait("engine=fast backend=sandbox")

        # The command engine serves i2v: its clip is 320x240 whatever the
        # image, so the result shows which engine ran.
        with open(FRAME, "rb") as f:
            png = base64.b64encode(f.read()).decode()
        tid = submit_ok(srv, {"model": "happyhorse-1.0-i2v", "input": {
            "media": [{"type": "first_frame",
                       "url": "data:image/png;base64," + png}]}})
        out = srv.wait(tid)
        assert out["output"]["task_status"] == "SUCCEEDED", out
        assert "engine=gpu backend=command" in \
            srv.log_wait("engine=gpu backend=command")
    finally:
        srv.stop()
        srv.cleanup()


@case
def engine_down_answers_503():
    prog = engine("flaky.py", "")
    srv = Server(args=["--workers", "1", "--engine.gpu", "command:" + prog,
                       "--model.happyhorse-1.0-t2v", "gpu"]).start()
    try:
        assert models(srv)["happyhorse-1.0-t2v"]["available"] is True
        os.chmod(prog, 0o644)  # the program can no longer be run
        deadline = time.time() + 30
        while models(srv)["happyhorse-1.0-t2v"]["available"]:
            assert time.time() < deadline, "engine still shown up"
            time.sleep(0.2)
        row = models(srv)["happyhorse-1.0-t2v"]
        # The program's name; where it lives is not the clients' business.
        assert "flaky.py" in row["message"], row
        assert os.path.dirname(prog) not in row["message"], row
        r = srv.submit(t2v())
        assert r.status == 503, r
        assert r.json()["code"] == "ModelUnavailable", r.json()
        assert "happyhorse-1.0-t2v" in r.json()["message"], r.json()
        # TTAPI routes say the same.
        r = srv.submit(t2v(), dialect="ttapi")
        assert r.status == 503 and r.json()["code"] == "ModelUnavailable"

        os.chmod(prog, 0o755)
        deadline = time.time() + 30
        while not models(srv)["happyhorse-1.0-t2v"]["available"]:
            assert time.time() < deadline, "engine still shown down"
            time.sleep(0.2)
        out = srv.wait(submit_ok(srv, t2v()))
        assert out["output"]["task_status"] == "SUCCEEDED", out
    finally:
        srv.stop()
        srv.cleanup()
    # An API-only node carries the render hosts' routes; their programs
    # are on their disks, not here: it takes the task for them.
    srv = Server(args=["--workers", "0", "--engine.gpu",
                       "command:/nonexistent/run.py",
                       "--model.happyhorse-1.0-t2v", "gpu"]).start()
    try:
        assert models(srv)["happyhorse-1.0-t2v"]["available"] is True
        submit_ok(srv, t2v())
    finally:
        srv.stop()
        srv.cleanup()


@case
def progress_shows_while_running():
    gate = os.path.join(DIR, "gate")
    prog = engine("steps.py",
                  "print('progress 30', flush=True)\n"
                  "while not __import__('os').path.exists(%r):\n"
                  "    time.sleep(0.05)\n"
                  "print('progress 70', flush=True)\n"
                  "while not __import__('os').path.exists(%r + '2'):\n"
                  "    time.sleep(0.05)\n" % (gate, gate))
    srv = Server(args=["--workers", "1", "--engine", "command:" + prog]).start()
    try:
        tid = submit_ok(srv, t2v())

        def progress_reaches(want):
            deadline = time.time() + 60
            while True:
                out = srv.query(tid).json()["output"]
                if out["task_status"] == "RUNNING" and \
                        out.get("progress") == want:
                    return out
                assert out["task_status"] in ("PENDING", "RUNNING"), out
                assert time.time() < deadline, out
                time.sleep(0.05)

        out = progress_reaches(30)
        assert "end_time" not in out, out
        ttapi = srv.query(tid, dialect="ttapi").json()["output"]
        assert ttapi["progress"] == 30, ttapi
        open(gate, "w").close()
        progress_reaches(70)
        open(gate + "2", "w").close()
        body = srv.wait(tid)
        assert body["output"]["task_status"] == "SUCCEEDED", body
        assert "progress" not in body["output"], body
    finally:
        srv.stop()
        srv.cleanup()


@case
def concurrency_caps_runs_and_deadline_per_engine():
    spans = os.path.join(DIR, "spans")
    prog = engine("slow.py",
                  "t0 = time.time()\n"
                  "time.sleep(1.2 if job['prompt'] != 'hang' else 1000)\n"
                  "open(%r, 'a').write('%%f %%f\\n' %% (t0, time.time()))\n"
                  % spans)
    conf = config([
        "engine.one = command:" + prog,
        "engine.one.concurrency = 1",
        "engine.one.deadline = 3s",
        "model.happyhorse-1.0-t2v = one",
    ])
    srv = Server(args=["--workers", "4", "--config", conf]).start()
    try:
        ids = [submit_ok(srv, t2v()) for _ in range(4)]
        for tid in ids:
            out = srv.wait(tid)
            assert out["output"]["task_status"] == "SUCCEEDED", out
        with open(spans) as f:
            runs = sorted(tuple(map(float, ln.split())) for ln in f)
        assert len(runs) == 4, runs
        for (a0, a1), (b0, b1) in zip(runs, runs[1:]):
            assert b0 >= a1 - 0.01, ("runs overlap", runs)
        # The last waited 3.6 s for its turn, then ran 1.2 s: the deadline
        # (3 s) counts the run only, so nothing was stopped or given back.
        assert "given back" not in srv.log_text(), srv.log_text()[-2000:]
        # Waiting threads sleep: 3 of them waited 7.2 s in all, and the
        # server's own CPU time (its engines are children, not counted)
        # stays far below that (a waiter that spins takes a core).
        with open("/proc/%d/stat" % srv.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        assert cpu_s < 2.0, ("the server used %.1f s of CPU" % cpu_s)
        # The engine's own deadline, not the global 10 minutes.
        out = srv.wait(submit_ok(srv, t2v(prompt="hang")), timeout=60)
        assert out["output"]["task_status"] == "FAILED", out
        assert out["output"]["code"] == "InternalError.Timeout", out
        assert "3 s" in out["output"]["message"], out
    finally:
        srv.stop()
        srv.cleanup()


@case
def models_command_and_bad_configurations():
    conf = config([
        "engine.fast = sandbox",
        "model.happyhorse-1.0-t2v = fast",
        "alias.my-t2v = happyhorse-1.0-t2v",
    ])
    r = subprocess.run([BIN, "models", "--config", conf],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert lines[0].split()[:4] == ["NAME", "MODEL", "TASK", "ENGINE"], lines
    assert lines[1].split()[:5] == ["happyhorse-1.0-t2v", "happyhorse-1.0-t2v",
                                    "t2v", "fast", "sandbox"], lines
    assert lines[2].split()[:4] == ["my-t2v", "happyhorse-1.0-t2v", "t2v",
                                    "fast"], lines
    assert lines[1].split()[-1] == "available", lines

    bad = [
        (["model.happyhorse-9-t2v = default"], "not a HappyHorse model"),
        (["model.happyhorse-1.0-t2v = gpu"], "no engine named 'gpu'"),
        (["alias.x = happyhorse-1.0-i2v",
          "model.happyhorse-1.0-t2v = default"], "is not served"),
        (["engine.gpu.concurrency = 2"], "has options but no spec"),
        (["engine.gpu = warp-drive"], "unknown engine"),
        (["engine.gpu = sandbox", "engine.gpu.concurency = 2"],
         "unknown engine option"),
        (["engine.gpu = sandbox", "engine.gpu.deadline = soon"],
         "expected a duration"),
    ]
    for lines, want in bad:
        path = config(lines)
        for cmd in ("models", "serve"):
            r = subprocess.run([BIN, cmd, "--config", path, "--listen",
                                "127.0.0.1:0", "--data",
                                os.path.join(DIR, "bad-data")],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode != 0, (cmd, lines, r)
            assert want in r.stderr, (cmd, lines, want, r.stderr)
    # Flags work like config lines.
    r = subprocess.run([BIN, "models", "--engine.x", "sandbox",
                        "--model.happyhorse-1.1-i2v", "x"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    assert len(r.stdout.splitlines()) == 2, r.stdout
    assert json.dumps(r.stdout)  # printable text


if __name__ == "__main__":
    setup()
    main()
