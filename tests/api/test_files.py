"""Result links: signed, expiring, GET and HEAD, byte ranges."""

import time
import urllib.parse

from lib import Server, case, main, t2v


def setup():
    srv = Server(args=["--workers", "2"]).start()
    r = srv.submit(t2v(seed=11))
    assert r.status == 200, r
    body = srv.wait(r.json()["output"]["task_id"])
    assert body["output"]["task_status"] == "SUCCEEDED", body
    srv.url = body["output"]["video_url"]
    srv.full = srv.get_url(srv.url).body
    assert len(srv.full) > 1000
    return srv


def teardown(srv):
    srv.stop()
    srv.cleanup()


def with_query(url, **changes):
    u = urllib.parse.urlsplit(url)
    q = dict(urllib.parse.parse_qsl(u.query))
    q.update(changes)
    q = {k: v for k, v in q.items() if v is not None}
    return urllib.parse.urlunsplit(u._replace(query=urllib.parse.urlencode(q)))


@case
def whole_file(srv):
    r = srv.get_url(srv.url)
    assert r.status == 200, r
    assert r.headers["content-type"] == "video/mp4"
    assert r.headers["accept-ranges"] == "bytes"
    assert int(r.headers["content-length"]) == len(srv.full)
    assert r.body[4:8] == b"ftyp"


@case
def head(srv):
    r = srv.get_url(srv.url, method="HEAD")
    assert r.status == 200, r
    assert r.body == b""
    assert int(r.headers["content-length"]) == len(srv.full)
    assert r.headers["content-type"] == "video/mp4"
    assert r.headers["accept-ranges"] == "bytes"


def ranged(srv, spec, start, end):
    r = srv.get_url(srv.url, headers={"Range": "bytes=" + spec})
    n = len(srv.full)
    assert r.status == 206, (spec, r)
    assert r.headers["content-range"] == "bytes %d-%d/%d" % (start, end, n), \
        (spec, r.headers)
    assert r.body == srv.full[start:end + 1], spec
    assert int(r.headers["content-length"]) == end - start + 1


@case
def first_bytes(srv):
    ranged(srv, "0-99", 0, 99)
    ranged(srv, "0-0", 0, 0)


@case
def middle(srv):
    n = len(srv.full)
    ranged(srv, "%d-%d" % (n // 3, n // 2), n // 3, n // 2)


@case
def open_ended_and_suffix(srv):
    n = len(srv.full)
    ranged(srv, "%d-" % (n - 500), n - 500, n - 1)
    ranged(srv, "-100", n - 100, n - 1)
    ranged(srv, "-%d" % (n + 1000), 0, n - 1)  # a suffix longer than it
    ranged(srv, "10-%d" % (n * 2), 10, n - 1)  # an end past it


@case
def past_the_end(srv):
    n = len(srv.full)
    for spec in ("%d-" % n, "%d-%d" % (n + 10, n + 20), "-0"):
        r = srv.get_url(srv.url, headers={"Range": "bytes=" + spec})
        assert r.status == 416, (spec, r)
        assert r.headers["content-range"] == "bytes */%d" % n, r.headers


@case
def ranges_we_ignore(srv):
    # Several ranges, or a syntax we do not know: the whole file (RFC 9110).
    for spec in ("bytes=0-1,5-6", "items=0-5", "bytes=5-2"):
        r = srv.get_url(srv.url, headers={"Range": spec})
        assert r.status == 200 and r.body == srv.full, (spec, r.status)


@case
def tampered_signature(srv):
    u = urllib.parse.urlsplit(srv.url)
    sig = dict(urllib.parse.parse_qsl(u.query))["signature"]
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    for url in (with_query(srv.url, signature=flipped),
                with_query(srv.url, signature=None),
                with_query(srv.url, expires=None),
                with_query(srv.url, expires="99999999999"),
                srv.url.replace("-1.mp4", "-2.mp4")):
        r = srv.get_url(url)
        assert r.status == 403, (url, r)
        assert r.json()["code"] == "AccessDenied", r
        assert srv.get_url(url, method="HEAD").status == 403


@case
def link_works_without_auth_and_from_host(srv):
    # The URL is absolute, names the port we used, needs no key.
    assert srv.url.startswith("http://127.0.0.1:%d/" % srv.port), srv.url
    assert srv.get_url(srv.url).status == 200


@case
def expired_link_and_task(srv):
    # Retention 6 s: the task, its link and its file expire together.
    short = Server(args=["--workers", "1", "--retention", "6s"]).start()
    try:
        r = short.submit(t2v(seed=3))
        tid = r.json()["output"]["task_id"]
        body = short.wait(tid, timeout=30)
        assert body["output"]["task_status"] == "SUCCEEDED", body
        url = body["output"]["video_url"]
        assert short.get_url(url).status == 200
        expires = int(dict(urllib.parse.parse_qsl(
            urllib.parse.urlsplit(url).query))["expires"])
        while time.time() < expires + 0.5:
            time.sleep(0.2)
        r = short.get_url(url)
        assert r.status == 403, r
        q = short.query(tid).json()
        assert q["output"]["task_status"] == "UNKNOWN", q
    finally:
        short.stop()
        short.cleanup()


if __name__ == "__main__":
    main(setup, teardown)
