"""The usage ledger, quotas and the keys API (docs/extensions.md, "Usage")
over real HTTP on 127.0.0.1: a day of mixed tasks (succeeded, failed,
canceled, timed out, a video-edit with input seconds) reports exactly the
SUCCEEDED tasks' billed usage.duration and amounts; group_by each way;
the CSV export of `paddock usage`; admin against ordinary keys (403);
quota and balance refusals in both dialects with their documented codes;
revocation at once; a SIGKILL mid-render then a rescue settles once.
SQLite by default; on PostgreSQL under tests/pg.sh.

Amounts are compared as exact decimals (Python's Decimal), never floats."""

import base64
import csv
import decimal
import io
import os
import shutil
import subprocess
import tempfile
import time

from lib import BIN, KEY, OTHER_KEY, TT, Server, case, main, t2v

D = decimal.Decimal
DIR = tempfile.mkdtemp(prefix="paddock-usage-")
HEADER = "X-Paddock-Scenario"
PRICE_T2V_480 = D("0.123456")
PRICE_T2V_720 = D("0.2")
PRICE_EDIT_480 = D("0.5")
ARREARS = "Access denied, please make sure your account is in good standing."
CONF = os.path.join(DIR, "paddock.conf")
with open(CONF, "w") as f:
    f.write("price.happyhorse-1.0-t2v.480P = %s\n" % PRICE_T2V_480)
    f.write("price.happyhorse-1.0-t2v.720p = %s\n" % PRICE_T2V_720)
    f.write("price.happyhorse-1.0-video-edit.480P = %s\n" % PRICE_EDIT_480)
    # i2v on a program that outlives its deadline: InternalError.Timeout.
    f.write("engine.slow = command:/bin/sleep 30\n")
    f.write("model.happyhorse-1.0-i2v = slow\n")
    f.write("model.happyhorse-1.0-t2v = default\n")
    f.write("model.happyhorse-1.0-video-edit = default\n")
    f.write("model-deadline = happyhorse-1.0-i2v=1s\n")


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-v", "error", "-y"] + list(args), check=True)


PG = os.environ.get("PADDOCK_TEST_PG")  # set by tests/pg.sh: that store
_dbs = [0]


def store_args():
    """--store of a fresh PostgreSQL database under tests/pg.sh, else none
    (SQLite in the data directory)."""
    if not PG:
        return []
    _dbs[0] += 1
    name = "paddock_usage_%d_%d" % (os.getpid(), _dbs[0])
    subprocess.run(["psql", "-q", PG, "-c", "CREATE DATABASE " + name],
                   check=True, capture_output=True)
    return ["--store", PG.rsplit("/", 1)[0] + "/" + name]


def mint_admin(data, store):
    """`paddock keys create --admin` on the server's store."""
    out = subprocess.run([BIN, "keys", "create", "--admin", "--name", "root",
                          "--data", data] + store, check=True,
                         capture_output=True)
    return out.stdout.decode().strip()


def auth(key, dialect="dashscope"):
    return ({"Authorization": "Bearer " + key} if dialect == "dashscope"
            else {"TT-API-KEY": key})


def prefix(dialect):
    return "" if dialect == "dashscope" else TT


def api(srv, method, path, key, body=None, dialect="dashscope"):
    h = auth(key, dialect)
    if body is not None:
        h["Content-Type"] = "application/json"
    return srv.request(method, prefix(dialect) + path, body, h)


def new_key(srv, admin_key, **body):
    r = api(srv, "POST", "/api/v1/keys", admin_key, body)
    assert r.status == 200, r
    out = r.json()["output"]
    assert out["key"].startswith("pdk_" + out["key_id"] + "_"), out
    return out


def usage(srv, key, query="", dialect="dashscope"):
    r = api(srv, "GET", "/api/v1/usage" + query, key, dialect=dialect)
    assert r.status == 200, r
    assert r.json()["request_id"], r
    return r.json()["output"]


