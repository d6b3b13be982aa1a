#!/usr/bin/env python3
"""natter <-> natter echo benchmark through the CLI: `natter webrtc --role offer --data` sends MB
megabytes of SIZE-byte text messages ({"type":"message"} on its stdin, WIN outstanding) to
`natter webrtc --role answer --data --echo`; every echo comes back as an event line. Includes the
JSON stdin/stdout cost of both processes. Prints RESULT {json}.
Usage: pair_bench.py NATTER [MB] [SIZE] [extra natter args...]"""
import json, subprocess, sys, time

natter = sys.argv[1]
mb = float(sys.argv[2]) if len(sys.argv) > 2 else 16
size = int(sys.argv[3]) if len(sys.argv) > 3 else 65536
extra = sys.argv[4:]
win = 8
t0 = time.monotonic()
o = subprocess.Popen([natter, "webrtc", "--role", "offer", "--data"] + extra, stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
a = subprocess.Popen([natter, "webrtc", "--role", "answer", "--data", "--echo"] + extra, stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
import threading, queue
ev = queue.Queue()
for name, p in (("O", o), ("A", a)):
    threading.Thread(target=lambda n=name, p=p: [ev.put((n, l)) for l in p.stdout] or ev.put((n, None)), daemon=True).start()
n = int(mb * 1048576 / size)
msg = json.dumps({"type": "message", "data": "x" * size}) + "\n"
sent = got = 0
setup = first = ts = None
res = {"error": "timeout"}
try:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        name, line = ev.get(timeout=30)
        if line is None:
            res = {"error": name + " exited"}
            break
        m = json.loads(line)
        e = m.get("event")
        if e is None:
            (a if name == "O" else o).stdin.write(line)
            (a if name == "O" else o).stdin.flush()
        elif e == "channel-open" and name == "O":
            setup = time.monotonic() - t0
            ts = time.monotonic()
            while sent < min(n, win):
                o.stdin.write(msg); sent += 1
            o.stdin.flush()
        elif e == "message" and name == "O":
            if first is None:
                first = time.monotonic() - t0
            got += 1
            if got == n:
                secs = time.monotonic() - ts
                res = {"mode": "natter-natter", "setup_ms": round(setup * 1000), "first_ms": round(first * 1000),
                       "echo_ms": round(secs * 1000), "msgs": n, "size": size,
                       "mb_per_s_each_way": round(n * size / 1048576 / secs, 2)}
                for p in (o, a):
                    res.setdefault("peak_rss_kb", []).append(int(open(f"/proc/{p.pid}/status").read().split("VmHWM:")[1].split()[0]))
                break
            if sent < n:
                o.stdin.write(msg); sent += 1; o.stdin.flush()
finally:
    for p in (o, a):
        p.terminate()
print("RESULT " + json.dumps(res))
