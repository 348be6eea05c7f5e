#!/usr/bin/env bash
# test_stack.sh: the whole stack end to end (make up / make down) in a temporary
# state directory on free ports: the original's three curl commands through
# nginx, every link's refusal, rate limiting through nginx, restarts and
# SIGKILL under write load, a scan of MariaDB's files for plaintext, and
# make down leaving nothing running.
#
# Rate limiting: the stack first runs with the API's default (10 requests a
# minute per client address) for the rate-limit checks; then only the API is
# restarted with CONFIDOC_RATE_LIMIT raised, which also shows that the
# environment of `make up` reaches the API, and the load phases run with it.
set -uo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
export CONFIDOC_SOURCE_DIR=$SRC
export CONFIDOC_BUILD_DIR=${CONFIDOC_BUILD_DIR:-$SRC/build}
. "$SRC/tests/lib/testlib.sh"
. "$SRC/tests/lib/certs.sh"
. "$SRC/tests/lib/stack.sh"

# Only this test's settings: nothing from the caller's environment.
for v in $(compgen -e | grep '^CONFIDOC_'); do
    case $v in CONFIDOC_SOURCE_DIR | CONFIDOC_BUILD_DIR) ;; *) unset "$v" ;; esac
done

if [ ! -x "$CONFIDOC_BUILD_DIR/confidoc-cas" ] || [ ! -x "$CONFIDOC_BUILD_DIR/confidoc-api" ]; then
    echo "not ok - confidoc-api and confidoc-cas must be built in $CONFIDOC_BUILD_DIR"
    exit 1
fi

WORK=$(mktemp -d /tmp/confidoc-stack-test.XXXXXX)
chmod 0711 "$WORK" # the services' users traverse it to their directories
export CONFIDOC_STATE_DIR=$WORK/state STACK_LOG=$WORK/stack.log
# As root, make up installs confidoc-api into a root-owned directory per
# content (default /usr/local/libexec/confidoc): here inside WORK, so that the
# test leaves nothing behind.
export CONFIDOC_LIBEXEC_DIR=$WORK/libexec
CONFIDOC_HTTPS_PORT=$(free_port) || exit 1
export CONFIDOC_HTTPS_PORT
WRITER=
cleanup() {
    [ -n "$WRITER" ] && kill "$WRITER" 2>/dev/null
    stack down || stack_kill_all
    if [ "$T_FAIL" -gt 0 ]; then
        echo "# stack.sh output:"
        tail -n 40 "$STACK_LOG" 2>/dev/null | sed 's/^/#   /'
        echo "# api.log:"
        tail -n 20 "$CONFIDOC_STATE_DIR/log/api.log" 2>/dev/null | sed 's/^/#   /'
    fi
    rm -rf "$WORK"
}
t_watchdog 280
# TERM is ignored while the watchdog is stopped: its sleeper, once ended, would
# otherwise race to signal this shell.
trap 'trap "" TERM; t_watchdog_stop; cleanup' EXIT

SENTENCE="Ever make mistakes in life? Lets make them birds. Yeah, theyre birds now."
BOB=(-u bobross:password123)

# ok_within SECONDS URL-PATH: true once GET PATH (as bob) answers 200.
ok_within() {
    local i
    for ((i = 0; i < $1 * 5; i++)); do
        [ "$(stack_curl -o /dev/null -w '%{http_code}' "${BOB[@]}" "$CONFIDOC_URL$2")" = 200 ] && return 0
        sleep 0.2
    done
    return 1
}

echo "# make up [${SECONDS}s]"
start=$(date +%s)
t_true "make up starts the stack" stack up
t_true "make up returns within a minute once built" test $(($(date +%s) - start)) -le 60
stack_env
# probe CMD ARGS...: CMD (curl, openssl, mariadb) through the attested launcher
# as session probe, which holds the client keys stack.env's *_KEY name.
PROBE_ARGV=("$CONFIDOC_CAS_LAUNCHER" run --session probe --socket "$CONFIDOC_CAS_SOCKET" --)
probe() {
    "${PROBE_ARGV[@]}" "$(command -v "$1")" "${@:2}"
}
for v in CONFIDOC_URL CONFIDOC_CACERT CONFIDOC_API_ADDR CONFIDOC_DB_ADDR CONFIDOC_MEMCACHED_ADDR \
    CONFIDOC_API_CACERT CONFIDOC_PROXY_CLIENT_CERT CONFIDOC_PROXY_CLIENT_KEY CONFIDOC_DB_USER \
    CONFIDOC_DB_CACERT CONFIDOC_DB_CLIENT_CERT CONFIDOC_DB_CLIENT_KEY CONFIDOC_DB_DATADIR \
    CONFIDOC_DB_ADMIN_SOCKET CONFIDOC_MEMCACHED_CACERT CONFIDOC_MEMCACHED_CLIENT_CERT \
    CONFIDOC_MEMCACHED_CLIENT_KEY CONFIDOC_API_PIDFILE CONFIDOC_DB_PIDFILE \
    CONFIDOC_MEMCACHED_PIDFILE CONFIDOC_NGINX_PIDFILE CONFIDOC_CAS_URL CONFIDOC_CAS_ADDR \
    CONFIDOC_CAS_PIN CONFIDOC_CAS_PIDFILE CONFIDOC_CAS_AUDIT_LOG CONFIDOC_CAS_CACERT; do
    if [ -z "${!v:-}" ]; then
        t_fail "stack.env sets $v"
    elif [[ $v == *_ADDR || $v == *_URL || $v == CONFIDOC_DB_USER || $v == CONFIDOC_CAS_PIN ]]; then
        t_ok "stack.env sets $v"
    elif [[ $v == *_KEY ]]; then
        # A key is no file on the host: only inside the probe's tmpfs.
        t_true "stack.env: $v is no file on the host" test ! -e "${!v}"
        t_true "stack.env: $v is the probe's key inside its session" \
            probe openssl pkey -in "${!v}" -noout
    else
        t_true "stack.env: $v exists" test -e "${!v}"
    fi
