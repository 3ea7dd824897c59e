#!/usr/bin/env python3
"""make bench: paddock's hot paths beside references measured in the same
run on the same machine (bench/README.md says what each row means).

Prints one table and writes it as JSON to bench/results/<timestamp>.json
and bench/results/latest.json. Targets get a verdict ("meets", "misses by
X%"); a missed target never fails the run. The exit status is 1 only when
something is broken: a server does not start, a request errors, a render
fails for a reason other than "not implemented yet".

BENCH_QUICK=1 runs every row briefly (CI). BENCH_ONLY=query,cpu,submit,
render,memory,parked,streams,flood,upload,relay,resident,hooks,scale runs
some rows.
Standard library only; every process is started here, on 127.0.0.1, and
stopped by its pid on exit.
"""

import argparse
import atexit
import ctypes
import datetime
import errno
import functools
import glob
import http.client
import http.server
import json
import os
import platform
import pwd
import re
import select
import selectors
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
ONLY = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))

KEY = "bench-key-0123456789"
SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"
# ~150 characters: the stored spec is then ~300 bytes (as in sqlite_raw.c).
PROMPT = ("a chestnut horse galloping along a wide beach at dawn, waves "
          "breaking behind it, low sun, long shadows, slow camera pan from "
          "left to right")

# How much of each row to run: full (make bench) and quick (CI, < 60 s).
P = {
    "wrk_threads": 2,
    "wrk_connections": 64,
    "wrk_rounds": 1 if QUICK else 3,    # alternated paddock / reference
    "wrk_seconds": 2 if QUICK else 4,   # per round
    "warmup_seconds": 0 if QUICK else 1,
    "render_runs": 1 if QUICK else 5,   # per task kind, different seeds
    "render_seconds": 5,
    "tasks": 1000 if QUICK else 10000,
    "conns": 1000 if QUICK else 10000,
    # parked: sandbox tasks in their run=DURATION delay at once (bench_parked)
    "parked": 1000 if QUICK else 10000,
    "parked_run_s": 10 if QUICK else 30,
    # streams: status streams open at once on one node (bench_streams)
    "streams": 1000 if QUICK else 10000,
    # scale: paddock worker processes on PostgreSQL (bench_scale)
    "scale_workers": [1, 2, 4],
    "scale_threads": 2,               # --workers of each worker process
    "scale_tasks": 100 if QUICK else 2000,  # the measured batch, per N
    "scale_warmup": 16 if QUICK else 100,
    "scale_connections": 8,           # keep-alive submit connections
    "scale_timeout": 120 if QUICK else 600,
    # relay: tasks relayed at once, each T s at the provider (bench_relay)
    "relay_tasks": 200 if QUICK else 2000,
    "relay_seconds": 5 if QUICK else 20,
    "relay_rate": 1000,  # the engine's rate=, above N / poll-max
    # resident: tasks at concurrency 1 (bench_resident)
    "resident_tasks": 5 if QUICK else 20,
}

# A render that fails with one of these is a task kind the sandbox does not
# do yet: its row reads "n/a (not implemented)" instead of breaking the run.
NOT_IMPLEMENTED = re.compile(
    r"does not render|cannot render|not implemented|not supported yet",
    re.I)


class Broken(Exception):
    """Something that should work did not: the run exits 1."""


class NotAvailable(Exception):
    """A row that cannot be measured yet (the feature does not exist)."""


# ------------------------------------------------------------ processes

_live = []  # every process started here that may still run
try:  # resolved before any fork: a child must not dlopen
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None


def _child_setup(drop_to=None):
    """preexec_fn: optionally drop root, then die with the bench."""
    def setup():
        if drop_to:
            os.setgroups([])
            os.setgid(drop_to[1])
            os.setuid(drop_to[0])
        if _prctl:  # PR_SET_PDEATHSIG: no orphan if the bench is killed
            _prctl(1, int(signal.SIGKILL))
    return setup


def spawn(cmd, drop_to=None, stop_sig=signal.SIGTERM, **kw):
    p = subprocess.Popen(cmd, preexec_fn=_child_setup(drop_to), **kw)
    p.stop_sig = stop_sig  # what _cleanup sends
    _live.append(p)
    return p


def file_tail(path, n):
    """The last n characters of a log file ("" when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")[-n:]
    except OSError:
        return ""


def stop(p, sig=signal.SIGTERM, timeout=30):
    """Signal p by its pid and wait; SIGKILL after timeout. Returns rc."""
    if p.poll() is None:
        try:
            p.send_signal(sig)
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in _live:
        _live.remove(p)
    return p.returncode


def _cleanup():
    # newest first: clients (paddock workers) before their servers
    # (PostgreSQL); each with its own stop signal (spawn's stop_sig)
    for p in reversed(list(_live)):
        stop(p, getattr(p, "stop_sig", signal.SIGTERM), timeout=10)


def _on_signal(signum, frame):
    raise SystemExit(128 + signum)


def run(cmd, timeout, env=None, drop_to=None):
    """Run a short command; Broken if it fails."""
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=timeout,
                           env=env, preexec_fn=_child_setup(drop_to))
    except subprocess.TimeoutExpired:
        raise Broken("%s: no result in %d s" % (cmd[0], timeout))
    if r.returncode != 0:
        raise Broken("%s exited %d: %s" % (
            " ".join(cmd[:3]), r.returncode,
            r.stderr.decode(errors="replace")[-800:]))
    return r.stdout.decode(errors="replace")


def proc_status(pid):
    """VmHWM and VmRSS of a process, in kB."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS"):
                out[k] = int(v.split()[0])
    return out


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        # the command may hold spaces and parentheses: ppid follows the
        # last ')'
        if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
            out.append(int(d))
    return out


def count_sockets(pid):
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_request(port, method, path, body=None, headers=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), \
            r.read()
    finally:
        conn.close()


# ------------------------------------------------------------ servers

