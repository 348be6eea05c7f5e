#!/usr/bin/env bash
# stack.sh: the whole confidoc system on one machine (`make up` / `make down`).
#
#   scripts/stack.sh up            build if needed, provision keys, start what is not running
#   scripts/stack.sh down          stop every process the stack started (gracefully)
#   scripts/stack.sh status        one line per component; exit 0 when all run, 3 otherwise
#   scripts/stack.sh stop NAME     stop one component (mariadb, memcached, memcached-lockout,
#                                  api, nginx)
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
# CONFIDOC_LOCKOUT_MEMCACHED_PORT (default: free
# ports chosen at the first start and kept in STATE/ports.env),
# CONFIDOC_BUILD_DIR (use these binaries and do not build), NGINX_USER (nginx
# workers' user when root, default www-data), and every CONFIDOC_<KEY> of
# confidoc-api, which reaches the API.
set -euo pipefail
umask 077

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# memcached-lockout holds only the failed-login counters (lockout_memcached_servers),
# so that no flood of rate-limit keys can evict them.
COMPONENTS=(mariadb memcached memcached-lockout api nginx) # start order; stop order is the reverse
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
        # MariaDB's administrator account is the mysql user's own (unix_socket):
        # root never speaks MariaDB's protocol to a server that mysql controls.
        DB_ADMIN=$DB_USER
    else
        IS_ROOT=0
        API_USER=$(id -un)
        DB_USER=$API_USER MC_USER=$API_USER NGINX_USER=$API_USER DB_ADMIN=$API_USER
        MIGRATE_USER=$API_USER
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
    mariadb) echo "--defaults-file=$STATE/mariadb/my.cnf" ;;
    memcached) echo "ssl_chain_cert=$STATE/memcached/tls/server.crt" ;;
    memcached-lockout) echo "ssl_chain_cert=$STATE/memcached-lockout/tls/server.crt" ;;
    api) echo "--config $STATE/api/api.conf" ;;
    nginx) echo "-p $STATE/nginx " ;;
    esac
}

