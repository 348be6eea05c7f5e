# testlib.sh: tiny assertion helpers for shell integration tests (sourced).
# Each check prints "ok - NAME" or "not ok - NAME"; t_finish prints the totals
# and returns non-zero when anything failed.

T_PASS=0
T_FAIL=0

t_ok() { T_PASS=$((T_PASS + 1)); echo "ok - $1"; }
t_fail() { T_FAIL=$((T_FAIL + 1)); echo "not ok - $1${2:+ ($2)}"; }

# t_eq NAME ACTUAL EXPECTED
t_eq() {
    if [ "$2" = "$3" ]; then t_ok "$1"; else t_fail "$1" "got '$2', expected '$3'"; fi
}
# t_true NAME COMMAND...
t_true() {
    local name=$1; shift
    if "$@"; then t_ok "$name"; else t_fail "$name"; fi
}
# t_contains NAME HAYSTACK NEEDLE
t_contains() {
    case "$2" in *"$3"*) t_ok "$1" ;; *) t_fail "$1" "'$3' not in '$2'" ;; esac
}
t_not_contains() {
    case "$2" in *"$3"*) t_fail "$1" "'$3' found" ;; *) t_ok "$1" ;; esac
}

# req CURLFN METHOD URL [curl args...]: sets STATUS, BODY, HDRS (headers text).
req() {
    local fn=$1 method=$2 url=$3
    shift 3
    local tmpb tmph
    tmpb=$(mktemp) tmph=$(mktemp)
    STATUS=$("$fn" -s -o "$tmpb" -D "$tmph" -w '%{http_code}' -X "$method" "$@" "$url" 2>/dev/null) || true
    BODY=$(cat "$tmpb")
    HDRS=$(tr -d '\r' <"$tmph")
    rm -f "$tmpb" "$tmph"
}

# header NAME: value of a response header from the last req (case-insensitive).
header() { printf '%s\n' "$HDRS" | awk -v n="$(echo "$1" | tr 'A-Z' 'a-z')" -F': ' 'tolower($1)==n {print $2}' | tail -1; }

t_finish() {
    echo "$T_PASS passed, $T_FAIL failed"
    [ "$T_FAIL" -eq 0 ]
}

# t_watchdog SECONDS: ends this test (its EXIT trap still runs) if it is still
# running after SECONDS. The sleeper holds none of the test's output open, so
# CTest does not wait for it; t_watchdog_stop disarms and ends it (the flag
# file makes a late wake-up harmless). SECONDS is multiplied by
# CONFIDOC_TEST_TIME_SCALE (a whole number, default 1), which the slower
# ThreadSanitizer build sets, with the CTest timeouts (tests/CMakeLists.txt).
t_watchdog() {
    local me=$$ secs=$(($1 * ${CONFIDOC_TEST_TIME_SCALE:-1}))
    T_WATCHDOG_FLAG=$(mktemp)
    rm -f "$T_WATCHDOG_FLAG"
    trap 'echo "not ok - the test timed out"; exit 1' TERM
    ( sleep "$secs"; [ -e "$T_WATCHDOG_FLAG" ] || kill -TERM "$me" ) </dev/null >/dev/null 2>&1 &
    T_WATCHDOG=$!
}
t_watchdog_stop() {
    [ -n "${T_WATCHDOG:-}" ] || return 0
    : >"$T_WATCHDOG_FLAG"
    pkill -P "$T_WATCHDOG" sleep 2>/dev/null
    wait "$T_WATCHDOG" 2>/dev/null
    rm -f "$T_WATCHDOG_FLAG"
    T_WATCHDOG=
}
