#!/usr/bin/env bash
# WebRTC interop: `natter webrtc` against headless Chromium (Debian's chromium driven by npm
# playwright-core: its own ICE, DTLS, SCTP and SRTP), both directions, in a private network
# namespace with a veth pair (raw host addresses, nothing leaves the namespace); and natter <->
# natter with the signaling lines piped into each other (data, then data + audio: the offerer sends
# a tone and records, the answerer echoes and records).
#   1. Chromium offers audio + data channels "chat" (reliable) and "lossy" (unordered,
#      maxRetransmits 0); natter answers with --echo --audio --data.
#   2. natter offers data; Chromium answers and trickles its candidates.
#   3. as 1, with natter's OpenSSL DTLS engine (--dtls openssl: DTLS 1.2) instead of dimpl (1.3).
#   4. Chromium offers audio + VP8 video (fake camera); natter --video --echo returns both, forwarding
#      Chromium's PLI/NACK about the echo to Chromium's sender; Chromium must decode video frames.
#   5. Chromium relay-only through `natter serve` as TURN server; natter answers with --turn.
#   6. VP8 both ways, Chromium offering: Chromium sends its fake camera, natter sends its test pattern
#      (--video --test-pattern, libvpx) and decodes Chromium's video into a y4m file
#      (--record-video); Chromium must decode >= 30 frames of natter's track, natter must decode
#      >= 30 of Chromium's, and the y4m file must hold >= 30 frames of the reported size.
#   7. as 6 with natter offering (audio-less offer: video + data) and Chromium answering.
# Each Chromium case passes when every message (0 B .. 200 KB, some UTF-8) comes back as "echo:"+M
# in order, Chromium reports DTLS connected, natter's stdout is JSON only, and in case 1 Chromium
# received audio bytes and the unordered channel echoed.
# Usage: interop/webrtc.sh [path/to/natter]   (default target/debug/natter)
set -uo pipefail
cd "$(dirname "$0")/.."
. interop/lib.sh
NATTER=${1:-${NATTER:-target/debug/natter}}
case $NATTER in /*) ;; *) NATTER=$(pwd)/$NATTER ;; esac
CACHE=${NATTER_CACHE:-$HOME/.cache/natter-interop}/node

# playwright-core from npm into a cache dir, outside the namespace (the registry is needed once).
if [ -z "${NATTER_IN_NETNS:-}" ]; then
    if ! command -v chromium >/dev/null || ! command -v npm >/dev/null; then
        echo "missing chromium / npm (apt-get install chromium nodejs npm)"
        exit 1
    fi
    if [ ! -d "$CACHE/node_modules/playwright-core" ]; then
        mkdir -p "$CACHE" && echo '{"name":"natter-interop","private":true}' >"$CACHE/package.json"
        (cd "$CACHE" && timeout 300 npm install --no-audit --no-fund playwright-core@1.65.1 >/dev/null 2>&1) ||
            { echo "npm install playwright-core failed"; exit 1; }
    fi
fi
in_private_netns "$@"
rmdir "$TMP" && TMP=$(mktemp -d -t natter-webrtc.XXXXXX)
export NODE_PATH=$CACHE/node_modules
if [ "${NATTER_IN_NETNS:-0}" = 1 ]; then
    # Chromium gathers on non-loopback interfaces only: give it two, and a sink default route.
    ip link add w0 type veth peer name w1 && ip addr add 10.20.0.1/24 dev w0 &&
        ip addr add 10.20.0.2/24 dev w1 && ip link set w0 up && ip link set w1 up &&
        ip neigh add 10.20.0.254 lladdr 02:00:00:00:00:fe dev w0 nud permanent &&
        ip route add default via 10.20.0.254 dev w0 || { echo "veth setup failed"; exit 1; }
fi

# chromium_case NAME PAGE_ROLE AUDIO NATTER_ARGS [ICE_SERVERS_JSON POLICY VIDEO MINFRAMES Y4M]
# MINFRAMES > 0: natter sends video of its own: Chromium must decode that many frames of it, natter
# that many of Chromium's (its "video" event), and Y4M (natter's --record-video) must hold them.
chromium_case() {
    local name=$1 log="$TMP/$1.log"
    timeout 120 node interop/webrtc/drive.js --as "$2" --audio "$3" --n 60 --log "$TMP/$1" \
        --ice "${5:-[]}" --policy "${6:-all}" --video "${7:-0}" --minframes "${8:-1}" \
        --natter "$NATTER webrtc $4" >"$log" 2>&1
    local rep verdict
    rep=$(grep '^REPORT ' "$log" | tail -1 | cut -c8-)
    verdict=$(python3 - "$rep" "$3" "$2" "${6:-all}" "${7:-0}" "${8:-0}" "${9:-}" <<'PY'
import json, os, sys
try:
    r = json.loads(sys.argv[1])
except ValueError:
    print("FAIL no report"); sys.exit()
audio, page_offers, relay = sys.argv[2] == "1", sys.argv[3] == "offer", sys.argv[4] == "relay"
video = sys.argv[5] == "1"
s = r.get("stats") or {}
p = []
if r.get("ok") != 60 or r.get("wrong"): p.append(f"echo {r.get('ok')}/60 wrong {r.get('wrong', [])[:2]}")
if s.get("dtls") != "connected": p.append(f"dtls {s.get('dtls')}")
if r.get("junk"): p.append(f"non-JSON stdout {r['junk'][:1]}")
if audio and not (s.get("audioIn") or 0) > 0: p.append("no audio at Chromium")
if video and not (s.get("framesDecoded") or 0) > 0: p.append(f"no video frames decoded ({s.get('framesDecoded')})")
if page_offers and r.get("unordered") != "echo:u": p.append(f"unordered channel {r.get('unordered')!r}")
ev = [e for e in r.get("events", []) if e.get("event") == "connected"]
if relay and (s.get("local") != "relay" or not ev or ev[0].get("pair") != "relay"):
    p.append(f"not relayed: page {s.get('local')}, natter {ev[0].get('pair') if ev else None}")
info = f"60/60 echoes, tls {s.get('tls')}, audio in {s.get('audioIn', '-')} B, video frames {s.get('framesDecoded', '-')}, natter {ev[0] if ev else 'not connected'}"
minframes, y4m = int(sys.argv[6]), sys.argv[7]
if minframes > 0:
    if (s.get("framesDecoded") or 0) < minframes: p.append(f"Chromium decoded {s.get('framesDecoded')} < {minframes} frames of natter's video")
    vids = [e for e in r.get("events", []) if e.get("event") == "video"]
    v = vids[-1] if vids else {}
    if (v.get("frames_decoded") or 0) < minframes: p.append(f"natter decoded {v.get('frames_decoded')} < {minframes} frames of Chromium's video")
    try:
        with open(y4m, "rb") as f:
            head = f.readline().decode()
            tags = dict((t[0], t[1:]) for t in head.split()[1:])
            w, h = int(tags["W"]), int(tags["H"])
            size = w * h + 2 * ((w + 1) // 2) * ((h + 1) // 2)
            body = f.read()
        frames = len(body) // (6 + size)
        planes = [body[k * (6 + size) + 6:k * (6 + size) + 6 + w * h] for k in range(frames)]
        moving = sum(1 for a, b in zip(planes, planes[1:]) if a != b)
        if frames < minframes or w < 64 or h < 48 or moving < frames // 2:
            p.append(f"y4m {w}x{h} with {frames} frames ({moving} changed)")
        info_v = f"; natter decoded {v.get('frames_decoded')} frames {v.get('width')}x{v.get('height')}, sent {v.get('frames_sent')} (NACKed {v.get('nacks_received')}, PLI/FIR {v.get('keyframe_requests_received')}), y4m {w}x{h} {frames} frames"
    except (OSError, KeyError, ValueError, IndexError) as e:
        p.append(f"y4m {y4m}: {e}")
        info_v = ""
    info += f", Chromium decoded {s.get('framesDecoded')} frames of natter's {s.get('frameWidth')}x{s.get('frameHeight')} {s.get('videoCodec')}" + info_v
print(("FAIL " + "; ".join(p) + " | " if p else "ok ") + info)
PY
)
    case $verdict in
    ok*) ok "$name: ${verdict#ok }" ;;
    *) cat "$TMP/$1"/natter.stderr >>"$log" 2>/dev/null; bad "$name: ${verdict#FAIL }" "$log" ;;
    esac
}

chromium_case chromium-offers-natter-answers offer 1 "--role answer --echo --data --audio"
chromium_case natter-offers-chromium-answers answer 0 "--role offer --data --echo"
chromium_case chromium-offers-video-natter-echoes offer 1 "--role answer --echo --data --audio --video" '[]' all 1
chromium_case chromium-offers-vp8-both-ways offer 0 \
    "--role answer --echo --data --video --test-pattern --record-video $TMP/from-chromium-1.y4m" '[]' all 1 30 "$TMP/from-chromium-1.y4m"
chromium_case natter-offers-vp8-both-ways answer 0 \
    "--role offer --echo --data --video --test-pattern --record-video $TMP/from-chromium-2.y4m" '[]' all 1 30 "$TMP/from-chromium-2.y4m"
chromium_case chromium-offers-natter-openssl-dtls12 offer 1 "--role answer --echo --data --audio --dtls openssl"
# Through a TURN server (natter serve): Chromium relay-only, natter with --turn.
"$NATTER" serve --no-sip --no-tls --turn-listen 10.20.0.1:3478 --user u:p --allow-private-peers \
    --data-dir "$TMP/data" --metrics-listen 127.0.0.1:9641 >"$TMP/serve.out" 2>"$TMP/serve.err" &
PIDS+=($!)
if wait_for "$TMP/serve.out" "natter: metrics" && wait_udp 3478; then
    chromium_case chromium-relay-only-via-natter-serve offer 0 \
        "--role answer --echo --data --turn turn:10.20.0.1:3478 --turn-user u:p" \
        '[{"urls":"turn:10.20.0.1:3478","username":"u","credential":"p"}]' relay
else
    bad "natter serve (TURN) did not start" "$TMP/serve.err"
fi
check "natter <-> natter, 50 messages echoed in order" "$TMP/pair.log" \
    python3 interop/webrtc/pair.py "$NATTER" 50
grep -h '^result' "$TMP/pair.log" | sed 's/^/     /'
mkdir -p "$TMP/rec"
check "natter <-> natter with audio: 440 Hz tone sent, echoed and recorded both ends" "$TMP/pair-audio.log" \
    python3 interop/webrtc/pair.py "$NATTER" 20 "$TMP/rec"
grep -h '^result' "$TMP/pair-audio.log" | sed 's/^/     /'
summary
