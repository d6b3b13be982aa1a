#!/usr/bin/env bash
# `natter phone` against two more independent SIP peers, in a private network namespace, direct
# calls (sip:IP:PORT, no registrar), audio checked with tone patterns (interop/phone/tones.py):
#  - linphonec (Linphone's console client, headless: WAV in, WAV out) calls natter (--answer
#    --once), and natter calls linphonec (auto-answer); PCMU and PCMA; each side's recording
#    must carry the other side's tones;
#  - SIPp as UAC streaming a mu-law file (rtp_stream) into natter --answer: natter's recording
#    must carry SIPp's tones;
#  - natter calls a SIPp UAS with -rtp_echo: natter's recording must carry its own tones.
# Needs (Debian): linphone-cli sip-tester sox python3-numpy. Installs nothing itself.
# Usage: interop/phone-peers.sh [path/to/natter]   (default target/debug/natter)
#        ONLY=REGEX runs the matching cases; KEEP_LOGS=1 keeps the temporary directory.
set -uo pipefail
cd "$(dirname "$0")/.."
. interop/lib.sh
in_private_netns "$@"
rmdir "$TMP" && TMP=$(mktemp -d -t natter-phone-peers.XXXXXX)
NATTER=${1:-${NATTER:-target/debug/natter}}
HERE=interop/phone-peers
PY=/usr/bin/python3
TONES="$PY interop/phone/tones.py"
FREQS_P=600,1200,800,1500,500,900,1100,350
for t in linphonec sipp sox; do
    command -v "$t" >/dev/null || { echo "missing $t (apt-get install linphone-cli sip-tester sox)"; exit 1; }
done
$PY -c 'import numpy' 2>/dev/null || { echo "missing numpy (apt-get install python3-numpy)"; exit 1; }
[ -x "$NATTER" ] || { echo "no natter binary at $NATTER"; exit 1; }

# Ports (all below 32768): natter SIP 25062 (RTP from its own range), linphonec SIP 25090 and
# RTP 26300, SIPp SIP 25070 and media 26000 (+2).
NAT=127.0.0.1:25062
# 500 ms tones: the checker labels 50 ms blocks, and a recording whose adaptive jitter buffer sits
# 25 ms off that grid makes one block per tone ambiguous (250 ms tones then match only ~0.9).
SEG=(--seg-ms 500)
$TONES gen "$TMP/n30.wav" --seconds 30 "${SEG[@]}"               # natter's tones
$TONES gen "$TMP/p30.wav" --seconds 30 "${SEG[@]}" --freqs $FREQS_P # the peer's tones
$TONES gen "$TMP/p8.wav" --seconds 8 "${SEG[@]}" --freqs $FREQS_P
sox -D "$TMP/p8.wav" -r 8000 -c 1 -t ul "$TMP/tx.ul"   # SIPp's rtp_stream wants raw mu-law

