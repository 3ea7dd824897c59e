"""Separate processes on one store: an API-only node (serve --workers 0)
and `paddock worker` render hosts sharing its data directory. (The same on
PostgreSQL with many hosts is the cluster test of the multi-node issue.)"""

import os
import shutil
import signal
import subprocess
import tempfile
import time

from lib import BIN, Server, case, main, t2v


class Worker:
    def __init__(self, data, *args):
        self.log = open(os.path.join(data, "worker.log"), "ab")
        self.proc = subprocess.Popen(
            [BIN, "worker", "--data", data, *args], stdout=subprocess.PIPE,
            stderr=self.log)
        line = self.proc.stdout.readline().decode()
        assert "worker running" in line, line

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=60)
        self.proc.stdout.close()
        self.log.close()
        assert rc == 0, rc


@case
def api_node_and_worker_processes():
    data = tempfile.mkdtemp(prefix="paddock-nodes-")
    api = Server(data=data, args=["--workers", "0"]).start()
    workers = []
    try:
        ids = [api.submit(t2v(seed=i)).json()["output"]["task_id"]
               for i in range(6)]
        time.sleep(0.5)
        q = api.query(ids[0]).json()["output"]
        assert q["task_status"] == "PENDING", "the API node renders nothing"
        workers = [Worker(data, "--workers", "1"), Worker(data, "--workers",
                                                          "2")]
        for tid in ids:
            body = api.wait(tid, timeout=120)
            assert body["output"]["task_status"] == "SUCCEEDED", body
            assert api.get_url(body["output"]["video_url"]).status == 200
        logs = open(os.path.join(data, "worker.log"), errors="replace").read()
        owners = {line.split("owner=")[1].split()[0] for line in
                  logs.splitlines() if 'msg="working"' in line}
        assert len(owners) == 2, owners
    finally:
        for w in workers:
            w.stop()
        api.stop()
        shutil.rmtree(data, ignore_errors=True)


@case
def worker_needs_render_threads():
    data = tempfile.mkdtemp(prefix="paddock-nodes-")
    try:
        p = subprocess.run([BIN, "worker", "--data", data, "--workers", "0"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0 and "workers" in p.stderr, p
        p = subprocess.run([BIN, "worker", "--help"], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 0 and "shared store" in p.stdout, p
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
