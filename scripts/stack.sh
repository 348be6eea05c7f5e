#!/usr/bin/env bash
# stack.sh: the whole confidoc system on one machine (`make up` / `make down`).
#
#   scripts/stack.sh up            build if needed, start the CAS, then what is not running
#   scripts/stack.sh down          stop every process the stack started (gracefully; the CAS last)
#   scripts/stack.sh status        one line per component; exit 0 when all run, 3 otherwise
#   scripts/stack.sh stop NAME     stop one component (cas, mariadb, memcached,
#                                  memcached-lockout, api, nginx)
#
# The CAS (`confidoc-cas serve`) starts first and holds every key, sealed
# under STATE/cas-key/sealing.key; every other component starts through
# `confidoc-cas run --session NAME -- CMD`, which gets its secrets into a
# private tmpfs (at STATE/secrets/NAME, visible only inside the service's own
# mount namespace) once the CAS has checked its executable, its configuration
# files and its uid against the session (deploy/policies/NAME.yaml with
# deploy/sessions/NAME.yaml). No service key is a file on disk.
#
# State lives under $CONFIDOC_STATE_DIR (default: /var/lib/confidoc as root,
# var/ in the source tree otherwise); the layout and every variable are
# described in docs/operations.md. As root, nothing this script (or
# confidoc-cas) writes, chmods or chowns lies in a directory that a service
# account can write: configuration and keys sit in root-owned directories, and
# each service owns only its leaf files and the directories it must write
# (MariaDB's data/, tmp/, run/; nginx's temporary directories below tmp/).
# Environment: CONFIDOC_STATE_DIR, CONFIDOC_HTTPS_PORT (default 8443),
# CONFIDOC_API_PORT, CONFIDOC_DB_PORT, CONFIDOC_MEMCACHED_PORT,
# CONFIDOC_LOCKOUT_MEMCACHED_PORT, CONFIDOC_CAS_PORT (default: free
# ports chosen at the first start and kept in STATE/ports.env),
# CONFIDOC_BUILD_DIR (use these binaries and do not build),
# CONFIDOC_NGINX_WORKERS (nginx's worker_processes: auto, the default, or a
# number from 1 to 64), NGINX_USER (nginx workers' user when root, default www-data), CONFIDOC_CAS_RECOVERY_KEYS and
# CONFIDOC_CAS_RECOVERY_THRESHOLD (the CAS's recovery public keys, used at its
# first start only), and every CONFIDOC_<KEY> of confidoc-api, which reaches
# the API.
set -euo pipefail
umask 077

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# memcached-lockout holds only the failed-login counters (lockout_memcached_servers),
# so that no flood of rate-limit keys can evict them.
COMPONENTS=(cas mariadb memcached memcached-lockout api nginx) # start order; stop order is the reverse
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
    local want=${CONFIDOC_STATE_DIR:-}
    if [ -z "$want" ]; then
        # root: a system location every service user can traverse (root's own
        # home is 0700 and stays so); a user: var/ in the tree.
        # A stack that an earlier make up made as root in var/ (the default
        # before) stays where it is, so upgrading does not start an empty one.
        if [ "$(id -u)" -ne 0 ]; then
            want=$SRC/var
        elif [ -f "$SRC/var/ports.env" ] && [ ! -L "$SRC/var" ]; then
            want=$SRC/var
            warn "using the state of an earlier make up in $want (root's default is now /var/lib/confidoc; CONFIDOC_STATE_DIR chooses)"
        else
            want=/var/lib/confidoc
        fi
    fi
    case $want in /*) ;; *) want=$PWD/$want ;; esac
    # Paths end up in nginx.conf, my.cnf and command lines: keep them plain.
    [[ $want =~ ^/[A-Za-z0-9._/+-]*$ ]] ||
        die "CONFIDOC_STATE_DIR '$want' may contain only letters, digits and . _ / + -"
    STATE=${want%/}
    RUN=$STATE/run
    LOG=$STATE/log
    SECRETS=$STATE/secrets # mount points of the services' private tmpfs (empty on the host)
    CAS_SOCK=$RUN/cas.sock
    if [ -n "${CONFIDOC_BUILD_DIR:-}" ]; then
        BUILD=$(cd "$CONFIDOC_BUILD_DIR" && pwd -P) || die "no build directory $CONFIDOC_BUILD_DIR"
    else
        BUILD=$SRC/build
    fi
    BINDIR=$BUILD # where the programs that service users run are (root: installed)
    if [ "$(id -u)" -eq 0 ]; then
        IS_ROOT=1
        API_USER=confidoc DB_USER=mysql MC_USER=memcache NGINX_USER=${NGINX_USER:-www-data}
        MIGRATE_USER=confidoc-migrate # policy migrate's owner (deploy/policies/migrate.yaml)
        CAS_USER=confidoc-cas         # the CAS's network worker (its parent stays root)
        PROBE_USER=confidoc-probe     # session probe: the operator's checks
        NGINX_MASTER_USER=root        # nginx's master reads its key; its workers are NGINX_USER
        # MariaDB's administrator account is the mysql user's own (unix_socket):
        # root never speaks MariaDB's protocol to a server that mysql controls.
        DB_ADMIN=$DB_USER
    else
        IS_ROOT=0
        API_USER=$(id -un)
        DB_USER=$API_USER MC_USER=$API_USER NGINX_USER=$API_USER DB_ADMIN=$API_USER
        MIGRATE_USER=$API_USER CAS_USER=$API_USER PROBE_USER=$API_USER NGINX_MASTER_USER=$API_USER
    fi
}

pidfile() { echo "$RUN/$1.pid"; }

# Pid files: STATE/run is root's (0700) and each pid file is written by the
# shell that then execs the component (launch), before any privilege is
# dropped: a service cannot rewrite one to make root signal another process.
# A pid that the kernel reused is caught by expected_cmd/expected_exe.
# expected_cmd NAME: a string that the command line of NAME's process contains;
# it names this state directory, so that another stack's process never matches.
expected_cmd() {
    case $1 in
    cas) echo "serve --state $STATE --listen" ;;
    mariadb) echo "--defaults-file=$STATE/mariadb/my.cnf" ;;
    memcached) echo "ssl_chain_cert=$SECRETS/memcached/memcached/tls/server.crt" ;;
    memcached-lockout) echo "ssl_chain_cert=$SECRETS/memcached/memcached-lockout/tls/server.crt" ;;
    api) echo "--config $STATE/api/api.conf" ;;
    nginx) echo "-p $STATE/nginx " ;;
    esac
}

expected_exe() {
    case $1 in
    cas) echo confidoc-cas ;;
    mariadb) echo mariadbd ;;
    memcached | memcached-lockout) echo memcached ;;
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
        # A process in the middle of execve (the launcher becoming the
        # service) shows an empty command line for a moment: read again
        # rather than take it for another process and drop its pid file.
        for _ in 1 2 3 4 5; do
            cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
            [ -n "$cmd" ] || ! alive "$pid" && break
            sleep 0.05
        done
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
# shellcheck source=lib/api_conf.sh
. "$SRC/scripts/lib/api_conf.sh"

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
    for var in CONFIDOC_HTTPS_PORT CONFIDOC_API_PORT CONFIDOC_DB_PORT CONFIDOC_MEMCACHED_PORT \
        CONFIDOC_LOCKOUT_MEMCACHED_PORT CONFIDOC_CAS_PORT; do
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
    LMC_PORT=$CONFIDOC_LOCKOUT_MEMCACHED_PORT CAS_PORT=$CONFIDOC_CAS_PORT
    {
        echo "# ports of this stack, chosen at its first start (scripts/stack.sh)"
        echo "CONFIDOC_HTTPS_PORT=$HTTPS_PORT"
        echo "CONFIDOC_API_PORT=$API_PORT"
        echo "CONFIDOC_DB_PORT=$DB_PORT"
        echo "CONFIDOC_MEMCACHED_PORT=$MC_PORT"
        echo "CONFIDOC_LOCKOUT_MEMCACHED_PORT=$LMC_PORT"
        echo "CONFIDOC_CAS_PORT=$CAS_PORT"
    } | put_file "$STATE/ports.env" 0644 root
}

# check_port VAR PORT WHAT: a taken port is an error that names it.
check_port() {
    if port_in_use "$2"; then
        die "port $2 ($1, for $3) is already in use on this machine; free it or set $1 to another port"
    fi
}

# ---------------------------------------------------------------- helpers

# put_file OUT MODE GROUP: writes stdin to OUT, which lies in a directory only
# root can write: a new file made by mktemp (O_EXCL: never an existing file or
# link) gets MODE and owner root:GROUP (as root), then replaces OUT with
# rename, which replaces a link rather than following it.
put_file() {
    local out=$1 mode=$2 group=$3 tmp
    tmp=$(mktemp "$(dirname "$out")/.$(basename "$out").XXXXXX") || die "cannot write $out"
    if ! cat >"$tmp" || ! chmod "$mode" "$tmp" ||
        { [ "$IS_ROOT" = 1 ] && ! chown "root:$group" "$tmp"; } || ! mv -f -T "$tmp" "$out"; then
        rm -f "$tmp"
        die "cannot write $out"
    fi
}

# fill TEMPLATE OUT MODE GROUP NAME=VALUE...: replaces each @NAME@ of TEMPLATE,
# writes OUT (put_file).
fill() {
    local tpl=$1 out=$2 mode=$3 group=$4 kv args=() text
    shift 4
    for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
    text=$(sed "${args[@]}" "$tpl") || die "cannot read $tpl"
    if grep -q '@[A-Z_]*@' <<<"$text"; then
        die "internal: unfilled placeholder in $out"
    fi
    printf '%s\n' "$text" | put_file "$out" "$mode" "$group"
}

# group_of USER: USER's primary group.
group_of() { id -gn "$1"; }

# root_dir DIR MODE [GROUP]: DIR as a root-owned directory (as root; a user's
# own otherwise). Its parent is root's, so nobody else can swap DIR between
# the check and the chmod/chown; a link or file in its place (left by an older
# layout, in which a service owned the parent) is removed, never followed.
root_dir() {
    local d=$1 mode=$2 group=${3:-root}
    if [ -L "$d" ] || { [ -e "$d" ] && [ ! -d "$d" ]; }; then
        warn "$d was not a directory (planted in an older layout?); replacing it"
        rm -f "$d" || die "cannot remove $d"
    fi
    mkdir -p "$d" && chmod "$mode" "$d" || die "cannot create $d"
    if [ "$IS_ROOT" = 1 ]; then chown -h "root:$group" "$d" || die "cannot chown $d"; fi
}

# service_dir DIR USER: the one directory (in a root-owned parent) that
# service USER writes: 0700, USER's. A link in its place is refused: the
# directory holds the service's data.
service_dir() {
    local d=$1 u=$2
    [ -L "$d" ] && die "$d is a symbolic link; refusing to use it (move it away and run make up again)"
    mkdir -p "$d" && chmod 0700 "$d" || die "cannot create $d"
    if [ "$IS_ROOT" = 1 ]; then chown -h "$u:$(group_of "$u")" "$d" || die "cannot chown $d"; fi
}

# launch NAME LOGFILE CMD...: starts CMD detached (own session, no terminal,
# output to LOGFILE, cwd /); the process itself writes STATE/run/NAME.pid.
# With LAUNCH_FILTER set (a sed script), the output passes through it first.
launch() {
    local name=$1 logf=$2 f
    shift 2
    f=$(pidfile "$name")
    rm -f "$f"
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
    if [ -n "${LAUNCH_FILTER:-}" ]; then
        setsid bash -c 'cd / && echo $$ >"$0" && exec "$@"' "$f" "$@" </dev/null 2>&1 9>&- |
            setsid sed -u -E "$LAUNCH_FILTER" >>"$logf" 2>&1 9>&- &
    else
        setsid bash -c 'cd / && echo $$ >"$0" && exec "$@"' "$f" "$@" </dev/null >>"$logf" 2>&1 9>&- &
    fi
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

# db_admin ARGS...: the mariadb client as MariaDB's administrator, run as
# that OS user (unix_socket authentication).
db_admin() {
    as_service "$DB_ADMIN" mariadb --no-defaults --socket="$STATE/mariadb/run/mysqld.sock" \
        -u "$DB_ADMIN" --connect-timeout=5 -N -B "$@"
}

# db_ping: MariaDB answers on its socket (asked as its own user; a refused
# login counts as an answer, as mariadb-admin ping has it).
db_ping() {
    as_service "$DB_ADMIN" mariadb-admin --no-defaults --socket="$STATE/mariadb/run/mysqld.sock" \
        -u "$DB_ADMIN" --connect-timeout=2 ping >/dev/null 2>&1
}

# ---------------------------------------------------------------- install, build

ensure_tools() {
    local missing=() t
    for t in setsid setpriv runuser flock ss curl jq openssl sha256sum mariadbd mariadb mariadb-install-db memcached nginx; do
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
    install_binaries
    local nu
    for nu in "$API_USER" "$MIGRATE_USER" "$CAS_USER" "$PROBE_USER"; do
        if [ "$IS_ROOT" = 1 ] && ! id -u "$nu" >/dev/null 2>&1; then
            say "creating system user $nu"
            useradd --system --user-group --no-create-home --home-dir /nonexistent \
                --shell /usr/sbin/nologin "$nu"
        fi
    done
    if [ "$IS_ROOT" = 1 ]; then
        local u
        for u in "$DB_USER" "$MC_USER" "$NGINX_USER"; do
            id -u "$u" >/dev/null 2>&1 || die "user $u does not exist (is its package installed?)"
        done
    fi
}

# install_binaries: as root, the programs (confidoc-api, which a service user
# runs, and confidoc-cas, the CAS and its launcher) are copied to root-owned
# 0755 directories named by their content, $LIBEXEC/<sha256 prefix>/, so that
# the source tree may sit anywhere (root's 0700 home included), two stacks or
# builds never replace each other's program, and a rebuild never changes the
# bytes a running CAS trusts as its launcher. A user's stack runs them from
# the build directory. CAS_BIN: the launcher the running CAS accepts (its own
# executable), else the one installed now.
LIBEXEC=${CONFIDOC_LIBEXEC_DIR:-/usr/local/libexec/confidoc}
install_one() {
    local prog=$1 h dir
    h=$(sha256sum "$BUILD/$prog" | cut -c1-16) || die "cannot read $BUILD/$prog"
    dir=$LIBEXEC/$h
    if ! cmp -s "$BUILD/$prog" "$dir/$prog" 2>/dev/null; then
        install -d -m 0755 -o root -g root "$LIBEXEC" "$dir" &&
            install -m 0755 -o root -g root "$BUILD/$prog" "$dir/.$prog.new" &&
            mv -f -T "$dir/.$prog.new" "$dir/$prog" ||
            die "cannot install $prog into $dir"
    fi
    echo "$dir"
}
install_binaries() {
    CAS_BIN=$BUILD/confidoc-cas
    if [ "$IS_ROOT" = 1 ]; then
        BINDIR=$(install_one confidoc-api) || exit 1
        CAS_BIN=$(install_one confidoc-cas)/confidoc-cas || exit 1
    fi
    local pid exe
    if pid=$(running_pid cas); then
        exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
        if [ -n "$exe" ] && [ -x "$exe" ]; then
            CAS_BIN=$exe
        else
            warn "the running CAS's program is gone (rebuilt?): make down && make up to use the new one"
        fi
    fi
}

# ---------------------------------------------------------------- the CAS

# Files that offline provisioning (the stack before the CAS service) wrote
# beside the services: removed once the CAS holds them sealed (cas_upgrade).
OLD_PROVISIONED=(
    api/tls/server.crt api/tls/server.key api/tls/client-ca.crt api/master.keyring
    api/db/ca.crt api/db/client.crt api/db/client.key api/mc/ca.crt api/mc/client.crt api/mc/client.key
    mariadb/tls/ca.crt mariadb/tls/server.crt mariadb/tls/server.key mariadb-key/keyfile
    migrate/db/ca.crt migrate/db/client.crt migrate/db/client.key
    memcached/tls/ca.crt memcached/tls/server.crt memcached/tls/server.key
    memcached-lockout/tls/ca.crt memcached-lockout/tls/server.crt memcached-lockout/tls/server.key
    nginx/tls/server.crt nginx/tls/server.key nginx/tls/api-ca.crt nginx/tls/api-client.crt
    nginx/tls/api-client.key probe/api-ca.crt probe/api-client.crt probe/api-client.key
    probe/db-ca.crt probe/db-client.crt probe/db-client.key probe/mc-ca.crt probe/mc-client.crt
    probe/mc-client.key
)
OLD_DIRS=(api/tls api/db api/mc mariadb/tls migrate/db memcached/tls memcached-lockout/tls nginx/tls)
SESSIONS=(mariadb memcached migrate api nginx probe)
SEALING_KEY_DIR='' SEALING_KEY='' OPERATOR_DIR=''

# cas_run SESSION CMD ARGS...: CMD through the attested launcher (as
# SESSION's user, with SESSION's secrets in its private tmpfs). Not root, a
# launcher without a user namespace puts the files in the mount point itself
# (--fallback-dir: on disk, the user's 0700 directory; weaker).
cas_run() {
    local session=$1 fb=()
    shift
    [ "$IS_ROOT" = 1 ] || fb=(--fallback-dir "$SECRETS/$session")
    "$CAS_BIN" run --session "$session" --socket "$CAS_SOCK" "${fb[@]}" -- "$@"
}

# cas_argv: CASRUN_<session>, the launcher's command prefix for each session.
CASRUN_mariadb=() CASRUN_memcached=() CASRUN_migrate=() CASRUN_api=() CASRUN_nginx=()
cas_argv() {
    local n fb=()
    for n in "${SESSIONS[@]}"; do
        [ "$IS_ROOT" = 1 ] || fb=(--fallback-dir "$SECRETS/$n")
        eval "CASRUN_$n=(\"\$CAS_BIN\" run --session $n --socket \"\$CAS_SOCK\" \"\${fb[@]}\" --)"
    done
}

# sha_of FILE: its SHA-256 (hex).
sha_of() {
    local h
    h=$(sha256sum <"$1" | cut -d' ' -f1) || die "cannot read $1"
    [[ $h =~ ^[0-9a-f]{64}$ ]] || die "cannot hash $1"
    echo "$h"
}

# exe_of NAME: the absolute path of program NAME.
exe_of() {
    local p
    p=$(command -v "$1") || die "missing program $1"
    readlink -f "$p"
}

# session_vars: SVARS, the --var NAME=VALUE pairs of every session (ports
# and paths decide the configuration files, so these are stable across
# restarts; a new binary or configuration changes its hash and its session).
session_vars() {
    SVARS=(API_HOST=localhost NGINX_HOST=localhost DB_HOST=localhost MEMCACHED_HOST=localhost
        "API_USER=$API_USER" "DB_USER=$DB_USER" "MEMCACHED_USER=$MC_USER" "NGINX_USER=$NGINX_USER"
        "MIGRATE_USER=$MIGRATE_USER" "PROBE_USER=$PROBE_USER" "NGINX_MASTER_USER=$NGINX_MASTER_USER"
        "OPERATOR_KEY_HASH=$OPERATOR_HASH" "STATE_DIR=$STATE" "SECRETS_DIR=$SECRETS"
        "API_EXE_SHA256=$(sha_of "$BINDIR/confidoc-api")"
        "MARIADBD_EXE_SHA256=$(sha_of "$(exe_of mariadbd)")"
        "MEMCACHED_EXE_SHA256=$(sha_of "$(exe_of memcached)")"
        "NGINX_EXE_SHA256=$(sha_of "$(exe_of nginx)")"
        "CURL_EXE_SHA256=$(sha_of "$(exe_of curl)")"
        "OPENSSL_EXE_SHA256=$(sha_of "$(exe_of openssl)")"
        "MARIADB_EXE_SHA256=$(sha_of "$(exe_of mariadb)")"
        "MY_CNF_SHA256=$(sha_of "$STATE/mariadb/my.cnf")"
        "API_CONF_SHA256=$(sha_of "$STATE/api/api.conf")"
        "MIGRATE_CONF_SHA256=$(sha_of "$STATE/migrate/migrate.conf")"
        "NGINX_CONF_SHA256=$(sha_of "$STATE/nginx/conf/nginx.conf")")
}

# write_sessions: RUN/sessions/NAME.yaml = deploy/policies/NAME.yaml followed
# by deploy/sessions/NAME.yaml (the text the CAS keeps, before ${VAR}s).
write_sessions() {
    local n
    root_dir "$RUN/sessions" 0700 root
    for n in "${SESSIONS[@]}"; do
        cat "$SRC/deploy/policies/$n.yaml" "$SRC/deploy/sessions/$n.yaml" |
            put_file "$RUN/sessions/$n.yaml" 0600 root
    done
}

# render FILE: FILE with every ${NAME} of SVARS replaced (as the CAS does).
render() {
    local kv args=()
    for kv in "${SVARS[@]}"; do args+=(-e "s|\${${kv%%=*}}|${kv#*=}|g"); done
    sed "${args[@]}" "$1"
}

# operator_key: the operator's client key (STATE/operator, root's 0700): its
# hash is the CAS's --admin and in every session's access lists. It is the
# operator's credential for session updates, not a service's key.
operator_key() {
    OPERATOR_DIR=$STATE/operator
    root_dir "$OPERATOR_DIR" 0700 root
    if [ ! -s "$OPERATOR_DIR/operator.hash" ]; then
        rm -f "$OPERATOR_DIR/operator.key" "$OPERATOR_DIR/operator.crt"
        (umask 077 && "$CAS_BIN" client-keygen --key "$OPERATOR_DIR/operator.key" \
            --cert "$OPERATOR_DIR/operator.crt" --name confidoc-operator) \
            >"$OPERATOR_DIR/.operator.hash.new" || die "confidoc-cas client-keygen failed"
        mv -f -T "$OPERATOR_DIR/.operator.hash.new" "$OPERATOR_DIR/operator.hash"
    fi
    OPERATOR_HASH=$(tr -d '\n' <"$OPERATOR_DIR/operator.hash")
    [[ $OPERATOR_HASH =~ ^[0-9a-f]{64}$ ]] || die "$OPERATOR_DIR/operator.hash is not a key hash"
}

cas_pin() { tr -d '\n' <"$STATE/cas/identity.pin" 2>/dev/null; }

cas_ready() { [ -S "$CAS_SOCK" ] && port_in_use "$CAS_PORT" && [ -s "$STATE/cas/identity.pin" ]; }

# The CAS: an old plaintext store (offline provisioning) is sealed first;
# the sessions come from RUN/sessions at the first start only (later
# changes: cas_sync_sessions). The sealing key is a root file here: in
# production it belongs on other storage or in the kernel keyring
# (docs/operations.md).
start_cas() {
    local args=() k
    check_port CONFIDOC_CAS_PORT "$CAS_PORT" confidoc-cas
    SEALING_KEY_DIR=$STATE/cas-key SEALING_KEY=$STATE/cas-key/sealing.key
    root_dir "$SEALING_KEY_DIR" 0700 root
    for k in ${CONFIDOC_CAS_RECOVERY_KEYS:-}; do args+=(--recovery-key "$k"); done
    [ -z "${CONFIDOC_CAS_RECOVERY_THRESHOLD:-}" ] ||
        args+=(--recovery-threshold "$CONFIDOC_CAS_RECOVERY_THRESHOLD")
    if [ -d "$STATE/cas" ] && [ ! -e "$STATE/cas/state-key.sealed" ] &&
        [ -n "$(find "$STATE/cas" -mindepth 1 -maxdepth 1 -type d 2>/dev/null)" ]; then
        say "sealing the plaintext store of an older make up ($STATE/cas)"
        "$CAS_BIN" import-plaintext --state "$STATE" --sealing-key "$SEALING_KEY" "${args[@]}" \
            >>"$LOG/cas.log" 2>&1 || die "cannot seal the old store (see $LOG/cas.log)"
    fi
    local wu=() v vars=()
    [ "$IS_ROOT" = 1 ] && wu=(--worker-user "$CAS_USER")
    for v in "${SVARS[@]}"; do vars+=(--var "$v"); done
    rm -f "$CAS_SOCK"
    launch cas "$LOG/cas.log" "$CAS_BIN" serve --state "$STATE" --listen "127.0.0.1:$CAS_PORT" \
        --name localhost --admin "$OPERATOR_HASH" --sealing-key "$SEALING_KEY" --socket "$CAS_SOCK" \
        "${wu[@]}" "${args[@]}" --policies "$RUN/sessions" "${vars[@]}"
    wait_until "$START_TIMEOUT" cas cas_ready || {
        tail -n 20 "$LOG/cas.log" >&2 2>/dev/null || true
        die "confidoc-cas serve did not come up (see $LOG/cas.log)"
    }
}

# cas_client ARGS...: confidoc-cas session ... as the operator.
cas_session() {
    local sub=$1
    shift
    "$CAS_BIN" session "$sub" "$@" --cas "127.0.0.1:$CAS_PORT" --cacert "$STATE/public/cas-ca.crt" \
        --cert "$OPERATOR_DIR/operator.crt" --key "$OPERATOR_DIR/operator.key"
}

# cas_attest: the CAS's CA, after checking its identity against the pin.
cas_attest() {
    local pin
    pin=$(cas_pin)
    [[ $pin =~ ^[0-9a-f]{64}$ ]] || die "no pin in $STATE/cas/identity.pin"
    "$CAS_BIN" attest "127.0.0.1:$CAS_PORT" --expect "$pin" --ca-out "$STATE/public/cas-ca.crt" \
        >>"$LOG/cas.log" 2>&1 || die "the CAS on port $CAS_PORT does not match its pin $pin"
    chmod 0644 "$STATE/public/cas-ca.crt"
}

# cas_sync_sessions: every session whose text (rendered with this make up's
# binaries and configuration files) differs from the CAS's is updated, naming
# its current version as predecessor; a running service keeps what it got.
cas_sync_sessions() {
    local n cur want v vars=()
    for v in "${SVARS[@]}"; do vars+=(--var "$v"); done
    for n in "${SESSIONS[@]}"; do
        want=$(render "$RUN/sessions/$n.yaml") || die "cannot render session $n"
        if cur=$(cas_session get "$n" 2>>"$LOG/cas.log"); then
            cur=$(grep -v '^predecessor:' <<<"$cur")
            [ "$cur" = "$want" ] && continue
            say "updating session $n (binary or configuration changed)"
        else
            say "creating session $n"
        fi
        cas_session put "$RUN/sessions/$n.yaml" "${vars[@]}" --predecessor auto \
            >>"$LOG/cas.log" 2>&1 || die "cannot update session $n at the CAS (see $LOG/cas.log)"
    done
}

# cas_public: the public CA that clients trust, from the CAS's REST API (as
# the original's client pod fetches it), and the probe's certificates.
cas_public() {
    local v f
    v=$(curl -s --max-time 10 --cacert "$STATE/public/cas-ca.crt" \
        "https://127.0.0.1:$CAS_PORT/v1/values/session=nginx,secret=SERVER_CA" | jq -r '.value // empty') ||
        true
    grep -q 'BEGIN CERTIFICATE' <<<"$v" || die "the CAS did not give nginx's public CA"
    if [ -s "$STATE/public/nginx-ca.crt" ] && [ "$(cat "$STATE/public/nginx-ca.crt")" != "$v" ]; then
        # Never delete an old stack's keys when its CA did not survive.
        die "the CAS's nginx CA differs from $STATE/public/nginx-ca.crt, which clients trust"
    fi
    printf '%s\n' "$v" | put_file "$STATE/public/nginx-ca.crt" 0644 root
    # Certificates are public: host copies for stack.env (keys stay in the tmpfs).
    for f in api-ca api-client db-ca db-client mc-ca mc-client; do
        v=$(cas_run probe "$(exe_of openssl)" x509 -in "$SECRETS/probe/probe/$f.crt" 2>>"$LOG/cas.log") ||
            die "the probe session is refused (see $LOG/cas.log)"
        printf '%s\n' "$v" | put_file "$STATE/public/probe-$f.crt" 0644 root
    done
}

# cas_upgrade: the files an older make up provisioned beside the services
# are gone once the CAS holds them sealed (its nginx CA matched above).
cas_upgrade() {
    local f d n=0
    for f in "${OLD_PROVISIONED[@]}"; do
        if [ -e "$STATE/$f" ] || [ -L "$STATE/$f" ]; then
            rm -f "$STATE/$f" || die "cannot remove $STATE/$f"
            n=$((n + 1))
        fi
    done
    for d in "${OLD_DIRS[@]}" probe; do rmdir "$STATE/$d" 2>/dev/null || true; done
    [ "$n" -eq 0 ] || say "removed $n files of the older layout (the CAS holds them sealed)"
}

running_list() {
    local c l=""
    for c in "${COMPONENTS[@]}"; do
        if running_pid "$c" >/dev/null; then l="$l $c"; fi
    done
    echo "${l# }"
}

# ---------------------------------------------------------------- components

# prepare_dirs: the layout (docs/operations.md). As root every directory
# here is root's, 0750 to the group of the one service that reads it; the
# service-writable directories are leaves of root-owned ones. An older layout
# (service-owned mariadb/, api/, nginx/) is taken back here, before anything is
# written inside: anything a service planted there is then replaced, not used.
prepare_dirs() {
    local g_db g_api g_mc g_ng m
    g_db=$(group_of "$DB_USER") g_api=$(group_of "$API_USER")
    g_mc=$(group_of "$MC_USER") g_ng=$(group_of "$NGINX_USER")
    m=$([ "$IS_ROOT" = 1 ] && echo 0750 || echo 0700)
    root_dir "$STATE/mariadb" "$m" "$g_db"
    root_dir "$STATE/mariadb-key" "$m" "$g_db"
    root_dir "$STATE/api" "$m" "$g_api"
    root_dir "$STATE/memcached" "$m" "$g_mc"
    root_dir "$STATE/memcached-lockout" "$m" "$g_mc"
    root_dir "$STATE/nginx" "$m" "$g_ng"
    root_dir "$STATE/nginx/conf" 0700 root
    root_dir "$STATE/nginx/tmp" "$m" "$g_ng"
    root_dir "$STATE/nginx/www" "$m" "$g_ng"
    root_dir "$STATE/migrate" "$m" "$(group_of "$MIGRATE_USER")"
    root_dir "$STATE/public" 0755 root
    # The mount points of the services' tmpfs: empty on the host; the parent
    # is traversable (each service reaches its own tmpfs through it).
    root_dir "$SECRETS" "$([ "$IS_ROOT" = 1 ] && echo 0711 || echo 0700)" root
    local n
    for n in "${SESSIONS[@]}"; do root_dir "$SECRETS/$n" 0700 root; done
    # The at-rest key lived beside the data directory (mariadb/keyfile) before.
    rm -f "$STATE/mariadb/keyfile"
}

# write_configs: every service's configuration file, before the measurements
# are computed (they depend only on ports and paths: stable across restarts).
write_configs() {
    local user_line="user=$DB_USER" user_directive="" max_body=${CONFIDOC_MAX_BODY_BYTES:-16777216} \
        nginx_workers=${CONFIDOC_NGINX_WORKERS:-auto}
    [ "$IS_ROOT" = 1 ] && user_line="" # started as $DB_USER (the launcher), never as root
    fill "$SRC/deploy/mariadb/my.cnf.in" "$STATE/mariadb/my.cnf" 0640 "$(group_of "$DB_USER")" \
        "USER_LINE=$user_line" "DB_DIR=$STATE/mariadb" "TLS_DIR=$SECRETS/mariadb/mariadb/tls" \
        "KEY_DIR=$SECRETS/mariadb/mariadb-key" "DB_PORT=$DB_PORT"
    fill "$SRC/deploy/memcached/memcached.conf.in" "$STATE/memcached/memcached.conf" 0600 root \
        "MEMCACHED_PORT=$MC_PORT" "TLS_DIR=$SECRETS/memcached/memcached/tls" "MEMCACHED_MB=64"
    fill "$SRC/deploy/memcached/memcached.conf.in" "$STATE/memcached-lockout/memcached.conf" 0600 root \
        "MEMCACHED_PORT=$LMC_PORT" "TLS_DIR=$SECRETS/memcached/memcached-lockout/tls" "MEMCACHED_MB=64"
    write_api_conf
    write_migrate_conf
    [[ $max_body =~ ^[0-9]+$ ]] || die "CONFIDOC_MAX_BODY_BYTES=$max_body is not a number"
    [[ $nginx_workers =~ ^(auto|[1-9]|[1-5][0-9]|6[0-4])$ ]] ||
        die "CONFIDOC_NGINX_WORKERS=$nginx_workers: auto or a number from 1 to 64"
    [ "$IS_ROOT" = 1 ] && user_directive="user $NGINX_USER $(group_of "$NGINX_USER");"
    fill "$SRC/deploy/nginx/nginx.conf.in" "$STATE/nginx/conf/nginx.conf" 0600 root \
        "USER_DIRECTIVE=$user_directive" "NGINX_DIR=$STATE/nginx" "TLS_DIR=$SECRETS/nginx/nginx/tls" \
        "LOG_DIR=$LOG" "API_PORT=$API_PORT" "HTTPS_PORT=$HTTPS_PORT" "MAX_BODY_BYTES=$max_body" \
        "API_HOST=localhost" "WWW_DIR=$STATE/nginx/www" "NGINX_WORKERS=$nginx_workers"
    write_www
}

# write_www: what nginx serves itself, in STATE/nginx/www (root's, read by
# nginx's workers through their group): the web application of BUILD/web
# (make web) as www/app/, and docs/openapi.json when the tree has one. Each is
# built complete beside the old one, then renamed into place. Without a
# build of the web application, /app/ answers 404 and the API is unchanged.
write_www() {
    local www=$STATE/nginx/www g f new old
    g=$(group_of "$NGINX_USER")
    rm -rf "$www"/.app.* "$www"/.app-old.* # left by an interrupted make up
    new=$(mktemp -d "$www/.app.XXXXXX") || die "cannot write $www"
    if [ -f "$BUILD/web/index.html" ]; then
        for f in "$BUILD"/web/*; do
            [ -f "$f" ] && [ ! -L "$f" ] || continue
            put_file "$new/$(basename "$f")" "$([ "$IS_ROOT" = 1 ] && echo 0640 || echo 0600)" "$g" <"$f"
        done
    else
        say "no web application in $BUILD/web (make web builds it): /app/ answers 404"
    fi
    root_dir "$new" "$([ "$IS_ROOT" = 1 ] && echo 0750 || echo 0700)" "$g"
    old=""
    if [ -e "$www/app" ] || [ -L "$www/app" ]; then
        old=$(mktemp -u "$www/.app-old.XXXXXX")
        mv -T "$www/app" "$old" || die "cannot replace $www/app"
    fi
    mv -T "$new" "$www/app" || die "cannot write $www/app"
    [ -z "$old" ] || rm -rf "$old"
    if [ -f "$SRC/docs/openapi.json" ]; then
        put_file "$www/openapi.json" "$([ "$IS_ROOT" = 1 ] && echo 0640 || echo 0600)" "$g" <"$SRC/docs/openapi.json"
    else
        rm -f "$www/openapi.json"
    fi
}

# svc USER: sets SVC to the command prefix that runs a command as USER with no
# way back to root (setpriv, as root), or to nothing (a user). Exec'd by
# launch, so the pid written is the service's own.
svc() {
    SVC=()
    if [ "$IS_ROOT" = 1 ]; then
        SVC=(setpriv --reuid="$1" --regid="$(group_of "$1")" --init-groups --no-new-privs
            --inh-caps=-all --bounding-set=-all --)
    fi
}

# as_service USER CMD...: runs CMD as USER (svc).
as_service() {
    local SVC
    svc "$1"
    shift
    "${SVC[@]}" "$@"
}

start_mariadb() {
    local d=$STATE/mariadb
    service_dir "$d/data" "$DB_USER"
    service_dir "$d/tmp" "$DB_USER"
    service_dir "$d/run" "$DB_USER"
    check_port CONFIDOC_DB_PORT "$DB_PORT" MariaDB
    if [ ! -d "$d/data/mysql" ]; then
        say "initialising MariaDB's data directory"
        # Its bootstrap server needs the TLS files and the at-rest key: the
        # script runs mariadbd through the launcher (MYSQLD_BOOTSTRAP), with
        # the session's secrets, as the mysql user (root only starts it).
        printf '#!/bin/sh\nexec %q run --session mariadb --socket %q %s-- %q "$@"\n' "$CAS_BIN" \
            "$CAS_SOCK" "$([ "$IS_ROOT" = 1 ] || printf -- '--fallback-dir %q ' "$SECRETS/mariadb")" \
            "$(exe_of mariadbd)" | put_file "$RUN/mariadb-bootstrap" 0700 root
        local who=()
        [ "$IS_ROOT" = 1 ] && who=(--user="$DB_USER")
        MYSQLD_BOOTSTRAP=$RUN/mariadb-bootstrap mariadb-install-db --defaults-file="$d/my.cnf" \
            "${who[@]}" --auth-root-authentication-method=socket --auth-root-socket-user="$DB_ADMIN" \
            --skip-test-db >"$LOG/mariadb-install.log" 2>&1 </dev/null || {
            tail -n 30 "$LOG/mariadb-install.log" >&2
            die "mariadb-install-db failed (see $LOG/mariadb-install.log)"
        }
        rm -f "$RUN/mariadb-bootstrap"
    fi
    launch mariadb "$LOG/mariadb.log" "${CASRUN_mariadb[@]}" "$(exe_of mariadbd)" --defaults-file="$d/my.cnf"
    if ! wait_until "$START_TIMEOUT" mariadb db_ping; then
        tail -n 30 "$LOG/mariadb.log" >&2 2>/dev/null || true
        die "MariaDB did not come up (see $LOG/mariadb.log)"
    fi
    # A data directory made by an older make up has only root's socket
    # account: give the mysql user its own, once (the last time root speaks to
    # this server).
    if [ "$IS_ROOT" = 1 ] && ! db_admin -e 'SELECT 1' >/dev/null 2>&1; then
        mariadb --no-defaults --socket="$d/run/mysqld.sock" -u root --connect-timeout=5 -N -B \
            -e "CREATE USER IF NOT EXISTS '$DB_ADMIN'@'localhost' IDENTIFIED VIA unix_socket;
                GRANT ALL PRIVILEGES ON *.* TO '$DB_ADMIN'@'localhost' WITH GRANT OPTION;" ||
            die "cannot create MariaDB's administrator account $DB_ADMIN@localhost"
    fi
    # Idempotent: the database and two accounts, each authenticated by its
    # client certificate alone (subject and issuer), TCP from loopback only.
    # The API's account gets DML on the schema and nothing else (an older
    # stack gave it ALL PRIVILEGES: revoked here); the one DDL it keeps is
    # CREATE of the migrations table, whose CREATE TABLE IF NOT EXISTS opens
    # every start's migration check (a no-op once the table exists).
    # confidoc_migrate changes the schema: only `confidoc-api --migrate`, run
    # as its own user with its own certificate (policy migrate), uses it.
    db_admin -e "CREATE DATABASE IF NOT EXISTS confidoc;
        CREATE USER IF NOT EXISTS 'confidoc'@'127.0.0.1';
        ALTER USER 'confidoc'@'127.0.0.1'
            REQUIRE SUBJECT '/CN=confidoc-api-db' AND ISSUER '/CN=confidoc MariaDB CA';
        REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'confidoc'@'127.0.0.1';
        GRANT SELECT, INSERT, UPDATE, DELETE ON confidoc.* TO 'confidoc'@'127.0.0.1';
        GRANT CREATE ON confidoc.schema_migrations TO 'confidoc'@'127.0.0.1';
        CREATE USER IF NOT EXISTS 'confidoc_migrate'@'127.0.0.1';
        ALTER USER 'confidoc_migrate'@'127.0.0.1'
            REQUIRE SUBJECT '/CN=confidoc-api-migrate' AND ISSUER '/CN=confidoc MariaDB CA';
        GRANT ALL PRIVILEGES ON confidoc.* TO 'confidoc_migrate'@'127.0.0.1';" ||
        die "cannot create MariaDB's confidoc accounts"
}

# run_memcached NAME DIR PORT VAR: one memcached instance, its arguments in
# DIR/memcached.conf (root's; write_configs), its TLS files in session
# memcached's tmpfs (both instances are that session).
run_memcached() {
    local name=$1 d=$2 port=$3 var=$4 args=() line
    check_port "$var" "$port" "$name"
    while IFS= read -r line; do
        case $line in '' | '#'*) continue ;; esac
        # "-p 1234" is two arguments; "-o a=b,c=d" likewise.
        args+=("${line%% *}")
        [ "${line#* }" = "$line" ] || args+=("${line#* }")
    done <"$d/memcached.conf"
    launch "$name" "$LOG/$name.log" "${CASRUN_memcached[@]}" "$(exe_of memcached)" "${args[@]}"
    # As long as the others: the launch waits for its turn at the CAS first.
    wait_until "$START_TIMEOUT" "$name" port_in_use "$port" || {
        tail -n 20 "$LOG/$name.log" >&2 2>/dev/null || true
        stop_one "$name"
        die "$name did not come up (see $LOG/$name.log)"
    }
}

# The rate limiter's counters (keys of client addresses).
start_memcached() {
    run_memcached memcached "$STATE/memcached" "$MC_PORT" CONFIDOC_MEMCACHED_PORT
}

# The failed-login counters alone: rate-limit keys never reach this instance,
# so a flood of them from many addresses cannot evict a lockout.
start_memcached-lockout() {
    run_memcached memcached-lockout "$STATE/memcached-lockout" "$LMC_PORT" \
        CONFIDOC_LOCKOUT_MEMCACHED_PORT
}

# Keys of confidoc-api that the stack sets itself (its wiring: every key
# api_conf_wiring writes) or leaves at their default (db_verify_server_name);
# the same variables in the environment are not passed to the API.
WIRING_KEYS=("${API_CONF_KEYS[@]}" db_verify_server_name)

# api_probe [PATH]: GET PATH (default /healthz) of the API directly with the
# probe's client certificate (session probe: CN=confidoc-probe, allowed but no
# trusted proxy), as the probe's user (root does not speak to a server that a
# service account controls); true on 200.
api_probe() {
    local code p=$SECRETS/probe/probe
    code=$(cas_run probe "$(exe_of curl)" -s -o /dev/null -w '%{http_code}' --max-time 3 \
        --resolve "localhost:$API_PORT:127.0.0.1" --cacert "$p/api-ca.crt" \
        --cert "$p/api-client.crt" --key "$p/api-client.key" \
        "https://localhost:$API_PORT${1:-/healthz}" 2>/dev/null) || true
    [ "$code" = 200 ]
}

write_migrate_conf() {
    local m=$STATE/migrate s=$SECRETS/migrate/migrate
    put_file "$m/migrate.conf" 0640 "$(group_of "$MIGRATE_USER")" <<EOF
# migrate.conf: confidoc-api --migrate of the local stack, written by
# scripts/stack.sh at each make up. Only the database keys are used; the API's
# TLS and master key settings are required and never opened. Its TLS files
# are in session migrate's tmpfs.
tls_cert = unused
tls_key = unused
client_ca = unused
master_key_file = unused
db_host = localhost
db_port = $DB_PORT
db_name = confidoc
db_user = confidoc_migrate
db_tls_ca = $s/db/ca.crt
db_tls_cert = $s/db/client.crt
db_tls_key = $s/db/client.key
db_pool_size = 1
EOF
}

# migrate ENV-OPTIONS...: `confidoc-api --migrate` with the migration account,
# before the API starts (the API's own account may not change the schema).
# It runs as its own user (root would speak MariaDB's protocol to a server
# that mysql controls; the API's user must not hold the migration key), as
# session migrate, with a configuration of its own. Bounded: the program
# waits at most a minute for MariaDB.
migrate() {
    if ! timeout 90 env "$@" "${CASRUN_migrate[@]}" "$BINDIR/confidoc-api" --config "$STATE/migrate/migrate.conf" \
        --migrate </dev/null >>"$LOG/migrate.log" 2>&1; then
        tail -n 20 "$LOG/migrate.log" >&2 2>/dev/null || true
        die "the database schema migration failed (see $LOG/migrate.log)"
    fi
}

write_api_conf() {
    local d=$STATE/api wiring
    wiring=$(api_conf_wiring --listen-addr 127.0.0.1 --listen-port "$API_PORT" \
        --secrets "$SECRETS/api/api" --db-host localhost --db-port "$DB_PORT" \
        --memcached "127.0.0.1:$MC_PORT" --lockout-memcached "127.0.0.1:$LMC_PORT" \
        --memcached-server-name localhost) || die "cannot write $d/api.conf"
    put_file "$d/api.conf" 0640 "$(group_of "$API_USER")" <<EOF
# api.conf: confidoc-api of the local stack, written by scripts/stack.sh at
# each make up (edits are lost). Every key can be overridden from the
# environment of \`make up\` as CONFIDOC_<KEY>, except the wiring below
# (scripts/lib/api_conf.sh). Its keys and certificates are in session api's
# tmpfs (never on disk).
$wiring
EOF
}

start_api() {
    local k var unset=()
    check_port CONFIDOC_API_PORT "$API_PORT" confidoc-api
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
    migrate "${unset[@]}"
    launch api "$LOG/api.log" env "${unset[@]}" "${CASRUN_api[@]}" "$BINDIR/confidoc-api" --config "$STATE/api/api.conf"
    # Ready: the API answers /readyz (it reaches the database), asked
    # directly; nginx does not expose /readyz.
    wait_until "$START_TIMEOUT" api api_probe /readyz || {
        tail -n 20 "$LOG/api.log" >&2 2>/dev/null || true
        die "confidoc-api did not come up (see $LOG/api.log)"
    }
}

nginx_probe() {
    local code
    code=$(as_service "$NGINX_USER" curl -s -o /dev/null -w '%{http_code}' --max-time 3 \
        --resolve "localhost:$HTTPS_PORT:127.0.0.1" --cacert "$STATE/public/nginx-ca.crt" \
        "https://localhost:$HTTPS_PORT/healthz" 2>/dev/null) || true
    [ "$code" = 200 ]
}

# nginx's error log names the client's address on every line about a request
# (", client: ADDR", at every level: crit too, e.g. for failed TLS
# handshakes), and a few lines say "client ADDR". The log passes through this
# filter (run by root) before it reaches the file: no address is written.
NGINX_LOG_FILTER='s/, client: [^,]*//g; s/(^|[^[:alnum:]_])client [0-9A-Fa-f.:]+/\1client -/g'

