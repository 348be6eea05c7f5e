#!/usr/bin/env bash
# test_load_mix.sh: 256 concurrent keep-alive HTTP/1.1 connections with mutual
# TLS straight at confidoc-api (the proxy's certificate), through a small worker
# count, with a mix of reads, writes, 1 MiB transfers, slow uploads, slow
# readers and wrong credentials; every answer is checked by the driver
# (tests/integration/prog_load_mix.c), and afterwards the connections must have
# been reused and the API's log must hold no error line (issue 13, tests).
set -uo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${CONFIDOC_BUILD_DIR:-$SRC/build}
export CONFIDOC_BUILD_DIR=$BUILD
. "$SRC/tests/lib/testlib.sh"
. "$SRC/tests/lib/certs.sh"
. "$SRC/tests/lib/mariadb.sh"
. "$SRC/tests/lib/memcached.sh"
. "$SRC/tests/lib/api.sh"

CONNS=256
REQS=20
USERS=4
WORK=$(mktemp -d /tmp/confidoc-load-mix-test.XXXXXX)
chmod 755 "$WORK"
cleanup() {
    api_kill
    memcached_stop "$WORK/mc" >/dev/null 2>&1
    mariadb_stop "$WORK/db" >/dev/null 2>&1
    if [ "$T_FAIL" -gt 0 ] && [ -f "$WORK/api/api.log" ]; then
        echo "# api.log, its last lines other than info:"
        grep -v ' info: ' "$WORK/api/api.log" | tail -n 20 | sed 's/^/#   /'
    fi
    rm -rf "$WORK"
}
# The whole test is bounded: a hang fails it instead of blocking CI.
t_watchdog 280
trap 't_watchdog_stop; cleanup' EXIT

certs_make "$WORK/certs" || exit 1
C=$WORK/certs
mariadb_start "$WORK/db" "$C" || exit 1
memcached_start "$WORK/mc" "$C" || exit 1

# Rate limiting (memcached) is on, but far above what this test sends.
conf=("max_connections = 300" "rate_limit = 1000000" "rate_window = 60"
    "memcached_servers = 127.0.0.1:$MEMCACHED_PORT" "memcached_timeout_ms = 1000"
    "memcached_connect_timeout_ms = 3000"
    "memcached_tls_ca = $C/ca.crt" "memcached_tls_cert = $C/mc-client.crt"
    "memcached_tls_key = $C/mc-client.key" "auth_cache_ttl = 300" "db_pool_size = 16")
# A small worker count: two event-loop workers running the handlers
# themselves (handler_threads = 0, the default), then again with four handler
# threads behind them (the other mode, docs/internals/http.md).
conf+=("http_workers = 2" "handler_threads = 0")
api_start "$WORK/api" "$C" "${conf[@]}" || exit 1
U=$API_URL
echo "# confidoc-api with: ${conf[*]}" | sed 's/memcached_tls[^ ]* = [^ ]*//g'

echo "# users and their documents"
mkdir -p "$WORK/docs"
for ((u = 0; u < USERS; u++)); do
    req api_curl GET "$U/users/create_account" -u "load$u:loadpass$u"
    t_eq "user load$u is created" "$STATUS" 201
    for d in 1 2 3 4; do
        head -c 1024 /dev/urandom >"$WORK/docs/small-$u-$d.bin"
        req api_curl PUT "$U/documents/$d" -u "load$u:loadpass$u" \
            -H "Content-Type: application/octet-stream" --data-binary @"$WORK/docs/small-$u-$d.bin"
        t_eq "load$u's document $d (1 KiB) is stored" "$STATUS" 201
    done
    head -c $((1024 * 1024)) /dev/urandom >"$WORK/docs/large-$u.bin"
    req api_curl PUT "$U/documents/100" -u "load$u:loadpass$u" \
        -H "Content-Type: application/octet-stream" --data-binary @"$WORK/docs/large-$u.bin"
    t_eq "load$u's document 100 (1 MiB) is stored" "$STATUS" 201
done
[ "$T_FAIL" -eq 0 ] || { t_finish; exit 1; }

# mixed_load MODE: the driver's 256 connections, every answer checked, then
# the API's state and log.
mixed_load() {
    local mode=$1 round=$2 start rc total errors
    echo "# $mode: $CONNS connections, $REQS requests each"
    start=$(date +%s)
    "$BUILD/tests/prog_load_mix" "$U" "$C" "$WORK/docs" "$USERS" "$CONNS" "$REQS" "$round" \
        >"$WORK/driver.out" 2>"$WORK/driver.err"
    rc=$?
    sed 's/^/# /' "$WORK/driver.out"
    if [ "$rc" -eq 0 ]; then
        t_ok "$mode: every answer of the mixed load is right ($(($(date +%s) - start)) s)"
    else
        t_fail "$mode: the mixed load" "driver exit $rc"
        sed 's/^/#   /' "$WORK/driver.err" | head -n 30
    fi
    total=$(awk '/requests on/ {print $1}' "$WORK/driver.out")
    t_true "$mode: at least $((CONNS * REQS)) requests were answered" \
        test "${total:-0}" -ge $((CONNS * REQS))

    t_true "$mode: the API is still running" kill -0 "$API_PID"
    req api_curl GET "$U/users/me" -u load0:loadpass0
    t_eq "$mode: and answers" "$STATUS" 200
    errors=$(grep -c ' error: ' "$API_LOG")
    t_eq "$mode: the API's log has no error line" "$errors" 0
    [ "$errors" -eq 0 ] || grep ' error: ' "$API_LOG" | head -n 10 | sed 's/^/#   /'
    api_stop
    t_eq "$mode: the API stops cleanly" "$?" 0
}

mixed_load "handlers on the 2 workers" 0
conf=("${conf[@]/handler_threads = 0/handler_threads = 4}")
API_PORT=
api_start "$WORK/api" "$C" "${conf[@]}" || exit 1
U=$API_URL
mixed_load "2 workers, 4 handler threads" 1

t_finish