done
t_eq "CONFIDOC_URL is nginx's port" "$CONFIDOC_URL" "https://localhost:$CONFIDOC_HTTPS_PORT"
# CONFIDOC_NGINX_WORKERS (unset here): nginx's default is worker_processes auto, one per core.
t_true "nginx.conf has worker_processes auto by default" \
    grep -qx 'worker_processes auto;' "$CONFIDOC_STATE_DIR/nginx/conf/nginx.conf"
t_eq "nginx runs one worker per core by default" \
    "$(stack_children "$(stack_pid nginx)" | wc -l)" "$(nproc)"
API_PORT=${CONFIDOC_API_ADDR##*:}
DB_PORT=${CONFIDOC_DB_ADDR##*:}
MC_PORT=${CONFIDOC_MEMCACHED_ADDR##*:}

echo "# users and permissions [${SECONDS}s]"
S=$CONFIDOC_STATE_DIR
if [ "$(id -u)" -eq 0 ]; then
    U_API=confidoc U_DB=mysql U_MC=memcache U_NGINX=www-data
else
    U_API=$(id -un) U_DB=$U_API U_MC=$U_API U_NGINX=$U_API
fi
# The keys are in each service's private tmpfs (seen through its /proc/PID/root):
# 0400 and the service's. nginx's master (root) reads its keys: root's, so its
# workers (www-data) cannot.
U_NGINX_MASTER=$([ "$(id -u)" -eq 0 ] && echo root || echo "$U_NGINX")
for f in "api:api/api/tls/server.key:$U_API" "api:api/api/master.keyring:$U_API" "api:api/api/db/client.key:$U_API" \
    "api:api/api/mc/client.key:$U_API" "mariadb:mariadb/mariadb/tls/server.key:$U_DB" \
    "mariadb:mariadb/mariadb-key/keyfile:$U_DB" "memcached:memcached/memcached/tls/server.key:$U_MC" \
    "memcached-lockout:memcached/memcached-lockout/tls/server.key:$U_MC" \
    "nginx:nginx/nginx/tls/server.key:$U_NGINX_MASTER" "nginx:nginx/nginx/tls/api-client.key:$U_NGINX_MASTER"; do
    c=${f%%:*} rest=${f#*:}
    if [ "$(id -u)" -ne 0 ] && [ "$c" = api ]; then
        # A user cannot look into the API's namespace: it is not dumpable.
        t_ok "# skip ${rest%%:*} in $c's tmpfs (not root: /proc/PID/root of a non-dumpable process)"
        continue
    fi
    t_eq "${rest%%:*} is 0400 ${rest#*:} in $c's tmpfs" \
        "$(stat -c '%a %U' "/proc/$(stack_pid "$c")/root$S/secrets/${rest%%:*}")" "400 ${rest#*:}"
    t_true "${rest%%:*} is no file on the host" test ! -e "$S/secrets/${rest%%:*}"
done
# As root the directories are root's, 0750 to the service's group (a service
# that owned one could plant links for root's next make up: finding 2); the
# service owns only its files and the directories it writes.
for d in "api:$U_API" "mariadb:$U_DB" "mariadb-key:$U_DB" "memcached:$U_MC" "memcached-lockout:$U_MC" "nginx:$U_NGINX"; do
    if [ "$(id -u)" -eq 0 ]; then
        t_eq "${d%%:*}/ is 0750 root:${d#*:}'s group" "$(stat -c '%a %U %G' "$S/${d%%:*}")" \
            "750 root $(id -gn "${d#*:}")"
    else
        t_eq "${d%%:*}/ is 0700 ${d#*:}" "$(stat -c '%a %U' "$S/${d%%:*}")" "700 ${d#*:}"
    fi
done
for d in "mariadb/data:$U_DB" "mariadb/tmp:$U_DB" "mariadb/run:$U_DB"; do
    t_eq "${d%%:*}/ is 0700 ${d#*:}" "$(stat -c '%a %U' "$S/${d%%:*}")" "700 ${d#*:}"
done

echo "# review_11_db_key_outside_data: MariaDB's at-rest key [${SECONDS}s]"
t_eq "review_11_db_key_outside_data: stack.env names the key file (in MariaDB's tmpfs)" "${CONFIDOC_DB_KEYFILE:-}" "$S/secrets/mariadb/mariadb-key/keyfile"
DB_KEYFILE_SEEN=/proc/$(stack_pid mariadb)/root$CONFIDOC_DB_KEYFILE
t_true "review_11_db_key_outside_data: no key file in or beside the data directory" \
    test ! -e "$S/mariadb/keyfile"
t_eq "review_11_db_key_outside_data: nothing under mariadb/ holds the key" \
    "$(grep -r -l -a -F -f <(cut -d';' -f2 "$DB_KEYFILE_SEEN") "$S/mariadb" 2>/dev/null | wc -l)" 0
t_true "review_11_db_key_outside_data: MariaDB holds a key" grep -q '^1;[0-9a-fA-F]\{64\}$' "$DB_KEYFILE_SEEN"
t_eq "review_11_db_key_outside_data: nothing under the state holds it" \
    "$(grep -r -l -a -F -f <(cut -d';' -f2 "$DB_KEYFILE_SEEN") "$S" 2>/dev/null | wc -l)" 0
t_contains "review_11_db_key_outside_data: my.cnf points to it" "$(cat "$S/mariadb/my.cnf")" \
    "file_key_management_filename=$CONFIDOC_DB_KEYFILE"
if [ "$(id -u)" -eq 0 ]; then
    t_eq "review_11_db_key_outside_data: its tmpfs is mysql's, 0700" \
        "$(stat -c '%a %U %G' "/proc/$(stack_pid mariadb)/root$S/secrets/mariadb")" "700 mysql mysql"
    t_true "review_11_db_key_outside_data: other service users cannot read it" \
        bash -c "! runuser -u confidoc -- cat '$DB_KEYFILE_SEEN' && ! runuser -u www-data -- cat '$DB_KEYFILE_SEEN'" 2>/dev/null
fi
if [ "$(id -u)" -eq 0 ]; then
    # Root mode from any folder: the API's program is a root-owned copy named by
    # its content, not the build tree's (which may sit in root's 0700 home).
    exe=$(readlink "/proc/$(stack_pid api)/exe")
    t_eq "the API runs the installed copy" "$exe" \
        "$CONFIDOC_LIBEXEC_DIR/$(sha256sum "$CONFIDOC_BUILD_DIR/confidoc-api" | cut -c1-16)/confidoc-api"
    t_eq "its directory is root's, 0755" "$(stat -c '%a %U' "$(dirname "$exe")")" "755 root"
    t_true "it is the build's program" cmp -s "$exe" "$CONFIDOC_BUILD_DIR/confidoc-api"
fi
t_eq "MariaDB runs as $U_DB" "$(ps -o user= -p "$(stack_pid mariadb)")" "$U_DB"
t_eq "memcached runs as $U_MC" "$(ps -o user= -p "$(stack_pid memcached)")" "$U_MC"
t_eq "memcached-lockout runs as $U_MC" "$(ps -o user= -p "$(stack_pid memcached-lockout)")" "$U_MC"
t_eq "confidoc-api runs as $U_API" "$(ps -o user= -p "$(stack_pid api)")" "$U_API"
w=$(stack_children "$(stack_pid nginx)" | head -n 1)
t_eq "nginx's worker runs as $U_NGINX" "$(ps -o user= -p "${w:-1}")" "$U_NGINX"

echo "# the original's three curl commands [${SECONDS}s]"
PORT=$CONFIDOC_HTTPS_PORT
out=$(curl --cacert "$CONFIDOC_CACERT" -ubobross:password123 -X GET "https://localhost:$PORT/users/create_account" 2>/dev/null)
t_eq "create_account answers the username" "$(jq -r .username <<<"$out")" bobross
t_true "create_account answers a recovery code" test -n "$(jq -r '.recovery_code // empty' <<<"$out")"
out=$(curl --cacert "$CONFIDOC_CACERT" -ubobross:password123 -X POST -H "Content-Type: application/json" -d '{"record_id":"31","content":"Ever make mistakes in life? Lets make them birds. Yeah, theyre birds now."}' "https://localhost:$PORT/documents/create_document" 2>/dev/null)
t_eq "create_document answers the document" "$out" "{\"record_id\":31,\"content\":\"$SENTENCE\"}"
out=$(curl --cacert "$CONFIDOC_CACERT" -ubobross:password123 -X GET "https://localhost:$PORT/documents/31" 2>/dev/null)
t_eq "documents/31: content" "$(jq -r .content <<<"$out")" "$SENTENCE"
t_eq "documents/31: owner" "$(jq -r .owner <<<"$out")" bobross
t_eq "documents/31: record_id" "$(jq -c .record_id <<<"$out")" 31

echo "# nginx's answers [${SECONDS}s]"
req stack_curl GET "$CONFIDOC_URL/users/me" "${BOB[@]}"
t_eq "users/me through nginx" "$STATUS" 200
t_contains "HSTS" "$(header Strict-Transport-Security)" "max-age="
t_eq "no server version" "$(header Server)" nginx
t_true "TLS 1.1 is refused" test "$(stack_curl -o /dev/null -w '%{http_code}' --tlsv1.1 --tls-max 1.1 "$CONFIDOC_URL/healthz")" = 000
t_eq "TLS 1.2 works" "$(stack_curl -o /dev/null -w '%{http_code}' --tlsv1.2 --tls-max 1.2 "$CONFIDOC_URL/healthz")" 200
head -c 17000000 /dev/zero | tr '\0' a >"$WORK/big"
t_eq "a body over max_body_bytes is 413" \
    "$(stack_curl -o /dev/null -w '%{http_code}' "${BOB[@]}" -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/big" "$CONFIDOC_URL/documents/77")" 413
rm -f "$WORK/big"

echo "# consistency: nginx's own answers are JSON {\"detail\"} [${SECONDS}s]"
# json_answer NAME WANT-STATUS URL CURL-ARGS...: the status, Content-Type
# application/json and a body {"detail": "..."}. Sent from 127.0.0.2, an
# address that nothing else here uses: review_11_nginx_log_no_address looks
# for it in nginx's logs.
json_answer() {
    local name=$1 want=$2 url=$3
    shift 3
    req stack_curl GET "$url" --interface 127.0.0.2 "$@"
    t_eq "$name: status" "$STATUS" "$want"
    t_contains "$name: Content-Type" "$(header Content-Type)" application/json
    t_true "$name: body {\"detail\": ...}" jq -e '.detail | type == "string"' <<<"$BODY" >/dev/null
}
json_answer "400 (path escaping the root)" 400 "$CONFIDOC_URL/../../etc/passwd" --path-as-is
json_answer "400 (malformed request line)" 400 "$CONFIDOC_URL/healthz" -X 'GARBAGE()'
json_answer "404 (/readyz is not exposed: review_12_readyz_not_exposed)" 404 "$CONFIDOC_URL/readyz"
json_answer "404 (nginx's internal error locations)" 404 "$CONFIDOC_URL/.confidoc-error/400"
json_answer "414 (request line too long)" 414 "$CONFIDOC_URL/$(head -c 20000 /dev/zero | tr '\0' a)"
json_answer "431 (header fields too large)" 431 "$CONFIDOC_URL/healthz" \
    -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' a)"
head -c 17000000 /dev/zero | tr '\0' a >"$WORK/big"
json_answer "413 (body too large)" 413 "$CONFIDOC_URL/documents/78" "${BOB[@]}" \
    -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/big"
rm -f "$WORK/big"
t_eq "review_12_readyz_not_exposed: the API itself still answers /readyz" \
    "$(probe curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$CONFIDOC_API_CACERT" \
        --cert "$CONFIDOC_PROXY_CLIENT_CERT" --key "$CONFIDOC_PROXY_CLIENT_KEY" \
        "https://localhost:${CONFIDOC_API_ADDR##*:}/readyz")" 200

echo "# review_11_db_grants: the API's MariaDB account has DML only [${SECONDS}s]"
grants=$(mariadb --no-defaults --socket="$CONFIDOC_DB_ADMIN_SOCKET" -u "$(id -u | sed 's/^0$/root/;t;s/.*/'"$(id -un)"'/')" -N -B \
    -e "SHOW GRANTS FOR 'confidoc'@'127.0.0.1'" 2>&1)
t_not_contains "review_11_db_grants: no ALL PRIVILEGES" "$grants" "ALL PRIVILEGES"
t_contains "review_11_db_grants: SELECT, INSERT, UPDATE, DELETE on the schema" "$grants" \
    'GRANT SELECT, INSERT, UPDATE, DELETE ON `confidoc`.* TO `confidoc`@`127.0.0.1`'
t_eq "review_11_db_grants: nothing else but CREATE of the migrations table" \
    "$(grep -v -e 'GRANT USAGE ON \*\.\*' -e 'GRANT SELECT, INSERT, UPDATE, DELETE ON `confidoc`\.\*' <<<"$grants")" \
    'GRANT CREATE ON `confidoc`.`schema_migrations` TO `confidoc`@`127.0.0.1`'
as_api_db() {
    probe mariadb --no-defaults --protocol=TCP -h 127.0.0.1 -P "${CONFIDOC_DB_ADDR##*:}" -u confidoc \
        --connect-timeout=5 --ssl --ssl-ca="$CONFIDOC_DB_CACERT" --ssl-verify-server-cert \
        --ssl-cert="$CONFIDOC_DB_CLIENT_CERT" --ssl-key="$CONFIDOC_DB_CLIENT_KEY" -N -B -e "$1" 2>&1
}
t_contains "review_11_db_grants: DROP TABLE is refused" "$(as_api_db 'DROP TABLE confidoc.documents')" "DROP command denied"
t_contains "review_11_db_grants: CREATE TABLE is refused" "$(as_api_db 'CREATE TABLE confidoc.x (a INT)')" "CREATE command denied"
t_contains "review_11_db_grants: ALTER TABLE is refused" "$(as_api_db 'ALTER TABLE confidoc.users ADD COLUMN z INT')" "ALTER command denied"
t_contains "review_11_db_grants: DROP DATABASE is refused" "$(as_api_db 'DROP DATABASE confidoc')" "denied"
t_eq "review_11_db_grants: the documents table is still there" "$(as_api_db 'SELECT COUNT(*) > 0 FROM confidoc.documents')" 1

echo "# every link refuses what it must [${SECONDS}s]"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://localhost:$PORT/healthz")
rc=$?
t_eq "plain HTTP to nginx: no HTTP answer" "$code" 000
t_true "plain HTTP to nginx: connection closed ($rc: 52 empty reply or 56 reset)" test "$rc" = 52 -o "$rc" = 56
curl -s -o /dev/null --max-time 10 --capath /nonexistent --cacert "$CONFIDOC_API_CACERT" "$CONFIDOC_URL/healthz"
t_eq "a client that does not trust the CA is refused (curl 60)" "$?" 60
api() { ${PROBE:-} curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$CONFIDOC_API_CACERT" "$@" "https://localhost:$API_PORT/healthz"; }
t_eq "the API with the probe's certificate" "$(PROBE=probe api --cert "$CONFIDOC_PROXY_CLIENT_CERT" --key "$CONFIDOC_PROXY_CLIENT_KEY")" 200
t_eq "the API without a client certificate: refused" "$(api)" 000
certs_make "$WORK/other" || exit 1
t_eq "the API with CN=confidoc-proxy from another CA: refused" \
    "$(api --cert "$WORK/other/rogue.crt" --key "$WORK/other/rogue.key")" 000
db() { ${PROBE:-} mariadb --no-defaults --protocol=TCP -h 127.0.0.1 -P "$DB_PORT" -u confidoc --connect-timeout=5 -N -B "$@" -e 'SELECT 42' 2>/dev/null; }
t_eq "MariaDB with the API's client certificate" \
    "$(PROBE=probe db --ssl --ssl-ca="$CONFIDOC_DB_CACERT" --ssl-verify-server-cert --ssl-cert="$CONFIDOC_DB_CLIENT_CERT" --ssl-key="$CONFIDOC_DB_CLIENT_KEY")" 42
t_eq "MariaDB without TLS: refused" "$(db --skip-ssl)" ""
t_eq "MariaDB without the client certificate: refused" "$(db --ssl --ssl-ca="$CONFIDOC_DB_CACERT")" ""
t_eq "MariaDB with another CA's client certificate: refused" \
    "$(db --ssl --ssl-ca="$CONFIDOC_DB_CACERT" --ssl-cert="$WORK/other/db-client.crt" --ssl-key="$WORK/other/db-client.key")" ""
mc() {
    { printf 'version\r\n'; sleep 0.5; } | timeout 5 ${PROBE:+"${PROBE_ARGV[@]}"} "$(command -v openssl)" s_client -quiet -connect "127.0.0.1:$MC_PORT" \
        -CAfile "$CONFIDOC_MEMCACHED_CACERT" -verify_return_error "$@" 2>/dev/null | tr -d '\r' | grep -c '^VERSION'
}
t_eq "memcached with the probe's client certificate" \
    "$(PROBE=probe mc -cert "$CONFIDOC_MEMCACHED_CLIENT_CERT" -key "$CONFIDOC_MEMCACHED_CLIENT_KEY")" 1
t_eq "memcached without a certificate: refused" "$(mc)" 0
t_eq "memcached with another CA's certificate: refused" \
    "$(mc -cert "$WORK/other/mc-client.crt" -key "$WORK/other/mc-client.key")" 0

echo "# rate limiting through nginx (default: 10 a minute) [${SECONDS}s]"
# Windows are aligned to the clock: start the sequence early in one.
s=$(($(date +%s) % 60))
[ "$s" -gt 45 ] && sleep $((61 - s))
from() { local ip=$1; shift; stack_curl -o /dev/null -w '%{http_code}' --interface "$ip" "${BOB[@]}" "$@" "$CONFIDOC_URL/users/me"; }
codes=""
for _ in $(seq 1 10); do codes="$codes $(from 127.0.0.3)"; done
t_eq "10 requests from 127.0.0.3 pass" "$codes" "$(printf ' 200%.0s' $(seq 1 10))"
t_eq "the 11th is 429" "$(from 127.0.0.3)" 429
t_eq "a client's own X-Real-IP does not help" "$(from 127.0.0.3 -H 'X-Real-IP: 192.0.2.77')" 429
t_eq "another address still passes" "$(from 127.0.0.4)" 200

echo "# restart only the API with a raised limit (the environment reaches the API) [${SECONDS}s]"
pids_before="$(stack_pid mariadb) $(stack_pid memcached) $(stack_pid memcached-lockout) $(stack_pid nginx)"
old_api=$(stack_pid api)
t_true "stop the API" stack stop api
t_true "the API is gone" stack_wait_dead "$old_api"
export CONFIDOC_RATE_LIMIT=1000000
t_true "make up brings back the API" stack up
t_eq "the other components were left alone" \
    "$(stack_pid mariadb) $(stack_pid memcached) $(stack_pid memcached-lockout) $(stack_pid nginx)" "$pids_before"
t_true "the API has a new process" test "$(stack_pid api)" != "$old_api"
codes=""
for _ in $(seq 1 12); do codes="$codes $(from 127.0.0.3)"; done
t_eq "CONFIDOC_RATE_LIMIT reached the API: 12 more pass" "$codes" "$(printf ' 200%.0s' $(seq 1 12))"

echo "# review_12_lockout_separate: failed-login counters live in their own memcached [${SECONDS}s]"
# keys PORT PREFIX: how many keys starting with PREFIX memcached on PORT holds.
keys() {
    { printf 'lru_crawler metadump all\r\n'; sleep 1; } | timeout 5 "${PROBE_ARGV[@]}" "$(command -v openssl)" s_client -quiet \
        -connect "127.0.0.1:$1" -CAfile "$CONFIDOC_MEMCACHED_CACERT" \
        -cert "$CONFIDOC_MEMCACHED_CLIENT_CERT" -key "$CONFIDOC_MEMCACHED_CLIENT_KEY" 2>/dev/null |
        tr -d '\r' | grep -c "^key=$2"
}
t_eq "stack.env names the lockout instance" "${CONFIDOC_LOCKOUT_MEMCACHED_ADDR:-}" \
    "127.0.0.1:$CONFIDOC_LOCKOUT_MEMCACHED_PORT"
# One wrong password, for a name nobody used.
t_eq "a wrong password is 401" "$(stack_curl -o /dev/null -w '%{http_code}' --interface 127.0.0.6 \
    -u "lockout-probe-$RANDOM:wrong-password" "$CONFIDOC_URL/users/me")" 401
LMC=$CONFIDOC_LOCKOUT_MEMCACHED_PORT
t_true "review_12_lockout_separate: the lockout instance holds failed-login counters" \
    test "$(keys "$LMC" 'lf%3A')" -ge 1
t_eq "review_12_lockout_separate: and no rate-limit key" "$(keys "$LMC" 'rl%3A')" 0
t_true "review_12_lockout_separate: the rate limiter's instance holds rate-limit keys" \
    test "$(keys "$MC_PORT" 'rl%3A')" -ge 1
t_eq "review_12_lockout_separate: and no failed-login counter" \
    "$(($(keys "$MC_PORT" 'lf%3A') + $(keys "$MC_PORT" 'lb%3A')))" 0

echo "# make up on a healthy stack changes nothing [${SECONDS}s]"
all_before="$(stack_pid mariadb) $(stack_pid memcached) $(stack_pid memcached-lockout) $(stack_pid api) $(stack_pid nginx)"
: >"$STACK_LOG.tail"
bash "$SRC/scripts/stack.sh" up >"$STACK_LOG.tail" 2>&1
t_eq "make up succeeds" "$?" 0
t_contains "it says so" "$(cat "$STACK_LOG.tail")" "already running"
t_eq "no process changed" \
    "$(stack_pid mariadb) $(stack_pid memcached) $(stack_pid memcached-lockout) $(stack_pid api) $(stack_pid nginx)" "$all_before"

echo "# a port that is taken is an error naming it [${SECONDS}s]"
out=$(env -u CONFIDOC_API_PORT -u CONFIDOC_DB_PORT -u CONFIDOC_MEMCACHED_PORT -u CONFIDOC_LOCKOUT_MEMCACHED_PORT -u CONFIDOC_CAS_PORT CONFIDOC_STATE_DIR="$WORK/second" bash "$SRC/scripts/stack.sh" up 2>&1)
t_eq "a second stack on the same HTTPS port fails" "$?" 1
t_contains "the error names the port" "$out" "port $CONFIDOC_HTTPS_PORT (CONFIDOC_HTTPS_PORT"
t_eq "and starts nothing" "$(find "$WORK/second" -name "*.pid" 2>/dev/null | wc -l)" 0

echo "# CONFIDOC_NGINX_WORKERS out of range is an error naming it [${SECONDS}s]"
out=$(env -u CONFIDOC_API_PORT -u CONFIDOC_DB_PORT -u CONFIDOC_MEMCACHED_PORT -u CONFIDOC_LOCKOUT_MEMCACHED_PORT -u CONFIDOC_CAS_PORT \
    CONFIDOC_STATE_DIR="$WORK/third" CONFIDOC_HTTPS_PORT="$(free_port)" CONFIDOC_NGINX_WORKERS=0 \
    bash "$SRC/scripts/stack.sh" up 2>&1)
t_eq "CONFIDOC_NGINX_WORKERS=0 fails" "$?" 1
t_contains "the error names the variable" "$out" "CONFIDOC_NGINX_WORKERS=0: auto or a number from 1 to 64"
t_eq "and starts nothing" "$(find "$WORK/third" -name "*.pid" 2>/dev/null | wc -l)" 0

echo "# stop and restart each component in turn [${SECONDS}s]"
for c in api mariadb memcached memcached-lockout nginx; do
    others=""
    for o in api mariadb memcached memcached-lockout nginx; do [ "$o" = "$c" ] || others="$others $(stack_pid "$o")"; done
    old=$(stack_pid "$c")
    stack stop "$c"
    t_true "$c stopped gracefully" stack_wait_dead "$old"
    case $c in
    api) json_answer "502 (the API is down)" 502 "$CONFIDOC_URL/users/me" "${BOB[@]}" ;;
    mariadb) json_answer "503 (the database is down; the API's answer passes)" 503 "$CONFIDOC_URL/documents/31" "${BOB[@]}" ;;
    esac
    t_true "make up restarts $c" stack up
    now=""
    for o in api mariadb memcached memcached-lockout nginx; do [ "$o" = "$c" ] || now="$now $(stack_pid "$o")"; done
    t_eq "only $c was started" "$now" "$others"
    t_true "document 31 is readable after restarting $c" ok_within 15 /documents/31
done

# writer FIRST STOPFILE OUT: PUTs documents FIRST, FIRST+1, ... through nginx
# until STOPFILE exists; appends each id answered 2xx to OUT.
writer() {
    local i=$1 code
    while [ ! -e "$2" ]; do
        code=$(stack_curl -o /dev/null -w '%{http_code}' --max-time 10 "${BOB[@]}" -X PUT \
            -H 'Content-Type: application/json' -d "{\"content\":\"load $i\"}" "$CONFIDOC_URL/documents/$i")
        case $code in 200 | 201) echo "$i" >>"$3" ;; esac
        i=$((i + 1))
    done
}

for victim in api mariadb; do
    echo "# SIGKILL $victim under write load [${SECONDS}s]"
    first=$([ "$victim" = api ] && echo 1000 || echo 5000)
    out=$WORK/acked-$victim
    : >"$out"
    rm -f "$WORK/stop"
    writer "$first" "$WORK/stop" "$out" &
    WRITER=$!
    sleep 2
    n_before=$(wc -l <"$out")
    pid=$(stack_pid "$victim")
    kill -KILL "$pid"
    t_true "$victim killed" stack_wait_dead "$pid"
    sleep 0.5
    t_true "make up brings back $victim" stack up
    t_true "the stack answers again" ok_within 20 /documents/31
    sleep 2
    touch "$WORK/stop"
    wait "$WRITER"
    WRITER=
    n_after=$(wc -l <"$out")
    t_true "writes were answered before the kill ($n_before)" test "$n_before" -gt 0
    t_true "writes were answered after the restart ($n_after in all)" test "$n_after" -gt "$n_before"
    # One curl for all reads (one connection): each answer on its own line.
    urls=()
    while read -r id; do urls+=("$CONFIDOC_URL/documents/$id"); done <"$out"
    stack_curl --max-time 60 "${BOB[@]}" -w '\n' "${urls[@]}" | jq -r '.content // "missing"' >"$out.read"
    lost=$(paste -d ' ' "$out" "$out.read" | awk '$2 != "load" || $3 != $1' | wc -l)
    t_eq "every acknowledged write survived the SIGKILL of $victim" "$lost" 0
done

echo "# markers for the plaintext scan [${SECONDS}s]"
MARK_USER=zqx7plainuser
MARK_DOC=ZQX7PLAINTEXTDOCUMENTMARKER
t_eq "an account named by a marker" \
    "$(stack_curl -o /dev/null -w '%{http_code}' -u "$MARK_USER:password123" "$CONFIDOC_URL/users/create_account")" 201
t_eq "a document holding a marker" \
    "$(stack_curl -o /dev/null -w '%{http_code}' -u "$MARK_USER:password123" -H 'Content-Type: application/json' \
        -d "{\"record_id\":7,\"content\":\"$MARK_DOC $MARK_DOC\"}" "$CONFIDOC_URL/documents/create_document")" 200
enc=$(mariadb --no-defaults --socket="$CONFIDOC_DB_ADMIN_SOCKET" -u "$(id -u | sed 's/^0$/root/;t;s/.*/'"$(id -un)"'/')" -N -B \
    -e "SELECT NAME, ENCRYPTION_SCHEME FROM information_schema.INNODB_TABLESPACES_ENCRYPTION WHERE NAME LIKE 'confidoc/%' ORDER BY NAME" 2>&1)
t_contains "MariaDB encrypts the users table at rest" "$enc" "confidoc/users	1"
t_contains "MariaDB encrypts the documents table at rest" "$enc" "confidoc/documents	1"

echo "# 504: the stack's nginx configuration in front of an upstream that never answers [${SECONDS}s]"
# A second nginx from the deployed nginx.conf, with only its port, its
# upstream's port and its pid, log and temporary paths changed (as bench/run.sh
# derives its front); the upstream accepts TCP and never speaks TLS, so
# nginx gives up after proxy_connect_timeout (5 s).
FRONT=$WORK/front
mkdir -p "$FRONT/log" "$FRONT/tmp"
chmod 0755 "$FRONT" "$FRONT/tmp"
BH_PORT=$(free_port) FR_PORT=$(free_port)
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64); time.sleep(40)' "$BH_PORT" &
BH_PID=$!
sed -E -e "s#^([[:space:]]*listen[[:space:]]+127\.0\.0\.1:)$PORT([[:space:];])#\1$FR_PORT\2#" \
    -e "s#^([[:space:]]*server[[:space:]]+127\.0\.0\.1:)$API_PORT([[:space:];])#\1$BH_PORT\2#" \
    -e "s#^([[:space:]]*pid)[[:space:]]+[^;]+;#\1 $FRONT/nginx.pid;#" \
    -e "s#^([[:space:]]*error_log)[[:space:]]+[^[:space:];]+#\1 $FRONT/log/error.log#" \
    -e "s#^([[:space:]]*access_log)[[:space:]]+[^[:space:];]+#\1 $FRONT/log/access.log#" \
    -e "s#^([[:space:]]*(client_body|proxy|fastcgi|uwsgi|scgi)_temp_path)[[:space:]]+[^;]+;#\1 $FRONT/tmp/\2;#" \
    "$S/nginx/conf/nginx.conf" >"$FRONT/nginx.conf"