start_nginx() {
    local d=$STATE/nginx
    check_port CONFIDOC_HTTPS_PORT "$HTTPS_PORT" nginx
    # The master (root) creates tmp/client_body, tmp/proxy, ... for the
    # workers' user and chowns them, following links: tmp/ is root's, and
    # anything but a directory in it is removed first.
    find "$d/tmp" -mindepth 1 -maxdepth 1 ! -type d -exec rm -f {} +
    # The configuration test needs the keys too: through the launcher.
    cas_run nginx "$(exe_of nginx)" -q -t -p "$d" -c conf/nginx.conf -e stderr \
        >"$LOG/nginx-test.log" 2>&1 || {
        cat "$LOG/nginx-test.log" >&2
        die "nginx rejects its configuration $d/conf/nginx.conf (or the CAS refused it: see $LOG/nginx-test.log)"
    }
    LAUNCH_FILTER=$NGINX_LOG_FILTER launch nginx "$LOG/nginx-error.log" \
        "${CASRUN_nginx[@]}" \
        "$(exe_of nginx)" -p "$d" -c conf/nginx.conf -e stderr -g 'daemon off;'
    wait_until "$START_TIMEOUT" nginx nginx_probe || {
        tail -n 20 "$LOG/nginx-error.log" >&2 2>/dev/null || true
        die "the stack does not answer through nginx on https://localhost:$HTTPS_PORT (see $LOG/nginx-error.log)"
    }
}

