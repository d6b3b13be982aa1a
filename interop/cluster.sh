#!/usr/bin/env bash
# Cluster interop (issue 11): three `natter serve` instances (A 127.0.0.1, B 127.0.0.2,
# C 127.0.0.3) share one redis-server started here, as one SIP registrar/proxy and TURN service.
#
#   * a SIPp UAS registers through A; SIPp UACs call it through B and through C;
#   * a baresip registered through A calls a baresip registered through B; audio checked both
#     ways (each plays its own tone pattern, the other's recording must carry it);
#   * TURN REST allocations work on every instance, and after a secret rotation too;
#   * a user added once (`natter user add --store redis://`) authenticates on every instance;
#   * faults: redis-server SIGKILLed and restarted during REGISTER load: no acknowledged
#     registration lost, refused ones got 500 + Retry-After; a call to a user with a cached
#     binding goes through while Redis is down, one to an uncached user fails cleanly (500),
#     and succeeds once Redis is back, without restarting anything;
#   * Redis hung (SIGSTOP): REGISTERs refused within the store timeout, cached calls go on, and
#     all is well again after SIGCONT;
#   * one instance SIGKILLed: the others keep serving, and `natter cluster status` drops it; a
#     flow-only UA registered through it re-registers through another one and is reachable again.
#
# Usage: interop/cluster.sh [path/to/natter]   (default target/debug/natter)
# Everything runs in a private network namespace on loopback; every wait is bounded.
set -uo pipefail
cd "$(dirname "$0")/.."
. interop/lib.sh
in_private_netns "$@"
NATTER=${1:-${NATTER:-target/debug/natter}}
HERE=$PWD/interop/cluster
PY=/usr/bin/python3
[ -x $PY ] || PY=python3

for t in sipp redis-server redis-cli baresip; do
    command -v "$t" >/dev/null || { echo "missing $t (apt-get install sip-tester redis-server baresip)"; exit 1; }
done
$PY -c 'import numpy' 2>/dev/null || { echo "missing numpy (apt-get install python3-numpy)"; exit 1; }
# The 127.0.0.2/.3 addresses need the namespace's loopback (the host's has them too on Linux).
STORE=redis://127.0.0.1:6379
SECRET=cluster-s3cr3t
REALM=natter.test

REDIS_PID=
start_redis() { # persistent (AOF, fsync always): an acknowledged write survives a SIGKILL
    mkdir -p "$TMP/redis"
    redis-server --bind 127.0.0.1 --port 6379 --save "" --appendonly yes --appendfsync always \
        --dir "$TMP/redis" --daemonize no >>"$TMP/redis.log" 2>&1 &
    REDIS_PID=$!
    PIDS+=($REDIS_PID)
    timeout 10 bash -c 'until redis-cli -p 6379 ping 2>/dev/null | grep -q PONG; do sleep 0.05; done'
}
start_redis || { echo "redis-server did not start"; tail -5 "$TMP/redis.log"; exit 1; }

NP=()
for i in 1 2 3; do
    "$NATTER" serve --store $STORE --data-dir "$TMP/data$i" --no-sip-auth --realm $REALM \
        --sip-domain $REALM --sip-listen 127.0.0.$i:5060 --turn-listen 127.0.0.$i:3478 --no-tls \
        --relay-ip 127.0.0.$i --auth-secret $SECRET --allow-loopback-peers \
        --metrics-listen 127.0.0.$i:9641 --instance-id node$i \
        >"$TMP/n$i.out" 2>"$TMP/n$i.err" &
    NP+=($!)
    PIDS+=($!)
done
for i in 1 2 3; do
    wait_for "$TMP/n$i.out" "natter: metrics" 30 || { echo "instance $i did not start"; cat "$TMP/n$i.err"; exit 1; }
done
ok "three instances share $STORE"

