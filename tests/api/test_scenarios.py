"""Sandbox scenarios (docs/extensions.md, "Scenarios";
docs/testing-your-client.md) over real HTTP on 127.0.0.1: each directive
end to end, cancel during a queue delay and across a restart, progress
rising during a run, fail-rate repeating across runs, submit=, query-errors,
expired and slow links, the order of the sources, and every refusal naming
its source and directive.

Timing is asserted as order and relations between the task's own times
(a queue delay is at least its length, a run at least its length), never
as a wall-clock ceiling a loaded machine could break."""

import datetime
import os
import re
import subprocess
import tempfile
import time

from lib import BIN, KEY, Server, case, main, t2v

DIR = tempfile.mkdtemp(prefix="paddock-scenarios-")
HEADER = "X-Paddock-Scenario"
STEERED = "happyhorse-1.1-t2v"  # on an engine with its own scenario
COMMAND = "happyhorse-1.0-i2v"  # on a command engine: no scenario


def config(lines):
    path = os.path.join(DIR, "conf-%d.conf" % time.monotonic_ns())
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


CONF = config([
    "engine.plain = sandbox",
    "engine.steered = sandbox fail=E.Engine,query-errors=1",
    "engine.cmd = command:/bin/true",
    "model.happyhorse-1.0-t2v = plain",
    "model.%s = steered" % STEERED,
    "model.%s = cmd" % COMMAND,
])