# ---------------------------------------------------------------- stack.env

write_env() {
    local s=$STATE
    put_file "$s/stack.env" 0644 root <<EOF
# stack.env: the local confidoc stack, written by \`make up\` (scripts/stack.sh).
# Source it: . $s/stack.env   (docs/operations.md describes every variable)
CONFIDOC_STATE_DIR=$s
CONFIDOC_URL=https://localhost:$HTTPS_PORT
CONFIDOC_CACERT=$s/public/nginx-ca.crt
CONFIDOC_HTTPS_PORT=$HTTPS_PORT
CONFIDOC_API_ADDR=127.0.0.1:$API_PORT
CONFIDOC_DB_ADDR=127.0.0.1:$DB_PORT
CONFIDOC_MEMCACHED_ADDR=127.0.0.1:$MC_PORT
CONFIDOC_LOCKOUT_MEMCACHED_ADDR=127.0.0.1:$LMC_PORT
CONFIDOC_API_PORT=$API_PORT
CONFIDOC_DB_PORT=$DB_PORT
CONFIDOC_MEMCACHED_PORT=$MC_PORT
CONFIDOC_LOCKOUT_MEMCACHED_PORT=$LMC_PORT
# Keys (*_KEY, CONFIDOC_DB_KEYFILE) are no files on disk: they name paths
# inside a session's private tmpfs, valid only in the command that
#   \$CONFIDOC_CAS_LAUNCHER run --session probe --socket \$CONFIDOC_CAS_SOCKET -- /usr/bin/curl ...
# runs (the keyfile: inside MariaDB's own namespace). Certificates are public copies.
CONFIDOC_API_CACERT=$s/public/probe-api-ca.crt
CONFIDOC_PROXY_CLIENT_CERT=$s/public/probe-api-client.crt
CONFIDOC_PROXY_CLIENT_KEY=$SECRETS/probe/probe/api-client.key
CONFIDOC_DB_USER=confidoc
CONFIDOC_DB_CACERT=$s/public/probe-db-ca.crt
CONFIDOC_DB_CLIENT_CERT=$s/public/probe-db-client.crt
CONFIDOC_DB_CLIENT_KEY=$SECRETS/probe/probe/db-client.key
CONFIDOC_DB_DATADIR=$s/mariadb/data
CONFIDOC_DB_KEYFILE=$SECRETS/mariadb/mariadb-key/keyfile
CONFIDOC_DB_ADMIN_SOCKET=$s/mariadb/run/mysqld.sock
CONFIDOC_MEMCACHED_CACERT=$s/public/probe-mc-ca.crt
CONFIDOC_MEMCACHED_CLIENT_CERT=$s/public/probe-mc-client.crt
CONFIDOC_MEMCACHED_CLIENT_KEY=$SECRETS/probe/probe/mc-client.key
CONFIDOC_CAS_PORT=$CAS_PORT
CONFIDOC_CAS_ADDR=127.0.0.1:$CAS_PORT
CONFIDOC_CAS_URL=https://localhost:$CAS_PORT
CONFIDOC_CAS_PIN=$(cas_pin)
CONFIDOC_CAS_CACERT=$s/public/cas-ca.crt
CONFIDOC_CAS_PIDFILE=$RUN/cas.pid
CONFIDOC_CAS_AUDIT_LOG=$s/cas/audit.log
CONFIDOC_CAS_SOCKET=$CAS_SOCK
CONFIDOC_CAS_LAUNCHER=$CAS_BIN
CONFIDOC_CAS_OPERATOR_CERT=$s/operator/operator.crt
CONFIDOC_CAS_OPERATOR_KEY=$s/operator/operator.key
CONFIDOC_API_PIDFILE=$RUN/api.pid
CONFIDOC_DB_PIDFILE=$RUN/mariadb.pid
CONFIDOC_MEMCACHED_PIDFILE=$RUN/memcached.pid
CONFIDOC_LOCKOUT_MEMCACHED_PIDFILE=$RUN/memcached-lockout.pid
CONFIDOC_NGINX_PIDFILE=$RUN/nginx.pid
CONFIDOC_LOG_DIR=$LOG
EOF
}