COMMON=(-i 127.0.0.1 -mi 127.0.0.1 -nostdin -timeout 30s -timeout_error -default_behaviors all,-abortunexp)
# register USER VIA-IP LOCAL-PORT
register() {
    timeout 20 sipp "$2:5060" -sf "$HERE/register.xml" -s "$1" -i 127.0.0.1 -p "$3" -m 1 -nostdin \
        -timeout 10s -timeout_error >"$TMP/reg-$1-$2.log" 2>&1
}
# calls NAME VIA-IP LOCAL-PORT COUNT [USER [SIPP-ARGS...]]: prints successful calls, first error
# in $TMP/NAME.first
calls() {
    local name=$1 via=$2 port=$3 n=$4 user=${5:-uas}
    shift 4
    [ $# -gt 0 ] && shift
    timeout 60 sipp "$via:5060" -sf "$HERE/uac.xml" -s "$user" -p "$port" "${COMMON[@]}" "$@" \
        -r 20 -m "$n" -d 200 -trace_stat -stf "$TMP/$name.csv" -trace_err -error_file "$TMP/$name.err" \
        >"$TMP/$name.log" 2>&1
    grep -m1 -oE "received 'SIP/2.0 [0-9]{3}[^']*" "$TMP/$name.err" 2>/dev/null \
        | sed "s/received '//" | tr -d '\r' >"$TMP/$name.first"
    $PY - "$TMP/$name.csv" <<'EOF' 2>/dev/null || echo 0
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=";"))
print(rows[-1][rows[0].index("SuccessfulCall(C)")])
EOF
}

# --- SIP: register through A, call through B and C ----------------------------------------------
check "UAS registers sip:uas@$REALM through A" "$TMP/reg-a.log" register uas 127.0.0.1 25072
timeout 300 sipp -sf "$HERE/uas.xml" -i 127.0.0.1 -p 25070 -mi 127.0.0.1 -nostdin \
    -default_behaviors all,-abortunexp >"$TMP/uas.log" 2>&1 &
PIDS+=($!)
wait_udp 25070 10
okB=$(calls viaB 127.0.0.2 25061 50)
[ "$okB" = 50 ] && ok "50/50 calls through B reach the UAS registered at A" || bad "calls via B: $okB/50 ($(cat "$TMP/viaB.first"))" "$TMP/viaB.log"
okC=$(calls viaC 127.0.0.3 25063 50)
[ "$okC" = 50 ] && ok "50/50 calls through C reach the UAS registered at A" || bad "calls via C: $okC/50 ($(cat "$TMP/viaC.first"))" "$TMP/viaC.log"

# --- a UA reachable only over its flow (NAT-like: its Contact names another address) ----------
# It registers through A from 127.0.0.1:25080 with Contact 127.0.0.9:5099, where nothing listens:
# only A's flow reaches it. A call through B must go B -> A -> flow (Path-style owner routing).
# flow_register USER SRC-PORT VIA-IP CSEQ: one REGISTER from 127.0.0.1:SRC-PORT with Contact
# 127.0.0.9:5099 (nothing listens there); prints the status line (5 s cap).
flow_register() {
    $PY - "$@" <<'EOF2'
import socket, sys
user, port, via, cseq = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", port))
s.settimeout(5)
s.sendto((f"REGISTER sip:natter.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{user}{cseq};rport\r\n"
          f"Max-Forwards: 70\r\nFrom: <sip:{user}@natter.test>;tag=n{cseq}\r\nTo: <sip:{user}@natter.test>\r\n"
          f"Call-ID: {user}-reg@127.0.0.1\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@127.0.0.9:5099>\r\n"
          "Expires: 600\r\nContent-Length: 0\r\n\r\n").encode(), (via, 5060))
try:
    print(s.recv(65535).decode().split("\r\n")[0])
except socket.timeout:
    print("timeout")
EOF2
}
flow_register nat 25080 127.0.0.1 1 >"$TMP/natreg.log" 2>&1
if grep -q "SIP/2.0 200" "$TMP/natreg.log"; then
    timeout 120 sipp -sf "$HERE/uas.xml" -i 127.0.0.1 -p 25080 -mi 127.0.0.1 -nostdin \
        -default_behaviors all,-abortunexp >"$TMP/natuas.log" 2>&1 &
    PIDS+=($!)
    wait_udp 25080 10
    okN=$(calls natB 127.0.0.2 25082 10 nat)
    [ "$okN" = 10 ] && ok "a flow-only UA registered at A is reached through B via A's flow (10/10)" \
        || bad "flow-only UA via B: $okN/10 ($(cat "$TMP/natB.first"))" "$TMP/natB.log"
