# api.sh: start and stop a real confidoc-api for tests (sourced).
# Needs: tests/lib/certs.sh sourced, certificates made by certs_make, a MariaDB
# started by tests/lib/mariadb.sh (MARIADB_PORT), CONFIDOC_BUILD_DIR set.
#
# api_start DIR CERTDIR [extra "key = value" lines...]
#   writes DIR/api.conf and DIR/master.key (0600), starts confidoc-api on a free
#   port, waits until /healthz answers. Exports API_PORT, API_PID, API_URL, API_LOG.
#   CONFIDOC_* variables in the environment override the file as usual.
#   Optional: API_EXEC_PREFIX (an array: a command the API runs under, e.g.
#   valgrind, bench/callgrind.sh), API_START_TIMEOUT (seconds to wait for
#   /healthz, default 15), API_STOP_TIMEOUT (api_stop's wait, default 15).
# api_stop   SIGTERM by PID, waits (bounded), SIGKILL if needed; returns its exit status.
# api_kill   SIGKILL.
# api_curl ARGS...   curl with the proxy's client certificate, trusting the test CA.

api_start() {
    local picked=
    # A port we picked can be taken before the API binds it by a process that
    # is not one of ours: then the API exits, and another port is tried.
    [ -n "${API_PORT:-}" ] || picked=1
    for _ in 1 2 3; do
        _api_start_once "$@" && return 0
        [ -n "$picked" ] && ! kill -0 "$API_PID" 2>/dev/null && port_in_use "$API_PORT" || return 1
        echo "confidoc-api: port $API_PORT was taken meanwhile; another one" >&2
        API_PORT=
    done
    return 1
}

_api_start_once() {
    local dir=$1 certs=$2
    shift 2
    mkdir -p "$dir"
    if [ ! -f "$dir/master.key" ]; then
        (umask 077; openssl rand -hex 32 >"$dir/master.key")
    fi
    API_PORT=${API_PORT:-$(free_port)}
    API_CERTS=$certs
    API_DIR=$dir
    {
        echo "listen_addr = 127.0.0.1"
        echo "listen_port = $API_PORT"
        echo "tls_cert = $certs/api.crt"
        echo "tls_key = $certs/api.key"
        echo "client_ca = $certs/ca.crt"
        echo "trusted_proxy_subjects = CN=confidoc-proxy"
        echo "master_key_file = $dir/master.key"
        echo "db_host = 127.0.0.1"
        echo "db_port = $MARIADB_PORT"
        echo "db_tls_ca = $certs/ca.crt"
        echo "db_tls_cert = $certs/db-client.crt"
        echo "db_tls_key = $certs/db-client.key"
        echo "db_pool_size = 8"
        echo "db_connect_timeout = 2"
        echo "db_io_timeout = 10"
        echo "argon2_max_concurrent = 2"
        for line in "$@"; do echo "$line"; done
    } >"$dir/api.conf"
    API_LOG=$dir/api.log
    API_URL=https://localhost:$API_PORT
    "${API_EXEC_PREFIX[@]}" "$CONFIDOC_BUILD_DIR/confidoc-api" --config "$dir/api.conf" >>"$API_LOG" 2>&1 &
    API_PID=$!
    echo "$API_PID" >"$dir/api.pid"
    export API_PORT API_PID API_URL API_LOG
    for _ in $(seq 1 $((${API_START_TIMEOUT:-15} * 10))); do
        if api_curl -s -o /dev/null "$API_URL/healthz" 2>/dev/null; then return 0; fi
        if ! kill -0 "$API_PID" 2>/dev/null; then
            echo "confidoc-api exited during start-up:" >&2; tail -20 "$API_LOG" >&2; return 1
        fi
        sleep 0.1
    done
    echo "confidoc-api did not answer within ${API_START_TIMEOUT:-15} s" >&2; tail -20 "$API_LOG" >&2
    return 1
}

api_stop() {
    local pid=${API_PID:-} rc=0
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || { API_PID=; return 0; }
    for _ in $(seq 1 $((${API_STOP_TIMEOUT:-15} * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "confidoc-api did not stop within ${API_STOP_TIMEOUT:-15} s; killing" >&2
        kill -KILL "$pid" 2>/dev/null
        rc=1
    fi
    wait "$pid" 2>/dev/null || rc=$?
    API_PID=
    return $rc
}

api_kill() {
    [ -n "${API_PID:-}" ] || return 0
    kill -KILL "$API_PID" 2>/dev/null || true
    wait "$API_PID" 2>/dev/null || true
    API_PID=
}

api_curl() {
    curl --max-time 30 --cacert "$API_CERTS/ca.crt" --cert "$API_CERTS/proxy.crt" \
        --key "$API_CERTS/proxy.key" "$@"
}
