#!/usr/bin/env bash
# TURN/STUN interop: coturn's own tools (turnutils_uclient, turnutils_peer, turnutils_stunclient)
# against `natter serve`, and natter's TURN client against coturn's turnserver.
# Usage: interop/turn.sh [path/to/natter]   (default target/debug/natter)
set -uo pipefail
cd "$(dirname "$0")/.."
. interop/lib.sh
in_private_netns "$@"
NATTER=${1:-${NATTER:-target/debug/natter}}

for t in turnutils_uclient turnutils_peer turnutils_stunclient turnserver; do
    command -v "$t" >/dev/null || { echo "missing $t (apt-get install coturn)"; exit 1; }
done

turnutils_peer -L 127.0.0.1 -p 3480 >"$TMP/peer.log" 2>&1 &
PIDS+=($!)
turnutils_peer -L ::1 -p 3480 >"$TMP/peer6.log" 2>&1 &
PIDS+=($!)
"$NATTER" serve --no-sip --turn-listen 127.0.0.1:3478 --turn-listen '[::1]:3478' \
    --tls-listen 127.0.0.1:5349 \
    --user u:p --auth-secret s3cret --allow-loopback-peers --alt-ip 127.0.0.2 \
    --user-quota 20000 --unauth-rate 0 \
    --data-dir "$TMP/data" --metrics-listen 127.0.0.1:9641 \
    >"$TMP/serve.out" 2>"$TMP/serve.err" &
NATTER_PID=$!
PIDS+=($!)
wait_for "$TMP/serve.out" "natter: metrics" || { cat "$TMP/serve.err"; exit 1; }
wait_udp 3480

# uclient: 4 clients x 50 messages of 100 bytes, each echoed by turnutils_peer.
# Each case sends from its own loopback address: uclient leaves its UDP allocations to expire,
# and a later case whose ephemeral port happened to match one of them would share its 5-tuple
# and be refused (441 for another user, as RFC 8656 says), a flake that says nothing about us.
#
# uclient binds channel A to the peer's port + 1, then a fresh random channel B to the peer, on
# the same allocation. When its random draw gives B == A (1 in 16 384 per client, 4 clients per
# case, 7 channel cases), RFC 8656 §12.2 requires the 400 it gets, from coturn as from us. That
# case, and only that one, recognised by natter's reason phrase, is run once more and says so.
uclient_case=0
uclient() { # NAME ARGS...
    local name=$1
    shift
    local log="$TMP/uc-$name.log" note="" try
    for try in 1 2; do
        uclient_case=$((uclient_case + 1))
        timeout 60 turnutils_uclient "$@" -L "${LOCAL:-127.0.0.$((20 + uclient_case))}" \
            -e "${PEER:-127.0.0.1}" -r 3480 -n 50 -m 4 -l 100 "${HOST:-127.0.0.1}" >"$log" 2>&1
        if [ "$try" = 1 ] &&
            grep -q "channel bind: error 400 (Channel number already bound to another peer)" "$log"; then
            note=" (run twice: uclient drew one random channel number for two peers)"
            continue
        fi
        break
    done
    if grep -q "tot_send_msgs=200, tot_recv_msgs=200" "$log" &&
        grep -q "Total lost packets 0 (0.000000%)" "$log"; then
        ok "turnutils_uclient $name: 200/200 echoed, zero loss$note"
    else
        bad "turnutils_uclient $name$note" "$log"
    fi
}
uclient "udp channel" -u u -w p -p 3478
uclient "udp send-indication" -s -u u -w p -p 3478
uclient "tcp channel" -t -u u -w p -p 3478
uclient "tcp send-indication" -t -s -u u -w p -p 3478
uclient "tls channel" -t -S -u u -w p -p 5349
uclient "tls send-indication" -t -S -s -u u -w p -p 5349
LOCAL=::1 PEER=::1 HOST=::1 uclient "udp over IPv6 to an IPv6 relay" -u u -w p -p 3478 -x
uclient "udp REST secret" -W s3cret -u restuser -p 3478
uclient "tcp REST secret" -t -W s3cret -u restuser -p 3478
# RFC 6062 TCP relaying (-T: client-to-client pairs, one CONNECTs to the other's relayed
# address, which sees a ConnectionAttempt; both bind data connections), also over TLS.
# (-P, "passive", reports 200 sent / 100 received against coturn's own turnserver too.)
uclient "tcp relay (RFC 6062)" -T -u u -w p -p 3478
uclient "tcp relay (RFC 6062) over tls" -T -S -u u -w p -p 5349
# TURN over DTLS (RFC 7350): -S over UDP. Some uclient sessions try DTLS 1.0 first and are
# refused (natter speaks DTLS 1.2 only); they retry with 1.2.
uclient "dtls channel" -S -u u -w p -p 5349
uclient "dtls send-indication" -S -s -u u -w p -p 5349

log="$TMP/uc-wrong.log"
timeout 30 turnutils_uclient -u u -w wrong -e 127.0.0.1 -r 3480 -n 5 -m 1 -p 3478 127.0.0.1 >"$log" 2>&1
if grep -q "Cannot complete Allocation" "$log" &&
    grep -q "MESSAGE-INTEGRITY did not verify" "$TMP/serve.err"; then
    ok "wrong password refused, and the log says why"
else
    bad "wrong password refused" "$log"
fi

log="$TMP/stunclient.log"
timeout 20 turnutils_stunclient -p 3478 127.0.0.1 >"$log" 2>&1
if grep -Eq "UDP reflexive addr: 127\.0\.0\.1:[1-9][0-9]*" "$log"; then
    ok "turnutils_stunclient gets its mapped address"
