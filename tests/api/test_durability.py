"""Nothing acknowledged is lost: SIGKILL the server after submits are
acknowledged and before they finish; a restart finishes every one. And the
first-start key: minted, printed once, kept as a hash, valid after restart.
"""

import os
import shutil
import sqlite3
import tempfile
import time

from lib import Server, case, main, t2v


@case
def sigkill_then_restart():
    data = tempfile.mkdtemp(prefix="paddock-crash-")
    try:
        srv = Server(data=data, args=["--workers", "1", "--lease", "2s"])
        srv.start()
        ids = []
        for i in range(6):
            r = srv.submit(t2v(seed=100 + i, resolution="720P"))
            assert r.status == 200, r
            ids.append(r.json()["output"]["task_id"])
        # Kill it while the first render is under way.
        srv.wait(ids[0], want=("RUNNING", "SUCCEEDED"))
        srv.kill()

        srv = Server(data=data, args=["--workers", "2", "--lease", "2s"])
        srv.start()
        seen = {}
        for tid in ids:
            body = srv.wait(tid, timeout=300)
            assert body["output"]["task_status"] == "SUCCEEDED", body
            r = srv.get_url(body["output"]["video_url"])
            assert r.status == 200 and r.body[4:8] == b"ftyp", r
            seen[tid] = r.body
        srv.stop()
        # Each task has exactly one result file, and no render leftovers.
        results = os.listdir(os.path.join(data, "results"))
        for tid in ids:
            assert sum(1 for f in results if f.startswith(tid)) == 1, \
                (tid, results)
        assert os.listdir(os.path.join(data, "tmp")) == []
        print("  %d acknowledged, %d succeeded after SIGKILL + restart" %
              (len(ids), len(seen)))
    finally:
        shutil.rmtree(data, ignore_errors=True)


@case
def first_start_mints_a_key():
    data = tempfile.mkdtemp(prefix="paddock-key-")
    try:
        srv = Server(data=data, keys=()).start()
        text = "".join(srv.stdout_lines)
        key = [w for w in text.split() if w.startswith("pdk_")]
        assert len(key) == 1, text
        key = key[0]
        r = srv.submit(t2v(), key=key)
        assert r.status == 200, r
        tid = r.json()["output"]["task_id"]
        srv.stop()
        # At rest only a salted hash: the secret is nowhere in the data.
        db = sqlite3.connect(os.path.join(data, "paddock.db"))
        rows = db.execute("SELECT key_id, hash FROM keys").fetchall()
        db.close()
        assert len(rows) == 1 and len(rows[0][1]) == 32, rows
        for root, _, files in os.walk(data):
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    assert key.encode() not in fh.read(), f
        # A restart prints no new key, and the old one still works.
        srv = Server(data=data, keys=()).start()
        assert "pdk_" not in "".join(srv.stdout_lines)
        assert srv.query(tid, key=key).json()["output"]["task_id"] == tid
        assert srv.query(tid, key=key[:-1] + "0").status == 401
        srv.stop()
    finally:
        shutil.rmtree(data, ignore_errors=True)


@case
def sigterm_gives_running_tasks_back():
    data = tempfile.mkdtemp(prefix="paddock-term-")
    try:
        srv = Server(data=data, args=["--workers", "1", "--grace", "0"]).start()
        r = srv.submit(t2v(resolution="1080P", duration=15))
        tid = r.json()["output"]["task_id"]
        srv.wait(tid, want=("RUNNING",))
        t0 = time.time()
        srv.stop()  # no grace: must not wait for the 15 s render
        assert time.time() - t0 < 20
        db = sqlite3.connect(os.path.join(data, "paddock.db"))
        status = db.execute("SELECT status FROM tasks WHERE task_id = ?",
                            (tid,)).fetchone()[0]
        db.close()
        assert status == "PENDING", status
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
