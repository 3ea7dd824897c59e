#!/usr/bin/env python3
"""A worked example of a paddock command engine (contract version 1,
docs/engines.md). It renders with the ffmpeg CLI instead of a neural
network, so it runs anywhere; replace the render() body with a call into
your model and keep the rest.

paddock starts it once per task: the job arrives as one JSON document on
stdin; "progress N" lines on stdout report progress; the video goes to
job["output"]; exit 0 on success. A failure with a code of the API is an
"error {json}" line on stdout and a non-zero exit."""

import json
import subprocess
import sys

SIZES = {  # docs/api.md s.4: ratio -> {tier: (w, h)}
    "16:9": {480: (832, 480), 720: (1280, 720), 1080: (1920, 1080)},
    "9:16": {480: (480, 832), 720: (720, 1280), 1080: (1080, 1920)},
    "1:1": {480: (624, 624), 720: (960, 960), 1080: (1440, 1440)},
    "4:3": {480: (720, 544), 720: (1088, 832), 1080: (1632, 1248)},
    "3:4": {480: (544, 720), 720: (832, 1088), 1080: (1248, 1632)},
    "5:4": {480: (720, 576), 720: (1072, 864), 1080: (1616, 1296)},
    "4:5": {480: (576, 720), 720: (864, 1072), 1080: (1296, 1616)},
    "21:9": {480: (976, 416), 720: (1456, 624), 1080: (2208, 944)},
    "9:21": {480: (416, 976), 720: (624, 1456), 1080: (944, 2208)},
}


def fail(code, message):
    print("error " + json.dumps({"code": code, "message": message}),
          flush=True)
    sys.exit(3)


def render(job):
    p = job["parameters"]
    ratio = p["ratio"] or "16:9"
    w, h = SIZES[ratio][p["resolution"]]
    seconds = p["duration"] or 5
    filters = []  # output options: they go after every input
    if job["kind"] == "t2v":
        hue = p["seed"] % 360
        source = ["-f", "lavfi", "-i",
                  "testsrc2=size=%dx%d:rate=24,hue=h=%d" % (w, h, hue)]
    elif job["kind"] == "i2v":
        image = job["media"][0]["path"]  # fetched by paddock
        source = ["-loop", "1", "-framerate", "24", "-i", image]
        filters = ["-vf", "scale=%d:%d:force_original_aspect_ratio=increase,"
                   "crop=%d:%d" % (w, h, w, h)]
    else:
        fail("InvalidParameter",
             "this example engine renders t2v and i2v only, not " + job["kind"])
    cmd = ["ffmpeg", "-v", "error", "-y", *source, "-f", "lavfi", "-i",
           "sine=frequency=330:sample_rate=48000", *filters,
           "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           "-c:a", "aac", "-shortest", "-movflags", "+faststart",
           "-progress", "pipe:1", "-f", "mp4", job["output"]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:  # ffmpeg's progress: out_time_us=...
        if line.startswith("out_time_us="):
            try:
                done = int(line.split("=")[1]) / 1e6
            except ValueError:
                continue
            pct = max(0, min(99, int(100 * done / seconds)))
            print("progress %d" % pct, flush=True)
    if proc.wait() != 0:
        fail("InternalError.Algo", "ffmpeg failed with status %d" %
             proc.returncode)


def main():
    job = json.load(sys.stdin)
    if job.get("version") != 1:
        fail("InternalError.Algo", "unsupported contract version %r" %
             job.get("version"))
    render(job)


if __name__ == "__main__":
    main()