else
    bad "flow-only UA registers through A" "$TMP/natreg.log"
fi

# --- a flow-only UA registered through B (its users must re-register elsewhere once B dies) ------
ROAM_UAS=
roam_uas() { # start the UAS on the UA's own socket 127.0.0.1:25090
    timeout 300 sipp -sf "$HERE/uas.xml" -i 127.0.0.1 -p 25090 -mi 127.0.0.1 -nostdin \
        -default_behaviors all,-abortunexp >>"$TMP/roamuas.log" 2>&1 &
    ROAM_UAS=$!
    PIDS+=($ROAM_UAS)
    wait_udp 25090 10
}
reg=$(flow_register roam 25090 127.0.0.2 1)
roam_uas
okR=$(calls roamA 127.0.0.1 25084 3 roam)
[[ $reg == "SIP/2.0 200"* ]] && [ "$okR" = 3 ] && ok "a flow-only UA registered through B is reached through A (3/3)" \
    || bad "flow-only UA at B: register '$reg', calls via A $okR/3 ($(cat "$TMP/roamA.first"))" "$TMP/roamA.log"

# --- baresip registered through A calls baresip registered through B, audio both ways ----------
# Headless baresips from interop/phone/baresip.conf.in: aufile plays a tone pattern as the
# microphone (the caller hangs up when its 8 s file ends), sndfile records what was decoded.
TONES="$PY interop/phone/tones.py"
FREQS_B=600,1200,800,1500,500,900,1100,350
$TONES gen "$TMP/a8.wav" --seconds 8
$TONES gen "$TMP/b30.wav" --seconds 30 --freqs $FREQS_B
# bs_start NAME SIP-PORT CTRL-PORT RTP-PORTS WAV REGISTRAR-IP: prints the PID.
bs_start() {
    local d=$TMP/bs-$1
    mkdir -p "$d/rec"
    sed -e "s|@SIP@|127.0.0.1:$2|" -e "s|@RTP@|$4|" -e "s|@CTRL@|127.0.0.1:$3|" \
        -e "s|@WAV@|$5|" -e "s|@REC@|$d/rec|" interop/phone/baresip.conf.in >"$d/config"
    echo "<sip:$1@$REALM>;regint=60;answermode=auto;outbound=\"sip:$6:5060\";audio_codecs=PCMU" >"$d/accounts"
    baresip -f "$d" -s -t 60 </dev/null >"$d/log" 2>&1 &
    echo $!
}
bs_quit() { # CTRL-PORT PID
    timeout 5 $PY interop/sip/bsctrl.py "$1" quit --timeout 2 >/dev/null 2>&1
    timeout 5 bash -c "while kill -0 $2 2>/dev/null; do sleep 0.05; done"
    kill "$2" 2>/dev/null
    wait "$2" 2>/dev/null
    return 0
}
BSA=$(bs_start bsa 25100 25102 27000-27099 "$TMP/a8.wav" 127.0.0.1)
PIDS+=($BSA)
BSB=$(bs_start bsb 25104 25106 27100-27199 "$TMP/b30.wav" 127.0.0.2)
PIDS+=($BSB)
regs=0
for n in bsa bsb; do wait_for "$TMP/bs-$n/log" "200 OK .*binding" 10 && regs=$((regs + 1)); done
if [ $regs = 2 ] && grep -q "^REGISTER sip:" "$TMP/bs-bsa/log" && grep -q "^REGISTER sip:" "$TMP/bs-bsb/log"; then
    ok "baresip bsa registered through A, baresip bsb through B"
else
    bad "baresip registrations ($regs/2)" "$TMP/bs-bsb/log"
fi
timeout 10 bash -c "until (exec 3<>/dev/tcp/127.0.0.1/25102) 2>/dev/null; do sleep 0.05; done"
timeout 30 $PY interop/sip/bsctrl.py 25102 dial "sip:bsb@$REALM" --wait CALL_CLOSED --timeout 25 \
    >"$TMP/bs-bsa/events" 2>&1