print_info() {
    cat <<EOF

confidoc is up: https://localhost:$HTTPS_PORT
  CA certificate (verifies nginx): $STATE/public/nginx-ca.crt (from the CAS: /v1/values)
  the CAS:                         https://localhost:$CAS_PORT, pin $(cas_pin)
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
    say "state directory: $STATE"
    mkdir -p "$STATE" || die "cannot create $STATE"
    chmod "$([ "$IS_ROOT" = 1 ] && echo 0711 || echo 0700)" "$STATE"
    if [ "$IS_ROOT" = 1 ]; then chown root:root "$STATE"; fi
    root_dir "$RUN" 0700 root
    root_dir "$LOG" 0700 root
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
        cas) check_port CONFIDOC_CAS_PORT "$CAS_PORT" confidoc-cas ;;
        mariadb) check_port CONFIDOC_DB_PORT "$DB_PORT" MariaDB ;;
        memcached) check_port CONFIDOC_MEMCACHED_PORT "$MC_PORT" memcached ;;
        memcached-lockout) check_port CONFIDOC_LOCKOUT_MEMCACHED_PORT "$LMC_PORT" memcached-lockout ;;
        api) check_port CONFIDOC_API_PORT "$API_PORT" confidoc-api ;;
        nginx) check_port CONFIDOC_HTTPS_PORT "$HTTPS_PORT" nginx ;;
        esac
    done
    prepare_dirs
    write_configs
    operator_key
    session_vars
    write_sessions
    cas_argv
    if [ "${todo[0]}" = cas ]; then
        say "starting cas"
        start_cas
        todo=("${todo[@]:1}")
    fi
    cas_attest
    cas_sync_sessions
    cas_public
    cas_upgrade
    for c in "${todo[@]}"; do
        say "starting $c"
        "start_$c"
    done
    # nginx answered when it started; if it was already running, check.
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
    case " ${COMPONENTS[*]} " in *" $c "*) ;; *) die "usage: stack.sh stop cas|mariadb|memcached|memcached-lockout|api|nginx" ;; esac
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
