#!/usr/bin/env bash
# WebRTC across real Linux NATs: headless Chromium behind a symmetric NAT reaches `natter webrtc`
# behind another symmetric NAT through `natter serve`'s TURN server (the namespace lab of
# interop/netns-ice.sh, interop/ice/lab.sh):
#
#   lanA 10.10.1.2 (Chromium) -- rtrA symmetric NAT --+
#                                                      br0 in pub: 203.0.113.1 (natter serve: TURN)
#   lanB 10.10.2.2 (natter)   -- rtrB symmetric NAT --+
#
# Symmetric x symmetric has no direct path (a new public port per destination, unsolicited
# inbound dropped), so the case passes only when the data channel runs over a relayed pair:
# natter's `connected` event says pair "relay", every message (0 B .. 200 KB) echoes in order,
# Chromium reports DTLS connected. A second case checks the direct control: the same NATs without
# TURN must fail to connect (natter reports "closed" with ICE failed or its connect timeout).
# Skipped with a message where namespaces cannot be created.
# Usage: interop/netns-webrtc.sh [path/to/natter]   (default target/debug/natter)
set -uo pipefail
cd "$(dirname "$0")/.."
. interop/lib.sh
rmdir "$TMP" && TMP=$(mktemp -d -t natter-netns-webrtc.XXXXXX)
NATTER=$(realpath "${1:-${NATTER:-target/debug/natter}}")
CACHE=${NATTER_CACHE:-$HOME/.cache/natter-interop}/node
P=nwrtc$$
. interop/ice/lab.sh

trap teardown EXIT

if ! command -v chromium >/dev/null || ! command -v node >/dev/null; then
    echo "skipped: chromium / node missing"
    summary
    exit 0
fi
if [ ! -d "$CACHE/node_modules/playwright-core" ]; then
    mkdir -p "$CACHE" && echo '{"name":"natter-interop","private":true}' >"$CACHE/package.json"
    (cd "$CACHE" && timeout 300 npm install --no-audit --no-fund playwright-core@1.65.1 >/dev/null 2>&1) ||
        { echo "npm install playwright-core failed"; exit 1; }
fi
export NODE_PATH=$CACHE/node_modules
if ! ip netns add "$P-probe" 2>/dev/null; then
    echo "skipped: cannot create network namespaces here (needs root and iproute2)"
    summary
    exit 0
fi
ip netns del "$P-probe"
if ! command -v iptables >/dev/null; then
    echo "skipped: iptables is missing"
    summary
    exit 0
fi
if ! lab_up >"$TMP/lab.log" 2>&1; then
    echo "skipped: could not build the namespace lab:"
    sed 's/^/     | /' "$TMP/lab.log" | tail -5
    summary
    exit 0
fi
set_nat A symmetric
set_nat B symmetric

ip netns exec "$P-pub" "$NATTER" serve --no-sip --no-tls --turn-listen 203.0.113.1:3478 --user u:p \
    --allow-peer 203.0.113.0/24 --data-dir "$TMP/data" --metrics-listen 203.0.113.1:9641 \
    --threads 1 >"$TMP/serve.out" 2>"$TMP/serve.err" &
PIDS+=($!)
if ! wait_for "$TMP/serve.out" "natter: metrics"; then
    bad "natter serve did not start in the public namespace" "$TMP/serve.err"
    summary
    exit 1
fi

# web_case NAME ICE_SERVERS_JSON NATTER_ARGS EXPECT(relay|fail)
web_case() {
    local name=$1 log="$TMP/$1.log"
    mkdir -p "$TMP/$name"
    timeout 120 ip netns exec "$P-lanA" node interop/webrtc/drive.js --as offer --audio 0 --n 40 \
        --log "$TMP/$name" --ice "$2" --policy all \
        --natter "ip netns exec $P-lanB $NATTER webrtc --connect-timeout 20 $3" >"$log" 2>&1
    local verdict
    verdict=$(python3 - "$(grep '^REPORT ' "$log" | tail -1 | cut -c8-)" "$4" <<'PY'
import json, sys
try:
    r = json.loads(sys.argv[1])
except ValueError:
    print("FAIL no report"); sys.exit()
want = sys.argv[2]
ev = [e for e in r.get("events", []) if e.get("event") == "connected"]
s = r.get("stats") or {}
if want == "fail":
    ok = not ev and r.get("ok", 0) == 0
    closed = [e.get("reason") for e in r.get("events", []) if e.get("event") == "closed"]
    print(("ok " if ok else "FAIL ") + f"no connection without TURN (natter: {closed or 'no event'}, page: {r.get('why')})")
    sys.exit()
p = []
if r.get("ok") != 40 or r.get("wrong"): p.append(f"echo {r.get('ok')}/40 ({r.get('why')})")
if s.get("dtls") != "connected": p.append(f"dtls {s.get('dtls')}")
if not ev or ev[0].get("pair") != "relay": p.append(f"natter pair {ev[0] if ev else None}")
if r.get("junk"): p.append(f"non-JSON stdout {r['junk'][:1]}")
info = f"40/40 echoes over TURN, Chromium local {s.get('local')}, natter {ev[0] if ev else None}"
print(("FAIL " + "; ".join(p) + " | " if p else "ok ") + info)
PY
)
    case $verdict in
    ok*) ok "$name: ${verdict#ok }" ;;
    *) cat "$TMP/$name"/natter.stderr >>"$log" 2>/dev/null; bad "$name: ${verdict#FAIL }" "$log" ;;
    esac
}

web_case chromium-symmetric-nat-to-natter-symmetric-nat-via-turn \
    '[{"urls":"turn:203.0.113.1:3478","username":"u","credential":"p"}]' \
    "--role answer --echo --data --turn turn:203.0.113.1:3478 --turn-user u:p" relay
set_nat A symmetric
set_nat B symmetric
web_case chromium-symmetric-nat-to-natter-symmetric-nat-without-turn-fails '[]' \
    "--role answer --echo --data" fail
summary
