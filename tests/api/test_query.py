"""Submit, poll and download over real HTTP in both dialects; the query
answer of every state checked field by field against docs/api.md s.5 and
against the reference page's schema."""

import os
import re
import tempfile
import uuid

from lib import KEY, OTHER_KEY, Server, case, ffprobe, main, t2v
import schema

TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")
OUTPUT_FIELDS = {"task_id", "task_status", "submit_time", "scheduled_time",
                 "end_time", "orig_prompt", "video_url", "code", "message"}

# docs/api.md s.5: which output fields each status has (orig_prompt aside).
PRESENT = {
    # queue_position: paddock's extension (1 = next; docs/extensions.md).
    "PENDING": {"task_id", "task_status", "submit_time", "queue_position"},
    # progress: paddock's extension (0-100, the engine's last report).
    "RUNNING": {"task_id", "task_status", "submit_time", "scheduled_time",
                "progress"},
    "SUCCEEDED": {"task_id", "task_status", "submit_time", "scheduled_time",
                  "end_time", "video_url"},
    "FAILED": {"task_id", "task_status", "submit_time", "scheduled_time",
               "end_time", "code", "message"},
    "UNKNOWN": {"task_id", "task_status"},
}


def check_shape(body, status, prompt=None):
    """Presence and absence of every field for a status, and the schema."""
    schema.validate(body)
    out = body["output"]
    assert out["task_status"] == status, body
    want = set(PRESENT[status])
    if prompt is not None and status != "UNKNOWN":
        want.add("orig_prompt")
    assert set(out) == want, (status, sorted(out), sorted(want))
    assert set(body) == ({"request_id", "output", "usage"}
                         if status == "SUCCEEDED"
                         else {"request_id", "output"}), body
    uuid.UUID(body["request_id"])
    if "progress" in out:
        p = out["progress"]
        assert isinstance(p, int) and not isinstance(p, bool), out
        assert 0 <= p <= 100, out
    for f in ("submit_time", "scheduled_time", "end_time"):
        if f in out:
            assert TIME.match(out[f]), (f, out[f])
    if prompt is not None and "orig_prompt" in out:
        assert out["orig_prompt"] == prompt, out
    if status == "SUCCEEDED":
        u = body["usage"]
        assert out["video_url"].startswith("http://127.0.0.1:"), out
        for f in ("duration", "input_video_duration",
                  "output_video_duration", "video_count", "SR"):
            assert isinstance(u[f], int) and not isinstance(u[f], bool), u
        assert u["video_count"] == 1


def setup():
    return Server(args=["--workers", "2"]).start()


def teardown(srv):
    srv.stop()
    srv.cleanup()


def download(srv, url):
    r = srv.get_url(url)
    assert r.status == 200, r
    assert r.headers["content-type"] == "video/mp4", r.headers
    fd, path = tempfile.mkstemp(suffix=".mp4")
    os.write(fd, r.body)
    os.close(fd)
    return path, r.body


def run_t2v(srv, dialect, **params):
    r = srv.submit(t2v(**params), dialect=dialect)
    assert r.status == 200, r
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"request_id", "output"}, body
    assert set(body["output"]) == {"task_id", "task_status"}, body
    assert body["output"]["task_status"] == "PENDING"
    uuid.UUID(body["request_id"])
    uuid.UUID(body["output"]["task_id"])
    return body["output"]["task_id"]


def check_video(path, w, h, seconds):
    info, v = ffprobe(path)
    assert v["codec_name"] == "h264", v
    assert v["pix_fmt"] == "yuv420p", v
    assert (v["width"], v["height"]) == (w, h), (v["width"], v["height"])
    assert v["r_frame_rate"] == "24/1", v["r_frame_rate"]
    assert abs(float(info["format"]["duration"]) - seconds) <= 0.05, info
    assert int(v["nb_read_frames"]) == 24 * seconds, v["nb_read_frames"]


@case
def t2v_dashscope_end_to_end(srv):
    prompt = "a horse running on a beach"
    tid = run_t2v(srv, "dashscope", prompt=prompt, ratio="16:9", seed=7)
    body = srv.wait(tid)
    check_shape(body, "SUCCEEDED", prompt)
    assert body["usage"] == {"duration": 3, "input_video_duration": 0,
                             "output_video_duration": 3, "video_count": 1,
                             "SR": 480, "ratio": "16:9"}, body["usage"]
    path, _ = download(srv, body["output"]["video_url"])
    try:
        check_video(path, 832, 480, 3)
    finally:
        os.unlink(path)


