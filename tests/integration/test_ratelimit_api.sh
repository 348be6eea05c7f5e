#!/usr/bin/env bash
# test_ratelimit_api.sh: rate limiting of confidoc-api with a real memcached
# over mutual TLS: the 11th request, trusted and untrusted X-Real-IP, IPv6 /64,
# exactly-N under 50 parallel requests, per-account failed-login blocking,
# memcached outage and return, and what memcached holds.
set -uo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/tests/lib/testlib.sh"
. "$SRC/tests/lib/certs.sh"
. "$SRC/tests/lib/mariadb.sh"
. "$SRC/tests/lib/memcached.sh"
. "$SRC/tests/lib/api.sh"

WORK=$(mktemp -d /tmp/confidoc-rl-test.XXXXXX)
chmod 755 "$WORK"
cleanup() {
    api_kill
    memcached_stop "$WORK/mc" >/dev/null 2>&1
    mariadb_stop "$WORK/db" >/dev/null 2>&1
    rm -rf "$WORK"
}
t_watchdog 280
trap 't_watchdog_stop; cleanup' EXIT

certs_make "$WORK/certs" || exit 1
C=$WORK/certs
mariadb_start "$WORK/db" "$C" || exit 1
memcached_start "$WORK/mc" "$C" || exit 1
# memcached_(connect_)timeout_ms: these checks count exactly with memcached reachable; a
# sanitizer build on two loaded cores can miss the default 50 ms, which is an
# outage by design (fallback), not what is tested here.
api_start "$WORK/api" "$C" \
    "memcached_servers = 127.0.0.1:$MEMCACHED_PORT" "memcached_timeout_ms = 1000" \
    "memcached_connect_timeout_ms = 3000" \
    "memcached_tls_ca = $C/ca.crt" "memcached_tls_cert = $C/mc-client.crt" \
    "memcached_tls_key = $C/mc-client.key" \
    "rate_limit = 10" "rate_window = 60" \
    "login_fail_limit = 3" "login_block_base = 2" "login_block_max = 8" || exit 1
U=$API_URL

other_curl() {
    curl --max-time 30 --cacert "$C/ca.crt" --cert "$C/other.crt" --key "$C/other.key" "$@"
}
# status_of IP [curl args]: the status of GET /users/me as the proxy says IP.
status_of() {
    local ip=$1
    shift
    api_curl -s -o /dev/null -w '%{http_code}' -H "X-Real-IP: $ip" "$@" "$U/users/me"
}

# Windows are aligned to the clock (docs/internals/ratelimit.md): a sequence
# that must fall in one window starts early in a window.
fresh_window() {
    local s=$(( $(date +%s) % 60 ))
    if [ "$s" -gt 40 ]; then sleep $((61 - s)); fi
}

# An account for the login tests (created from its own address).
api_curl -s -o /dev/null -H "X-Real-IP: 192.0.2.200" -u bobross:password123 "$U/users/create_account"

echo "# the 11th request in the window"
fresh_window
codes=""
for i in $(seq 1 10); do codes="$codes $(status_of 198.51.100.1 -u bobross:password123)"; done
t_eq "10 requests pass" "$codes" "$(printf ' 200%.0s' $(seq 1 10))"
req api_curl GET "$U/users/me" -H "X-Real-IP: 198.51.100.1" -u bobross:password123
t_eq "the 11th is 429" "$STATUS" 429
t_eq "429 detail" "$(jq -r .detail <<<"$BODY")" "Requests exceed more than 10 requests in the last minute"
RA=$(header Retry-After)
t_true "Retry-After is within the window ($RA)" test "${RA:-0}" -ge 1 -a "${RA:-0}" -le 60
t_eq "another address still passes" "$(status_of 198.51.100.2 -u bobross:password123)" 200
t_eq "healthz is never limited" "$(api_curl -s -o /dev/null -w '%{http_code}' -H 'X-Real-IP: 198.51.100.1' "$U/healthz")" 200
t_eq "readyz is never limited" "$(api_curl -s -o /dev/null -w '%{http_code}' -H 'X-Real-IP: 198.51.100.1' "$U/readyz")" 200
t_eq "limiting runs before authentication" "$(status_of 198.51.100.1)" 429
t_eq "an IPv4-mapped address counts as IPv4" "$(status_of ::ffff:198.51.100.1)" 429

echo "# X-Real-IP from an untrusted client is ignored"
fresh_window
codes=""
for i in $(seq 1 10); do
    codes="$codes $(other_curl -s -o /dev/null -w '%{http_code}' -H "X-Real-IP: 203.0.113.$i" "$U/users/me")"
done
t_eq "10 untrusted requests with varying X-Real-IP pass" "$codes" "$(printf ' 401%.0s' $(seq 1 10))"
t_eq "the 11th is 429 whatever X-Real-IP says" \
    "$(other_curl -s -o /dev/null -w '%{http_code}' -H 'X-Real-IP: 203.0.113.99' "$U/users/me")" 429

echo "# IPv6 clients count per /64"
fresh_window
for i in $(seq 1 10); do status_of "2001:db8:1:1::$i" >/dev/null; done
t_eq "another address in the same /64 is limited" "$(status_of 2001:db8:1:1:ffff::1)" 429
t_eq "the next /64 is not" "$(status_of 2001:db8:1:2::1)" 401

