#!/usr/bin/env bash
# `natter xmpp` through Prosody (an independent XMPP server), in a private network namespace:
# Prosody 0.12 with STARTTLS offered (self-signed certificate) and XEP-0215 TURN credentials
# (mod_turn_external) for `natter serve --auth-secret`; users made with prosodyctl. Checks:
#   - a chat message (natter xmpp send) reaches a natter xmpp answer, over STARTTLS and over
#     direct TLS (XEP-0368);
#   - a Jingle call to a bare JID (XEP-0353 propose/ringing/proceed/finish) over STARTTLS, the
#     caller forced onto the TURN relay from XEP-0215, DTLS-SRTP, audio checked both ways;
#   - a call straight to a full JID without TLS (SCRAM), PCMU only, audio checked;
#   - a wrong password is refused with a reason; a call nobody takes ends with no-answer;
#   - XEP-0198: the caller's TCP connection is reset mid-call (interop/xmpp/tcpcut.py); it
#     reconnects, resumes the stream, and the call goes on and ends cleanly.
# Audio: each side plays its own tone pattern; the other side's recording must carry it
# (interop/phone/tones.py).
# Usage: interop/xmpp.sh [path/to/natter]   (default target/debug/natter)
set -uo pipefail
cd "$(dirname "$0")/.."
. interop/lib.sh
in_private_netns "$@"
rmdir "$TMP" && TMP=$(mktemp -d -t natter-xmpp.XXXXXX)
NATTER=${1:-${NATTER:-target/debug/natter}}
PY=/usr/bin/python3
TONES="$PY interop/phone/tones.py"
for t in prosody prosodyctl openssl; do
    command -v "$t" >/dev/null || { echo "missing $t (apt-get install prosody openssl)"; exit 1; }
done
$PY -c 'import numpy' 2>/dev/null || { echo "missing numpy (apt-get install python3-numpy)"; exit 1; }

PORT=25222
SECRET=xmpp-interop-$$
PD=$TMP/prosody
mkdir -p "$PD/data"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -keyout "$PD/localhost.key" \
    -out "$PD/localhost.crt" >/dev/null 2>&1 || { echo "openssl could not make a certificate"; exit 1; }
cat >"$PD/prosody.cfg.lua" <<CFG
run_as_root = true
pidfile = "$PD/prosody.pid"
data_path = "$PD/data"
certificates = "$PD"
log = { { levels = { min = "info" }, to = "file", filename = "$PD/prosody.log" } }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { $PORT }
c2s_direct_tls_ports = { 25224 }
c2s_direct_tls_ssl = { certificate = "$PD/localhost.crt"; key = "$PD/localhost.key"; }
s2s_ports = { }
component_ports = { }
http_ports = { }
https_ports = { }
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "presence"; "smacks"; "turn_external"; }
modules_disabled = { "s2s"; "dialback"; "offline"; }
c2s_require_encryption = false
allow_unencrypted_plain_auth = false
authentication = "internal_hashed"
storage = "internal"
turn_external_host = "127.0.0.1"
turn_external_port = 3478
turn_external_secret = "$SECRET"
VirtualHost "localhost"
    ssl = { certificate = "$PD/localhost.crt"; key = "$PD/localhost.key"; }
CFG
for u in alice bob carol; do
    prosodyctl --config "$PD/prosody.cfg.lua" register "$u" localhost "${u}pw" >"$TMP/reg-$u.log" 2>&1 \
        || { echo "prosodyctl register $u failed"; cat "$TMP/reg-$u.log"; exit 1; }
done
prosody -F --config "$PD/prosody.cfg.lua" >"$PD/stdout" 2>&1 &
PIDS+=($!)
timeout 10 bash -c "until (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; do sleep 0.05; done" \
    || { echo "prosody did not start"; tail -5 "$PD/prosody.log" "$PD/stdout"; exit 1; }

"$NATTER" serve --data-dir "$TMP/data" --auth-secret "$SECRET" --realm natter.test \
    --turn-listen 127.0.0.1:3478 --relay-ip 127.0.0.1 --allow-loopback-peers --no-sip --no-tls \
    >"$TMP/serve.log" 2>&1 &
PIDS+=($!)
wait_udp 3478 10 || { echo "natter serve did not start"; cat "$TMP/serve.log"; exit 1; }