# Its keys come from the CAS like the stack's nginx (session nginx).
"$CONFIDOC_CAS_LAUNCHER" run --session nginx --socket "$CONFIDOC_CAS_SOCKET" -- "$(command -v nginx)" \
    -p "$FRONT" -c "$FRONT/nginx.conf" -e "$FRONT/log/error.log" -g 'daemon off;' \
    </dev/null >>"$FRONT/log/out" 2>&1 &
FR_PID=$!
for _ in $(seq 1 50); do port_in_use "$FR_PORT" && port_in_use "$BH_PORT" && break; sleep 0.1; done
req curl GET "https://localhost:$FR_PORT/users/me" --max-time 30 --cacert "$CONFIDOC_CACERT" "${BOB[@]}"
t_eq "504 (the API does not answer): status" "$STATUS" 504
[ "$STATUS" = 504 ] || tail -n 3 "$FRONT/log/error.log" | sed 's/^/#   /'
t_contains "504: Content-Type" "$(header Content-Type)" application/json
t_true "504: body {\"detail\": ...}" jq -e '.detail | type == "string"' <<<"$BODY" >/dev/null
kill -QUIT "$FR_PID" 2>/dev/null
kill "$BH_PID" 2>/dev/null
t_true "the second nginx stopped" stack_wait_dead "$FR_PID"
wait "$BH_PID" 2>/dev/null

