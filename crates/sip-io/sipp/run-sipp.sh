#!/bin/sh
# SIPp checks against the natter SIP example server, on loopback only.
# Run as root inside a private network namespace so fixed ports are free:
#   unshare -n sh crates/sip-io/sipp/run-sipp.sh [path/to/sip_server]
# Prints one line per check and exits non-zero if any check fails.
set -u
ip link set lo up 2>/dev/null
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-${CARGO_TARGET_DIR:-target}/debug/examples/sip_server}
OUT=$(mktemp -d)
COMMON="-i 127.0.0.1 -ci 127.0.0.1 -mi 127.0.0.1 -nostdin -timeout 30s -timeout_error"
FAIL=0
check() { # name expected actual
  if [ "$2" = "$3" ]; then echo "PASS $1"; else echo "FAIL $1 (rc $3, want $2)"; FAIL=1; fi
}
start_server() {
  "$BIN" --listen 127.0.0.1:5060 --domain natter.test "$@" >"$OUT/server.log" 2>&1 &
  SRV=$!
  sleep 0.5
}

# 1. REGISTER with digest auth; wrong password refused.
start_server --user alice:secret --user service:svcpw
sipp -sf "$HERE/reg-only.xml" 127.0.0.1:5060 -s alice -au alice -ap secret $COMMON -p 25061 -m 1 \
  -default_behaviors all,-bye >"$OUT/reg-good.out" 2>&1
check "REGISTER digest, good password" 0 $?
sipp -sf "$HERE/reg-only.xml" 127.0.0.1:5060 -s alice -au alice -ap wrong $COMMON -p 25062 -m 1 \
  -default_behaviors all,-bye >"$OUT/reg-bad.out" 2>&1
check "REGISTER digest, wrong password refused" 1 $?
# 2. uac -> proxy -> registered uas (service registered from the uas port first).
sipp -sf "$HERE/reg-only.xml" 127.0.0.1:5060 -s service -au service -ap svcpw $COMMON -p 25070 -m 1 \
  -default_behaviors all,-bye >"$OUT/reg-svc.out" 2>&1
check "REGISTER service" 0 $?
sipp -sn uas $COMMON -p 25070 -m 10 >"$OUT/uas.out" 2>&1 &
UAS=$!
sleep 0.3
sipp -sn uac 127.0.0.1:5060 -s service $COMMON -p 25071 -m 10 -r 10 -l 10 -d 200 \
  -trace_stat -stf "$OUT/uac.csv" >"$OUT/uac.out" 2>&1
check "uac -> natter proxy -> uas, 10 calls" 0 $?
wait $UAS
check "uas side" 0 $?
# 3. Unregistered / unknown user: 404.
sipp -sn uac 127.0.0.1:5060 -s nobody $COMMON -p 25072 -m 1 -trace_err -error_file "$OUT/unreg.err" >"$OUT/unreg.out" 2>&1
grep -q "SIP/2.0 404" "$OUT/unreg.err"
check "call to unknown user gets 404" 0 $?
# 3b. The same over TCP (-t t1): REGISTER, then uac -> proxy -> uas.
T="$COMMON -t t1"
sipp -sf "$HERE/reg-only.xml" 127.0.0.1:5060 -s service -au service -ap svcpw $T -p 25170 -m 1 \
  -default_behaviors all,-bye >"$OUT/tcp-reg.out" 2>&1
check "TCP REGISTER digest" 0 $?
sipp -sn uas $T -p 25170 -m 5 >"$OUT/tcp-uas.out" 2>&1 &
UAS=$!
sleep 0.3
sipp -sn uac 127.0.0.1:5060 -s service $T -p 25171 -m 5 -r 5 -l 5 -d 200 >"$OUT/tcp-uac.out" 2>&1
check "TCP uac -> natter proxy -> uas, 5 calls" 0 $?
wait $UAS
check "TCP uas side" 0 $?
kill "$SRV"; wait "$SRV" 2>/dev/null

# 4. CANCEL before answer (no auth).
start_server --no-auth
sipp -sf "$HERE/reg-only.xml" 127.0.0.1:5060 -s bob $COMMON -p 25080 -m 1 -default_behaviors all,-bye >"$OUT/reg-bob.out" 2>&1
check "REGISTER bob (no auth)" 0 $?
sipp -sf "$HERE/uas-ring.xml" $COMMON -p 25080 -m 3 >"$OUT/uas-ring.out" 2>&1 &
UAS=$!
sleep 0.3
sipp -sf "$HERE/uac-cancel.xml" 127.0.0.1:5060 -s bob $COMMON -p 25081 -m 3 -r 3 >"$OUT/uac-cancel.out" 2>&1
check "CANCEL before answer: 200 + 487 relayed" 0 $?
wait $UAS
check "ringing uas saw CANCEL and ACK" 0 $?
kill "$SRV"; wait "$SRV" 2>/dev/null
echo "logs in $OUT"
exit $FAIL
