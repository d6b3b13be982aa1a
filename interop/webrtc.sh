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
#   6. Chromium with default privacy settings (data only, no media permission) offers mDNS .local
#      host candidates only: natter resolves them on the link (RFC 6762 one-shot query), and with
#      --no-mdns connects through the peer-reflexive candidate its checks reveal.
#   7. Chromium offers data, then renegotiates: adds an audio track (second offer, natter answers,
#      audio echoes), opens channel "late", then restartIce() (third offer: new ufrag/pwd, same DTLS
#      and SCTP). natter's stats event ({"cmd":"stats"}) is checked in case 1.
#   8./9. aiortc (python3-aiortc: a second, independent stack whose DTLS is 1.2 only) offers to
#      natter and answers natter's offer (interop/webrtc/aiortc_peer.py, lines piped by link.py);
#      natter (default engine dimpl) must report DTLS 1.2 in its `connected` event.
#  10. VP8 both ways, Chromium offering: Chromium sends its fake camera, natter sends its test pattern
#      (--video --test-pattern, libvpx) and decodes Chromium's video into a y4m file
#      (--record-video); Chromium must decode >= 30 frames of natter's track, natter must decode
#      >= 30 of Chromium's, and the y4m file must hold >= 30 frames of the reported size.
#  11. as 10 with natter offering (audio-less offer: video + data) and Chromium answering.
#      In 10 and 11 RTX (RFC 4588) is negotiated both ways and natter leaves out every 30th video
#      packet it sends and every 30th it receives, first time only (NATTER_VIDEO_TEST_LOSS=30,30):
#      Chromium NACKs and natter answers with RTX on its RTX SSRC (Chromium must count retransmitted
#      packets received), natter NACKs and Chromium answers with RTX (natter's `video` event:
#      rtx_sent > 0, rtx_received > 0).
#  12./13. as 10/11 with H.264 (natter --video-codec h264: OpenH264, packetization-mode 1,
#      Constrained Baseline; Chromium must report video/H264 for natter's track), RTX and test loss
#      as in 10/11.
# Each Chromium case passes when every message (0 B .. 200 KB, some UTF-8) comes back as "echo:"+M
# in order, Chromium reports DTLS connected, natter's stdout is JSON only, and in case 1 Chromium
# received audio bytes and the unordered channel echoed.
# Usage: interop/webrtc.sh [path/to/natter]   (default target/debug/natter)
#        CASES=REGEX interop/webrtc.sh ...   runs only the cases whose name matches.
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
    # mDNS (case 6): multicast to 224.0.0.251 goes out w0 and loops back to local listeners.
    ip link set lo multicast on && ip route add 224.0.0.0/4 dev w0 || { echo "multicast route failed"; exit 1; }
fi

# want NAME: whether the case is selected (CASES, a bash regex; all by default).
want() { [ -z "${CASES:-}" ] || [[ $1 =~ $CASES ]]; }

