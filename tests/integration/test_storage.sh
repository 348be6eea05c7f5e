#!/usr/bin/env bash
# test_storage.sh: the storage module against a real, TLS-only MariaDB.
# Checks that the server refuses clients without the right certificate, runs
# prog_storage phase1, crashes (SIGKILL) and restarts the server, then runs
# prog_storage phase2, which keeps one pool across a stop/start driven from here.
set -euo pipefail

src=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${CONFIDOC_BUILD_DIR:-$src/build}
prog=$build/tests/prog_storage
# shellcheck source=tests/lib/certs.sh
source "$src/tests/lib/certs.sh"
# shellcheck source=tests/lib/mariadb.sh
source "$src/tests/lib/mariadb.sh"

[ -x "$prog" ] || { echo "missing $prog" >&2; exit 1; }

tmp=$(mktemp -d)
chmod 0711 "$tmp" # mariadbd runs as mysql and must traverse it
prog_pid=
cleanup() {
    [ -n "$prog_pid" ] && kill "$prog_pid" 2>/dev/null
    mariadb_stop "$tmp/db" || true
    rm -rf "$tmp"
}
trap cleanup EXIT

certs_make "$tmp/certs"
c=$tmp/certs
mariadb_start "$tmp/db" "$c"

# ---- the server's own refusals, seen with the mariadb client over TCP ----
cli() {
    timeout 20 mariadb --no-defaults -h 127.0.0.1 -P "$MARIADB_PORT" -u confidoc \
        --connect-timeout=5 --ssl-ca="$c/ca.crt" --ssl-verify-server-cert "$@" \
        -N -B -e 'SELECT 1' confidoc
}
expect_refused() {
    local what=$1
    shift
    if cli "$@" >/dev/null 2>&1; then
        echo "FAIL: connection $what was accepted" >&2
        exit 1
    fi
    echo "ok: connection $what refused"
}
[ "$(cli --ssl-cert="$c/db-client.crt" --ssl-key="$c/db-client.key")" = 1 ] ||
    { echo "FAIL: the confidoc certificate is refused" >&2; exit 1; }
echo "ok: connection with the confidoc certificate accepted"
expect_refused "without a client certificate"
expect_refused "with another subject (other.crt)" --ssl-cert="$c/other.crt" --ssl-key="$c/other.key"
expect_refused "with a rogue CA's certificate" --ssl-cert="$c/rogue.crt" --ssl-key="$c/rogue.key"
expect_refused "without TLS" --ssl-cert="$c/db-client.crt" --ssl-key="$c/db-client.key" --skip-ssl

export CONFIDOC_DB_HOST=127.0.0.1 CONFIDOC_DB_PORT=$MARIADB_PORT
export CONFIDOC_DB_CA=$c/ca.crt CONFIDOC_DB_CERT=$c/db-client.crt CONFIDOC_DB_KEY=$c/db-client.key
export CONFIDOC_DB_ROGUE_CA=$c/rogue-ca.crt
export CONFIDOC_DB_OTHER_CERT=$c/other.crt CONFIDOC_DB_OTHER_KEY=$c/other.key
export CONFIDOC_DB_SYNC=$tmp/sync
mkdir -p "$CONFIDOC_DB_SYNC"

timeout 240 "$prog" phase1

# ---- a crash: committed data must survive it ----
mariadb_kill "$tmp/db"
mariadb_restart "$tmp/db"
echo "ok: server killed and restarted"

# wait_file NAME: waits (60 s at most) for the program to create SYNC/NAME.
wait_file() {
    local i
    for ((i = 0; i < 600; i++)); do
        [ -e "$CONFIDOC_DB_SYNC/$1" ] && return 0
        kill -0 "$prog_pid" 2>/dev/null || { echo "FAIL: prog_storage ended early" >&2; return 1; }
        sleep 0.1
    done
    echo "FAIL: no $1 from prog_storage" >&2
    return 1
}

timeout 120 "$prog" phase2 &
prog_pid=$!
wait_file ready-stop
mariadb_stop "$tmp/db"
touch "$CONFIDOC_DB_SYNC/stopped"
wait_file ready-start
mariadb_restart "$tmp/db"
touch "$CONFIDOC_DB_SYNC/started"
wait_file ready-restart
mariadb_stop "$tmp/db"
mariadb_restart "$tmp/db"
touch "$CONFIDOC_DB_SYNC/restarted"
rc=0
wait "$prog_pid" || rc=$?
prog_pid=
[ "$rc" -eq 0 ] || { echo "FAIL: prog_storage phase2 exited $rc" >&2; exit 1; }
echo "ok: storage tests passed"
