#!/usr/bin/env bash
# `natter xmpp` against an independent Jingle stack: the npm 'stanza' library (12.22.1) over
# RTCPeerConnection in Debian's headless Chromium, XMPP over WebSocket through Prosody, in a
# private network namespace. Both directions: natter calls the browser (full JID), and the
# browser calls `natter xmpp answer`. stanza.js trickles its candidates (transport-info,
# no candidate id/generation) and offers BUNDLE, rtcp-fb, header extensions and SSMA, so this
# exercises the lenient parts of the Jingle mapping. A call passes when both sides are
# connected (DTLS-SRTP) and each received RTP from the other; the audio is then checked both
# ways (interop/xmpp-web/audiocheck.py): natter plays a 440 Hz tone, which the page captures
# from its inbound track and measures (RMS, FFT peak) and hands over as a WAV; Chromium's
# fake microphone plays a 660 Hz tone file, which must be in natter's --record WAV. Each
# recording must be active audio whose dominant frequency is the other side's tone.
# npm packages (stanza, events, esbuild, playwright-core) are installed once into
# ~/.cache/natter-interop/xmpp-web before entering the namespace.
# Usage: interop/xmpp-web.sh [path/to/natter]   (default target/debug/natter)
set -uo pipefail
cd "$(dirname "$0")/.."
. interop/lib.sh
CACHE=${NATTER_WEB_CACHE:-$HOME/.cache/natter-interop/xmpp-web}
if [ -z "${NATTER_IN_NETNS:-}" ]; then
    for t in node npm prosody /usr/bin/chromium; do
        command -v "$t" >/dev/null || { echo "missing $t (apt-get install nodejs npm prosody chromium)"; exit 1; }
    done
    if [ ! -d "$CACHE/node_modules/stanza" ] || [ ! -d "$CACHE/node_modules/playwright-core" ]; then
        mkdir -p "$CACHE" && echo '{"name":"natter-xmpp-web","private":true}' >"$CACHE/package.json"
        (cd "$CACHE" && timeout 300 npm install --no-audit --no-fund stanza@12.22.1 events@3.3.0 esbuild \
            playwright-core >"$CACHE/npm.log" 2>&1) || { echo "npm install failed"; tail -5 "$CACHE/npm.log"; exit 1; }
    fi
fi
in_private_netns "$@"
rmdir "$TMP" && TMP=$(mktemp -d -t natter-xmpp-web.XXXXXX)
NATTER=${1:-${NATTER:-target/debug/natter}}
PY=/usr/bin/python3
AC="$PY interop/xmpp-web/audiocheck.py"
$PY -c 'import numpy' 2>/dev/null || { echo "missing numpy (apt-get install python3-numpy)"; exit 1; }
export NODE_PATH=$CACHE/node_modules
HERE=interop/xmpp-web

# Chromium gathers on non-loopback interfaces: a veth pair whose traffic stays in here.
ip link add w0 type veth peer name w1 && ip addr add 10.20.0.1/24 dev w0 && ip addr add 10.20.0.2/24 dev w1 \
    && ip link set w0 up && ip link set w1 up \
    && ip neigh add 10.20.0.254 lladdr 02:00:00:00:00:fe dev w0 nud permanent \
    && ip route add default via 10.20.0.254 dev w0 || { echo "cannot set up the veth pair"; exit 1; }

mkdir -p "$TMP/web"
NATTER_HZ=440 BROWSER_HZ=660
$AC gen "$TMP/mic.wav" --freq $BROWSER_HZ --seconds 10 || { echo "cannot make the microphone tone"; exit 1; }
cp "$HERE/jingle.html" "$TMP/web/"
node "$HERE/build.js" "$TMP/web/stanza.bundle.js" || { echo "cannot bundle stanza"; exit 1; }
python3 -m http.server 25281 --bind 127.0.0.1 --directory "$TMP/web" >"$TMP/http.log" 2>&1 &
PIDS+=($!)

PD=$TMP/prosody
mkdir -p "$PD/data"
cat >"$PD/prosody.cfg.lua" <<CFG
run_as_root = true
pidfile = "$PD/prosody.pid"
data_path = "$PD/data"
certificates = "$PD"
log = { { levels = { min = "info" }, to = "file", filename = "$PD/prosody.log" } }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { 25222 }
c2s_direct_tls_ports = { }
s2s_ports = { }
component_ports = { }
http_ports = { 25280 }
http_interfaces = { "127.0.0.1" }
https_ports = { }
modules_enabled = { "roster"; "saslauth"; "disco"; "ping"; "presence"; "websocket"; }
modules_disabled = { "s2s"; "dialback"; "offline"; "tls"; }
consider_websocket_secure = true
cross_domain_websocket = true
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
storage = "internal"
VirtualHost "localhost"
CFG
for u in alice bob; do
    prosodyctl --config "$PD/prosody.cfg.lua" register "$u" localhost "${u}pw" >/dev/null 2>&1 \
        || { echo "prosodyctl register $u failed"; exit 1; }
