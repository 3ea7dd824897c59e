"""The web console in a real browser (docs/extensions.md, "The web console").

Starts a paddock on 127.0.0.1 (tests/api/lib.py's Server, the binary in
PADDOCK_BIN) on the sandbox engine, then runs test.mjs with Node.js:
headless Debian chromium driven by playwright-core signs in, submits
sandbox tasks and watches them, plays the video, opens a failed task, reads
usage and engines, and checks the headers and the XSS rule. test.mjs prints
"PASS browser.NAME" / "FAIL browser.NAME" per case, which tests/run.sh
counts. Screenshots of each page at 1280 and 390 px go to
build/browser-shots/ (BROWSER_SHOTS to change).

playwright-core comes from tests/browser/node_modules (scripts/setup.sh:
npm ci from the committed package-lock.json) and chromium from Debian;
without them this fails and says so. Nothing here reaches beyond 127.0.0.1.
"""

import json
import os
import shutil
import subprocess
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "api"))

from lib import KEY, Server  # noqa: E402

NAME = "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def missing():
    """Why the browser or the pinned package is not there, or []."""
    why = []
    if not shutil.which("node"):
        why.append("node is not installed")
    if not os.access(CHROMIUM, os.X_OK):
        why.append("%s is not installed (Debian's chromium)" % CHROMIUM)
    with open(os.path.join(HERE, "package.json")) as f:
        pinned = json.load(f)["dependencies"]
    for name, version in sorted(pinned.items()):
        path = os.path.join(HERE, "node_modules", name, "package.json")
        try:
            with open(path) as f:
                have = json.load(f)["version"]
        except OSError:
            why.append("tests/browser/node_modules/%s is missing" % name)
            continue
        if have != version:
            why.append("tests/browser/node_modules/%s is %s, package.json "
                       "pins %s" % (name, have, version))
    return why


def main():
    why = missing()
    if why:
        print("FAIL %s: %s; run scripts/setup.sh" % (NAME, "; ".join(why)),
              flush=True)
        return 1
    shots = os.environ.get("BROWSER_SHOTS",
                           os.path.join(ROOT, "build", "browser-shots"))
    server = Server(keys=[KEY], args=["--workers", "2"])
    image = os.path.join(server.data, "frame.png")
    try:
        # A local file for the new-task page to upload (i2v's first frame).
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f",
                        "lavfi", "-i", "testsrc2=size=640x480", "-frames:v",
                        "1", image], check=True)
        server.start()
        env = dict(os.environ)
        env.update({"CONSOLE_URL": server.base, "KEY": KEY, "SHOTS": shots,
                    "IMAGE": image,
                    "CHROMIUM": CHROMIUM, "NO_COLOR": "1",
                    "NODE_NO_WARNINGS": "1"})
        for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy",
                  "NODE_OPTIONS"):
            env.pop(k, None)
        proc = subprocess.run(["node", os.path.join(HERE, "test.mjs")],
                              cwd=HERE, env=env, timeout=600)
        server.stop()  # a clean exit: no sanitizer or leak report
        if proc.returncode != 0:
            sys.stderr.write("---- server log ----\n%s\n" %
                             server.log_text()[-4000:])
            return 1
    except Exception:
        traceback.print_exc()
        sys.stderr.write("---- server log ----\n%s\n" %
                         server.log_text()[-4000:])
        print("FAIL %s" % NAME, flush=True)
        return 1
    finally:
        server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