def accepted(r):
    assert r.status == 200, r
    return r.json()["output"]["task_id"]


def setup():
    data = tempfile.mkdtemp(prefix="data-", dir=DIR)
    store = store_args()
    admin = mint_admin(data, store)
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x480:rate=24",
           "-f", "lavfi", "-i", "sine=frequency=440", "-t", "3.5",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           "-c:a", "aac", "-shortest", os.path.join(DIR, "clip.mp4"))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x480", "-frames:v", "1",
           os.path.join(DIR, "frame.png"))
    srv = Server(data=data,
                 args=["--workers", "2", "--config", CONF] + store)
    srv.start()
    srv.admin = admin
    srv.store = store
    return srv


def teardown(srv):
    srv.stop()
    srv.cleanup()
    shutil.rmtree(DIR, ignore_errors=True)


def billed(out):
    """A query's usage.duration as the exact decimal it prints."""
    return D(str(out["usage"]["duration"]))


@case
def a_day_of_mixed_tasks_bills_only_successes(srv):
    k = new_key(srv, srv.admin, name="mixed")["key"]
    ok = [accepted(srv.submit(t2v(duration=3), key=k)),
          accepted(srv.submit(t2v(duration=5), key=k)),
          accepted(srv.submit(t2v(duration=4, resolution="720P"), key=k))]
    failed = accepted(srv.submit(t2v(), key=k,
                                 headers={HEADER: "fail=InternalError.Algo"}))
    canceled = accepted(srv.submit(t2v(), key=k, headers={HEADER: "queue=1m"}))
    r = srv.request("POST", "/api/v1/tasks/%s/cancel" % canceled,
                    headers=auth(k))
    assert r.status == 200, r
    # Past its deadline: FAILED InternalError.Timeout.
    timed_out = accepted(srv.submit(
        {"model": "happyhorse-1.0-i2v",
         "input": {"prompt": "slow", "img_url": "data:image/png;base64," +
                   base64.b64encode(open(os.path.join(DIR, "frame.png"),
                                         "rb").read()).decode()},
         "parameters": {"resolution": "480P", "duration": 3}},
        key=k))
    # A video-edit: billed input + output seconds, two decimals.
    up = srv.request("POST", "/api/v1/uploads",
                     open(os.path.join(DIR, "clip.mp4"), "rb").read(),
                     dict(auth(k), **{"Content-Type": "video/mp4"}))
    assert up.status == 200, up
    edit = accepted(srv.submit(
        {"model": "happyhorse-1.0-video-edit",
         "input": {"prompt": "make it snow", "media": [
             {"type": "video", "url": up.json()["output"]["url"]}]},
         "parameters": {"resolution": "480P"}}, key=k))
    outs = [srv.wait(t, key=k) for t in ok + [edit]]
    for o in outs:
        assert o["output"]["task_status"] == "SUCCEEDED", o
    assert srv.wait(failed, key=k)["output"]["task_status"] == "FAILED"
    t = srv.wait(timed_out, key=k, timeout=60)["output"]
    assert t["task_status"] == "FAILED" and t["code"] == \
        "InternalError.Timeout", t
    assert srv.wait(canceled, key=k)["output"]["task_status"] == "CANCELED"

    prices = [PRICE_T2V_480, PRICE_T2V_480, PRICE_T2V_720, PRICE_EDIT_480]
    seconds = [billed(o) for o in outs]
    assert seconds[:3] == [3, 5, 4], seconds
    u = outs[3]["usage"]
    assert D(str(u["input_video_duration"])) > 3, u  # input seconds billed
    amounts = [(p * s).quantize(D("0.000001"), decimal.ROUND_HALF_UP)
               for p, s in zip(prices, seconds)]
    out = usage(srv, k)
    assert out["group_by"] == "model", out
    assert out["total"]["tasks"] == 4, out
    assert D(str(out["total"]["seconds"])) == sum(seconds), out
    assert D(out["total"]["amount"]) == sum(amounts), (out, amounts)
    rows = {r["model"]: r for r in out["rows"]}
    assert set(rows) == {"happyhorse-1.0-t2v", "happyhorse-1.0-video-edit"}
    assert rows["happyhorse-1.0-t2v"]["tasks"] == 3, rows
    assert D(str(rows["happyhorse-1.0-t2v"]["seconds"])) == 12, rows
    assert D(rows["happyhorse-1.0-video-edit"]["amount"]) == amounts[3]
    res = {r["resolution"]: r for r in usage(srv, k, "?group_by=resolution")
           ["rows"]}
    assert set(res) == {"480P", "720P"}, res
    assert D(res["720P"]["amount"]) == D("0.8"), res
    days = usage(srv, k, "?group_by=day", dialect="ttapi")["rows"]
    assert len(days) == 1 and days[0]["tasks"] == 4, days
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))
    assert days[0]["day"] == day, days
    # A window that ends before the tasks: nothing.
    past = usage(srv, k, "?start_time=20200101000000&end_time=20200102000000")
    assert past["total"] == {"tasks": 0, "seconds": 0, "amount": "0.000000"}

    # The CLI's export, through the API of this node.
    cli = subprocess.run(
        [BIN, "usage", "--csv", "--group-by", "model", "--base-url",
         srv.base, "--key", k], capture_output=True, check=True)
    rows = list(csv.DictReader(io.StringIO(cli.stdout.decode())))
    assert [r["model"] for r in rows] == ["happyhorse-1.0-t2v",
                                          "happyhorse-1.0-video-edit"], rows
    assert sum(D(r["amount"]) for r in rows) == sum(amounts), rows
    assert sum(D(r["seconds"]) for r in rows) == sum(seconds), rows