done
prosody -F --config "$PD/prosody.cfg.lua" >"$PD/stdout" 2>&1 &
PIDS+=($!)
timeout 10 bash -c "until (exec 3<>/dev/tcp/127.0.0.1/25280) 2>/dev/null; do sleep 0.05; done" \
    || { echo "prosody did not start"; tail -5 "$PD/prosody.log"; exit 1; }
timeout 10 bash -c "until (exec 3<>/dev/tcp/127.0.0.1/25281) 2>/dev/null; do sleep 0.05; done"

PAGE="http://127.0.0.1:25281/jingle.html?ws=ws://127.0.0.1:25280/xmpp-websocket"
S="--server 127.0.0.1:25222 --no-tls"
judge() { # NAME NATTER_RC NATTER_OUT BROWSER_RC BROWSER_LOG NATTER_ERR
    local est stats rx res
    est=$(grep -m1 '^established' "$3")
    stats=$(grep '^stats' "$3" | tail -1)
    rx=$(echo "$stats" | sed -n 's/.*rx_packets=\([0-9]*\).*/\1/p')
    res=$(grep -m1 '^RESULT' "$5")
    if [ "$2" = 0 ] && [ "$4" = 0 ] && [ -n "$est" ] && [ "${rx:-0}" -gt 0 ]; then
        ok "$1 ($est; $stats; browser $res)"
    else
        # Both sides' view: the page's log, then natter's stdout and log (what `bad` shows
        # is the end).
        { cat "$5"; sed 's/^/[natter] /' "$3" "$6"; } >"$5.why" 2>/dev/null
        bad "$1 (natter $2: ${est:-no established line}; $stats; browser $4: $res)" "$5.why"
    fi
}
audio() { # NAME NATTER_WAV BROWSER_WAV BROWSER_LOG
    local page got
    page=$(grep -m1 '^RESULT' "$4" | sed -n 's/.*"in_peak_hz":\([0-9]*\).*/\1/p')
    if got=$($AC check "$3" --freq $NATTER_HZ) && [ "${page:-0}" -ge $((NATTER_HZ - 15)) ] \
        && [ "${page:-0}" -le $((NATTER_HZ + 15)) ]; then
        ok "$1: natter's $NATTER_HZ Hz tone heard in the page (page peak ${page} Hz; $got)"
    else
        bad "$1: natter's $NATTER_HZ Hz tone heard in the page (page peak ${page:-none} Hz; $got)" "$4"
    fi
    if got=$($AC check "$2" --freq $BROWSER_HZ); then
        ok "$1: Chromium's $BROWSER_HZ Hz microphone in natter's recording ($got)"
    else
        bad "$1: Chromium's $BROWSER_HZ Hz microphone in natter's recording ($got)" "$4"
    fi
}

# 1. natter calls the browser's full JID.
node "$HERE/drive.js" "$PAGE&user=bob&resource=web&role=callee" 40 --mic "$TMP/mic.wav" --capture "$TMP/b1.wav" \
    >"$TMP/b1.log" 2>&1 &
BR=$!
PIDS+=($BR)
wait_for "$TMP/b1.log" "online as" 20 || bad "browser online" "$TMP/b1.log"
timeout 40 "$NATTER" xmpp call bob@localhost/web --jid alice@localhost --password alicepw $S --tone $NATTER_HZ \
    --record "$TMP/n1.wav" --duration 4 >"$TMP/n1.out" 2>"$TMP/n1.err"
nrc=$?
timeout 30 bash -c "while kill -0 $BR 2>/dev/null; do sleep 0.05; done"
wait $BR
judge "natter calls stanza.js in Chromium" $nrc "$TMP/n1.out" $? "$TMP/b1.log" "$TMP/n1.err"
audio "natter calls stanza.js" "$TMP/n1.wav" "$TMP/b1.wav" "$TMP/b1.log"

# 2. The browser calls natter.
timeout 40 "$NATTER" xmpp answer --jid bob@localhost/natter --password bobpw $S --tone $NATTER_HZ --once \
    --record "$TMP/n2.wav" \
    >"$TMP/n2.out" 2>"$TMP/n2.err" &
NA=$!
PIDS+=($NA)
wait_for "$TMP/n2.err" "online as" 15 || bad "natter online" "$TMP/n2.err"
node "$HERE/drive.js" "$PAGE&user=alice&role=caller&peer=bob@localhost/natter&hold_ms=4000" 40 \
    --mic "$TMP/mic.wav" --capture "$TMP/b2.wav" >"$TMP/b2.log" 2>&1
brc=$?
timeout 20 bash -c "while kill -0 $NA 2>/dev/null; do sleep 0.05; done"
wait $NA
nrc=$?
judge "stanza.js in Chromium calls natter" $nrc "$TMP/n2.out" $brc "$TMP/b2.log" "$TMP/n2.err"
audio "stanza.js calls natter" "$TMP/n2.wav" "$TMP/b2.wav" "$TMP/b2.log"
grep -q "^ended reason=remote-hangup" "$TMP/n2.out" && ok "browser's session-terminate ends natter's call" \
    || bad "browser's session-terminate ends natter's call" "$TMP/n2.out"
summary
