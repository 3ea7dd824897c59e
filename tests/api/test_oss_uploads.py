"""Local files from unmodified DashScope SDKs (docs/extensions.md, "Local
files from DashScope SDKs") over real HTTP on 127.0.0.1, speaking the
protocol byte for byte as the SDK does (dashscope/utils/oss_utils.py on
requests and urllib3 2.x): GET /api/v1/uploads?action=getPolicy, the
multipart PostObject form to the upload_host it names (the policy fields
in the SDK's order, file last), then a submit with
X-DashScope-OssResourceResolve: enable and oss:// URLs, for i2v, r2v and
video-edit end to end (the outputs probed with ffprobe). Then every
refusal, each a clear error with nothing stored: a tampered or expired
policy or signature, a key outside upload_dir or with ../ in it, a file
over max_file_size_mb, no file part, a form that is not multipart,
another key's or an unknown oss:// reference, an expired upload (and the
sweep), oss:// without the resolve header."""

import base64
import binascii
import datetime
import glob
import hashlib
import hmac
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from email.utils import formatdate

from lib import KEY, OTHER_KEY, TT, Server, case, ffprobe, main

FIX = {}
UA = "dashscope/1.26.2; python/3.11.7; platform/Linux; processor/"
SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def setup():
    d = tempfile.mkdtemp(prefix="paddock-oss-")
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1280x720", "-frames:v", "1",
           os.path.join(d, "wide.png"))
    ffmpeg("-f", "lavfi", "-i", "smptebars=size=800x800", "-frames:v", "1",
           os.path.join(d, "square.jpg"))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-f",
           "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "4",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           "-c:a", "aac", os.path.join(d, "clip.mp4"))
    FIX["dir"] = d
    return Server(args=["--workers", "2"]).start()


def teardown(srv):
    srv.stop()
    srv.cleanup()
    shutil.rmtree(FIX["dir"], ignore_errors=True)


def fixture(name):
    with open(os.path.join(FIX["dir"], name), "rb") as f:
        return f.read()


# ------------------------------------------------- the SDK, byte for byte

def get_policy(srv, model, key=KEY, dialect="dashscope", action="getPolicy"):
    """OssUtils.get_upload_certificate: GET {base}/uploads with params."""
    query = urllib.parse.urlencode(
        [(k, v) for k, v in (("action", action), ("model", model)) if v])
    if dialect == "dashscope":
        path, auth = "/api/v1/uploads?" + query, {"Authorization":
                                                  "Bearer " + key}
    else:
        path, auth = TT + "/api/v1/uploads?" + query, {"TT-API-KEY": key}
    h = {"Host": "127.0.0.1:%d" % srv.port, "user-agent": UA,
         "Accept-Encoding": "gzip, deflate",
         "Accept": "application/json; charset=utf-8",
         "Connection": "keep-alive"}
    h.update(auth)
    return srv.request("GET", path, headers=h)


def policy_of(srv, model="happyhorse-1.0-i2v", key=KEY, **kw):
    r = get_policy(srv, model, key, **kw)
    assert r.status == 200, r
    return r.json()["data"]


def sdk_form(info, name, data, ctype, overrides=None, drop=(), boundary=None):
    """The body and Content-Type requests makes of OssUtils.upload's form
    (data fields in order, then files={"file": f})."""
    fields = [("OSSAccessKeyId", info["oss_access_key_id"]),
              ("Signature", info["signature"]),
              ("policy", info["policy"]),
              ("key", info["upload_dir"] + "/" + name),
              ("x-oss-object-acl", info["x_oss_object_acl"]),
              ("x-oss-forbid-overwrite", info["x_oss_forbid_overwrite"]),
              ("success_action_status", "200"),
              ("x-oss-content-type", ctype)]
    overrides = overrides or {}
    fields = [(k, overrides.get(k, v)) for k, v in fields if k not in drop]
    b = boundary or binascii.hexlify(os.urandom(16)).decode()
    body = b""
    for k, v in fields:
        body += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n"
                 "%s\r\n" % (b, k, v)).encode()
    if data is not None:
        body += ("--%s\r\nContent-Disposition: form-data; name=\"file\"; "
                 "filename=\"%s\"\r\n\r\n" % (b, name)).encode()
        body += data + b"\r\n"
    body += ("--%s--\r\n" % b).encode()
    return body, "multipart/form-data; boundary=" + b