@case
def ordinary_keys_get_403_on_admin_routes(srv):
    for dialect in ("dashscope", "ttapi"):
        for method, path, body in (("GET", "/api/v1/keys", None),
                                   ("POST", "/api/v1/keys", {}),
                                   ("PATCH", "/api/v1/keys/abc", {}),
                                   ("DELETE", "/api/v1/keys/abc", None)):
            r = api(srv, method, path, KEY, body, dialect)
            assert r.status == 403, (method, path, r)
            assert r.json()["code"] == "AccessDenied", r
            assert r.json()["request_id"], r
        for q in ("?key_id=someone", "?group_by=key"):
            r = api(srv, "GET", "/api/v1/usage" + q, KEY, dialect=dialect)
            assert r.status == 403 and r.json()["code"] == "AccessDenied", r
    # Its own usage it may read (nothing yet).
    assert usage(srv, OTHER_KEY)["total"]["tasks"] == 0
    # The admin sees every key; secrets are never listed.
    listed = api(srv, "GET", "/api/v1/keys", srv.admin)
    assert listed.status == 200, listed
    assert all("key" not in k for k in listed.json()["output"]["keys"])
    assert any(k["admin"] for k in listed.json()["output"]["keys"])
    by_key = usage(srv, srv.admin, "?group_by=key")
    assert by_key["key_id"] is None, by_key


@case
def bad_inputs_name_the_field(srv):
    for q, field in (("?group_by=week", "group_by"),
                     ("?start_time=2026", "start_time"),
                     ("?start_time=20200101000000&end_time=20220101000000",
                      "366 days")):
        r = api(srv, "GET", "/api/v1/usage" + q, KEY)
        assert r.status == 400 and field in r.json()["message"], r
    for body, field in (({"quota": {"seconds": 0, "period": "day"}},
                         "quota.seconds"),
                        ({"quota": {"seconds": 5}}, "quota.period"),
                        ({"quota": {"amount": "1.1234567", "period": "day"}},
                         "quota.amount"),
                        ({"quota": {"balance": 1.5}}, "quota.balance"),
                        ({"admin": "yes"}, "admin"),
                        ({"colour": 1}, "colour"),
                        ({"scenario": "fail-rate=2"}, "scenario")):
        r = api(srv, "POST", "/api/v1/keys", srv.admin, body)
        assert r.status == 400, (body, r)
        assert r.json()["code"] == "InvalidParameter", r
        assert field in r.json()["message"], (field, r)