# bsb's INVITE came from A (A record-routes itself): the lookup found B's binding in Redis.
if grep -q '"CALL_ESTABLISHED"' "$TMP/bs-bsa/events" && grep -q '"CALL_CLOSED"' "$TMP/bs-bsa/events" &&
    grep -q "^INVITE sip:bsb" "$TMP/bs-bsb/log" && grep -q "^Record-Route: <sip:127.0.0.1:5060" "$TMP/bs-bsb/log"; then
    ok "baresip at A calls baresip at B through the cluster: established via A, closed"
else
    bad "baresip call A -> B" "$TMP/bs-bsa/events"
fi
bs_quit 25102 $BSA
bs_quit 25106 $BSB
audio_ok() { # NAME REF GOT [FREQS]
    local r
    if [ -s "$3" ] && r=$($TONES check "$2" "$3" ${4:+--freqs $4}); then ok "$1 ($r)"; else bad "$1 (${r:-no recording $3})"; fi
}
audio_ok "baresip A -> baresip B audio" "$TMP/a8.wav" "$(ls "$TMP"/bs-bsb/rec/*-dec.wav 2>/dev/null | tail -1)"
audio_ok "baresip B -> baresip A audio" "$TMP/b30.wav" "$(ls "$TMP"/bs-bsa/rec/*-dec.wav 2>/dev/null | tail -1)" $FREQS_B

# --- TURN: REST credentials everywhere, rotation, a store user everywhere -----------------------
rest_pass() { # SECRET USERNAME
    $PY -c 'import base64,hashlib,hmac,sys; print(base64.b64encode(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha1).digest()).decode())' "$1" "$2"
}
allocate() { # IP USER:PASS LOG
    timeout 20 "$NATTER" turn allocate "turn:$1:3478?transport=udp" --user "$2" --count 0 >"$3" 2>&1
}
U=$(($(date +%s) + 600))
n=0
for i in 1 2 3; do allocate 127.0.0.$i "$U:$(rest_pass $SECRET $U)" "$TMP/rest$i.log" && n=$((n + 1)); done
[ $n = 3 ] && ok "TURN REST allocation on every instance (3/3)" || bad "REST allocations $n/3" "$TMP/rest1.log"

"$NATTER" cluster --store $STORE rest-secret rotated-s3cr3t >"$TMP/rot.log" 2>&1 || bad "rest-secret rotation" "$TMP/rot.log"
# The instances pick up rotated secrets with their next heartbeat (every 2 s): poll, bounded.
n=0
for i in 1 2 3; do
    for _ in $(seq 20); do
        allocate 127.0.0.$i "$U:$(rest_pass rotated-s3cr3t $U)" "$TMP/rot$i.log" && { n=$((n + 1)); break; }
        sleep 0.5
    done
done
[ $n = 3 ] && ok "a REST secret rotated into the store works on every instance (3/3)" || bad "rotated secret $n/3" "$TMP/rot1.log"

"$NATTER" user --store $STORE add alice --password apw --realm $REALM >"$TMP/useradd.log" 2>&1
n=0
for i in 1 2 3; do allocate 127.0.0.$i alice:apw "$TMP/alice$i.log" && n=$((n + 1)); done
[ $n = 3 ] && ok "a user added once authenticates on every instance (3/3)" || bad "store user $n/3" "$TMP/alice1.log"
allocate 127.0.0.2 alice:wrong "$TMP/alicebad.log" && bad "a wrong password is refused" "$TMP/alicebad.log" || ok "a wrong password is refused"

# --- metrics and status ---------------------------------------------------------------------------
if curl -s http://127.0.0.2:9641/metrics | grep -q '^natter_cluster_store_up 1'; then
    ok "B's /metrics: natter_cluster_store_up 1"
else
    bad "cluster metrics" /dev/null
fi
"$NATTER" cluster --store $STORE status >"$TMP/status.log" 2>&1
if grep -q "instances 3:" "$TMP/status.log" && grep -q "node2#" "$TMP/status.log"; then
    ok "natter cluster status lists the three instances"
else
    bad "cluster status" "$TMP/status.log"
