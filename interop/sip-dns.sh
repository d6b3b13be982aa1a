#!/usr/bin/env bash
# SIP DNS interop (RFC 3263): natter serve's proxy locates next hops named by host names
# through a real DNS server (dnsmasq) with NAPTR, SRV and A records, fails over on 503,
# falls back to A records, and answers 478 for names that do not resolve.
# Usage: interop/sip-dns.sh [path/to/natter]   (default target/debug/natter)
# Everything runs in a private network namespace on 127.0.0.0/8; every wait is bounded.
set -uo pipefail
cd "$(dirname "$0")/.."
. interop/lib.sh
in_private_netns "$@"
NATTER=${1:-${NATTER:-target/debug/natter}}
HERE=$PWD/interop/sip
for t in sipp dnsmasq; do
    command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || { echo "missing $t (apt-get install sip-tester dnsmasq-base)"; exit 1; }
done
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)

# The zone: far.test has NAPTR -> SRV with two servers (priority 10 answers 503, priority 20
# answers 200); plain.test has only an A record; nowhere.test does not exist.
"$DNSMASQ" -k --conf-file=/dev/null --no-resolv --no-hosts --no-poll --user=root \
    --listen-address=127.0.0.53 --bind-interfaces --port=53 --log-queries --log-facility="$TMP/dns.log" \
    --naptr-record=far.test,10,10,s,SIP+D2U,,_sip._udp.far.test \
    --srv-host=_sip._udp.far.test,sip1.far.test,5070,10,0 \
    --srv-host=_sip._udp.far.test,sip2.far.test,5080,20,0 \
    --host-record=sip1.far.test,127.0.0.11 --host-record=sip2.far.test,127.0.0.12 \
    --host-record=plain.test,127.0.0.13 >"$TMP/dnsmasq.out" 2>&1 &
PIDS+=($!)
timeout 10 bash -c "until ss -Hunl | grep -q '127.0.0.53:53 '; do sleep 0.05; done" \
    || { cat "$TMP/dnsmasq.out"; echo "dnsmasq did not start"; exit 1; }

"$NATTER" serve --turn-listen 127.0.0.1:3478 --sip-listen 127.0.0.1:5060 --no-sip-auth --no-tls \
    --sip-domain natter.test --dns-server 127.0.0.53:53 --data-dir "$TMP/data" \
    >"$TMP/serve.out" 2>"$TMP/serve.err" &
PIDS+=($!)
wait_for "$TMP/serve.out" "natter: sip" 20 || { cat "$TMP/serve.err"; exit 1; }

COMMON=(-nostdin -timeout 20s -timeout_error -default_behaviors all,-abortunexp)
sipp -sf "$HERE/uas-503.xml" -i 127.0.0.11 -p 5070 -m 1 "${COMMON[@]}" -trace_msg -message_file "$TMP/uas1.msg" >"$TMP/uas1.out" 2>&1 &
UAS1=$!; PIDS+=($UAS1)
sipp -sn uas -i 127.0.0.12 -p 5080 -m 1 "${COMMON[@]}" -trace_msg -message_file "$TMP/uas2.msg" >"$TMP/uas2.out" 2>&1 &
UAS2=$!; PIDS+=($UAS2)
sipp -sn uas -i 127.0.0.13 -p 5060 -m 1 "${COMMON[@]}" -trace_msg -message_file "$TMP/uas3.msg" >"$TMP/uas3.out" 2>&1 &
UAS3=$!; PIDS+=($UAS3)
wait_udp 5070 && wait_udp 5080 || { echo "SIPp servers did not start"; exit 1; }
timeout 10 bash -c "until ss -Hunl | grep -q '127.0.0.13:5060 '; do sleep 0.05; done"

# 1. NAPTR -> SRV -> A, first server 503, second answers: the call succeeds through the second.
check "call to sip:svc@far.test: NAPTR/SRV located, 503 from priority 10 fails over to priority 20" \
    "$TMP/uac1.out" timeout 30 sipp 127.0.0.1:5060 -sf "$HERE/uac-named.xml" -s svc -key domain far.test \
    -i 127.0.0.1 -p 25060 -m 1 "${COMMON[@]}"
if grep -q "INVITE sip:svc@far.test" "$TMP/uas1.msg" 2>/dev/null && grep -q "INVITE sip:svc@far.test" "$TMP/uas2.msg" 2>/dev/null; then
    ok "the INVITE reached sip1 (127.0.0.11:5070) first, then sip2 (127.0.0.12:5080)"
else
    bad "INVITE did not reach both SRV targets" "$TMP/serve.err"
fi
if grep -q "query\[NAPTR\] far.test" "$TMP/dns.log" && grep -q "query\[SRV\] _sip._udp.far.test" "$TMP/dns.log"; then
    ok "the proxy asked dnsmasq NAPTR far.test, then SRV _sip._udp.far.test"
else
    bad "expected NAPTR and SRV queries in the DNS log" "$TMP/dns.log"
fi

# 2. No NAPTR, no SRV: the A record with the default port.
check "call to sip:svc@plain.test: no NAPTR/SRV, A record 127.0.0.13 port 5060" \
    "$TMP/uac2.out" timeout 30 sipp 127.0.0.1:5060 -sf "$HERE/uac-named.xml" -s svc -key domain plain.test \
    -i 127.0.0.1 -p 25062 -m 1 "${COMMON[@]}"

# 3. A name that does not exist: a final 478, not silence.
timeout 20 "$NATTER" sip options sip:svc@nowhere.test --server 127.0.0.1:5060 --bind 127.0.0.1:0 \
    >"$TMP/opt.out" 2>&1
if grep -q "SIP/2.0 478" "$TMP/opt.out"; then
    ok "OPTIONS to sip:svc@nowhere.test answered 478 Unresolvable destination"
else
    bad "no 478 for an unresolvable name" "$TMP/opt.out"
fi

for p in $UAS1 $UAS2 $UAS3; do timeout 10 bash -c "while kill -0 $p 2>/dev/null; do sleep 0.05; done"; done
summary
