"""Webhooks (docs/extensions.md, "Webhooks"): endpoints per key in both
dialects, events signed the Standard Webhooks way and delivered to a
loopback receiver, retried on --webhook-schedule with the same webhook-id
and body, 410 disabling the endpoint, the private-address guard, a SIGKILL
between a status change and its delivery, and (under tests/pg.sh) two API
nodes on one PostgreSQL delivering each event once."""

import base64
import hashlib
import hmac
import http.server
import json
import os
import socket
import subprocess
import tempfile
import threading
import time

from lib import KEY, OTHER_KEY, TT, Server, case, main, t2v

ALLOW = ["--fetch-allow", "127.0.0.1/32"]
FAST = ["--webhook-schedule", "200ms,200ms,400ms"]
SCENARIO = "X-Paddock-Scenario"
EVENTS = ["task.running", "task.succeeded", "task.failed", "task.canceled"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Receiver:
    """A webhook receiver on 127.0.0.1. `plan` is what it answers, request
    by request (an int status, "hang" to answer only after 11 s, "hold" to
    never answer while held); after the plan, 200. Every request is kept."""

    def __init__(self, plan=(), port=0):
        self.plan = list(plan)
        self.got = []  # (headers dict, body bytes, time)
        self.lock = threading.Lock()
        self.release = threading.Event()
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with recv.lock:
                    recv.got.append(({k.lower(): v for k, v in
                                      self.headers.items()}, body,
                                     time.time()))
                    todo = recv.plan.pop(0) if recv.plan else 200
                if todo == "hang":
                    time.sleep(11)
                    todo = 200
                if todo == "hold":
                    recv.release.wait(60)
                    return
                self.send_response(todo)
                if todo in (301, 302):
                    self.send_header("Location", "http://127.0.0.1:1/")
                self.send_header("Content-Length", "2")
                self.end_headers()
                try:
                    self.wfile.write(b"ok")
                except OSError:  # the sender gave up (a timeout case)
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                                     Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d/hook" % self.port
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def events(self):
        with self.lock:
            return [(h, json.loads(b)) for h, b, _ in self.got]

    def wait(self, pred, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred(self.events()):
                return self.events()
            time.sleep(0.05)
        raise AssertionError("receiver: condition not met; got %r" %
                             [(h.get("webhook-id"), b["type"])
                              for h, b in self.events()])


def auth(key=KEY, dialect="dashscope"):
    if dialect == "dashscope":
        return "", {"Authorization": "Bearer " + key,
                    "Content-Type": "application/json"}
    return TT, {"TT-API-KEY": key, "Content-Type": "application/json"}


def create(srv, url, events=None, key=KEY, dialect="dashscope"):
    prefix, h = auth(key, dialect)
    body = {"url": url}
    if events is not None:
        body["events"] = events
    return srv.request("POST", prefix + "/api/v1/webhooks", body, h)


def create_ok(srv, url, events=None, key=KEY):
    r = create(srv, url, events, key)
    assert r.status == 200, r
    return r.json()["output"]


def deliveries(srv, hook_id, key=KEY, dialect="dashscope"):
    prefix, h = auth(key, dialect)
    return srv.request("GET", prefix + "/api/v1/webhooks/%s/deliveries" %
                       hook_id, headers=h)


def verify(secret, headers, body):
    """The Standard Webhooks check, written from the specification."""
    key = base64.b64decode(secret[len("whsec_"):])
    msg = ("%s.%s." % (headers["webhook-id"], headers["webhook-timestamp"])
           ).encode() + body
    want = base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest())
    sigs = [s.split(",", 1)[1] for s in headers["webhook-signature"].split()]
    assert want.decode() in sigs, (headers, want)


def submit_ok(srv, scenario=None):
    h = {SCENARIO: scenario} if scenario else {}
    r = srv.submit(t2v(), headers=h)
    assert r.status == 200, r
    return r.json()["output"]["task_id"]


def started(args=()):
    return Server(args=list(args)).start()


# ------------------------------------------------------------------ cases

@case
def crud_in_both_dialects():
    srv = started(ALLOW)
    try:
        out = create_ok(srv, "https://example.com/hooks", EVENTS[1:])
        assert out["secret"].startswith("whsec_"), out
        assert len(base64.b64decode(out["secret"][6:])) >= 24, out
        assert out["events"] == EVENTS[1:], out
        assert out["status"] == "enabled" and out["created_time"], out
        hid = out["webhook_id"]
        # Listed in the other dialect, without its secret.
        prefix, h = auth(dialect="ttapi")
        r = srv.request("GET", prefix + "/api/v1/webhooks", headers=h)
        assert r.status == 200 and r.json()["request_id"], r
        hooks = r.json()["output"]["webhooks"]
        assert [w["webhook_id"] for w in hooks] == [hid], hooks
        assert "secret" not in hooks[0], hooks
        # Another key sees nothing and can touch nothing.
        r = srv.request("GET", "/api/v1/webhooks", headers=auth(OTHER_KEY)[1])
        assert r.json()["output"]["webhooks"] == [], r
        assert deliveries(srv, hid, OTHER_KEY).status == 404
        r = srv.request("DELETE", "/api/v1/webhooks/" + hid,
                        headers=auth(OTHER_KEY)[1])
        assert r.status == 404 and r.json()["code"] == "NotFound", r
        r = srv.request("POST", TT + "/api/v1/webhooks/%s/deliveries/"
                        "msg_000000000000000000000000/retry" % hid,
                        headers=auth(OTHER_KEY, "ttapi")[1])
        assert r.status == 404, r
        # No events given: all four.
        out2 = create(srv, "http://127.0.0.1:9/x", dialect="ttapi").json()
        assert out2["output"]["events"] == EVENTS, out2
        # Deleted by its key, then gone.
        prefix, h = auth(dialect="ttapi")
        r = srv.request("DELETE", prefix + "/api/v1/webhooks/" + hid,
                        headers=h)
        assert r.status == 200 and r.json()["output"]["deleted"], r
        r = srv.request("DELETE", "/api/v1/webhooks/" + hid,
                        headers=auth()[1])
        assert r.status == 404, r
        assert deliveries(srv, hid).status == 404
    finally:
        srv.stop()


@case
def bad_input_names_the_field():
    srv = started(ALLOW)
    try:
        bad = [
            ({"events": EVENTS}, "url"),
            ({"url": "ftp://example.com/x"}, "url"),
            ({"url": "https://"}, "url"),
            ({"url": "https://e.com/a b"}, "url"),
            ({"url": "https://e.com/" + "a" * 2100}, "url"),
            ({"url": "https://e.com/", "events": []}, "events"),
            ({"url": "https://e.com/", "events": ["task.done"]}, "events[0]"),
            ({"url": "https://e.com/", "events": EVENTS[:1] * 2},
             "events[1]"),
            ({"url": 5}, "url"),
        ]
        for body, field in bad:
            r = srv.request("POST", "/api/v1/webhooks", body, auth()[1])
            assert r.status == 400, (body, r)
            assert r.json()["code"] == "InvalidParameter", r
            assert r.json()["message"].startswith(field), (body, r)
            assert r.json()["request_id"], r
        r = srv.request("POST", "/api/v1/webhooks", b"[1]", auth()[1])
        assert r.status == 400, r
        for _ in range(16):
            create_ok(srv, "https://example.com/h")
        r = create(srv, "https://example.com/h")
        assert r.status == 400 and "16 webhooks" in r.json()["message"], r
        assert create(srv, "https://example.com/h", key=OTHER_KEY).status \
            == 200
        r = deliveries(srv, "not-a-uuid")
        assert r.status == 404, r
    finally:
        srv.stop()


@case
def events_are_signed_and_delivered():
    recv = Receiver()
    srv = started(ALLOW)
    try:
        hook = create_ok(srv, recv.url)
        tid = submit_ok(srv)
        srv.wait(tid)
        got = recv.wait(lambda ev: len(ev) >= 2)
        types = [b["type"] for _, b in got]
        assert types == ["task.running", "task.succeeded"], types
        with recv.lock:
            raw = list(recv.got)
        for h, body, _ in raw:
            verify(hook["secret"], h, body)
            assert abs(int(h["webhook-timestamp"]) - time.time()) < 300, h
            assert h["webhook-id"].startswith("msg_"), h
        _, last = got[-1]
        assert last["data"]["output"]["task_id"] == tid, last
        assert last["data"]["output"]["task_status"] == "SUCCEEDED", last
        assert last["data"]["output"]["video_url"].startswith("http"), last
        assert got[0][1]["data"]["output"]["task_status"] == "RUNNING", got
        assert last["timestamp"].endswith("Z"), last
        # The deliveries, latest first, in both dialects (settled a moment
        # after the receiver answered).
        deadline = time.time() + 10
        while time.time() < deadline:
            d = deliveries(srv, hook["webhook_id"]).json()["output"]
            if all(x["status"] == "delivered" for x in d["deliveries"]):
                break
            time.sleep(0.05)
        for dialect in ("dashscope", "ttapi"):
            r = deliveries(srv, hook["webhook_id"], dialect=dialect)
            assert r.status == 200, r
            out = r.json()["output"]
            assert out["total"] == 2, out
            d = out["deliveries"]
            assert [x["event"] for x in d] == types[::-1], d
            assert all(x["status"] == "delivered" and x["attempt"] == 1 and
                       x["response_code"] == 200 for x in d), d
        # A canceled task and a failed one.
        tid2 = submit_ok(srv, "queue=30s")
        prefix, h = auth()
        r = srv.request("POST", "/api/v1/tasks/%s/cancel" % tid2, headers=h)
        assert r.status == 200, r
        tid3 = submit_ok(srv, "fail=InternalError.Test")
        srv.wait(tid3)
        got = recv.wait(lambda ev: {"task.canceled", "task.failed"} <=
                        {b["type"] for _, b in ev})
        by = {b["type"]: b for _, b in got if b["data"]["output"]["task_id"]
              in (tid2, tid3)}
        assert by["task.canceled"]["data"]["output"]["task_status"] == \
            "CANCELED", by
        assert by["task.failed"]["data"]["output"]["task_status"] == \
            "FAILED", by
        m = srv.request("GET", "/metrics", headers=h).body.decode()
        assert 'paddock_webhook_deliveries_total{result="delivered"}' in m
    finally:
        srv.stop()
        recv.stop()


def one_id(recv, n):
    got = recv.wait(lambda ev: len(ev) >= n)
    ids = {h["webhook-id"] for h, _ in got}
    with recv.lock:
        bodies = {b for _, b, _ in recv.got}
    assert len(ids) == 1 and len(bodies) == 1, (ids, len(bodies))
    return got


@case
def retried_with_the_same_id_and_body():
    recv = Receiver([500, 301, 200])
    srv = started(ALLOW + FAST)
    try:
        hook = create_ok(srv, recv.url, ["task.succeeded"])
        tid = submit_ok(srv)
        srv.wait(tid)
        one_id(recv, 3)
        with recv.lock:
            times = [t for _, _, t in recv.got]
        assert times[1] - times[0] >= 0.15 and times[2] - times[1] >= 0.15, \
            times
        d = deliveries(srv, hook["webhook_id"]).json()["output"]["deliveries"]
        deadline = time.time() + 10
        while d[0]["status"] != "delivered" and time.time() < deadline:
            time.sleep(0.05)
            d = deliveries(srv, hook["webhook_id"]).json()["output"][
                "deliveries"]
        assert d[0]["attempt"] == 3 and d[0]["status"] == "delivered", d
    finally:
        srv.stop()
        recv.stop()


@case
def timeout_then_retried():
    recv = Receiver(["hang"])
    srv = started(ALLOW + FAST)
    try:
        create_ok(srv, recv.url, ["task.succeeded"])
        srv.wait(submit_ok(srv))
        one_id(recv, 2)
    finally:
        srv.stop()
        recv.stop()


@case
def receiver_down_for_a_while():
    port = free_port()
    srv = started(ALLOW + ["--webhook-schedule", "300ms,600ms,1s,2s"])
    recv = None
    try:
        hook = create_ok(srv, "http://127.0.0.1:%d/hook" % port,
                         ["task.succeeded"])
        srv.wait(submit_ok(srv))
        deadline = time.time() + 10
        while time.time() < deadline:
            d = deliveries(srv, hook["webhook_id"]).json()["output"][
                "deliveries"]
            if d and d[0]["attempt"] >= 2:
                break
            time.sleep(0.05)
        assert d[0]["status"] == "pending" and "error" in d[0], d
        recv = Receiver(port=port)
        one_id(recv, 1)
    finally:
        srv.stop()
        if recv:
            recv.stop()


@case
def dead_after_the_schedule_then_retried_by_hand():
    recv = Receiver([500, 500, 500])
    srv = started(ALLOW + ["--webhook-schedule", "200ms,200ms"])
    try:
        hook = create_ok(srv, recv.url, ["task.succeeded"])
        srv.wait(submit_ok(srv))
        one_id(recv, 3)
        deadline = time.time() + 10
        while True:
            d = deliveries(srv, hook["webhook_id"]).json()["output"][
                "deliveries"][0]
            if d["status"] == "dead" or time.time() > deadline:
                break
            time.sleep(0.05)
        assert d["status"] == "dead" and d["attempt"] == 3, d
        assert d["response_code"] == 500 and d["error"] == "HTTP 500", d
        time.sleep(0.5)
        assert len(recv.events()) == 3  # nothing more once dead
        r = srv.request("POST", TT + "/api/v1/webhooks/%s/deliveries/%s/retry"
                        % (hook["webhook_id"], d["delivery_id"]),
                        headers=auth(dialect="ttapi")[1])
        assert r.status == 200 and r.json()["output"]["status"] == \
            "pending", r
        one_id(recv, 4)
    finally:
        srv.stop()
        recv.stop()


@case
def gone_disables_the_endpoint():
    recv = Receiver([410])
    srv = started(ALLOW + FAST)
    try:
        hook = create_ok(srv, recv.url, ["task.succeeded"])
        srv.wait(submit_ok(srv))
        recv.wait(lambda ev: len(ev) == 1)
        deadline = time.time() + 10
        while True:
            hooks = srv.request("GET", "/api/v1/webhooks",
                                headers=auth()[1]).json()["output"]["webhooks"]
            if hooks[0]["status"] == "disabled" or time.time() > deadline:
                break
            time.sleep(0.05)
        assert hooks[0]["status"] == "disabled", hooks
        d = deliveries(srv, hook["webhook_id"]).json()["output"]["deliveries"]
        assert d[0]["status"] == "dead" and d[0]["response_code"] == 410, d
        srv.wait(submit_ok(srv))
        time.sleep(1)
        assert len(recv.events()) == 1
        assert deliveries(srv, hook["webhook_id"]).json()["output"][
            "total"] == 1
    finally:
        srv.stop()
        recv.stop()


@case
def private_address_refused_without_fetch_allow():
    recv = Receiver()
    srv = started(FAST)
    try:
        hook = create_ok(srv, recv.url, ["task.succeeded"])
        srv.wait(submit_ok(srv))
        deadline = time.time() + 10
        while True:
            d = deliveries(srv, hook["webhook_id"]).json()["output"][
                "deliveries"]
            if (d and d[0]["status"] == "dead") or time.time() > deadline:
                break
            time.sleep(0.05)
        assert d[0]["status"] == "dead", d
        assert "loopback and not in --fetch-allow" in d[0]["error"], d
        assert recv.events() == []
    finally:
        srv.stop()
        recv.stop()


@case
def sigkill_before_delivery_delivers_after_restart():
    recv = Receiver(["hold"])
    srv = started(ALLOW + FAST)
    try:
        create_ok(srv, recv.url, ["task.succeeded"])
        srv.wait(submit_ok(srv))
        first = recv.wait(lambda ev: len(ev) == 1)[0][0]["webhook-id"]
        srv.kill()  # the attempt was in flight: never settled
        recv.release.set()
        srv = Server(data=srv.data, args=ALLOW + FAST).start()
        got = recv.wait(lambda ev: len(ev) >= 2, timeout=40)
        assert {h["webhook-id"] for h, _ in got} == {first}, got
        time.sleep(1)
        assert len(recv.events()) == 2, recv.events()
    finally:
        srv.stop()
        recv.stop()


@case
def sdk_verifier_accepts_the_signatures():
    """The npm package standardwebhooks (tests/sdk) checks what arrived."""
    sdk = os.path.join(os.path.dirname(__file__), "..", "sdk")
    if not os.path.isdir(os.path.join(sdk, "node_modules",
                                      "standardwebhooks")):
        raise AssertionError("tests/sdk: run npm ci (scripts/setup.sh)")
    recv = Receiver()
    srv = started(ALLOW)
    try:
        hook = create_ok(srv, recv.url)
        srv.wait(submit_ok(srv))
        recv.wait(lambda ev: len(ev) >= 2)
        with recv.lock:
            msgs = [{"headers": h, "body": b.decode()} for h, b, _ in
                    recv.got]
        msgs.append(dict(msgs[0], body=msgs[0]["body"] + " "))  # tampered
        with tempfile.NamedTemporaryFile("w", suffix=".json",
                                         delete=False) as f:
            json.dump({"secret": hook["secret"], "messages": msgs}, f)
        out = subprocess.run(["node", os.path.join(sdk, "verify_webhooks.mjs"),
                              f.name], capture_output=True, text=True,
                             timeout=60)
        os.unlink(f.name)
        assert out.returncode == 0, out
        res = json.loads(out.stdout)
        assert res == ["ok"] * (len(msgs) - 1) + ["refused"], res
    finally:
        srv.stop()
        recv.stop()


@case
def cli_commands():
    srv = started(ALLOW)
    env = dict(os.environ, PADDOCK_API_KEY=KEY, PADDOCK_BASE_URL=srv.base)
    env.pop("DASHSCOPE_API_KEY", None)
    from lib import BIN

    def cli(*args):
        return subprocess.run([BIN, "webhooks"] + list(args), env=env,
                              capture_output=True, text=True, timeout=60)
    try:
        r = cli("create", "--url", "https://example.com/h", "--events",
                "task.succeeded,task.failed", "--json")
        assert r.returncode == 0, r
        out = json.loads(r.stdout)["output"]
        assert out["events"] == ["task.succeeded", "task.failed"], out
        hid = out["webhook_id"]
        r = cli("create", "--url", "ftp://x")
        assert r.returncode == 3 and "url must be" in r.stderr, r
        r = cli("create")
        assert r.returncode == 2 and "--url" in r.stderr, r
        r = cli("list")
        assert r.returncode == 0 and hid in r.stdout, r
        r = cli("deliveries", hid)
        assert r.returncode == 0 and "0 deliveries" in r.stdout, r
        r = cli("delete", hid, "--dialect", "ttapi")
        assert r.returncode == 0, r
        r = cli("delete", hid)
        assert r.returncode == 3 and "404" in r.stderr, r
        r = cli("nothing")
        assert r.returncode == 2, r
    finally:
        srv.stop()


PG = os.environ.get("PADDOCK_TEST_PG")


@case
def two_nodes_on_postgres_deliver_each_event_once():
    if not PG:
        print("SKIP api.webhooks.two_nodes (no PADDOCK_TEST_PG)")
        return
    name = "hooks_%d" % os.getpid()
    subprocess.run(["psql", "-q", PG, "-c", "DROP DATABASE IF EXISTS " +
                    name], check=True, capture_output=True)
    subprocess.run(["psql", "-q", PG, "-c", "CREATE DATABASE " + name],
                   check=True, capture_output=True)
    store = PG.rsplit("/", 1)[0] + "/" + name
    data = tempfile.mkdtemp(prefix="paddock-hooks-pg-")
    recv = Receiver()
    args = ALLOW + ["--store", store, "--lease", "3s"]
    a = Server(data=data, args=args).start()
    b = Server(data=data, args=args).start()
    try:
        create_ok(a, recv.url, ["task.running", "task.succeeded"])
        tids = [submit_ok(a if i % 2 else b) for i in range(20)]
        for t in tids:
            a.wait(t)
        got = recv.wait(lambda ev: len(ev) >= 40)
        time.sleep(2)
        got = recv.events()
        ids = [h["webhook-id"] for h, _ in got]
        assert len(ids) == len(set(ids)) == 40, (len(ids), len(set(ids)))
        pairs = {(b_["type"], b_["data"]["output"]["task_id"])
                 for _, b_ in got}
        assert len(pairs) == 40, pairs
    finally:
        a.stop()
        b.stop()
        recv.stop()


if __name__ == "__main__":
    main()