$TONES gen "$TMP/a.wav" --seconds 20 --freqs 440,1000,700,1300 >/dev/null
$TONES gen "$TMP/b.wav" --seconds 20 --freqs 550,850,1150,400 >/dev/null
S="--server 127.0.0.1:$PORT"
TLS="--require-tls --tls-insecure"

# answer NAME ARGS...: a natter xmpp answer in the background; waits until it is online.
ANS=
answer() {
    local n=$1
    shift
    timeout 60 "$NATTER" xmpp answer $S "$@" >"$TMP/$n.out" 2>"$TMP/$n.err" &
    ANS=$!
    PIDS+=($ANS)
    wait_for "$TMP/$n.err" "online as" 15
}
finish() { # wait for the answerer (bounded), return its exit status
    timeout 20 bash -c "while kill -0 $ANS 2>/dev/null; do sleep 0.05; done"
    wait "$ANS"
}
audio() { # NAME REF GOT
    local r
    if [ -s "$3" ] && r=$($TONES check "$2" "$3"); then ok "$1 ($r)"; else bad "$1 (${r:-no recording $3})"; fi
}
line() { grep -m1 "^$2" "$TMP/$1.out"; }

# 1. A chat message.
answer msg --jid bob@localhost --password bobpw $TLS --once || bad "bob online for the message" "$TMP/msg.err"
if "$NATTER" xmpp send bob@localhost "hello from natter" --jid alice@localhost --password alicepw $S $TLS \
    >"$TMP/send.out" 2>"$TMP/send.err" && wait_for "$TMP/msg.out" "text=hello from natter" 10; then
    ok "message delivered ($(line msg message))"
else
    bad "message delivered" "$TMP/send.err"
fi
# ...and over direct TLS (XEP-0368).
if "$NATTER" xmpp send bob@localhost "direct tls" --jid alice@localhost --password alicepw \
    --server 127.0.0.1:25224 --direct-tls --tls-insecure >"$TMP/send2.out" 2>"$TMP/send2.err" \
    && wait_for "$TMP/msg.out" "text=direct tls" 10; then
    ok "message over direct TLS (XEP-0368)"
else
    bad "message over direct TLS (XEP-0368)" "$TMP/send2.err"
fi
kill "$ANS" 2>/dev/null
wait "$ANS" 2>/dev/null

# 2. Bare JID (XEP-0353), STARTTLS, caller relayed through the XEP-0215 TURN server.
answer jmi-b --jid bob@localhost --password bobpw $TLS --once --play "$TMP/b.wav" --record "$TMP/jmi-b.wav" \
    || bad "bob online" "$TMP/jmi-b.err"
timeout 60 "$NATTER" xmpp call bob@localhost --jid alice@localhost --password alicepw $S $TLS --relay-only \
    --play "$TMP/a.wav" --record "$TMP/jmi-a.wav" --duration 6 >"$TMP/jmi-a.out" 2>"$TMP/jmi-a.err"
arc=$?
finish
brc=$?
est=$(line jmi-a established)
if [ $arc = 0 ] && [ $brc = 0 ] && echo "$est" | grep -q "ice=relay" && echo "$est" | grep -q "srtp=AEAD\|srtp=AES"; then
    ok "bare-JID call over STARTTLS via TURN relay ($est)"
else
    bad "bare-JID call over STARTTLS via TURN relay (caller $arc, callee $brc: $est)" "$TMP/jmi-a.err"
fi
grep -q "STARTTLS done" "$TMP/jmi-a.err" && grep -q "XEP-0215 TURN" "$TMP/jmi-a.err" \
    && ok "STARTTLS and XEP-0215 used" || bad "STARTTLS and XEP-0215 used" "$TMP/jmi-a.err"
# XEP-0353 0.8: bob's device rang (<ringing/>) before it proceeded; when alice hung up her
# <finish/> (reason success) reached bob.
grep -q "bob@localhost/.* is ringing (call " "$TMP/jmi-a.err" \
    && grep -q "alice@localhost/.* finished .* (success) (XEP-0353)" "$TMP/jmi-b.err" \
    && ok "XEP-0353 ringing seen by the caller, caller's finish seen by the callee" \
    || bad "XEP-0353 ringing seen by the caller, caller's finish seen by the callee" "$TMP/jmi-b.err"
audio "audio alice->bob (relayed)" "$TMP/a.wav" "$TMP/jmi-b.wav"
audio "audio bob->alice (relayed)" "$TMP/b.wav" "$TMP/jmi-a.wav"

