#!/usr/bin/python3
"""Runs two ICE peers that speak the `natter ice connect` line contract and cross-wires them.

    pair.py [--timeout S] [--log DIR] [--data] [--hold S] -- CMD_A ... -- CMD_B ...

Each peer prints its description (a= lines up to a=end-of-candidates); those lines go to the
other peer's stdin. When both print `connected ...`, with --data each peer is sent one line
("hello from A #<nonce>" to A, which A must send to B, and the reverse) and the script waits
until each peer has printed the other's line. With --hold, both keep running S seconds more.
Then stdin is closed and the peers exit.

stdout (one fact per line, for scripts to grep):
    A connected <ltype> <laddr> <rtype> <raddr>
    A connect_ms <ms from the moment B's a=end-of-candidates was written to A's stdin>
    A got hello from B #<nonce>
    result ok | result fail <reason>
Exit 0 when both connected (and, with --data, both lines crossed); 1 otherwise.
Every wait is bounded by --timeout.
"""
import os
import random
import subprocess
import sys
import threading
import time

args = sys.argv[1:]
timeout = 20.0
logdir = None
data = False
hold = 0.0
while args and args[0] != "--":
    a = args.pop(0)
    if a == "--timeout":
        timeout = float(args.pop(0))
    elif a == "--log":
        logdir = args.pop(0)
    elif a == "--data":
        data = True
    elif a == "--hold":
        hold = float(args.pop(0))
    else:
        sys.exit("unknown option %s" % a)
if not args or "--" not in args[1:]:
    sys.exit(__doc__)
split = args.index("--", 1)
cmds = {"A": args[1:split], "B": args[split + 1:]}

lock = threading.Condition()
state = {n: {"connected": None, "eoc_sent": None, "connect_ms": None, "connected_at": None, "lines": [], "exited": None}
         for n in "AB"}
procs = {}
T0 = time.monotonic()


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


for n in "AB":
    err = open(os.path.join(logdir, "peer-%s.err" % n), "w") if logdir else subprocess.DEVNULL
    procs[n] = subprocess.Popen(cmds[n], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=err, text=True, bufsize=1)


def other(n):
    return "B" if n == "A" else "A"


def reader(n):
    p = procs[n]
    log = open(os.path.join(logdir, "peer-%s.out" % n), "w") if logdir else None
    for line in p.stdout:
        line = line.rstrip("\n")
        if log:
            log.write("%.3f %s\n" % (time.monotonic() - T0, line))
            log.flush()
        with lock:
            st = state[n]
            if line.startswith("a=") and st["connected"] is None:
                o = procs[other(n)]
                try:
                    o.stdin.write(line + "\n")
                    o.stdin.flush()
                except (BrokenPipeError, ValueError):
                    pass
                if line.strip() == "a=end-of-candidates":
                    state[other(n)]["eoc_sent"] = time.monotonic()
            elif line.startswith("connected ") and st["connected"] is None:
                st["connected"] = line
                st["connected_at"] = time.monotonic()
                if st["eoc_sent"] is not None:
                    st["connect_ms"] = (time.monotonic() - st["eoc_sent"]) * 1000
            elif line == "failed":
                st["connected"] = "failed"
            elif st["connected"] is not None:
                st["lines"].append(line)
            lock.notify_all()
    with lock:
        state[n]["exited"] = True
        lock.notify_all()


threads = [threading.Thread(target=reader, args=(n,), daemon=True) for n in "AB"]
for t in threads:
    t.start()

deadline = T0 + timeout


def wait(pred):
    with lock:
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            lock.wait(min(left, 0.1))
        return True


result = "ok"
if not wait(lambda: all(state[n]["connected"] or state[n]["exited"] for n in "AB")):
    result = "fail timeout before both connected"
for n in "AB":
    c = state[n]["connected"]
    out("%s %s" % (n, c if c else "not-connected"))
    if state[n]["connect_ms"] is not None:
        out("%s connect_ms %.1f" % (n, state[n]["connect_ms"]))
if result == "ok" and not all((state[n]["connected"] or "").startswith("connected ") for n in "AB"):
    result = "fail not both connected"
if result == "ok":
    # Both descriptions delivered -> both peers connected: the pair's time to connect.
    ready = max(state[n]["eoc_sent"] or T0 for n in "AB")
    done = max(state[n]["connected_at"] for n in "AB")
    out("pair connect_ms %.1f" % ((done - ready) * 1000))

if result == "ok" and data:
    nonce = random.randint(100000, 999999)
    msg = {n: "hello from %s #%d" % (n, nonce) for n in "AB"}
    with lock:
        for n in "AB":
            try:
                procs[n].stdin.write(msg[n] + "\n")
                procs[n].stdin.flush()
            except (BrokenPipeError, ValueError):
                pass
    if not wait(lambda: all(msg[other(n)] in state[n]["lines"] for n in "AB")):
        result = "fail data did not cross both ways"
    for n in "AB":
        for line in state[n]["lines"]:
            out("%s got %s" % (n, line))

if hold > 0:
    # keep both running (nomination may come after the first valid pair)
    time.sleep(min(hold, 30.0))
with lock:
    for n in "AB":
        try:
            procs[n].stdin.close()
        except (BrokenPipeError, ValueError):
            pass
for n in "AB":
    try:
        procs[n].wait(timeout=max(1.0, deadline + 3 - time.monotonic()))
    except subprocess.TimeoutExpired:
        procs[n].terminate()
        try:
            procs[n].wait(timeout=2)
        except subprocess.TimeoutExpired:
            procs[n].kill()
out("result %s" % result)
sys.exit(0 if result == "ok" else 1)
