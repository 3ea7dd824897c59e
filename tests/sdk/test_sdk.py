"""The Vercel AI SDK works against paddock unchanged (docs/sdk.md).

Starts two paddocks on 127.0.0.1 (tests/api/lib.py's Server, the binary in
PADDOCK_BIN): one on the sandbox engine, one on a command engine that
records the job it is handed, then runs test.mjs with Node.js, which calls
`ai`'s experimental_generateVideo through `@ai-sdk/alibaba` with only the
base URL and the key changed. Prints one line, "PASS sdk.vercel_ai" or
"FAIL sdk.vercel_ai", which tests/run.sh counts.

The packages come from tests/sdk/node_modules, installed by
scripts/setup.sh (npm ci from the committed package-lock.json); without
them this fails and says so. Nothing here reaches beyond 127.0.0.1.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "api"))

from lib import KEY, Server  # noqa: E402

NAME = "sdk.vercel_ai"

# A command engine (docs/engines.md) that keeps a copy of each job it is
# handed, then renders a stand-in: an ffmpeg test pattern of the job's tier
# at 16:9 (whatever the ratio) and of its duration.
RECORDER = r"""#!/usr/bin/env python3
import json, os, subprocess, sys
raw = sys.stdin.buffer.read()
job = json.loads(raw)
d = os.environ["SDK_RECORD_DIR"]
n = len([f for f in os.listdir(d) if f.endswith(".json")])
with open(os.path.join(d, "%04d.json" % n), "wb") as f:
    f.write(raw)
p = job["parameters"]
w, h = {480: (832, 480), 720: (1280, 720), 1080: (1920, 1080)}[p["resolution"]]
sys.exit(subprocess.run(
    ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
     "testsrc2=size=%dx%d:rate=24" % (w, h), "-t", str(p["duration"] or 3),
     "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
     "-movflags", "+faststart", "-f", "mp4", job["output"]]).returncode)
"""


def missing_packages():
    """Why the packages package.json pins are not installed, or []."""
    why = []
    if not shutil.which("node"):
        why.append("node is not installed")
    with open(os.path.join(HERE, "package.json")) as f:
        pinned = json.load(f)["dependencies"]
    for name, version in sorted(pinned.items()):
        path = os.path.join(HERE, "node_modules", name, "package.json")
        try:
            with open(path) as f:
                have = json.load(f)["version"]
        except OSError:
            why.append("tests/sdk/node_modules/%s is missing" % name)
            continue
        if have != version:
            why.append("tests/sdk/node_modules/%s is %s, package.json pins %s"
                       % (name, have, version))
    return why


def run(tmp):
    image = os.path.join(tmp, "frame.png")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc2=size=640x480", "-frames:v", "1", image],
                   check=True)
    record = os.path.join(tmp, "record")
    os.mkdir(record)
    recorder = os.path.join(tmp, "recorder.py")
    with open(recorder, "w") as f:
        f.write(RECORDER)
    os.chmod(recorder, 0o755)

    sandbox = Server(keys=[KEY], args=["--fetch-allow", "127.0.0.1/32"])
    recorded = Server(keys=[KEY], args=["--workers", "1", "--engine",
                                        "command:" + recorder],
                      env={"SDK_RECORD_DIR": record})
    servers = []
    try:
        for s in (sandbox, recorded):
            s.start()
            servers.append(s)
        env = dict(os.environ)
        env.update({"SANDBOX_URL": sandbox.base, "SANDBOX_DATA": sandbox.data,
                    "RECORD_URL": recorded.base, "RECORD_DIR": record,
                    "KEY": KEY, "IMAGE": image,
                    "NO_COLOR": "1", "NODE_NO_WARNINGS": "1"})
        for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy",
                  "NODE_OPTIONS"):
            env.pop(k, None)
        proc = subprocess.run(["node", os.path.join(HERE, "test.mjs")],
                              cwd=HERE, env=env, timeout=900)
        if proc.returncode != 0:
            raise AssertionError("node test.mjs exited %d" % proc.returncode)
        while servers:  # a clean exit: no sanitizer or leak report
            servers.pop().stop()
    except BaseException:
        for s in servers:
            sys.stderr.write("---- %s ----\n%s\n" %
                             (s.base, s.log_text()[-4000:]))
        raise
    finally:
        for s in (sandbox, recorded):
            s.cleanup()


def main():
    why = missing_packages()
    if why:
        print("FAIL %s: %s; run scripts/setup.sh (it runs npm ci in "
              "tests/sdk)" % (NAME, "; ".join(why)), flush=True)
        return 1
    tmp = tempfile.mkdtemp(prefix="paddock-sdk-")
    try:
        run(tmp)
    except Exception:
        traceback.print_exc()
        print("FAIL %s" % NAME, flush=True)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS %s" % NAME, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