def post_form(srv, url, body, ctype):
    """session.post(url, files=..., data=..., headers=...) as sent."""
    u = urllib.parse.urlsplit(url)
    assert (u.hostname, u.port) == ("127.0.0.1", srv.port), url
    h = {"Host": u.netloc, "user-agent": UA,
         "Accept-Encoding": "gzip, deflate", "Accept": "application/json",
         "Connection": "keep-alive", "Date": formatdate(usegmt=True),
         "Content-Length": str(len(body)), "Content-Type": ctype}
    return srv.request("POST", u.path, body, h, timeout=120)


def upload(srv, name, data, info=None, ctype="image/png", **kw):
    """OssUtils.upload: a policy, the form; the response."""
    info = info or policy_of(srv)
    body, ct = sdk_form(info, name, data, ctype, **kw)
    return post_form(srv, info["upload_host"], body, ct)


def uploaded(srv, name, data, model="happyhorse-1.0-i2v", key=KEY,
             ctype="image/png"):
    """Upload as the SDK does and check the answer; the oss:// URL."""
    info = policy_of(srv, model, key)
    r = upload(srv, name, data, info, ctype)
    assert r.status == 200, r
    out = r.json()["output"]
    want = info["upload_dir"] + "/" + name
    assert out["key"] == want and out["url"] == "oss://" + want, out
    assert out["size"] == len(data), out
    assert TIME_RE.match(out["expires_time"]), out
    return out["url"]


def submit(srv, body, key=KEY, resolve=True):
    """VideoSynthesis.async_call's request, with the header it adds when
    it uploaded a file."""
    h = {"Host": "127.0.0.1:%d" % srv.port, "user-agent": UA,
         "Accept-Encoding": "gzip, deflate",
         "Accept": "application/json; charset=utf-8",
         "Connection": "keep-alive", "X-DashScope-Async": "enable",
         "Authorization": "Bearer " + key,
         "Content-Type": "application/json; charset=utf-8"}
    if resolve:
        h["X-DashScope-OssResourceResolve"] = "enable"
    return srv.request("POST", SUBMIT, json.dumps(body).encode(), h)


def sdk_body(model, media=None, prompt="a horse", **params):
    """The SDK's JSON: its own input fields besides the media."""
    inp = {"prompt": prompt, "extend_prompt": True,
           "function": "video-synthesis"}
    if media is not None:
        inp["media"] = media
    params.setdefault("resolution", "480P")
    return {"model": model, "parameters": params, "input": inp}


def run(srv, body, key=KEY):
    r = submit(srv, body, key)
    assert r.status == 200, r
    return srv.wait(r.json()["output"]["task_id"], key=key, timeout=180)


def check_output(srv, out, w, h, seconds):
    assert out["output"]["task_status"] == "SUCCEEDED", out
    r = srv.get_url(out["output"]["video_url"])
    assert r.status == 200, r
    path = os.path.join(FIX["dir"], out["output"]["task_id"] + ".mp4")
    with open(path, "wb") as f:
        f.write(r.body)
    info, video = ffprobe(path)
    assert video["codec_name"] == "h264", video
    assert (video["width"], video["height"]) == (w, h), video
    assert abs(float(info["format"]["duration"]) - seconds) < 0.1, info


def refused(r, status, code, *fragments):
    assert r.status == status, r
    body = r.json()
    assert body["code"] == code and uuid.UUID(body["request_id"]), body
    for f in fragments:
        assert f in body["message"], (f, body)
    return body


def key_id(info):
    return info["oss_access_key_id"]


def stored(srv, object_key=None):
    """OSS-style files under DATA/uploads (one object key's, or all)."""
    name = "oss-" + hashlib.sha256(object_key.encode()).hexdigest() \
        if object_key else "oss-*"
    return glob.glob(os.path.join(srv.data, "uploads", "*", name))


def nothing_left(srv, before):
    """No stored file besides `before`, no upload in tmp/ (a refused
    file's is removed when its request ends, just after the answer)."""
    assert set(stored(srv)) == set(before), (stored(srv), before)
    deadline = time.time() + 5
    while True:
        left = glob.glob(os.path.join(srv.data, "tmp", "*upload-oss-*"))
        if not left or time.time() > deadline:
            break
        time.sleep(0.05)
    assert not left, left


