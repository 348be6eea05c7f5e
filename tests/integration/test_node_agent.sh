#!/usr/bin/env bash
# test_node_agent.sh: confidoc-cas node-agent between `confidoc-cas run` and a
# real `confidoc-cas serve` (docs/internals/cas-service.md, "Node agents"):
# an agent with an admitted node identity gets a launched program its
# secrets; refused: an agent whose identity is not admitted, an agent given a
# wrong --cas-pin, a program whose hash is not the session's, a caller uid
# that is neither root nor the session's user, a caller that is not the
# launcher, and a node report not signed by the node's key. The files reach
# only the measured process (its private tmpfs), and every release and
# refusal is in the audit log with the node's identity. Root only (mounts,
# uid changes): skipped (77) otherwise.
set -uo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${CONFIDOC_BUILD_DIR:-$SRC/build}
CAS=$BUILD/confidoc-cas
# shellcheck source=../lib/testlib.sh
source "$SRC/tests/lib/testlib.sh"
# shellcheck source=../../scripts/lib/ports.sh
source "$SRC/scripts/lib/ports.sh"

[ "$(id -u)" = 0 ] || { echo "skip: test_node_agent needs root"; exit 77; }
id confidoc >/dev/null 2>&1 || { echo "skip: no user confidoc"; exit 77; }

