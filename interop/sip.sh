#!/usr/bin/env bash
# SIP interop: SIPp and baresip against `natter serve` (registrar + stateful proxy).
# Usage: interop/sip.sh [path/to/natter]   (default target/debug/natter)
# Everything runs in a private network namespace on loopback; every wait is bounded.
set -uo pipefail
cd "$(dirname "$0")/.."
. interop/lib.sh
in_private_netns "$@"
NATTER=${1:-${NATTER:-target/debug/natter}}
HERE=$PWD/interop/sip

for t in sipp baresip; do
    command -v "$t" >/dev/null || { echo "missing $t (apt-get install sip-tester baresip)"; exit 1; }
done
PY=/usr/bin/python3
[ -x $PY ] || PY=python3

SIP=127.0.0.1:5060
USERS=(--user alice:apw --user bob:bpw --user service:spw --user carol:cpw --user dave:dpw)
SERVE_PID=
start_serve() { # LOGNAME
    "$NATTER" serve --turn-listen 127.0.0.1:3478 --sip-listen $SIP "${USERS[@]}" \
        --data-dir "$TMP/data" --metrics-listen 127.0.0.1:9641 \
        >"$TMP/$1.out" 2>"$TMP/$1.err" &
    SERVE_PID=$!
    PIDS+=($SERVE_PID)
    wait_for "$TMP/$1.out" "natter: metrics" 20 || { cat "$TMP/$1.err"; exit 1; }
}
stop_serve() {
    kill "$SERVE_PID" 2>/dev/null
    timeout 10 bash -c "while kill -0 $SERVE_PID 2>/dev/null; do sleep 0.05; done"
    wait "$SERVE_PID" 2>/dev/null
}

start_serve serve1
if grep -Eq "^natter: sip udp=127\.0\.0\.1:5060 tcp=127\.0\.0\.1:5060 tls=127\.0\.0\.1:5061$" "$TMP/serve1.out"; then
    ok "natter serve prints its SIP listeners (UDP+TCP 5060, TLS 5061)"
else
    bad "SIP readiness line" "$TMP/serve1.out"
fi

COMMON=(-i 127.0.0.1 -ci 127.0.0.1 -mi 127.0.0.1 -nostdin -timeout 30s -timeout_error)
# sipp_reg NAME USER PASS PORT [EXTRA...]: REGISTER answering the 401; messages in $TMP/NAME.msg
sipp_reg() {
    local name=$1 user=$2 pass=$3 port=$4
    shift 4
    timeout 40 sipp -sf "$HERE/reg-only.xml" $SIP -s "$user" -au "$user" -ap "$pass" "${COMMON[@]}" \
        -p "$port" -m 1 -default_behaviors all,-bye -trace_msg -message_file "$TMP/$name.msg" "$@" \
        >"$TMP/$name.out" 2>&1
}
# csv_col FILE COLUMN: value of COLUMN in the last row of a SIPp -trace_stat CSV.
csv_col() {
    $PY - "$1" "$2" <<'PYEOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=";"))
print(rows[-1][rows[0].index(sys.argv[2])])
PYEOF
}

# --- SIP over TLS on 5061, with the TURN certificate -------------------------------------------
# tls_probe PORT [REQUEST-FILE]: prints the server certificate's SHA-256, then the response.
tls_probe() {
    $PY - "$@" <<'PYEOF'
import hashlib, socket, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as raw:
    with ctx.wrap_socket(raw) as s:
        print(hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest())
        if len(sys.argv) > 2:
            s.sendall(open(sys.argv[2], "rb").read())
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            print(buf.decode(errors="replace"))
PYEOF
}
printf 'OPTIONS sip:127.0.0.1:5061 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:25099;branch=z9hG4bKtls1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=t1\r\nTo: <sip:127.0.0.1:5061>\r\nCall-ID: tls-probe-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n' >"$TMP/tls-options"
tls_probe 5061 "$TMP/tls-options" >"$TMP/tls-sip.log" 2>&1
tls_probe 5349 >"$TMP/tls-turn.log" 2>&1
if grep -q "^SIP/2.0 200 OK" "$TMP/tls-sip.log" && grep -q "^Call-ID: tls-probe-1" "$TMP/tls-sip.log" &&
    [ -n "$(head -1 "$TMP/tls-turn.log")" ] && [ "$(head -1 "$TMP/tls-sip.log")" = "$(head -1 "$TMP/tls-turn.log")" ]; then
    ok "SIP over TLS (5061): OPTIONS answered 200, same certificate as TURN over TLS (5349)"
