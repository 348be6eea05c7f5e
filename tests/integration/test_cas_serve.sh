#!/usr/bin/env bash
# test_cas_serve.sh: confidoc-cas serve end to end: attest (right and wrong
# pin), public values over HTTPS with the attested CA, identical refusals for
# private and unknown secrets, sessions (create by admins only, updates with
# predecessor and quorum, reads by listed keys only), restart keeping
# sessions, secrets and the pin, the worker's user and sandbox, and the
# parent restarting a dead worker.
set -uo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${CONFIDOC_BUILD_DIR:-$SRC/build}
CAS=$BUILD/confidoc-cas
# shellcheck source=../lib/testlib.sh
source "$SRC/tests/lib/testlib.sh"
# shellcheck source=../../scripts/lib/ports.sh
source "$SRC/scripts/lib/ports.sh"

WORK=$(mktemp -d /tmp/confidoc-cas-serve.XXXXXX)
chmod 755 "$WORK"
SERVE_PID=
cleanup() {
    [ -n "$SERVE_PID" ] && kill -KILL "$SERVE_PID" 2>/dev/null
    [ -n "$SERVE_PID" ] && wait "$SERVE_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
t_watchdog 240
trap 't_watchdog_stop; cleanup' EXIT

STATE=$WORK/state
PORT=$(pick_port)
ADDR=127.0.0.1:$PORT
ME=$(id -un)
# The --var values of scripts/stack.sh provision(), with this user as every service's.
VARS=(--var API_HOST=localhost --var NGINX_HOST=localhost --var DB_HOST=localhost
      --var MEMCACHED_HOST=localhost --var API_USER="$ME" --var DB_USER="$ME"
      --var MEMCACHED_USER="$ME" --var NGINX_USER="$ME")

for who in admin op1 op2 op3 stranger; do
    "$CAS" client-keygen --key "$WORK/$who.key" --cert "$WORK/$who.crt" --name "$who" \
        >"$WORK/$who.hash"
    declare "H_${who}=$(cat "$WORK/$who.hash")"
done
t_eq "client-keygen prints the key's hash (SHA-256 of the DER SPKI)" "$H_admin" \
    "$(openssl x509 -in "$WORK/admin.crt" -noout -pubkey | openssl pkey -pubin -outform DER |
        sha256sum | cut -d' ' -f1)"

start_serve() {
    "$CAS" serve --state "$STATE" --listen "$ADDR" --name localhost --admin "$H_admin" \
        --sealing-key "$WORK/sealing.key" --socket "$WORK/cas.sock" \
        --pidfile "$WORK/serve.pid" --pin-out "$WORK/pin" "$@" >>"$WORK/serve.log" 2>&1 &
    SERVE_PID=$!
    for _ in $(seq 1 100); do
        if [ -s "$WORK/serve.pid" ] && grep -q 'worker ready' "$WORK/serve.log" 2>/dev/null &&
            ss -Htln "sport = :$PORT" | grep -q .; then
            return 0
        fi
        sleep 0.1
    done
    cat "$WORK/serve.log"
    return 1
}
stop_serve() {
    kill -TERM "$SERVE_PID"
    local rc=0
    wait "$SERVE_PID" || rc=$?
    SERVE_PID=
    return "$rc"
}
worker_pid() { pgrep -P "$SERVE_PID" -f serve-worker | head -1; }

# ---- start, pin, attest ----
t_true "serve starts with the shipped policies as sessions" \
    start_serve --policies "$SRC/deploy/policies" "${VARS[@]}"
PIN=$(cat "$WORK/pin")
t_true "the pin is 64 hex digits" grep -qE '^[0-9a-f]{64}$' "$WORK/pin"
t_eq "STATE/cas/identity.pin holds the pin" "$(cat "$STATE/cas/identity.pin")" "$PIN"