class _Proc:
    """A paddock process started by the bench: its log in a file, its
    stdout drained by a thread, stopped by its pid."""

    what = "paddock"

    def _start(self, cmd, ready, timeout):
        """Run cmd; wait until ready(line) is true for a stdout line."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PADDOCK_")}
        env.update(getattr(self, "env", None) or {})
        log = open(self.log_path, "ab")
        self.proc = spawn(cmd, stdout=subprocess.PIPE, stderr=log, env=env)
        log.close()
        lines = []
        found = threading.Event()

        def read():  # then keep draining stdout so the process never blocks
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace")
                lines.append(line)
                if not found.is_set() and ready(line):
                    found.set()
        threading.Thread(target=read, daemon=True).start()
        if not found.wait(timeout):
            stop(self.proc, signal.SIGKILL)
            raise Broken("%s (%s) did not start: %s\n%s" % (
                self.what, self.name, "".join(lines), self.log_tail()))
        return self

    def log_tail(self, n=3000):
        return file_tail(self.log_path, n)

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if not self.proc:
            return
        rc = stop(self.proc, signal.SIGTERM, timeout=60)
        self.proc = None
        if rc != 0:
            raise Broken("%s (%s) exited %d on SIGTERM:\n%s" % (
                self.what, self.name, rc, self.log_tail()))


class Paddock(_Proc):
    """paddock serve on an ephemeral port of 127.0.0.1 (as tests/api)."""

    def __init__(self, binary, tmp, name, args=(), data=None, wrap=(),
                 env=None, log_level="warn"):
        self.binary = binary
        self.name = name
        self.data = data or os.path.join(tmp, name)
        os.makedirs(self.data, exist_ok=data is not None)
        self.args = list(args)
        self.wrap = list(wrap)  # a command paddock runs under (valgrind)
        self.env = env
        self.log_level = log_level
        self.proc = None
        self.port = None
        self.log_path = os.path.join(
            self.data, "server.log" if data is None else "%s.log" % name)

    def start(self, timeout=30):
        # Request log lines off by default, as nginx runs with access_log
        # off: those rows compare serving, not logging (--log-level warn).
        cmd = self.wrap + [self.binary, "serve", "--listen", "127.0.0.1:0",
                           "--data", self.data, "--api-key", KEY,
                           "--log-level", self.log_level] + self.args

        def ready(line):
            if "listening on http://" not in line:
                return False
            self.port = int(line.strip().rsplit(":", 1)[1])
            return True
        return self._start(cmd, ready, timeout)

    def request(self, method, path, body=None, headers=None):
        return http_request(self.port, method, path, body, headers)

    def submit(self, body):
        return self.request("POST", SUBMIT, json.dumps(body), {
            "Authorization": "Bearer " + KEY, "X-DashScope-Async": "enable",
            "Content-Type": "application/json"})

    def query(self, task_id):
        return self.request("GET", "/api/v1/tasks/" + task_id,
                            headers={"Authorization": "Bearer " + KEY})

    def wait(self, task_id, timeout=300):
        deadline = time.time() + timeout
        while True:
            status, _, body = self.query(task_id)
            if status != 200:
                raise Broken("query %s: HTTP %d %r" % (task_id, status,
                                                       body[:300]))
            doc = json.loads(body)
            if doc["output"]["task_status"] in ("SUCCEEDED", "FAILED",
                                                 "CANCELED", "UNKNOWN"):
                return doc
            if time.time() > deadline:
                raise Broken("task %s still %s after %d s" % (
                    task_id, doc["output"]["task_status"], timeout))
            time.sleep(0.02)

class Nginx:
    """nginx as an unprivileged foreground process with a generated
    minimal config in a temp dir: a static file server on 127.0.0.1."""

    def __init__(self, binary, tmp, name, files, nofile, connections=1024,
                 access_log=False):
        self.binary = binary
        self.connections = connections  # per worker: nginx preallocates
        self.access_log = access_log  # buffered as paddock's: 64k, 50 ms
        self.dir = os.path.join(tmp, name)
        self.www = os.path.join(self.dir, "www")
        os.makedirs(self.www)
        for fname, data in files.items():
            with open(os.path.join(self.www, fname), "wb") as f:
                f.write(data)
        self.nofile = nofile
        self.proc = None
        self.port = None

    def conf(self):
        d = self.dir
        temps = "".join("    %s_temp_path %s/%s;\n" % (t, d, t) for t in (
            "client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        return (
            "# generated by bench/bench.py\n"
            "daemon off;\n"
            "master_process on;\n"
            "worker_processes auto;\n"
            "worker_rlimit_nofile %d;\n"
            "pid %s/nginx.pid;\n"
            "error_log %s/error.log warn;\n"
            "events {\n"
            "    worker_connections %d;\n"
            "    use epoll;\n"
            "}\n"
            "http {\n"
            "    %s\n"
            "    server_tokens off;\n"
            "    sendfile on;\n"
            "    tcp_nopush on;\n"
            "    tcp_nodelay on;\n"
            "    open_file_cache max=64 inactive=60s;\n"
            "    keepalive_timeout 300s;\n"
            "    keepalive_requests 100000000;\n"
            "    types { application/json json; video/mp4 mp4; }\n"
            "    default_type application/octet-stream;\n"
            "%s"
            "    server {\n"
            "        listen 127.0.0.1:%d backlog=1024;\n"
            "        root %s;\n"
            "    }\n"
            "}\n") % (self.nofile, d, d, self.connections,
                      "access_log %s/access.log combined buffer=64k "
                      "flush=50ms;" % d if self.access_log else
                      "access_log off;", temps, self.port, self.www)

    def start(self, timeout=15):
        self.port = free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(self.conf())
        drop = None
        if os.geteuid() == 0:  # never run the reference as root
            pw = pwd.getpwnam("nobody")
            drop = (pw.pw_uid, pw.pw_gid)
            for base, dirs, files in os.walk(self.dir):
                for n in [base] + [os.path.join(base, x) for x in files]:
                    os.chown(n, pw.pw_uid, pw.pw_gid)
        self.log = os.path.join(self.dir, "error.log")
        self.proc = spawn([self.binary, "-p", self.dir, "-c", conf,
                           "-e", self.log],
                          drop_to=drop, stdout=subprocess.DEVNULL,
                          stderr=open(os.path.join(self.dir, "stderr"), "wb"))
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return self
            except OSError:
                time.sleep(0.05)
        err = ""
        for n in ("stderr", "error.log"):
            try:
                with open(os.path.join(self.dir, n)) as f:
                    err += f.read()[-1500:]
            except OSError:
                pass
        stop(self.proc, signal.SIGKILL)
        raise Broken("nginx did not start: " + err)

    def pids(self):
        return [self.proc.pid] + children(self.proc.pid)

    def rss_kb(self, field="VmRSS"):
        return sum(proc_status(p)[field] for p in self.pids())

    def stop(self):
        if self.proc:
            stop(self.proc, signal.SIGTERM, timeout=30)
            self.proc = None


class FileServer:
    """A loopback HTTP server for input media (what `python3 -m
    http.server` does, on a thread of this process)."""

    def __init__(self, directory):
        handler = functools.partial(_QuietHandler, directory=directory)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def url(self, name):
        return "http://127.0.0.1:%d/%s" % (self.port, name)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


# ------------------------------------------------------------ wrk

def wrk(ctx, url, seconds, body=None):
    """One wrk run; returns its BENCH_JSON summary plus rps. Broken on any
    socket error or non-2xx/3xx answer."""
    env = dict(os.environ, BENCH_KEY=KEY, BENCH_BODY=body or "")
    cmd = [ctx.tools["wrk"], "-t%d" % P["wrk_threads"],
           "-c%d" % P["wrk_connections"], "-d%ds" % seconds, "--latency",
           "-s", os.path.join(BENCH, "wrk.lua"), url]
    out = run(cmd, timeout=seconds + 60, env=env)
    m = re.search(r"^BENCH_JSON (\{.*\})$", out, re.M)
    if not m:
        raise Broken("wrk printed no summary:\n" + out[-1500:])
    r = json.loads(m.group(1))
    errors = {k: r[k] for k in ("connect", "read", "write", "status",
                                "timeout") if r[k]}
    if errors or r["requests"] == 0:
        raise Broken("wrk against %s: %d requests, errors %s" % (
            url, r["requests"], errors or "none"))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["bytes_per_response"] = round(r["bytes"] / r["requests"], 1)
    return r


def alternate(rounds, runners):
    """Run each runner once per round, alternating which goes first, so a
    noisy neighbour hits both sides alike. Returns a list per runner."""
    results = [[] for _ in runners]
    for i in range(rounds):
        order = list(range(len(runners)))
        if i % 2:
            order.reverse()
        for j in order:
            results[j].append(runners[j]())
    return results


# ------------------------------------------------------------ rows

def row(name, **kw):
    r = {"row": name, "paddock": None, "reference": None, "ratio": None,
         "target": None, "verdict": None}
    r.update(kw)
    return r


def verdict_at_least(value, target):
    if value >= target:
        return "meets"
    return "misses by %d%%" % round((1 - value / target) * 100)


def verdict_below(value, target):
    if value < target:
        return "meets"
    return "misses by %d%%" % round((value / target - 1) * 100)


def verdict_at_most(value, target):
    if value <= target:
        return "meets"
    return "misses by %d%%" % round((value / target - 1) * 100)


def t2v_body(prompt=PROMPT, **params):
    body = {"model": "happyhorse-1.0-t2v", "input": {"prompt": prompt},
            "parameters": {"resolution": "480P", "duration": 3}}
    body["parameters"].update(params)
    return body


def submit_ok(server, body):
    status, _, data = server.submit(body)
    if status != 200:
        raise Broken("submit: HTTP %d %r" % (status, data[:400]))
    return json.loads(data)["output"]["task_id"]


def succeeded_task(server):
    """A real SUCCEEDED task of `server` (rendered, so its answer has a
    signed video_url and usage): its id and the answer's bytes."""
    task = submit_ok(server, t2v_body("a horse running on a beach", seed=7))
    doc = server.wait(task)
    if doc["output"]["task_status"] != "SUCCEEDED":
        raise Broken("query row's task ended %s: %s" % (
            doc["output"]["task_status"], doc["output"].get("message")))
    status, _, body = server.query(task)
    out = json.loads(body)
    if status != 200 or "video_url" not in out["output"] or \
            "usage" not in out:
        raise Broken("query of a SUCCEEDED task lacks video_url/usage: %r"
                     % body[:400])
    return task, body


def bench_query(ctx):
    """GET /api/v1/tasks/{id} of a SUCCEEDED task vs nginx serving a static
    file of the same byte size; then both again with their access logs on
    (paddock's default log level; nginx's log buffered as paddock's is)."""
    s = ctx.own(Paddock(ctx.binary, ctx.tmp, "query").start())
    task, body = succeeded_task(s)
    # The same data, the access log on: one line per request.
    logged = ctx.own(Paddock(ctx.binary, ctx.tmp, "query-logged",
                             ["--workers", "0"], data=s.data,
                             log_level="info").start())
    ng = ctx.own(Nginx(ctx.tools["nginx"], ctx.tmp, "nginx-query",
                       {"task.json": body}, ctx.nofile).start())
    ng_log = ctx.own(Nginx(ctx.tools["nginx"], ctx.tmp, "nginx-query-log",
                           {"task.json": body}, ctx.nofile,
                           access_log=True).start())
    for n in (ng, ng_log):
        st, _, nbody = http_request(n.port, "GET", "/task.json")
        if st != 200 or len(nbody) != len(body):
            raise Broken("nginx answered %d with %d bytes" % (st, len(nbody)))
    urls = ["http://127.0.0.1:%d/api/v1/tasks/%s" % (s.port, task),
            "http://127.0.0.1:%d/task.json" % ng.port,
            "http://127.0.0.1:%d/api/v1/tasks/%s" % (logged.port, task),
            "http://127.0.0.1:%d/task.json" % ng_log.port]
    if P["warmup_seconds"]:
        for u in urls:
            wrk(ctx, u, P["warmup_seconds"])
    pr, nr, plr, nlr = alternate(P["wrk_rounds"], [
        functools.partial(wrk, ctx, u, P["wrk_seconds"]) for u in urls])
    for x in (ng, ng_log, logged, s):
        x.stop()
    raw = {"body_bytes": len(body), "paddock_rounds": pr, "nginx_rounds": nr,
           "paddock_logged_rounds": plr, "nginx_logged_rounds": nlr}
    rows = []
    for suffix, p_runs, n_runs in (("", pr, nr),
                                   (", access log on", plr, nlr)):
        p_rps = statistics.median(r["rps"] for r in p_runs)
        n_rps = statistics.median(r["rps"] for r in n_runs)
        p_p99 = statistics.median(r["p99_us"] for r in p_runs) / 1000
        n_p99 = statistics.median(r["p99_us"] for r in n_runs) / 1000
        rows += [
            row("query req/s" + suffix, paddock=p_rps, reference=n_rps,
                ref_name="nginx", unit="req/s", ratio=p_rps / n_rps,
                target="≥ 1.0× nginx",
                verdict=verdict_at_least(p_rps / n_rps, 1.0)),
            row("query p99" + suffix, paddock=p_p99, reference=n_p99,
                ref_name="nginx", unit="ms",
                ratio=p_p99 / n_p99 if n_p99 else None, target="< 5 ms",
                verdict=verdict_below(p_p99, 5.0)),
        ]
    rows[0]["note"] = "%d-byte body" % len(body)
    rows[0]["raw"] = raw
    rows[2]["note"] = ("paddock --log-level info (one line per request, "
                       "written in batches); nginx access_log buffer=64k "
                       "flush=50ms")
    return rows


# valgrind 3.19 cannot run the rdtscp in libhwy's timer probe (libhwy comes
# with libavcodec, through libjxl): bench/vg_shim.c stands in for it.
CPU_QUERIES = 200 if QUICK else 2000


