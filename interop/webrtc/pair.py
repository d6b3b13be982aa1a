#!/usr/bin/env python3
"""natter <-> natter: `natter webrtc --role offer --data` and `natter webrtc --role answer --data
--echo` with their signaling lines piped into each other. The offerer's channel opens, N text
messages are sent through it ({"type":"message"} on the offerer's stdin) and each must come back as
"echo:"+M, in order. Prints one line: `result ok ...` or `result FAIL ...`; exits 0 on ok.
With RECORD_DIR, both also run --audio: the offerer sends a 440 Hz tone and records, the answerer
echoes and records; both recordings must hold audio.
Usage: pair.py NATTER [N] [RECORD_DIR]"""
import json, queue, subprocess, sys, threading, time

import os, wave

natter, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 50
rec = sys.argv[3] if len(sys.argv) > 3 else None
extra = {"O": [], "A": []}
if rec:
    extra = {k: ["--audio", "--record", os.path.join(rec, k + ".wav")] for k in "OA"}
procs = {
    "O": subprocess.Popen([natter, "webrtc", "--role", "offer", "--data"] + extra["O"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=open("/dev/null", "w"), text=True, bufsize=1),
    "A": subprocess.Popen([natter, "webrtc", "--role", "answer", "--data", "--echo"] + extra["A"], stdin=subprocess.PIPE,
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
                if rec:
                    time.sleep(1.5)  # let a second of audio go round (recording, not sync)
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
audio = {}
if rec:
    for k in "OA":
        try:
            with wave.open(os.path.join(rec, k + ".wav")) as w:
                frames, rate = w.getnframes(), w.getframerate()
                pcm = memoryview(w.readframes(frames)).cast("h")
        except (OSError, EOFError, wave.Error):
            audio[k] = (0, 0)
            continue
        # The 440 Hz tone, estimated from zero crossings over the second half.
        half = pcm[len(pcm) // 2:]
        crossings = sum(1 for a, b in zip(half, half[1:]) if (a < 0) != (b < 0))
        audio[k] = (frames, round(crossings / 2 / max(len(half) / rate, 1e-9)))
    ok = ok and all(n >= 48000 // 2 and 420 <= hz <= 460 for n, hz in audio.values())
print("result %s: %d/%d echoes in order, connected %s, junk %s, recorded samples %s (%s)" % (
    "ok" if ok else "FAIL", sum(1 for a, b in zip(got, want) if a == b), n,
    {k: (v.get("pair"), v.get("dtls")) for k, v in connected.items()}, junk[:2], audio or "-", why))
sys.exit(0 if ok else 1)