def ms(text):
    """A query's *_time as milliseconds (the zone cancels out)."""
    d = datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f")
    return int(d.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


def submit(srv, scenario=None, key=KEY, model=None, **kw):
    body = t2v(**kw)
    if model:
        body["model"] = model
    headers = {HEADER: scenario} if scenario is not None else {}
    return srv.submit(body, key=key, headers=headers)


def submit_ok(srv, scenario=None, **kw):
    r = submit(srv, scenario, **kw)
    assert r.status == 200, r
    return r.json()["output"]["task_id"]


def query_ok(srv, task_id, key=KEY):
    r = srv.query(task_id, key=key)
    assert r.status == 200, r
    return r.json()["output"]


def wait(srv, task_id, key=KEY, timeout=180):
    deadline = time.time() + timeout
    while True:
        out = query_ok(srv, task_id, key)
        if out["task_status"] in ("SUCCEEDED", "FAILED", "CANCELED"):
            return out
        assert time.time() < deadline, "still %s" % out
        time.sleep(0.1)


def setup():
    return Server(args=["--workers", "2", "--config", CONF]).start()


def teardown(srv):
    srv.stop()
    srv.cleanup()


# ---------------------------------------------------------------- queue

@case
def queue_keeps_the_task_pending(srv):
    tid = submit_ok(srv, "queue=2s", seed=1)
    first = query_ok(srv, tid)
    assert first["task_status"] == "PENDING", first
    out = wait(srv, tid)
    assert out["task_status"] == "SUCCEEDED", out
    assert ms(out["scheduled_time"]) - ms(out["submit_time"]) >= 2000, out


@case
def cancel_during_the_queue(srv):
    tid = submit_ok(srv, "queue=1h", seed=2)
    time.sleep(0.5)
    assert query_ok(srv, tid)["task_status"] == "PENDING"
    r = srv.request("POST", "/api/v1/tasks/%s/cancel" % tid,
                    headers={"Authorization": "Bearer " + KEY})
    assert r.status == 200, r
    assert query_ok(srv, tid)["task_status"] == "CANCELED"


@case
def queue_is_stored_across_a_restart(_):
    srv = Server(args=["--workers", "2"]).start()
    try:
        waiting = submit_ok(srv, "queue=1h", seed=3)
        short = submit_ok(srv, "queue=3s", seed=4)
        srv.stop()
        srv.start()
        assert query_ok(srv, waiting)["task_status"] == "PENDING"
        r = srv.request("POST", "/api/v1/tasks/%s/cancel" % waiting,
                        headers={"Authorization": "Bearer " + KEY})
        assert r.status == 200, r
        out = wait(srv, short)
        assert out["task_status"] == "SUCCEEDED", out
        assert ms(out["scheduled_time"]) - ms(out["submit_time"]) >= 3000
        srv.stop()
    finally:
        srv.cleanup()


# ------------------------------------------------------------------ run

@case
def progress_rises_during_the_run(srv):
    tid = submit_ok(srv, "run=6s", seed=5)
    seen = []
    while True:
        out = query_ok(srv, tid)
        if out["task_status"] == "RUNNING":
            seen.append(out["progress"])
        elif out["task_status"] != "PENDING":
            break
        time.sleep(0.3)
    assert out["task_status"] == "SUCCEEDED", out
    assert ms(out["end_time"]) - ms(out["scheduled_time"]) >= 6000, out
    assert seen == sorted(seen), seen  # never falls
    rises = sorted(set(seen))
    assert len(rises) >= 4 and rises[-1] > rises[0], seen
    assert all(0 <= p <= 99 for p in seen), seen


@case
def runs_hold_no_slot_and_go_back_at_shutdown(_):
    # One render thread and one render slot: tasks in their run delay hold
    # neither, so all of them run at once.
    conf = config(["engine.one = sandbox", "engine.one.concurrency = 1",
                   "model.happyhorse-1.0-t2v = one"])
    srv = Server(args=["--workers", "1", "--config", conf,
                       "--grace", "60s"]).start()
    try:
        ids = [submit_ok(srv, "run=1h", seed=20 + i) for i in range(4)]
        deadline = time.time() + 120
        while not all(query_ok(srv, t)["task_status"] == "RUNNING"
                      for t in ids):
            assert time.time() < deadline, [query_ok(srv, t) for t in ids]
            time.sleep(0.2)
        t0 = time.monotonic()
        srv.stop()
        # At once, not after the grace (60 s) nor the hour.
        assert time.monotonic() - t0 < 30
        assert "parked tasks given back at shutdown" in srv.log_text()
        srv.start()
        for t in ids:
            out = query_ok(srv, t)
            assert out["task_status"] in ("PENDING", "RUNNING"), out
        srv.stop()
    finally:
        srv.cleanup()


@case
def realistic_at_speed(srv):
    tid = submit_ok(srv, "realistic,speed=20", seed=6)
    out = wait(srv, tid)
    assert out["task_status"] == "SUCCEEDED", out
    queued = ms(out["scheduled_time"]) - ms(out["submit_time"])
    ran = ms(out["end_time"]) - ms(out["scheduled_time"])
    assert queued >= 100, out  # queue=2s..20s / 20
    assert ran >= 2000, out  # run=40s..120s / 20


@case
def fail_after_the_run(srv):
    tid = submit_ok(srv, "run=1s,fail=DataInspectionFailed:the input image "
                    "contains inappropriate content", seed=7)
    out = wait(srv, tid)
    assert out["task_status"] == "FAILED", out
    assert out["code"] == "DataInspectionFailed", out
    assert out["message"] == ("the input image contains inappropriate "
                              "content"), out
    assert ms(out["end_time"]) - ms(out["scheduled_time"]) >= 1000, out
    tid = submit_ok(srv, "fail=InternalError.Timeout", seed=7)
    out = wait(srv, tid)
    assert out["code"] == "InternalError.Timeout", out
    assert "scenario" in out["message"], out


def failures(srv, seeds):
    ids = {s: submit_ok(srv, "fail-rate=0.3", seed=s) for s in seeds}
    outs = {s: wait(srv, tid) for s, tid in ids.items()}
    for out in outs.values():
        assert out["task_status"] in ("SUCCEEDED", "FAILED"), out
        if out["task_status"] == "FAILED":
            assert out["code"] == "InternalError.Algo", out
    return {s for s, out in outs.items() if out["task_status"] == "FAILED"}


@case
def fail_rate_repeats_on_every_run(_):
    runs = []
    for _ in range(2):  # two servers, two stores: nothing shared
        srv = Server(args=["--workers", "2"]).start()
        try:
            runs.append(failures(srv, range(100)))
            srv.stop()
        finally:
            srv.cleanup()
    assert runs[0] == runs[1], runs
    assert 15 <= len(runs[0]) <= 45, len(runs[0])


# ---------------------------------------------------------- submit, query

@case
def submit_answers_as_told(srv):
    listed = lambda: srv.request(
        "GET", "/api/v1/tasks",
        headers={"Authorization": "Bearer " + KEY}).json()["total"]
    before = listed()
    r = submit(srv, "submit=429:Throttling.RateQuota")
    assert r.status == 429, r
    assert r.headers.get("retry-after") == "1", r
    assert r.json()["code"] == "Throttling.RateQuota", r
    assert "request_id" in r.json() and r.json()["message"], r
    r = submit(srv, "submit=503:ModelUnavailable")
    assert r.status == 503 and r.json()["code"] == "ModelUnavailable", r
    assert "retry-after" not in r.headers, r
    r = srv.submit(t2v(), dialect="ttapi",
                   headers={HEADER: "submit=500:InternalError"})
    assert r.status == 500 and r.json()["code"] == "InternalError", r
    assert listed() == before, "no task is created"


@case
def query_errors_then_normal(srv):
    tid = submit_ok(srv, "query-errors=2", seed=8)
    for _ in range(2):
        r = srv.query(tid)
        assert r.status == 500, r
        assert r.json()["code"] == "InternalError", r
        assert "query-errors=2" in r.json()["message"], r
    for _ in range(3):
        assert srv.query(tid).status == 200
    assert wait(srv, tid)["task_status"] == "SUCCEEDED"


@case
def query_errors_count_across_a_restart(_):
    srv = Server(args=["--workers", "0"]).start()
    try:
        tid = submit_ok(srv, "query-errors=2", seed=9)
        assert srv.query(tid).status == 500
        srv.stop()
        srv.start()
        assert srv.query(tid).status == 500
        assert srv.query(tid).status == 200
        srv.stop()
    finally:
        srv.cleanup()


# ---------------------------------------------------------------- links

@case
def expired_link_answers_403(srv):
    tid = submit_ok(srv, "link=expired", seed=10)
    out = wait(srv, tid)
    assert out["task_status"] == "SUCCEEDED", out
    r = srv.get_url(out["video_url"])
    assert r.status == 403, r
    assert r.json()["code"] == "AccessDenied", r
    # Exactly what a genuinely expired link answers.
    plain = wait(srv, submit_ok(srv, seed=10))
    stale = re.sub(r"expires=\d+", "expires=1000000000", plain["video_url"])
    old = srv.get_url(stale)
    assert old.status == 403 and old.json()["message"] == \
        r.json()["message"], (old, r)


@case
def slow_link_is_paced(srv):
    fast = wait(srv, submit_ok(srv, seed=11, duration=5))
    slow = wait(srv, submit_ok(srv, "link=slow", seed=11, duration=5))
    assert "rate=65536" in slow["video_url"], slow
    quick = srv.get_url(fast["video_url"])
    assert quick.status == 200, quick
    t0 = time.monotonic()
    r = srv.get_url(slow["video_url"])
    spent = time.monotonic() - t0
    assert r.status == 200 and r.body == quick.body, "the same bytes"
    size = len(r.body)
    assert size > 128 << 10, size
    # 64 KiB/s after a first eighth of a second's worth.
    assert spent >= (size - 8192) / 65536.0 * 0.9, (size, spent)
    # The pace is signed: without it the link is refused.
    bare = slow["video_url"].replace("&rate=65536", "")
    assert srv.get_url(bare).status == 403


# -------------------------------------------------------------- sources

def keys_create(srv, scenario):
    r = subprocess.run([BIN, "keys", "create", "--data", srv.data,
                        "--scenario", scenario], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r
    return r.stdout.strip()


@case
def header_over_token_over_key_over_engine(srv):
    key = keys_create(srv, "fail=K.Key")
    deadline = time.time() + 5  # keys are reread each second
    while submit(srv, key=key, model=STEERED).status != 200:
        assert time.time() < deadline, "the new key never worked"
        time.sleep(0.2)
    cases = [
        (KEY, None, "a horse", "E.Engine"),
        (key, None, "a horse", "K.Key"),
        (key, None, "a horse [paddock: fail=T.Token]", "T.Token"),
        (key, "fail=H.Header", "a horse [paddock: fail=T.Token]", "H.Header"),
        (KEY, "fail=H.Header", "[paddock: fail=T.Token] a horse", "H.Header"),
    ]
    for i, (k, header, prompt, code) in enumerate(cases):
        r = submit(srv, header, key=k, model=STEERED, prompt=prompt,
                   seed=100 + i)
        assert r.status == 200, r
        tid = r.json()["output"]["task_id"]
        # Per directive: the engine's query-errors=1 holds in every case.
        assert srv.query(tid, key=k).status == 500
        out = wait(srv, tid, key=k)
        assert out["task_status"] == "FAILED" and out["code"] == code, \
            (i, out)
        assert out["orig_prompt"] == prompt, out  # the token stays there


# ------------------------------------------------------------- refusals

REFUSED = [
    # (model, header, prompt, the message's start)
    ("happyhorse-1.0-t2v", "run=soon", "a horse",
     "header X-Paddock-Scenario: 'run=soon': expected run=DURATION"),
    ("happyhorse-1.0-t2v", "queue=2h", "a horse",
     "header X-Paddock-Scenario: 'queue=2h': expected queue=DURATION"),
    ("happyhorse-1.0-t2v", "fail-rate=2", "a horse",
     "header X-Paddock-Scenario: 'fail-rate=2': expected fail-rate=P"),
    ("happyhorse-1.0-t2v", "submit=200:OK", "a horse",
     "header X-Paddock-Scenario: 'submit=200:OK': expected"),
    ("happyhorse-1.0-t2v", "query-errors=101", "a horse",
     "header X-Paddock-Scenario: 'query-errors=101': expected"),
    ("happyhorse-1.0-t2v", "link=broken", "a horse",
     "header X-Paddock-Scenario: 'link=broken': expected link=expired"),
    ("happyhorse-1.0-t2v", "warp=9", "a horse",
     "header X-Paddock-Scenario: 'warp': unknown directive"),
    ("happyhorse-1.0-t2v", "run=1s,,", "a horse",
     "header X-Paddock-Scenario: an empty directive"),
    ("happyhorse-1.0-t2v", None, "a horse [paddock: speed=0]",
     "input.prompt's [paddock: ...] token: 'speed=0': expected speed=X"),
    ("happyhorse-1.0-t2v", None, "a horse [paddock: run=1s",
     "input.prompt's [paddock: ...] token: no closing ']'"),
    (COMMAND, "run=1s", None,
     "header X-Paddock-Scenario: %s is served by engine cmd (command), "
     "which takes no scenario" % COMMAND),
    (COMMAND, None, "[paddock: run=1s] a horse",
     "input.prompt's [paddock: ...] token: %s is served by engine cmd"
     % COMMAND),
]


@case
def malformed_and_misplaced_scenarios_are_refused(srv):
    for model, header, prompt, message in REFUSED:
        body = t2v(prompt=prompt or "a horse")
        body["model"] = model
        if model == COMMAND:
            body["input"] = {"media": [{"type": "first_frame",
                                        "url": "https://example.com/a.png"}]}
            if prompt:
                body["input"]["prompt"] = prompt
        r = srv.submit(body, headers={HEADER: header} if header else None)
        assert r.status == 400, (model, header, prompt, r)
        assert r.json()["code"] == "InvalidParameter", r
        assert r.json()["message"].startswith(message), \
            (r.json()["message"], message)


@case
def keys_create_checks_the_scenario(srv):
    r = subprocess.run([BIN, "keys", "create", "--data", srv.data,
                        "--scenario", "run=whenever"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2, r
    assert "--scenario: 'run=whenever': expected run=DURATION" in r.stderr, r
    key = keys_create(srv, "realistic,speed=20")
    listed = subprocess.run([BIN, "keys", "list", "--data", srv.data],
                            capture_output=True, text=True, timeout=60)
    assert "realistic,speed=20" in listed.stdout, listed
    assert key not in listed.stdout


if __name__ == "__main__":
    main(setup, teardown)