# chromium_case NAME PAGE_ROLE AUDIO NATTER_ARGS [ICE_SERVERS_JSON POLICY VIDEO MINFRAMES Y4M]
# MINFRAMES > 0: natter sends video of its own: Chromium must decode that many frames of it, natter
# that many of Chromium's (its "video" event), and Y4M (natter's --record-video) must hold them.
chromium_case() {
    want "$1" || return 0
    local name=$1 log="$TMP/$1.log"
    # DRIVE_EXTRA: more drive.js arguments; CHECK: extra verdict (stats, mdns, prflx, reneg).
    # shellcheck disable=SC2086
    NATTER_VIDEO_TEST_LOSS=${TEST_LOSS:-} timeout 120 node interop/webrtc/drive.js --as "$2" --audio "$3" --n 60 --log "$TMP/$1" \
        --ice "${5:-[]}" --policy "${6:-all}" --video "${7:-0}" --minframes "${8:-1}" ${DRIVE_EXTRA:-} \
        --natter "$NATTER webrtc $4" >"$log" 2>&1
    local rep verdict
    rep=$(grep '^REPORT ' "$log" | tail -1 | cut -c8-)
    verdict=$(python3 - "$rep" "$3" "$2" "${6:-all}" "${7:-0}" "${CHECK:-}" "${8:-0}" "${9:-}" <<'PY'
import json, os, sys
try:
    r = json.loads(sys.argv[1])
except ValueError:
    print("FAIL no report"); sys.exit()
audio, page_offers, relay = sys.argv[2] == "1", sys.argv[3] == "offer", sys.argv[4] == "relay"
video = sys.argv[5] == "1"
check = sys.argv[6]
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
extra = ""
if check == "stats":
    st = next((e for e in r.get("events", []) if e.get("event") == "stats"), None)
    if not st: p.append("no stats event")
    else:
        t, dc, ice = st.get("transport", {}), st.get("data_channels", {}), st.get("ice", {})
        if not (t.get("bytes_sent", 0) > 100000 and t.get("bytes_received", 0) > 100000): p.append(f"stats bytes {t}")
        if dc.get("opened", 0) < 2 or dc.get("messages_received", 0) < 60: p.append(f"stats channels {dc}")
        if st.get("dtls", {}).get("version") not in ("1.2", "1.3"): p.append(f"stats dtls {st.get('dtls')}")
        if not (ice.get("selected") and ice.get("rtt_ms") is not None): p.append(f"stats ice {ice}")
        if (st.get("rtp") or {}).get("packets_received", 0) <= 0: p.append(f"stats rtp {st.get('rtp')}")
        extra = f", stats: {t.get('bytes_sent')} B sent / {t.get('bytes_received')} B received, rtt {ice.get('rtt_ms')} ms, pair {ice.get('selected', {}).get('local')}/{ice.get('selected', {}).get('remote')}, dtls {st.get('dtls')}, channels {dc.get('opened')}, sctp rto {st.get('sctp', {}).get('rto_ms')} ms"
if check in ("mdns", "prflx"):
    cands = r.get("offer_candidates") or []
    if not cands or not all(c.endswith(".local") for c in cands): p.append(f"Chromium candidates not mDNS-only: {cands[:4]}")
    con = ev[0] if ev else {}
    st = next((e for e in r.get("events", []) if e.get("event") == "stats"), {})
    names = sorted(set(c for c in cands if c.endswith(".local")))
    resolved = [m.split("=")[0] for m in st.get("mdns", [])]
    if check == "mdns" and not (names and all(n in resolved for n in names)): p.append(f"natter resolved {st.get('mdns')} of {names}")
    if check == "prflx" and con.get("remote") != "prflx": p.append(f"remote candidate not prflx: {con}")
    extra = f", Chromium candidates {names}, natter resolved {st.get('mdns')}, remote {con.get('remote')}"
if check == "reneg":
    g = r.get("reneg") or {}
    if g.get("late") != "echo:late" or g.get("afterRestart") != "echo:r" or not g.get("ufragChanged") or g.get("mlines") != ["application", "audio"] or g.get("signaling") != "stable" or not g.get("sameSctp"):
        p.append(f"renegotiation {g}")
    if not (s.get("audioIn") or 0) > 0: p.append("no audio after renegotiation")
    extra = f", renegotiation {g}"
if "rtx" in check:
    vids = [e for e in r.get("events", []) if e.get("event") == "video"]
    v = vids[-1] if vids else {}
    if not (v.get("test_dropped") or 0) > 0: p.append(f"no test loss applied: {v.get('test_dropped')}")
    if not (v.get("rtx_sent") or 0) > 0: p.append(f"natter sent no RTX (NACKs received {v.get('nacks_received')})")
    if not (v.get("rtx_received") or 0) > 0: p.append(f"natter received no RTX (NACKs sent {v.get('nacks_sent')}, padding probes {v.get('rtx_padding_received')})")
    if not (s.get("rtxIn") or 0) > 0: p.append(f"Chromium counted no retransmissions received ({s.get('rtxIn')})")
    extra = (f", RTX: natter left out {v.get('test_dropped')} packets (both ways), sent {v.get('rtx_sent')} RTX for {v.get('nacks_received')} NACKed"
             f" (Chromium: {s.get('rtxIn')} retransmissions received), received {v.get('rtx_received')} RTX + {v.get('rtx_padding_received')} padding probes"
             f" for {v.get('nacks_sent')} NACKed (Chromium: {s.get('rtxOut')} retransmissions sent, {s.get('nackCount')} NACKs sent)")
if "h264" in check and s.get("videoCodec") != "video/H264": p.append(f"Chromium received {s.get('videoCodec')}, not H.264")
info = f"60/60 echoes, tls {s.get('tls')}, audio in {s.get('audioIn', '-')} B, video frames {s.get('framesDecoded', '-')}, natter {ev[0] if ev else 'not connected'}{extra}"
minframes, y4m = int(sys.argv[7]), sys.argv[8]
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

CHECK=stats DRIVE_EXTRA="--stats 1" chromium_case chromium-offers-natter-answers offer 1 "--role answer --echo --data --audio"
CHECK=mdns DRIVE_EXTRA="--mdns 1 --stats 1" chromium_case chromium-mdns-candidates-natter-resolves offer 0 "--role answer --echo --data"
CHECK=prflx DRIVE_EXTRA="--mdns 1" chromium_case chromium-mdns-candidates-natter-prflx offer 0 "--role answer --echo --data --no-mdns"
CHECK=reneg DRIVE_EXTRA="--reneg 1" chromium_case chromium-renegotiates-and-restarts-ice offer 0 "--role answer --echo --data --audio"
chromium_case natter-offers-chromium-answers answer 0 "--role offer --data --echo"
chromium_case chromium-offers-video-natter-echoes offer 1 "--role answer --echo --data --audio --video" '[]' all 1
CHECK=rtx TEST_LOSS=30,30 chromium_case chromium-offers-vp8-both-ways offer 0 \
    "--role answer --echo --data --video --test-pattern --record-video $TMP/from-chromium-1.y4m" '[]' all 1 30 "$TMP/from-chromium-1.y4m"
CHECK=rtx TEST_LOSS=30,30 chromium_case natter-offers-vp8-both-ways answer 0 \
    "--role offer --echo --data --video --test-pattern --record-video $TMP/from-chromium-2.y4m" '[]' all 1 30 "$TMP/from-chromium-2.y4m"
CHECK="rtx h264" TEST_LOSS=30,30 chromium_case chromium-offers-h264-both-ways offer 0 \
    "--role answer --echo --data --video --video-codec h264 --test-pattern --record-video $TMP/from-chromium-3.y4m" '[]' all 1 30 "$TMP/from-chromium-3.y4m"
CHECK="rtx h264" TEST_LOSS=30,30 chromium_case natter-offers-h264-both-ways answer 0 \
    "--role offer --echo --data --video --video-codec h264 --test-pattern --record-video $TMP/from-chromium-4.y4m" '[]' all 1 30 "$TMP/from-chromium-4.y4m"
chromium_case chromium-offers-natter-openssl-dtls12 offer 1 "--role answer --echo --data --audio --dtls openssl"
# Through a TURN server (natter serve): Chromium relay-only, natter with --turn.
if want chromium-relay-only-via-natter-serve; then
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
fi
# aiortc_case NAME AIORTC_ROLE NATTER_ARGS: aiortc sends 40 messages, natter echoes; DTLS 1.2.
aiortc_case() {
    want "$1" || return 0
    local name=$1 log="$TMP/$1.log"
    # Debian's python3-aiortc lives in the system Python (python3 on PATH may be another one).
    local py
    for py in python3 /usr/bin/python3 ''; do [ -n "$py" ] && "$py" -c 'import aiortc' 2>/dev/null && break; done
    if [ -z "$py" ]; then
        bad "$name: python3-aiortc not installed"
        return
    fi
    mkdir -p "$TMP/$name"
    timeout 90 python3 interop/webrtc/link.py --timeout 60 --stderr "$TMP/$name" -- \
        "$py interop/webrtc/aiortc_peer.py --role $2 --n 40" "$NATTER webrtc $3" >"$log" 2>&1
    local verdict
    verdict=$(python3 - "$(grep '^REPORT ' "$log" | tail -1 | cut -c8-)" <<'PY'
import json, sys
try:
    r = json.loads(sys.argv[1])
except ValueError:
    print("FAIL no report"); sys.exit()
a, n = r["a"], r["b"]
res = next((e for e in a["events"] if e["event"] == "result"), {})
con = next((e for e in n["events"] if e["event"] == "connected"), None)
p = []
if res.get("ok") != 40: p.append(f"aiortc echoes {res.get('ok')}/40 wrong {res.get('wrong')} ({res.get('why', r['why'])})")
if not con or con.get("dtls") != "1.2": p.append(f"natter connected {con}")
if n["junk"]: p.append(f"non-JSON natter stdout {n['junk'][:1]}")
info = f"40/40 echoes, natter {con}, aiortc DTLS {res.get('dtls')}, setup {res.get('setup_ms')} ms"
print(("FAIL " + "; ".join(p) + " | " if p else "ok ") + info)
PY
)
    case $verdict in
    ok*) ok "$name: ${verdict#ok }" ;;
    *) cat "$TMP/$name"/*.stderr >>"$log" 2>/dev/null; bad "$name: ${verdict#FAIL }" "$log" ;;
    esac
}
aiortc_case aiortc-offers-natter-answers-dtls12 offer "--role answer --echo --data"
aiortc_case natter-offers-aiortc-answers-dtls12 answer "--role offer --data --echo"

if want natter-pair; then
    check "natter <-> natter, 50 messages echoed in order" "$TMP/pair.log" \
        python3 interop/webrtc/pair.py "$NATTER" 50
    grep -h '^result' "$TMP/pair.log" | sed 's/^/     /'
    mkdir -p "$TMP/rec"
    check "natter <-> natter with audio: 440 Hz tone sent, echoed and recorded both ends" "$TMP/pair-audio.log" \
        python3 interop/webrtc/pair.py "$NATTER" 20 "$TMP/rec"
    grep -h '^result' "$TMP/pair-audio.log" | sed 's/^/     /'
fi
summary
