"""The HTTP front as an attacker probes it, over raw sockets on 127.0.0.1:
no body byte held before the key is checked, strict framing, JSON errors
for every refusal, log lines that cannot be forged, private files, and
the memory caps on bodies (docs/api.md s.1.2)."""

import json
import os
import socket
import stat
import subprocess
import time

from lib import BIN, KEY, OTHER_KEY, SUBMIT, TT, Server, case, main, t2v


def connect(srv, timeout=10):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
    return s


def read_all(s, limit=1 << 20):
    """Everything until the server closes (or the timeout)."""
    out = b""
    try:
        while len(out) < limit:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except socket.timeout:
        out += b"<timeout>"
    return out


def read_response(s):
    """One response: (status, headers, body, rest)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        assert d, "closed before a response: %r" % buf
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        d = s.recv(65536)
        assert d, "closed inside a body"
        rest += d
    return status, headers, rest[:n], rest[n:]


def exchange(srv, data):
    s = connect(srv)
    s.sendall(data)
    out = read_all(s)
    s.close()
    return out


def responses(raw):
    """The status codes of every response in a byte stream."""
    return [int(line.split()[1]) for line in raw.split(b"\r\n")
            if line.startswith(b"HTTP/1.")]


def json_error(raw, status, code=None, words=None):
    assert raw.startswith(b"HTTP/1.1 %d " % status), raw[:300]
    assert raw.count(b"\nHTTP/1.") == 0, "one status line: %r" % raw[:600]
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), head
    doc = json.loads(body.decode())
    assert doc["request_id"] and doc["message"], doc
    if code:
        assert doc["code"] == code, doc
    if words:
        assert words in doc["message"], doc
    return head


H = b"Host: 127.0.0.1\r\n"


def post_head(path, key=None, extra=b""):
    auth = b"Authorization: Bearer %s\r\n" % key.encode() if key else b""
    return (b"POST " + path.encode() + b" HTTP/1.1\r\n" + H + auth +
            b"X-DashScope-Async: enable\r\n"
            b"Content-Type: application/json\r\n" + extra)


@case
def refused_before_the_body_without_a_key(srv):
    # 30 MB declared, nothing sent: the 401 comes at once.
    for path in (SUBMIT, "/api/v1/uploads"):
        s = connect(srv)
        s.sendall(post_head(path) + b"Content-Length: 31457280\r\n\r\n")
        status, headers, body, _ = read_response(s)
        assert status == 401, (status, body)
        assert headers.get("connection") == "close", headers
        s.close()
    # Chunked, with a wrong key: the same, before any chunk.
    s = connect(srv)
    s.sendall(post_head(SUBMIT, key="wrong-key-1234") +
              b"Transfer-Encoding: chunked\r\n\r\n")
    status, _, body, _ = read_response(s)
    assert status == 401 and b"InvalidApiKey" in body, body
    s.close()
    # TTAPI's shape on its prefix.
    s = connect(srv)
    s.sendall(b"POST " + (TT + SUBMIT).encode() + b" HTTP/1.1\r\n" + H +
              b"Content-Length: 1000000\r\n\r\n")
    status, _, body, _ = read_response(s)
    assert status == 401 and json.loads(body)["status"] == "FAILED", body
    s.close()


@case
def a_bearer_with_trailing_space_is_accepted(srv):
    r = srv.request("GET", "/api/v1/models",
                    headers={"Authorization": "Bearer " + KEY + "  "})
    assert r.status == 200, r
    r = srv.request("GET", "/api/v1/models",
                    headers={"Authorization": "bearer   " + KEY})
    assert r.status == 200, r


@case
def ambiguous_framing_is_refused(srv):
    cases = [
        (post_head(SUBMIT, KEY) + b"Content-Length: 5\r\n"
         b"Content-Length: 6\r\n\r\nhello!", "two different Content-Length"),
        (post_head(SUBMIT, KEY) + b"Content-Length: 5\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         "both Content-Length and Transfer-Encoding"),
        (b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n", "whitespace between"),
        (b"GET /healthz HTTP/1.1\r\n" + H + b"X-A: 1\r\n folded\r\n\r\n",
         "obs-fold"),
        (b"GET /healthz HTTP/1.1\r\n\r\n", "needs a Host"),
        (b"GET /healthz HTTP/1.1\r\n" + H + H + b"\r\n", "Host header is "
         "repeated"),
        (b"GET /healthz HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", "bare CR"),
    ]
    for data, words in cases:
        raw = exchange(srv, data)
        head = json_error(raw, 400, "BadRequest", words)
        assert b"connection: close" in head.lower(), head


@case
def a_request_hidden_in_a_body_is_not_answered(srv):
    # The classic CL.TE smuggling shape: whoever trusts Content-Length sees
    # one request, whoever trusts chunked sees two. We see neither.
    hidden = b"GET /healthz HTTP/1.1\r\n" + H + b"\r\n"
    body = b"0\r\n\r\n" + hidden
    data = (post_head(SUBMIT, KEY) + b"Content-Length: %d\r\n" % len(body) +
            b"Transfer-Encoding: chunked\r\n\r\n" + body)
    raw = exchange(srv, data)
    assert responses(raw) == [400], raw


@case
def malformed_lengths_get_a_json_400(srv):
    for v in (b"abc", b"-1", b"123456789012345678901234567890", b"5, 5",
              b"0x10", b""):
        raw = exchange(srv, post_head(SUBMIT, KEY) + b"Content-Length: " + v +
                       b"\r\n\r\n")
        json_error(raw, 400, "BadRequest", "Content-Length")


@case
def other_versions_and_codings(srv):
    raw = exchange(srv, b"GET /healthz HTTP/2.0\r\n" + H + b"\r\n")
    json_error(raw, 505)
    raw = exchange(srv, post_head(SUBMIT, KEY) +
                   b"Transfer-Encoding: gzip, chunked\r\n\r\n")
    json_error(raw, 501, "NotImplemented")
    raw = exchange(srv, b"GET /healthz HTTP/1.1\r\n" + H +
                   b"X-Big: " + b"a" * (17 << 10) + b"\r\n\r\n")
    json_error(raw, 431)


@case
def bodies_over_the_limit_get_413(srv):
    limit = 1 << 20  # the server of this file runs --body-limit 1M
    # Declared: answered before the body.
    s = connect(srv)
    s.sendall(post_head(SUBMIT, KEY) +
              b"Content-Length: %d\r\n\r\n" % (limit + 1))
    status, headers, body, _ = read_response(s)
    assert status == 413 and b"BadRequest.TooLarge" in body, body
    s.close()
    # Chunked: answered as soon as a chunk would pass the limit.
    s = connect(srv)
    s.sendall(post_head(SUBMIT, KEY) + b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * (256 << 10)
    status = None
    try:
        for _ in range(8):
            s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    status, headers, body, _ = read_response(s)
    assert status == 413, (status, body)
    assert json.loads(body)["code"] == "BadRequest.TooLarge", body
    assert headers.get("connection") == "close"
    s.close()


@case
def chunked_bodies_and_pipelining_work(srv):
    body = json.dumps(t2v()).encode()
    half = len(body) // 2
    chunked = (b"%x\r\n" % half + body[:half] + b"\r\n" +
               b"%x;ext=1\r\n" % (len(body) - half) + body[half:] + b"\r\n" +
               b"0\r\nX-Trailer: ok\r\n\r\n")
    s = connect(srv)
    s.sendall(post_head(SUBMIT, KEY) + b"Transfer-Encoding: chunked\r\n\r\n" +
              chunked + b"GET /healthz HTTP/1.1\r\n" + H + b"\r\n")
    status, _, rbody, rest = read_response(s)
    assert status == 200, rbody
    assert json.loads(rbody)["output"]["task_status"] == "PENDING"
    s.sendall(b"")
    buf = rest
    while b"ok" not in buf:
        d = s.recv(65536)
        assert d
        buf += d
    assert buf.startswith(b"HTTP/1.1 200"), buf
    s.close()
    # HTTP/1.0 keep-alive, and Expect: 100-continue.
    s = connect(srv)
    s.sendall(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    status, headers, _, _ = read_response(s)
    assert status == 200 and headers["connection"] == "keep-alive", headers
    s.sendall(post_head(SUBMIT, KEY) + b"Content-Length: %d\r\n" % len(body) +
              b"Expect: 100-continue\r\n\r\n")
    cont = s.recv(64)
    assert cont.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), cont
    s.sendall(body)
    status, _, _, _ = read_response(s) if len(cont) == 25 else (
        int(cont[25:].split()[1]), None, None, None)
    assert status == 200
    s.close()


@case
def log_lines_cannot_be_forged(srv):
    raw = exchange(srv, b"GET /nosuch%0d%0als=fake%20level=error%20msg=%22X"
                   b"%22%5c HTTP/1.1\r\n" + H + b"\r\n")
    assert responses(raw) == [404], raw
    lines = [line for line in srv.log_wait("nosuch").splitlines()
             if "nosuch" in line]
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("ts="), line
    assert '\\r\\nls=fake level=error msg=\\"X\\"\\\\' in line, line
    for line in srv.log_text().splitlines():
        assert line.startswith("ts=") or not line.strip() or \
            line.startswith("paddock:"), "a forged line: %r" % line


@case
def metrics_need_a_key_or_the_token(_srv):
    srv = Server(args=["--workers", "0", "--metrics-token", "scrape-me"])
    srv.start()
    try:
        assert srv.request("GET", "/metrics").status == 401
        r = srv.request("GET", "/metrics",
                        headers={"Authorization": "Bearer " + KEY})
        assert r.status == 401, r  # with a token, only the token
        r = srv.request("GET", "/metrics",
                        headers={"Authorization": "Bearer scrape-me"})
        assert r.status == 200 and b"paddock_" in r.body, r
    finally:
        srv.stop()
        srv.cleanup()


@case
def files_are_private_whatever_the_umask(_srv):
    old = os.umask(0)
    try:
        srv = Server(args=["--workers", "1"]).start()
    finally:
        os.umask(old)
    try:
        tid = srv.submit(t2v()).json()["output"]["task_id"]
        srv.wait(tid)
        mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)
        assert mode(srv.data) == 0o700, oct(mode(srv.data))
        db = os.path.join(srv.data, "paddock.db")
        assert mode(db) == 0o600, oct(mode(db))
        results = os.path.join(srv.data, "results")
        assert mode(results) == 0o700, oct(mode(results))
        files = os.listdir(results)
        assert files and all(mode(os.path.join(results, f)) == 0o600
                             for f in files), files
    finally:
        srv.stop()
        srv.cleanup()


@case
def keys_revoke_takes_options_first(_srv):
    srv = Server(args=["--workers", "0"])
    data = srv.data
    out = subprocess.run([BIN, "keys", "create", "--data", data, "--name",
                          "k1"], capture_output=True, text=True, check=True)
    key_id = out.stderr.split("created key ")[1].split()[0]
    r = subprocess.run([BIN, "keys", "revoke", "--data", data, key_id],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "is revoked" in r.stderr, r.stderr
    r = subprocess.run([BIN, "keys", "revoke", "--data", data, key_id, "x"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "at most one KEY_ID" in r.stderr, r.stderr
    srv.cleanup()


def hold(srv, held, key, size):
    """A submit that declares `size` bytes and sends one: its reservation
    stays while the socket is open."""
    s = connect(srv)
    s.sendall(post_head(SUBMIT, key) + b"Content-Length: %d\r\n\r\n" % size +
              b"{")
    held.append(s)
    time.sleep(0.3)  # admitted (and charged) before the next one comes
    return s


def not_answered(s):
    s.setblocking(False)
    try:
        assert not s.recv(1), "answered early"
    except BlockingIOError:
        pass
    finally:
        s.setblocking(True)


@case
def a_key_holds_at_most_its_share_of_body_memory(_srv):
    # 4 MiB for every body in memory; a key a quarter of it, 1 MiB.
    srv = Server(args=["--workers", "0", "--body-memory", "4M",
                       "--body-limit", "1M"]).start()
    held = []
    try:
        first = hold(srv, held, KEY, 900 << 10)
        s = hold(srv, held, KEY, 900 << 10)  # the same key: over its share
        status, headers, body, _ = read_response(s)
        assert status == 429 and headers["retry-after"] == "1", body
        assert json.loads(body)["code"] == "Throttling", body
        other = hold(srv, held, OTHER_KEY, 900 << 10)  # another key: room
        time.sleep(0.3)
        not_answered(first)
        not_answered(other)
    finally:
        for s in held:
            s.close()
        srv.stop()
        srv.cleanup()


@case
def bodies_in_memory_have_a_process_wide_cap(_srv):
    keys = [KEY, OTHER_KEY, "test-key-third-0123"]
    srv = Server(args=["--workers", "0", "--body-memory", "2M",
                       "--body-limit", "2M"], keys=keys).start()
    held = []
    try:
        hold(srv, held, keys[0], 1500 << 10)
        s = hold(srv, held, keys[1], 1500 << 10)
        status, headers, body, _ = read_response(s)
        assert status == 503 and headers["retry-after"] == "1", body
        assert json.loads(body)["code"] == "ServiceUnavailable", body
        for s in held:
            s.close()
        held.clear()
        time.sleep(0.3)
        # Released with its connection: a body fits again.
        r = srv.submit(t2v(), key=keys[2])
        assert r.status == 200, r
    finally:
        for s in held:
            s.close()
        srv.stop()
        srv.cleanup()


def setup():
    return Server(args=["--workers", "0", "--body-limit", "1M"]).start()


def teardown(srv):
    srv.stop()
    srv.cleanup()


if __name__ == "__main__":
    main(setup, teardown)