fi

# A second user, registered through A but never looked up by C: nothing about it is cached there.
register uas2 127.0.0.1 25074 || bad "register uas2" "$TMP/reg-uas2-127.0.0.1.log"

# --- fault: Redis SIGKILLed and restarted during REGISTER load -----------------------------------
$PY "$HERE/regload.py" "$TMP/load.txt" 3000 300 127.0.0.1:5060 127.0.0.2:5060 127.0.0.3:5060 &
LOAD=$!
PIDS+=($LOAD)
timeout 30 bash -c "until [ \$(wc -l 2>/dev/null <'$TMP/load.txt' || echo 0) -ge 600 ]; do sleep 0.05; done"
kill -9 "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null
# While Redis is down: the cached user is still reachable through B; the uncached one fails
# cleanly through C with a 500 (not a 404, not a timeout).
okCached=$(calls downB 127.0.0.2 25065 5)
[ "$okCached" = 5 ] && ok "Redis down: calls to a cached binding still go through (5/5)" || bad "cached calls while down: $okCached/5 ($(cat "$TMP/downB.first"))" "$TMP/downB.log"
# (SIPp's default behaviours: the unexpected 500 ends the call at once.)
okUncached=$(calls downC 127.0.0.3 25067 1 uas2 -default_behaviors all)
first=$(cat "$TMP/downC.first")
if [ "$okUncached" = 0 ] && [[ $first == "SIP/2.0 500"* ]]; then
    ok "Redis down: a call to an uncached user fails cleanly ($first)"
else
    bad "uncached call while down: ok=$okUncached first='$first'" "$TMP/downC.log"
fi
# Restart two thirds into the load (1000 REGISTERs after the kill), so the last third runs
# against the restarted Redis.
timeout 30 bash -c "until [ \$(wc -l <'$TMP/load.txt') -ge 1600 ]; do sleep 0.05; done"
start_redis || bad "redis-server restarts" "$TMP/redis.log"
timeout 60 bash -c "while kill -0 $LOAD 2>/dev/null; do sleep 0.1; done"
acked=$(awk '$2 == 200' "$TMP/load.txt" | wc -l)
refused=$(awk '$2 == 500' "$TMP/load.txt" | wc -l)
other=$(awk '$2 != 200 && $2 != 500' "$TMP/load.txt" | wc -l)
echo "     REGISTER load: $acked acknowledged, $refused refused (500), $other other/timeout"
# Every acknowledged binding must be in the restarted Redis (one pipelined HEXISTS each).
awk '$2 == 200 {print "HEXISTS natter:loc:sip:" $1 "@natter.test " $4}' "$TMP/load.txt" \
    | redis-cli -p 6379 >"$TMP/hexists.txt" 2>&1
found=$(grep -c '^1$' "$TMP/hexists.txt")
if [ "$acked" -gt 0 ] && [ "$found" = "$acked" ]; then
    ok "no acknowledged registration lost across the Redis kill ($found/$acked in the store)"
else
    bad "acknowledged registrations in the store: $found/$acked" "$TMP/hexists.txt"
fi
with_ra=$(awk '$2 == 500 && $5 != "-"' "$TMP/load.txt" | wc -l)
if [ "$refused" -gt 0 ] && [ "$with_ra" = "$refused" ]; then
    ok "REGISTERs during the outage were refused with 500 + Retry-After ($refused)"
else
    bad "refusals while Redis was down: $refused, with Retry-After $with_ra" "$TMP/load.txt"
fi
late=$(tail -n 1000 "$TMP/load.txt" | awk '$2 == 200' | wc -l)
[ "$late" -gt 0 ] && ok "REGISTERs succeed again after the restart, no natter restart ($late of the last 1000)" || bad "no 200 after the restart" "$TMP/load.txt"
okAfter=$(calls afterC 127.0.0.3 25069 5 uas2)
[ "$okAfter" = 5 ] && ok "after the restart the uncached user is reachable through C (5/5)" || bad "calls after restart: $okAfter/5 ($(cat "$TMP/afterC.first"))" "$TMP/afterC.log"

