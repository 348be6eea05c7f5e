# ports.sh: one way to pick a free TCP port on 127.0.0.1 (sourced by
# scripts/stack.sh, bench/run.sh and the tests).
#
# Ports come from 10000-31999, below the kernel's ephemeral range
# (32768-60999), where an outgoing connection may already hold a port that
# nothing listens on. Parallel callers (ctest -j, two stacks, a bench beside
# the tests) never get the same port: each pick is claimed by an atomic mkdir
# under $CONFIDOC_PORT_CLAIMS (default /tmp/confidoc-ports-UID) that records the
# claiming shell's PID; a claim whose process has gone is taken back. The
# claims directory is the caller's own, 0700, never a link: nobody else can
# swap a claim for a link to make root write elsewhere.

CONFIDOC_PORT_CLAIMS=${CONFIDOC_PORT_CLAIMS:-${TMPDIR:-/tmp}/confidoc-ports-$(id -u)}

port_in_use() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

# _port_claim PORT: claims PORT for this shell ($$); fails when another live
# process holds the claim.
_port_claim() {
    local d=$CONFIDOC_PORT_CLAIMS/$1 owner
    if mkdir "$d" 2>/dev/null; then
        echo "$$" >"$d/pid"
        return 0
    fi
    owner=$(cat "$d/pid" 2>/dev/null) || owner=
    [ "$owner" = "$$" ] && return 1 # ours already: picked earlier in this run
    if [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null; then return 1; fi
    # The owner is gone (or never wrote its PID: give it a second first).
    if [ -z "$owner" ] && [ -n "$(find "$d" -maxdepth 0 -newermt '-2 seconds' 2>/dev/null)" ]; then
        return 1
    fi
    rm -rf "$d" 2>/dev/null
    mkdir "$d" 2>/dev/null || return 1
    echo "$$" >"$d/pid"
}

# pick_port: prints a port nobody listens on and nobody else claimed; fails
# after 500 tries.
pick_port() {
    local p
    mkdir -m 0700 "$CONFIDOC_PORT_CLAIMS" 2>/dev/null
    [ -d "$CONFIDOC_PORT_CLAIMS" ] && [ ! -L "$CONFIDOC_PORT_CLAIMS" ] &&
        [ -O "$CONFIDOC_PORT_CLAIMS" ] &&
        [ "$(stat -c %a "$CONFIDOC_PORT_CLAIMS")" = 700 ] || {
        echo "ports: $CONFIDOC_PORT_CLAIMS must be a directory of this user's, mode 0700" >&2
        return 1
    }
    for _ in $(seq 1 500); do
        p=$(((RANDOM % 22000) + 10000))
        port_in_use "$p" && continue
        _port_claim "$p" || continue
        echo "$p"
        return 0
    done
    return 1
}
