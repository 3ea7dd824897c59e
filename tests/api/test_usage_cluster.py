"""Quotas across nodes (docs/extensions.md, "Usage"), through tests/pg.sh
(PADDOCK_TEST_PG): two API nodes on one PostgreSQL, 200 concurrent
submits of one key whose quota is 50 tasks' seconds: exactly 50 are
accepted, every other answers the documented refusal (DashScope 400
Arrearage, TTAPI 402), and the ledger holds exactly the 50."""

import os
import shutil
import subprocess
import tempfile
import threading
import time

from lib import BIN, Server, case, main, t2v

PG = os.environ.get("PADDOCK_TEST_PG")
ARREARS = "Access denied, please make sure your account is in good standing."


def fresh_database(name):
    for sql in ("DROP DATABASE IF EXISTS " + name, "CREATE DATABASE " + name):
        subprocess.run(["psql", "-q", PG, "-c", sql], check=True,
                       capture_output=True)
    return PG.rsplit("/", 1)[0] + "/" + name


def rows(store, sql):
    out = subprocess.run(["psql", "-qAtX", store, "-c", sql], check=True,
                         capture_output=True, text=True).stdout
    return [line.split("|") for line in out.splitlines() if line]


@case
def quota_is_exact_across_two_nodes():
    assert PG, "PADDOCK_TEST_PG is not set (run through tests/pg.sh)"
    store = fresh_database("paddock_usage_cluster")
    data = tempfile.mkdtemp(prefix="paddock-usage-cluster-")
    admin = subprocess.run(
        [BIN, "keys", "create", "--admin", "--data", data, "--store", store],
        check=True, capture_output=True).stdout.decode().strip()
    # No workers: every accepted task keeps its hold open.
    args = ["--workers", "0", "--store", store, "--rate-limit", "0"]
    nodes = [Server(data=data, args=args).start(),
             Server(data=data, args=args).start()]
    try:
        r = nodes[0].request(
            "POST", "/api/v1/keys",
            {"name": "fifty", "quota": {"seconds": 150, "period": "day"}},
            {"Authorization": "Bearer " + admin,
             "Content-Type": "application/json"})
        assert r.status == 200, r
        key = r.json()["output"]["key"]
        # The other node knows the new key from its next reload (a second).
        deadline = time.time() + 10
        while nodes[1].request("GET", "/api/v1/usage", headers={
                "Authorization": "Bearer " + key}).status != 200:
            assert time.time() < deadline, "node 2 never took the key"
            time.sleep(0.1)
        answers, lock = [], threading.Lock()

        def submit(i):
            dialect = "ttapi" if i % 2 else "dashscope"
            r = nodes[i % 2].submit(t2v(prompt="quota %d" % i, duration=3),
                                    key=key, dialect=dialect)
            with lock:
                answers.append((dialect, r))

        threads = [threading.Thread(target=submit, args=(i,))
                   for i in range(200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ok = [r for _, r in answers if r.status == 200]
        refused = [(d, r) for d, r in answers if r.status != 200]
        assert len(ok) == 50, (len(ok), [r for _, r in refused[:3]])
        for dialect, r in refused:
            if dialect == "dashscope":
                assert r.status == 400 and r.json()["code"] == "Arrearage", r
            else:
                assert r.status == 402 and r.json()["status"] == "FAILED", r
            assert r.json()["message"] == ARREARS, r
        held = rows(store, "SELECT count(*), sum(cs) FROM ledger "
                    "WHERE phase = 0")
        assert held == [["50", "15000"]], held
        acc = rows(store, "SELECT held_cs FROM accounts")
        assert acc == [["15000"]], acc
        print("usage cluster: 200 concurrent submits on 2 nodes, quota of "
              "50 tasks: %d accepted, %d refused" % (len(ok), len(refused)),
              flush=True)
    finally:
        for n in nodes:
            n.stop()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
