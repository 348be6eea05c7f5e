# mariadb.sh: a private, TLS-only MariaDB server for tests (sourced by tests).
# shellcheck shell=bash
#
# Usage (from bash; the functions run in the calling shell and export variables):
#   source "$CONFIDOC_SOURCE_DIR/tests/lib/certs.sh"
#   source "$CONFIDOC_SOURCE_DIR/tests/lib/mariadb.sh"
#   certs_make "$tmp/certs"
#   mariadb_start "$tmp/db" "$tmp/certs"   # exports MARIADB_PORT MARIADB_PID MARIADB_SOCKET MARIADB_DIR
#   trap 'mariadb_stop "$tmp/db"; rm -rf "$tmp"' EXIT
#
# mariadb_start DIR CERTDIR
#   Creates DIR (data/, tmp/, my.cnf, copies of CERTDIR's ca.crt, db.crt, db.key), runs
#   mariadb-install-db, starts mariadbd in the foreground in the background of the
#   calling shell (never its daemon mode: PID 1 here reaps orphans late), writes
#   DIR/mariadbd.pid itself and waits (at most MARIADB_START_TIMEOUT seconds, default
#   15) for it to answer a ping over its unix socket. The server listens on
#   127.0.0.1:$MARIADB_PORT only, requires TLS on TCP (require_secure_transport),
#   uses CERTDIR/db.{crt,key} as its certificate and CERTDIR/ca.crt to verify clients,
#   and has max_allowed_packet=64M. It then creates database `confidoc` and the account
#   'confidoc'@'127.0.0.1' (no password) REQUIRE SUBJECT '/CN=confidoc-api-db' AND
#   ISSUER '/CN=confidoc test CA' with ALL PRIVILEGES on confidoc.*: a client must
#   present CERTDIR/db-client.{crt,key}.
#   When run as root the server runs as user mysql: DIR is chowned to mysql, and every
#   directory above DIR must be traversable by mysql (o+x; `mktemp -d` makes 0700
#   directories: chmod 0711 yours). mariadb_start checks this and says so if not.
#   Returns non-zero (after printing the server's error log) if the server does not
#   come up.
# mariadb_stop DIR     SIGTERM by PID, wait at most 15 s, then SIGKILL. No-op if not running.
# mariadb_kill DIR     SIGKILL by PID and wait for the process to be gone (a crash).
# mariadb_restart DIR  Starts the server again on the same port and data (no re-init);
#                      stop or kill it first. Re-exports MARIADB_PID.
# mariadb_sql DIR SQL  Runs SQL as the administrator over the unix socket (prints results
#                      tab-separated, no column names).
#
# Every wait is bounded. The server's output goes to DIR/mariadbd.out and its error log
# to DIR/error.log, never to the caller's stdout/stderr (which CTest waits on).

# Administrator account used over the unix socket (unix_socket authentication).
_mariadb_admin_user() {
    if [ "$(id -u)" -eq 0 ]; then echo root; else id -un; fi
}

# _mariadb_alive PID: true while PID exists and is not a zombie.
_mariadb_alive() {
    local pid=$1 state
    kill -0 "$pid" 2>/dev/null || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ "$state" != Z ]
}

# _mariadb_launch DIR: starts mariadbd with DIR/my.cnf and waits for a ping.
_mariadb_launch() {
    local dir=$1 pid i timeout=${MARIADB_START_TIMEOUT:-15}
    mariadbd --defaults-file="$dir/my.cnf" </dev/null >>"$dir/mariadbd.out" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/mariadbd.pid"
    for ((i = 0; i < timeout * 10; i++)); do
        if ! _mariadb_alive "$pid"; then
            echo "mariadb: server exited during start-up; error log:" >&2
            tail -n 30 "$dir/error.log" >&2 2>/dev/null
            return 1
        fi
        if mariadb-admin --no-defaults --socket="$dir/mysqld.sock" -u "$(_mariadb_admin_user)" \
            --connect-timeout=2 ping >/dev/null 2>&1; then
            export MARIADB_PID=$pid MARIADB_DIR=$dir MARIADB_SOCKET=$dir/mysqld.sock
            MARIADB_PORT=$(cat "$dir/port")
            export MARIADB_PORT
            return 0
        fi
        sleep 0.1
    done
    echo "mariadb: no answer to ping after ${timeout}s; error log:" >&2
    tail -n 30 "$dir/error.log" >&2 2>/dev/null
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 1
}

mariadb_sql() {
    local dir=$1
    shift
    mariadb --no-defaults --socket="$dir/mysqld.sock" -u "$(_mariadb_admin_user)" \
        --connect-timeout=5 -N -B -e "$*"
}

