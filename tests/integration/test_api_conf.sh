#!/usr/bin/env bash
# test_api_conf.sh: scripts/lib/api_conf.sh, the one writer of confidoc-api's
# wiring in api.conf (make up, test_images, check-distributed): every required
# key with its value, optional keys only when given, no value with a newline,
# no missing required value; and the real confidoc-api (--check-config) reads
# a generated file back with every value as written.
set -uo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${CONFIDOC_BUILD_DIR:-$SRC/build}
. "$SRC/tests/lib/testlib.sh"
# shellcheck source=../../scripts/lib/api_conf.sh
. "$SRC/scripts/lib/api_conf.sh"

WORK=$(mktemp -d /tmp/confidoc-apiconf-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
S=$WORK/sec
REQ=(--listen-addr 10.0.0.7 --listen-port 18443 --secrets "$S" --db-host "db1,db2"
    --db-port 13306 --memcached "mc1:11211,mc2:11211")

# value FILE KEY: the value of KEY's line(s) in FILE, one a line.
value() { sed -n "s/^$2 = //p" "$1"; }

echo "# the required keys, with the values given"
api_conf_wiring "${REQ[@]}" >"$WORK/min.conf" 2>"$WORK/min.err"
t_eq "required only: exit 0" "$?" 0
t_eq "required only: nothing on stderr" "$(cat "$WORK/min.err")" ""
while read -r k v; do
    t_eq "$k" "$(value "$WORK/min.conf" "$k")" "$v"
done <<EOF
listen_addr 10.0.0.7
listen_port 18443
tls_cert $S/tls/server.crt
tls_key $S/tls/server.key
client_ca $S/tls/client-ca.crt
allowed_client_subjects CN=confidoc-proxy;CN=confidoc-probe
trusted_proxy_subjects CN=confidoc-proxy
master_key_file $S/master.keyring
db_host db1,db2
db_port 13306
db_name confidoc
db_user confidoc
db_tls_ca $S/db/ca.crt
db_tls_cert $S/db/client.crt
db_tls_key $S/db/client.key
memcached_servers mc1:11211,mc2:11211
memcached_tls_ca $S/mc/ca.crt
memcached_tls_cert $S/mc/client.crt
memcached_tls_key $S/mc/client.key
EOF
t_eq "required only: 19 lines, all 'key = value'" \
    "$(grep -c '^[a-z_]* = [^ ]' "$WORK/min.conf") $(wc -l <"$WORK/min.conf")" "19 19"
t_eq "no key twice" "$(cut -d' ' -f1 "$WORK/min.conf" | sort | uniq -d)" ""
for k in lockout_memcached_servers memcached_server_name log_level; do
    t_eq "optional $k absent when not given" "$(grep -c "^$k " "$WORK/min.conf")" 0
done
api_conf_wiring "${REQ[@]}" --lockout-memcached "" --memcached-server-name "" >"$WORK/empty.conf"
t_eq "an empty optional value is not given" "$(cat "$WORK/empty.conf")" "$(cat "$WORK/min.conf")"

echo "# optional keys, when given"
api_conf_wiring "${REQ[@]}" --lockout-memcached 127.0.0.1:11212 --memcached-server-name localhost \
    --extra "log_level = info" --extra "rate_limit = 60" >"$WORK/all.conf"
t_eq "all: exit 0" "$?" 0
t_eq "lockout_memcached_servers given" "$(value "$WORK/all.conf" lockout_memcached_servers)" 127.0.0.1:11212
t_eq "memcached_server_name given" "$(value "$WORK/all.conf" memcached_server_name)" localhost
t_eq "extras last, in order" "$(tail -n 2 "$WORK/all.conf")" "log_level = info
rate_limit = 60"
t_eq "all: 23 lines" "$(wc -l <"$WORK/all.conf")" 23
t_eq "API_CONF_KEYS: the keys written, in order" "$(head -n 21 "$WORK/all.conf" | cut -d' ' -f1)" \
    "$(printf '%s\n' "${API_CONF_KEYS[@]}")"
t_eq "all: the required lines unchanged" \
    "$(grep -v -e '^lockout_memcached_servers ' -e '^memcached_server_name ' "$WORK/all.conf" | head -n 19)" \
    "$(cat "$WORK/min.conf")"

echo "# refused: a newline (it would add a key), a missing value, bad options"
nl=$'127.0.0.1\nlisten_addr = 0.0.0.0'
# refused NAME ARGS...: api_conf_wiring ARGS fails, says why, prints nothing.
refused() {
    local name=$1 out rc
    shift
    out=$(api_conf_wiring "$@" 2>"$WORK/err")
    rc=$?
    t_true "$name: refused" [ "$rc" -ne 0 ]
    t_eq "$name: nothing printed" "$out" ""
    t_contains "$name: a message on stderr" "$(cat "$WORK/err")" "api_conf_wiring: "
}
refused "newline in --listen-addr" "${REQ[@]}" --listen-addr "$nl"
refused "newline in --secrets" "${REQ[@]}" --secrets "$S"$'\n'"db_user = root"
refused "newline in --memcached-server-name" "${REQ[@]}" --memcached-server-name "localhost"$'\n'"x = y"
refused "newline in --extra" "${REQ[@]}" --extra "log_level = info"$'\n'"db_user = root"
refused "carriage return in --db-host" "${REQ[@]}" --db-host $'db1\r'
for i in 0 2 4 6 8 10; do
    opt=${REQ[$i]}
    args=("${REQ[@]:0:i}" "${REQ[@]:i+2}")
    refused "missing $opt" "${args[@]}"
    refused "empty $opt" "${REQ[@]}" "$opt" ""
done
refused "an option without its value" "${REQ[@]}" --lockout-memcached
refused "an unknown option" "${REQ[@]}" --db-name other
refused "--extra not 'key = value'" "${REQ[@]}" --extra "log_level=info"
refused "--extra of a wiring key" "${REQ[@]}" --extra "db_user = root"
t_contains "the message names the option" "$(api_conf_wiring "${REQ[@]}" --db-port "" 2>&1)" "--db-port"

echo "# the real confidoc-api reads a generated file back, every value as written"
mkdir -m 0700 "$S"
(umask 077 && openssl rand -hex 32 >"$S/master.keyring")
{
    echo "# api.conf of test_api_conf"
    cat "$WORK/all.conf"
} >"$WORK/api.conf"
# No CONFIDOC_* of the environment: the file alone.
env -i PATH="$PATH" "$BUILD/confidoc-api" --config "$WORK/api.conf" --check-config \
    >"$WORK/check.out" 2>"$WORK/check.err"
t_eq "confidoc-api --check-config accepts it" "$?" 0
missing=$(grep -v '^#' "$WORK/api.conf" | grep -vxF -f "$WORK/check.out")
t_eq "every line is a key the API read with that value" "$missing" ""

t_finish
