#!/usr/bin/env python3
"""natter <-> natter: `natter webrtc --role offer --data` and `natter webrtc --role answer --data
--echo` with their signaling lines piped into each other. The offerer's channel opens, N text
messages are sent through it ({"type":"message"} on the offerer's stdin) and each must come back as
"echo:"+M, in order. Prints one line: `result ok ...` or `result FAIL ...`; exits 0 on ok.
Usage: pair.py NATTER [N]"""
import json, queue, subprocess, sys, threading, time

natter, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 50
procs = {
    "O": subprocess.Popen([natter, "webrtc", "--role", "offer", "--data"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=open("/dev/null", "w"), text=True, bufsize=1),
    "A": subprocess.Popen([natter, "webrtc", "--role", "answer", "--data", "--echo"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=open("/dev/null", "w"), text=True, bufsize=1),
}
other = {"O": "A", "A": "O"}
events = queue.Queue()


def reader(name):
    for line in procs[name].stdout:
        events.put((name, line.rstrip("\n")))
    events.put((name, None))


for name in procs:
    threading.Thread(target=reader, args=(name,), daemon=True).start()


def send(name, obj):
    procs[name].stdin.write(json.dumps(obj) + "\n")
    procs[name].stdin.flush()


msgs = ["m%d:" % i + "x" * (i * 997 % 60000) + "ü" for i in range(n)]
got, junk, connected, why = [], [], {}, "timeout"
deadline = time.monotonic() + 40
try:
    while time.monotonic() < deadline:
        try:
            name, line = events.get(timeout=0.5)
        except queue.Empty:
            continue
        if line is None:
            why = name + " exited"
            break
        try:
            m = json.loads(line)
        except ValueError:
            junk.append(line[:80])
            continue
        ev = m.get("event")
        if ev is None:
            procs[other[name]].stdin.write(line + "\n")
            procs[other[name]].stdin.flush()
        elif ev == "connected":
            connected[name] = m
        elif ev == "channel-open" and name == "O":
            for t in msgs:
                send("O", {"type": "message", "label": m["label"], "data": t})
        elif ev == "message" and name == "O":
            got.append(m["data"])
            if len(got) == len(msgs):
                why = "done"
                break
finally:
    for p in procs.values():
        p.terminate()
    for p in procs.values():
        try:
            p.wait(timeout=3)
        except subprocess.TimeoutExpired:
            p.kill()

want = ["echo:" + t for t in msgs]
ok = why == "done" and got == want and not junk and len(connected) == 2
print("result %s: %d/%d echoes in order, connected %s, junk %s (%s)" % (
    "ok" if ok else "FAIL", sum(1 for a, b in zip(got, want) if a == b), n,
    {k: (v.get("pair"), v.get("dtls")) for k, v in connected.items()}, junk[:2], why))
sys.exit(0 if ok else 1)