# --- fault: Redis hung (SIGSTOP): bounded timeouts, then recovery on SIGCONT -----------------------
# one_register USER IP: prints the status line and Retry-After of one REGISTER (5 s cap).
one_register() {
    $PY - "$1" "$2" <<'EOF2'
import socket, sys
user, ip = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(5)
port = s.getsockname()[1]
s.sendto((f"REGISTER sip:natter.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{user}{port}\r\n"
          f"Max-Forwards: 70\r\nFrom: <sip:{user}@natter.test>;tag=h1\r\nTo: <sip:{user}@natter.test>\r\n"
          f"Call-ID: {user}-{port}@127.0.0.1\r\nCSeq: 1 REGISTER\r\nContact: <sip:{user}@127.0.0.1:{port}>\r\n"
          "Expires: 600\r\nContent-Length: 0\r\n\r\n").encode(), (ip, 5060))
try:
    lines = s.recv(65535).decode().split("\r\n")
    ra = next((l for l in lines if l.lower().startswith("retry-after:")), "")
    print(lines[0], ra)
except socket.timeout:
    print("timeout")
EOF2
}
kill -STOP "$REDIS_PID"
hung=$(one_register hung1 127.0.0.2)
if [[ $hung == "SIP/2.0 500"*"Retry-After"* ]]; then
    ok "Redis hung: a REGISTER is refused within the store timeout ($hung)"
else
    bad "REGISTER while Redis is hung: '$hung'" /dev/null
fi
okHung=$(calls hungB 127.0.0.2 25077 3)
[ "$okHung" = 3 ] && ok "Redis hung: calls to a cached binding still go through (3/3)" || bad "cached calls while hung: $okHung/3 ($(cat "$TMP/hungB.first"))" "$TMP/hungB.log"
kill -CONT "$REDIS_PID"
back=""
for _ in $(seq 20); do
    back=$(one_register hung2 127.0.0.2)
    [[ $back == "SIP/2.0 200"* ]] && break
    sleep 0.25
done
[[ $back == "SIP/2.0 200"* ]] && ok "Redis resumed: REGISTER answered 200 again" || bad "after SIGCONT: '$back'" /dev/null

# --- fault: one instance SIGKILLed ----------------------------------------------------------------
kill -9 "${NP[1]}"
wait "${NP[1]}" 2>/dev/null
okC=$(calls killC 127.0.0.3 25071 20)
[ "$okC" = 20 ] && ok "B killed: calls through C still reach the UAS (20/20)" || bad "calls via C after killing B: $okC/20 ($(cat "$TMP/killC.first"))" "$TMP/killC.log"
n=0
for i in 1 3; do allocate 127.0.0.$i "$U:$(rest_pass $SECRET $U)" "$TMP/after$i.log" && n=$((n + 1)); done
[ $n = 2 ] && ok "B killed: TURN still allocates on A and C (2/2)" || bad "TURN after kill $n/2" "$TMP/after1.log"
gone=0
for _ in $(seq 40); do
    "$NATTER" cluster --store $STORE status >"$TMP/status2.log" 2>&1
    if grep -q "instances 2:" "$TMP/status2.log" && ! grep -q "node2#" "$TMP/status2.log"; then gone=1; break; fi
    sleep 0.5
done
[ $gone = 1 ] && ok "natter cluster status drops the killed instance once its heartbeat lapses" || bad "status after kill" "$TMP/status2.log"
# B is gone, and with it the flow to the UA: it re-registers through C from the same socket
# (as a UA does when its outbound flow fails, RFC 5626 4.4.1) and is reachable through A again.
kill "$ROAM_UAS" 2>/dev/null
wait "$ROAM_UAS" 2>/dev/null
reg=$(flow_register roam 25090 127.0.0.3 2)
roam_uas
okR=$(calls roamA2 127.0.0.1 25086 5 roam)
if [[ $reg == "SIP/2.0 200"* ]] && [ "$okR" = 5 ]; then
    ok "B killed: its flow-only UA re-registered through C and is reached through A again (5/5)"
else
    bad "re-registration after B's death: register '$reg', calls via A $okR/5 ($(cat "$TMP/roamA2.first"))" "$TMP/roamA2.log"
fi

summary
