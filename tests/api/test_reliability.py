"""Nothing lost, nobody crowded out (docs/api.md s.6-11): cancel, list,
retention, idempotency, fairness, 429s with Retry-After, engine deadlines,
lost leases, graceful shutdown. Real servers on 127.0.0.1."""

import datetime
import os
import shutil
import signal
import sqlite3
import tempfile
import threading
import time

from lib import KEY, OTHER_KEY, TT, Server, case, main, t2v

AUTH = {"Authorization": "Bearer " + KEY}


def tid_of(r):
    assert r.status == 200, r
    return r.json()["output"]["task_id"]


def cancel(srv, tid, key=KEY, dialect="dashscope", body=None, slash=""):
    if dialect == "dashscope":
        return srv.request("POST", "/api/v1/tasks/%s/cancel%s" % (tid, slash),
                           body, {"Authorization": "Bearer " + key})
    return srv.request("POST", TT + "/api/v1/tasks/%s/cancel%s" % (tid, slash),
                       body, {"TT-API-KEY": key})


def listing(srv, key=KEY, **params):
    q = "&".join("%s=%s" % kv for kv in params.items())
    r = srv.request("GET", "/api/v1/tasks" + ("?" + q if q else ""),
                    headers={"Authorization": "Bearer " + key})
    return r


def compact(ts, offset_h=8):
    """Epoch seconds as YYYYMMDDhhmmss at UTC+offset."""
    t = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return (t + datetime.timedelta(hours=offset_h)).strftime("%Y%m%d%H%M%S")


def db_rows(data, sql, args=()):
    db = sqlite3.connect(os.path.join(data, "paddock.db"))
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


# ---------------------------------------------------------------- cancel

@case
def cancel_pending_running_and_foreign():
    srv = Server(args=["--workers", "0"]).start()
    try:
        tid = tid_of(srv.submit(t2v()))
        # Another key: the same 404 as a task that does not exist.
        r = cancel(srv, tid, key=OTHER_KEY)
        assert r.status == 404 and r.json()["code"] == "NotFound", r
        r = cancel(srv, "01900000-0000-7000-8000-000000000000")
        assert r.status == 404 and r.json()["code"] == "NotFound", r
        r = cancel(srv, "not-a-task")
        assert r.status == 404, r
        # The owner, with what real clients send: a JSON body, a slash.
        r = cancel(srv, tid, body={"input": "", "model": "", "parameters": {}},
                   slash="/")
        assert r.status == 200, r
        assert set(r.json()) == {"request_id"}, r
        q = srv.query(tid).json()["output"]
        assert q["task_status"] == "CANCELED", q
        assert "submit_time" in q and "end_time" in q, q
        assert "scheduled_time" not in q and "video_url" not in q, q
        assert q["end_time"] >= q["submit_time"], q
        # Twice: not PENDING any more.
        r = cancel(srv, tid, dialect="ttapi")
        assert r.status == 400, r
        assert r.json()["code"] == "UnsupportedOperation", r
        assert "CANCELED" in r.json()["message"], r
    finally:
        srv.stop()
        srv.cleanup()
    # RUNNING cannot be canceled.
    srv = Server(args=["--workers", "1", "--grace", "0"]).start()
    try:
        tid = tid_of(srv.submit(t2v(resolution="1080P", duration=15)))
        srv.wait(tid, want=("RUNNING",))
        r = cancel(srv, tid)
        assert r.status == 400, r
        assert r.json()["code"] == "UnsupportedOperation", r
        assert "RUNNING" in r.json()["message"], r
    finally:
        srv.stop()
        srv.cleanup()


# ------------------------------------------------------------------ list

