"""Nothing acknowledged is lost: SIGKILL the server after submits are
acknowledged and before they finish; a restart finishes every one. And the
first-start key: minted, printed once, kept as a hash, valid after restart.
"""

import json
import os
import signal
import shutil
import socket
import sqlite3
import tempfile
import time

from lib import KEY, Server, case, main, t2v


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
        wrong = key[:-1] + ("1" if key.endswith("0") else "0")
        assert srv.query(tid, key=wrong).status == 401
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


def raw_request(port, head, body=b""):
    """A request on a new connection; the socket, left open."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(head.encode() + body)
    return s


def read_answer(s):
    """(status, headers, body) of one answer; the server closes after it
    or gives Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in
               (ln.split(":", 1) for ln in lines[1:])}
    want = int(headers.get("content-length", "0"))
    while len(body) < want:
        chunk = s.recv(65536)
        assert chunk, body
        body += chunk
    return int(lines[0].split()[1]), headers, body


@case
def sigterm_answers_new_requests_503_and_finishes_old_ones():
    """At SIGTERM, a request in progress (here a submit whose body is still
    arriving) is finished and answered; one that begins afterwards gets 503
    ServiceUnavailable with Retry-After and Connection: close at once; then
    the server exits cleanly."""
    srv = Server(args=["--workers", "0"]).start()
    try:
        body = json.dumps(t2v(seed=7)).encode()
        slow = raw_request(srv.port,
                           "POST /api/v1/services/aigc/video-generation/"
                           "video-synthesis HTTP/1.1\r\nHost: x\r\n"
                           "Authorization: Bearer %s\r\n"
                           "X-DashScope-Async: enable\r\n"
                           "Content-Type: application/json\r\n"
                           "Content-Length: %d\r\n\r\n" % (KEY, len(body)),
                           body[:10])
        time.sleep(0.3)  # the request has begun
        srv.proc.send_signal(signal.SIGTERM)
        deadline = time.time() + 30
        while "shutting down" not in srv.log_text():
            assert time.time() < deadline, srv.log_text()
            time.sleep(0.05)
        late = raw_request(srv.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n"
                           "\r\n")
        status, headers, answer = read_answer(late)
        assert status == 503, (status, answer)
        err = json.loads(answer)
        assert err["code"] == "ServiceUnavailable", err
        assert "shutting down" in err["message"], err
        assert headers.get("retry-after") == "1", headers
        assert headers.get("connection", "").lower() == "close", headers
        late.close()
        # The first submit, completed now, is taken and answered.
        slow.sendall(body[10:])
        status, headers, answer = read_answer(slow)
        assert status == 200, (status, answer)
        tid = json.loads(answer)["output"]["task_id"]
        slow.close()
        assert srv.proc.wait(timeout=60) == 0, srv.log_text()[-3000:]
        srv.proc.stdout.close()
        srv.log.close()
        srv.proc = None
        # It was stored: a restart on the same data knows it.
        srv2 = Server(data=srv.data, args=["--workers", "0"]).start()
        try:
            out = srv2.query(tid).json()["output"]
            assert out["task_status"] == "PENDING", out
        finally:
            srv2.stop()
    finally:
        srv.cleanup()


if __name__ == "__main__":
    main()