mariadb_start() {
    local dir=$1 certdir=$2 port user d i
    if [ -z "$dir" ] || [ -z "$certdir" ]; then
        echo "usage: mariadb_start DIR CERTDIR" >&2
        return 2
    fi
    for f in ca.crt db.crt db.key; do
        [ -r "$certdir/$f" ] || { echo "mariadb: missing $certdir/$f" >&2; return 1; }
    done
    mkdir -p "$dir/data" "$dir/tmp" || return 1
    dir=$(cd "$dir" && pwd) || return 1
    port=$(free_port) || { echo "mariadb: no free port" >&2; return 1; }
    echo "$port" >"$dir/port"
    cp "$certdir/ca.crt" "$certdir/db.crt" "$certdir/db.key" "$dir/" || return 1
    chmod 0600 "$dir/db.key"
    user=$(id -un)
    if [ "$(id -u)" -eq 0 ]; then
        user=mysql
        chown -R mysql:mysql "$dir" || return 1
        chmod 0700 "$dir"
        d=$dir
        while [ "$d" != / ]; do
            if ! runuser -u mysql -- test -x "$d"; then
                echo "mariadb: user mysql cannot traverse $d (chmod o+x it)" >&2
                return 1
            fi
            d=$(dirname "$d")
        done
    fi
    cat >"$dir/my.cnf" <<EOF
[mariadbd]
user=$user
datadir=$dir/data
tmpdir=$dir/tmp
socket=$dir/mysqld.sock
pid-file=$dir/mariadbd.server.pid
log_error=$dir/error.log
port=$port
bind-address=127.0.0.1
skip-name-resolve
skip-log-bin
ssl_ca=$dir/ca.crt
ssl_cert=$dir/db.crt
ssl_key=$dir/db.key
require_secure_transport=ON
innodb_flush_log_at_trx_commit=1
innodb_buffer_pool_size=64M
innodb_log_file_size=16M
max_allowed_packet=64M
performance_schema=OFF
EOF
    chmod 0644 "$dir/my.cnf"
    [ "$(id -u)" -eq 0 ] && chown mysql:mysql "$dir/my.cnf"
    if ! mariadb-install-db --defaults-file="$dir/my.cnf" --user="$user" \
        --auth-root-authentication-method=socket --auth-root-socket-user="$user" \
        --skip-test-db >"$dir/install.log" 2>&1; then
        echo "mariadb: mariadb-install-db failed:" >&2
        tail -n 30 "$dir/install.log" >&2
        return 1
    fi
    # A port can be taken between the pick and the bind by a process that is
    # not one of ours: then mariadbd exits, and another port is tried.
    for i in 1 2 3; do
        _mariadb_launch "$dir" && break
        grep -q "Address already in use" "$dir/error.log" 2>/dev/null && [ "$i" -lt 3 ] || return 1
        port=$(free_port) || return 1
        echo "mariadb: the port was taken meanwhile; trying $port" >&2
        sed -i "s/^port=.*/port=$port/" "$dir/my.cnf" && echo "$port" >"$dir/port" || return 1
        : >"$dir/error.log"
    done
    mariadb_sql "$dir" "CREATE DATABASE confidoc;
        CREATE USER 'confidoc'@'127.0.0.1'
            REQUIRE SUBJECT '/CN=confidoc-api-db' AND ISSUER '/CN=confidoc test CA';
        GRANT ALL PRIVILEGES ON confidoc.* TO 'confidoc'@'127.0.0.1';" || {
        echo "mariadb: cannot create the confidoc account" >&2
        return 1
    }
}

mariadb_restart() {
    local dir=$1
    [ -f "$dir/my.cnf" ] || { echo "mariadb: $dir was never started" >&2; return 1; }
    if [ -f "$dir/mariadbd.pid" ] && _mariadb_alive "$(cat "$dir/mariadbd.pid")"; then
        echo "mariadb: still running; stop it first" >&2
        return 1
    fi
    _mariadb_launch "$dir"
}

# _mariadb_signal DIR SIG SECONDS: sends SIG, waits SECONDS for exit; returns 1 if alive.
_mariadb_signal() {
    local dir=$1 sig=$2 secs=$3 pid i
    [ -f "$dir/mariadbd.pid" ] || return 0
    pid=$(cat "$dir/mariadbd.pid")
    [ -n "$pid" ] || return 0
    _mariadb_alive "$pid" || { wait "$pid" 2>/dev/null; return 0; }
    kill "-$sig" "$pid" 2>/dev/null
    for ((i = 0; i < secs * 10; i++)); do
        if ! _mariadb_alive "$pid"; then
            wait "$pid" 2>/dev/null
            return 0
        fi
        sleep 0.1
    done
    return 1
}

mariadb_stop() {
    local dir=$1
    if ! _mariadb_signal "$dir" TERM 15; then
        echo "mariadb: no exit after SIGTERM, sending SIGKILL" >&2
        _mariadb_signal "$dir" KILL 10 || return 1
    fi
    rm -f "$dir/mariadbd.pid"
}

mariadb_kill() {
    local dir=$1
    _mariadb_signal "$dir" KILL 10 || return 1
    rm -f "$dir/mariadbd.pid"
}
