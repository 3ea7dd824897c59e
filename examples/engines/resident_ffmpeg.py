#!/usr/bin/env python3
"""A worked example of a paddock resident engine (contract version 1,
docs/engines.md, "The resident engine"). A real engine loads its model's
weights once, then renders job after job; this one "loads" by preparing
something costly once (a rendered title card, kept in memory for every
job) and renders each job with the ffmpeg CLI, so it runs anywhere.

paddock keeps it running: it prints {"type": "ready"} once loaded, then
reads one JSON line per job from stdin and answers with progress lines and
one done (the MP4 is at job["output"]) or error line naming the job's id.
A {"type": "cancel"} line asks it to stop the job it is doing.

Environment: PADDOCK_SLOT (this copy's number: pin a GPU with it), and for
the tests RESIDENT_LOAD_SECONDS (how long the load takes) and
RESIDENT_LOAD_LOG (a file each load appends a line to)."""

import json
import os
import select
import subprocess
import sys
import tempfile
import time

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


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def load():
    """The costly part, done once per process: here a title card image
    (a real engine loads its weights)."""
    time.sleep(float(os.environ.get("RESIDENT_LOAD_SECONDS", "0")))
    log = os.environ.get("RESIDENT_LOAD_LOG")
    if log:
        with open(log, "a") as f:
            f.write("load slot=%s pid=%d\n" %
                    (os.environ.get("PADDOCK_SLOT", "?"), os.getpid()))
    card = os.path.join(tempfile.mkdtemp(prefix="resident-"), "card.png")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "color=c=navy:size=320x180", "-frames:v", "1", card],
                   check=True)
    return {"card": card}


def render(state, job, cancelled):
    """One job; returns None, or (code, message) for an error line."""
    p = job["parameters"]
    ratio = p["ratio"] or "16:9"
    w, h = SIZES[ratio][p["resolution"]]
    seconds = p["duration"] or 5
    if job["kind"] == "t2v":
        source = ["-loop", "1", "-framerate", "24", "-i", state["card"]]
    elif job["kind"] == "i2v":
        source = ["-loop", "1", "-framerate", "24", "-i",
                  job["media"][0]["path"]]  # fetched by paddock
    else:
        return ("InvalidParameter",
                "this example renders t2v and i2v only, not " + job["kind"])
    hue = p["seed"] % 360
    cmd = ["ffmpeg", "-v", "error", "-y", *source, "-f", "lavfi", "-i",
           "sine=frequency=330:sample_rate=48000", "-vf",
           "scale=%d:%d,hue=h=%d" % (w, h, hue), "-t", str(seconds),
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           "-c:a", "aac", "-shortest", "-movflags", "+faststart",
           "-progress", "pipe:1", "-f", "mp4", job["output"]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if cancelled():
            proc.kill()
            proc.wait()
            return ("InternalError.Algo", "canceled")
        if line.startswith("out_time_us="):
            try:
                done = int(line.split("=")[1]) / 1e6
            except ValueError:
                continue
            say({"type": "progress", "id": job["id"],
                 "percent": max(0, min(99, int(100 * done / seconds)))})
    if proc.wait() != 0:
        return ("InternalError.Algo", "ffmpeg failed with status %d" %
                proc.returncode)
    return None


class Lines:
    """JSON lines from stdin, read without blocking when asked (a cancel
    may come while a job runs)."""

    def __init__(self):
        self.buf = b""
        self.eof = False

    def get(self, timeout=None):
        while b"\n" not in self.buf and not self.eof:
            r, _, _ = select.select([0], [], [], timeout)
            if not r:
                return None
            chunk = os.read(0, 65536)
            if not chunk:
                self.eof = True
            self.buf += chunk
        if b"\n" not in self.buf:
            return None
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)


def main():
    state = load()
    say({"type": "ready"})
    lines = Lines()
    waiting = []  # messages read while a job ran
    while True:
        msg = waiting.pop(0) if waiting else lines.get()
        if msg is None:
            if lines.eof:
                return  # paddock closed our stdin: it is going away
            continue
        if msg.get("type") != "job":
            continue  # a cancel for a job already over
        if msg.get("version") != 1:
            say({"type": "error", "id": msg.get("id"),
                 "code": "InternalError.Algo",
                 "message": "unsupported contract version"})
            continue

        def cancelled(job_id=msg["id"]):
            other = lines.get(0)
            if other is None:
                return False
            if other.get("type") == "cancel" and other.get("id") == job_id:
                return True
            waiting.append(other)
            return False

        failure = render(state, msg, cancelled)
        if failure:
            say({"type": "error", "id": msg["id"], "code": failure[0],
                 "message": failure[1]})
        else:
            say({"type": "done", "id": msg["id"]})


if __name__ == "__main__":
    main()
