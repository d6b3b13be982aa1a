#!/usr/bin/env bash
# A headless linphonec (Debian package linphone-cli, 5.1) as a SIP peer for interop tests: no sound
# card ("soundcard use files"), a WAV as its microphone ("play", looped by linphone) and what it
# plays out written to a WAV ("record"), on 127.0.0.1 only.
#
#   lp-peer.sh DIR --port 25090 --rtp 26300 --wav IN.wav --rec OUT.wav \
#              (--answer | --call sip:x@127.0.0.1:25062) [--seconds 12]
#
# --answer: auto-answer (-a) incoming calls; --call: dial at start. The call is terminated after
# --seconds at the latest, and linphonec quits as soon as a call has ended (or after --seconds),
# so every run is bounded. Runs in the foreground (add & and keep $!). Log: DIR/out.
# HOME points into DIR so nothing lands in the real home directory.
set -u
dir=$1
shift
port=25090 rtp=26300 wav= rec= mode= uri= secs=12
while [ $# -gt 0 ]; do
    case $1 in
        --port) port=$2; shift 2 ;;
        --rtp) rtp=$2; shift 2 ;;
        --wav) wav=$2; shift 2 ;;
        --rec) rec=$2; shift 2 ;;
        --answer) mode=answer; shift ;;
        --call) mode=call; uri=$2; shift 2 ;;
        --seconds) secs=$2; shift 2 ;;
        *) echo "lp-peer: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$wav" ] && [ -n "$rec" ] && [ -n "$mode" ] || { echo "lp-peer: need --wav, --rec and --answer or --call" >&2; exit 2; }
mkdir -p "$dir/home/.local/share/linphone"
dir=$(cd "$dir" && pwd)
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
wav=$(abs "$wav")
rec=$(abs "$rec")
rm -f "$rec" # linphonec's record appends to an existing file
# linphonec rewrites its config on exit: write it fresh every run.
# - [sip] bind_address/contact and [rtp] bind_address keep SIP, RTP and the SDP c= line on
#   127.0.0.1 (without the [rtp] one it binds 0.0.0.0 and advertises another interface);
# - use_ipv6=0 only sticks together with ipv6_migration_done=1 (else it offers c=IN IP6);
# - the default SIP port is 5060 on every address, and TCP/TLS listeners are on: turn them off.
cat >"$dir/rc" <<RC
[sip]
sip_port=$port
sip_tcp_port=-1
sip_tls_port=-1
bind_address=127.0.0.1
contact=sip:linphone@127.0.0.1:$port
guess_hostname=0
register_only_when_network_is_up=0
ipv6_migration_done=1
use_ipv6=0
[rtp]
bind_address=127.0.0.1
audio_rtp_port=$rtp
video_rtp_port=$((rtp + 10))
text_rtp_port=$((rtp + 20))
[video]
capture=0
display=0
RC
opt=
[ "$mode" = answer ] && opt=-a
: >"$dir/out"
# Commands go in through a pipe; the feeder watches linphonec's output to quit early once the
# call is over ("Call N with <...> ended").
{
    printf 'soundcard use files\nplay %s\nrecord %s\n' "$wav" "$rec"
    [ "$mode" = call ] && printf 'call %s\n' "$uri"
    end=$((SECONDS + secs))
    while [ $SECONDS -lt $end ] && ! grep -Eq 'Call [0-9]+ .*(ended|error)|Call declined|not found' "$dir/out"; do
        sleep 0.2
    done
    printf 'terminate all\n'
    sleep 1
    printf 'quit\n'
    sleep 2
} | HOME=$dir/home timeout $((secs + 15)) linphonec -c "$dir/rc" $opt -d 0 >>"$dir/out" 2>&1
