"""Many nodes on one PostgreSQL (run through tests/pg.sh, which sets
PADDOCK_TEST_PG): two API nodes and three `paddock worker` processes on a
shared data directory; 300 tasks across both API nodes while a worker is
SIGKILLed mid-render and an API node restarts; then PostgreSQL itself
restarts under load. Nothing acknowledged is lost, nothing runs to
SUCCEEDED twice, every link works from both API nodes."""

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse

from lib import BIN, KEY, Server, case, main, t2v

PG = os.environ.get("PADDOCK_TEST_PG")
PG_CTL = os.environ.get("PADDOCK_TEST_PG_CTL")


def fresh_database(name):
    subprocess.run(["psql", "-q", PG, "-c", "DROP DATABASE IF EXISTS " + name],
                   check=True, capture_output=True)
    subprocess.run(["psql", "-q", PG, "-c", "CREATE DATABASE " + name],
                   check=True, capture_output=True)
    return PG.rsplit("/", 1)[0] + "/" + name


class Worker:
    def __init__(self, data, store, n, args=()):
        self.log_path = os.path.join(data, "worker-%d.log" % n)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [BIN, "worker", "--data", data, "--store", store, "--workers",
             "1", "--lease", "3s"] + list(args), stdout=subprocess.PIPE,
            stderr=self.log)
        line = self.proc.stdout.readline().decode()
        assert "worker running" in line, line

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc.stdout.close()
        self.log.close()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=120)
        self.proc.stdout.close()
        self.log.close()
        assert rc == 0, (rc, open(self.log_path, errors="replace").read()[-3000:])


def rows(store, sql):
    out = subprocess.run(["psql", "-qAtX", store, "-c", sql], check=True,
                         capture_output=True, text=True).stdout
    return [line.split("|") for line in out.splitlines() if line]


def submit_all(nodes, n, acked, errors, start=0, pause=0.0):
    for i in range(start, start + n):
        time.sleep(pause)
        node = nodes[i % len(nodes)]
        try:
            r = node.submit(t2v(prompt="cluster %d" % i, seed=i))
            if r.status == 200:
                acked.append(r.json()["output"]["task_id"])
            else:
                errors.append(r.status)
        except OSError:
            errors.append("down")  # a node restarting: not acknowledged


@case
def two_api_nodes_three_workers():
    assert PG, "PADDOCK_TEST_PG is not set (run through tests/pg.sh)"
    store = fresh_database("paddock_cluster")
    data = tempfile.mkdtemp(prefix="paddock-cluster-")
    args = ["--workers", "0", "--store", store]
    api = [Server(data=data, args=args).start(),
           Server(data=data, args=args).start()]
    workers = [Worker(data, store, i) for i in range(3)]
    acked, errors = [], []
    try:
        submit_all(api, 100, acked, errors)
        # A worker dies mid-render; another takes its place.
        deadline = time.time() + 60
        while not rows(store, "SELECT 1 FROM tasks WHERE status = "
                       "'RUNNING' LIMIT 1"):
            assert time.time() < deadline, "nothing ever ran"
            time.sleep(0.05)
        workers[0].kill()
        workers.append(Worker(data, store, 3))
        submit_all(api, 100, acked, errors, start=100)
        # An API node restarts.
        api[1].stop()
        api[1] = Server(data=data, args=args).start()
        submit_all(api, 100, acked, errors, start=200)
        assert len(acked) == 300, (len(acked), errors[:5])
        deadline = time.time() + 600
        for tid in acked:
            body = api[0].wait(tid, timeout=max(1, deadline - time.time()))
            assert body["output"]["task_status"] == "SUCCEEDED", body
            link = body["output"]["video_url"]
            u = urllib.parse.urlsplit(link)
            for node in api:  # the link works on every API node
                r = node.request("HEAD", u.path + "?" + u.query)
                assert r.status == 200, (node.port, r)
        files = os.listdir(os.path.join(data, "results"))
        for tid in acked:
            assert len([f for f in files if f.startswith(tid)]) == 1, tid
        # Info lines reach the logs within LOG_FLUSH_MS (50 ms): poll.
        deadline = time.time() + 10
        while True:
            logs = "".join(open(os.path.join(data, f),
                                errors="replace").read()
                           for f in os.listdir(data) if f.endswith(".log"))
            seen = {t: logs.count('msg="task succeeded" task_id=%s' % t)
                    for t in acked}
            twice = [t for t, n in seen.items() if n > 1]
            missing = [t for t, n in seen.items() if n == 0]
            if (not twice and not missing) or time.time() > deadline:
                break
            time.sleep(0.05)
        assert not twice, twice[:5]
        # The SIGKILLed worker loses the info lines of its last batch (at
        # most 50 ms, docs/architecture.md, log/): with one render thread
        # and renders longer than that, at most one task it ended.
        assert len(missing) <= 1, missing[:5]
        print("cluster: 300 acknowledged and SUCCEEDED across 2 API nodes "
              "and 4 workers (1 killed), %d submits refused while a node "
              "restarted" % len(errors), flush=True)
    finally:
        for w in workers[1:]:
            w.stop()
        for node in api:
            node.stop()
        shutil.rmtree(data, ignore_errors=True)


