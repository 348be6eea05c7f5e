#!/usr/bin/env bash
# stack.sh: the whole confidoc system on one machine (`make up` / `make down`).
#
#   scripts/stack.sh up            build if needed, provision keys, start what is not running
#   scripts/stack.sh down          stop every process the stack started (gracefully)
#   scripts/stack.sh status        one line per component; exit 0 when all run, 3 otherwise
#   scripts/stack.sh stop NAME     stop one component (mariadb, memcached, api, nginx)
#
# State lives under $CONFIDOC_STATE_DIR (default var/ in the source tree); the
# layout and every variable are described in docs/operations.md.
# Environment: CONFIDOC_STATE_DIR, CONFIDOC_HTTPS_PORT (default 8443),
# CONFIDOC_API_PORT, CONFIDOC_DB_PORT, CONFIDOC_MEMCACHED_PORT (default: free
# ports chosen at the first start and kept in STATE/ports.env),
# CONFIDOC_BUILD_DIR (use these binaries and do not build), NGINX_USER (nginx
# workers' user when root, default www-data), and every CONFIDOC_<KEY> of
# confidoc-api, which reaches the API.
set -euo pipefail
umask 077

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
COMPONENTS=(mariadb memcached api nginx) # start order; stop order is the reverse
START_TIMEOUT=${CONFIDOC_START_TIMEOUT:-60}
STOP_TIMEOUT=${CONFIDOC_STOP_TIMEOUT:-30}

say() { echo "confidoc: $*"; }
warn() { echo "confidoc: warning: $*" >&2; }
die() {
    echo "confidoc: error: $*" >&2
    exit 1
}

# ---------------------------------------------------------------- paths, users

