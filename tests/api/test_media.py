"""Every model with real inputs (docs/api.md s.2-5): the test serves its own
fixture images and videos (made here with ffmpeg) from a loopback HTTP
server that --fetch-allow admits, and checks outputs with ffprobe; every
input failure ends FAILED with the documented code and a helpful message."""

import base64
import http.server
import os
import shutil
import subprocess
import tempfile
import threading
import time

from lib import KEY, Server, case, ffprobe, main

FIX = {}


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def make_fixtures(d):
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1280x720", "-frames:v", "1",
           os.path.join(d, "wide.jpg"))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=720x1280", "-frames:v", "1",
           os.path.join(d, "tall.png"))
    ffmpeg("-f", "lavfi", "-i", "smptebars=size=800x800", "-frames:v", "1",
           os.path.join(d, "square.webp"))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=200x200", "-frames:v", "1",
           os.path.join(d, "small.png"))
    with open(os.path.join(d, "text.png"), "w") as f:
        f.write("this is not a picture\n" * 50)
    def av(seconds):  # -t as an output option: both tracks that long
        return ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                "-t", seconds, "-c:v", "libx264", "-preset", "ultrafast",
                "-pix_fmt", "yuv420p", "-c:a", "aac"]
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", *av("4"),
           os.path.join(d, "clip.mp4"))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", *av("2"),
           os.path.join(d, "short.mp4"))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=480x480:rate=24", *av("17"),
           os.path.join(d, "long.mp4"))
    with open(os.path.join(d, "clip.mp4"), "rb") as f:
        whole = f.read()
    with open(os.path.join(d, "truncated.mp4"), "wb") as f:
        f.write(whole[:len(whole) // 3])


class Fixtures(http.server.BaseHTTPRequestHandler):
    root = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        p = self.path.split("?")[0]
        if p == "/slow.png":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            for _ in range(100):
                try:
                    self.wfile.write(b"x" * 10)
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.2)
            return
        if p == "/big.png":  # over the 20 MB cap, no Content-Length
            self.send_response(200)
            self.end_headers()
            chunk = b"\0" * 65536
            try:
                for _ in range(21 * 16 + 1):
                    self.wfile.write(chunk)
            except OSError:
                pass
            return
        if p == "/to-private.png":
            self.send_response(302)
            self.send_header("Location", "http://10.255.255.1/x.png")
            self.end_headers()
            return
        if p.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", "/f/" + p[len("/redirect/"):])
            self.end_headers()
            return
        if p.startswith("/f/"):
            path = os.path.join(self.root, os.path.basename(p))
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    data = f.read()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()


def setup():
    d = tempfile.mkdtemp(prefix="paddock-fixtures-")
    make_fixtures(d)
    Fixtures.root = d
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Fixtures)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    FIX["dir"] = d
    FIX["httpd"] = httpd
    FIX["base"] = "http://127.0.0.1:%d" % httpd.server_address[1]
    srv = Server(args=["--workers", "2", "--fetch-allow", "127.0.0.1/32",
                       "--fetch-timeout", "3s"]).start()
    return srv


def teardown(srv):
    srv.stop()
    srv.cleanup()
    FIX["httpd"].shutdown()
    shutil.rmtree(FIX["dir"], ignore_errors=True)


def url(name):
    return FIX["base"] + "/f/" + name


def body(model, media, prompt="a horse", **params):
    params.setdefault("resolution", "480P")
    b = {"model": model, "input": {"media": media}, "parameters": params}
    if prompt is not None:
        b["input"]["prompt"] = prompt
    return b


def run(srv, b):
    r = srv.submit(b)
    assert r.status == 200, r
    return srv.wait(r.json()["output"]["task_id"], timeout=180)


def download(srv, out, name):
    r = srv.get_url(out["output"]["video_url"])
    assert r.status == 200, r
    path = os.path.join(FIX["dir"], name)
    with open(path, "wb") as f:
        f.write(r.body)
    return path


def check_video(path, w, h, seconds):
    info, video = ffprobe(path)
    assert video["codec_name"] == "h264", video
    assert (video["width"], video["height"]) == (w, h), video
    assert video["r_frame_rate"] == "24/1", video
    assert abs(float(info["format"]["duration"]) - seconds) < 0.1, info
    audio = [s for s in info["streams"] if s["codec_type"] == "audio"]
    assert audio and audio[0]["codec_name"] == "aac", info["streams"]
    return info


def failed_with(out, code, *fragments):
    o = out["output"]
    assert o["task_status"] == "FAILED", o
    assert o["code"] == code, o
    for f in fragments:
        assert f in o["message"], (f, o)


# ------------------------------------------------------------ successes

@case
def i2v_first_frame_is_the_image(srv):
    out = run(srv, body("happyhorse-1.0-i2v",
                        [{"type": "first_frame", "url": url("wide.jpg")}],
                        prompt=None, duration=3, seed=4))
    assert out["output"]["task_status"] == "SUCCEEDED", out
    assert out["usage"]["SR"] == 480 and "ratio" not in out["usage"], out
    path = download(srv, out, "i2v.mp4")
    check_video(path, 832, 480, 3)
    # Frame 0 against the input scaled to the output size: close.
    a = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-frames:v", "1",
                        "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                       check=True, capture_output=True).stdout
    b = subprocess.run(["ffmpeg", "-v", "error", "-i",
                        os.path.join(FIX["dir"], "wide.jpg"), "-vf",
                        "scale=832:480", "-f", "rawvideo", "-pix_fmt", "gray",
                        "-"], check=True, capture_output=True).stdout
    assert len(a) == len(b) == 832 * 480
    # The watermark covers a corner; compare the rest (top 80 %).
    n = 832 * 384
    mad = sum(abs(x - y) for x, y in zip(a[:n], b[:n])) / n
    assert mad < 12, mad