else
    bad "SIP over TLS" "$TMP/tls-sip.log"
fi

# --- REGISTER with digest authentication ----------------------------------------------------
sipp_reg reg-good alice apw 25061
rc=$?
if [ $rc = 0 ] && grep -q "^SIP/2.0 401 Unauthorized" "$TMP/reg-good.msg" &&
    grep -q "^Authorization: Digest username=\"alice\"" "$TMP/reg-good.msg" &&
    grep -q "^SIP/2.0 200 OK" "$TMP/reg-good.msg"; then
    ok "SIPp REGISTER: 401 challenge, digest answer (-au/-ap), 200 OK"
else
    bad "SIPp REGISTER with digest (rc $rc)" "$TMP/reg-good.msg"
fi
sipp_reg reg-bad alice wrong 25062
rc=$?
if [ $rc = 1 ] && grep -q "^SIP/2.0 403" "$TMP/reg-bad.msg" && ! grep -q "^SIP/2.0 200" "$TMP/reg-bad.msg"; then
    ok "SIPp REGISTER with a wrong password: 403, no binding"
else
    bad "SIPp REGISTER wrong password (rc $rc)" "$TMP/reg-bad.msg"
fi

# --- natter sip client commands --------------------------------------------------------------
log="$TMP/cli-reg.log"
if "$NATTER" sip register sip:$SIP --user carol:cpw --expires 120 >"$log" 2>&1 &&
    grep -q "^<<< received" "$log" && grep -q "^SIP/2.0 401" "$log" &&
    grep -Eq "^Contact: <sip:carol@127\.0\.0\.1:[0-9]+>;expires=120" "$log"; then
    ok "natter sip register: exchange printed, 401 then 200 with the binding"
else
    bad "natter sip register" "$log"
fi
log="$TMP/cli-reg-bad.log"
if ! "$NATTER" sip register sip:$SIP --user carol:nope >"$log" 2>&1 && grep -q "final response 403" "$log"; then
    ok "natter sip register with a wrong password exits non-zero (403)"
else
    bad "natter sip register wrong password" "$log"
fi
log="$TMP/cli-options.log"
if "$NATTER" sip options sip:$SIP >"$log" 2>&1 && grep -q "^OPTIONS sip:127.0.0.1:5060 SIP/2.0" "$log" &&
    grep -q "^SIP/2.0 200 OK" "$log"; then
    ok "natter sip options: 200 OK"
else
    bad "natter sip options" "$log"
fi
log="$TMP/cli-message.log"
if ! "$NATTER" sip message sip:bob@$SIP hello --user carol:cpw >"$log" 2>&1 &&
    grep -q "^SIP/2.0 407" "$log" && grep -q "^SIP/2.0 480" "$log"; then
    ok "natter sip message to a known but unregistered user: 407 answered, then 480"
else
    bad "natter sip message to unregistered user" "$log"
fi