@case
def quotas_refuse_in_both_dialects(srv):
    made = new_key(srv, srv.admin, name="q",
                   quota={"seconds": 6, "period": "day"})
    assert made["quota"] == {"seconds": 6, "period": "day"}, made
    k = made["key"]
    first = accepted(srv.submit(t2v(duration=3), key=k,
                                headers={"Idempotency-Key": "one"}))
    accepted(srv.submit(t2v(duration=3), key=k))
    r = srv.submit(t2v(duration=3), key=k)
    assert r.status == 400, r
    assert r.json()["code"] == "Arrearage", r
    assert r.json()["message"] == ARREARS, r
    r = srv.submit(t2v(duration=3), key=k, dialect="ttapi")
    assert r.status == 402, r
    body = r.json()
    assert body["status"] == "FAILED" and body["data"] is None, body
    assert body["message"] == ARREARS and body["request_id"], body
    # The same request again is its first task, not a refusal.
    again = srv.submit(t2v(duration=3), key=k,
                       headers={"Idempotency-Key": "one"})
    assert again.status == 200 and \
        again.json()["output"]["task_id"] == first, again
    m = srv.request("GET", "/metrics", headers=auth(KEY)).body.decode()
    line = [x for x in m.splitlines()
            if x.startswith("paddock_quota_refusals_total ")]
    assert line and int(line[0].split()[1]) >= 2, line
    assert 'paddock_billed_seconds_total{model="happyhorse-1.0-t2v"' in m


@case
def a_balance_pays_until_it_is_spent(srv):
    # 0.123456 a second: a 3 s task holds 0.370368; two fit in 1.0.
    made = new_key(srv, srv.admin, quota={"balance": "1"})
    assert made["quota"] == {"balance": "1.000000"}, made
    k, kid = made["key"], made["key_id"]
    a = accepted(srv.submit(t2v(duration=3), key=k))
    b = accepted(srv.submit(t2v(duration=3), key=k))
    r = srv.submit(t2v(duration=3), key=k)
    assert r.status == 400 and r.json()["code"] == "Arrearage", r
    srv.wait(a, key=k)
    srv.wait(b, key=k)
    left = [x for x in api(srv, "GET", "/api/v1/keys", srv.admin)
            .json()["output"]["keys"] if x["key_id"] == kid][0]
    assert D(left["quota"]["balance"]) == D("1") - 2 * D("0.370368"), left
    # A top-up: the balance left is what the PATCH says.
    r = api(srv, "PATCH", "/api/v1/keys/" + kid, srv.admin,
            {"quota": {"balance": "0.5"}}, dialect="ttapi")
    assert r.status == 200, r
    assert r.json()["output"]["quota"] == {"balance": "0.500000"}, r
    srv.wait(accepted(srv.submit(t2v(duration=3), key=k)), key=k)
    r = srv.submit(t2v(duration=3), key=k)
    assert r.status == 400 and r.json()["code"] == "Arrearage", r


@case
def revoked_and_deleted_keys_stop_at_once(srv):
    made = new_key(srv, srv.admin, name="short-lived")
    k, kid = made["key"], made["key_id"]
    assert usage(srv, k)["total"]["tasks"] == 0
    r = api(srv, "PATCH", "/api/v1/keys/" + kid, srv.admin,
            {"revoked": True, "name": "gone"})
    assert r.status == 200 and r.json()["output"]["revoked"], r
    r = api(srv, "GET", "/api/v1/usage", k)
    assert r.status == 401 and r.json()["code"] == "InvalidApiKey", r
    r = api(srv, "PATCH", "/api/v1/keys/" + kid, srv.admin, {"revoked": False})
    assert r.status == 400 and "revoked" in r.json()["message"], r
    r = api(srv, "DELETE", "/api/v1/keys/" + kid, srv.admin)
    assert r.status == 200 and r.json()["output"]["deleted"], r
    r = api(srv, "DELETE", "/api/v1/keys/" + kid, srv.admin)
    assert r.status == 404 and r.json()["code"] == "NotFound", r
    # An admin made through the API may use it.
    sub = new_key(srv, srv.admin, admin=True)
    assert api(srv, "GET", "/api/v1/keys", sub["key"]).status == 200


