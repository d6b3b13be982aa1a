#!/usr/bin/env python3
"""A second, independent WebRTC peer for interop: aiortc (Debian python3-aiortc; its DTLS is
pyOpenSSL, so DTLS 1.2 only) speaking the same JSON lines as `natter webrtc` on stdin/stdout:
descriptions {"type":"offer"|"answer","sdp":...}, trickled candidates
{"candidate":"candidate:...","sdpMid":...,"sdpMLineIndex":...} (candidate "" ends them).

  aiortc_peer.py --role offer|answer [--n N] [--echo] [--label chat]

Without --echo it sends N text messages (0 B .. 60 KB, some UTF-8) on its data channel (it opens
"chat" as offerer, takes the peer's first channel as answerer), at most 4 outstanding, and checks
each comes back as "echo:"+M in order. With --echo it answers every text message M with "echo:"+M.
Events go to stdout as {"event":...} lines like natter's: "connected" (with the DTLS version and
the selected pair's candidate types as aiortc saw them), "channel-open", and finally "result"
{"ok":k,"n":N,"setup_ms":...,"rate_bps":...}. Logs go to stderr. Exits 0 when all N echoed.
Benchmark (bench/webrtc): --mb MB sends MB megabytes of --size byte messages (default 60000:
aiortc's max-message-size is 65536 and the echo adds 5 bytes), --window outstanding; the result
adds setup_ms (start to channel open), first_ms (start to first echo), mb_per_s_each_way."""
import argparse
import asyncio
import json
import os
import sys
import time

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

ap = argparse.ArgumentParser()
ap.add_argument("--role", choices=["offer", "answer"], required=True)
ap.add_argument("--n", type=int, default=50)
ap.add_argument("--echo", action="store_true")
ap.add_argument("--label", default="chat")
ap.add_argument("--timeout", type=float, default=40)
ap.add_argument("--mb", type=float, help="benchmark: send MB megabytes of --size messages, --window outstanding")
ap.add_argument("--size", type=int, default=60000)
ap.add_argument("--window", type=int, default=8)
args = ap.parse_args()
if os.environ.get("AIORTC_DEBUG"):
    import logging
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)

t0 = time.monotonic()


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def log(s):
    print("aiortc_peer: %.3f %s" % (time.monotonic() - t0, s), file=sys.stderr, flush=True)


def messages(n):
    if args.mb:
        return ["x" * args.size] * max(1, int(args.mb * 1048576 / args.size))
    v = ["", "a", "ä", "\U0001F600 smile", "x" * 1200]
    i = len(v)
    while len(v) < n:
        v.append("m%d:" % i + "q" * (i * 7919 % 60000) + "ü")
        i += 1
    return v[:n]


def ice_transport(pc):
    """The one (bundled) ICE transport, for trickled candidates and end-of-candidates."""
    if pc.sctp is not None:
        return pc.sctp.transport.transport
    for t in pc.getTransceivers():
        return t.receiver.transport.transport
    return None


def dtls_version(pc):
    try:
        ssl = pc.sctp.transport.ssl
        return ssl.get_protocol_version_name().replace("DTLSv", "")
    except Exception:  # pylint: disable=broad-except
        return None


async def main():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    pc = RTCPeerConnection()
    finished = asyncio.Event()
    result = {"ok": 0, "n": 0 if args.echo else args.n, "wrong": []}
    channel_ready = asyncio.get_running_loop().create_future()

    def run_channel(ch):
        out({"event": "channel-open", "label": ch.label})
        if args.echo:
            @ch.on("message")
            def on_echo(m):
                if isinstance(m, str):
                    ch.send("echo:" + m)
            return
        msgs = messages(args.n)
        result["n"] = len(msgs)
        result["open_ms"] = round((time.monotonic() - t0) * 1000)
        window = args.window if args.mb else 4
        state = {"next": 0, "got": 0, "bytes": 0, "t": time.monotonic()}

        def pump():
            while state["next"] < len(msgs) and state["next"] - state["got"] < window:
                ch.send(msgs[state["next"]])
                state["bytes"] += len(msgs[state["next"]].encode())
                state["next"] += 1

        @ch.on("message")
        def on_message(m):
            i = state["got"]
            if i >= len(msgs):
                return
            if i == 0:
                result["first_ms"] = round((time.monotonic() - t0) * 1000)
            if m == "echo:" + msgs[i]:
                result["ok"] += 1
            elif len(result["wrong"]) < 3:
                result["wrong"].append({"i": i, "len": len(m)})
            state["got"] += 1
            if state["got"] == len(msgs):
                secs = max(time.monotonic() - state["t"], 1e-6)
                result["rate_bps"] = round(state["bytes"] * 8 / secs)
                result["mb_per_s_each_way"] = round(state["bytes"] / 1048576 / secs, 2)
                finished.set()
            else:
                pump()

        pump()

    @pc.on("connectionstatechange")
    async def on_state():
        log("connection " + pc.connectionState)
        if pc.connectionState == "connected":
            result["setup_ms"] = round((time.monotonic() - t0) * 1000)
            pair = None
            try:
                conn = ice_transport(pc)._connection
                p = conn._nominated.get(1)
                if p is not None:
                    pair = [p.local_candidate.type, p.remote_candidate.type]
            except Exception:  # pylint: disable=broad-except
                pass
            out({"event": "connected", "dtls": dtls_version(pc), "pair": pair})
        elif pc.connectionState == "failed":
            result["why"] = "connection failed"
            finished.set()

    if args.role == "offer":
        ch = pc.createDataChannel(args.label)
        ch.on("open", lambda: run_channel(ch))
        # aiortc gathers every candidate before setLocalDescription returns: no trickle out.
        await pc.setLocalDescription(await pc.createOffer())
        out({"type": "offer", "sdp": pc.localDescription.sdp})
    else:
        @pc.on("datachannel")
        def on_dc(ch):
            if not channel_ready.done():
                channel_ready.set_result(ch)
                run_channel(ch)

    async def signaling():
        while True:
            line = await reader.readline()
            if not line:
                return
            try:
                m = json.loads(line)
            except ValueError:
                log("non-JSON line ignored")
                continue
            if m.get("type") == "offer" and args.role == "answer":
                await pc.setRemoteDescription(RTCSessionDescription(m["sdp"], "offer"))
                await pc.setLocalDescription(await pc.createAnswer())
                out({"type": "answer", "sdp": pc.localDescription.sdp})
            elif m.get("type") == "answer" and args.role == "offer":
                await pc.setRemoteDescription(RTCSessionDescription(m["sdp"], "answer"))
            elif "candidate" in m and pc.remoteDescription is not None:
                t = ice_transport(pc)
                if t is None:
                    continue
                c = m["candidate"]
                if not c:
                    await t.addRemoteCandidate(None)
                    continue
                cand = candidate_from_sdp(c.split(":", 1)[1] if c.startswith("candidate:") else c)
                cand.sdpMid = m.get("sdpMid")
                cand.sdpMLineIndex = m.get("sdpMLineIndex")
                await t.addRemoteCandidate(cand)

    sig = asyncio.ensure_future(signaling())
    try:
        await asyncio.wait_for(finished.wait(), args.timeout)
    except asyncio.TimeoutError:
        result.setdefault("why", "timeout")
    sig.cancel()
    result["dtls"] = dtls_version(pc)
    out(dict(event="result", **result))
    await pc.close()
    return 0 if result["ok"] == result["n"] and not args.echo else (0 if args.echo else 1)


sys.exit(asyncio.run(main()))
