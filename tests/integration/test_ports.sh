#!/usr/bin/env bash
# test_ports.sh: scripts/lib/ports.sh, the one port picker of the tests, make up
# and bench: parallel pickers never share a port, ports stay below the
# kernel's ephemeral range, claims of dead processes are taken back, and the
# claims directory must be the caller's own.
set -uo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/tests/lib/testlib.sh"

WORK=$(mktemp -d /tmp/confidoc-ports-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export CONFIDOC_PORT_CLAIMS=$WORK/claims

echo "# 8 processes pick 25 ports each at once (a claim lasts as long as its process)"
for i in $(seq 1 8); do
    bash -c '. "$1/scripts/lib/ports.sh"; for _ in $(seq 1 25); do pick_port || echo FAIL; done
        touch "$2/done.$$"; for _ in $(seq 1 300); do [ -e "$2/go" ] && break; sleep 0.1; done' \
        _ "$SRC" "$WORK" >"$WORK/picked.$i" &
done
for _ in $(seq 1 300); do [ "$(find "$WORK" -name 'done.*' | wc -l)" -eq 8 ] && break; sleep 0.1; done
touch "$WORK/go"
wait
cat "$WORK"/picked.* >"$WORK/all"
t_eq "200 ports picked" "$(wc -l <"$WORK/all")" 200
t_eq "no pick failed" "$(grep -c FAIL "$WORK/all")" 0
t_eq "no port given twice" "$(sort "$WORK/all" | uniq -d | wc -l)" 0
t_eq "every port is in 10000-31999" "$(awk '$1 < 10000 || $1 > 31999' "$WORK/all" | wc -l)" 0

echo "# claims of processes that have gone are taken back"
t_eq "200 claims exist" "$(find "$CONFIDOC_PORT_CLAIMS" -mindepth 1 -maxdepth 1 -type d | wc -l)" 200
# The pickers have exited: their claims are stale and can be taken.
p=$(head -n 1 "$WORK/all")
t_true "a dead owner's claim is taken back" bash -c '. "$1/scripts/lib/ports.sh"; _port_claim "$2" && [ "$(cat "$CONFIDOC_PORT_CLAIMS/$2/pid")" = $$ ]' _ "$SRC" "$p"
sleep 30 &
live=$!
mkdir -p "$CONFIDOC_PORT_CLAIMS/31999" && echo "$live" >"$CONFIDOC_PORT_CLAIMS/31999/pid"
t_true "a live owner's claim is respected" bash -c '. "$1/scripts/lib/ports.sh"; ! _port_claim 31999' _ "$SRC"
kill "$live"
wait "$live" 2>/dev/null

echo "# the claims directory must be the caller's own"
chmod 0777 "$CONFIDOC_PORT_CLAIMS"
t_true "a claims directory others can write is refused" bash -c '. "$1/scripts/lib/ports.sh"; ! pick_port 2>/dev/null' _ "$SRC"
rm -rf "$CONFIDOC_PORT_CLAIMS"
ln -s "$WORK" "$CONFIDOC_PORT_CLAIMS"
t_true "a link in its place is refused" bash -c '. "$1/scripts/lib/ports.sh"; ! pick_port 2>/dev/null' _ "$SRC"
t_finish
