"""GET /openapi.json serves docs/openapi.json, and the document and the
router agree: every row of api.c's route table is documented, and every
documented operation reaches a handler. (tests/api/check_openapi.py checks
the responses of every API test against the document.)"""

import json
import os
import re
import subprocess
import uuid

from lib import BIN, KEY, TT, Server, case, main, t2v

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DOC_PATH = os.path.join(ROOT, "docs", "openapi.json")
API_C = os.path.join(ROOT, "src", "api", "api.c")
NOT_A_ROUTE = "is not a route of this server"


def doc_bytes():
    with open(DOC_PATH, "rb") as f:
        return f.read()


def route_table():
    """(method, path pattern with '*', dialect flags) of every row of the
    route table in src/api/api.c."""
    with open(API_C) as f:
        src = f.read()
    macros = dict(re.findall(r'#define\s+(\w+)\s+"([^"]*)"', src))
    rows = re.findall(
        r'\{\s*"\w+",\s*"([A-Z]+)",\s*((?:\w+\s+)?"[^"]*"),\s*'
        r'([A-Z_][A-Z_| \n]*?),\s*api_\w+,\s*[A-Z_]+,\s*[A-Z_]+\s*\}', src)
    out = []
    for method, pattern, flags in rows:
        m = re.match(r'(?:(\w+)\s+)?"([^"]*)"', pattern)
        path = macros.get(m.group(1), "") + m.group(2) if m.group(1) \
            else m.group(2)
        flags = flags.replace("BOTH", "D_DASHSCOPE | D_TTAPI")
        out.append((method, path, set(re.findall(r"D_\w+", flags))))
    assert len(out) >= 10, "the route table of api.c was not found: %r" % out
    return out


def documented():
    """{(METHOD, path with '*' for each parameter)} of the document."""
    doc = json.loads(doc_bytes())
    ops = set()
    for tmpl, item in doc["paths"].items():
        for method in item:
            if method in ("get", "put", "post", "delete", "head", "patch",
                          "options", "trace"):
                ops.add((method.upper(), re.sub(r"\{[^}/]+\}", "*", tmpl)))
    return doc, ops


def setup():
    return Server(args=["--workers", "0"]).start()


def teardown(srv):
    srv.stop()
    srv.cleanup()


@case
def served_without_a_key(srv):
    want = doc_bytes()
    for path in ("/openapi.json", TT + "/openapi.json", "/openapi.json/"):
        r = srv.request("GET", path)
        assert r.status == 200, (path, r)
        assert r.headers["content-type"] == "application/json", r.headers
        assert r.body == want, "%s: not the bytes of docs/openapi.json" % path
    doc = json.loads(r.body)
    assert doc["openapi"] == "3.1.0", doc["openapi"]
    r = srv.request("POST", "/openapi.json", b"{}")
    assert r.status == 405 and r.json()["code"] == "MethodNotAllowed", r


@case
def version_is_the_binarys(srv):
    doc = json.loads(doc_bytes())
    out = subprocess.run([BIN, "--version"], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["paddock", doc["info"]["version"]], (out,
                                                        doc["info"])


@case
def every_route_is_documented(srv):
    _, ops = documented()
    missing = []
    for method, path, flags in route_table():
        want = []
        if "D_DASHSCOPE" in flags or "D_PLAIN" in flags:
            want.append((method, path))
        if "D_TTAPI" in flags:
            want.append((method, TT + path))
        missing += [w for w in want if w not in ops]
    assert not missing, "routes of api.c missing from docs/openapi.json: %s" \
        % missing


@case
def every_documented_operation_is_routed(srv):
    """Each operation of the document, sent with plausible values, reaches
    a handler: never the router's own 404 or 405."""
    doc, ops = documented()
    auth = {"Authorization": "Bearer " + KEY}
    body = json.dumps(t2v()).encode()
    for method, pattern in sorted(ops):
        path = pattern.replace("*", str(uuid.uuid4()))
        headers = dict(auth)
        data = None
        if method == "POST":
            headers["X-DashScope-Async"] = "enable"
            headers["Content-Type"] = "application/json"
            data = body
        r = srv.request(method, path, data, headers)
        if method == "HEAD":
            assert r.status != 405, (method, path, r)
            continue
        assert r.status < 500, (method, path, r)
        if r.headers.get("content-type") == "application/json":
            msg = r.json().get("message", "")
            assert NOT_A_ROUTE not in msg, (method, pattern, r)


if __name__ == "__main__":
    main(setup, teardown)
