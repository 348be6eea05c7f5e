# stack.sh: drive a whole confidoc stack (scripts/stack.sh) from tests (sourced).
# shellcheck shell=bash
#
# Needs CONFIDOC_SOURCE_DIR, CONFIDOC_BUILD_DIR and CONFIDOC_STATE_DIR set, and
# STACK_LOG naming a file for scripts/stack.sh's output.
#
# stack CMD [ARGS]     runs scripts/stack.sh CMD (up, down, stop NAME, status),
#                      output appended to $STACK_LOG; returns its exit status.
# stack_env            sources $CONFIDOC_STATE_DIR/stack.env (exports every variable).
# stack_pid NAME       the PID in NAME's pid file (api, mariadb, memcached, nginx).
# stack_alive PID      true while PID exists and is not a zombie.
# stack_wait_dead PID  waits (at most 20 s) until PID is gone; false if it is not.
# stack_children PID   PIDs whose parent is PID (nginx's workers).
# stack_curl ARGS...   curl through nginx, trusting the stack's CA, bounded in time.
# stack_kill_all       last resort for an EXIT trap: SIGKILL every process of the
#                      pid files and their children.
# stack_test_begin NAME  a test's own stack: WORK (/tmp/confidoc-NAME-test.*,
#                      0711 so the services' users reach their directories), the
#                      state, log and libexec inside it, a free HTTPS port, a
#                      280 s watchdog, and an EXIT trap (stack_test_end) that
#                      stops the stack, shows its logs when a check failed and
#                      removes WORK. Needs testlib.sh and certs.sh.

stack() {
    bash "$CONFIDOC_SOURCE_DIR/scripts/stack.sh" "$@" >>"$STACK_LOG" 2>&1
}

stack_env() {
    set -a
    # shellcheck disable=SC1091
    . "$CONFIDOC_STATE_DIR/stack.env"
    set +a
}

stack_pid() {
    cat "$CONFIDOC_STATE_DIR/run/$1.pid" 2>/dev/null || echo none
}

stack_alive() {
    local st
    [ -r "/proc/$1/stat" ] || return 1
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

stack_wait_dead() {
    local i
    for ((i = 0; i < 200; i++)); do
        stack_alive "$1" || return 0
        sleep 0.1
    done
    return 1
}

stack_children() {
    ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' '
    return 0
}

stack_curl() {
    curl -s --max-time 30 --cacert "$CONFIDOC_CACERT" "$@"
}

stack_kill_all() {
    local f pid
    for f in "$CONFIDOC_STATE_DIR"/run/*.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        [[ $pid =~ ^[0-9]+$ ]] || continue
        for c in $(stack_children "$pid"); do kill -KILL "$c" 2>/dev/null; done
        kill -KILL "$pid" 2>/dev/null
    done
    return 0
}

stack_test_begin() {
    WORK=$(mktemp -d "/tmp/confidoc-$1-test.XXXXXX") || exit 1
    chmod 0711 "$WORK"
    export CONFIDOC_STATE_DIR=$WORK/state STACK_LOG=$WORK/stack.log CONFIDOC_LIBEXEC_DIR=$WORK/libexec
    CONFIDOC_HTTPS_PORT=$(free_port) || exit 1
    export CONFIDOC_HTTPS_PORT
    t_watchdog 280
    # TERM is ignored while the watchdog is stopped (see test_stack.sh).
    trap 'trap "" TERM; t_watchdog_stop; stack_test_end' EXIT
}

stack_test_end() {
    local f
    stack down || stack_kill_all
    if [ "$T_FAIL" -gt 0 ]; then
        echo "# stack.sh output:"
        tail -n 30 "$STACK_LOG" 2>/dev/null | sed 's/^/#   /'
        for f in api nginx-error; do
            echo "# $f.log:"
            tail -n 20 "$CONFIDOC_STATE_DIR/log/$f.log" 2>/dev/null | sed 's/^/#   /'
        done
    fi
    rm -rf "$WORK"
}