echo "# review_11_nginx_log_no_address: nginx's logs name no client [${SECONDS}s]"
L=$S/log
t_true "review_11_nginx_log_no_address: nginx logged errors about those requests" \
    grep -q -e 'connect() failed' -e 'too large body' "$L/nginx-error.log"
t_eq "review_11_nginx_log_no_address: 127.0.0.2 is in no nginx log" \
    "$(cat "$L"/nginx-error.log "$L"/nginx-access.log | grep -c -F 127.0.0.2)" 0
t_eq "review_11_nginx_log_no_address: no \"client:\" field in nginx's error log" \
    "$(grep -c -F 'client: ' "$L/nginx-error.log")" 0

echo "# the API refuses to start on a schema it may not migrate, and says what to run [${SECONDS}s]"
api_exe=$(readlink "/proc/$(stack_pid api)/exe")
t_true "stop the API" stack stop api
admin_db() { mariadb --no-defaults --socket="$CONFIDOC_DB_ADMIN_SOCKET" -u "$(id -u | sed 's/^0$/root/;t;s/.*/'"$(id -un)"'/')" -N -B "$@"; }
admin_db -e "CREATE TABLE confidoc.saved_migrations AS SELECT * FROM confidoc.schema_migrations; DELETE FROM confidoc.schema_migrations"
# As the stack starts it: through the launcher, as its user, with its keys.
out=$(timeout 60 "$CONFIDOC_CAS_LAUNCHER" run --session api --socket "$CONFIDOC_CAS_SOCKET" -- \
    "$api_exe" --config "$S/api/api.conf" 2>&1)