def callgrind_costs(out_file, n):
    """Instructions per query from a callgrind profile: paddock's own code
    (functions whose source file is under src/), all user-space code, and
    the costliest of paddock's functions."""
    text = run(["callgrind_annotate", "--threshold=100", "--inclusive=no",
                out_file], timeout=120)
    total, own, top = 0, 0, []
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) (?:\([^)]*\) )?\s*(\S.*?):(\S+) \[", line)
        if not m:
            continue
        ir = int(m.group(1).replace(",", ""))
        total += ir
        path = m.group(2)
        if path.startswith("src/") or "/src/" in path and ROOT in path:
            own += ir
            top.append((ir, "%s:%s" % (os.path.basename(path), m.group(3))))
    top.sort(reverse=True)
    return own / n, total / n, [(name, round(ir / n)) for ir, name in top[:8]]


def bench_cpu(ctx):
    """Instructions per task query, counted by callgrind: the SUCCEEDED
    task's query CPU_QUERIES times over one keep-alive connection, on a
    server with one HTTP thread and its access log on (the default
    level), counted from the first of them to the last only."""
    names = ["query CPU, paddock's code", "query CPU, all user space"]
    vg = ctx.tools.get("valgrind")
    if not vg:
        return [row(n, paddock="n/a (no valgrind)", verdict="—")
                for n in names]
    s = ctx.own(Paddock(ctx.binary, ctx.tmp, "cpu").start())
    task, _ = succeeded_task(s)
    s.stop()
    out = os.path.join(s.data, "callgrind.out")
    env = {"LD_PRELOAD": ctx.tools["vg_shim"]} if ctx.tools.get("vg_shim") \
        else None
    cg = ctx.own(Paddock(ctx.binary, ctx.tmp, "cpu-callgrind",
                         ["--workers", "0", "--http-threads", "1"],
                         data=s.data, log_level="info", env=env,
                         wrap=[vg, "--tool=callgrind", "--instr-atstart=no",
                               "--callgrind-out-file=" + out]))
    cg.start(timeout=120)
    conn = http.client.HTTPConnection("127.0.0.1", cg.port, timeout=60)
    headers = {"Authorization": "Bearer " + KEY}

    def queries(n):
        for _ in range(n):
            conn.request("GET", "/api/v1/tasks/" + task, headers=headers)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise Broken("query under callgrind: HTTP %d" % r.status)
    queries(100)  # warm: the answer is cached, the key verified
    control = os.path.join(os.path.dirname(vg), "callgrind_control")
    run([control, "-i", "on", str(cg.pid)], timeout=60)
    queries(CPU_QUERIES)
    run([control, "-i", "off", str(cg.pid)], timeout=60)
    conn.close()
    cg.stop()
    own, total, top = callgrind_costs(out, CPU_QUERIES)
    note = "%d queries; paddock's costliest: %s" % (
        CPU_QUERIES, ", ".join("%s %d" % t for t in top))
    return [
        row(names[0], paddock=own, unit="instructions", target="≤ 15,000",
            verdict=verdict_at_most(own, 15000), note=note,
            raw={"own": own, "total": total, "top": top}),
        row(names[1], paddock=total, unit="instructions", target="—",
            verdict="—", note="libc, SQLite, libcrypto and paddock; not the "
                              "kernel"),
    ]


def bench_submit(ctx):
    """Durable DashScope t2v submits (no workers) vs one-row-per-commit
    SQLite inserts with the same durability."""
    s = ctx.own(Paddock(ctx.binary, ctx.tmp, "submit", [
        "--workers", "0", "--max-active", "0", "--max-queue", "0"]).start())
    body = json.dumps(t2v_body(), separators=(",", ":"))
    submit_ok(s, json.loads(body))
    url = "http://127.0.0.1:%d%s" % (s.port, SUBMIT)
    raw_db = os.path.join(ctx.tmp, "sqlite_raw", "raw.db")
    os.makedirs(os.path.dirname(raw_db))

    def raw_run():
        out = run([ctx.sqlite_raw, raw_db, str(P["wrk_seconds"])],
                  timeout=P["wrk_seconds"] + 60)
        return json.loads(out)

    if P["warmup_seconds"]:
        wrk(ctx, url, P["warmup_seconds"], body=body)
    pr, rr = alternate(P["wrk_rounds"], [
        lambda: wrk(ctx, url, P["wrk_seconds"], body=body), raw_run])
    s.stop()
    p_rps = statistics.median(r["rps"] for r in pr)
    r_rps = statistics.median(r["rows_per_s"] for r in rr)
    p_p99 = statistics.median(r["p99_us"] for r in pr) / 1000
    return [
        row("durable submits/s", paddock=p_rps, reference=r_rps,
            ref_name="sqlite_raw", unit="/s", ratio=p_rps / r_rps,
            target="≥ 2.0× sqlite_raw",
            verdict=verdict_at_least(p_rps / r_rps, 2.0),
            note="one row per commit, synchronous=FULL",
            raw={"paddock_rounds": pr, "sqlite_raw_rounds": rr}),
        row("submit p99", paddock=p_p99, unit="ms", target="—",
            verdict="—"),
    ]


def media_h():
    """The encoder settings the reference must match, read from the code."""
    with open(os.path.join(ROOT, "src", "media", "media.h")) as f:
        text = f.read()
    def get(name, pattern=r'"?([^"\s]+)"?'):
        m = re.search(r"#define\s+%s\s+%s" % (name, pattern), text)
        if not m:
            raise Broken("src/media/media.h has no %s" % name)
        return m.group(1)
    return {"preset": get("MEDIA_X264_PRESET"),
            "crf": get("MEDIA_X264_CRF"),
            "threads": get("MEDIA_X264_THREADS"),
            "fps": int(get("MEDIA_FPS"))}


def x264_args(m):
    return ["-c:v", "libx264", "-preset", m["preset"], "-crf", m["crf"],
            "-threads", m["threads"], "-pix_fmt", "yuv420p",
            "-movflags", "+faststart"]


# Task kinds of the render rows: what paddock is asked, and the ffmpeg
# command that makes a comparable 720p clip of the same length from the
# same inputs. Adding a kind is one entry.
def _ref_t2v(m, fx, secs, out):
    return ["-f", "lavfi", "-i",
            "testsrc2=size=1280x720:rate=%d" % m["fps"], "-t", str(secs)] + \
        x264_args(m) + [out]


def _ref_zoom(m, fx, secs, out):
    n = secs * m["fps"]
    return ["-i", fx["image"], "-vf",
            "zoompan=z='1+0.15*on/%d':x='iw/2-(iw/zoom/2)':"
            "y='ih/2-(ih/zoom/2)':d=%d:s=1280x720:fps=%d" % (
                n - 1, n, m["fps"]),
            "-frames:v", str(n)] + x264_args(m) + [out]


def _ref_edit(m, fx, secs, out):
    return ["-i", fx["video"], "-t", str(secs), "-vf",
            "lutyuv=y='clip(val*1.1,16,235)'"] + x264_args(m) + ["-an", out]


RENDERS = [
    {"kind": "t2v", "model": "happyhorse-1.0-t2v", "media": [],
     "params": {"ratio": "16:9"}, "ref": _ref_t2v,
     "ref_desc": "ffmpeg testsrc2"},
    {"kind": "i2v", "model": "happyhorse-1.0-i2v",
     "media": [("first_frame", "image")], "params": {}, "ref": _ref_zoom,
     "ref_desc": "ffmpeg zoompan of the image"},
    {"kind": "r2v", "model": "happyhorse-1.0-r2v",
     "media": [("reference_image", "image")], "params": {"ratio": "16:9"},
     "ref": _ref_zoom, "ref_desc": "ffmpeg zoompan of the image"},
    {"kind": "video-edit", "model": "happyhorse-1.0-video-edit",
     "media": [("video", "video")], "params": {}, "ref": _ref_edit,
     "ref_desc": "ffmpeg decode+lutyuv+encode"},
]


def make_fixtures(ctx, m, secs):
    """A 1280x720 PNG and a 720p MP4 (with audio) served from loopback."""
    www = os.path.join(ctx.tmp, "www")
    os.makedirs(www)
    ff = [ctx.tools["ffmpeg"], "-nostdin", "-y", "-loglevel", "error"]
    run(ff + ["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=1",
              "-frames:v", "1", os.path.join(www, "first.png")], 60)
    run(ff + ["-f", "lavfi", "-i",
              "testsrc2=size=1280x720:rate=%d" % m["fps"], "-f", "lavfi",
              "-i", "sine=frequency=440:sample_rate=48000", "-t", str(secs),
              "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt",
              "yuv420p", "-c:a", "aac", "-shortest", "-movflags",
              "+faststart", os.path.join(www, "clip.mp4")], 120)
    fs = ctx.own(FileServer(www))
    return {"image": os.path.join(www, "first.png"),
            "video": os.path.join(www, "clip.mp4"),
            "image_url": fs.url("first.png"),
            "video_url": fs.url("clip.mp4")}


def parse_time(s):
    return datetime.datetime.strptime(s, "%Y-%m-%d %H:%M:%S.%f")


def render_once(ctx, s, spec, fx, secs, seed):
    """Submit one task, wait; its scheduled_time -> end_time in seconds."""
    media = [{"type": t, "url": fx[f + "_url"]} for t, f in spec["media"]]
    params = {"resolution": "720P", "duration": secs, "seed": seed}
    params.update(spec["params"])
    body = {"model": spec["model"],
            "input": {"prompt": "a horse galloping along a beach at dawn"},
            "parameters": params}
    if media:
        body["input"]["media"] = media
    status, _, data = s.submit(body)
    if status != 200:
        doc = json.loads(data) if data.startswith(b"{") else {}
        if doc.get("code") == "ModelNotFound":
            raise NotAvailable("n/a (model not configured)")
        raise Broken("%s submit: HTTP %d %r" % (spec["kind"], status,
                                                data[:400]))
    task = json.loads(data)["output"]["task_id"]
    out = s.wait(task)["output"]
    if out["task_status"] == "FAILED" and \
            NOT_IMPLEMENTED.search(out.get("message", "")):
        raise NotAvailable("n/a (not implemented)")
    if out["task_status"] != "SUCCEEDED":
        raise Broken("%s render ended %s: %s %s" % (
            spec["kind"], out["task_status"], out.get("code"),
            out.get("message")))
    return (parse_time(out["end_time"]) -
            parse_time(out["scheduled_time"])).total_seconds(), out


def bench_render(ctx):
    """Sandbox renders (5 s, 720P) timed by the server itself vs ffmpeg
    making a comparable clip with the same x264 settings."""
    m = media_h()
    secs = P["render_seconds"]
    fx = make_fixtures(ctx, m, secs)
    s = ctx.own(Paddock(ctx.binary, ctx.tmp, "render", [
        "--workers", "1", "--fetch-allow", "127.0.0.1/32"]).start())
    ff = [ctx.tools["ffmpeg"], "-nostdin", "-y", "-loglevel", "error"]
    rows = []
    for spec in RENDERS:
        name = "render %s 720P %ds" % (spec["kind"], secs)
        target = "≤ 1.3× ffmpeg"
        pt, ft = [], []
        try:
            for i in range(P["render_runs"]):
                t, out = render_once(ctx, s, spec, fx, secs, 1000 + i)
                if i == 0:  # the video is really there
                    st, _, _ = s.request("HEAD", out["video_url"].split(
                        str(s.port), 1)[1])
                    if st != 200:
                        raise Broken("%s video_url: HTTP %d" % (
                            spec["kind"], st))
                pt.append(t)
                dst = os.path.join(ctx.tmp, "ref-%s.mp4" % spec["kind"])
                t0 = time.perf_counter()
                run(ff + spec["ref"](m, fx, secs, dst), 300)
                ft.append(time.perf_counter() - t0)
        except NotAvailable as e:
            rows.append(row(name, paddock=str(e), target=target,
                            verdict="—", ref_name=spec["ref_desc"]))
            continue
        p, f = statistics.median(pt), statistics.median(ft)
        rows.append(row(name, paddock=p, reference=f, unit="s",
                        ref_name=spec["ref_desc"], ratio=p / f,
                        target=target, verdict=verdict_at_most(p / f, 1.3),
                        raw={"paddock_s": pt, "ffmpeg_s": ft,
                             "ffmpeg_args": spec["ref"](m, fx, secs,
                                                        "OUT.mp4")}))
    s.stop()
    return rows


def submit_many(server, n, threads=8, body=None):
    """n durable t2v submits over keep-alive connections; Broken on any
    non-200."""
    body = json.dumps(body or t2v_body(), separators=(",", ":"))
    headers = {"Authorization": "Bearer " + KEY,
               "X-DashScope-Async": "enable",
               "Content-Type": "application/json"}
    errors = []

    def work(count):
        conn = http.client.HTTPConnection("127.0.0.1", server.port,
                                          timeout=30)
        try:
            for _ in range(count):
                conn.request("POST", SUBMIT, body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
                if r.status != 200:
                    errors.append("HTTP %d %r" % (r.status, data[:200]))
                    return
        except Exception as e:
            errors.append(repr(e))
        finally:
            conn.close()
    ts = [threading.Thread(target=work, daemon=True,  # no wait at exit
                           args=(n // threads + (i < n % threads),))
          for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise Broken("submitting %d tasks: %s" % (n, errors[0]))


def _response_done(buf):
    """True once buf holds a whole response; ConnectionError if the server
    says it will close."""
    head, sep, rest = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    if b"connection: close" in head.lower():
        raise ConnectionError("server answers Connection: close")
    m = re.search(rb"(?i)content-length:\s*(\d+)", head)
    return len(rest) >= (int(m.group(1)) if m else 0)


def hold_connections(port, n, path, budget=15.0, batch=500, headers="",
                     done_when=None):
    """Open up to n keep-alive connections, one request each, and keep them
    open. Opens in concurrent batches and stops when a batch mostly fails
    (the server no longer takes connections) or after `budget` seconds
    (under paddock's 30 s idle timeout). Returns the sockets the server
    still holds open. `path` may be a function of the connection's number;
    `done_when(bytes)` says when its answer is in (default: a whole
    response)."""
    done_when = done_when or _response_done
    target = path if callable(path) else (lambda i: path)
    opened = 0
    sel = selectors.DefaultSelector()
    held = []
    deadline = time.monotonic() + budget
    while len(held) < n and time.monotonic() < deadline:
        want = min(batch, n - len(held))
        bufs, reqs = {}, {}
        for _ in range(want):
            s = socket.socket()
            s.setblocking(False)
            if s.connect_ex(("127.0.0.1", port)) not in (0, errno.EINPROGRESS):
                s.close()
                continue
            bufs[s] = None  # None: not sent yet
            reqs[s] = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (
                target(opened), headers)).encode()
            opened += 1
            sel.register(s, selectors.EVENT_WRITE)
        done = 0
        until = min(deadline, time.monotonic() + 3.0)
        while bufs and time.monotonic() < until:
            for key, _ in sel.select(timeout=0.1):
                s = key.fileobj
                try:
                    if bufs[s] is None:
                        err = s.getsockopt(socket.SOL_SOCKET,
                                           socket.SO_ERROR)
                        if err:
                            raise ConnectionError(os.strerror(err))
                        s.send(reqs[s])
                        bufs[s] = b""
                        sel.modify(s, selectors.EVENT_READ)
                        continue
                    chunk = s.recv(65536)
                    if not chunk:
                        raise ConnectionError("closed")
                    bufs[s] += chunk
                    if not done_when(bufs[s]):
                        continue
                    held.append(s)
                    done += 1
                    sel.unregister(s)
                    del bufs[s]
                except OSError:
                    sel.unregister(s)
                    del bufs[s]
                    s.close()
        for s in bufs:  # no answer in time: the server is full
            sel.unregister(s)
            s.close()
        if done < want // 2:
            break
    sel.close()
    # Count what the server really keeps: a closed one reads as EOF.
    time.sleep(0.3)
    poll = select.poll()
    for s in held:
        poll.register(s, select.POLLIN | select.POLLRDHUP)
    closed = {fd for fd, ev in poll.poll(0)}
    alive = []
    for s in held:
        if s.fileno() in closed:
            s.close()
        else:
            alive.append(s)
    return alive


def close_all(socks):
    for s in socks:
        s.close()


CONNS_MB = 60  # the server's RSS while it holds 10 000 idle connections


def bench_memory(ctx):
    """Peak RSS (VmHWM) idle, after many submits, and holding many idle
    keep-alive connections; nginx for the idle and connection rows."""
    mb = lambda kb: kb / 1024.0  # noqa: E731
    args = ["--workers", "0", "--max-active", "0", "--max-queue", "0"]
    rows = []
    n_tasks, n_conns = P["tasks"], min(P["conns"], ctx.nofile - 200)

    m = ctx.own(Paddock(ctx.binary, ctx.tmp, "memory", args).start())
    time.sleep(0.3)
    idle = proc_status(m.pid)["VmHWM"]
    ng = ctx.own(Nginx(ctx.tools["nginx"], ctx.tmp, "nginx-idle",
                       {"healthz": b"ok\n"}, ctx.nofile).start())
    time.sleep(0.3)
    ng_idle = ng.rss_kb("VmHWM")
    ng.stop()
    rows.append(row("idle RSS", paddock=mb(idle), reference=mb(ng_idle),
                    ref_name="nginx (all processes)", unit="MB",
                    ratio=idle / ng_idle, target="< 30 MB",
                    verdict=verdict_below(mb(idle), 30.0),
                    note="paddock --workers 0"))
    t0 = time.perf_counter()
    submit_many(m, n_tasks)
    took = time.perf_counter() - t0
    after = proc_status(m.pid)["VmHWM"]
    m.stop()
    rows.append(row("RSS after %d tasks" % n_tasks, paddock=mb(after),
                    unit="MB", target="—", verdict="—",
                    note="submitted in %.1f s over 8 connections" % took))

    c = ctx.own(Paddock(ctx.binary, ctx.tmp, "conns", args).start())
    time.sleep(0.3)
    c_idle = proc_status(c.pid)["VmHWM"]
    socks = hold_connections(c.port, n_conns, "/healthz")
    held = len(socks)
    server_socks = count_sockets(c.pid) - 1  # less the listening socket
    c_peak = proc_status(c.pid)["VmHWM"]
    close_all(socks)
    c.stop()
    # nginx allocates worker_connections up front: size it to the load
    ng = ctx.own(Nginx(ctx.tools["nginx"], ctx.tmp, "nginx-conns",
                       {"healthz": b"ok\n"}, ctx.nofile,
                       connections=n_conns + 64).start())
    time.sleep(0.3)
    ng_idle = ng.rss_kb("VmHWM")
    socks = hold_connections(ng.port, n_conns, "/healthz")
    ng_held = len(socks)
    ng_peak = ng.rss_kb("VmHWM")
    close_all(socks)
    ng.stop()
    note = "held %d of %d (server sees %d); nginx held %d" % (
        held, n_conns, server_socks, ng_held)
    if n_conns < P["conns"]:
        note += "; capped by ulimit -n %d" % ctx.nofile
    per = (c_peak - c_idle) / held if held else 0
    ng_per = (ng_peak - ng_idle) / ng_held if ng_held else 0
    if held < n_conns:
        note += "; at %d: ~%.0f MB" % (n_conns, mb(c_idle + per * n_conns))
    bound = CONNS_MB  # the whole process (a quick run holds fewer)
    if held < n_conns:
        verdict = "misses by %d%% (holds %d)" % (
            round((1 - held / n_conns) * 100), held)
    else:
        verdict = verdict_at_most(mb(c_peak), bound)
    rows.append(row("RSS holding %d conns" % P["conns"], paddock=mb(c_peak),
                    reference=mb(ng_peak), ref_name="nginx (all processes)",
                    unit="MB", ratio=c_peak / ng_peak,
                    target="holds %d, ≤ %.0f MB" % (n_conns, bound),
                    verdict=verdict,
                    note=note + "; %.1f vs %.1f KB/conn" % (per, ng_per),
                    raw={"held": held, "server_sockets": server_socks,
                         "nginx_held": ng_held, "paddock_idle_kb": c_idle,
                         "paddock_kb_per_conn": per,
                         "nginx_kb_per_conn": ng_per}))
    return rows


def metric(server, name, label=None):
    """One line of GET /metrics: the counter `name`, or with `label` the
    gauge name{...="label"} (0 when absent, as before a first count)."""
    status, _, body = server.request(
        "GET", "/metrics", headers={"Authorization": "Bearer " + KEY})
    if status != 200:
        raise Broken("metrics: HTTP %d" % status)
    if label is None:
        pat = r'^%s ([0-9.e+]+)$' % re.escape(name)
    else:
        pat = r'^%s\{[^}]*="%s"\} ([0-9.e+]+)$' % (re.escape(name), label)
    m = re.search(pat, body.decode(), re.M)
    return float(m.group(1)) if m else 0.0


def bench_hooks(ctx):
    """Webhook deliveries (bench/hooks_bench.py)."""
    sys.path.insert(0, BENCH)
    import hooks_bench
    return hooks_bench.run(ctx, sys.modules[__name__])


STREAM_TASKS = 100  # the streams watch this many PENDING tasks


def _first_event(buf):
    """A status stream's head and its first event are in."""
    head, sep, rest = buf.partition(b"\r\n\r\n")
    return bool(sep) and head.startswith(b"HTTP/1.1 200") and \
        b"\n\n" in rest


def bench_streams(ctx):
    """Status streams (GET .../tasks/{id}/events) held open at once on one
    node, each past its first event, and the node's RSS holding them; then
    one change of every watched task (a cancel) reaches every stream."""
    mb = lambda kb: kb / 1024.0  # noqa: E731
    n = min(P["streams"], ctx.nofile - 200)
    s = ctx.own(Paddock(ctx.binary, ctx.tmp, "streams", [
        "--workers", "0", "--max-active", "0", "--max-queue", "0",
        "--stream-max", str(n + 100), "--stream-max-per-key", str(n + 100)
    ]).start())
    ids = [submit_ok(s, t2v_body(seed=i)) for i in range(STREAM_TASKS)]
    time.sleep(0.3)
    idle = proc_status(s.pid)["VmRSS"]
    t0 = time.perf_counter()
    socks = hold_connections(
        s.port, n, lambda i: "/api/v1/tasks/%s/events" % ids[i % len(ids)],
        budget=60.0, headers="Authorization: Bearer %s\r\n" % KEY,
        done_when=_first_event)
    opened_s = time.perf_counter() - t0
    held = len(socks)
    st = proc_status(s.pid)
    rss, hwm = st["VmRSS"], st["VmHWM"]
    # Every task canceled: each stream gets its CANCELED event and closes.
    t1 = time.perf_counter()
    for tid in ids:
        status, _, data = s.request("POST", "/api/v1/tasks/%s/cancel" % tid,
                                    headers={"Authorization": "Bearer " + KEY})
        if status != 200:
            raise Broken("streams: cancel HTTP %d %r" % (status, data[:200]))
    ended, left = 0, {sk.fileno(): sk for sk in socks}
    sel = selectors.DefaultSelector()
    for sk in socks:
        sk.setblocking(False)
        sel.register(sk, selectors.EVENT_READ)
    deadline = time.perf_counter() + 60
    seen = {}
    while left and time.perf_counter() < deadline:
        for key, _ in sel.select(timeout=0.5):
            sk = key.fileobj
            try:
                chunk = sk.recv(65536)
            except OSError:
                chunk = b""
            seen[sk] = seen.get(sk, b"") + chunk
            if not chunk:
                if b"event: CANCELED" in seen[sk]:
                    ended += 1
                sel.unregister(sk)
                del left[sk.fileno()]
                sk.close()
    pushed_s = time.perf_counter() - t1
    sel.close()
    close_all(left.values())
    s.stop()
    per = (rss - idle) / held if held else 0
    note = "held %d of %d (opened in %.1f s), watching %d tasks" % (
        held, n, opened_s, len(ids))
    if n < P["streams"]:
        note += "; capped by ulimit -n %d" % ctx.nofile
    return [row("RSS holding %d status streams" % P["streams"],
                paddock=mb(rss), unit="MB",
                target="holds %d" % P["streams"],
                verdict=verdict_at_least(held, P["streams"]),
                note=note + "; %.1f MB over idle, %.1f KB per stream "
                     "(VmHWM %.1f MB)" % (mb(rss - idle), per, mb(hwm)),
                raw={"held": held, "idle_kb": idle, "rss_kb": rss,
                     "hwm_kb": hwm, "kb_per_stream": per}),
            row("status streams told of a cancel", paddock=pushed_s,
                unit="s", target="every stream",
                verdict=verdict_at_least(ended, held),
                note="%d of %d streams got CANCELED and were closed, %d "
                     "cancels" % (ended, held, len(ids)))]


def bench_parked(ctx):
    """Sandbox tasks in a run=DURATION delay are parked: no thread, no render
    slot, a lease renewed in batches. How many one node holds at once, and
    its peak RSS doing so. The tasks end FAILED after their run (fail=), so
    the row measures the holding, not renders: a render each (~0.2 s on
    this machine's cores) could not keep 10 000 in a 30 s window."""
    mb = lambda kb: kb / 1024.0  # noqa: E731
    n, run_s = P["parked"], P["parked_run_s"]
    spec = "sandbox run=%ds,fail=InternalError.Algo" % run_s
    m = ctx.own(Paddock(ctx.binary, ctx.tmp, "parked", [
        "--workers", "2", "--max-active", "0", "--max-queue", "0",
        "--engine", spec]).start())
    time.sleep(0.3)
    idle = proc_status(m.pid)["VmRSS"]
    t0 = time.perf_counter()
    submit_many(m, n)
    submitted = time.perf_counter() - t0
    peak, peak_at, done = 0, 0.0, 0
    deadline = time.perf_counter() + run_s * 6 + 120
    while time.perf_counter() < deadline:
        running = int(metric(m, "paddock_tasks", "RUNNING"))
        done = int(metric(m, "paddock_tasks", "FAILED"))
        if running > peak:
            peak, peak_at = running, time.perf_counter() - t0
        if done >= n:
            break
        time.sleep(0.5)
    hwm = proc_status(m.pid)["VmHWM"]
    m.stop()
    if done < n:
        raise Broken("parked: %d of %d tasks ended" % (done, n))
    per = (hwm - idle) / peak if peak else 0
    # At SIGTERM parked tasks go back to PENDING at once, in one write.
    g = ctx.own(Paddock(ctx.binary, ctx.tmp, "parked-stop", [
        "--workers", "2", "--max-active", "0", "--max-queue", "0",
        "--engine", "sandbox run=1h"]).start())
    submit_many(g, n)
    deadline = time.perf_counter() + 120
    while metric(g, "paddock_tasks", "RUNNING") < n:
        if time.perf_counter() > deadline:
            raise Broken("parked-stop: %d of %d RUNNING" % (
                metric(g, "paddock_tasks", "RUNNING"), n))
        time.sleep(0.2)
    t1 = time.perf_counter()
    g.stop()
    stop_s = time.perf_counter() - t1
    g.args = ["--workers", "0"]
    g.start()
    back = int(metric(g, "paddock_tasks", "PENDING"))
    g.stop()
    return [row("tasks held in run=%ds" % run_s, paddock=peak,
                unit="tasks", target="%d at once" % n,
                verdict=verdict_at_least(peak, n),
                note="peak RUNNING, %.1f s after the first submit "
                     "(submitted in %.1f s); all ended in %.1f s" % (
                         peak_at, submitted, time.perf_counter() - t0)),
            row("RSS holding %d parked tasks" % n, paddock=mb(hwm),
                unit="MB", target="—", verdict="—",
                note="VmHWM; %.1f MB over idle, %.1f KB per held task" % (
                    mb(hwm - idle), per),
                raw={"idle_kb": idle, "hwm_kb": hwm, "peak_held": peak}),
            row("SIGTERM holding %d parked tasks" % n, paddock=stop_s,
                unit="s", target="back at once", verdict="meets"
                if back == n else "misses (%d of %d back)" % (back, n),
                note="SIGTERM to exit; %d back to PENDING (one store "
                     "write), seen by the next start" % back)]


def unauthenticated_flood(port, n, size):
    """n connections at once, each announcing `size` bytes of body
    without a key and sending them as fast as the server takes them; the
    server must answer 401 and never hold the bytes. Returns the statuses
    seen."""
    chunk = b"x" * (1 << 20)
    statuses = []
    lock = threading.Lock()

    def one():
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        got = b""
        try:
            s.sendall(b"POST " + SUBMIT.encode() + b" HTTP/1.1\r\n"
                      b"Host: 127.0.0.1\r\nX-DashScope-Async: enable\r\n"
                      b"Content-Length: %d\r\n\r\n" % size)
            sent = 0
            while sent < size:
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass  # cut off after the answer: expected
        try:
            while b"\r\n" not in got:
                d = s.recv(4096)
                if not d:
                    break
                got += d
        except OSError:
            pass
        s.close()
        with lock:
            statuses.append(got.split(b" ")[1].decode() if got else "none")

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def bench_flood(ctx):
    """RSS while 64 clients without a key each push a 30 MB body: the key
    is checked before any body byte is held (docs/api.md, HTTP limits)."""
    mb = lambda kb: kb / 1024.0  # noqa: E731
    n, size = (16 if QUICK else 64), 30 << 20
    f = ctx.own(Paddock(ctx.binary, ctx.tmp, "flood",
                        ["--workers", "0"]).start())
    time.sleep(0.3)
    idle = proc_status(f.pid)["VmRSS"]
    t0 = time.perf_counter()
    statuses = unauthenticated_flood(f.port, n, size)
    took = time.perf_counter() - t0
    peak = proc_status(f.pid)["VmHWM"]
    f.stop()
    if any(st != "401" for st in statuses):
        raise Broken("unauthenticated bodies not all answered 401: %r" %
                     sorted(set(statuses)))
    grew = mb(peak - idle)
    return [row("RSS under %d unauthenticated 30 MB bodies" % n,
                paddock=grew, unit="MB", target="< 50 MB over idle",
                verdict=verdict_below(grew, 50.0),
                note="peak VmHWM minus idle VmRSS (%.1f MB); every one "
                     "answered 401; %.1f s" % (mb(idle), took))]


# ------------------------------------------------------------ upload

def stream_upload(port, path, head, size, tail, headers):
    """POST head + `size` zero bytes + tail to path, the body streamed in
    1 MB pieces (never held here either); (status, body)."""
    chunk = bytes(1 << 20)
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    try:
        req = "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % (path, port)
        for k, v in headers.items():
            req += "%s: %s\r\n" % (k, v)
        req += "Content-Length: %d\r\nConnection: close\r\n\r\n" % (
            len(head) + size + len(tail))
        s.sendall(req.encode() + head)
        sent = 0
        while sent < size:
            n = min(len(chunk), size - sent)
            s.sendall(chunk[:n])
            sent += n
        s.sendall(tail)
        got = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
    finally:
        s.close()
    head_, _, body = got.partition(b"\r\n\r\n")
    return int(head_.split(b" ")[1]), body


def bench_upload(ctx):
    """RSS while a server takes a 100 MB file as a DashScope SDK sends it
    (the policy, then the multipart form; docs/extensions.md): the form is
    parsed as it streams and the file goes to disk, never into memory.
    The reference is the same size through POST /api/v1/uploads (the raw
    body, streamed the same way) on a fresh server."""
    mb = lambda kb: kb / 1024.0  # noqa: E731
    size = 100 << 20
    auth = {"Authorization": "Bearer " + KEY}
    grew = {}
    for what in ("form", "raw"):
        srv = ctx.own(Paddock(ctx.binary, ctx.tmp, "upload-" + what,
                              ["--workers", "0"]).start())
        time.sleep(0.3)
        idle = proc_status(srv.pid)["VmRSS"]
        t0 = time.perf_counter()
        if what == "form":
            st, _, data = srv.request(
                "GET", "/api/v1/uploads?action=getPolicy&model="
                "happyhorse-1.0-video-edit", headers=auth)
            if st != 200:
                raise Broken("upload policy: HTTP %d %r" % (st, data[:300]))
            info = json.loads(data)["data"]
            b = "bench%032x" % int(time.time() * 1e6)
            head = b""
            for k, v in (("OSSAccessKeyId", info["oss_access_key_id"]),
                         ("Signature", info["signature"]),
                         ("policy", info["policy"]),
                         ("key", info["upload_dir"] + "/clip.mp4"),
                         ("success_action_status", "200")):
                head += ("--%s\r\nContent-Disposition: form-data; "
                         "name=\"%s\"\r\n\r\n%s\r\n" % (b, k, v)).encode()
            head += ("--%s\r\nContent-Disposition: form-data; name=\"file\"; "
                     "filename=\"clip.mp4\"\r\n\r\n" % b).encode()
            path = "/api/v1/uploads/oss"
            st, body = stream_upload(
                srv.port, path, head, size, ("\r\n--%s--\r\n" % b).encode(),
                {"Content-Type": "multipart/form-data; boundary=" + b})
        else:
            st, body = stream_upload(srv.port, "/api/v1/uploads", b"", size,
                                     b"", auth)
        took = time.perf_counter() - t0
        peak = proc_status(srv.pid)["VmHWM"]
        srv.stop()
        if st != 200 or json.loads(body)["output"]["size"] != size:
            raise Broken("%s upload of %d bytes: HTTP %d %r" % (
                what, size, st, body[:300]))
        grew[what] = (mb(peak - idle), took)
    return [row("RSS taking a 100 MB upload form",
                paddock=grew["form"][0],
                reference=grew["raw"][0], ref_name="raw POST /api/v1/uploads",
                unit="MB", target="< 8 MB over idle",
                verdict=verdict_below(grew["form"][0], 8.0),
                note="peak VmHWM minus idle VmRSS; the form in %.1f s, the "
                     "raw body in %.1f s" % (grew["form"][1],
                                             grew["raw"][1]))]


# ------------------------------------------------------------ scale

SCALE_PROMPT = "paddock scale bench batch"
SCALE_WARMUP_PROMPT = "paddock scale bench warm-up"


def pg_bindir():
    """The newest installed PostgreSQL server's bin directory (as
    tests/pg.sh finds it); None when there is none."""
    p = shutil.which("initdb", path=os.environ.get("PATH", "") +
                     ":/usr/sbin:/sbin")
    if p:
        return os.path.dirname(os.path.realpath(p))
    best = None
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        v = os.path.basename(os.path.dirname(d))
        if os.path.exists(os.path.join(d, "initdb")) and v.isdigit() and \
                (best is None or int(v) > best[0]):
            best = (int(v), d)
    return best[1] if best else None


class PgCluster:
    """A throw-away PostgreSQL cluster, as tests/pg.sh makes one: initdb
    in a directory of the bench's temp dir (trust auth, user paddock),
    the server on 127.0.0.1 at a free port with its socket in that
    directory, fsync on. Unlike pg.sh the server runs in the foreground as
    our child (no pg_ctl), so it is stopped by its pid like every other
    process here and dies with the bench. As root it runs as nobody."""

    def __init__(self, tmp, name):
        self.bin = pg_bindir()
        if not self.bin:
            raise Broken("PostgreSQL is not installed (scripts/setup.sh "
                         "installs it)")
        self.dir = os.path.join(tmp, name)
        self.proc = None
        self.port = None
        self.drop = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            pw = pwd.getpwnam("nobody")
            self.drop = (pw.pw_uid, pw.pw_gid)

    def start(self, timeout=60):
        os.makedirs(self.dir)
        if self.drop:
            os.chown(self.dir, *self.drop)
        data = os.path.join(self.dir, "data")
        run([os.path.join(self.bin, "initdb"), "-D", data, "-A", "trust",
             "-U", "paddock", "-E", "UTF8", "--locale=C.UTF-8", "-N"],
            timeout=120, drop_to=self.drop)
        self.log_path = os.path.join(self.dir, "log")
        for attempt in range(5):  # a port taken between free_port and bind
            self.port = free_port()
            log = open(self.log_path, "ab")
            self.proc = spawn(
                [os.path.join(self.bin, "postgres"), "-D", data,
                 "-c", "listen_addresses=127.0.0.1",
                 "-c", "port=%d" % self.port,
                 "-c", "unix_socket_directories=" + self.dir,
                 "-c", "fsync=on"],
                drop_to=self.drop, stop_sig=signal.SIGQUIT,
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                cwd=self.dir)
            log.close()
            deadline = time.time() + timeout
            while time.time() < deadline and self.proc.poll() is None:
                if self._ready():
                    return self
                time.sleep(0.1)
            exited = self.proc.poll() is not None
            stop(self.proc, signal.SIGKILL)
            self.proc = None
            if not exited:  # up but not answering: no point in retrying
                break
        raise Broken("PostgreSQL did not start:\n" + self.log_tail())

    def _ready(self):
        try:
            r = subprocess.run(self._psql_cmd("postgres", "SELECT 1"),
                               capture_output=True, timeout=10,
                               preexec_fn=_child_setup())
        except subprocess.TimeoutExpired:
            return False
        return r.returncode == 0

    def _psql_cmd(self, db, sql):
        return [os.path.join(self.bin, "psql"), "-X", "-q", "-A", "-t",
                "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                "-p", str(self.port), "-U", "paddock", "-d", db, "-c", sql]

    def psql(self, db, sql):
        """Rows of one statement, each a list of text fields."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        out = run(self._psql_cmd(db, sql), timeout=60, env=env)
        return [line.split("|") for line in out.splitlines() if line]

    def url(self, db):
        return "postgres://paddock@127.0.0.1:%d/%s" % (self.port, db)

    def log_tail(self, n=2000):
        return file_tail(self.log_path, n)

    def stop(self):
        """Immediate shutdown (SIGQUIT, as pg.sh's `pg_ctl -m immediate`:
        the cluster is thrown away, so no shutdown checkpoint) by the
        postmaster's pid, then remove the cluster's directory."""
        if self.proc:
            stop(self.proc, signal.SIGQUIT, timeout=30)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


class Worker(_Proc):
    """paddock worker: render threads on a shared store, no HTTP."""

    what = "paddock worker"

    def __init__(self, binary, data, name, args):
        self.binary = binary
        self.data = data
        self.name = name
        self.args = list(args)
        self.proc = None
        self.log_path = os.path.join(data, "%s.log" % name)

    def start(self, timeout=30):
        cmd = [self.binary, "worker", "--data", self.data,
               "--log-level", "warn"] + self.args
        return self._start(cmd, lambda line: "worker running" in line,
                           timeout)

    def signal(self):
        """SIGTERM without waiting: stop() then waits (so that many
        workers stop at once)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    """(own, reaped children's) CPU seconds of a process; zeros when it is
    gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            f_ = f.read()
    except OSError:
        return 0.0, 0.0
    v = f_[f_.rindex(")") + 2:].split()
    # fields 14-17 (utime stime cutime cstime) are v[11..14]
    return (int(v[11]) + int(v[12])) / _TICK, \
        (int(v[13]) + int(v[14])) / _TICK


def cpu_snapshot(pg, api, workers):
    """CPU seconds used so far by each side of the scale row."""
    pm = pg.proc.pid
    pg_s = sum(sum(cpu_s(p)) for p in [pm] + children(pm))
    w = [cpu_s(x.pid) for x in workers]
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # psql polls
    return {"postgres": pg_s, "api": sum(cpu_s(api.pid)),
            "workers": sum(x[0] for x in w),
            "engine": sum(x[1] for x in w),
            "per_worker": [x[0] for x in w],
            "bench": me.ru_utime + me.ru_stime + kids.ru_utime +
            kids.ru_stime}


def scale_counts(pg, db, prompt):
    rows = pg.psql(db, "SELECT status, count(*) FROM tasks WHERE prompt = "
                   "'%s' GROUP BY status" % prompt)
    return {r[0]: int(r[1]) for r in rows}


def scale_wait(pg, db, prompt, n, timeout):
    """Until n tasks of this prompt SUCCEEDED; Broken on a failure or when
    they are not done in time."""
    deadline = time.time() + timeout
    while True:
        c = scale_counts(pg, db, prompt)
        bad = sum(v for k, v in c.items() if k in ("FAILED", "CANCELED"))
        if bad:
            why = pg.psql(db, "SELECT status, code, message FROM tasks WHERE "
                          "prompt = '%s' AND status IN ('FAILED', "
                          "'CANCELED') LIMIT 1" % prompt)
            raise Broken("%d scale task(s) ended %s: %s" % (
                bad, why[0][0], " ".join(why[0][1:])))
        if c.get("SUCCEEDED", 0) >= n:
            return
        if time.time() > deadline:
            raise Broken("scale: %d tasks not done after %d s: %s" % (
                n, timeout, c))
        time.sleep(0.25)


def scale_once(ctx, pg, n_workers, engine):
    """One API node and n_workers worker processes on a fresh database;
    a warm-up, then a batch of submits. Returns the figures."""
    T, M = P["scale_threads"], P["scale_tasks"]
    db = "scale_%d" % n_workers
    pg.psql("postgres", "CREATE DATABASE %s" % db)
    url = pg.url(db)
    api = ctx.own(Paddock(ctx.binary, ctx.tmp, "scale-%d" % n_workers, [
        "--workers", "0", "--store", url, "--engine", engine,
        "--max-active", "0", "--max-queue", "0"]).start())
    workers = [ctx.own(Worker(ctx.binary, api.data, "worker-%d" % i, [
        "--store", url, "--workers", str(T), "--engine", engine]).start())
        for i in range(n_workers)]
    body = t2v_body(SCALE_WARMUP_PROMPT, ratio="1:1")
    submit_many(api, P["scale_warmup"], body=body)
    scale_wait(pg, db, SCALE_WARMUP_PROMPT, P["scale_warmup"], 120)
    body = t2v_body(SCALE_PROMPT, ratio="1:1")
    c0, t0 = cpu_snapshot(pg, api, workers), time.perf_counter()
    submit_many(api, M, threads=P["scale_connections"], body=body)
    submit_s = time.perf_counter() - t0
    scale_wait(pg, db, SCALE_PROMPT, M, P["scale_timeout"])
    c1, wall = cpu_snapshot(pg, api, workers), time.perf_counter() - t0
    fields = pg.psql(db, (
        "SELECT count(*), min(submit_ms), max(submit_ms), "
        "min(scheduled_ms), max(scheduled_ms), max(end_ms), "
        "percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP "
        "(ORDER BY end_ms - scheduled_ms), avg(end_ms - scheduled_ms), "
        "max(end_ms - scheduled_ms), "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY scheduled_ms - "
        "submit_ms) FROM tasks WHERE prompt = '%s' "
        "AND status = 'SUCCEEDED'") % SCALE_PROMPT)[0]
    (n, first_submit, last_submit, first_claim, last_claim, last_end,
     run_p50, run_p90, run_mean, run_max, wait_p50) = [
        float(x) for x in ",".join(f.strip("{}") for f in fields).split(",")]
    for w in workers:
        w.signal()
    for w in workers:
        w.stop()
    api.stop()
    cores = len(os.sched_getaffinity(0))
    cpu = {k: round(c1[k] - c0[k], 2) for k in
           ("postgres", "api", "workers", "engine", "bench")}
    cpu["per_worker"] = [round(b - a, 2) for a, b in zip(c0["per_worker"],
                                                         c1["per_worker"])]
    cpu["window_s"] = round(wall, 2)
    cpu["idle"] = round(max(0.0, wall * cores - sum(
        cpu[k] for k in ("postgres", "api", "workers", "engine", "bench"))),
        2)
    return {
        "workers": n_workers, "threads_per_worker": T, "tasks": int(n),
        "claims_per_s": (n - 1) / ((last_claim - first_claim) / 1000.0),
        "tasks_per_s": n / ((last_end - first_submit) / 1000.0),
        "submits_per_s": (n - 1) / ((last_submit - first_submit) / 1000.0),
        "client_submit_s": round(submit_s, 3),
        "claim_span_ms": last_claim - first_claim,
        "end_to_end_ms": last_end - first_submit,
        # what a render thread spent per task outside claim -> end (the
        # finish, the next claim, wake-ups): the store path's share
        "thread_ms_per_task": n_workers * T * (last_end - first_claim) / n,
        "outside_run_ms": n_workers * T * (last_end - first_claim) / n -
        run_mean,
        # a task's claim -> end (engine run, probe, result fsync+rename)
        "run_ms_p50": run_p50, "run_ms_p90": run_p90,
        "run_ms_mean": round(run_mean, 1), "run_ms_max": run_max,
        "queue_wait_ms_p50": wait_p50,
        "cpu_s": cpu,
    }


def bench_scale(ctx):
    """Claims/s and end-to-end tasks/s with 1, 2 and 4 `paddock worker`
    processes on PostgreSQL, a trivially fast command engine."""
    if not os.access(ctx.copy_engine, os.X_OK):
        raise Broken("%s is missing (bench/run.sh compiles "
                     "bench/copy_engine.c)" % ctx.copy_engine)
    if " " in ctx.copy_engine + ctx.tmp:
        raise Broken("the command engine's path may hold no blank: %s" %
                     ctx.copy_engine)
    clip = os.path.join(ctx.tmp, "scale-clip.mp4")
    run([ctx.tools["ffmpeg"], "-nostdin", "-y", "-loglevel", "error",
         "-f", "lavfi", "-i", "color=c=black:s=128x128:r=24", "-t", "3",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         "-movflags", "+faststart", clip], 60)
    engine = "command:%s %s" % (ctx.copy_engine, clip)
    pg = ctx.own(PgCluster(ctx.tmp, "scale-pg").start())
    version = pg.psql("postgres", "SHOW server_version")[0][0]
    runs = [scale_once(ctx, pg, n, engine) for n in P["scale_workers"]]
    pg.stop()
    base = runs[0]
    rows = []
    cores = len(os.sched_getaffinity(0))
    for key, label in (("claims_per_s", "claims/s"),
                       ("tasks_per_s", "tasks/s")):
        for r in runs:
            n = r["workers"]
            name = "scale %s %d worker%s" % (label, n, "" if n == 1 else "s")
            one = r is base
            note = None
            if key == "tasks_per_s":
                c = r["cpu_s"]
                pct = lambda v: 100.0 * v / (c["window_s"] * cores)  # noqa
                note = ("%d tasks, submitted at %.0f/s; claim->end p50 "
                        "%.0f ms, p90 %.0f ms, mean %.0f ms; per task a "
                        "thread spent %.1f ms outside it; CPU of %d cores: "
                        "postgres %.0f%%, "
                        "workers %.0f%% (+ engine %.0f%%), API %.0f%%, "
                        "bench %.0f%%, idle %.0f%%") % (
                    r["tasks"], r["submits_per_s"], r["run_ms_p50"],
                    r["run_ms_p90"], r["run_ms_mean"], r["outside_run_ms"],
                    cores, pct(c["postgres"]),
                    pct(c["workers"]), pct(c["engine"]), pct(c["api"]),
                    pct(c["bench"]), pct(c["idle"]))
            rows.append(row(
                name, paddock=r[key], unit="/s",
                reference=None if one else base[key],
                ref_name=None if one else "1 worker",
                ratio=None if one else r[key] / base[key],
                target="—", verdict="—", note=note,
                raw=r if key == "tasks_per_s" else None))
    rows[0]["note"] = (
        "PostgreSQL %s on 127.0.0.1 (fsync on), fresh database per row; "
        "1 API node (serve --workers 0) + N `paddock worker --workers %d`; "
        "command engine %s copying a %d-byte MP4; one key" % (
            version, P["scale_threads"], os.path.basename(ctx.copy_engine),
            os.path.getsize(clip)))
    return rows


# ------------------------------------------------------------ relay

class Provider(_Proc):
    """tests/fakes/provider: a HappyHorse provider on 127.0.0.1 whose tasks
    take `seconds` by the clock; GET /stats counts what it was sent."""

    what = "provider"

    def __init__(self, binary, tmp, name, clip, seconds, key):
        self.binary, self.name = binary, name
        self.args = ["--video", clip, "--seconds", str(seconds), "--key", key]
        self.proc, self.port = None, None
        self.log_path = os.path.join(tmp, name + ".log")

    def start(self, timeout=30):
        def ready(line):
            if "provider: listening on" not in line:
                return False
            self.port = int(line.split()[-1])
            return True
        return self._start([self.binary] + self.args, ready, timeout)

    def stats(self):
        status, _, body = http_request(self.port, "GET", "/stats")
        if status != 200:
            raise Broken("provider /stats: HTTP %d" % status)
        return json.loads(body)


def make_clip(ctx, name, size="128x128", seconds=3):
    """A small H.264 MP4 for engines that copy instead of render."""
    clip = os.path.join(ctx.tmp, name)
    run([ctx.tools["ffmpeg"], "-nostdin", "-y", "-loglevel", "error",
         "-f", "lavfi", "-i", "color=c=black:s=%s:r=24" % size, "-t",
         str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt",
         "yuv420p", "-movflags", "+faststart", clip], 60)
    return clip


def poll_schedule(poll_s, poll_max_s, seconds):
    """Looks at one task that ends `seconds` after its submit, by the
    relay's schedule (poll, x1.5 per look, up to poll-max)."""
    t, step, n = 0.0, poll_s, 0
    while t < seconds:
        t += step
        n += 1
        step = min(step * 1.5, poll_max_s)
    return n


def bench_relay(ctx):
    """N tasks relayed at once to a provider whose tasks take T seconds:
    how soon after the last submit all SUCCEEDED, how many were in flight
    together, the server's RSS per in-flight task, and the provider's view
    of the polls (docs/engines.md, "The upstream engine")."""
    if not os.access(ctx.provider, os.X_OK):
        raise Broken("%s is missing (make bench builds it)" % ctx.provider)
    n, secs = P["relay_tasks"], P["relay_seconds"]
    rate, poll_s, poll_max_s = P["relay_rate"], 1.0, 4.0
    clip = make_clip(ctx, "relay-clip.mp4")
    pkey = "bench-provider-key"
    prov = ctx.own(Provider(ctx.provider, ctx.tmp, "relay-provider", clip,
                            secs, pkey).start())
    spec = ("upstream:dashscope http://127.0.0.1:%d key=%s rate=%d poll=1s "
            "poll-max=4s inflight=%d" % (prov.port, pkey, rate, n))
    srv = ctx.own(Paddock(ctx.binary, ctx.tmp, "relay",
                          ["--engine", spec, "--max-active", "0"]).start())
    time.sleep(0.5)
    idle_kb = proc_status(srv.pid)["VmRSS"]
    t0 = time.perf_counter()
    submit_many(srv, n, threads=8, body=t2v_body())
    t_last = time.perf_counter()
    most, rss_kb, ended, samples = 0, idle_kb, 0.0, 0
    deadline = t_last + secs + 120
    while True:
        st = prov.stats()
        flying = st["tasks"] - st["downloads"]
        most = max(most, flying)
        if st["tasks"] == n and st["downloads"] == 0:
            rss_kb = max(rss_kb, proc_status(srv.pid)["VmRSS"])
            samples += 1
        ended = metric(srv, "paddock_tasks_succeeded_total") + \
            metric(srv, "paddock_tasks_failed_total")
        if ended >= n:
            break
        if time.perf_counter() > deadline:
            raise Broken("relay: %d of %d tasks ended %d s after the last "
                         "submit" % (ended, n, secs + 120))
        time.sleep(0.1)
    took = time.perf_counter() - t_last
    failed = metric(srv, "paddock_tasks_failed_total")
    st = prov.stats()
    srv.stop()
    prov.stop()
    if failed:
        raise Broken("relay: %d tasks FAILED:\n%s" % (failed, srv.log_tail()))
    if not samples:
        raise Broken("relay: never all %d in flight at once (at most %d)" %
                     (n, most))
    per_task_kb = (rss_kb - idle_kb) / float(n)
    looks = poll_schedule(poll_s, poll_max_s, secs)
    polls = st["polls"] / float(n)
    limit = 2 * rate  # a second's refill beside a full bucket
    return [
        row("relay %d in flight, T=%d s: last end after last submit" %
            (n, secs), paddock=took, unit="s", reference=float(secs),
            ref_name="ideal (T)", ratio=took / secs,
            target="<= T + 5 s", verdict=verdict_at_most(took, secs + 5.0),
            note="%d submits in %.1f s (8 clients, one key, --max-active 0); "
                 "default --workers; %s" % (
                     n, t_last - t0, spec.replace(pkey, "KEY").replace(
                         "http://127.0.0.1:%d" % prov.port, "<provider>"))),
        row("relay concurrency", paddock=float(most), unit="",
            reference=float(n),
            ref_name="ideal (N)", ratio=most / float(n),
            target=">= 0.9 x N", verdict=verdict_at_least(most, 0.9 * n),
            note="most provider tasks submitted and not yet downloaded"),
        row("relay RSS per in-flight task", paddock=per_task_kb, unit="KB",
            target="<= 16 KB", verdict=verdict_at_most(per_task_kb, 16.0),
            note="(VmRSS with all %d in flight, %d samples) - idle %.1f MB, "
                 "/ %d" % (n, samples, idle_kb / 1024.0, n)),
        row("relay polls per task", paddock=polls, unit="",
            reference=float(looks), ref_name="schedule", ratio=polls / looks,
            target="<= schedule + 1",
            verdict=verdict_at_most(polls, looks + 1.0),
            note="provider: %d submits (%d replays), %d polls, shortest gap "
                 "between two polls of a task %d ms (poll=1s), most requests "
                 "in one second %d (rate=%d, burst %d)" % (
                     st["submits"], st["replays"], st["polls"],
                     st["min_poll_gap_ms"], st["max_per_s"], rate, rate)
                 + ("" if st["max_per_s"] <= limit else
                    " ABOVE the token bucket")),
    ]


# ------------------------------------------------------------ resident

def bench_resident(ctx):
    """A model whose load takes 2 s and whose job takes 0.2 s, 20 tasks at
    concurrency 1: the resident engine loads once, the command engine once
    per task (docs/engines.md, "The resident engine")."""
    n, load_s, job_s = P["resident_tasks"], 2.0, 0.2
    clip = make_clip(ctx, "resident-clip.mp4")
    prog = os.path.join(BENCH, "slow_engine.py")
    if " " in prog + ctx.tmp + sys.executable:
        raise Broken("engine paths may hold no blank: %s" % prog)
    walls, loads = {}, {}
    for kind in ("resident", "command"):
        log = os.path.join(ctx.tmp, "%s-loads.txt" % kind)
        spec = "%s:%s %s %s %g %g %s" % (kind, sys.executable, prog, kind,
                                         load_s, job_s, clip)
        os.environ["SLOW_ENGINE_LOADS"] = log
        t0 = time.perf_counter()
        try:
            srv = ctx.own(Paddock(ctx.binary, ctx.tmp, "resident-" + kind,
                                  ["--engine", spec, "--workers", "1"]
                                  ).start())
        finally:
            del os.environ["SLOW_ENGINE_LOADS"]
        ids = [submit_ok(srv, t2v_body(seed=i)) for i in range(n)]
        for tid in ids:
            doc = srv.wait(tid, timeout=600)
            if doc["output"]["task_status"] != "SUCCEEDED":
                raise Broken("%s engine: task %s %s" % (kind, tid,
                                                        doc["output"]))
        walls[kind] = time.perf_counter() - t0
        srv.stop()
        with open(log) as f:
            loads[kind] = len(f.readlines())
    ideal = load_s + n * job_s
    w = walls["resident"]
    return [row("resident %d tasks (load %g s, job %g s)" % (n, load_s, job_s),
                paddock=w, unit="s", reference=walls["command"],
                ref_name="command engine", ratio=w / walls["command"],
                target="<= 1.2 x %.1f s" % ideal,
                verdict=verdict_at_most(w, 1.2 * ideal),
                note="from the server's start to the last SUCCEEDED, "
                     "--workers 1; loads: resident %d, command %d; ideal "
                     "load + n x job = %.1f s" % (
                         loads["resident"], loads["command"], ideal))]


SECTIONS = [
    ("query", bench_query, ["query req/s", "query p99",
                            "query req/s, access log on",
                            "query p99, access log on"]),
    ("cpu", bench_cpu, ["query CPU, paddock's code",
                        "query CPU, all user space"]),
    ("submit", bench_submit, ["durable submits/s", "submit p99"]),
    ("render", bench_render, ["render %s 720P %ds" % (k["kind"],
                                                       P["render_seconds"])
                              for k in RENDERS]),
    ("memory", bench_memory, ["idle RSS", "RSS after %d tasks" % P["tasks"],
                              "RSS holding %d conns" % P["conns"]]),
    ("parked", bench_parked, ["tasks held in run=%ds" % P["parked_run_s"],
                              "RSS holding %d parked tasks" % P["parked"],
                              "SIGTERM holding %d parked tasks" % P["parked"]]),
    ("streams", bench_streams, ["RSS holding %d status streams" %
                                P["streams"],
                                "status streams told of a cancel"]),
    ("flood", bench_flood, ["RSS under %d unauthenticated 30 MB bodies" %
                            (16 if QUICK else 64)]),
    ("upload", bench_upload, ["RSS taking a 100 MB upload form"]),
    ("relay", bench_relay, ["relay %d in flight, T=%d s: last end after "
                            "last submit" % (P["relay_tasks"],
                                             P["relay_seconds"]),
                            "relay concurrency",
                            "relay RSS per in-flight task",
                            "relay polls per task"]),
    ("resident", bench_resident, ["resident %d tasks (load 2 s, job 0.2 s)"
                                  % P["resident_tasks"]]),
    ("hooks", bench_hooks, ["webhook deliveries/s",
                            "SUCCEEDED to delivery p99"]),
    ("scale", bench_scale, ["scale %s %d worker%s" % (what, n,
                                                      "" if n == 1 else "s")
                            for what in ("claims/s", "tasks/s")
                            for n in P["scale_workers"]]),
]


# ------------------------------------------------------------ output

def fmt_value(v, unit):
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    if unit in ("req/s", "/s"):
        return "{:,.0f} {}".format(v, unit)
    if unit == "ms":
        return "%.2f ms" % v
    if unit == "s":
        return "%.2f s" % v
    if unit == "MB":
        return "%.1f MB" % v
    if unit == "instructions":
        return "{:,.0f}".format(v)
    return "%g %s" % (v, unit)


def table(rows):
    head = ["row", "paddock", "reference", "ratio", "target", "verdict"]
    lines = []
    for r in rows:
        ref = r.get("reference")
        ref_s = "—" if ref is None else "%s %s" % (
            r.get("ref_name", ""), fmt_value(ref, r.get("unit")))
        ratio = "—" if r.get("ratio") is None else "%.2f×" % r["ratio"]
        lines.append([r["row"], fmt_value(r.get("paddock"), r.get("unit")),
                      ref_s, ratio, r.get("target") or "—",
                      r.get("verdict") or "—"])
    w = [max(len(x[i]) for x in [head] + lines) for i in range(len(head))]
    fmt = lambda cells: "| " + " | ".join(  # noqa: E731
        c.ljust(w[i]) for i, c in enumerate(cells)) + " |"
    out = [fmt(head), "|" + "|".join("-" * (n + 2) for n in w) + "|"]
    out += [fmt(x) for x in lines]
    notes = ["%s: %s" % (r["row"], r["note"]) for r in rows if r.get("note")]
    return "\n".join(out), notes


def tool_version(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=10)
        text = (r.stdout + r.stderr).decode(errors="replace").strip()
        return text.splitlines()[0] if text else ""
    except Exception:
        return ""


def fs_type(path):
    best, kind = "", "?"
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            mnt = parts[1]
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and \
                    len(mnt) >= len(best):
                best, kind = mnt, parts[2]
    return "%s on %s" % (kind, best)


def git_commit():
    """The checked-out commit, read from .git without running git."""
    try:
        with open(os.path.join(ROOT, ".git", "HEAD")) as f:
            head = f.read().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        p = os.path.join(ROOT, ".git", ref)
        if os.path.exists(p):
            with open(p) as f:
                return f.read().strip()
        with open(os.path.join(ROOT, ".git", "packed-refs")) as f:
            for line in f:
                if line.strip().endswith(" " + ref):
                    return line.split()[0]
    except OSError:
        pass
    return None


def machine(ctx):
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
            cpu = m.group(1) if m else ""
    except OSError:
        pass
    import sqlite3
    return {
        "cores": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "kernel": platform.release(),
        "tmp_fs": fs_type(ctx.tmp),
        "nofile": ctx.nofile,
        "nginx": tool_version([ctx.tools["nginx"], "-v"]),
        "wrk": tool_version([ctx.tools["wrk"], "-v"]),
        "ffmpeg": tool_version([ctx.tools["ffmpeg"], "-version"]),
        "sqlite": sqlite3.sqlite_version,
        "postgres": tool_version([os.path.join(pg_bindir() or "/nonexistent",
                                               "postgres"), "--version"]),
        "commit": git_commit(),
    }


class Ctx:
    def __init__(self, binary, sqlite_raw, tools, tmp, nofile,
                 copy_engine=None, provider=None):
        self.binary = binary
        self.provider = provider
        self.sqlite_raw = sqlite_raw
        self.copy_engine = copy_engine
        self.tools = tools
        self.tmp = tmp
        self.nofile = nofile
        self._owned = []

    def own(self, thing):
        self._owned.append(thing)
        return thing

    def release(self):
        """Stop whatever a failed row left running (never raises)."""
        for t in reversed(self._owned):
            try:
                if isinstance(t, (Paddock, Worker, Provider)) and t.proc:
                    stop(t.proc, signal.SIGKILL)
                    t.proc = None
                else:
                    t.stop()
            except Exception:
                pass
        self._owned = []


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    want = min(want, 65536)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return soft


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True, help="paddock binary")
    ap.add_argument("--sqlite-raw", required=True, help="bench/sqlite_raw")
    ap.add_argument("--copy-engine",
                    help="bench/copy_engine (default: beside --sqlite-raw)")
    ap.add_argument("--provider",
                    help="tests/fakes/provider (default: beside --bin)")
    ap.add_argument("--nginx", default="nginx")
    ap.add_argument("--wrk", default="wrk")
    ap.add_argument("--ffmpeg", default="ffmpeg")
    ap.add_argument("--valgrind", help="valgrind (the cpu row; optional)")
    ap.add_argument("--vg-shim", help="bench/vg_shim.so, LD_PRELOADed "
                    "under valgrind")
    ap.add_argument("--results", default=os.path.join(BENCH, "results"))
    a = ap.parse_args()

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, _on_signal)
    atexit.register(_cleanup)
    started = time.time()
    load = os.getloadavg()[0]  # other work on the machine skews every row
    nofile = raise_nofile()  # inherited by the servers and wrk
    tmp = tempfile.mkdtemp(prefix="paddock-bench-")
    os.chmod(tmp, 0o755)  # nginx runs as nobody when we are root
    if os.environ.get("BENCH_KEEP"):  # for debugging: logs and databases
        print("bench: keeping %s" % tmp)
    else:
        atexit.register(shutil.rmtree, tmp, True)
    ctx = Ctx(os.path.abspath(a.bin), os.path.abspath(a.sqlite_raw),
              {"nginx": a.nginx, "wrk": a.wrk, "ffmpeg": a.ffmpeg,
               "valgrind": a.valgrind, "vg_shim": a.vg_shim}, tmp,
              nofile, os.path.abspath(a.copy_engine or os.path.join(
                  os.path.dirname(a.sqlite_raw), "copy_engine")),
              os.path.abspath(a.provider or os.path.join(
                  os.path.dirname(a.bin), "tests", "fakes", "provider")))

    print("bench: %s mode, %s; %d cores shared by the servers, wrk and the "
          "references" % ("quick" if QUICK else "full", ctx.binary,
                          len(os.sched_getaffinity(0))), flush=True)
    rows, broken = [], []
    for name, fn, names in SECTIONS:
        if ONLY and name not in ONLY:
            continue
        t0 = time.time()
        print("bench: %s ..." % name, end=" ", flush=True)
        try:
            rows += fn(ctx)
            print("%.1f s" % (time.time() - t0), flush=True)
        except Broken as e:
            print("BROKEN", flush=True)
            broken.append("%s: %s" % (name, e))
            rows += [row(n, paddock="error", verdict="error") for n in names]
        ctx.release()

    text, notes = table(rows)
    wall = time.time() - started
    print()
    print(text)
    print()
    for n in notes:
        print("- " + n)
    print("- paddock: default --http-threads (= cores), nginx: "
          "worker_processes auto (= cores); wrk -t%d -c%d; all on the same "
          "%d cores (no pinning)" % (P["wrk_threads"], P["wrk_connections"],
                                     len(os.sched_getaffinity(0))))
    print("- wall time %.1f s (%s mode); load average at start %.2f" % (
        wall, "quick" if QUICK else "full", load))

    doc = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(
               timespec="seconds"),
           "quick": QUICK, "only": sorted(ONLY), "params": P,
           "wall_s": round(wall, 1), "load_at_start": load,
           "machine": machine(ctx), "rows": rows,
           "broken": broken}
    os.makedirs(a.results, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y%m%dT%H%M%SZ")
    # a quick (CI) run never hides the last full one
    suffix = ".quick.json" if QUICK else ".json"
    for name in (stamp + suffix, "latest" + suffix):
        with open(os.path.join(a.results, name), "w") as f:
            json.dump(doc, f, indent=1, default=str)
            f.write("\n")
    print("- written to %s" % os.path.relpath(
        os.path.join(a.results, "latest" + suffix), os.getcwd()), flush=True)
    for b in broken:
        print("BROKEN " + b, file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
