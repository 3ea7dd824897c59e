"""Synchronous errors over real HTTP: keys, the async header, bodies that
are malformed, invalid or too large, unknown routes; and the aliases real
clients send (trailing slashes, charset in Content-Type)."""

import socket
import uuid

from lib import KEY, SUBMIT, TT, Server, case, main, t2v

TT_401 = {"status": "FAILED",
          "message": "Wrong TT-API-KEY or email is not activated.",
          "data": None}


def setup():
    # Workers 0: nothing here needs a render; tasks just stay PENDING.
    return Server(args=["--workers", "0", "--body-limit", "256K"]).start()


def teardown(srv):
    srv.stop()
    srv.cleanup()


def error(r, status, code, fragment=None):
    assert r.status == status, r
    assert r.headers["content-type"] == "application/json", r.headers
    body = r.json()
    assert set(body) == {"request_id", "code", "message"}, body
    assert body["code"] == code, body
    assert body["request_id"] == r.headers["x-request-id"], (body, r.headers)
    uuid.UUID(body["request_id"])
    if fragment:
        assert fragment in body["message"], body
    return body


@case
def no_key_dashscope(srv):
    r = srv.request("POST", SUBMIT, t2v(), {"X-DashScope-Async": "enable"})
    body = error(r, 401, "InvalidApiKey")
    assert body["message"] == "No API-key provided.", body
    r = srv.request("GET", "/api/v1/tasks/" + str(uuid.uuid4()))
    assert error(r, 401, "InvalidApiKey")["message"] == \
        "No API-key provided."


@case
def wrong_key_dashscope(srv):
    r = srv.submit(t2v(), key="nope")
    body = error(r, 401, "InvalidApiKey")
    assert body["message"] == "Invalid API-key provided.", body
    r = srv.query(str(uuid.uuid4()), key="nope")
    error(r, 401, "InvalidApiKey", "Invalid API-key provided.")


@case
def wrong_and_missing_key_ttapi(srv):
    for headers in ({"TT-API-KEY": "nope"}, {}):
        r = srv.request("POST", TT + SUBMIT, t2v(), headers)
        assert r.status == 401, r
        assert r.headers["content-type"] == "application/json"
        assert r.json() == TT_401, r
        r = srv.request("GET", TT + "/api/v1/tasks/" + str(uuid.uuid4()),
                        headers=headers)
        assert r.status == 401 and r.json() == TT_401, r


@case
def missing_async_header(srv):
    for headers in ({"Authorization": "Bearer " + KEY},
                    {"Authorization": "Bearer " + KEY,
                     "X-DashScope-Async": "disable"}):
        r = srv.request("POST", SUBMIT, t2v(), headers)
        error(r, 403, "AccessDenied",
              "current user api does not support synchronous calls")
    # TTAPI does not need it.
    assert srv.submit(t2v(), dialect="ttapi").status == 200


@case
def async_header_any_case(srv):
    r = srv.request("POST", SUBMIT, t2v(),
                    {"authorization": "bearer " + KEY,
                     "x-dashscope-async": "ENABLE"})
    assert r.status == 200, r


@case
def malformed_json(srv):
    r = srv.submit('{"model": "happyhorse-1.0-t2v", "input": {')
    error(r, 400, "InvalidParameter", "byte")
    r = srv.submit("")
    error(r, 400, "InvalidParameter")
    r = srv.submit("[1, 2]")
    error(r, 400, "InvalidParameter", "object")


@case
def invalid_fields_named(srv):
    cases = [
        ({"input": {"prompt": "x"}}, 400, "BadRequest.EmptyModel", None),
        ({"model": "happyhorse-1.0-t2v"}, 400, "BadRequest.EmptyInput",
         None),
        (t2v(duration=20), 400, "InvalidParameter", "parameters.duration"),
        (t2v(resolution="720p"), 400, "InvalidParameter",
         "parameters.resolution"),
        ({"model": "happyhorse-9", "input": {"prompt": "x"}}, 404,
         "ModelNotFound", "happyhorse-9"),
    ]
    for body, status, code, fragment in cases:
        error(srv.submit(body), status, code, fragment)
        if status != 404:
            error(srv.submit(body, dialect="ttapi"), status, code, fragment)