init_paths() {
    local want=${CONFIDOC_STATE_DIR:-$SRC/var}
    case $want in /*) ;; *) want=$PWD/$want ;; esac
    # Paths end up in nginx.conf, my.cnf and command lines: keep them plain.
    [[ $want =~ ^/[A-Za-z0-9._/+-]*$ ]] ||
        die "CONFIDOC_STATE_DIR '$want' may contain only letters, digits and . _ / + -"
    STATE=${want%/}
    RUN=$STATE/run
    LOG=$STATE/log
    if [ -n "${CONFIDOC_BUILD_DIR:-}" ]; then
        BUILD=$(cd "$CONFIDOC_BUILD_DIR" && pwd -P) || die "no build directory $CONFIDOC_BUILD_DIR"
    else
        BUILD=$SRC/build
    fi
    if [ "$(id -u)" -eq 0 ]; then
        IS_ROOT=1
        API_USER=confidoc DB_USER=mysql MC_USER=memcache NGINX_USER=${NGINX_USER:-www-data}
        DB_ADMIN=root
    else
        IS_ROOT=0
        API_USER=$(id -un)
        DB_USER=$API_USER MC_USER=$API_USER NGINX_USER=$API_USER DB_ADMIN=$API_USER
    fi
}

pidfile() { echo "$RUN/$1.pid"; }

# expected_cmd NAME: a string that the command line of NAME's process contains;
# it names this state directory, so that another stack's process never matches.
expected_cmd() {
    case $1 in
    mariadb) echo "--defaults-file=$STATE/mariadb/my.cnf" ;;
    memcached) echo "ssl_chain_cert=$STATE/memcached/tls/server.crt" ;;
    api) echo "--config $STATE/api/api.conf" ;;
    nginx) echo "-p $STATE/nginx " ;;
    esac
}

expected_exe() {
    case $1 in
    mariadb) echo mariadbd ;;
    memcached) echo memcached ;;
    api) echo confidoc-api ;;
    nginx) echo nginx ;;
    esac
}

# alive PID: the process exists and is not a zombie (PID 1 here reaps late).
alive() {
    local st
    [ -r "/proc/$1/stat" ] || return 1
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# running_pid NAME: prints the PID of NAME if it runs; removes a stale pid file.
running_pid() {
    local f pid cmd
    f=$(pidfile "$1")
    [ -f "$f" ] || return 1
    pid=$(cat "$f" 2>/dev/null || true)
    if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid"; then
        cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
        if [[ $cmd == *"$(expected_exe "$1")"* && "$cmd " == *"$(expected_cmd "$1")"* ]]; then
            echo "$pid"
            return 0
        fi
    fi
    rm -f "$f"
    return 1
}

# ---------------------------------------------------------------- ports

# shellcheck source=lib/ports.sh
. "$SRC/scripts/lib/ports.sh"

CHOSEN=" "
pick_free_port() {
    local p
    for _ in $(seq 1 50); do
        p=$(pick_port) || break
        case $CHOSEN in *" $p "*) continue ;; esac
        echo "$p"
        return 0
    done
    die "no free port found on 127.0.0.1"
}

# recorded VAR: the value of VAR in STATE/ports.env (only NAME=DIGITS lines count).
recorded() {
    [ -f "$STATE/ports.env" ] || return 0
    sed -n "s/^$1=\([0-9][0-9]*\)\$/\1/p" "$STATE/ports.env" | tail -n 1
}

# resolve_ports RUNNING: environment, else STATE/ports.env, else default or a
# free port. Each component's configuration names the others' ports, so while
# any component runs (RUNNING non-empty) no port may change.
resolve_ports() {
    local var val rec running=$1
    for var in CONFIDOC_HTTPS_PORT CONFIDOC_API_PORT CONFIDOC_DB_PORT CONFIDOC_MEMCACHED_PORT; do
        rec=$(recorded "$var")
        val=${!var:-$rec}
        if [ -n "$running" ] && [ -n "$rec" ] && [ "$val" != "$rec" ]; then
            die "$var=$val, but the stack runs ($running) with $rec: make down first to change it"
        fi
        if [ -z "$val" ]; then
            if [ "$var" = CONFIDOC_HTTPS_PORT ]; then val=8443; else val=$(pick_free_port); fi
        fi
        if ! [[ $val =~ ^[0-9]+$ ]] || [ "$val" -lt 1 ] || [ "$val" -gt 65535 ]; then
            die "$var=$val is not a port number"
        fi
        CHOSEN="$CHOSEN$val "
        printf -v "$var" '%s' "$val"
    done
    HTTPS_PORT=$CONFIDOC_HTTPS_PORT API_PORT=$CONFIDOC_API_PORT
    DB_PORT=$CONFIDOC_DB_PORT MC_PORT=$CONFIDOC_MEMCACHED_PORT
    {
        echo "# ports of this stack, chosen at its first start (scripts/stack.sh)"
        echo "CONFIDOC_HTTPS_PORT=$HTTPS_PORT"
        echo "CONFIDOC_API_PORT=$API_PORT"
        echo "CONFIDOC_DB_PORT=$DB_PORT"
        echo "CONFIDOC_MEMCACHED_PORT=$MC_PORT"
    } >"$STATE/ports.env.new"
    chmod 0644 "$STATE/ports.env.new"
    mv "$STATE/ports.env.new" "$STATE/ports.env"
}

# check_port VAR PORT WHAT: a taken port is an error that names it.
check_port() {
    if port_in_use "$2"; then
        die "port $2 ($1, for $3) is already in use on this machine; free it or set $1 to another port"
    fi
}

# ---------------------------------------------------------------- helpers

# fill TEMPLATE OUT NAME=VALUE...: replaces each @NAME@ of TEMPLATE, writes OUT.
fill() {
    local tpl=$1 out=$2 kv args=()
    shift 2
    for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
    sed "${args[@]}" "$tpl" >"$out.new"
    if grep -q '@[A-Z_]*@' "$out.new"; then
        rm -f "$out.new"
        die "internal: unfilled placeholder in $out"
    fi
    mv "$out.new" "$out"
}

# own USER PATH...: chown to USER (root only; as a user everything is already ours).
own() {
    local u=$1
    shift
    if [ "$IS_ROOT" = 1 ]; then chown "$u:$(id -gn "$u")" "$@"; fi
}

# as_user USER CMD...: runs CMD as USER (for access checks).
as_user() {
    local u=$1
    shift
    if [ "$IS_ROOT" = 1 ]; then runuser -u "$u" -- "$@"; else "$@"; fi
}

# launch NAME LOGFILE CMD...: starts CMD detached (own session, no terminal,
# output to LOGFILE, cwd /); the process itself writes STATE/run/NAME.pid.
launch() {
    local name=$1 logf=$2 f
    shift 2
    f=$(pidfile "$name")
    rm -f "$f"
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
    setsid bash -c 'cd / && echo $$ >"$0" && exec "$@"' "$f" "$@" </dev/null >>"$logf" 2>&1 9>&- &
    for _ in $(seq 1 50); do
        [ -s "$f" ] && return 0
        sleep 0.1
    done
    die "$name did not start (see $logf)"
}

# wait_until SECONDS NAME CMD...: polls CMD every 0.1 s while NAME is alive.
wait_until() {
    local secs=$1 name=$2 pid i
    shift 2
    for ((i = 0; i < secs * 10; i++)); do
        "$@" && return 0
        pid=$(running_pid "$name") || return 1
        sleep 0.1
    done
    return 1
}

db_admin() {
    mariadb --no-defaults --socket="$STATE/mariadb/mysqld.sock" -u "$DB_ADMIN" \
        --connect-timeout=5 -N -B "$@"
}

# ---------------------------------------------------------------- install, build

ensure_tools() {
    local missing=() t
    for t in setsid setpriv runuser flock ss curl mariadbd mariadb mariadb-install-db memcached nginx; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    [ ${#missing[@]} -eq 0 ] || die "missing programs: ${missing[*]} (run: sudo make deps)"
}

install_and_build() {
    if [ -z "${CONFIDOC_BUILD_DIR:-}" ]; then
        bash "$SRC/scripts/install-deps.sh"
        # Build products are not secret, and the API's user must run them.
        (
            umask 022
            cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
                cmake --build "$BUILD" -j "$(nproc)" --target confidoc-api confidoc-cas \
                    >"$BUILD/stack-build.log" 2>&1 &&
                chmod 0755 "$BUILD/confidoc-api" "$BUILD/confidoc-cas"
        ) || {
            tail -n 40 "$BUILD/stack-build.log" >&2 2>/dev/null || true
            die "build failed (full log: $BUILD/stack-build.log)"
        }
        rm -f "$BUILD/stack-build.log"
    fi
    ensure_tools
    [ -x "$BUILD/confidoc-api" ] || die "no $BUILD/confidoc-api (build it first)"
    [ -x "$BUILD/confidoc-cas" ] || die "no $BUILD/confidoc-cas (build it first)"
    if [ "$IS_ROOT" = 1 ] && ! id -u "$API_USER" >/dev/null 2>&1; then
        say "creating system user $API_USER"
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$API_USER"
    fi
    if [ "$IS_ROOT" = 1 ]; then
        local u
        for u in "$DB_USER" "$MC_USER" "$NGINX_USER"; do
            id -u "$u" >/dev/null 2>&1 || die "user $u does not exist (is its package installed?)"
        done
        as_user "$API_USER" test -x "$BUILD/confidoc-api" ||
            die "user $API_USER cannot run $BUILD/confidoc-api: it and every directory above it must be executable by others (chmod o+x)"
    fi
}

# ---------------------------------------------------------------- provisioning

# The files each policy injects (docs/policies.md; contract of issue 4).
PROVISIONED=(
    api/tls/server.crt api/tls/server.key api/tls/client-ca.crt api/master.keyring
    api/db/ca.crt api/db/client.crt api/db/client.key api/mc/ca.crt api/mc/client.crt api/mc/client.key
    mariadb/tls/ca.crt mariadb/tls/server.crt mariadb/tls/server.key mariadb/keyfile
    memcached/tls/ca.crt memcached/tls/server.crt memcached/tls/server.key
    nginx/tls/server.crt nginx/tls/server.key nginx/tls/api-ca.crt nginx/tls/api-client.crt
    nginx/tls/api-client.key public/nginx-ca.crt
)

provision() {
    local out rc=0 f
    say "provisioning keys and certificates (confidoc-cas)"
    out=$("$BUILD/confidoc-cas" provision --policies "$SRC/deploy/policies" --state "$STATE" \
        --var API_HOST=localhost --var NGINX_HOST=localhost --var DB_HOST=localhost \
        --var MEMCACHED_HOST=localhost --var "API_USER=$API_USER" --var "DB_USER=$DB_USER" \
        --var "MEMCACHED_USER=$MC_USER" --var "NGINX_USER=$NGINX_USER" 2>&1) || rc=$?
    printf '%s\n' "$out" >>"$LOG/cas.log"
    [ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/  cas: /'
    [ "$rc" -eq 0 ] || die "confidoc-cas provision failed (exit $rc)"
    for f in "${PROVISIONED[@]}"; do
        [ -s "$STATE/$f" ] || die "confidoc-cas did not write $STATE/$f"
    done
    if grep -qiE 'renew|rotat' <<<"$out" && [ -n "$(running_list)" ]; then
        warn "certificates were renewed while $(running_list) kept running; run make down && make up to use them"
    fi
    if [ "$IS_ROOT" = 1 ]; then
        as_user "$DB_USER" test -r "$STATE/mariadb/tls/server.key" ||
            die "user $DB_USER cannot read $STATE/mariadb/tls/server.key: every directory above $STATE must be traversable by others (chmod o+x), or set CONFIDOC_STATE_DIR elsewhere (e.g. /var/lib/confidoc)"
        as_user "$MC_USER" test -r "$STATE/memcached/tls/server.key" ||
            die "user $MC_USER cannot read $STATE/memcached/tls/server.key"
        as_user "$API_USER" test -r "$STATE/api/tls/server.key" ||
            die "user $API_USER cannot read $STATE/api/tls/server.key"
    fi
}

running_list() {
    local c l=""
    for c in "${COMPONENTS[@]}"; do
        if running_pid "$c" >/dev/null; then l="$l $c"; fi
    done
    echo "${l# }"
}

# ---------------------------------------------------------------- components

start_mariadb() {
    local d=$STATE/mariadb user_line="user=$DB_USER"
    mkdir -p "$d/data" "$d/tmp"
    chmod 0700 "$d" "$d/data" "$d/tmp"
    fill "$SRC/deploy/mariadb/my.cnf.in" "$d/my.cnf" "USER_LINE=$user_line" "DB_DIR=$d" \
        "DB_PORT=$DB_PORT"
    chmod 0600 "$d/my.cnf"
    own "$DB_USER" "$d/data" "$d/tmp" "$d/my.cnf"
    check_port CONFIDOC_DB_PORT "$DB_PORT" MariaDB
    if [ ! -d "$d/data/mysql" ]; then
        say "initialising MariaDB's data directory"
        mariadb-install-db --defaults-file="$d/my.cnf" --user="$DB_USER" \
            --auth-root-authentication-method=socket --auth-root-socket-user="$DB_ADMIN" \
            --skip-test-db >"$LOG/mariadb-install.log" 2>&1 || {
            tail -n 30 "$LOG/mariadb-install.log" >&2
            die "mariadb-install-db failed (see $LOG/mariadb-install.log)"
        }
    fi
    launch mariadb "$LOG/mariadb.out" mariadbd --defaults-file="$d/my.cnf"
    if ! wait_until "$START_TIMEOUT" mariadb \
        mariadb-admin --no-defaults --socket="$d/mysqld.sock" -u "$DB_ADMIN" --connect-timeout=2 \
        ping >/dev/null 2>&1; then
        tail -n 30 "$d/error.log" >&2 2>/dev/null || true
        die "MariaDB did not come up (see $d/error.log)"
    fi
    # Idempotent: the database and the API's account, authenticated by its
    # client certificate alone (subject and issuer), TCP from loopback only.
    db_admin -e "CREATE DATABASE IF NOT EXISTS confidoc;
        CREATE USER IF NOT EXISTS 'confidoc'@'127.0.0.1';
        ALTER USER 'confidoc'@'127.0.0.1'
            REQUIRE SUBJECT '/CN=confidoc-api-db' AND ISSUER '/CN=confidoc MariaDB CA';
        GRANT ALL PRIVILEGES ON confidoc.* TO 'confidoc'@'127.0.0.1';" ||
        die "cannot create MariaDB's confidoc account"
}

start_memcached() {
    local d=$STATE/memcached args=() line
    check_port CONFIDOC_MEMCACHED_PORT "$MC_PORT" memcached
    fill "$SRC/deploy/memcached/memcached.conf.in" "$d/memcached.conf" "MEMCACHED_PORT=$MC_PORT" \
        "MC_DIR=$d"
    chmod 0600 "$d/memcached.conf"
    while IFS= read -r line; do
        case $line in '' | '#'*) continue ;; esac
        # "-p 1234" is two arguments; "-o a=b,c=d" likewise.
        args+=("${line%% *}")
        [ "${line#* }" = "$line" ] || args+=("${line#* }")
    done <"$d/memcached.conf"
    [ "$IS_ROOT" = 1 ] && args+=(-u "$MC_USER")
    launch memcached "$LOG/memcached.log" memcached "${args[@]}"
    wait_until 10 memcached port_in_use "$MC_PORT" ||
        die "memcached did not come up (see $LOG/memcached.log)"
}

# Keys of confidoc-api that the stack sets itself (its wiring); the same
# variables in the environment are not passed to the API.
WIRING_KEYS=(listen_addr listen_port tls_cert tls_key client_ca allowed_client_subjects
    trusted_proxy_subjects master_key_file db_host db_port db_name db_user db_tls_ca db_tls_cert
    db_tls_key db_verify_server_name memcached_servers memcached_tls_ca memcached_tls_cert
    memcached_tls_key memcached_server_name)

api_probe() {
    curl -s -o /dev/null --max-time 3 --resolve "localhost:$API_PORT:127.0.0.1" \
        --cacert "$STATE/nginx/tls/api-ca.crt" --cert "$STATE/nginx/tls/api-client.crt" \
        --key "$STATE/nginx/tls/api-client.key" "https://localhost:$API_PORT/healthz"
}

start_api() {
    local d=$STATE/api k var unset=() cmd=()
    check_port CONFIDOC_API_PORT "$API_PORT" confidoc-api
    cat >"$d/api.conf.new" <<EOF
# api.conf: confidoc-api of the local stack, written by scripts/stack.sh at
# each start (edits are lost). Every key can be overridden from the
# environment of \`make up\` as CONFIDOC_<KEY>, except the wiring below.
listen_addr = 127.0.0.1
listen_port = $API_PORT
tls_cert = $d/tls/server.crt
tls_key = $d/tls/server.key
client_ca = $d/tls/client-ca.crt
allowed_client_subjects = CN=confidoc-proxy
trusted_proxy_subjects = CN=confidoc-proxy
master_key_file = $d/master.keyring
db_host = localhost
db_port = $DB_PORT
db_name = confidoc
db_user = confidoc
db_tls_ca = $d/db/ca.crt
db_tls_cert = $d/db/client.crt
db_tls_key = $d/db/client.key
memcached_servers = 127.0.0.1:$MC_PORT
memcached_server_name = localhost
memcached_tls_ca = $d/mc/ca.crt
memcached_tls_cert = $d/mc/client.crt
memcached_tls_key = $d/mc/client.key
EOF
    chmod 0600 "$d/api.conf.new"
    own "$API_USER" "$d/api.conf.new"
    mv "$d/api.conf.new" "$d/api.conf"
    for k in "${WIRING_KEYS[@]}"; do
        var=CONFIDOC_${k^^}
        if [ -n "${!var+x}" ]; then
            unset+=(-u "$var")
            case $var in
            CONFIDOC_DB_PORT | CONFIDOC_DB_USER) ;; # the stack's own variables, same meaning
            *) warn "$var is set by the stack (api.conf); the environment's value is not used" ;;
            esac
        fi
    done
    if [ "$IS_ROOT" = 1 ]; then
        cmd=(setpriv --reuid="$API_USER" --regid="$API_USER" --init-groups --no-new-privs
            --inh-caps=-all --bounding-set=-all --)
    fi
    cmd+=(env "${unset[@]}" "$BUILD/confidoc-api" --config "$d/api.conf")
    launch api "$LOG/api.log" "${cmd[@]}"
    wait_until "$START_TIMEOUT" api api_probe || {
        tail -n 20 "$LOG/api.log" >&2 2>/dev/null || true
        die "confidoc-api did not come up (see $LOG/api.log)"
    }
}

nginx_probe() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 \
        --resolve "localhost:$HTTPS_PORT:127.0.0.1" --cacert "$STATE/public/nginx-ca.crt" \
        "https://localhost:$HTTPS_PORT/readyz" 2>/dev/null) || true
    [ "$code" = 200 ]
}

start_nginx() {
    local d=$STATE/nginx user_directive="" max_body=${CONFIDOC_MAX_BODY_BYTES:-16777216}
    [[ $max_body =~ ^[0-9]+$ ]] || die "CONFIDOC_MAX_BODY_BYTES=$max_body is not a number"
    [ "$IS_ROOT" = 1 ] && user_directive="user $NGINX_USER;"
    check_port CONFIDOC_HTTPS_PORT "$HTTPS_PORT" nginx
    mkdir -p "$d/conf" "$d/tmp"
    own "$NGINX_USER" "$d/tmp"
    chmod 0700 "$d/tmp"
    fill "$SRC/deploy/nginx/nginx.conf.in" "$d/conf/nginx.conf" "USER_DIRECTIVE=$user_directive" \
        "NGINX_DIR=$d" "LOG_DIR=$LOG" "API_PORT=$API_PORT" "HTTPS_PORT=$HTTPS_PORT" \
        "MAX_BODY_BYTES=$max_body" "API_HOST=localhost"
    nginx -q -t -p "$d" -c conf/nginx.conf -e "$LOG/nginx-error.log" >"$LOG/nginx-test.log" 2>&1 || {
        cat "$LOG/nginx-test.log" >&2
        die "nginx rejects its configuration $d/conf/nginx.conf"
    }
    launch nginx "$LOG/nginx.out" nginx -p "$d" -c conf/nginx.conf -e "$LOG/nginx-error.log" \
        -g 'daemon off;'
    wait_until "$START_TIMEOUT" nginx nginx_probe || {
        tail -n 20 "$LOG/nginx-error.log" >&2 2>/dev/null || true
        die "the stack does not answer through nginx on https://localhost:$HTTPS_PORT (see $LOG/nginx-error.log)"
    }
}

# ---------------------------------------------------------------- stack.env

write_env() {
    local s=$STATE
    cat >"$s/stack.env.new" <<EOF
# stack.env: the local confidoc stack, written by \`make up\` (scripts/stack.sh).
# Source it: . $s/stack.env   (docs/operations.md describes every variable)
CONFIDOC_STATE_DIR=$s
CONFIDOC_URL=https://localhost:$HTTPS_PORT
CONFIDOC_CACERT=$s/public/nginx-ca.crt
CONFIDOC_HTTPS_PORT=$HTTPS_PORT
CONFIDOC_API_ADDR=127.0.0.1:$API_PORT
CONFIDOC_DB_ADDR=127.0.0.1:$DB_PORT
CONFIDOC_MEMCACHED_ADDR=127.0.0.1:$MC_PORT
CONFIDOC_API_PORT=$API_PORT
CONFIDOC_DB_PORT=$DB_PORT
CONFIDOC_MEMCACHED_PORT=$MC_PORT
CONFIDOC_API_CACERT=$s/nginx/tls/api-ca.crt
CONFIDOC_PROXY_CLIENT_CERT=$s/nginx/tls/api-client.crt
CONFIDOC_PROXY_CLIENT_KEY=$s/nginx/tls/api-client.key
CONFIDOC_DB_USER=confidoc
CONFIDOC_DB_CACERT=$s/api/db/ca.crt
CONFIDOC_DB_CLIENT_CERT=$s/api/db/client.crt
CONFIDOC_DB_CLIENT_KEY=$s/api/db/client.key
CONFIDOC_DB_DATADIR=$s/mariadb/data
CONFIDOC_DB_ADMIN_SOCKET=$s/mariadb/mysqld.sock
CONFIDOC_MEMCACHED_CACERT=$s/api/mc/ca.crt
CONFIDOC_MEMCACHED_CLIENT_CERT=$s/api/mc/client.crt
CONFIDOC_MEMCACHED_CLIENT_KEY=$s/api/mc/client.key
CONFIDOC_API_PIDFILE=$RUN/api.pid
CONFIDOC_DB_PIDFILE=$RUN/mariadb.pid
CONFIDOC_MEMCACHED_PIDFILE=$RUN/memcached.pid
CONFIDOC_NGINX_PIDFILE=$RUN/nginx.pid
CONFIDOC_LOG_DIR=$LOG
EOF
    chmod 0644 "$s/stack.env.new"
    mv "$s/stack.env.new" "$s/stack.env"
}

print_info() {
    cat <<EOF

confidoc is up: https://localhost:$HTTPS_PORT
  CA certificate (verifies nginx): $STATE/public/nginx-ca.crt
  variables for scripts:           . $STATE/stack.env
  logs:                            $LOG/
Try:
  curl --cacert $STATE/public/nginx-ca.crt -ubobross:password123 -X GET https://localhost:$HTTPS_PORT/users/create_account
  curl --cacert $STATE/public/nginx-ca.crt -ubobross:password123 -X POST -H "Content-Type: application/json" -d '{"record_id":"31","content":"Ever make mistakes in life? Lets make them birds. Yeah, theyre birds now."}' https://localhost:$HTTPS_PORT/documents/create_document
  curl --cacert $STATE/public/nginx-ca.crt -ubobross:password123 -X GET https://localhost:$HTTPS_PORT/documents/31
Stop it with: make down${CONFIDOC_STATE_DIR:+ (with the same CONFIDOC_STATE_DIR)}
EOF
}

# ---------------------------------------------------------------- commands

lock_state() {
    exec 9>"$RUN/lock"
    flock -w 120 9 || die "another make up/down holds $RUN/lock"
}

cmd_up() {
    local c todo=() pid
    install_and_build
    mkdir -p "$STATE"
    chmod "$([ "$IS_ROOT" = 1 ] && echo 0711 || echo 0700)" "$STATE"
    mkdir -p "$RUN" "$LOG"
    chmod 0700 "$RUN" "$LOG"
    lock_state
    resolve_ports "$(running_list)"
    for c in "${COMPONENTS[@]}"; do
        if pid=$(running_pid "$c"); then
            say "$c is running (pid $pid)"
        else
            todo+=("$c")
        fi
    done
    if [ ${#todo[@]} -eq 0 ]; then
        say "the stack is already running; nothing to do"
        write_env
        print_info
        return 0
    fi
    # Every port first: a taken one stops make up before anything starts.
    for c in "${todo[@]}"; do
        case $c in
        mariadb) check_port CONFIDOC_DB_PORT "$DB_PORT" MariaDB ;;
        memcached) check_port CONFIDOC_MEMCACHED_PORT "$MC_PORT" memcached ;;
        api) check_port CONFIDOC_API_PORT "$API_PORT" confidoc-api ;;
        nginx) check_port CONFIDOC_HTTPS_PORT "$HTTPS_PORT" nginx ;;
        esac
    done
    provision
    for c in "${todo[@]}"; do
        say "starting $c"
        "start_$c"
    done
    # nginx answered /readyz when it started; if it was already running, check.
    wait_until "$START_TIMEOUT" nginx nginx_probe ||
        die "the stack does not answer through nginx on https://localhost:$HTTPS_PORT"
    write_env
    print_info
}

# stop_one NAME: graceful stop (nginx: QUIT; others: TERM), bounded, then KILL.
stop_one() {
    local name=$1 pid sig=TERM i
    pid=$(running_pid "$name") || return 0
    [ "$name" = nginx ] && sig=QUIT
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        warn "$name (pid $pid) did not stop within ${STOP_TIMEOUT}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            alive "$pid" || break
            sleep 0.1
        done
        alive "$pid" && die "$name (pid $pid) survives SIGKILL"
    fi
    rm -f "$(pidfile "$name")"
    say "stopped $name (pid $pid)"
}

cmd_down() {
    local i
    if [ ! -d "$RUN" ]; then
        say "no stack in $STATE; nothing to stop"
        return 0
    fi
    lock_state
    for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
        stop_one "${COMPONENTS[i]}"
    done
    say "the stack in $STATE is stopped"
}

cmd_stop() {
    local c=${1:-}
    case " ${COMPONENTS[*]} " in *" $c "*) ;; *) die "usage: stack.sh stop mariadb|memcached|api|nginx" ;; esac
    [ -d "$RUN" ] || return 0
    lock_state
    stop_one "$c"
}

cmd_status() {
    local c pid rc=0
    for c in "${COMPONENTS[@]}"; do
        if [ -d "$RUN" ] && pid=$(running_pid "$c"); then
            echo "$c: running (pid $pid)"
        else
            echo "$c: stopped"
            rc=3
        fi
    done
    return $rc
}

main() {
    local sub=${1:-}
    [ $# -gt 0 ] && shift
    init_paths
    case $sub in
    up) cmd_up ;;
    down) cmd_down ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status ;;
    *)
        echo "usage: scripts/stack.sh up|down|status|stop COMPONENT" >&2
        exit 2
        ;;
    esac
}

main "$@"
