# memcached.sh: start and stop a private memcached with mutual TLS (sourced by tests).
#
# Usage (after `source tests/lib/certs.sh; certs_make CERTDIR`):
#   memcached_start DIR CERTDIR   starts memcached on a free port of 127.0.0.1 with
#                                 TLS required (server cert mc.crt/mc.key, clients
#                                 must present a cert of ca.crt), in the foreground
#                                 of a background job; exports MEMCACHED_PORT and
#                                 MEMCACHED_PID, writes DIR/memcached.pid and logs
#                                 to DIR/memcached.log. Returns 1 if it does not
#                                 accept connections within ~5 s.
#   memcached_stop DIR            stops it (by the PID in DIR/memcached.pid), waits
#                                 up to ~5 s, then SIGKILL.
#   memcached_restart DIR         stop, then start again on the same port.
#   memcached_tls_cmd DIR LINE... sends the lines (each argument one line, CRLF
#                                 added) over TLS with the client cert (openssl
#                                 s_client, bounded by timeout) and prints what
#                                 arrives within 1 s.
# The functions are safe under `set -euo pipefail`.
# Several instances may run at once: use one DIR per instance. Call
# memcached_stop from an EXIT trap so nothing is left running.
# memcached refuses to run as root, so it runs as user memcache; its key is
# copied into DIR/tls (readable by memcache only).

# _memcached_wait_port PORT [PID]: until memcached (PID, when given) listens on
# PORT; fails at once when PID has exited (e.g. it lost a bind race).
_memcached_wait_port() {
    local port=$1 pid=${2:-} i
    for i in $(seq 1 50); do
        if [ -n "$pid" ]; then
            kill -0 "$pid" 2>/dev/null || return 1
            if ss -Htlnp "sport = :$port" | grep -q "pid=$pid,"; then return 0; fi
        elif ss -Htln "sport = :$port" | grep -q .; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# _memcached_launch DIR PORT
_memcached_launch() {
    local dir=$1 port=$2
    memcached -u memcache -l 127.0.0.1 -p "$port" -U 0 -m 16 -c 256 -Z \
        -o "ssl_chain_cert=$dir/tls/mc.crt,ssl_key=$dir/tls/mc.key,ssl_ca_cert=$dir/tls/ca.crt,ssl_verify_mode=2,ssl_min_version=2" \
        >>"$dir/memcached.log" 2>&1 &
    MEMCACHED_PID=$!
    echo "$MEMCACHED_PID" >"$dir/memcached.pid"
    echo "$port" >"$dir/memcached.port"
    export MEMCACHED_PID MEMCACHED_PORT=$port
    _memcached_wait_port "$port" "$MEMCACHED_PID"
}

memcached_start() {
    local dir=$1 certdir=$2 port
    mkdir -p "$dir/tls"
    cp "$certdir/mc.crt" "$certdir/mc.key" "$certdir/ca.crt" "$dir/tls/"
    chown -R memcache "$dir/tls"
    chmod 700 "$dir/tls"
    chmod 600 "$dir/tls/mc.key"
    # memcache must be able to reach DIR/tls through its parents.
    chmod o+x "$dir"
    echo "$certdir" >"$dir/memcached.certdir"
    # A port can be taken between the pick and the bind by a process that is
    # not one of ours: then memcached exits, and another port is tried.
    for _ in 1 2 3; do
        port=$(free_port) || return 1
        _memcached_launch "$dir" "$port" && return 0
        kill -0 "$MEMCACHED_PID" 2>/dev/null && { memcached_stop "$dir"; return 1; }
        grep -q "Address already in use" "$dir/memcached.log" 2>/dev/null || return 1
        echo "memcached: port $port was taken meanwhile; another one" >&2
        : >"$dir/memcached.log"
    done
    return 1
}

memcached_stop() {
    local dir=$1 pid i
    [ -f "$dir/memcached.pid" ] || return 0
    pid=$(cat "$dir/memcached.pid")
    rm -f "$dir/memcached.pid"
    kill "$pid" 2>/dev/null || return 0
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 0
}

memcached_restart() {
    local dir=$1 port
    port=$(cat "$dir/memcached.port")
    memcached_stop "$dir"
    _memcached_launch "$dir" "$port"
}

memcached_tls_cmd() {
    local dir=$1 certdir port
    shift
    certdir=$(cat "$dir/memcached.certdir")
    port=$(cat "$dir/memcached.port")
    { printf '%s\r\n' "$@"; sleep 1; } |
        timeout 5 openssl s_client -quiet -connect "127.0.0.1:$port" \
            -CAfile "$certdir/ca.crt" -cert "$certdir/mc-client.crt" \
            -key "$certdir/mc-client.key" -verify_return_error 2>/dev/null || true
}
