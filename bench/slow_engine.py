#!/usr/bin/env python3
"""The resident row's program (bench/README.md): a model whose load takes
LOAD seconds and whose job takes JOB seconds, as either kind of engine
(docs/engines.md, contract version 1). The "video" is a pre-made MP4
copied to the job's output path, so what is measured is the load, the job
and paddock's own path, never an encoder.

  slow_engine.py command  LOAD JOB CLIP   one job per process: loads, then
                                          reads the job from stdin
  slow_engine.py resident LOAD JOB CLIP   loads once, says ready, then one
                                          JSON job line after another

Each load appends a line to $SLOW_ENGINE_LOADS when it is set."""

import json
import os
import shutil
import sys
import time


def load(seconds):
    time.sleep(seconds)
    log = os.environ.get("SLOW_ENGINE_LOADS")
    if log:
        with open(log, "a") as f:
            f.write("load %d\n" % os.getpid())


def job(doc, seconds, clip):
    time.sleep(seconds)
    shutil.copyfile(clip, doc["output"])


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    mode, load_s, job_s, clip = sys.argv[1], float(sys.argv[2]), \
        float(sys.argv[3]), sys.argv[4]
    load(load_s)
    if mode == "command":
        job(json.load(sys.stdin), job_s, clip)
        return 0
    say({"type": "ready"})
    for line in sys.stdin:
        msg = json.loads(line)
        if msg.get("type") != "job":
            continue
        try:
            job(msg, job_s, clip)
            say({"type": "done", "id": msg["id"]})
        except OSError as e:
            say({"type": "error", "id": msg["id"],
                 "code": "InternalError.Algo", "message": str(e)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