WORK=$(mktemp -d /tmp/confidoc-node-agent.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
t_watchdog 180
trap 't_watchdog_stop; cleanup' EXIT

PORT=$(pick_port)
MPORT=$(pick_port)
mkdir -p "$WORK/bin" "$WORK/mnt/run" "$WORK/policies"
install -m 755 "$BUILD/tests/prog_secret_reader" "$WORK/bin/reader"
install -m 755 "$BUILD/tests/prog_release_client" "$WORK/bin/client"
# The launcher as another user runs it: a copy (the same bytes, so the same
# measurement) where that user can reach it, for a build tree in a 0700 home.
install -m 755 "$CAS" "$WORK/bin/confidoc-cas"
READER_SHA=$(sha256sum "$WORK/bin/reader" | cut -d' ' -f1)
cat >"$WORK/policies/runner.yaml" <<YAML
name: runner
measurements:
  executable: [$READER_SHA]
  user: nobody
  mount: $WORK/mnt/run
secrets:
  - name: KEY
    kind: symmetric-key
injection_files:
  - path: runner/key.hex
    content: \$\$CAS::KEY.hex\$\$
YAML

keygen() { "$CAS" client-keygen --key "$WORK/$1.key" --cert "$WORK/$1.crt" --name "$1"; }
H_admin=$(keygen admin)
H_node1=$(keygen node1)
H_node2=$(keygen node2)

# ---- the CAS, admitting node1 only ----
"$CAS" serve --state "$WORK/state" --listen "127.0.0.1:$PORT" --name localhost --admin "$H_admin" \
    --sealing-key "$WORK/sealing.key" --node "$H_node1" --policies "$WORK/policies" \
    --metrics-listen "127.0.0.1:$MPORT" --metrics-client "$H_admin" \
    --pidfile "$WORK/serve.pid" --pin-out "$WORK/pin" >"$WORK/serve.log" 2>&1 &
PIDS+=($!)
SERVE_PID=$!
up=no
for _ in $(seq 1 100); do
    if [ -s "$WORK/pin" ] && grep -q 'worker ready' "$WORK/serve.log" &&
        ss -Htln "sport = :$PORT" | grep -q .; then up=yes; break; fi
    sleep 0.1
done
t_eq "serve starts with --node" "$up" yes
PIN=$(cat "$WORK/pin")
WRONG=$(printf '%064d' 0)

# start_agent NAME PIN IDENTITY: an agent on $WORK/NAME.sock; waits for its socket.
start_agent() {
    "$CAS" node-agent --socket "$WORK/$1.sock" --cas "https://localhost:$PORT" --cas-pin "$2" \
        --identity-cert "$WORK/$3.crt" --identity-key "$WORK/$3.key" >"$WORK/$1.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 50); do
        [ -S "$WORK/$1.sock" ] && return 0
        sleep 0.1
    done
    cat "$WORK/$1.log"
    return 1
}
t_true "an agent with the admitted identity starts" start_agent good "$PIN" node1
t_true "an agent with an identity not admitted starts" start_agent stranger "$PIN" node2
t_true "an agent with a wrong --cas-pin starts" start_agent badpin "$WRONG" node1
GOOD_PID=${PIDS[1]}

t_eq "the agent's socket is 0666" "$(stat -c %a "$WORK/good.sock")" 666
t_contains "the agent logs its node identity's key hash" "$(cat "$WORK/good.log")" "$H_node1"
t_true "node-agent --check answers 0 on a live agent" \
    "$CAS" node-agent --check --socket "$WORK/good.sock"
rc=0; "$CAS" node-agent --check --socket "$WORK/none.sock" 2>/dev/null || rc=$?
t_eq "node-agent --check exits 1 without an agent" "$rc" 1
t_eq "the agent keeps CAP_SYS_PTRACE only" \
    "$(awk '/^CapEff/ {print $2}' "/proc/$GOOD_PID/status")" "0000000000080000"
t_eq "the agent runs with no_new_privs" "$(awk '/^NoNewPrivs/ {print $2}' "/proc/$GOOD_PID/status")" 1
t_eq "the agent runs in a seccomp filter (mode 2)" "$(awk '/^Seccomp:/ {print $2}' "/proc/$GOOD_PID/status")" 2
t_contains "the agent says it is sandboxed" "$(cat "$WORK/good.log")" "(sandboxed)"

# ---- a release through the agent ----
out=$("$CAS" run --session runner --socket "$WORK/good.sock" -- "$WORK/bin/reader" runner/key.hex 2>&1)
t_contains "run through the agent gets the session's files" "$out" "file runner/key.hex 64"
t_contains "as the session's user" "$out" "uid=$(id -u nobody)"
t_contains "in a tmpfs" "$out" "tmpfs yes"
t_eq "the files reached only the launched process (nothing on the host's mount point)" \
    "$(find "$WORK/mnt/run" -mindepth 1 | wc -l)" 0

# ---- refusals ----
refused() { # refused NAME WANT CMD...: CMD (a run) is refused with WANT
    local name=$1 want=$2 rc=0
    shift 2
    "$@" >"$WORK/out" 2>&1 || rc=$?
    t_contains "$name" "rc=$rc $(cat "$WORK/out")" "rc=1 confidoc-cas run: refused: "
    t_contains "$name: why" "$(cat "$WORK/out")" "$want"
    t_true "$name: no file written" [ ! -e "$WORK/mnt/run/runner" ]
}
refused "an identity the CAS has not admitted" "node identity not admitted" \
    "$CAS" run --session runner --socket "$WORK/stranger.sock" -- "$WORK/bin/reader" runner/key.hex
refused "a CAS that does not match --cas-pin" "does not match --cas-pin" \
    "$CAS" run --session runner --socket "$WORK/badpin.sock" -- "$WORK/bin/reader" runner/key.hex
refused "a program whose hash is not the session's" "exe hash mismatch" \
    "$CAS" run --session runner --socket "$WORK/good.sock" -- /bin/true
refused "a caller uid that is neither root nor the session's user" "uid mismatch: caller uid $(id -u confidoc)" \
    runuser -u confidoc -- "$WORK/bin/confidoc-cas" run --session runner --socket "$WORK/good.sock" --fallback-dir "$WORK/fb" -- "$WORK/bin/reader" runner/key.hex
out=$("$WORK/bin/client" "$WORK/good.sock" runner "$READER_SHA" "$(id -u nobody)" 2>&1)
t_contains "a caller that is not the launcher gets nothing (the agent measured it)" "$out" \
    "caller is not the confidoc-cas launcher"
t_true "the agent still answers after the refusals" "$CAS" node-agent --check --socket "$WORK/good.sock"

# ---- bounds: 16 callers at a time; one that says nothing is cut at the deadline ----
out=$(timeout 30 python3 - "$WORK/good.sock" <<'PY'
import socket, struct, sys, time
held = []
for _ in range(16):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sys.argv[1])
    held.append(s)
time.sleep(0.5)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
s.settimeout(5)
m = s.recv(4096)
print("busy" if struct.unpack(">I", m[:4])[0] == 3 and b"busy" in m else "other")
t = time.monotonic()
held[0].settimeout(20)
cut = held[0].recv(4096) == b""
dt = time.monotonic() - t
print("cut in time" if cut and 9 <= dt <= 13 else "cut=%s after %.1f s" % (cut, dt))
PY
)
t_contains "a 17th caller is refused at once while 16 are served" "$out" "busy"
t_contains "a silent caller is cut at the agent's deadline (12 s)" "$out" "cut in time"

# ---- the CAS's node endpoints, directly ----
"$CAS" attest "127.0.0.1:$PORT" --expect "$PIN" --ca-out "$WORK/ca.pem" >/dev/null
post() { # post PATH BODY [curl args]: prints the status and the body
    local path=$1 body=$2
    shift 2
    curl -s --max-time 15 --cacert "$WORK/ca.pem" -w ' %{http_code}' -H 'Content-Type: application/json' \
        --data-binary "$body" "$@" "https://localhost:$PORT$path"
}
t_contains "a hello without a client certificate is refused" \
    "$(post /v1/node/hello '{"hello":"AAAA","uid":"0","gid":"0","pid":"1","exe":"x"}')" \
    "node identity not admitted\"} 403"