@case
def postgres_restart_under_load():
    """Submits go on while the database restarts (an immediate stop, as a
    crash or a failover looks): those refused get an answer (500/503),
    never a hang; once the database is back submits succeed again, and
    every acknowledged task SUCCEEDS. Counted by what happened before and
    after the restart, not by the clock, so a loaded machine's slow restart
    does not decide it."""
    assert PG and PG_CTL, "run through tests/pg.sh"
    store = fresh_database("paddock_restart")
    data = tempfile.mkdtemp(prefix="paddock-pgrestart-")
    api = Server(data=data, args=["--workers", "1", "--store", store]).start()
    acked, errors = [], []
    restarted = threading.Event()
    after = []  # acknowledged once the restart had completed
    try:
        def load():
            i = 0
            deadline = time.time() + 120
            while len(after) < 20 and time.time() < deadline:
                i += 1
                before = restarted.is_set()
                try:
                    r = api.submit(t2v(prompt="restart %d" % i, seed=i))
                    if r.status == 200:
                        acked.append(r.json()["output"]["task_id"])
                        if before:
                            after.append(acked[-1])
                    else:
                        errors.append(r.status)
                except OSError:
                    errors.append("down")
                time.sleep(0.05)
        t = threading.Thread(target=load)
        t.start()
        while len(acked) < 10:  # load before the restart
            assert t.is_alive(), errors[:5]
            time.sleep(0.05)
        subprocess.run(PG_CTL.split() + ["restart"], check=True,
                       capture_output=True)
        restarted.set()
        t.join()
        assert len(after) >= 20, ("no recovery", len(after), errors[:5])
        for tid in acked:
            body = api.wait(tid, timeout=300)
            assert body["output"]["task_status"] == "SUCCEEDED", body
        # Refused submits were refused with an answer, not a hang.
        assert all(e in (500, 503, "down") for e in errors), errors[:5]
        print("postgres restart: %d acknowledged (%d after the restart), "
              "all SUCCEEDED; %d refused during the restart" %
              (len(acked), len(after), len(errors)), flush=True)
    finally:
        api.stop()
        shutil.rmtree(data, ignore_errors=True)


@case
def workers_of_some_models():
    """paddock worker --models: a render host takes only the models it is
    given (names, or aliases for the models they mean); the rest wait for
    a host that takes them."""
    assert PG, "PADDOCK_TEST_PG is not set (run through tests/pg.sh)"
    store = fresh_database("paddock_models")
    data = tempfile.mkdtemp(prefix="paddock-models-")
    conf = os.path.join(data, "paddock.conf")
    with open(conf, "w") as f:
        f.write("alias.fast-t2v = happyhorse-1.0-t2v\n")
    routes = ["--config", conf, "--store", store]
    api = Server(data=data, args=["--workers", "0"] + routes).start()
    workers = []
    try:
        # An item that selects nothing is refused at start, by name.
        bad = subprocess.run([BIN, "worker", "--data", data] + routes +
                             ["--models", "happyhorse-1.0-t2v,nope"],
                             capture_output=True, text=True, timeout=60)
        assert bad.returncode == 1, (bad.returncode, bad.stderr)
        assert "models: 'nope' is not a model or alias" in bad.stderr, \
            bad.stderr
        # A host of another model leaves the t2v tasks alone.
        workers.append(Worker(data, store, 0, routes + [
            "--models", "happyhorse-1.0-i2v,happyhorse-1.0-r2v"]))
        ids = [api.submit(t2v(seed=i)).json()["output"]["task_id"]
               for i in range(3)]
        body = t2v(seed=9)
        body["model"] = "fast-t2v"  # an alias: stored as the model it means
        ids.append(api.submit(body).json()["output"]["task_id"])
        time.sleep(1.5)
        for tid in ids:
            body = api.query(tid).json()
            assert body["output"]["task_status"] == "PENDING", body
        # A host given the alias takes the model it means.
        workers.append(Worker(data, store, 1, routes + [
            "--models", "fast-t2v"]))
        for tid in ids:
            body = api.wait(tid, timeout=120)
            assert body["output"]["task_status"] == "SUCCEEDED", body
    finally:
        for w in workers:
            w.stop()
        api.stop()
        shutil.rmtree(data, ignore_errors=True)


