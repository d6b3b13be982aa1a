#!/usr/bin/python3
"""Impairs the packets of an NFQUEUE queue: random loss, uniform jitter (with or without
reordering) and clock drift (a delay that grows linearly). This kernel has no netem.

    impair.py --queue N [--seed S] [--loss PCT] [--delay-ms D] [--jitter-ms J]
              [--no-reorder] [--drift PCT]

Hook it in a router namespace with
`iptables -A FORWARD -p udp -j NFQUEUE --queue-num N --queue-bypass` (SIP ports ACCEPTed by an
earlier rule, so signalling is never impaired). The kernel hands each packet's id and its first
bytes to this process, which answers DROP at once for a lost packet and ACCEPT after the
packet's delay otherwise. Speaks nfnetlink_queue over a raw netlink socket (stdlib only).

Per packet: lost with probability PCT/100; else delayed by
  D + J + uniform(-J, +J)       (jitter; a packet may overtake the one before it)
  D + PCT_drift/100 * (t - t0)  (drift; t0 = the flow's first packet: +0.5 % is 10 ms per 2 s)
--no-reorder holds a packet back until the flow's previous one has gone.

Every flow (source address, destination address, RTP or RTCP) draws from its own random stream
seeded by (seed, source subnet, RTP/RTCP) only, so the n-th packet of the A->B RTP stream gets
the same fate in every call and every pair run side by side: the peers compared face exactly the
same loss pattern. Prints `ready` once bound; on SIGTERM releases what it holds, prints
`impair: seen=N dropped=M` and exits.
"""
import argparse
import hashlib
import heapq
import os
import random
import select
import signal
import socket
import struct
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS = 1, 2
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_PAYLOAD = 10
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_PACKET = 2
NF_DROP, NF_ACCEPT = 0, 1
NLM_F_REQUEST = 1

ap = argparse.ArgumentParser()
ap.add_argument("--queue", type=int, required=True)
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--loss", type=float, default=0.0, help="percent")
ap.add_argument("--delay-ms", type=float, default=0.0)
ap.add_argument("--jitter-ms", type=float, default=0.0)
ap.add_argument("--no-reorder", action="store_true")
ap.add_argument("--drift", type=float, default=0.0, help="percent, delay growth rate")
A = ap.parse_args()

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
# Copy the first 64 bytes: IPv4 + UDP headers + the RTP/RTCP packet-type byte.
send(NFQNL_MSG_CONFIG, attr(NFQA_CFG_PARAMS, struct.pack("!IB", 64, NFQNL_COPY_PACKET)), family=0)
print("ready", flush=True)

running = [True]
signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
due = []  # (release time, tie-breaker, packet id)
flows = {}  # key -> [rng, t0, last release]
stats = {"seen": 0, "dropped": 0}
J = A.jitter_ms / 1000.0
D = A.delay_ms / 1000.0


def verdict(pid, v):
    send(NFQNL_MSG_VERDICT, attr(NFQA_VERDICT_HDR, struct.pack("!II", v, pid)))


def flow_of(pkt):
    """(flow key, seed key) for an IPv4/UDP packet; the seed key leaves out the host part so
    pairs side by side share the same random sequence."""
    if len(pkt) < 20 or pkt[0] >> 4 != 4:
        return ("other",), "other"
    ihl = (pkt[0] & 15) * 4
    src, dst = pkt[12:16], pkt[16:20]
    rtcp = len(pkt) > ihl + 9 and 192 <= pkt[ihl + 9] <= 223
    return (src, dst, rtcp), f"{A.seed}/{src[:3].hex()}/{dst[:3].hex()}/{rtcp}"


def handle(pid, pkt, now):
    stats["seen"] += 1
    key, seed_key = flow_of(pkt)
    st = flows.get(key)
    if st is None:
        seed = int.from_bytes(hashlib.sha256(seed_key.encode()).digest()[:8], "big")
        st = flows[key] = [random.Random(seed), now, 0.0]
    rng = st[0]
    # Draw both numbers for every packet so loss and delay stay in step across runs.
    lost = rng.random() * 100.0 < A.loss
    u = rng.uniform(-1.0, 1.0)
    if lost:
        stats["dropped"] += 1
        verdict(pid, NF_DROP)
        return
    delay = D + (J + J * u if J > 0 else 0.0) + A.drift / 100.0 * (now - st[1])
    at = now + delay
    if A.no_reorder and at < st[2]:
        at = st[2]
    st[2] = at
    if at <= now:
        verdict(pid, NF_ACCEPT)
    else:
        heapq.heappush(due, (at, stats["seen"], pid))


def parse(buf, now):
    off = 0
    while off + 16 <= len(buf):
        ln, typ, _flags, _seq, _pid = struct.unpack_from("=IHHII", buf, off)
        if ln < 16:
            break
        if typ == ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET):
            a = off + 16 + 4
            end = off + ln
            pid, pkt = None, b""
            while a + 4 <= end:
                alen, akind = struct.unpack_from("=HH", buf, a)
                if alen < 4:
                    break
                kind = akind & 0x7FFF
                if kind == NFQA_PACKET_HDR and alen >= 8:
                    (pid,) = struct.unpack_from("!I", buf, a + 4)
                elif kind == NFQA_PAYLOAD:
                    pkt = buf[a + 4:a + alen]
                a += (alen + 3) & ~3
            if pid is not None:
                handle(pid, pkt, now)
        off += (ln + 3) & ~3


while running[0]:
    now = time.monotonic()
    while due and due[0][0] <= now:
        verdict(heapq.heappop(due)[2], NF_ACCEPT)
    wait = max(0.0, due[0][0] - now) if due else 0.2
    try:
        r, _, _ = select.select([sock], [], [], wait)
    except InterruptedError:
        continue
    if r:
        try:
            parse(sock.recv(1 << 16), time.monotonic())
        except OSError:
            pass
for _, _, pid in due:
    verdict(pid, NF_ACCEPT)
print(f"impair: seen={stats['seen']} dropped={stats['dropped']}", flush=True)
os._exit(0)