@case
def list_filters_and_pages():
    srv = Server(args=["--workers", "0"]).start()
    try:
        t0 = time.time()
        mine = []
        for i in range(23):
            body = t2v(prompt="list %d" % i)
            if i % 4 == 0:
                body["model"] = "happyhorse-1.0-r2v"
                body["input"]["media"] = [{"type": "reference_image",
                                           "url": "https://example.com/a.png"}]
            mine.append(tid_of(srv.submit(body)))
        for i in range(3):
            srv.submit(t2v(), key=OTHER_KEY)
        for tid in mine[:2]:
            assert cancel(srv, tid).status == 200
        r = listing(srv)
        assert r.status == 200, r
        body = r.json()
        assert body["total"] == 23 and body["total_page"] == 3, body
        assert body["page_no"] == 1 and body["page_size"] == 10, body
        assert len(body["data"]) == 10, body
        ids = [d["task_id"] for d in body["data"]]
        assert ids == list(reversed(mine))[:10], "newest first"
        row = body["data"][0]
        assert set(row) == {"task_id", "status", "model_name", "gmt_create"}, row
        assert isinstance(row["gmt_create"], int), row
        assert abs(row["gmt_create"] / 1000 - time.time()) < 60, row
        seen = []
        for page in (1, 2, 3):
            b = listing(srv, page_no=page, page_size=10).json()
            seen += [d["task_id"] for d in b["data"]]
        assert sorted(seen) == sorted(mine), "pages cover every task once"
        b = listing(srv, status="CANCELED").json()
        assert b["total"] == 2, b
        assert {d["task_id"] for d in b["data"]} == set(mine[:2]), b
        assert all("end_time" in d for d in b["data"]), b
        b = listing(srv, model_name="happyhorse-1.0-r2v", page_size=100).json()
        assert b["total"] == 6, b
        b = listing(srv, key=OTHER_KEY).json()
        assert b["total"] == 3, b
        # A window before the tasks existed, and one around them.
        before = compact(t0 - 7200)
        b = listing(srv, start_time=compact(t0 - 10800),
                    end_time=before).json()
        assert b["total"] == 0, b
        b = listing(srv, start_time=compact(t0 - 5),
                    end_time=compact(time.time() + 5)).json()
        assert b["total"] == 23, b
        # The TTAPI dialect lists the same tasks.
        r = srv.request("GET", TT + "/api/v1/tasks/?page_size=1",
                        headers={"TT-API-KEY": KEY})
        assert r.status == 200 and r.json()["total"] == 23, r
        for params, field in (({"page_size": 101}, "page_size"),
                              ({"page_no": 0}, "page_no"),
                              ({"status": "DONE"}, "status"),
                              ({"start_time": "2026-01-01"}, "start_time"),
                              ({"start_time": compact(t0 - 3 * 86400),
                                "end_time": compact(t0)}, "24 hours")):
            r = listing(srv, **params)
            assert r.status == 400, (params, r)
            assert r.json()["code"] == "InvalidParameter", r
            assert field in r.json()["message"], (field, r)
    finally:
        srv.stop()
        srv.cleanup()


# ------------------------------------------------------------- retention

@case
def retention_deletes_task_and_file():
    srv = Server(args=["--workers", "1", "--retention", "3s"]).start()
    try:
        tid = tid_of(srv.submit(t2v(seed=5)))
        body = srv.wait(tid)
        assert body["output"]["task_status"] == "SUCCEEDED", body
        results = os.path.join(srv.data, "results")
        assert any(f.startswith(tid) for f in os.listdir(results))
        deadline = time.time() + 20
        while time.time() < deadline:
            gone = not db_rows(srv.data, "SELECT 1 FROM tasks WHERE "
                               "task_id = ?", (tid,))
            if gone and not any(f.startswith(tid)
                                for f in os.listdir(results)):
                break
            time.sleep(0.3)
        else:
            raise AssertionError("task or file still there after retention")
        q = srv.query(tid).json()
        assert q["output"]["task_status"] == "UNKNOWN", q
        assert listing(srv).json()["total"] == 0
    finally:
        srv.stop()
        srv.cleanup()


# ----------------------------------------------------------- idempotency