t_true "review_11_db_grants: the API's account cannot apply migrations: start-up fails" test $? -ne 0
t_contains "review_11_db_grants: it names the command" "$out" "--migrate"
admin_db -e "INSERT INTO confidoc.schema_migrations SELECT * FROM confidoc.saved_migrations; DROP TABLE confidoc.saved_migrations"
t_true "make up brings the API back" stack up
t_true "document 31 is readable" ok_within 15 /documents/31

echo "# make down [${SECONDS}s]"
pids="$(stack_pid mariadb) $(stack_pid memcached) $(stack_pid memcached-lockout) $(stack_pid api) $(stack_pid nginx) $(stack_children "$(stack_pid nginx)")"
t_true "make down" make -s -C "$SRC" down >>"$STACK_LOG" 2>&1
left=""
for p in $pids; do stack_alive "$p" && left="$left $p"; done
t_eq "nothing the stack started is still running" "$left" ""
for p in "$CONFIDOC_HTTPS_PORT" "$API_PORT" "$DB_PORT" "$MC_PORT"; do
    t_true "port $p is closed" bash -c "! ss -Htln 'sport = :$p' | grep -q ."
done

echo "# MariaDB's files hold no plaintext (after a clean shutdown flushed every page) [${SECONDS}s]"
t_eq "the username marker is nowhere in MariaDB's files" \
    "$(grep -r -a -l -i "$MARK_USER" "$S/mariadb" | wc -l)" 0
t_eq "the document marker is nowhere in MariaDB's files" \
    "$(grep -r -a -l -i "$MARK_DOC" "$S/mariadb" | wc -l)" 0
t_eq "the original's sentence is nowhere in MariaDB's files" \
    "$(grep -r -a -l "make them birds" "$S/mariadb" | wc -l)" 0

echo "# make up after make down: accounts and documents intact [${SECONDS}s]"
t_true "make up again" stack up
t_eq "bobross's document 31" "$(stack_curl "${BOB[@]}" "$CONFIDOC_URL/documents/31" | jq -r .content)" "$SENTENCE"
t_eq "the marker account's document" \
    "$(stack_curl -u "$MARK_USER:password123" "$CONFIDOC_URL/documents/7" | jq -r .content)" "$MARK_DOC $MARK_DOC"
t_true "make down again" stack down

t_eq "no sanitizer report in the API's log" \
    "$(grep -c -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$S/log/api.log")" 0
t_finish
