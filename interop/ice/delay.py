#!/usr/bin/python3
"""Delays every packet of an NFQUEUE queue by a fixed time (this kernel has no netem).

    delay.py --queue N --delay-ms MS

Hook it with e.g. `iptables -A FORWARD -j NFQUEUE --queue-num N --queue-bypass` in a router
namespace: the kernel hands each packet's id to this process, which gives the ACCEPT verdict
MS later. Speaks nfnetlink_queue directly over a raw netlink socket (stdlib only), asking for
metadata only (no payload copies). Prints `ready` once bound. Stops on SIGTERM.
"""
import argparse
import heapq
import os
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS = 1, 2
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NF_ACCEPT = 1
NLM_F_REQUEST = 1
NLMSG_ERROR = 2

ap = argparse.ArgumentParser()
ap.add_argument("--queue", type=int, required=True)
ap.add_argument("--delay-ms", type=float, required=True)
A = ap.parse_args()
DELAY = A.delay_ms / 1000.0

sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
sock.bind((0, 0))
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
seq = 0


def attr(kind, payload):
    n = 4 + len(payload)
    return struct.pack("=HH", n, kind) + payload + b"\0" * ((4 - n % 4) % 4)


def send(msg_type, body, family=socket.AF_INET):
    global seq
    seq += 1
    nfgen = struct.pack("=BBH", family, 0, socket.htons(A.queue))
    payload = nfgen + body
    hdr = struct.pack("=IHHII", 16 + len(payload), (NFNL_SUBSYS_QUEUE << 8) | msg_type,
                      NLM_F_REQUEST, seq, 0)
    sock.send(hdr + payload)


send(NFQNL_MSG_CONFIG, attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, socket.AF_INET)),
     family=0)
send(NFQNL_MSG_CONFIG, attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META)), family=0)
print("ready", flush=True)

running = [True]
signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
due = []  # (time, packet id)


def verdict(pid):
    send(NFQNL_MSG_VERDICT, attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, pid)))


def parse(buf):
    off = 0
    while off + 16 <= len(buf):
        ln, typ, _flags, _seq, _pid = struct.unpack_from("=IHHII", buf, off)
        if ln < 16:
            break
        if typ == ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET):
            a = off + 16 + 4
            end = off + ln
            while a + 4 <= end:
                alen, akind = struct.unpack_from("=HH", buf, a)
                if alen < 4:
                    break
                if (akind & 0x7FFF) == NFQA_PACKET_HDR and alen >= 8:
                    (pid,) = struct.unpack_from("!I", buf, a + 4)
                    heapq.heappush(due, (time.monotonic() + DELAY, pid))
                a += (alen + 3) & ~3
        off += (ln + 3) & ~3


while running[0]:
    now = time.monotonic()
    while due and due[0][0] <= now:
        verdict(heapq.heappop(due)[1])
    wait = max(0.0, due[0][0] - now) if due else 0.2
    try:
        r, _, _ = select.select([sock], [], [], wait)
    except InterruptedError:
        continue
    if r:
        try:
            parse(sock.recv(1 << 16))
        except OSError:
            pass
for _, pid in due:
    verdict(pid)
os._exit(0)