# 3. Full JID, no TLS (SCRAM on a plain stream), PCMU only.
answer full-b --jid bob@localhost/desk --password bobpw --no-tls --once --codec PCMU \
    --play "$TMP/b.wav" --record "$TMP/full-b.wav" || bad "bob/desk online" "$TMP/full-b.err"
timeout 60 "$NATTER" xmpp call bob@localhost/desk --jid alice@localhost --password alicepw $S --no-tls \
    --codec PCMU --play "$TMP/a.wav" --record "$TMP/full-a.wav" --duration 5 >"$TMP/full-a.out" 2>"$TMP/full-a.err"
arc=$?
finish
brc=$?
est=$(line full-a established)
if [ $arc = 0 ] && [ $brc = 0 ] && echo "$est" | grep -q "codec=PCMU/8000"; then
    ok "full-JID call without TLS ($est; bob: $(line full-b stats))"
else
    bad "full-JID call without TLS (caller $arc, callee $brc: $est)" "$TMP/full-a.err"
fi
audio "audio alice->bob (PCMU)" "$TMP/a.wav" "$TMP/full-b.wav"

# 4. Refusals: a wrong password; PLAIN is not offered in clear by us either way.
if "$NATTER" xmpp send bob@localhost x --jid alice@localhost --password wrong $S --no-tls \
    >"$TMP/wrong.out" 2>"$TMP/wrong.err"; then
    bad "wrong password refused (exit 0)"
elif grep -q "authentication failed" "$TMP/wrong.err"; then
    ok "wrong password refused ($(tail -1 "$TMP/wrong.err"))"
else
    bad "wrong password refused" "$TMP/wrong.err"
fi

# 5. Nobody answers: carol is offline; the proposal is retracted after the set-up limit.
timeout 60 "$NATTER" xmpp call carol@localhost --jid alice@localhost --password alicepw $S --no-tls \
    --setup-timeout 3 >"$TMP/none.out" 2>"$TMP/none.err"
rc=$?
if [ $rc != 0 ] && grep -q "^ended reason=no-answer" "$TMP/none.out"; then
    ok "unanswered call ends with no-answer"
else
    bad "unanswered call ends with no-answer (exit $rc: $(cat "$TMP/none.out"))" "$TMP/none.err"
fi
# 6. XEP-0198 resume mid-call: alice's connection goes through a relay that resets it.
$PY interop/xmpp/tcpcut.py 25223 $PORT >"$TMP/cut.log" 2>&1 &
CUT=$!
PIDS+=($CUT)
wait_for "$TMP/cut.log" listening 5 || bad "tcpcut started" "$TMP/cut.log"
answer sm-b --jid bob@localhost --password bobpw --no-tls --once --play "$TMP/b.wav" --record "$TMP/sm-b.wav" \
    || bad "bob online" "$TMP/sm-b.err"
timeout 60 "$NATTER" xmpp call bob@localhost --jid alice@localhost --password alicepw --server 127.0.0.1:25223 \
    --no-tls --play "$TMP/a.wav" --record "$TMP/sm-a.wav" --duration 6 >"$TMP/sm-a.out" 2>"$TMP/sm-a.err" &
CALLER=$!
PIDS+=($CALLER)
wait_for "$TMP/sm-a.out" "^established" 20 && kill -USR1 $CUT
wait_for "$TMP/cut.log" "cut [1-9]" 5 || bad "connection cut" "$TMP/cut.log"
timeout 40 bash -c "while kill -0 $CALLER 2>/dev/null; do sleep 0.05; done"
wait $CALLER
arc=$?
finish
brc=$?
if [ $arc = 0 ] && [ $brc = 0 ] && grep -q "(resumed)" "$TMP/sm-a.err" \
    && grep -q "^ended reason=remote-hangup" "$TMP/sm-b.out"; then
    ok "call survives a reset XMPP connection (XEP-0198 resume; bob: $(line sm-b stats))"
else
    bad "call survives a reset XMPP connection (caller $arc, callee $brc)" "$TMP/sm-a.err"
fi
audio "audio alice->bob (across the resume)" "$TMP/a.wav" "$TMP/sm-b.wav"
audio "audio bob->alice (across the resume)" "$TMP/b.wav" "$TMP/sm-a.wav"
summary
