#!/usr/bin/env python3
"""Pipes the signaling lines of two WebRTC peers that speak natter's stdin/stdout JSON lines into
each other (`natter webrtc`, aiortc_peer.py), until one prints {"event":"result"} or exits, or the
timeout. Prints one line: REPORT {"a": {"events": [...], "junk": [...]}, "b": {...}, "why": ...}
(events without "message" payloads; junk: stdout lines that are not JSON).
  link.py [--timeout S] [--stderr DIR] -- 'CMD A' 'CMD B'"""
import json
import os
import queue
import subprocess
import sys
import threading
import time

argv = sys.argv[1:]
timeout, errdir = 60.0, None
while argv and argv[0] != "--":
    if argv[0] == "--timeout":
        timeout = float(argv[1])
    elif argv[0] == "--stderr":
        errdir = argv[1]
    argv = argv[2:]
cmds = dict(zip("ab", argv[1:3]))
procs = {}
for k, cmd in cmds.items():
    err = open(os.path.join(errdir, k + ".stderr"), "w") if errdir else subprocess.DEVNULL
    procs[k] = subprocess.Popen(["bash", "-c", "exec " + cmd], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1)
other = {"a": "b", "b": "a"}
lines = queue.Queue()


def reader(k):
    for line in procs[k].stdout:
        lines.put((k, line.rstrip("\n")))
    lines.put((k, None))


for k in procs:
    threading.Thread(target=reader, args=(k,), daemon=True).start()
rep = {k: {"events": [], "junk": []} for k in procs}
why = "timeout"
deadline = time.monotonic() + timeout
try:
    while time.monotonic() < deadline:
        try:
            k, line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is None:
            # The other side may still have lines in flight (a peer closing after its
            # result makes this one exit at once): read on briefly.
            why = k + " exited"
            deadline = min(deadline, time.monotonic() + 3)
            continue
        try:
            m = json.loads(line)
        except ValueError:
            rep[k]["junk"].append(line[:100])
            continue
        if "event" in m:
            if m["event"] == "message":
                m = {"event": "message", "label": m.get("label")}
            rep[k]["events"].append(m)
            if m["event"] == "result":
                why = k + " result"
                break
            continue
        try:
            procs[other[k]].stdin.write(line + "\n")
            procs[other[k]].stdin.flush()
        except (BrokenPipeError, OSError):
            pass
finally:
    for p in procs.values():
        try:
            p.stdin.close()
        except OSError:
            pass
        p.terminate()
    for p in procs.values():
        try:
            p.wait(timeout=3)
        except subprocess.TimeoutExpired:
            p.kill()
rep["why"] = why
print("REPORT " + json.dumps(rep))