expected_exe() {
    case $1 in
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
    for var in CONFIDOC_HTTPS_PORT CONFIDOC_API_PORT CONFIDOC_DB_PORT CONFIDOC_MEMCACHED_PORT \
        CONFIDOC_LOCKOUT_MEMCACHED_PORT; do
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
    LMC_PORT=$CONFIDOC_LOCKOUT_MEMCACHED_PORT
    {
        echo "# ports of this stack, chosen at its first start (scripts/stack.sh)"
        echo "CONFIDOC_HTTPS_PORT=$HTTPS_PORT"
        echo "CONFIDOC_API_PORT=$API_PORT"
        echo "CONFIDOC_DB_PORT=$DB_PORT"
        echo "CONFIDOC_MEMCACHED_PORT=$MC_PORT"
        echo "CONFIDOC_LOCKOUT_MEMCACHED_PORT=$LMC_PORT"
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
    install_binaries
    local nu
    for nu in "$API_USER" "$MIGRATE_USER"; do
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

# install_binaries: as root, the program a service user runs (confidoc-api)
# is copied to a root-owned 0755 directory named by its content,
# $LIBEXEC/<sha256 prefix>/, so that the source tree may sit anywhere (root's
# 0700 home included) and two stacks or builds never replace each other's
# program. A user's stack runs it from the build directory.
LIBEXEC=${CONFIDOC_LIBEXEC_DIR:-/usr/local/libexec/confidoc}
install_binaries() {
    local h dir
    [ "$IS_ROOT" = 1 ] || return 0
    h=$(sha256sum "$BUILD/confidoc-api" | cut -c1-16) || die "cannot read $BUILD/confidoc-api"
    dir=$LIBEXEC/$h
    if ! cmp -s "$BUILD/confidoc-api" "$dir/confidoc-api" 2>/dev/null; then
        install -d -m 0755 -o root -g root "$LIBEXEC" "$dir" &&
            install -m 0755 -o root -g root "$BUILD/confidoc-api" "$dir/.confidoc-api.new" &&
            mv -f -T "$dir/.confidoc-api.new" "$dir/confidoc-api" ||
            die "cannot install confidoc-api into $dir"
    fi
    BINDIR=$dir
}

# ---------------------------------------------------------------- provisioning

# The files each policy injects (docs/policies.md; contract of issue 4).
PROVISIONED=(
    api/tls/server.crt api/tls/server.key api/tls/client-ca.crt api/master.keyring
    api/db/ca.crt api/db/client.crt api/db/client.key api/mc/ca.crt api/mc/client.crt api/mc/client.key
    mariadb/tls/ca.crt mariadb/tls/server.crt mariadb/tls/server.key mariadb-key/keyfile
    migrate/db/ca.crt migrate/db/client.crt migrate/db/client.key
    memcached/tls/ca.crt memcached/tls/server.crt memcached/tls/server.key
    memcached-lockout/tls/ca.crt memcached-lockout/tls/server.crt memcached-lockout/tls/server.key
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
        as_service "$DB_USER" test -r "$STATE/mariadb/tls/server.key" ||
            die "user $DB_USER cannot read $STATE/mariadb/tls/server.key: every directory above $STATE must be traversable by others (chmod o+x), or leave CONFIDOC_STATE_DIR unset (default /var/lib/confidoc)"
        as_service "$DB_USER" test -r "$STATE/mariadb-key/keyfile" ||
            die "user $DB_USER cannot read $STATE/mariadb-key/keyfile"
        as_service "$MC_USER" test -r "$STATE/memcached/tls/server.key" ||
            die "user $MC_USER cannot read $STATE/memcached/tls/server.key"
        as_service "$MC_USER" test -r "$STATE/memcached-lockout/tls/server.key" ||
            die "user $MC_USER cannot read $STATE/memcached-lockout/tls/server.key"
        as_service "$API_USER" test -r "$STATE/api/tls/server.key" ||
            die "user $API_USER cannot read $STATE/api/tls/server.key"
        as_service "$API_USER" test -x "$BINDIR/confidoc-api" ||
            die "user $API_USER cannot run $BINDIR/confidoc-api"
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
    root_dir "$STATE/migrate" "$m" "$(group_of "$MIGRATE_USER")"
    root_dir "$STATE/public" 0755 root
    # The at-rest key lived beside the data directory (mariadb/keyfile) before.
    rm -f "$STATE/mariadb/keyfile"
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
    local d=$STATE/mariadb user_line="user=$DB_USER"
    [ "$IS_ROOT" = 1 ] && user_line="" # started as $DB_USER (as_service), never as root
    service_dir "$d/data" "$DB_USER"
    service_dir "$d/tmp" "$DB_USER"
    service_dir "$d/run" "$DB_USER"
    fill "$SRC/deploy/mariadb/my.cnf.in" "$d/my.cnf" 0640 "$(group_of "$DB_USER")" \
        "USER_LINE=$user_line" "DB_DIR=$d" "KEY_DIR=$STATE/mariadb-key" "DB_PORT=$DB_PORT"
    check_port CONFIDOC_DB_PORT "$DB_PORT" MariaDB
    if [ ! -d "$d/data/mysql" ]; then
        say "initialising MariaDB's data directory"
        as_service "$DB_USER" mariadb-install-db --defaults-file="$d/my.cnf" \
            --auth-root-authentication-method=socket --auth-root-socket-user="$DB_ADMIN" \
            --skip-test-db >"$LOG/mariadb-install.log" 2>&1 || {
            tail -n 30 "$LOG/mariadb-install.log" >&2
            die "mariadb-install-db failed (see $LOG/mariadb-install.log)"
        }
    fi
    svc "$DB_USER"
    launch mariadb "$LOG/mariadb.log" "${SVC[@]}" mariadbd --defaults-file="$d/my.cnf"
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

# run_memcached NAME DIR PORT VAR MEGABYTES: one memcached instance from the
# template, its arguments in DIR/memcached.conf (root's), TLS files in DIR/tls.
run_memcached() {
    local name=$1 d=$2 port=$3 var=$4 mb=$5 args=() line
    check_port "$var" "$port" "$name"
    fill "$SRC/deploy/memcached/memcached.conf.in" "$d/memcached.conf" 0600 root \
        "MEMCACHED_PORT=$port" "MC_DIR=$d" "MEMCACHED_MB=$mb"
    while IFS= read -r line; do
        case $line in '' | '#'*) continue ;; esac
        # "-p 1234" is two arguments; "-o a=b,c=d" likewise.
        args+=("${line%% *}")
        [ "${line#* }" = "$line" ] || args+=("${line#* }")
    done <"$d/memcached.conf"
    svc "$MC_USER"
    launch "$name" "$LOG/$name.log" "${SVC[@]}" memcached "${args[@]}"
    wait_until 10 "$name" port_in_use "$port" ||
        die "$name did not come up (see $LOG/$name.log)"
}

# The rate limiter's counters (keys of client addresses).
start_memcached() {
    run_memcached memcached "$STATE/memcached" "$MC_PORT" CONFIDOC_MEMCACHED_PORT 64
}

# The failed-login counters alone: rate-limit keys never reach this instance,
# so a flood of them from many addresses cannot evict a lockout.
start_memcached-lockout() {
    run_memcached memcached-lockout "$STATE/memcached-lockout" "$LMC_PORT" \
        CONFIDOC_LOCKOUT_MEMCACHED_PORT 64
}

# Keys of confidoc-api that the stack sets itself (its wiring); the same
# variables in the environment are not passed to the API.
WIRING_KEYS=(listen_addr listen_port tls_cert tls_key client_ca allowed_client_subjects
    trusted_proxy_subjects master_key_file db_host db_port db_name db_user db_tls_ca db_tls_cert
    db_tls_key db_verify_server_name memcached_servers memcached_tls_ca memcached_tls_cert
    memcached_tls_key memcached_server_name lockout_memcached_servers)

# api_probe [PATH]: GET PATH (default /healthz) of the API directly, as nginx
# does (mutual TLS, with its certificate, as its workers' user: root does not
# speak to a server that a service account controls); true on 200.
api_probe() {
    local code
    code=$(as_service "$NGINX_USER" curl -s -o /dev/null -w '%{http_code}' --max-time 3 \
        --resolve "localhost:$API_PORT:127.0.0.1" --cacert "$STATE/nginx/tls/api-ca.crt" \
        --cert "$STATE/nginx/tls/api-client.crt" --key "$STATE/nginx/tls/api-client.key" \
        "https://localhost:$API_PORT${1:-/healthz}" 2>/dev/null) || true
    [ "$code" = 200 ]
}

# migrate ENV-OPTIONS...: `confidoc-api --migrate` with the migration account,
# before the API starts (the API's own account may not change the schema).
# It runs as its own user (root would speak MariaDB's protocol to a server
# that mysql controls; the API's user must not hold the migration key), with
# a configuration of its own: only its database keys are used. Bounded: the
# program waits at most a minute for MariaDB.
migrate() {
    local m=$STATE/migrate
    put_file "$m/migrate.conf" 0640 "$(group_of "$MIGRATE_USER")" <<EOF
# migrate.conf: confidoc-api --migrate of the local stack, written by
# scripts/stack.sh before each start of the API. Only the database keys are
# used; the API's TLS and master key settings are required and never opened.
tls_cert = unused
tls_key = unused
client_ca = unused
master_key_file = unused
db_host = localhost
db_port = $DB_PORT
db_name = confidoc
db_user = confidoc_migrate
db_tls_ca = $m/db/ca.crt
db_tls_cert = $m/db/client.crt
db_tls_key = $m/db/client.key
db_pool_size = 1
EOF
    if ! timeout 90 "${SVC[@]}" env "$@" "$BINDIR/confidoc-api" --config "$m/migrate.conf" \
        --migrate </dev/null >>"$LOG/migrate.log" 2>&1; then
        tail -n 20 "$LOG/migrate.log" >&2 2>/dev/null || true
        die "the database schema migration failed (see $LOG/migrate.log)"
    fi
}

start_api() {
    local d=$STATE/api k var unset=()
    check_port CONFIDOC_API_PORT "$API_PORT" confidoc-api
    put_file "$d/api.conf" 0640 "$(group_of "$API_USER")" <<EOF
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
lockout_memcached_servers = 127.0.0.1:$LMC_PORT
memcached_server_name = localhost
memcached_tls_ca = $d/mc/ca.crt
memcached_tls_cert = $d/mc/client.crt
memcached_tls_key = $d/mc/client.key
EOF
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
    svc "$MIGRATE_USER"
    migrate "${unset[@]}"
    svc "$API_USER"
    launch api "$LOG/api.log" "${SVC[@]}" env "${unset[@]}" "$BINDIR/confidoc-api" --config "$d/api.conf"
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
    local d=$STATE/nginx user_directive="" max_body=${CONFIDOC_MAX_BODY_BYTES:-16777216}
    [[ $max_body =~ ^[0-9]+$ ]] || die "CONFIDOC_MAX_BODY_BYTES=$max_body is not a number"
    [ "$IS_ROOT" = 1 ] && user_directive="user $NGINX_USER $(group_of "$NGINX_USER");"
    check_port CONFIDOC_HTTPS_PORT "$HTTPS_PORT" nginx
    # The master (root) creates tmp/client_body, tmp/proxy, ... for the
    # workers' user and chowns them, following links: tmp/ is root's, and
    # anything but a directory in it is removed first.
    find "$d/tmp" -mindepth 1 -maxdepth 1 ! -type d -exec rm -f {} +
    fill "$SRC/deploy/nginx/nginx.conf.in" "$d/conf/nginx.conf" 0600 root \
        "USER_DIRECTIVE=$user_directive" "NGINX_DIR=$d" "LOG_DIR=$LOG" "API_PORT=$API_PORT" \
        "HTTPS_PORT=$HTTPS_PORT" "MAX_BODY_BYTES=$max_body" "API_HOST=localhost"
    nginx -q -t -p "$d" -c conf/nginx.conf -e stderr >"$LOG/nginx-test.log" 2>&1 || {
        cat "$LOG/nginx-test.log" >&2
        die "nginx rejects its configuration $d/conf/nginx.conf"
    }
    LAUNCH_FILTER=$NGINX_LOG_FILTER launch nginx "$LOG/nginx-error.log" \
        nginx -p "$d" -c conf/nginx.conf -e stderr -g 'daemon off;'
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
CONFIDOC_API_CACERT=$s/nginx/tls/api-ca.crt
CONFIDOC_PROXY_CLIENT_CERT=$s/nginx/tls/api-client.crt
CONFIDOC_PROXY_CLIENT_KEY=$s/nginx/tls/api-client.key
CONFIDOC_DB_USER=confidoc
CONFIDOC_DB_CACERT=$s/api/db/ca.crt
CONFIDOC_DB_CLIENT_CERT=$s/api/db/client.crt
CONFIDOC_DB_CLIENT_KEY=$s/api/db/client.key
CONFIDOC_DB_DATADIR=$s/mariadb/data
CONFIDOC_DB_KEYFILE=$s/mariadb-key/keyfile
CONFIDOC_DB_ADMIN_SOCKET=$s/mariadb/run/mysqld.sock
CONFIDOC_MEMCACHED_CACERT=$s/api/mc/ca.crt
CONFIDOC_MEMCACHED_CLIENT_CERT=$s/api/mc/client.crt
CONFIDOC_MEMCACHED_CLIENT_KEY=$s/api/mc/client.key
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
        mariadb) check_port CONFIDOC_DB_PORT "$DB_PORT" MariaDB ;;
        memcached) check_port CONFIDOC_MEMCACHED_PORT "$MC_PORT" memcached ;;
        memcached-lockout) check_port CONFIDOC_LOCKOUT_MEMCACHED_PORT "$LMC_PORT" memcached-lockout ;;
        api) check_port CONFIDOC_API_PORT "$API_PORT" confidoc-api ;;
        nginx) check_port CONFIDOC_HTTPS_PORT "$HTTPS_PORT" nginx ;;
        esac
    done
    prepare_dirs
    provision
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
    case " ${COMPONENTS[*]} " in *" $c "*) ;; *) die "usage: stack.sh stop mariadb|memcached|memcached-lockout|api|nginx" ;; esac
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
