#!/usr/bin/python3
"""baresip ctrl_tcp client: send one command, print every reply and event (one JSON per line),
optionally wait for an event type. Exit 0 when the reply says ok (and the event came).

usage: bsctrl.py PORT COMMAND [PARAMS] [--wait EVENT] [--timeout SECONDS]
"""
import json
import socket
import sys
import time


def main():
    args = sys.argv[1:]
    wait, timeout = None, 10.0
    if "--wait" in args:
        i = args.index("--wait")
        wait = args[i + 1]
        del args[i:i + 2]
    if "--timeout" in args:
        i = args.index("--timeout")
        timeout = float(args[i + 1])
        del args[i:i + 2]
    port, command = int(args[0]), args[1]
    params = " ".join(args[2:])
    deadline = time.monotonic() + timeout
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    body = json.dumps({"command": command, "params": params, "token": "t1"}).encode()
    s.sendall(str(len(body)).encode() + b":" + body + b",")
    buf = b""
    ok, seen = None, wait is None
    while time.monotonic() < deadline and not (ok is not None and seen):
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            data = s.recv(65536)
        except (socket.timeout, OSError):
            break
        if not data:
            break
        buf += data
        while b":" in buf:
            n, rest = buf.split(b":", 1)
            if not n.isdigit() or len(rest) < int(n) + 1:
                break
            msg, buf = rest[:int(n)], rest[int(n) + 1:]
            print(msg.decode(errors="replace"), flush=True)
            try:
                j = json.loads(msg)
            except ValueError:
                continue
            if j.get("response") and j.get("token") == "t1":
                ok = bool(j.get("ok"))
            if wait and j.get("event") and j.get("type") == wait:
                seen = True
    sys.exit(0 if ok and seen else 1)


main()