WRONG=$(printf '%064d' 0)
echo "untouched" >"$WORK/kept.pem"
rc=0; "$CAS" attest "$ADDR" --expect "$WRONG" --ca-out "$WORK/wrong.pem" >"$WORK/out" 2>&1 || rc=$?
t_true "attest with a wrong pin exits non-zero" [ "$rc" -ne 0 ]
t_true "attest with a wrong pin writes nothing" [ ! -e "$WORK/wrong.pem" ]
rc=0; "$CAS" attest "$ADDR" --expect "$WRONG" --ca-out "$WORK/kept.pem" >/dev/null 2>&1 || rc=$?
t_eq "attest with a wrong pin leaves an existing file alone" "$rc:$(cat "$WORK/kept.pem")" "1:untouched"
OUT=$("$CAS" attest "$ADDR" --expect "$PIN" --ca-out "$WORK/ca.pem")
t_eq "attest with the right pin succeeds" "$OUT" "CAS at $ADDR matches pin $PIN"
t_eq "the CA file is 0644" "$(stat -c %a "$WORK/ca.pem")" 644
t_eq "the CA's key hashes to the pin" \
    "$(openssl x509 -in "$WORK/ca.pem" -noout -pubkey | openssl pkey -pubin -outform DER |
        sha256sum | cut -d' ' -f1)" "$PIN"
t_contains "the CA is the CAS's own" "$(openssl x509 -in "$WORK/ca.pem" -noout -subject)" \
    "confidoc CAS CA"

# ---- TLS 1.3 only ----
rc=0; timeout 10 openssl s_client -connect "$ADDR" -tls1_2 </dev/null >/dev/null 2>&1 || rc=$?
t_true "TLS 1.2 is refused" [ "$rc" -ne 0 ]

# ---- public values ----
c() { curl -s --max-time 15 --cacert "$WORK/ca.pem" "$@"; }
req c GET "https://localhost:$PORT/v1/values/session=nginx,secret=SERVER_CA"
t_eq "the nginx public CA: 200" "$STATUS" 200
t_eq "as application/json" "$(header content-type)" application/json
printf '%s' "$BODY" | jq -r .value >"$WORK/nginx-ca.pem"
t_contains "the value is the nginx public CA" \
    "$(openssl x509 -in "$WORK/nginx-ca.pem" -noout -subject 2>&1)" "confidoc public CA"
req c GET "https://localhost:$PORT/v1/values/session=nginx,secret=NGINX_SERVER"
S1=$STATUS B1=$BODY
req c GET "https://localhost:$PORT/v1/values/session=nginx,secret=NO_SUCH"
S2=$STATUS B2=$BODY
req c GET "https://localhost:$PORT/v1/values/session=nosuch,secret=SERVER_CA"
S3=$STATUS B3=$BODY
t_eq "a private secret: 404" "$S1" 404
t_eq "a private, an unknown secret and an unknown session: identical answers" \
    "$S1 $B1|$S2 $B2|$S3 $B3" "404 $B1|404 $B1|404 $B1"
t_not_contains "the refusal holds no PEM" "$B1" "BEGIN"
req c GET "https://localhost:$PORT/v1/nothing"
t_eq "an unknown path: 404" "$STATUS" 404
req c POST "https://localhost:$PORT/v1/values/session=nginx,secret=SERVER_CA"
t_eq "another method on a known path: 405" "$STATUS" 405

# ---- sessions ----
ses() { # ses WHO get|put ARGS...
    local who=$1; shift
    "$CAS" session "$@" --cas "localhost:$PORT" --cacert "$WORK/ca.pem" \
        --cert "$WORK/$who.crt" --key "$WORK/$who.key"
}
cat >"$WORK/demo.yaml" <<YAML
name: demo
access:
  read: [$H_op3]
  update: [$H_op1, $H_op2]
secrets:
  - name: DEMO_CA
    kind: x509-ca
    common_name: demo CA
    export_public: true
YAML
rc=0; ses stranger put "$WORK/demo.yaml" >"$WORK/out" 2>&1 || rc=$?
t_true "a create by a key not in --admin is refused" [ "$rc" -ne 0 ]
t_contains "with 403" "$(cat "$WORK/out")" "403"
H1=$(ses admin put "$WORK/demo.yaml")
t_eq "the admin creates a session; its hash is the text's SHA-256" "$H1" \
    "$(sha256sum "$WORK/demo.yaml" | cut -d' ' -f1)"
req c GET "https://localhost:$PORT/v1/values/session=demo,secret=DEMO_CA"
t_eq "the new session's public CA is served" "$STATUS" 200
rc=0; ses admin put "$WORK/demo.yaml" >"$WORK/out" 2>&1 || rc=$?
t_contains "creating it again: the admin is no update key of it (403)" "$rc $(cat "$WORK/out")" "1 "
t_contains "with 403" "$(cat "$WORK/out")" "403"

get_hash() { ses "$1" get demo >/dev/null && curl -s --max-time 15 --cacert "$WORK/ca.pem" \
    --cert "$WORK/$1.crt" --key "$WORK/$1.key" "https://localhost:$PORT/v1/sessions/demo" | jq -r .hash; }