def sign(srv, kid, policy):
    """The server's own signature of a policy, made with its link key."""
    db = sqlite3.connect(os.path.join(srv.data, "paddock.db"))
    try:
        secret = db.execute("SELECT value FROM secrets WHERE name = ?",
                            ("url-signing",)).fetchone()[0]
    finally:
        db.close()
    msg = b"paddock-oss-policy\n" + kid.encode() + b"\n" + policy.encode()
    return base64.b64encode(hmac.new(secret, msg, hashlib.sha256)
                            .digest()).decode()


# ------------------------------------------------------ the three models

@case
def policy_answer(srv):
    r = get_policy(srv, "happyhorse-1.0-i2v")
    assert r.status == 200, r
    body = r.json()
    assert uuid.UUID(body["request_id"]), body
    d = body["data"]
    assert set(d) == {"policy", "signature", "upload_dir", "upload_host",
                      "expire_in_seconds", "max_file_size_mb",
                      "capacity_limit_mb", "oss_access_key_id",
                      "x_oss_object_acl", "x_oss_forbid_overwrite"}, d
    assert d["upload_host"] == srv.base + "/api/v1/uploads/oss", d
    assert (d["expire_in_seconds"], d["max_file_size_mb"],
            d["capacity_limit_mb"]) == (300, 100, 2048), d
    assert (d["x_oss_object_acl"], d["x_oss_forbid_overwrite"]) == \
        ("private", "true"), d
    m = re.match(r"^paddock-instant/([A-Za-z0-9_-]+)/([0-9a-f-]{36})$",
                 d["upload_dir"])
    assert m and m.group(1) == d["oss_access_key_id"], d
    # The policy: an expiration 300 s ahead, the key prefix, the size.
    doc = json.loads(base64.b64decode(d["policy"]))
    exp = datetime.datetime.strptime(doc["expiration"],
                                     "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    assert abs(exp.timestamp() - time.time() - 300) < 30, doc
    assert doc["conditions"] == [
        ["content-length-range", 1, 100 << 20],
        ["starts-with", "$key", d["upload_dir"] + "/"]], doc
    # The signature is the server's HMAC, bound to the key (the refusal
    # cases forge expired policies the same way).
    assert sign(srv, key_id(d), d["policy"]) == d["signature"], d
    # Each policy has its own directory; another key another prefix.
    assert policy_of(srv)["upload_dir"] != d["upload_dir"]
    other = policy_of(srv, key=OTHER_KEY)
    assert key_id(other) != key_id(d), other


@case
def i2v_local_file(srv):
    png = fixture("wide.png")
    url = uploaded(srv, "wide.png", png)
    # On disk, in the uploading key's directory, byte for byte.
    files = stored(srv, url[len("oss://"):])
    assert len(files) == 1, files
    with open(files[0], "rb") as f:
        assert f.read() == png
    done = run(srv, sdk_body("happyhorse-1.0-i2v",
                             [{"type": "first_frame", "url": url}],
                             duration=3))
    check_output(srv, done, 832, 480, 3)
    assert "oss upload stored" in srv.log_wait("oss upload stored")


@case
def r2v_local_files(srv):
    # One policy per file, as the SDK's parallel uploads get them; the
    # reference_urls alias as the SDK's reference_urls= sends it.
    a = uploaded(srv, "wide.png", fixture("wide.png"), "happyhorse-1.0-r2v")
    b = uploaded(srv, "square.jpg", fixture("square.jpg"),
                 "happyhorse-1.0-r2v", ctype="image/jpeg")
    body = sdk_body("happyhorse-1.0-r2v", prompt="[Image 1] meets [Image 2]",
                    ratio="1:1", duration=3)
    body["input"]["reference_urls"] = [a, b]
    check_output(srv, run(srv, body), 624, 624, 3)


@case
def video_edit_local_files(srv):
    clip = uploaded(srv, "clip.mp4", fixture("clip.mp4"),
                    "happyhorse-1.0-video-edit", ctype="video/mp4")
    ref = uploaded(srv, "wide.png", fixture("wide.png"),
                   "happyhorse-1.0-video-edit")
    done = run(srv, sdk_body("happyhorse-1.0-video-edit",
                             [{"type": "video", "url": clip},
                              {"type": "reference_image", "url": ref}],
                             prompt="make it snow"))
    check_output(srv, done, 832, 480, 4)


@case
def ttapi_dialect_and_paddock_uploads_alongside(srv):
    info = policy_of(srv, "happyhorse-1.0-video-edit", dialect="ttapi")
    assert info["upload_host"] == srv.base + TT + "/api/v1/uploads/oss", info
    r = upload(srv, "wide.png", fixture("wide.png"), info)
    assert r.status == 200, r
    # paddock-upload:// keeps working, in the same task.
    r = srv.request("POST", "/api/v1/uploads", fixture("clip.mp4"),
                    {"Authorization": "Bearer " + KEY})
    assert r.status == 200, r
    done = run(srv, sdk_body("happyhorse-1.0-video-edit",
                             [{"type": "video",
                               "url": r.json()["output"]["url"]},
                              {"type": "reference_image",
                               "url": "oss://" + info["upload_dir"] +
                               "/wide.png"}]))
    check_output(srv, done, 832, 480, 4)


@case
def success_status_and_overwrite(srv):
    info = policy_of(srv)
    png = fixture("wide.png")
    body, ct = sdk_form(info, "a.png", png, "image/png",
                        {"success_action_status": "201"})
    r = post_form(srv, info["upload_host"], body, ct)
    assert r.status == 201 and r.json()["output"]["size"] == len(png), r
    # The same key again: x-oss-forbid-overwrite is true.
    refused(post_form(srv, info["upload_host"], body, ct), 409,
            "FileAlreadyExists", "can not be overwritten")
    body, ct = sdk_form(info, "a.png", b"x" * 10, "image/png",
                        {"success_action_status": "204",
                         "x-oss-forbid-overwrite": "false"})
    r = post_form(srv, info["upload_host"], body, ct)
    assert r.status == 204 and r.body == b"", r
    with open(stored(srv, info["upload_dir"] + "/a.png")[0], "rb") as f:
        assert f.read() == b"x" * 10


# ------------------------------------------------------------ refusals

@case
def tampered_signature_or_policy(srv):
    info = policy_of(srv)
    before = stored(srv)
    png = fixture("wide.png")
    sig = base64.b64decode(info["signature"])
    bad_sig = base64.b64encode(bytes([sig[0] ^ 1]) + sig[1:]).decode()
    doc = json.loads(base64.b64decode(info["policy"]))
    doc["conditions"][0][2] = 1 << 40  # a bigger file than allowed
    bad_policy = base64.b64encode(json.dumps(doc).encode()).decode()
    other = policy_of(srv, key=OTHER_KEY)
    for o in ({"Signature": bad_sig}, {"Signature": ""},
              {"policy": bad_policy},
              # another key's id with this key's policy and signature
              {"OSSAccessKeyId": key_id(other)}):
        refused(upload(srv, "a.png", png, info, overrides=o), 403,
                "SignatureDoesNotMatch", "does not match")
    nothing_left(srv, before)


@case
def expired_policy(srv):
    info = policy_of(srv)
    before = stored(srv)
    doc = json.loads(base64.b64decode(info["policy"]))
    doc["expiration"] = "2020-01-01T00:00:00.000Z"
    policy = base64.b64encode(json.dumps(doc).encode()).decode()
    r = upload(srv, "a.png", fixture("wide.png"), info,
               overrides={"policy": policy,
                          "Signature": sign(srv, key_id(info), policy)})
    refused(r, 403, "AccessDenied", "Policy expired")
    nothing_left(srv, before)


@case
def keys_outside_upload_dir(srv):
    info = policy_of(srv)
    before = stored(srv)
    png = fixture("wide.png")
    d = info["upload_dir"]
    other_dir = policy_of(srv)["upload_dir"]
    for key in (other_dir + "/a.png", "a.png", d):
        refused(upload(srv, "a.png", png, info, overrides={"key": key}), 403,
                "AccessDenied", "Policy Condition failed", "starts-with")
    for key in (d + "/../a.png", d + "/x/../../y/a.png", d + "/./a.png",
                d + "//a.png", d + "/", "../" + d + "/a.png",
                d + "/a\\..\\b.png",
                d + "/a\x01.png"):
        refused(upload(srv, "a.png", png, info, overrides={"key": key}), 400,
                "InvalidObjectName", "is not an object key")
    nothing_left(srv, before)


@case
def file_over_max_file_size(_srv):
    srv = Server(args=["--workers", "0", "--upload-limit", "1M"]).start()
    try:
        info = policy_of(srv)
        assert info["max_file_size_mb"] == 1, info
        refused(upload(srv, "big.bin", b"\0" * ((1 << 20) + 1), info), 400,
                "EntityTooLarge", "allows 1048576 bytes")
        nothing_left(srv, [])
        # A form announced far over it: refused before its body.
        body, ct = sdk_form(info, "x.bin", b"x", "image/png")
        r = srv.request("POST", "/api/v1/uploads/oss", body,
                        {"Content-Type": ct,
                         "Content-Length": str(50 << 20)})
        refused(r, 400, "EntityTooLarge", "a file may be 1048576")
        # At the limit: fine; empty: too small.
        r = upload(srv, "ok.bin", b"\0" * (1 << 20), info)
        assert r.status == 200, r
        refused(upload(srv, "empty.bin", b"", info), 400, "EntityTooSmall")
        assert len(stored(srv)) == 1
    finally:
        srv.stop()
        srv.cleanup()


@case
def forms_that_are_wrong(srv):
    info = policy_of(srv)
    before = stored(srv)
    png = fixture("wide.png")
    host = info["upload_host"]
    # No file part.
    body, ct = sdk_form(info, "a.png", None, "image/png")
    refused(post_form(srv, host, body, ct), 400, "InvalidArgument",
            "no file part")
    # A policy field missing, or sent after the file.
    for f in ("policy", "Signature", "OSSAccessKeyId", "key"):
        refused(upload(srv, "a.png", png, info, drop=(f,)), 400,
                "InvalidArgument", "no %s field before its file" % f)
    # Not multipart at all; no boundary; a boundary that never comes; a
    # form cut before its end.
    fields = urllib.parse.urlencode({"policy": info["policy"]}).encode()
    for body, ct, why in (
            (fields, "application/x-www-form-urlencoded", "not multipart"),
            (b"{}", "application/json", "not multipart"),
            (fields, "multipart/form-data", "no boundary"),
            (b"junk", "multipart/form-data; boundary=zz", "no boundary of"),
            (sdk_form(info, "a.png", png, "image/png", boundary="bb")[0]
             [:-8], "multipart/form-data; boundary=bb", "closing boundary")):
        refused(post_form(srv, host, body, ct), 400, "MalformedPOSTRequest",
                "not well-formed multipart/form-data", why)
    r = srv.request("POST", "/api/v1/uploads/oss", png)  # no Content-Type
    refused(r, 400, "MalformedPOSTRequest")
    # Before the file nothing is trusted: its fields are bounded.
    body, ct = sdk_form(info, "a.png", png, "image/png", boundary="bb")
    pad = b"".join(b"--bb\r\nContent-Disposition: form-data; name=\"x%d\""
                   b"\r\n\r\n1\r\n" % i for i in range(30))
    refused(post_form(srv, host, pad + body, ct), 400, "InvalidArgument",
            "more than 32 fields before its file")
    junk = b"--bb\r\nContent-Disposition: form-data; name=\"junk\"\r\n\r\n" \
        + b"j" * (1 << 20) + b"\r\n"
    refused(post_form(srv, host, junk + body, ct), 400, "InvalidArgument",
            "bytes before its file")
    big = b"--bb\r\nContent-Disposition: form-data; name=\"policy\"\r\n\r\n" \
        + b"p" * 5000 + b"\r\n"
    refused(post_form(srv, host, big + body, ct), 400, "InvalidArgument",
            "the form is refused: a form field is over 4096 bytes")
    nothing_left(srv, before)
    # The policy route's own checks.
    refused(get_policy(srv, "happyhorse-1.0-i2v", action="list"), 400,
            "InvalidParameter", "action must be getPolicy")
    refused(get_policy(srv, None), 400, "InvalidParameter",
            "model is required")
    refused(get_policy(srv, "nope"), 404, "ModelNotFound", "nope")
    refused(get_policy(srv, "happyhorse-1.0-i2v", key="wrong"), 401,
            "InvalidApiKey")
    r = srv.request("PUT", "/api/v1/uploads",
                    headers={"Authorization": "Bearer " + KEY})
    assert r.status == 405, r


@case
def references_only_for_their_key(srv):
    url = uploaded(srv, "wide.png", fixture("wide.png"))
    body = sdk_body("happyhorse-1.0-i2v", [{"type": "first_frame",
                                            "url": url}], duration=3)
    # Another key: the same answer as for a file that does not exist.
    a = refused(submit(srv, body, key=OTHER_KEY), 400, "InvalidURL",
                "input.media[0].url: no file " + url,
                "kept 48h after they are uploaded")
    gone = url.rsplit("/", 1)[0] + "/never.png"
    body["input"]["media"][0]["url"] = gone
    b = refused(submit(srv, body), 400, "InvalidURL", "no file " + gone)
    assert a["message"].replace(url, "U") == b["message"].replace(gone, "U")
    # Without the header the SDK adds, an oss:// URL is not resolved.
    body["input"]["media"][0]["url"] = url
    refused(submit(srv, body, resolve=False), 400, "InvalidURL",
            "X-DashScope-OssResourceResolve: enable")
    refused(submit(srv, {"model": "happyhorse-1.0-i2v",
                         "input": {"img_url": "oss://"}}), 400,
            "InvalidParameter", "input.img_url: an oss:// URL is the scheme")
    assert submit(srv, body).status == 200


@case
def expired_uploads_are_refused_and_swept(_srv):
    # A 2 s retention: the keeper scans every second; OSS-style files
    # still live 48 h, and go once past it.
    srv = Server(args=["--workers", "1", "--retention", "2s"]).start()
    try:
        old = uploaded(srv, "old.png", fixture("wide.png"))
        new = uploaded(srv, "new.png", fixture("wide.png"))
        path = stored(srv, old[len("oss://"):])[0]
        t = time.time() - 48 * 3600 - 60
        os.utime(path, (t, t))
        body = sdk_body("happyhorse-1.0-i2v", [{"type": "first_frame",
                                                "url": old}], duration=3)
        refused(submit(srv, body), 400, "InvalidURL", "no file " + old)
        deadline = time.time() + 15
        while os.path.exists(path) and time.time() < deadline:
            time.sleep(0.1)
        assert not os.path.exists(path), "not swept"
        time.sleep(3)  # past the retention, within 48 h: kept
        assert stored(srv, new[len("oss://"):])
        body["input"]["media"][0]["url"] = new
        done = run(srv, body)
        assert done["output"]["task_status"] == "SUCCEEDED", done
    finally:
        srv.stop()
        srv.cleanup()


@case
def vanished_before_the_task_ran(_srv):
    data = tempfile.mkdtemp(prefix="paddock-oss-gone-")
    srv = Server(data=data, args=["--workers", "0"]).start()
    try:
        url = uploaded(srv, "wide.png", fixture("wide.png"))
        r = submit(srv, sdk_body("happyhorse-1.0-i2v",
                                 [{"type": "first_frame", "url": url}]))
        assert r.status == 200, r
        task_id = r.json()["output"]["task_id"]
        srv.stop()
        for f in stored(srv):
            os.unlink(f)
        srv = Server(data=data, args=["--workers", "1"]).start()
        o = srv.wait(task_id, timeout=120)["output"]
        assert o["task_status"] == "FAILED", o
        assert o["code"] == "BadRequest.InputDownloadFailed", o
        assert ("media[0]: %s: no such upload for this API key (uploads are "
                "deleted 48h after they are sent)" % url) in o["message"], o
    finally:
        srv.stop()
        shutil.rmtree(data, ignore_errors=True)


@case
def relay_models_refuse_local_files(_srv):
    up = Server(keys=("up-key-0123456789",), args=["--workers", "0"]).start()
    relay = Server(args=["--workers", "0", "--engine",
                         "upstream:dashscope http://127.0.0.1:%d "
                         "key=up-key-0123456789" % up.port]).start()
    try:
        refused(get_policy(relay, "happyhorse-1.0-i2v"), 400,
                "InvalidParameter", "served by engine default (upstream)",
                "cannot read an uploaded file")
        body = sdk_body("happyhorse-1.0-i2v",
                        [{"type": "first_frame", "url": "oss://a/b.png"}])
        refused(submit(relay, body), 400, "InvalidParameter",
                "input.media[0].url:", "cannot read an uploaded file")
    finally:
        relay.stop()
        relay.cleanup()
        up.stop()
        up.cleanup()


if __name__ == "__main__":
    main(setup, teardown)
