"""Metrics, readiness and logs: /metrics counts exactly the traffic sent,
/readyz and /healthz answer, and no key or link signature reaches a log."""

import re
import urllib.parse

from lib import KEY, OTHER_KEY, TT, Server, case, main, t2v


def parse_metrics(text):
    """{(name, frozenset(labels)): value} from the Prometheus text format."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        assert m, "bad metrics line: %r" % line
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def metric(ms, name, **labels):
    return ms.get((name, frozenset(labels.items())), 0)


@case
def metrics_count_known_traffic():
    srv = Server(args=["--workers", "0"]).start()
    try:
        ids = [srv.submit(t2v()).json()["output"]["task_id"] for _ in range(3)]
        srv.submit(t2v(), dialect="ttapi")
        for tid in ids[:2]:
            assert srv.query(tid).status == 200
        assert srv.request("GET", "/nowhere").status == 404
        assert srv.query(ids[0], key="wrong-key-000").status == 401
        assert srv.request("POST", "/api/v1/tasks/%s/cancel" % ids[2],
                           headers={"Authorization": "Bearer " + KEY}
                           ).status == 200
        r = srv.request("GET", "/metrics",
                        headers={"Authorization": "Bearer " + KEY})
        assert r.status == 200, r
        assert r.headers["content-type"].startswith("text/plain"), r
        ms = parse_metrics(r.body.decode())
        assert metric(ms, "paddock_http_requests_total", route="submit",
                      status="200") == 4, ms
        assert metric(ms, "paddock_http_requests_total", route="query",
                      status="200") == 2
        assert metric(ms, "paddock_http_requests_total", route="query",
                      status="401") == 1
        assert metric(ms, "paddock_http_requests_total", route="none",
                      status="404") == 1
        assert metric(ms, "paddock_http_requests_total", route="cancel",
                      status="200") == 1
        assert metric(ms, "paddock_http_request_duration_seconds_count",
                      route="submit") == 4
        assert metric(ms, "paddock_http_request_duration_seconds_bucket",
                      route="query", le="+Inf") == 3
        assert metric(ms, "paddock_submits_total") == 4
        assert metric(ms, "paddock_tasks", state="PENDING") == 3
        assert metric(ms, "paddock_tasks", state="CANCELED") == 1
        assert metric(ms, "paddock_queue_depth",
                      model="happyhorse-1.0-t2v") == 3
        assert metric(ms, "paddock_claims_total") == 0
    finally:
        srv.stop()
        srv.cleanup()


@case
def render_metrics_after_a_task():
    srv = Server(args=["--workers", "1"]).start()
    try:
        tid = srv.submit(t2v()).json()["output"]["task_id"]
        srv.wait(tid)
        ms = parse_metrics(srv.request(
            "GET", "/metrics",
            headers={"Authorization": "Bearer " + KEY}).body.decode())
        assert metric(ms, "paddock_claims_total") == 1, ms
        assert metric(ms, "paddock_tasks_succeeded_total") == 1
        assert metric(ms, "paddock_render_seconds_count", engine="sandbox") == 1
        assert metric(ms, "paddock_tasks", state="SUCCEEDED") == 1
    finally:
        srv.stop()
        srv.cleanup()


@case
def health_and_readiness():
    srv = Server(args=["--workers", "0"]).start()
    try:
        r = srv.request("GET", "/healthz")
        assert r.status == 200, r
        r = srv.request("GET", "/readyz")
        assert r.status == 200 and r.json()["status"] == "ready", r
    finally:
        srv.stop()
        srv.cleanup()


@case
def no_secret_in_logs():
    srv = Server(args=["--workers", "1", "--log-level", "debug"]).start()
    try:
        tid = srv.submit(t2v()).json()["output"]["task_id"]
        srv.submit(t2v(), dialect="ttapi", key=OTHER_KEY)
        body = srv.wait(tid)
        link = body["output"]["video_url"]
        assert srv.get_url(link).status == 200
        sig = dict(urllib.parse.parse_qsl(
            urllib.parse.urlsplit(link).query))["signature"]
        srv.get_url(link.replace(sig, "0" * len(sig)))  # a tampered one
        srv.query(tid, key="wrong-secret-key-42")
        srv.request("GET", TT + "/api/v1/tasks/" + tid,
                    headers={"TT-API-KEY": "another-wrong-key-43"})
    finally:
        srv.stop()
    log = srv.log_text()
    srv.cleanup()
    assert 'msg="request"' in log and tid in log, "requests are logged"
    for secret in (KEY, OTHER_KEY, sig, "wrong-secret-key-42",
                   "another-wrong-key-43"):
        assert secret not in log, "secret %r in the log" % secret[:8]


if __name__ == "__main__":
    main()