def cached(node, tid, host="paddock.test"):
    """A query's bytes (with a fixed Host, so two nodes' answers compare)
    and whether the node's answer cache served it."""
    def hits():
        r = node.request("GET", "/metrics",
                         headers={"Authorization": "Bearer " + KEY})
        for line in r.body.decode().splitlines():
            if line.startswith('paddock_query_cache_lookups_total'
                               '{result="hit"}'):
                return int(line.split()[1])
        raise AssertionError("no cache hits in /metrics")
    before = hits()
    r = node.request("GET", "/api/v1/tasks/" + tid, headers={
        "Authorization": "Bearer " + KEY, "Host": host})
    assert r.status == 200, r
    return r.body, hits() > before


def without_id(body):
    return body[:15] + b"-" * 36 + body[51:]


@case
def an_end_on_another_node_is_seen_at_the_next_query():
    """The answer caches of two API nodes: a cancel on one, and a finish
    by a render host, show on the other at its next query (live tasks are
    read from the store each time); afterwards both nodes answer from
    memory, the same bytes but for request_id."""
    assert PG, "PADDOCK_TEST_PG is not set (run through tests/pg.sh)"
    store = fresh_database("paddock_qcache")
    data = tempfile.mkdtemp(prefix="paddock-qcache-")
    args = ["--workers", "0", "--store", store]
    a = Server(data=data, args=args).start()
    b = Server(data=data, args=args).start()
    worker = None
    try:
        auth = {"Authorization": "Bearer " + KEY}
        canceled = a.submit(t2v(seed=1)).json()["output"]["task_id"]
        rendered = a.submit(t2v(seed=2)).json()["output"]["task_id"]
        for tid in (canceled, rendered):
            body, hit = cached(b, tid)
            assert b'"task_status":"PENDING"' in body and not hit, body
        r = a.request("POST", "/api/v1/tasks/%s/cancel" % canceled,
                      headers=auth)
        assert r.status == 200, r
        body, hit = cached(b, canceled)
        assert b'"task_status":"CANCELED"' in body and not hit, body
        body, hit = cached(b, rendered)
        assert b'"task_status":"PENDING"' in body and not hit, body

        worker = Worker(data, store, 0)
        deadline = time.time() + 120
        while True:  # polled on b only: the finish was elsewhere
            body, hit = cached(b, rendered)
            if b'"task_status":"SUCCEEDED"' in body:
                break
            assert not hit, body
            assert time.time() < deadline, body
            time.sleep(0.05)
        for tid in (canceled, rendered):
            first, _ = cached(a, tid)
            again, hit_a = cached(a, tid)
            kept, hit_b = cached(b, tid)
            assert hit_a and hit_b, tid
            assert without_id(first) == without_id(again) == \
                without_id(kept), (first, kept)
    finally:
        if worker:
            worker.stop()
        a.stop()
        b.stop()
        shutil.rmtree(data, ignore_errors=True)


@case
def a_stream_on_an_api_node_hears_a_render_host():
    """The status stream on an API node (--workers 0) while a separate
    `paddock worker` claims, reports progress and finishes: every step
    arrives by NOTIFY. The keep-alive (and its re-read) is a minute, longer
    than the whole run, so steps seen during the run came by notification."""
    from test_events import Stream
    assert PG, "PADDOCK_TEST_PG is not set (run through tests/pg.sh)"
    store = fresh_database("paddock_stream")
    data = tempfile.mkdtemp(prefix="paddock-stream-")
    api = Server(data=data, args=["--workers", "0", "--store", store,
                                  "--stream-keepalive", "60s"]).start()
    worker = None
    try:
        r = api.submit(t2v(seed=3), headers={"X-Paddock-Scenario": "run=3s"})
        assert r.status == 200, r
        tid = r.json()["output"]["task_id"]
        s = Stream(api, tid, timeout=120)
        assert s.status == 200, s.status
        first = s.next()
        assert first["event"] == "PENDING", first
        worker = Worker(data, store, 0)
        events = [first]
        while True:
            e = s.next()
            if e is None:
                break
            events.append(e)
        s.close()
        kinds = [e["event"] for e in events]
        assert kinds[-1] == "SUCCEEDED", kinds
        running = [e for e in events if e["event"] == "RUNNING"]
        assert len(running) >= 2, kinds  # the claim and a progress step
        ids = [e["id"] for e in events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
        assert s.comments == 0  # nothing came by the minute's re-read
    finally:
        if worker:
            worker.stop()
        api.stop()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