@case
def i2v_ratio_follows_the_image_and_data_urls_work(srv):
    with open(os.path.join(FIX["dir"], "tall.png"), "rb") as f:
        data = "data:image/png;base64," + base64.b64encode(f.read()).decode()
    out = run(srv, body("happyhorse-1.0-i2v",
                        [{"type": "first_frame", "url": data}],
                        resolution="720P", duration=3, ratio="16:9"))
    assert out["output"]["task_status"] == "SUCCEEDED", out
    check_video(download(srv, out, "i2v-tall.mp4"), 720, 1280, 3)


@case
def r2v_every_reference_in_order(srv):
    refs = [{"type": "reference_image", "url": url(n)}
            for n in ("wide.jpg", "square.webp", "tall.png")]
    out = run(srv, body("happyhorse-1.0-r2v", refs, ratio="1:1", duration=3))
    assert out["output"]["task_status"] == "SUCCEEDED", out
    assert out["usage"]["ratio"] == "1:1", out
    check_video(download(srv, out, "r2v.mp4"), 624, 624, 3)


@case
def video_edit_keeps_length_and_audio(srv):
    out = run(srv, body("happyhorse-1.0-video-edit",
                        [{"type": "video", "url": url("clip.mp4")},
                         {"type": "reference_image", "url": url("square.webp")}],
                        prompt="make it night", audio_setting="origin"))
    assert out["output"]["task_status"] == "SUCCEEDED", out
    u = out["usage"]
    assert abs(u["input_video_duration"] - 4) < 0.05, u
    assert abs(u["duration"] - 2 * u["output_video_duration"]) < 0.02, u
    check_video(download(srv, out, "edit.mp4"), 832, 480, 4)


@case
def video_edit_cuts_at_15_seconds(srv):
    out = run(srv, body("happyhorse-1.0-video-edit",
                        [{"type": "video", "url": url("long.mp4")}],
                        prompt="sepia"))
    assert out["output"]["task_status"] == "SUCCEEDED", out
    assert out["usage"]["input_video_duration"] == 15, out
    check_video(download(srv, out, "edit-long.mp4"), 624, 624, 15)


@case
def redirects_are_followed(srv):
    out = run(srv, body("happyhorse-1.0-i2v",
                        [{"type": "first_frame",
                          "url": FIX["base"] + "/redirect/wide.jpg"}],
                        duration=3))
    assert out["output"]["task_status"] == "SUCCEEDED", out


# -------------------------------------------------------------- failures

def i2v_from(u):
    return body("happyhorse-1.0-i2v", [{"type": "first_frame", "url": u}],
                duration=3)


@case
def http_404_fails_download(srv):
    failed_with(run(srv, i2v_from(FIX["base"] + "/f/missing.png?sig=secret")),
                "BadRequest.InputDownloadFailed", "HTTP 404", "media[0]")
    out = run(srv, i2v_from(FIX["base"] + "/f/missing.png?sig=secret"))
    assert "secret" not in out["output"]["message"], out


@case
def slow_url_times_out(srv):
    failed_with(run(srv, i2v_from(FIX["base"] + "/slow.png")),
                "BadRequest.InputDownloadFailed", "within 3 s")


@case
def oversize_image_refused(srv):
    failed_with(run(srv, i2v_from(FIX["base"] + "/big.png")),
                "BadRequest.InputDownloadFailed", "larger than")


@case
def redirect_into_private_address_refused(srv):
    failed_with(run(srv, i2v_from(FIX["base"] + "/to-private.png")),
                "InvalidURL", "10.255.255.1")


@case
def loopback_refused_without_allow_list(srv):
    plain = Server(args=["--workers", "1"]).start()
    try:
        failed_with(run(plain, i2v_from(url("wide.jpg"))), "InvalidURL",
                    "127.0.0.1", "fetch-allow")
    finally:
        plain.stop()
        plain.cleanup()


@case
def text_named_png_is_not_an_image(srv):
    failed_with(run(srv, i2v_from(url("text.png"))),
                "BadRequest.UnsupportedFileFormat", "media[0]")


@case
def small_image_refused_with_its_size(srv):
    failed_with(run(srv, i2v_from(url("small.png"))), "InvalidParameter",
                "200x200")


@case
def truncated_video_is_unsupported(srv):
    failed_with(run(srv, body("happyhorse-1.0-video-edit",
                              [{"type": "video", "url": url("truncated.mp4")}])),
                "BadRequest.UnsupportedFileFormat", "media[0]")


@case
def two_second_video_refused(srv):
    failed_with(run(srv, body("happyhorse-1.0-video-edit",
                              [{"type": "video", "url": url("short.mp4")}])),
                "InvalidParameter", "2.0")


if __name__ == "__main__":
    main(setup, teardown)