# A report signed by another key than the TLS client's (an admitted node's):
printf 'x' >"$WORK/report"
openssl dgst -sha256 -sign "$WORK/node2.key" -out "$WORK/sig" "$WORK/report"
PUB2=$(openssl x509 -in "$WORK/node2.crt" -noout -pubkey | awk '{printf "%s\\n", $0}')
BODY="{\"report\":\"x\",\"public_key\":\"$PUB2\",\"signature\":\"$(base64 -w0 "$WORK/sig")\"}"
t_contains "a report not signed by the TLS identity's key is refused" \
    "$(post /v1/node/measure "$BODY" --cert "$WORK/node1.crt" --key "$WORK/node1.key")" \
    "not signed by the node's identity key\"} 403"

# ---- the audit log ----
AUDIT=$WORK/state/cas/audit.log
t_true "the audit log verifies against the pin" "$CAS" audit verify "$AUDIT" --pin "$PIN"
t_eq "one release through the agent, named with its node" \
    "$(grep '"kind":"release"' "$AUDIT" | grep -c "\"who\":\"node=$H_node1 uid=0 gid=0 pid=")" 1
t_contains "the release names the files" "$(grep '"kind":"release"' "$AUDIT")" \
    '"secrets":["runner/key.hex"]'
t_contains "the unadmitted node's refusal names it" \
    "$(grep '"kind":"release_refused"' "$AUDIT" | grep "node=$H_node2")" "node identity not admitted"
t_contains "the exe mismatch is recorded with the node" \
    "$(grep '"kind":"release_refused"' "$AUDIT" | grep "node=$H_node1")" "exe hash mismatch"
t_contains "the uid refusal is recorded with the node" \
    "$(grep '"kind":"release_refused"' "$AUDIT" | grep "node=$H_node1")" "uid mismatch"
t_contains "the forged report is recorded" "$(grep '"kind":"release_refused"' "$AUDIT")" \
    "not signed by the node's identity key"

# ---- the CAS's metrics count what the audit log holds ----
"$CAS" attest "127.0.0.1:$PORT" --expect "$PIN" --ca-out "$WORK/cas-ca.pem" >/dev/null
curl -s --max-time 10 --cacert "$WORK/cas-ca.pem" --cert "$WORK/admin.crt" --key "$WORK/admin.key" \
    -o "$WORK/metrics" "https://localhost:$MPORT/metrics"
mval() { awk -v k="$1" 'index($0, k " ") == 1 { v = $NF } END { print (v == "" ? 0 : v) }' "$WORK/metrics"; }
t_eq "releases_total{service=\"runner\"} is the audit log's releases" \
    "$(mval 'confidoc_cas_releases_total{service="runner"}')" "$(grep -c '"kind":"release"' "$AUDIT")"
t_eq "refusals_total, all reasons, is the audit log's refused releases" \
    "$(grep '^confidoc_cas_refusals_total{' "$WORK/metrics" | awk '{ s += $NF } END { print s }')" \
    "$(grep -c '"kind":"release_refused"' "$AUDIT")"
t_true "the unadmitted node and the forged report count as reason node (>= 2)" \
    [ "$(mval 'confidoc_cas_refusals_total{reason="node"}')" -ge 2 ]
t_true "the exe mismatch counts as reason executable" \
    [ "$(mval 'confidoc_cas_refusals_total{reason="executable"}')" -ge 1 ]
t_true "the uid mismatch counts as reason uid" \
    [ "$(mval 'confidoc_cas_refusals_total{reason="uid"}')" -ge 1 ]
t_true "node reports were answered and accepted" \
    [ "$(mval 'confidoc_cas_node_reports_total{result="accepted"}')" -ge 2 ]
t_true "and refused" [ "$(mval 'confidoc_cas_node_reports_total{result="refused"}')" -ge 1 ]
t_not_contains "no node's key hash in a label" "$(grep -v '^#' "$WORK/metrics")" "$H_node1"

# ---- stopped by PID ----
for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
rc=0
for p in "${PIDS[@]}"; do wait "$p" || rc=$?; done
PIDS=()
t_eq "SIGTERM stops the agents and the CAS with status 0" "$rc" 0
t_true "the agent removes its socket" [ ! -e "$WORK/good.sock" ]
: "$SERVE_PID"
t_finish
