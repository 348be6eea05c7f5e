#!/usr/bin/env bash
# test_ratelimit.sh: the rate limiter against two real memcached servers with
# mutual TLS: exact counting under concurrency, windows, key scheme, failed
# logins, outage and recovery, refusal of certificate-less clients, and no
# client address in memcached's keys.
set -euo pipefail

SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${CONFIDOC_BUILD_DIR:-$SRC/build}
PROG=$BUILD/tests/prog_ratelimit
# shellcheck source=../lib/certs.sh
source "$SRC/tests/lib/certs.sh"
# shellcheck source=../lib/memcached.sh
source "$SRC/tests/lib/memcached.sh"

T=$(mktemp -d /tmp/confidoc-rl.XXXXXX)
PROG_PID=
cleanup() {
    set +e
    [ -n "$PROG_PID" ] && kill "$PROG_PID" 2>/dev/null
    memcached_stop "$T/mc1"
    memcached_stop "$T/mc2"
    rm -rf "$T"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

certs_make "$T/certs"
C=$T/certs
memcached_start "$T/mc1" "$C" || fail "memcached 1 did not start"
P1=$MEMCACHED_PORT
memcached_start "$T/mc2" "$C" || fail "memcached 2 did not start"
P2=$MEMCACHED_PORT

echo "== exactly limit of 50 parallel hits pass (server verified by IP SAN)"
timeout 60 "$PROG" "$C" "127.0.0.1:$P1" exact
echo "== leases: exactly the limit passes with far fewer increments than requests"
incr_count() { # memcached's count of increments (meta arithmetic included)
    memcached_tls_cmd "$T/mc1" stats | tr -d '\r' |
        awk '$2 == "incr_hits" || $2 == "incr_misses" { n += $3 } END { print n + 0 }'
}
before=$(incr_count)
timeout 60 "$PROG" "$C" "127.0.0.1:$P1" lease one
after=$(incr_count)
echo "increments for 6402 requests: $((after - before))"
[ $((after - before)) -ge 10 ] && [ $((after - before)) -le 200 ] ||
    fail "leases: $((after - before)) increments for 6402 requests (expected 10..200)"
echo "== leases: two instances never pass more than the limit together"
timeout 60 "$PROG" "$C" "127.0.0.1:$P1" lease two
echo "== window expiry (server verified by DNS name)"
timeout 30 "$PROG" "$C" "localhost:$P1" window
echo "== key scheme: IPv4 vs IPv6, /64, mapped"
timeout 90 "$PROG" "$C" "127.0.0.1:$P1" keys
echo "== failed logins: growing block, reset on success"
timeout 30 "$PROG" "$C" "127.0.0.1:$P1,127.0.0.1:$P2" login
echo "== review_4_lockout_concurrent: attempts counted before verification"
DEAD=$(free_port)
timeout 60 "$PROG" "$C" "127.0.0.1:$P1,127.0.0.1:$P2" begin "127.0.0.1:$DEAD"
echo "== a certificate not naming server_name is refused"
timeout 30 "$PROG" "$C" "127.0.0.1:$P1" badname 2>"$T/badname.log"
grep -q "certificate check failed" "$T/badname.log" || fail "no tls failure logged"

echo "== a client without certificate gets no answer"
ok=$(memcached_tls_cmd "$T/mc1" "mn")
case "$ok" in MN*) ;; *) fail "client with certificate got no answer: $ok" ;; esac
nocert=$({ printf 'mn\r\n'; sleep 1; } | timeout 5 openssl s_client -quiet \
    -connect "127.0.0.1:$P1" -CAfile "$C/ca.crt" 2>/dev/null || true)
[ -z "$nocert" ] || fail "client without certificate was answered: $nocert"

echo "== keys spread over two servers; no client address in the keys"
timeout 30 "$PROG" "$C" "127.0.0.1:$P1,127.0.0.1:$P2" spread
memcached_tls_cmd "$T/mc1" "lru_crawler metadump all" >"$T/dump1"
memcached_tls_cmd "$T/mc2" "lru_crawler metadump all" >"$T/dump2"
n1=$(grep -c '^key=rl%3A' "$T/dump1" || true)
n2=$(grep -c '^key=rl%3A' "$T/dump2" || true)
echo "rate-limit keys: server1=$n1 server2=$n2"
[ "$n1" -ge 10 ] && [ "$n2" -ge 10 ] || fail "keys not spread over both servers"
grep -q '^key=lf%3A' "$T/dump1" "$T/dump2" || fail "no failed-login key found"
cat "$T/dump1" "$T/dump2" >"$T/dumps"
# 198.51.100.77 = c6 33 64 4d; 2001:db8:beef:cafe:: = 2001 0db8 beef cafe
for pat in '198\.51\.100' '198%2E51' 'c633644d' 'C633644D' '2001:db8' '2001%3Adb8' \
    '20010db8' 'beefcafe' 'xjNkTQ' 'IAENuL7vyv' '203\.0\.113' 'cb007100' 'carol'; do
    if grep -qi -- "$pat" "$T/dumps"; then fail "metadump shows a client address ($pat)"; fi
done

echo "== memcached stopped: in-process limiting, degraded; restarted: back"
mkdir -p "$T/sync"
timeout 90 "$PROG" "$C" "127.0.0.1:$P1" outage "$T/sync" 2>"$T/outage.log" &
PROG_PID=$!
for _ in $(seq 1 300); do [ -f "$T/sync/ready1" ] && break; sleep 0.1; done
[ -f "$T/sync/ready1" ] || fail "program did not reach the outage"
memcached_stop "$T/mc1"
touch "$T/sync/stopped"
for _ in $(seq 1 300); do [ -f "$T/sync/ready2" ] || ! kill -0 "$PROG_PID" 2>/dev/null && break; sleep 0.1; done
memcached_restart "$T/mc1" || fail "memcached 1 did not restart"
touch "$T/sync/restarted"
rc=0
wait "$PROG_PID" || rc=$?
PROG_PID=
cat "$T/outage.log" >&2
[ "$rc" -eq 0 ] || fail "outage program failed ($rc)"
# Once per outage per limiter (the program runs two limiters).
n=$(grep -c "memcached unreachable, limiting in-process" "$T/outage.log" || true)
[ "$n" -eq 2 ] || fail "outage logged $n times, expected 2"
n=$(grep -c "memcached reachable again" "$T/outage.log" || true)
[ "$n" -eq 2 ] || fail "recovery logged $n times, expected 2"
if grep -Eq '([0-9]{1,3}\.){3}[0-9]{1,3}' <(grep -v 'server 127.0.0.1' "$T/outage.log"); then
    fail "a client address was logged"
fi

echo "PASS"