@case
def keys_set_from_a_shell_changes_the_quota(srv):
    made = new_key(srv, srv.admin, name="shell")
    k = made["key"]
    cmd = [BIN, "keys", "set", made["key_id"], "--quota", "seconds=4/month",
           "--name", "from-shell", "--data", srv.data] + srv.store
    subprocess.run(cmd, check=True, capture_output=True)
    bad = subprocess.run(cmd[:5] + ["seconds=4/week", "--data", srv.data] +
                         srv.store, capture_output=True)
    assert bad.returncode == 2 and b"--quota" in bad.stderr, bad
    listed = [x for x in api(srv, "GET", "/api/v1/keys", srv.admin)
              .json()["output"]["keys"] if x["key_id"] == made["key_id"]][0]
    assert listed["name"] == "from-shell", listed
    assert listed["quota"] == {"seconds": 4, "period": "month"}, listed
    # The quota is read in the submit's transaction: at once.
    accepted(srv.submit(t2v(duration=3), key=k))
    r = srv.submit(t2v(duration=3), key=k)
    assert r.status == 400 and r.json()["code"] == "Arrearage", r
    subprocess.run(cmd[:5] + ["none", "--data", srv.data] + srv.store,
                   check=True, capture_output=True)
    accepted(srv.submit(t2v(duration=3), key=k))


@case
def sigkill_mid_render_settles_once(_shared):
    """Settlement is in the transaction that commits SUCCEEDED: a crash
    before it leaves the hold open, the rescue runs the task again (killed
    once more during that retry), and its one finish settles it. The quota
    shows no hold is left behind and nothing was billed twice."""
    data = tempfile.mkdtemp(prefix="kill-", dir=DIR)
    store = store_args()
    admin = mint_admin(data, store)
    args = ["--workers", "1", "--lease", "2s", "--config", CONF] + store
    srv = Server(data=data, args=args).start()
    try:
        k = new_key(srv, admin, quota={"seconds": 9, "period": "month"})["key"]
        tid = accepted(srv.submit(t2v(duration=3), key=k,
                                  headers={HEADER: "run=3s"}))
        srv.wait(tid, want=("RUNNING",), key=k)
        srv.kill()
        # Rescued and claimed again: killed again during that retry.
        srv = Server(data=data, args=args).start()
        deadline = time.time() + 60
        while not [x for x in srv.log_text().splitlines()
                   if 'msg="task started" task_id=%s' % tid in x and
                   "attempt=2" in x]:
            assert time.time() < deadline, srv.log_text()[-3000:]
            time.sleep(0.05)
        srv.kill()
        srv = Server(data=data, args=args).start()
        out = srv.wait(tid, key=k, timeout=60)
        assert out["output"]["task_status"] == "SUCCEEDED", out
        u = usage(srv, k)
        assert u["total"]["tasks"] == 1 and u["total"]["seconds"] == 3, u
        # 3 used of 9: two more 3 s tasks fit, a third does not.
        accepted(srv.submit(t2v(duration=3), key=k))
        accepted(srv.submit(t2v(duration=3), key=k))
        r = srv.submit(t2v(duration=3), key=k)
        assert r.status == 400 and r.json()["code"] == "Arrearage", r
    finally:
        srv.stop()
        srv.cleanup()


if __name__ == "__main__":
    main(setup, teardown)