@case
def idempotent_submits():
    srv = Server(args=["--workers", "0"]).start()
    try:
        body = t2v(prompt="idempotent")
        h = {"Idempotency-Key": "order-42"}
        r1 = srv.submit(body, headers=h)
        r2 = srv.submit(body, headers={"idempotency-key": "order-42"},
                        dialect="ttapi")
        assert tid_of(r1) == tid_of(r2), (r1, r2)
        assert r2.headers.get("idempotent-replayed") == "true", r2
        other = dict(body, input={"prompt": "something else"})
        r3 = srv.submit(other, headers=h)
        assert r3.status == 409, r3
        assert r3.json()["code"] == "IdempotencyConflict", r3
        assert tid_of(r1) in r3.json()["message"], r3
        # Scoped to the key: another key's same Idempotency-Key is new.
        r4 = srv.submit(body, headers=h, key=OTHER_KEY)
        assert tid_of(r4) != tid_of(r1)
        # 20 concurrent identical submits: exactly one task.
        results = []
        h2 = {"Idempotency-Key": "burst-1"}

        def go():
            results.append(srv.submit(t2v(prompt="burst"), headers=h2))
        threads = [threading.Thread(target=go) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ids = {tid_of(r) for r in results}
        assert len(results) == 20 and len(ids) == 1, ids
        n = db_rows(srv.data, "SELECT count(*) FROM tasks WHERE prompt = ?",
                    ("burst",))[0][0]
        assert n == 1, n
    finally:
        srv.stop()
        srv.cleanup()


@case
def concurrent_submits_on_keep_alive():
    """32 clients, 40 submits each on one connection: every reply is 200
    and every acknowledged task is in the store (group commit, deferred
    replies)."""
    import http.client
    import json
    srv = Server(args=["--workers", "0", "--max-active", "0"]).start()
    acked, errors = [], []
    body = json.dumps(t2v(prompt="concurrent"))
    headers = {"Authorization": "Bearer " + KEY, "X-DashScope-Async": "enable",
               "Content-Type": "application/json"}

    def client():
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        try:
            for _ in range(40):
                c.request("POST", "/api/v1/services/aigc/video-generation/"
                          "video-synthesis", body, headers)
                r = c.getresponse()
                data = r.read()
                if r.status != 200:
                    errors.append((r.status, data[:200]))
                else:
                    acked.append(json.loads(data)["output"]["task_id"])
        except Exception as e:  # a dropped connection is a failure here
            errors.append(repr(e))
        finally:
            c.close()
    try:
        threads = [threading.Thread(target=client) for _ in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:3]
        assert len(set(acked)) == 32 * 40
        n = db_rows(srv.data, "SELECT count(*) FROM tasks")[0][0]
        assert n == 32 * 40, n
    finally:
        srv.stop()
        srv.cleanup()


# --------------------------------------------------------------- fairness

@case
def one_backlog_does_not_starve_another_key():
    srv = Server(args=["--workers", "1", "--grace", "0"]).start()
    try:
        for i in range(100):
            tid_of(srv.submit(t2v(prompt="backlog %d" % i, duration=3)))
        b_submitted = time.time()
        b = tid_of(srv.submit(t2v(prompt="single"), key=OTHER_KEY))
        srv.wait(b, key=OTHER_KEY, timeout=120)
        b_row = listing(srv, key=OTHER_KEY).json()["data"][0]
        a_rows = []
        for page in (1, 2, 3, 4, 5):
            a_rows += listing(srv, page_no=page, page_size=100).json()["data"]
        assert len(a_rows) == 100
        # A's tasks started after B was submitted and before B started:
        # the bound is one task per worker.
        overtakers = [r for r in a_rows if "start_time" in r and
                      b_submitted * 1000 <= r["start_time"] <
                      b_row["start_time"]]
        assert len(overtakers) <= 1, (len(overtakers), b_row)
        pending = [r for r in a_rows if r["status"] == "PENDING"]
        assert len(pending) > 50, "the backlog was still there"
    finally:
        srv.stop()
        srv.cleanup()


# ---------------------------------------------------------------- limits

def assert_429(r, code):
    assert r.status == 429, r
    assert r.json()["code"] == code, r
    assert int(r.headers["retry-after"]) >= 1, r


@case
def each_429_has_retry_after():
    srv = Server(args=["--workers", "0", "--rate-limit", "1",
                       "--rate-burst", "3", "--max-active", "2",
                       "--max-queue", "3"]).start()
    try:
        tid_of(srv.submit(t2v()))
        tid_of(srv.submit(t2v()))
        r = srv.submit(t2v())  # third unfinished task of KEY
        assert_429(r, "Throttling.AllocationQuota")
        assert "2 unfinished" in r.json()["message"], r
        # Burst of 3 used up: the rate limit answers now.
        r = srv.query(tid_of(srv.submit(t2v(), key=OTHER_KEY)), key=OTHER_KEY)
        assert r.status == 200, r
        r = srv.submit(t2v(), key=OTHER_KEY)  # queue: 3 pending of 3
        assert_429(r, "Throttling")
        r = srv.query("01900000-0000-7000-8000-000000000000", key=OTHER_KEY)
        assert_429(r, "Throttling.RateQuota")
        time.sleep(1.1)  # a token comes back
        r = srv.query("01900000-0000-7000-8000-000000000000", key=OTHER_KEY)
        assert r.status == 200, r
    finally:
        srv.stop()
        srv.cleanup()


# ------------------------------------------------------ deadline, leases

@case
def engine_deadline_fails_the_task():
    srv = Server(args=["--workers", "1", "--deadline", "1s"]).start()
    try:
        tid = tid_of(srv.submit(t2v(resolution="1080P", duration=15)))
        body = srv.wait(tid, timeout=60)["output"]
        assert body["task_status"] == "FAILED", body
        assert body["code"] == "InternalError.Timeout", body
        assert "1 s" in body["message"], body
        assert not os.listdir(os.path.join(srv.data, "results"))
    finally:
        srv.stop()
        srv.cleanup()


def stop_outside_a_write(srv, data):
    """SIGSTOP srv, but not while it holds SQLite's write lock: stopped
    inside a write transaction (a lease renewal's fsync, under load), it
    would lock every other process out of the database, which is SQLite's
    single writer, not the scenario under test. Tries until the database
    is writable with srv stopped."""
    for _ in range(50):
        srv.proc.send_signal(signal.SIGSTOP)
        db = sqlite3.connect(os.path.join(data, "paddock.db"), timeout=0.2)
        try:
            db.execute("BEGIN IMMEDIATE")
            db.rollback()
            return
        except sqlite3.OperationalError:
            srv.proc.send_signal(signal.SIGCONT)
            time.sleep(0.05)
        finally:
            db.close()
    raise AssertionError("never found the server outside a write")


@case
def a_worker_that_lost_its_lease_does_not_overwrite():
    """Process A hangs (SIGSTOP) mid-render; its lease runs out; process B
    rescues and finishes the task; A wakes up, learns at its next renewal
    (or at its commit) that the lease is gone, and stops and discards its
    work: one result, B's."""
    data = tempfile.mkdtemp(prefix="paddock-lease-")
    a = Server(data=data, args=["--workers", "1", "--lease", "1s"])
    b = None
    try:
        a.start()
        tid = tid_of(a.submit(t2v(resolution="720P", duration=8, seed=9)))
        a.wait(tid, want=("RUNNING",))
        stop_outside_a_write(a, data)
        b = Server(data=data, args=["--workers", "1", "--lease", "1s"])
        b.log_path = os.path.join(data, "server-b.log")
        b.start()
        body = b.wait(tid, timeout=120)["output"]
        assert body["task_status"] == "SUCCEEDED", body
        a.proc.send_signal(signal.SIGCONT)
        deadline = time.time() + 120
        while "lease lost" not in a.log_text():
            assert time.time() < deadline, a.log_text()[-3000:]
            time.sleep(0.2)
        result, attempt = db_rows(data, "SELECT result, attempt FROM tasks "
                                  "WHERE task_id = ?", (tid,))[0]
        assert attempt == 2 and result == "%s-2.mp4" % tid, (result, attempt)
        files = [f for f in os.listdir(os.path.join(data, "results"))
                 if f.startswith(tid)]
        assert files == [result], files
        assert b.get_url(body["video_url"]).status == 200
    finally:
        if a.proc:
            a.proc.send_signal(signal.SIGCONT)
            a.stop(check=False)
        if b:
            b.stop()
        shutil.rmtree(data, ignore_errors=True)


@case
def attempt_limit_ends_in_timeout():
    """A task whose worker dies on every attempt fails after the limit."""
    data = tempfile.mkdtemp(prefix="paddock-attempts-")
    try:
        srv = Server(data=data, args=["--workers", "0"]).start()
        tid = tid_of(srv.submit(t2v(resolution="1080P", duration=15)))
        srv.stop()
        for attempt in (1, 2):
            srv = Server(data=data, args=["--workers", "1", "--lease", "1s",
                                          "--max-attempts", "2"]).start()
            deadline = time.time() + 30
            while db_rows(data, "SELECT status, attempt FROM tasks WHERE "
                          "task_id = ?", (tid,))[0] != ("RUNNING", attempt):
                assert time.time() < deadline, "attempt %d never ran" % attempt
                time.sleep(0.1)
            srv.kill()
        srv = Server(data=data, args=["--workers", "0", "--lease", "1s",
                                      "--max-attempts", "2"]).start()
        body = srv.wait(tid, timeout=30)["output"]
        assert body["task_status"] == "FAILED", body
        assert body["code"] == "InternalError.Timeout", body
        assert "2 attempts" in body["message"], body
        srv.stop()
    finally:
        shutil.rmtree(data, ignore_errors=True)


@case
def sigterm_lets_running_tasks_finish_within_grace():
    srv = Server(args=["--workers", "1", "--grace", "60s"]).start()
    try:
        tid = tid_of(srv.submit(t2v(resolution="480P", duration=5)))
        srv.wait(tid, want=("RUNNING",))
        srv.stop()  # waits for the render, then exits 0
        status = db_rows(srv.data, "SELECT status FROM tasks WHERE "
                         "task_id = ?", (tid,))[0][0]
        assert status == "SUCCEEDED", status
    finally:
        srv.cleanup()


# ------------------------------------------------------------------ keys

def paddock(*args, data):
    import subprocess
    from lib import BIN
    return subprocess.run([BIN, *args, "--data", data], capture_output=True,
                          text=True, timeout=60)


@case
def keys_cli_create_list_revoke_within_a_second():
    srv = Server(args=["--workers", "0"]).start()
    try:
        made = paddock("keys", "create", "--name", "ci-key", data=srv.data)
        assert made.returncode == 0, made
        secret = made.stdout.strip()
        assert secret.startswith("pdk_"), made
        assert secret not in made.stderr
        listed = paddock("keys", "list", data=srv.data)
        assert "ci-key" in listed.stdout and "active" in listed.stdout, listed
        assert secret not in listed.stdout, "the secret is shown only once"
        key_id = [line.split()[0] for line in listed.stdout.splitlines()
                  if "ci-key" in line][0]
        deadline = time.time() + 5  # the server rereads keys each second
        while srv.submit(t2v(), key=secret).status != 200:
            assert time.time() < deadline, "new key never accepted"
            time.sleep(0.1)
        revoked = paddock("keys", "revoke", key_id, data=srv.data)
        assert revoked.returncode == 0, revoked
        t0 = time.time()
        while srv.query("01900000-0000-7000-8000-000000000000",
                        key=secret).status != 401:
            assert time.time() - t0 < 2.0, "revocation took over a second"
            time.sleep(0.05)
        assert "revoked" in paddock("keys", "list", data=srv.data).stdout
        bad = paddock("keys", "revoke", "nope", data=srv.data)
        assert bad.returncode == 1 and "no key nope" in bad.stderr, bad
        usage = paddock("keys", "frobnicate", data=srv.data)
        assert usage.returncode == 2, usage
    finally:
        srv.stop()
        srv.cleanup()


@case
def a_final_attempt_removes_the_files_of_earlier_ones():
    """A crash between an attempt's rename into results/ and its commit
    leaves that attempt's file; the attempt that ends the task removes it
    (here the task was claimed once before, attempt 1 left its file)."""
    data = tempfile.mkdtemp(prefix="paddock-attempts-")
    try:
        srv = Server(data=data, args=["--workers", "0"]).start()
        tid = srv.submit(t2v(seed=5)).json()["output"]["task_id"]
        srv.stop()
        db = sqlite3.connect(os.path.join(data, "paddock.db"))
        db.execute("UPDATE tasks SET attempt = 1 WHERE task_id = ?", (tid,))
        db.commit()
        db.close()
        orphan = os.path.join(data, "results", "%s-1.mp4" % tid)
        with open(orphan, "wb") as f:
            f.write(b"attempt 1, never committed")
        srv = Server(data=data, args=["--workers", "1"]).start()
        out = srv.wait(tid)["output"]
        assert out["task_status"] == "SUCCEEDED", out
        assert "%s-2.mp4" % tid in out["video_url"], out
        assert sorted(os.listdir(os.path.join(data, "results"))) == \
            ["%s-2.mp4" % tid]
        srv.stop()
    finally:
        shutil.rmtree(data, ignore_errors=True)


@case
def a_rescue_at_the_last_attempt_removes_its_file():
    """A crash between the last attempt's rename and its commit: the rescue
    fails the task (no attempt left), and removes that attempt's file,
    which no later attempt will."""
    data = tempfile.mkdtemp(prefix="paddock-last-attempt-")
    try:
        srv = Server(data=data, args=["--workers", "1"]).start()
        keep = srv.submit(t2v(seed=7)).json()["output"]["task_id"]
        assert srv.wait(keep)["output"]["task_status"] == "SUCCEEDED"
        srv.stop()
        srv = Server(data=data, args=["--workers", "0"]).start()
        tid = srv.submit(t2v(seed=6)).json()["output"]["task_id"]
        srv.stop()
        db = sqlite3.connect(os.path.join(data, "paddock.db"))
        # As a claim leaves it (scheduled_ms is the first claim's time).
        db.execute("UPDATE tasks SET status = 'RUNNING', attempt = 3, "
                   "scheduled_ms = submit_ms + 1, "
                   "lease_owner = 'gone/1/0', lease_until = 1 "
                   "WHERE task_id = ?", (tid,))
        db.commit()
        db.close()
        results = os.path.join(data, "results")
        for a in (2, 3):
            with open(os.path.join(results, "%s-%d.mp4" % (tid, a)),
                      "wb") as f:
                f.write(b"renamed, never committed")
        before = sorted(os.listdir(results))
        assert len(before) == 3, before
        srv = Server(data=data,
                     args=["--workers", "0", "--max-attempts", "3"]).start()
        out = srv.wait(tid)["output"]
        assert out["task_status"] == "FAILED", out
        assert out["code"] == "InternalError.Timeout", out
        deadline = time.time() + 10
        while time.time() < deadline:
            left = [f for f in os.listdir(results) if f.startswith(tid)]
            if not left:
                break
            time.sleep(0.05)
        assert left == [], left
        # The other task's result stays, and is still served.
        assert [f for f in os.listdir(results) if f.startswith(keep)], \
            os.listdir(results)
        srv.stop()
    finally:
        shutil.rmtree(data, ignore_errors=True)


# ------------------------------------------------------------- crash test

@case
def crash_test_nothing_acknowledged_is_lost():
    import random
    rnd = random.Random(20261129)
    data = tempfile.mkdtemp(prefix="paddock-crash-")
    args = ["--workers", "2", "--lease", "2s"]
    acked, kills = [], 0
    try:
        srv = Server(data=data, args=args).start()
        while len(acked) < 200:
            try:
                r = srv.submit(t2v(prompt="crash %d" % len(acked),
                                   seed=len(acked)), headers=None)
                if r.status == 200:
                    acked.append(r.json()["output"]["task_id"])
            except OSError:
                pass  # the server is down: nothing was acknowledged
            if len(acked) % 35 == 34 and kills < 6:
                time.sleep(rnd.uniform(0, 0.5))
                srv.kill()
                kills += 1
                srv = Server(data=data, args=args).start()
        deadline = time.time() + 300
        for tid in acked:
            srv.wait(tid, timeout=max(1, deadline - time.time()))
        # The end state, after a drain: an attempt whose lease expired while
        # it rendered (a stalled process; the lease is 2 s) may still be
        # finishing when its task's rerun has SUCCEEDED, and renames its
        # file before its commit is refused and it removes it again.
        srv.stop()
        rows = {t: (s, a) for t, s, a in
                db_rows(data, "SELECT task_id, status, attempt FROM tasks")}
        statuses = [rows[t][0] if t in rows else None for t in acked]
        assert None not in statuses, "an acknowledged task was lost"
        succeeded = [t for t in acked if rows[t][0] == "SUCCEEDED"]
        files = os.listdir(os.path.join(data, "results"))
        logs = "".join(open(os.path.join(data, f), errors="replace").read()
                       for f in os.listdir(data) if f.endswith(".log"))
        for t in acked:
            mine = [f for f in files if f.startswith(t)]
            said = [ln for ln in logs.splitlines() if t in ln]
            assert len(mine) == (1 if rows[t][0] == "SUCCEEDED" else 0), \
                (t, rows[t], mine, said)
        for t in succeeded:
            # At most once: the line follows the commit, so a SIGKILL
            # between the two may leave none (the store says SUCCEEDED).
            n = logs.count('msg="task succeeded" task_id=%s' % t)
            assert n <= 1, (t, n)
        print("crash test: %d acknowledged, %d SUCCEEDED, %d FAILED, "
              "%d kills" % (len(acked), len(succeeded),
                            statuses.count("FAILED"), kills), flush=True)
        assert kills >= 5
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