echo "# exactly N of 50 parallel requests"
seq 1 50 | xargs -P 50 -I{} curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 \
    --cacert "$C/ca.crt" --cert "$C/proxy.crt" --key "$C/proxy.key" \
    -H "X-Real-IP: 198.51.100.50" "$U/healthz?x={}" >/dev/null
# (healthz is not counted; now the real run on a counted route)
fresh_window
seq 1 50 | xargs -P 50 -I{} curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 \
    --cacert "$C/ca.crt" --cert "$C/proxy.crt" --key "$C/proxy.key" \
    -H "X-Real-IP: 198.51.100.51" "$U/users/me" >"$WORK/par.txt"
echo "# statuses: $(sort "$WORK/par.txt" | uniq -c | tr '\n' ' ')"
t_eq "50 parallel: 10 pass" "$(grep -c 401 "$WORK/par.txt")" 10
t_eq "50 parallel: 40 are 429" "$(grep -c 429 "$WORK/par.txt")" 40

echo "# failed logins block the account, from any address"
# victim has never logged in, so no verified credential of it is cached.
api_curl -s -o /dev/null -H "X-Real-IP: 192.0.2.201" -u victim:victimpassword "$U/users/create_account"
for i in 1 2 3; do
    t_eq "wrong password $i is 401" "$(status_of "192.0.2.$i" -u victim:wrongpass$i)" 401
done
req api_curl GET "$U/users/me" -H "X-Real-IP: 192.0.2.9" -u victim:victimpassword
t_eq "then even the right password is refused" "$STATUS" 429
t_true "with a Retry-After" test -n "$(header Retry-After)"
t_eq "the 429 does not say whether the account exists" "$(jq -r .detail <<<"$BODY")" \
    "Too many failed logins for this account; try again later"
for i in 1 2 3; do status_of "192.0.2.$((10 + i))" -u ghost-user:wrongpass$i >/dev/null; done
req api_curl GET "$U/users/me" -H "X-Real-IP: 192.0.2.20" -u ghost-user:wrongpass
t_eq "an unknown account blocks the same way" "$STATUS" 429
t_eq "with the same answer" "$(jq -r .detail <<<"$BODY")" \
    "Too many failed logins for this account; try again later"
# bobross verified his password before; a request with already-verified
# credentials is not a guess and is served (docs/security.md).
for i in 1 2 3; do status_of "192.0.2.$((30 + i))" -u bobross:wrongpass$i >/dev/null; done
t_eq "a session with verified credentials continues" "$(status_of 192.0.2.34 -u bobross:password123)" 200
sleep 3
# (the refused attempt above, made during the block, did not lengthen it)
t_eq "after the block the right password works" "$(status_of 192.0.2.21 -u victim:victimpassword)" 200
t_eq "and a success resets the count" "$(status_of 192.0.2.22 -u victim:wrongagain)" 401
t_eq "one failure after a reset does not block" "$(status_of 192.0.2.23 -u victim:victimpassword)" 200
t_contains "failed logins are logged" "$(cat "$API_LOG")" "authentication failed"
# Each such line names its request (issue 10: the run-time log line carries
# the request id), and the same id is on that request's access log line.
req=$(grep -oE "req=[0-9a-f]{16} authentication failed" "$API_LOG" | head -1 | cut -c5-20)
t_true "a failed login's log line names its request id" test -n "$req"
t_true "the access log line of that request has the same id" \
    grep -qE "req=$req .*401|$req.* 401" "$API_LOG"
t_not_contains "no failed login is logged without its request" "$(cat "$API_LOG")" \
    "req=- authentication failed"

echo "# what memcached holds"
memcached_tls_cmd "$WORK/mc" "lru_crawler metadump all" >"$WORK/dump.txt" 2>/dev/null
t_true "the metadump lists keys" grep -q "key=" "$WORK/dump.txt"
for needle in 198.51.100 203.0.113 2001:db8 c63364 cb0071 20010db8 bobross victim ghost-user; do
    t_true "no '$needle' in memcached" bash -c "! grep -aqi '$needle' '$WORK/dump.txt'"
done

echo "# memcached down and back"
memcached_stop "$WORK/mc"
codes=""
for i in $(seq 1 11); do codes="$codes $(status_of 198.51.100.77)"; done
t_eq "limiting continues in-process" "${codes##* }" 429
t_contains "readyz reports the fallback" "$(api_curl -s "$U/readyz")" "in-process"
t_contains "the outage is logged" "$(cat "$API_LOG")" "memcached"
memcached_restart "$WORK/mc" || exit 1
back=no
for _ in $(seq 1 40); do
    status_of "198.51.100.$((RANDOM % 50 + 100))" >/dev/null
    if api_curl -s "$U/readyz" | grep -q '"rate_limiter":"memcached"'; then back=yes; break; fi
    sleep 0.5
done
t_eq "back to memcached when it returns" "$back" yes

api_stop
t_not_contains "the log holds no client address" "$(cat "$API_LOG")" "198.51.100"
t_not_contains "the log holds no password" "$(cat "$API_LOG")" "password123"
t_finish
