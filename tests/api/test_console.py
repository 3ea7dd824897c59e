"""The web console's routes (docs/extensions.md, "The web console"): its
files under a strict policy with an ETag, and the two small routes its
pages read, GET /api/v1/engines and GET /api/v1/tasks/{id}/input, in both
dialects. (tests/browser/ drives the pages themselves in chromium.)"""

import base64
import json
import os
import time
import uuid

from lib import KEY, OTHER_KEY, TT, Server, case, main, t2v

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
WEB = os.path.join(ROOT, "web", "console")
BEARER = {"Authorization": "Bearer " + KEY}
# Only its size and type are shown; the task may fail on it, no matter.
# 70 bytes: two padding characters.
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 62).decode()


def setup():
    return Server(args=["--workers", "1"]).start()


def teardown(srv):
    srv.stop()
    srv.cleanup()


@case
def console_files_are_the_tree(srv):
    for name in sorted(os.listdir(WEB)):
        with open(os.path.join(WEB, name), "rb") as f:
            want = f.read()
        r = srv.request("GET", "/console/" + name)
        assert r.status == 200, (name, r)
        assert r.body == want, "%s: not the bytes of web/console" % name
    r = srv.request("GET", "/console")
    with open(os.path.join(WEB, "index.html"), "rb") as f:
        assert r.status == 200 and r.body == f.read(), r
    assert r.headers["content-type"] == "text/html; charset=utf-8", r
    assert srv.request("GET", "/console/").body == r.body
    types = {"app.js": "text/javascript", "console.css": "text/css",
             "icon.svg": "image/svg+xml"}
    for name, t in types.items():
        got = srv.request("GET", "/console/" + name).headers["content-type"]
        assert got.startswith(t), (name, got)


@case
def console_inserts_no_markup(srv):
    """Text from the API goes in as text: nothing in web/console parses a
    string as HTML or code."""
    banned = ("innerHTML", "outerHTML", "insertAdjacentHTML",
              "document.write", "eval(", "new Function")
    for name in sorted(os.listdir(WEB)):
        with open(os.path.join(WEB, name)) as f:
            src = f.read()
        for b in banned:
            assert b not in src, "%s uses %s" % (name, b)


@case
def console_headers(srv):
    r = srv.request("GET", "/console")
    csp = r.headers["content-security-policy"]
    for d in ("default-src 'self'", "script-src 'self'", "style-src 'self'",
              "frame-ancestors 'none'", "object-src 'none'",
              "base-uri 'none'"):
        assert d in csp, (d, csp)
    assert "unsafe" not in csp, csp
    assert r.headers["x-content-type-options"] == "nosniff", r
    assert r.headers["cache-control"] == "no-cache", r
    etag = r.headers["etag"]
    assert etag.startswith('"') and len(etag) == 18, etag
    again = srv.request("GET", "/console", headers={"If-None-Match": etag})
    assert again.status == 304 and again.body == b"", again
    other = srv.request("GET", "/console/app.js",
                        headers={"If-None-Match": etag})
    assert other.status == 200 and other.headers["etag"] != etag, other
    # No inline script or style anywhere in the page.
    html = r.body.decode()
    assert "<script>" not in html and " style=" not in html, html


@case
def console_unknown_file(srv):
    for path in ("/console/nope.js", "/console/..%2fapi.c"):
        r = srv.request("GET", path)
        assert r.status == 404 and r.json()["code"] == "NotFound", (path, r)
        assert "request_id" in r.json(), r
    r = srv.request("POST", "/console", b"{}")
    assert r.status == 405, r


@case
def console_public_url_origin(srv):
    s = Server(args=["--workers", "0", "--public-url",
                     "https://video.example.com:8443/base"]).start()
    try:
        csp = s.request("GET", "/console").headers["content-security-policy"]
        assert "media-src 'self' blob: https://video.example.com:8443;" \
            in csp, csp
    finally:
        s.stop()
        s.cleanup()


@case
def engines_both_dialects(srv):
    for path, h in (("/api/v1/engines", BEARER),
                    (TT + "/api/v1/engines", {"TT-API-KEY": KEY})):
        r = srv.request("GET", path, headers=h)
        assert r.status == 200, r
        j = r.json()
        assert j["utc_offset_minutes"] == 480, j
        (e,) = j["engines"]
        assert e["name"] == "default" and e["backend"] == "sandbox", e
        assert e["available"] is True and e["in_flight"] == 0, e
        assert isinstance(e["capacity"], int) and e["capacity"] >= 1, e
        assert "happyhorse-1.0-t2v" in e["models"], e
    assert srv.request("GET", "/api/v1/engines").status == 401
    r = srv.request("GET", TT + "/api/v1/engines")
    assert r.status == 401 and r.json()["status"] == "FAILED", r