# --- calls through the proxy: SIPp uac -> natter -> registered SIPp uas ----------------------
# call_test NAME PORT_UAS PORT_UAC CALLS [EXTRA...]: the uas is `service`, registered from PORT_UAS.
call_test() {
    local name=$1 pu=$2 pc=$3 n=$4
    shift 4
    sipp -sn uas "${COMMON[@]}" -p "$pu" -m "$n" -trace_stat -stf "$TMP/$name-uas.csv" "$@" \
        >"$TMP/$name-uas.out" 2>&1 &
    local uas=$!
    PIDS+=($uas)
    timeout 5 bash -c "until ss -Hlnua | grep -q ':$pu '; do sleep 0.05; done"
    timeout 60 sipp -sn uac $SIP -s service "${COMMON[@]}" -p "$pc" -m "$n" -r "$n" -l "$n" -d 200 \
        -trace_stat -stf "$TMP/$name-uac.csv" -trace_err -error_file "$TMP/$name-uac.err" "$@" \
        >"$TMP/$name-uac.out" 2>&1
    local rc=$?
    timeout 20 bash -c "while kill -0 $uas 2>/dev/null; do sleep 0.05; done"
    wait $uas
    local rcu=$?
    local okc fail
    okc=$(csv_col "$TMP/$name-uac.csv" "SuccessfulCall(C)" 2>/dev/null)
    fail=$(csv_col "$TMP/$name-uac.csv" "FailedCall(C)" 2>/dev/null)
    if [ $rc = 0 ] && [ $rcu = 0 ] && [ "$okc" = "$n" ] && [ "$fail" = 0 ]; then
        ok "$name: SIPp uac -> natter proxy -> uas, $okc calls, $fail failed"
    else
        bad "$name (uac rc $rc, uas rc $rcu, ok=$okc failed=$fail)" "$TMP/$name-uac.out"
    fi
}
if sipp_reg reg-svc service spw 25070; then ok "service registered (UDP) from the uas port"; else bad "register service" "$TMP/reg-svc.msg"; fi
call_test "UDP calls" 25070 25071 10
if sipp_reg reg-svc-tcp service spw 25170 -t t1; then ok "service registered over TCP"; else bad "register service TCP" "$TMP/reg-svc-tcp.msg"; fi
call_test "TCP calls" 25170 25171 5 -t t1

# --- unknown and unregistered users --------------------------------------------------------
unreg() { # NAME USER CODE
    timeout 40 sipp -sn uac $SIP -s "$2" "${COMMON[@]}" -p 25072 -m 1 -recv_timeout 10s \
        -trace_msg -message_file "$TMP/$1.msg" >"$TMP/$1.out" 2>&1
    if grep -q "^SIP/2.0 $3 " "$TMP/$1.msg"; then
        ok "INVITE to $2 is answered $3"
    else
        bad "INVITE to $2 (want $3)" "$TMP/$1.msg"
    fi
}
unreg unknown nobody 404
unreg unregistered bob 480

# --- CANCEL before answer ------------------------------------------------------------------
# dave has this one binding only (a second, silent contact would hold the 487 until its
# INVITE branch times out, as RFC 3261 §16.10 wants).
if sipp_reg reg-dave dave dpw 25080; then ok "dave registered"; else bad "register dave" "$TMP/reg-dave.msg"; fi
sipp -sf "$HERE/uas-ring.xml" "${COMMON[@]}" -p 25080 -m 3 -trace_msg -message_file "$TMP/ring.msg" \
    >"$TMP/ring.out" 2>&1 &
RING=$!
PIDS+=($RING)
timeout 5 bash -c "until ss -Hlnua | grep -q ':25080 '; do sleep 0.05; done"
timeout 40 sipp -sf "$HERE/uac-cancel.xml" $SIP -s dave "${COMMON[@]}" -p 25081 -m 3 -r 3 \
    -trace_msg -message_file "$TMP/cancel.msg" >"$TMP/cancel.out" 2>&1
rc=$?
timeout 20 bash -c "while kill -0 $RING 2>/dev/null; do sleep 0.05; done"
wait $RING
rcu=$?
if [ $rc = 0 ] && [ $rcu = 0 ] && [ "$(grep -c '^SIP/2.0 487' "$TMP/cancel.msg")" = 3 ] &&
    [ "$(grep -c '^CANCEL ' "$TMP/ring.msg")" = 3 ]; then
    ok "CANCEL before answer: 3 calls, CANCEL relayed to the callee, 200 + 487 back, ACKed"
else
    bad "CANCEL before answer (uac rc $rc, uas rc $rcu)" "$TMP/cancel.out"