# audio_ok NAME REF GOT [FREQS]
audio_ok() {
    local r
    if [ -s "$3" ] && r=$($TONES check "$2" "$3" ${4:+--freqs $4}); then ok "$1 ($r)"; else bad "$1 (${r:-no recording $3})"; fi
}
# phone_ok NAME OUT RC CODEC: natter's stdout contract, exit 0, and media actually received.
phone_ok() {
    local est last rx
    est=$(grep -a '^established' "$2" | tail -1)
    last=$(tail -n1 "$2")
    rx=$(sed -n 's/.* rx_packets=\([0-9]*\).*/\1/p' <<<"$last")
    if [ "$3" = 0 ] && [[ $est == *"codec=$4"* ]] && [[ $est == *"srtp=off ice=none"* ]] &&
        grep -aq '^ended reason=' "$2" && [[ $last == stats\ tx_packets=* ]] && [ "${rx:-0}" -ge 200 ]; then
        ok "$1: $est | $last"
    else
        bad "$1: rc=$3, expected codec=$4 and >= 200 packets received" "$2"
        sed 's/^/     | err: /' "${2%.out}.err" | tail -5
    fi
}
# lp_ok NAME DIR: linphonec saw the call connect and end.
lp_ok() {
    if grep -aq 'Call [0-9]* .* connected' "$2/out" && grep -aq 'Call [0-9]* .* ended' "$2/out"; then
        ok "$1: linphonec: $(grep -a 'Call [0-9]* .* ended' "$2/out" | head -1)"
    else
        bad "$1: linphonec did not report a connected and ended call" "$2/out"
    fi
}
# sipp_ok NAME DIR RC: SIPp exited 0 by itself and counted one successful call, none failed.
sipp_ok() {
    local succ
    succ=$($PY -c 'import csv,sys;r=list(csv.reader(open(sys.argv[1]),delimiter=";"));print(r[-1][r[0].index("SuccessfulCall(C)")]+"/"+r[-1][r[0].index("FailedCall(C)")])' "$2/stat.csv" 2>/dev/null)
    if [ "$3" = 0 ] && [ "$succ" = 1/0 ]; then
        ok "$1: SIPp: 1 successful call, exit 0"
    else
        bad "$1: SIPp exit $3, successful/failed calls ${succ:-unknown}" "$2/sipp.out"
        [ -s "$2"/*_errors.log ] && sed 's/^/     | /' "$2"/*_errors.log | tail -5
    fi
}
nat_stop() { # PID: bounded wait for natter, then end it; returns its exit status
    timeout 20 bash -c "while kill -0 $1 2>/dev/null; do sleep 0.1; done"
    kill "$1" 2>/dev/null
    wait "$1"
}

# --- linphonec calls natter (natter --answer --once); linphonec hangs up after 7 s -----------------
lp_in() {
    [[ $1 =~ ${ONLY:-.} ]] || return 0
    local name=$1 codec=$2 d=$TMP/$1
    mkdir -p "$d"
    timeout 40 "$NATTER" phone --listen $NAT --answer --once --codec "$codec" --play "$TMP/n30.wav" \
        --record "$d/natter.wav" >"$d/natter.out" 2>"$d/natter.err" &
    local np=$!
    PIDS+=($np)
    wait_udp 25062 10 || bad "$name: natter did not listen on 25062" "$d/natter.err"
    timeout 40 $HERE/lp-peer.sh "$d/lp" --port 25090 --rtp 26300 --wav "$TMP/p30.wav" --rec "$d/lp.wav" \
        --call sip:alice@$NAT --seconds 7
    nat_stop $np
    local rc=$?
    phone_ok "$name" "$d/natter.out" $rc "$codec"
    lp_ok "$name" "$d/lp"
    audio_ok "$name: natter -> linphonec audio" "$TMP/n30.wav" "$d/lp.wav"
    audio_ok "$name: linphonec -> natter audio" "$TMP/p30.wav" "$d/natter.wav" $FREQS_P
}

# --- natter calls linphonec (auto-answer), hangs up after 6 s ---------------------------------------
lp_out() {
    [[ $1 =~ ${ONLY:-.} ]] || return 0
    local name=$1 codec=$2 d=$TMP/$1
    mkdir -p "$d"
    timeout 40 $HERE/lp-peer.sh "$d/lp" --port 25090 --rtp 26300 --wav "$TMP/p30.wav" --rec "$d/lp.wav" \
        --answer --seconds 15 &
    local lp=$!
    PIDS+=($lp)
    wait_udp 25090 10 || bad "$name: linphonec did not listen on 25090" "$d/lp/out"
    timeout 30 "$NATTER" phone --listen $NAT --codec "$codec" --play "$TMP/n30.wav" --record "$d/natter.wav" \
        --call sip:carol@127.0.0.1:25090 --duration 6 >"$d/natter.out" 2>"$d/natter.err"
    local rc=$?
    timeout 20 bash -c "while kill -0 $lp 2>/dev/null; do sleep 0.1; done"
    kill $lp 2>/dev/null
    wait $lp
    phone_ok "$name" "$d/natter.out" $rc "$codec"
    grep -aq '^ringing' "$d/natter.out" || bad "$name: natter printed no 'ringing' line" "$d/natter.out"
    lp_ok "$name" "$d/lp"
    audio_ok "$name: natter -> linphonec audio" "$TMP/n30.wav" "$d/lp.wav"
    audio_ok "$name: linphonec -> natter audio" "$TMP/p30.wav" "$d/natter.wav" $FREQS_P
}

lp_in linphone-in-pcmu PCMU
lp_out linphone-out-pcmu PCMU
lp_in linphone-in-pcma PCMA
lp_out linphone-out-pcma PCMA

SIPP=(-i 127.0.0.1 -ci 127.0.0.1 -mi 127.0.0.1 -mp 26000 -p 25070 -m 1 -nostdin -timeout 30s -timeout_error
    -trace_err -trace_stat -stf stat.csv)

# --- SIPp UAC streams tones (rtp_stream, 8 s) into natter --answer --once ---------------------------
if [[ sipp-rtpstream =~ ${ONLY:-.} ]]; then
    d=$TMP/sipp-rtpstream
    mkdir -p "$d"
    cp "$HERE/uac-rtpstream.xml" "$TMP/tx.ul" "$d/"
    timeout 40 "$NATTER" phone --listen $NAT --answer --once --codec PCMU --play "$TMP/n30.wav" \
        --record "$d/natter.wav" >"$d/natter.out" 2>"$d/natter.err" &
    NP=$!
    PIDS+=($NP)
    wait_udp 25062 10 || bad "sipp-rtpstream: natter did not listen on 25062" "$d/natter.err"
    (cd "$d" && timeout 40 sipp -sf uac-rtpstream.xml 127.0.0.1:25062 -s alice "${SIPP[@]}" -d 8500 \
        >sipp.out 2>&1)
    src=$?
    nat_stop $NP
    rc=$?
    sipp_ok sipp-rtpstream "$d" $src
    phone_ok sipp-rtpstream "$d/natter.out" $rc PCMU
    audio_ok "sipp-rtpstream: SIPp rtp_stream -> natter audio" "$TMP/p8.wav" "$d/natter.wav" $FREQS_P
fi

# --- natter calls a SIPp UAS that echoes RTP; natter hears its own tones ----------------------------
if [[ sipp-echo =~ ${ONLY:-.} ]]; then
    d=$TMP/sipp-echo
    mkdir -p "$d"
    (cd "$d" && exec timeout 40 sipp -sf "$OLDPWD/$HERE/uas-echo.xml" "${SIPP[@]}" -rtp_echo >sipp.out 2>&1) &
    SP=$!
    PIDS+=($SP)
    wait_udp 25070 10 || bad "sipp-echo: SIPp did not listen on 25070" "$d/sipp.out"
    timeout 30 "$NATTER" phone --listen $NAT --codec PCMU --play "$TMP/n30.wav" --record "$d/natter.wav" \
        --call sip:echo@127.0.0.1:25070 --duration 6 >"$d/natter.out" 2>"$d/natter.err"
    rc=$?
    src=stuck
    if timeout 20 bash -c "while kill -0 $SP 2>/dev/null; do sleep 0.1; done"; then
        wait $SP
        src=$?
    else
        kill $SP 2>/dev/null
        wait $SP
    fi
    sipp_ok sipp-echo "$d" $src
    phone_ok sipp-echo "$d/natter.out" $rc PCMU
    audio_ok "sipp-echo: natter -> SIPp -> natter audio (echo)" "$TMP/n30.wav" "$d/natter.wav"
fi

summary