@case
def t2v_ttapi_end_to_end(srv):
    prompt = "身着红色旗袍的女性 on a horse"
    tid = run_t2v(srv, "ttapi", prompt=prompt, ratio="9:16", duration=4)
    body = srv.wait(tid, dialect="ttapi")
    check_shape(body, "SUCCEEDED", prompt)
    assert body["usage"]["ratio"] == "9:16"
    assert body["usage"]["duration"] == 4
    # The same task through the other dialect, same key.
    other = srv.query(tid, "dashscope").json()
    assert other["output"]["task_status"] == "SUCCEEDED"
    path, _ = download(srv, body["output"]["video_url"])
    try:
        check_video(path, 480, 832, 4)
    finally:
        os.unlink(path)


@case
def sizes_of_the_table(srv):
    cells = [("480P", "1:1", 624, 624), ("480P", "21:9", 976, 416),
             ("720P", "4:3", 1088, 832), ("720P", "9:21", 624, 1456),
             ("1080P", "16:9", 1920, 1080)]
    ids = [run_t2v(srv, "dashscope", resolution=res, ratio=ratio,
                   seed=1) for res, ratio, _, _ in cells]
    for tid, (res, ratio, w, h) in zip(ids, cells):
        body = srv.wait(tid, timeout=300)
        check_shape(body, "SUCCEEDED", "a horse running on a beach")
        assert body["usage"]["SR"] == int(res[:-1]), body["usage"]
        assert body["usage"]["ratio"] == ratio
        path, _ = download(srv, body["output"]["video_url"])
        try:
            check_video(path, w, h, 3)
        finally:
            os.unlink(path)


@case
def same_seed_same_bytes(srv):
    a = run_t2v(srv, "dashscope", seed=4242)
    b = run_t2v(srv, "ttapi", seed=4242)
    c = run_t2v(srv, "dashscope", seed=4243)
    files = []
    for tid in (a, b, c):
        body = srv.wait(tid)
        assert body["output"]["task_status"] == "SUCCEEDED", body
        files.append(srv.get_url(body["output"]["video_url"]).body)
    assert files[0] == files[1], "same seed, different bytes"
    assert files[0] != files[2], "different seed, same bytes"


@case
def unknown_shapes(srv):
    tid = run_t2v(srv, "dashscope")
    for task_id, key in ((str(uuid.uuid4()), KEY), ("not-a-task", KEY),
                         (tid, OTHER_KEY)):
        for dialect in ("dashscope", "ttapi"):
            r = srv.query(task_id, dialect, key)
            assert r.status == 200, r
            body = r.json()
            check_shape(body, "UNKNOWN")
            assert body["output"]["task_id"] == task_id


@case
def failed_shape(srv):
    # An image URL on a loopback port nothing listens on: whatever the
    # engine's stage (fetch refused, download failed, not rendered), the
    # task must end FAILED with a code and a message.
    body = {"model": "happyhorse-1.0-i2v",
            "input": {"media": [{"type": "first_frame",
                                 "url": "http://127.0.0.1:9/x.png"}]},
            "parameters": {"resolution": "480P"}}
    r = srv.submit(body)
    assert r.status == 200, r
    res = srv.wait(r.json()["output"]["task_id"])
    check_shape(res, "FAILED")
    assert res["output"]["code"] and res["output"]["message"], res


@case
def running_shape(srv):
    # A long render, polled until it is seen RUNNING.
    tid = run_t2v(srv, "dashscope", resolution="1080P", duration=15)
    body = srv.wait(tid, want=("RUNNING", "SUCCEEDED"), timeout=300)
    assert body["output"]["task_status"] == "RUNNING", \
        "the render finished before a poll saw it RUNNING"
    check_shape(body, "RUNNING", "a horse running on a beach")
    srv.wait(tid, timeout=300)


@case
def pending_shape(srv):
    # An API-only node (no workers) on the same data leaves tasks PENDING.
    api_only = Server(args=["--workers", "0"]).start()
    try:
        tid = run_t2v(api_only, "dashscope", prompt="waits")
        body = api_only.query(tid).json()
        check_shape(body, "PENDING", "waits")
        body = api_only.query(tid, "ttapi").json()
        check_shape(body, "PENDING", "waits")
    finally:
        api_only.stop()
        api_only.cleanup()


@case
def i2v_without_prompt_has_no_orig_prompt(srv):
    api_only = Server(args=["--workers", "0"]).start()
    try:
        body = {"model": "happyhorse-1.0-i2v",
                "input": {"img_url": "https://example.com/a.png"}}
        r = api_only.submit(body)
        assert r.status == 200, r
        q = api_only.query(r.json()["output"]["task_id"]).json()
        check_shape(q, "PENDING")
        assert "orig_prompt" not in q["output"]
    finally:
        api_only.stop()
        api_only.cleanup()


if __name__ == "__main__":
    main(setup, teardown)