@case
def oversize_body(srv):
    big = t2v(prompt="x" * (300 * 1024))
    error(srv.submit(big), 413, "BadRequest.TooLarge", "limit")
    # A declared length over the limit is refused before it is read.
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "X-DashScope-Async: enable\r\nContent-Type: application/json"
               "\r\nContent-Length: 100000000\r\n\r\n{" % (SUBMIT, KEY))
              .encode())
    head = s.recv(4096).decode()
    s.close()
    assert head.startswith("HTTP/1.1 413"), head
    # The server still answers.
    assert srv.submit(t2v()).status == 200


@case
def oversize_headers(srv):
    r = srv.request("GET", "/api/v1/tasks/x",
                    headers={"Authorization": "Bearer " + KEY,
                             "X-Big": "a" * (80 * 1024)})
    assert r.status in (413, 431), r
    assert srv.submit(t2v()).status == 200


@case
def unknown_routes(srv):
    r = srv.request("GET", "/nothing/here")
    error(r, 404, "NotFound", "/nothing/here")
    r = srv.request("GET", "/api/v1/services/aigc/video-generation/"
                    "video-synthesis")
    error(r, 405, "MethodNotAllowed")
    # The alias submit paths are TTAPI's only.
    r = srv.request("POST", "/api/v1/services/aigc/video-generation/"
                    "image-to-video", t2v(),
                    {"Authorization": "Bearer " + KEY,
                     "X-DashScope-Async": "enable"})
    error(r, 404, "NotFound")


@case
def ttapi_alias_paths_follow_the_model(srv):
    for last in ("image-to-video", "reference-to-video", "video-edit"):
        r = srv.request("POST", TT + "/api/v1/services/aigc/"
                        "video-generation/" + last, t2v(),
                        {"TT-API-KEY": KEY})
        assert r.status == 200, r
        tid = r.json()["output"]["task_id"]
        assert srv.query(tid).json()["output"]["task_status"] == "PENDING"


@case
def trailing_slashes_and_charset(srv):
    r = srv.request("POST", SUBMIT + "/", t2v(),
                    {"Authorization": "Bearer " + KEY,
                     "X-DashScope-Async": "enable",
                     "Content-Type": "application/json; charset=utf-8"})
    assert r.status == 200, r
    tid = r.json()["output"]["task_id"]
    r = srv.request("GET", "/api/v1/tasks/%s/" % tid,
                    headers={"Authorization": "Bearer " + KEY})
    assert r.status == 200 and \
        r.json()["output"]["task_status"] == "PENDING", r
    r = srv.request("GET", TT + "/api/v1/tasks/%s/" % tid,
                    headers={"TT-API-KEY": KEY})
    assert r.json()["output"]["task_id"] == tid, r


@case
def request_id_on_every_response(srv):
    for r in (srv.request("GET", "/healthz"),
              srv.request("GET", "/nothing"),
              srv.submit(t2v()),
              srv.query(str(uuid.uuid4()))):
        uuid.UUID(r.headers["x-request-id"])
        if r.headers.get("content-type") == "application/json" and \
                "request_id" in r.json():
            assert r.json()["request_id"] == r.headers["x-request-id"]


@case
def query_of_a_bad_task_id_is_unknown(srv):
    for tid in ("x" * 200, "%00", "..%2f..%2fetc"):
        r = srv.request("GET", "/api/v1/tasks/" + tid,
                        headers={"Authorization": "Bearer " + KEY})
        assert r.status in (200, 404), r
        if r.status == 200:
            assert r.json()["output"]["task_status"] == "UNKNOWN", r


if __name__ == "__main__":
    main(setup, teardown)
