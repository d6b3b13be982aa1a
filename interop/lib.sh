# Shared helpers for interop scripts: pass/fail counting, process cleanup, readiness waits.
# Sourced, not run. Each script re-executes itself in a private network namespace, so ports
# never collide with anything on the host and no packet leaves it.

in_private_netns() {
    if [ -z "${NATTER_IN_NETNS:-}" ]; then
        if unshare -n true 2>/dev/null; then
            exec unshare -n env NATTER_IN_NETNS=1 "$0" "$@"
        fi
        echo "note: cannot create a network namespace (not root?); using the host's loopback" >&2
        export NATTER_IN_NETNS=0
    else
        ip link set lo up
    fi
}

PASS=0
FAIL=0
PIDS=()
TMP=$(mktemp -d)

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "${KEEP_LOGS:-}" ]; then echo "logs kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

ok() { echo "ok   $1"; PASS=$((PASS + 1)); }
bad() { echo "FAIL $1"; FAIL=$((FAIL + 1)); [ -n "${2:-}" ] && sed 's/^/     | /' "$2" | tail -20; return 0; }

# check NAME LOGFILE CMD...: runs CMD with output to LOGFILE; passes when it exits 0.
check() {
    local name=$1 log=$2
    shift 2
    if "$@" >"$log" 2>&1; then ok "$name"; else bad "$name" "$log"; fi
}

# wait_for FILE PATTERN [SECONDS]: bounded wait for a readiness line a server prints.
wait_for() {
    local f=$1 pat=$2 secs=${3:-30}
    timeout "$secs" bash -c "until grep -q -- \"$pat\" \"$f\" 2>/dev/null; do sleep 0.05; done"
}

# wait_udp PORT [SECONDS]: bounded wait until something listens on UDP PORT.
wait_udp() {
    local port=$1 secs=${2:-10}
    timeout "$secs" bash -c "until ss -Hunl | grep -q ':$port '; do sleep 0.05; done"
}

summary() {
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
}
