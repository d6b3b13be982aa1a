#!/usr/bin/env python3
"""REGISTER load for the cluster fault test: N distinct users, round-robin over the given
instances, at a fixed rate, one UDP socket, no retransmissions. Every final answer is written
as `USER CODE INSTANCE CONTACT RETRY-AFTER` (`-` when absent; one line each, flushed, so the caller can follow progress);
transactions unanswered after 4 s are written with code `timeout`. Bounded: it stops after
the last send plus 4 s.

Usage: regload.py OUT COUNT RATE IP:PORT...
"""
import select
import socket
import sys
import time

out, count, rate, targets = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
me = sock.getsockname()[1]
pending = {}
log = open(out, "w", buffering=1)
interval = 1.0 / rate
next_send = time.monotonic()
sent = 0
while sent < count or pending:
    now = time.monotonic()
    if sent < count and now >= next_send:
        user = f"load{sent}"
        host, port = targets[sent % len(targets)].rsplit(":", 1)
        contact = f"sip:{user}@127.0.0.1:{20000 + sent % 40000}"
        cid = f"rl{sent}-{me}@127.0.0.1"
        msg = (
            f"REGISTER sip:natter.test SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKrl{sent}x{me};rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:{user}@natter.test>;tag=t{sent}\r\n"
            f"To: <sip:{user}@natter.test>\r\n"
            f"Call-ID: {cid}\r\n"
            f"CSeq: 1 REGISTER\r\n"
            f"Contact: <{contact}>\r\n"
            f"Expires: 3600\r\n"
            f"Content-Length: 0\r\n\r\n"
        )
        sock.sendto(msg.encode(), (host, int(port)))
        pending[cid] = (user, now, f"{host}:{port}", contact)
        sent += 1
        next_send += interval
    for cid, (user, t0, target, contact) in list(pending.items()):
        if now - t0 > 4.0:
            log.write(f"{user} timeout {target} {contact} -\n")
            del pending[cid]
    wait = max(0.0, min(next_send - now, 0.05)) if sent < count else 0.05
    ready, _, _ = select.select([sock], [], [], wait)
    if not ready:
        continue
    data = sock.recv(65535).decode(errors="replace")
    lines = data.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) < 2 or not parts[0].startswith("SIP/2.0") or not parts[1].isdigit():
        continue
    code = int(parts[1])
    cid = next((l.split(":", 1)[1].strip() for l in lines if l.lower().startswith("call-id:")), "")
    retry = next((l.split(":", 1)[1].strip() for l in lines if l.lower().startswith("retry-after:")), "-")
    if code >= 200 and cid in pending:
        user, _, target, contact = pending.pop(cid)
        log.write(f"{user} {code} {target} {contact} {retry}\n")