t_eq "a key in access.read reads the session" "$(ses op3 get demo)" "$(cat "$WORK/demo.yaml")"
t_eq "and its hash" "$(get_hash op3)" "$H1"
req c GET "https://localhost:$PORT/v1/sessions/demo" --cert "$WORK/stranger.crt" --key "$WORK/stranger.key"
t_eq "a key in no list: 404" "$STATUS" 404
req c GET "https://localhost:$PORT/v1/sessions/demo"
t_eq "no client certificate: 404" "$STATUS" 404
t_eq "the same 404 as an unknown session" "$BODY" "$B1"

sed 's/common_name: demo CA/common_name: demo CA two/' "$WORK/demo.yaml" >"$WORK/demo2.yaml"
rc=0; ses op1 put "$WORK/demo2.yaml" >"$WORK/out" 2>&1 || rc=$?
t_contains "an update without predecessor is refused (409)" "$rc $(cat "$WORK/out")" "1 "
t_contains "with 409" "$(cat "$WORK/out")" "409"
STALE=$(printf '%064d' 1 | tr 0 a)
rc=0; ses op1 put "$WORK/demo2.yaml" --predecessor "$STALE" >"$WORK/out" 2>&1 || rc=$?
t_contains "an update with a stale predecessor is refused (409)" "$rc $(cat "$WORK/out")" "409"
rc=0; ses op3 put "$WORK/demo2.yaml" --predecessor auto >"$WORK/out" 2>&1 || rc=$?
t_contains "an update by a read-only key is refused (403)" "$rc $(cat "$WORK/out")" "403"
H2=$(ses op1 put "$WORK/demo2.yaml" --predecessor auto)
t_true "an update with the current predecessor is accepted" [ -n "$H2" ] && [ "$H2" != "$H1" ]
t_eq "GET shows the new hash" "$(get_hash op1)" "$H2"
t_contains "and the new text, predecessor included" "$(ses op1 get demo)" "predecessor: $H1"
# The parent counts only signatures it checks itself: an update key's TLS
# certificate alone (no signature in the body) is refused, so a compromised
# network worker, which reports the client's key hash, cannot forge one.
{ printf 'predecessor: %s\n' "$H2"; cat "$WORK/demo.yaml"; } >"$WORK/raw.yaml"
jq -Rs '{session: ., signatures: []}' "$WORK/raw.yaml" >"$WORK/raw.json"
req c POST "https://localhost:$PORT/v1/sessions" --cert "$WORK/op1.crt" --key "$WORK/op1.key" \
    -H 'Content-Type: application/json' --data-binary "@$WORK/raw.json"
t_eq "an update key's TLS certificate without its signature: 403" "$STATUS" 403
t_eq "and the session is unchanged" "$(get_hash op1)" "$H2"

# quorum 2
sed 's/^  update: \[.*/&\n  update_quorum: 2/' "$WORK/demo2.yaml" >"$WORK/demo3.yaml"
H3=$(ses op2 put "$WORK/demo3.yaml" --predecessor auto)
t_true "the session now needs two update keys" [ -n "$H3" ]
rc=0; ses op1 put "$WORK/demo.yaml" --predecessor auto >"$WORK/out" 2>&1 || rc=$?
t_contains "quorum 2: one signer (the TLS key) is refused (403)" "$rc $(cat "$WORK/out")" "403"
rc=0; ses op1 put "$WORK/demo.yaml" --predecessor auto --sign "$WORK/op1.key" >"$WORK/out" 2>&1 || rc=$?
t_contains "quorum 2: the same key twice is still one (403)" "$rc $(cat "$WORK/out")" "403"
rc=0; ses op1 put "$WORK/demo.yaml" --predecessor auto --sign "$WORK/op3.key" >"$WORK/out" 2>&1 || rc=$?
t_contains "quorum 2: a signature by a key not in access.update does not count (403)" \
    "$rc $(cat "$WORK/out")" "403"
H4=$(ses op1 put "$WORK/demo.yaml" --predecessor auto --sign "$WORK/op2.key")
t_true "quorum 2: two distinct update keys are accepted" [ -n "$H4" ]
H5=$(ses stranger put "$WORK/demo3.yaml" --predecessor "$H4" --sign "$WORK/op1.key" \
    --sign "$WORK/op2.key" 2>"$WORK/out") || true