@case
def engines_count_pending(srv):
    # queue= keeps them PENDING until canceled.
    ids = []
    for i in range(3):
        r = srv.submit(t2v("queued %d" % i, seed=i),
                       headers={"X-Paddock-Scenario": "queue=30s"})
        assert r.status == 200, r
        ids.append(r.json()["output"]["task_id"])
    e = srv.request("GET", "/api/v1/engines",
                    headers=BEARER).json()["engines"][0]
    assert e["pending"] >= 3, e
    for t in ids:
        srv.request("POST", "/api/v1/tasks/%s/cancel" % t, headers=BEARER)
    e = srv.request("GET", "/api/v1/engines",
                    headers=BEARER).json()["engines"][0]
    assert e["pending"] == 0, e


@case
def engines_unavailable_says_why(srv):
    # A relay to a port nothing listens on fails its health check.
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    s = Server(args=["--workers", "1", "--engine",
                     "upstream:dashscope http://127.0.0.1:%d key=k" % port])
    s.start()
    try:
        deadline = time.time() + 30
        while True:
            r = s.request("GET", "/api/v1/engines", headers=BEARER)
            assert r.status == 200, r
            (e,) = r.json()["engines"]
            if not e["available"] or time.time() > deadline:
                break
            time.sleep(0.2)
        assert e["backend"] == "upstream" and e["available"] is False, e
        assert "unreachable" in e["message"], e
        assert str(port) not in e["message"], e
    finally:
        s.stop()
        s.cleanup()


@case
def input_of_a_task(srv):
    body = t2v("a horse [paddock: run=0s] at dawn", seed=42, ratio="1:1",
               watermark=False)
    r = srv.submit(body)
    assert r.status == 200, r
    tid = r.json()["output"]["task_id"]
    for path, h in (("/api/v1/tasks/%s/input" % tid, BEARER),
                    (TT + "/api/v1/tasks/%s/input" % tid,
                     {"TT-API-KEY": KEY})):
        r = srv.request("GET", path, headers=h)
        assert r.status == 200, r
        o = r.json()["output"]
        assert o["task_id"] == tid and o["model"] == "happyhorse-1.0-t2v", o
        assert o["task"] == "t2v" and o["media"] == [], o
        assert o["prompt"] == "a horse [paddock: run=0s] at dawn", o
        assert o["parameters"] == {"resolution": "480P", "ratio": "1:1",
                                   "duration": 3, "watermark": False,
                                   "seed": 42}, o


@case
def input_media_and_defaults(srv):
    body = {"model": "happyhorse-1.0-i2v",
            "input": {"media": [{"type": "first_frame",
                                 "url": "data:image/png;base64," + PNG}]}}
    r = srv.submit(body)
    assert r.status == 200, r
    tid = r.json()["output"]["task_id"]
    o = srv.request("GET", "/api/v1/tasks/%s/input" % tid,
                    headers=BEARER).json()["output"]
    assert "prompt" not in o, o
    (m,) = o["media"]
    assert m["type"] == "first_frame" and "url" not in m, m
    assert m["inline_type"] == "image/png", m
    assert m["inline_bytes"] == 70, m
    p = o["parameters"]
    assert p["resolution"] == "1080P" and p["watermark"] is True, p
    assert "ratio" not in p and 0 <= p["seed"] <= 2147483647, p


@case
def input_of_another_key_is_not_found(srv):
    r = srv.submit(t2v("mine"))
    tid = r.json()["output"]["task_id"]
    for t, key in ((tid, OTHER_KEY), (str(uuid.uuid4()), KEY),
                   ("not-a-uuid", KEY)):
        r = srv.request("GET", "/api/v1/tasks/%s/input" % t,
                        headers={"Authorization": "Bearer " + key})
        assert r.status == 404, r
        j = r.json()
        assert j["code"] == "NotFound" and "request_id" in j, j
        assert json.dumps(j).find("mine") < 0, j


if __name__ == "__main__":
    main(setup, teardown)
