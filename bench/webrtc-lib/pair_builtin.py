#!/usr/bin/env python3
"""natter <-> natter with natter's built-in sender: `natter webrtc --role offer --data
--bench-send MB` pushes SIZE-byte text messages (WIN outstanding) to `natter webrtc --role
answer --data --echo --quiet`; only signaling passes through this script, so the figure is
the library's (no JSON per message). CPU: utime+stime of both processes from the offerer's
channel-open to its bench line. Prints RESULT {json}.
Usage: pair_builtin.py NATTER [MB] [SIZE] [WIN] [extra natter args...]"""
import json, queue, subprocess, sys, threading, time

natter = sys.argv[1]
mb = sys.argv[2] if len(sys.argv) > 2 else "16"
size = sys.argv[3] if len(sys.argv) > 3 else "65536"
win = sys.argv[4] if len(sys.argv) > 4 else "8"
extra = sys.argv[5:]
HZ = 100


def cpu(pid):
    try:
        f = open(f"/proc/{pid}/stat").read()
        s = f[f.rindex(")") + 2:].split()
        return (int(s[11]) + int(s[12])) / HZ
    except OSError:
        return 0.0


o = subprocess.Popen([natter, "webrtc", "--role", "offer", "--data", "--bench-send", mb, "--bench-size", size,
                      "--bench-window", win] + extra, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL, text=True, bufsize=1)
a = subprocess.Popen([natter, "webrtc", "--role", "answer", "--data", "--echo", "--quiet"] + extra,
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
ev = queue.Queue()
for name, p in (("O", o), ("A", a)):
    threading.Thread(target=lambda n=name, p=p: [ev.put((n, l)) for l in p.stdout] or ev.put((n, None)),
                     daemon=True).start()
res = {"error": "timeout"}
mark = None
try:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        name, line = ev.get(timeout=60)
        if line is None:
            res = {"error": name + " exited"}
            break
        m = json.loads(line)
        e = m.get("event")
        if e is None:
            peer = a if name == "O" else o
            peer.stdin.write(line)
            peer.stdin.flush()
        elif e == "channel-open" and name == "O":
            mark = (cpu(o.pid), cpu(a.pid))
        elif e == "bench" and name == "O":
            c = (cpu(o.pid) - mark[0], cpu(a.pid) - mark[1]) if mark else (0, 0)
            m.pop("event")
            res = {"mode": "natter-natter-builtin", **m, "cpu_s_natter": round(c[0] + c[1], 2),
                   "cpu_s_per_mb": round((c[0] + c[1]) / (m["msgs"] * m["size"] / 1048576), 4)}
            rss = []
            for p in (o, a):
                st = open(f"/proc/{p.pid}/status").read()
                if "VmHWM:" in st:  # the offerer may have exited already
                    rss.append(int(st.split("VmHWM:")[1].split()[0]))
            res["peak_rss_kb"] = rss
            break
finally:
    for p in (o, a):
        p.terminate()
print("RESULT " + json.dumps(res))