t_true "two signatures alone (any TLS client) are enough" [ -n "$H5" ]
t_eq "GET shows the last hash" "$(get_hash op1)" "$H5"

cat >"$WORK/bad.yaml" <<YAML
name: broken
secrets:
  - name: LEAF
    kind: x509
    issuer: NO_SUCH_CA
    common_name: x
    usage: [server]
YAML
rc=0; ses admin put "$WORK/bad.yaml" >"$WORK/out" 2>&1 || rc=$?
t_contains "a session that does not link is refused (400) with its messages" \
    "$rc $(cat "$WORK/out")" "NO_SUCH_CA"

t_true "the state holds no session text and no PEM in clear" \
    [ -z "$(grep -rlE 'DEMO_CA|BEGIN|SERVER_CA' "$STATE/cas" 2>/dev/null)" ]

# ---- attested release through the service's unix socket (root: mounts, uids) ----
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$WORK/bin" "$WORK/mnt/run"
    install -m 755 "$BUILD/tests/prog_secret_reader" "$WORK/bin/reader"
    cat >"$WORK/runner.yaml" <<YAML
name: runner
measurements:
  executable: [$(sha256sum "$WORK/bin/reader" | cut -d' ' -f1)]
  user: nobody
  mount: $WORK/mnt/run
secrets:
  - name: KEY
    kind: symmetric-key
injection_files:
  - path: runner/key.hex
    content: \$\$CAS::KEY.hex\$\$
YAML
    H_RUN=$(ses admin put "$WORK/runner.yaml")
    t_true "the admin creates a releasable session" [ -n "$H_RUN" ]
    t_eq "the socket is 0666" "$(stat -c %a "$WORK/cas.sock")" 666
    out=$("$CAS" run --session runner --socket "$WORK/cas.sock" -- "$WORK/bin/reader" \
        runner/key.hex 2>&1)
    t_contains "run gets the session's files from the service" "$out" "file runner/key.hex"
    t_contains "as the session's user" "$out" "uid=$(id -u nobody)"
    rc=0; "$CAS" run --session runner --socket "$WORK/cas.sock" -- /bin/true >"$WORK/out" 2>&1 || rc=$?
    t_contains "another executable is refused" "$rc $(cat "$WORK/out")" "refused"
fi

AUDIT=$STATE/cas/audit.log
audit_ok() { "$CAS" audit verify "$AUDIT" --pin "$PIN" >/dev/null; }
t_true "the audit log verifies against the pin" audit_ok
# (refusals: 10, the unsigned update above among them)
t_eq "every session change and refusal is in it" \
    "$(grep -c '"kind":"session_create"' "$AUDIT") $(grep -c '"kind":"session_update"' "$AUDIT") $(grep -c '"kind":"session_refused"' "$AUDIT")" \
    "$(( 7 + $(id -u | grep -c '^0$') )) 4 10"
if [ "$(id -u)" = 0 ]; then
    t_eq "each release and refusal to a process is in it" \
        "$(grep -c '"kind":"release"' "$AUDIT") $(grep -c '"kind":"release_refused"' "$AUDIT")" "1 1"
    t_contains "a release names who, the measurement and the files" \
        "$(grep '"kind":"release"' "$AUDIT")" '"secrets":["runner/key.hex"]'
fi
t_contains "a refusal names the session, the client and why" \
    "$(grep '"kind":"session_refused"' "$AUDIT" | head -1)" "\"client=$H_stranger\""

# ---- the worker ----
WPID=$(worker_pid)
t_true "a worker runs" [ -n "$WPID" ]
if [ "$(id -u)" = 0 ]; then
    t_eq "the worker runs as nobody" "$(ps -o user= -p "$WPID" | tr -d ' ')" nobody
fi
t_eq "the worker holds only stdio, the listening socket and its IPC socket" \
    "$(ls /proc/"$WPID"/fd | sort -n | tr '\n' ' ')" "0 1 2 3 4 "
t_eq "the worker is in seccomp filter mode" "$(awk '/^Seccomp:/{print $2}' /proc/"$WPID"/status)" 2
kill -KILL "$WPID"
for _ in $(seq 1 50); do
    N=$(worker_pid || true)
    [ -n "$N" ] && [ "$N" != "$WPID" ] && grep -c 'worker ready' "$WORK/serve.log" | grep -q '^[2-9]' && break
    sleep 0.1