fi

# --- bindings survive a restart -------------------------------------------------------------
stop_serve
start_serve serve2
call_test "after restart" 25070 25073 3

# --- metrics ---------------------------------------------------------------------------------
metrics="$TMP/metrics.txt"
timeout 5 curl -s http://127.0.0.1:9641/metrics >"$metrics"
if grep -Eq "^natter_sip_bindings [1-9]" "$metrics" && grep -Eq "^natter_sip_forwarded_total [1-9]" "$metrics"; then
    ok "/metrics has the SIP counters (bindings reloaded, requests forwarded)"
else
    bad "/metrics SIP counters" "$metrics"
fi

# --- two baresips register and call each other through natter ---------------------------------
$PY - "$TMP/tone.wav" <<'PYEOF'
import math, struct, sys, wave
w = wave.open(sys.argv[1], "wb")
w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(8000 * 3)))
w.close()
PYEOF
bs_conf() { # NAME SIPPORT CTRLPORT RTP ACCOUNT
    mkdir -p "$TMP/$1"
    sed -e "s|@SIP_ADDR@|127.0.0.1:$2|" -e "s|@NET_ADDR@|127.0.0.1|" -e "s|@DNS_ADDR@|127.0.0.1:53|" \
        -e "s|@WAV@|$TMP/tone.wav|" -e "s|@RTP_PORTS@|$4|" -e "s|@CTRL_ADDR@|127.0.0.1:$3|" \
        "$HERE/baresip.conf.in" >"$TMP/$1/config"
    echo "$5" >"$TMP/$1/accounts"
}
bs_conf alice 25092 25094 26000-26099 "<sip:alice@$SIP>;auth_pass=apw;regint=60;answermode=auto;audio_codecs=PCMU"
bs_conf bob 25096 25098 26100-26199 "<sip:bob@$SIP>;auth_pass=bpw;regint=60;answermode=auto;audio_codecs=PCMU"
baresip -f "$TMP/bob" -s -t 40 </dev/null >"$TMP/bob/log" 2>&1 &
BOB=$!
PIDS+=($BOB)
baresip -f "$TMP/alice" -s -t 40 </dev/null >"$TMP/alice/log" 2>&1 &
ALICE=$!
PIDS+=($ALICE)
for n in alice bob; do
    if wait_for "$TMP/$n/log" "200 OK .*binding" 10; then
        ok "baresip $n registered with natter (digest)"
    else
        bad "baresip $n registration" "$TMP/$n/log"
    fi
done
timeout 5 bash -c "until (exec 3<>/dev/tcp/127.0.0.1/25094) 2>/dev/null; do sleep 0.05; done"
$PY "$HERE/bsctrl.py" 25094 dial "sip:bob@$SIP" --wait CALL_CLOSED --timeout 30 >"$TMP/alice/events" 2>&1
if grep -q '"CALL_ESTABLISHED"' "$TMP/alice/events" && grep -q '"CALL_CLOSED"' "$TMP/alice/events" &&
    grep -q "^INVITE sip:bob-" "$TMP/bob/log" && grep -q "^Record-Route: <sip:127.0.0.1:5060;lr" "$TMP/bob/log" &&
    grep -q "^BYE sip:" "$TMP/alice/log" "$TMP/bob/log"; then
    ok "baresip alice calls bob through natter: answered, hung up (BYE), closed"
else
    bad "baresip call through natter" "$TMP/alice/events"
fi
for p in 25094 25098; do timeout 5 $PY "$HERE/bsctrl.py" $p quit --timeout 2 >/dev/null 2>&1; done
for p in $ALICE $BOB; do
    timeout 10 bash -c "while kill -0 $p 2>/dev/null; do sleep 0.05; done"
done
if ! kill -0 $ALICE 2>/dev/null && ! kill -0 $BOB 2>/dev/null; then
    ok "both baresips quit (un-REGISTER sent)"
else
    bad "baresip quit" "$TMP/alice/log"
fi
stop_serve
summary