else
    bad "turnutils_stunclient" "$log"
fi

log="$TMP/probe.log"
timeout 30 "$NATTER" stun probe stun:127.0.0.1:3478 --rto-ms 100 >"$log" 2>&1
if grep -Eq "^mapped 127\.0\.0\.1:[1-9]" "$log" && grep -q "^nat-type open internet" "$log" &&
    grep -q "^other-address 127.0.0.2:3479" "$log"; then
    ok "natter stun probe: RFC 5780 tests through natter's alternate address say open internet"
else
    bad "natter stun probe" "$log"
fi

metrics="$TMP/metrics.txt"
curl -s http://127.0.0.1:9641/metrics >"$metrics"
if grep -Eq "^natter_turn_relayed_packets_to_client_total [1-9]" "$metrics" &&
    grep -Eq "^natter_turn_auth_failures_total [1-9]" "$metrics" &&
    ! grep -q "restuser\|127.0.0.1" "$metrics"; then
    ok "/metrics counts relayed packets and auth failures, and names no user or address"
else
    bad "/metrics" "$metrics"
fi

# 10 000 live allocations on real sockets (natter-loadgen holds them until its stdin closes).
LOADGEN=${LOADGEN:-$(dirname "$NATTER")/natter-loadgen}
gauge() { curl -s http://127.0.0.1:9641/metrics | awk '$1 == "natter_turn_allocations" {print $2}'; }
if [ -x "$LOADGEN" ]; then
    before=$(gauge) # allocations other clients left to expire
    mkfifo "$TMP/hold"
    exec 7<>"$TMP/hold"
    # The loadgen reads the fifo read-only; fd 7 is the only writer, so closing it is its EOF.
    "$LOADGEN" allocate --server 127.0.0.1:3478 --user u:p --count 10000 --concurrency 64 --hold \
        --hold-max 120 <"$TMP/hold" >"$TMP/hold.log" 2>&1 &
    holder=$!
    if wait_for "$TMP/hold.log" "HOLDING 10000" 120 &&
        [ "$(gauge)" = $((before + 10000)) ]; then
        ok "10 000 live allocations held on real relay sockets"
    else
        bad "10 000 live allocations" "$TMP/hold.log"
    fi
    exec 7>&-
    wait "$holder"
    if grep -q "delete_failures=0" "$TMP/hold.log" &&
        [ "$(gauge)" = "$before" ]; then
        ok "all 10 000 deleted with Refresh(lifetime=0)"
    else
        bad "10 000 deletions" "$TMP/hold.log"
    fi
else
    bad "natter-loadgen not built at $LOADGEN"
fi

# natter's client against natter and against coturn.
turnserver -n --no-cli --listening-ip 127.0.0.1 --listening-port 3578 --relay-ip 127.0.0.1 \
    --min-port 40000 --max-port 40999 --lt-cred-mech --user u:p --realm natter \
    --allow-loopback-peers --no-tls --no-dtls --log-file stdout --simple-log \
    >"$TMP/coturn.log" 2>&1 &
PIDS+=($!)
wait_udp 3578
for target in "natter 3478" "coturn 3578"; do
    set -- $target
    for mode in "udp:" "tcp:" "udp:--send-indication"; do
        tr=${mode%%:*}
        extra=${mode#*:}
        log="$TMP/client-$1-$tr$extra.log"
        timeout 30 "$NATTER" turn allocate "turn:127.0.0.1:$2?transport=$tr" --user u:p \
            --peer 127.0.0.1:3480 --count 10 $extra >"$log" 2>&1
        if grep -q "^allocated relayed=127.0.0.1:" "$log" && grep -q "received 10 from" "$log" &&
            grep -q "^deleted" "$log"; then
            ok "natter turn allocate against $1 over $tr ${extra:-(channel)}: 10/10 echoed"
        else
            bad "natter turn allocate against $1 over $tr $extra" "$log"
        fi
    done
done

# natter's client over turns: (TLS) against natter's self-signed certificate: trusted with
# --ca (the name is checked: localhost), or with --insecure.
for trust in "--ca $TMP/data/natter-selfsigned.crt:localhost" "--insecure:127.0.0.1"; do
    host=${trust##*:}
    opt=${trust%:*}
    log="$TMP/client-turns-${opt%% *}.log"
    timeout 30 "$NATTER" turn allocate "turns:$host:5349" --user u:p --peer 127.0.0.1:3480 \
        --count 10 $opt >"$log" 2>&1
    if grep -q "^allocated relayed=127.0.0.1:" "$log" && grep -q "received 10 from" "$log"; then
        ok "natter turn allocate turns:$host ${opt%% *}: 10/10 echoed"
    else
        bad "natter turn allocate turns:$host ${opt%% *}" "$log"
    fi
done

# SIGHUP reloads the certificate; SIGTERM deletes every allocation before exit.
kill -HUP "$NATTER_PID"
if wait_for "$TMP/serve.err" "TLS certificate reloaded" 10; then
    ok "SIGHUP reloads the TLS certificate"
else
    bad "SIGHUP reload" "$TMP/serve.err"
fi
live=$(gauge)
kill -TERM "$NATTER_PID"
wait "$NATTER_PID" 2>/dev/null
deleted=$(grep -o 'deleted[^0-9]*[0-9]*' "$TMP/serve.err" | grep -o '[0-9]*$' | awk '{s+=$1} END {print s+0}')
if [ "$live" -gt 0 ] && [ "$deleted" = "$live" ]; then
    ok "SIGTERM deleted all $live live allocations before exit"
else
    bad "graceful shutdown (live=$live deleted=$deleted)" "$TMP/serve.err"
fi

summary