done
req c GET "https://localhost:$PORT/v1/values/session=nginx,secret=SERVER_CA"
t_eq "the parent restarts a killed worker, which serves" "$STATUS" 200

PROG=$BUILD/tests/prog_casd_sandbox
META=$STATE/cas/sessions/nginx.meta
out=$("$PROG" landlock "$META" "$STATE/cas" 2>&1) && rc=0 || rc=$?
printf '%s\n' "$out" | sed 's/^/  /'
t_eq "Landlock: the worker's sandbox cannot open the state nor create a file" "$rc" 0
rc=0; out=$("$PROG" all "$META" "$STATE/cas" nobody 2>&1) || rc=$?
printf '%s\n' "$out" | sed 's/^/  /'
t_eq "seccomp: opening fails and a call off the list kills (SIGSYS)" \
    "$rc $(printf '%s\n' "$out" | grep -c '^ok')" "159 2"

# ---- malformed IPC: each end ends (or restarts) the other ----
PEER=$BUILD/tests/prog_casd_peer
P2=$(pick_port)
"$PEER" bad-reply "$P2" >"$WORK/peer.out" 2>"$WORK/peer.err" &
PEER_PID=$!
for _ in $(seq 1 100); do grep -q READY "$WORK/peer.out" && break; sleep 0.05; done
curl -sk --max-time 10 -o /dev/null "https://127.0.0.1:$P2/v1/values/session=a,secret=B"
wait "$PEER_PID"
t_eq "a malformed reply ends the worker (status 3)" "$(grep 'worker exit' "$WORK/peer.out")" \
    "worker exit 3"
P3=$(pick_port)
"$PEER" serve "$WORK/peer-state" "$P3" "$WORK/peer-sealing.key" >"$WORK/peer2.out" 2>&1 &
PEER_PID=$!
for _ in $(seq 1 100); do
    [ "$(grep -c 'malformed request from the worker' "$WORK/peer2.out")" -ge 2 ] && break
    sleep 0.1
done
kill -TERM "$PEER_PID"
wait "$PEER_PID"
t_true "a malformed request: the parent kills the worker and starts another, again and again" \
    [ "$(grep -c 'malformed request from the worker: killing and restarting it' "$WORK/peer2.out")" -ge 2 ]
t_true "at most one start a second" \
    [ "$(grep -c 'worker [0-9]* started' "$WORK/peer2.out")" -le 12 ]

# ---- restart ----
cp "$WORK/ca.pem" "$WORK/ca-before.pem"
cp "$WORK/nginx-ca.pem" "$WORK/nginx-ca-before.pem"
LAST_WORKER=$(worker_pid)
t_true "SIGTERM stops serve with status 0" stop_serve
# This serve's own worker, by pid: other CAS instances (a parallel test, a
# stack) may run workers of their own.
gone() { [ -n "$1" ] && ! kill -0 "$1" 2>/dev/null; }
t_true "no worker is left" gone "$LAST_WORKER"
t_true "serve starts again (no --policies)" start_serve
t_eq "the pin is kept" "$(cat "$WORK/pin")" "$PIN"
"$CAS" attest "$ADDR" --expect "$PIN" --ca-out "$WORK/ca.pem" >/dev/null
t_true "the CA PEM is identical" cmp -s "$WORK/ca.pem" "$WORK/ca-before.pem"
t_eq "sessions are kept" "$(get_hash op1)" "$H5"
req c GET "https://localhost:$PORT/v1/values/session=nginx,secret=SERVER_CA"
printf '%s' "$BODY" | jq -r .value >"$WORK/nginx-ca.pem"
t_true "secrets are kept (the same nginx CA)" cmp -s "$WORK/nginx-ca.pem" "$WORK/nginx-ca-before.pem"
t_true "the audit log continues across the restart and verifies" audit_ok
t_eq "with a start line for each start" "$(grep -c '"kind":"start"' "$AUDIT")" 2
t_true "SIGTERM stops serve again" stop_serve
head -n -1 "$AUDIT" >"$WORK/cut.log" && cp "$WORK/cut.log" "$AUDIT"
rc=0; start_serve >/dev/null 2>&1 || rc=$?
t_true "a log cut at its end (its sealed head missing) stops the CAS from starting" [ "$rc" -ne 0 ]
[ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null; wait "$SERVE_PID" 2>/dev/null; SERVE_PID=
t_not_contains "the log holds no key material" "$(cat "$WORK/serve.log")" "PRIVATE KEY"

t_finish
