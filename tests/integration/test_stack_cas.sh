#!/usr/bin/env bash
# test_stack_cas.sh: make up through the CAS service (issue 11, "In the
# system"): no service key on disk after make up (the sealed state and the
# services' private tmpfs aside), the tmpfs invisible on the host, attest
# with stack.env's pin (and a wrong one refused), the public CA from the
# CAS's /v1/values verifying nginx and the original's three curl commands,
# an intact audit log with a release per service, make down / make up keeping
# the CA byte-identical, a changed binary refused until make up updates its
# session with its predecessor, and an older make up's state (plaintext
# provisioning) upgraded with its CA and its documents. Root only (the
# launcher's mount namespaces and uid changes): skipped otherwise.
set -uo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
export CONFIDOC_SOURCE_DIR=$SRC
export CONFIDOC_BUILD_DIR=${CONFIDOC_BUILD_DIR:-$SRC/build}
. "$SRC/tests/lib/testlib.sh"
. "$SRC/tests/lib/certs.sh"
. "$SRC/tests/lib/stack.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "ok - skipped: test_stack_cas needs root (the stack's services in their own namespaces)"
    exit 77
fi
for v in $(compgen -e | grep '^CONFIDOC_'); do
    case $v in CONFIDOC_SOURCE_DIR | CONFIDOC_BUILD_DIR) ;; *) unset "$v" ;; esac
done
BUILD=$CONFIDOC_BUILD_DIR
CAS=$BUILD/confidoc-cas

WORK=$(mktemp -d /tmp/confidoc-stack-cas-test.XXXXXX)
chmod 0711 "$WORK"
export CONFIDOC_STATE_DIR=$WORK/state STACK_LOG=$WORK/stack.log
export CONFIDOC_LIBEXEC_DIR=$WORK/libexec
CONFIDOC_HTTPS_PORT=$(free_port) || exit 1
export CONFIDOC_HTTPS_PORT
OLD_STATE=$WORK/old
cleanup() {
    stack down || stack_kill_all
    CONFIDOC_STATE_DIR=$OLD_STATE stack down >/dev/null 2>&1 ||
        CONFIDOC_STATE_DIR=$OLD_STATE stack_kill_all
    if [ "$T_FAIL" -gt 0 ]; then
        echo "# stack.sh output:"
        tail -n 40 "$STACK_LOG" 2>/dev/null | sed 's/^/#   /'
        echo "# cas.log:"
        tail -n 20 "$CONFIDOC_STATE_DIR/log/cas.log" 2>/dev/null | sed 's/^/#   /'
    fi
    rm -rf "$WORK"
}
t_watchdog 290
trap 'trap "" TERM; t_watchdog_stop; cleanup' EXIT

SENTENCE="Ever make mistakes in life? Lets make them birds. Yeah, theyre birds now."
S=$CONFIDOC_STATE_DIR

# secret_lines DIR: files under DIR holding a private key or a key line (a
# keyring's N:HEX64, MariaDB's keyfile 1;HEX64), one path a line.
secret_lines() {
    grep -r -l -a -E -e 'PRIVATE KEY' -e '^[0-9]+[:;][0-9a-fA-F]{64}$' "$1" 2>/dev/null
}

# the_three_curls CACERT PORT TAG: the original's three commands.
the_three_curls() {
    local out
    out=$(curl -s --max-time 30 --cacert "$1" -ubobross:password123 -X GET "https://localhost:$2/users/create_account")
    t_true "$3: create_account (201, or the account exists)" jq -e '.username == "bobross" or .detail != null' <<<"$out" >/dev/null
    out=$(curl -s --max-time 30 --cacert "$1" -ubobross:password123 -X POST -H "Content-Type: application/json" -d '{"record_id":"31","content":"Ever make mistakes in life? Lets make them birds. Yeah, theyre birds now."}' "https://localhost:$2/documents/create_document")
    t_true "$3: create_document (created, or it exists)" test -n "$out"
    out=$(curl -s --max-time 30 --cacert "$1" -ubobross:password123 -X GET "https://localhost:$2/documents/31")
    t_eq "$3: documents/31" "$(jq -r .content <<<"$out")" "$SENTENCE"
}

echo "# make up [${SECONDS}s]"
t_true "make up starts the stack with the CAS first" stack up
stack_env
t_true "the CAS runs" stack_alive "$(cat "$CONFIDOC_CAS_PIDFILE")"
t_eq "the CAS's parent runs as root" "$(ps -o user= -p "$(cat "$CONFIDOC_CAS_PIDFILE")")" root
w=$(stack_children "$(cat "$CONFIDOC_CAS_PIDFILE")" | head -n 1)
t_eq "its network worker runs as confidoc-cas" "$(ps -o user= -p "${w:-1}")" confidoc-cas
t_contains "the CAS started first" "$(grep -m1 'starting' "$STACK_LOG")" "starting cas"

echo "# no key on disk [${SECONDS}s]"
t_eq "no file under the state outside cas/ (and the operator's and sealing keys) holds a key" \
    "$(secret_lines "$S" | grep -v -e "^$S/cas/" -e "^$S/operator/operator.key$" | wc -l)" 0
t_eq "cas/ holds no key in clear" "$(secret_lines "$S/cas" | wc -l)" 0
t_eq "cas/ holds no PEM at all (every store file sealed)" "$(grep -r -l -a 'BEGIN' "$S/cas" | wc -l)" 0
# The services' own material (read from their tmpfs) is nowhere on disk.
API_ROOT=/proc/$(stack_pid api)/root
DB_ROOT=/proc/$(stack_pid mariadb)/root
t_true "the API holds its master keyring" grep -q -E '^[0-9]+:[0-9a-f]{64}$' "$API_ROOT$S/secrets/api/api/master.keyring"
t_eq "the master keyring's key is in no file of the state" \
    "$(grep -r -l -a -F -f <(cut -d: -f2 "$API_ROOT$S/secrets/api/api/master.keyring") "$S" | wc -l)" 0
t_eq "MariaDB's at-rest key is in no file of the state" \
    "$(grep -r -l -a -F -f <(cut -d';' -f2 "$DB_ROOT$CONFIDOC_DB_KEYFILE") "$S" | wc -l)" 0
t_eq "the operator's key (its credential for session updates) is root's 0600 in a 0700 directory" \
    "$(stat -c '%a %U' "$S/operator/operator.key" "$S/operator" | xargs)" "600 root 700 root"
t_eq "the sealing key is root's 0600 in a 0700 directory" \
    "$(stat -c '%a %U %s' "$S/cas-key/sealing.key" "$S/cas-key" | cut -d' ' -f1,2 | xargs)" "600 root 700 root"

echo "# the services' tmpfs is theirs alone [${SECONDS}s]"
t_eq "no mount under secrets/ in the host's mount table" \
    "$(grep -c -F " $S/secrets/" /proc/self/mountinfo)" 0
t_eq "nothing under secrets/* on the host" "$(find "$S/secrets" -mindepth 2 | wc -l)" 0
t_eq "the API's namespace has its tmpfs" "$(grep -c -F " $S/secrets/api " "/proc/$(stack_pid api)/mountinfo")" 1
t_eq "MariaDB's namespace has only its own" "$(grep -c -F " $S/secrets/api " "/proc/$(stack_pid mariadb)/mountinfo")" 0

echo "# attest and the public CA from /v1/values [${SECONDS}s]"
t_true "stack.env's pin is 64 hex digits" test "${#CONFIDOC_CAS_PIN}" = 64
t_true "attest with stack.env's pin" "$CAS" attest "$CONFIDOC_CAS_ADDR" --expect "$CONFIDOC_CAS_PIN" --ca-out "$WORK/cas-ca.crt"
t_true "it wrote the CAS's CA" cmp -s "$WORK/cas-ca.crt" "$CONFIDOC_CAS_CACERT"
wrong=$(printf '%s' "$CONFIDOC_CAS_PIN" | tr '0-9a-f' '1-9a-f0')
"$CAS" attest "$CONFIDOC_CAS_ADDR" --expect "$wrong" --ca-out "$WORK/wrong-ca.crt" >/dev/null 2>&1
t_eq "attest with a wrong pin exits 1" "$?" 1
t_true "and writes nothing" test ! -e "$WORK/wrong-ca.crt"
curl -s --max-time 10 --cacert "$WORK/cas-ca.crt" "$CONFIDOC_CAS_URL/v1/values/session=nginx,secret=SERVER_CA" |
    jq -j .value >"$WORK/nginx-ca.crt"
t_true "the nginx CA from /v1/values is CONFIDOC_CACERT" cmp -s "$WORK/nginx-ca.crt" "$CONFIDOC_CACERT"
t_eq "it verifies nginx" "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$WORK/nginx-ca.crt" "$CONFIDOC_URL/healthz")" 200
the_three_curls "$WORK/nginx-ca.crt" "$CONFIDOC_HTTPS_PORT" "with the CA from the CAS"
t_eq "a private value is refused" "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$WORK/cas-ca.crt" \
    "$CONFIDOC_CAS_URL/v1/values/session=api,secret=MASTER_KEY")" 404

echo "# the audit log [${SECONDS}s]"
t_true "audit verify with the pin" "$CAS" audit verify "$CONFIDOC_CAS_AUDIT_LOG" --pin "$CONFIDOC_CAS_PIN"
for n in mariadb memcached migrate api nginx probe; do
    t_true "a release line for session $n" grep -q -F "\"kind\":\"release\",\"session\":\"$n\"" "$CONFIDOC_CAS_AUDIT_LOG"
done

echo "# make down / make up keeps every CA [${SECONDS}s]"
cp "$CONFIDOC_CACERT" "$WORK/ca-before.crt"
cp "$CONFIDOC_API_CACERT" "$WORK/api-ca-before.crt"
pin_before=$CONFIDOC_CAS_PIN
t_true "make down" stack down
t_true "make down stopped the CAS" bash -c "! bash '$SRC/scripts/stack.sh' status | grep -q '^cas: running'"
t_true "make up again" stack up
stack_env
t_true "the nginx CA is byte-identical" cmp -s "$WORK/ca-before.crt" "$CONFIDOC_CACERT"
t_true "the API's CA is byte-identical" cmp -s "$WORK/api-ca-before.crt" "$CONFIDOC_API_CACERT"
t_eq "the CAS's pin is the same" "$CONFIDOC_CAS_PIN" "$pin_before"
t_eq "document 31 is still there" "$(stack_curl -ubobross:password123 "$CONFIDOC_URL/documents/31" | jq -r .content)" "$SENTENCE"
t_true "stack.sh stop cas" bash "$SRC/scripts/stack.sh" stop cas
t_true "make up brings back the CAS alone" stack up

echo "# a changed binary is refused until its session is updated [${SECONDS}s]"
B2=$WORK/build2
mkdir -p "$B2"
cp "$BUILD/confidoc-cas" "$BUILD/confidoc-api" "$B2/"
printf '\n' >>"$B2/confidoc-api" # one byte more: the same program, another hash
chmod 0755 "$WORK/build2" "$B2/confidoc-api"
t_true "stop the API" stack stop api
out=$("$CONFIDOC_CAS_LAUNCHER" run --session api --socket "$CONFIDOC_CAS_SOCKET" -- \
    "$B2/confidoc-api" --config "$S/api/api.conf" 2>&1)
t_eq "the launcher refuses the changed binary (exit 1)" "$?" 1
t_contains "it says why" "$out" "refused: exe hash mismatch"
t_true "the refusal is in the audit log" grep -q -F '"kind":"release_refused","session":"api"' "$CONFIDOC_CAS_AUDIT_LOG"
old_hash=$(jq -r .hash <<<"$(curl -s --max-time 10 --cacert "$CONFIDOC_CAS_CACERT" --cert "$CONFIDOC_CAS_OPERATOR_CERT" \
    --key "$CONFIDOC_CAS_OPERATOR_KEY" "$CONFIDOC_CAS_URL/v1/sessions/api")")
t_true "the session's hash is readable by the operator" test "${#old_hash}" = 64
CONFIDOC_BUILD_DIR=$B2 stack up
t_eq "make up with the changed binary" "$?" 0
t_contains "make up updated session api" "$(cat "$STACK_LOG")" "updating session api"
t_eq "the API runs the changed binary" "$(sha256sum <"/proc/$(stack_pid api)/exe" | cut -d' ' -f1)" \
    "$(sha256sum <"$B2/confidoc-api" | cut -d' ' -f1)"
t_contains "the new version names its predecessor" \
    "$("$CAS" session get api --cas "$CONFIDOC_CAS_ADDR" --cacert "$CONFIDOC_CAS_CACERT" \
        --cert "$CONFIDOC_CAS_OPERATOR_CERT" --key "$CONFIDOC_CAS_OPERATOR_KEY")" "predecessor: $old_hash"
t_eq "document 31 is readable" "$(stack_curl -ubobross:password123 "$CONFIDOC_URL/documents/31" | jq -r .content)" "$SENTENCE"
t_true "audit verify after the update" "$CAS" audit verify "$CONFIDOC_CAS_AUDIT_LOG" --pin "$CONFIDOC_CAS_PIN"
t_true "a session_update line for api" grep -q -F '"kind":"session_update","session":"api"' "$CONFIDOC_CAS_AUDIT_LOG"
t_true "make down" stack down

echo "# an older make up's state (plaintext provisioning) upgrades [${SECONDS}s]"
# The tree before the CAS service: the parent of the commit whose templates
# first named the secrets' tmpfs (the first commit of that change).
intro=$(git -C "$SRC" log --format=%H -S'@TLS_DIR@' -- deploy/mariadb/my.cnf.in 2>/dev/null | tail -n 1)
mkdir -p "$WORK/old-src"
if [ -n "$intro" ] && git -C "$SRC" archive "$intro^" scripts deploy | tar -x -C "$WORK/old-src"; then
    chmod -R a+rX "$WORK/old-src"
    OLDENV=(env CONFIDOC_STATE_DIR="$OLD_STATE" CONFIDOC_HTTPS_PORT="$CONFIDOC_HTTPS_PORT")
    "${OLDENV[@]}" bash "$WORK/old-src/scripts/stack.sh" up >>"$STACK_LOG" 2>&1
    t_eq "the old make up starts" "$?" 0
    t_true "it provisioned key files beside the services" test -s "$OLD_STATE/api/master.keyring"
    the_three_curls "$OLD_STATE/public/nginx-ca.crt" "$CONFIDOC_HTTPS_PORT" "old stack"
    cp "$OLD_STATE/public/nginx-ca.crt" "$WORK/old-ca.crt"
    "${OLDENV[@]}" bash "$WORK/old-src/scripts/stack.sh" down >>"$STACK_LOG" 2>&1
    t_true "the old stack stops" test "$?" = 0
    CONFIDOC_STATE_DIR=$OLD_STATE stack up
    t_eq "make up on the old state" "$?" 0
    t_contains "it sealed the old store" "$(cat "$OLD_STATE/log/cas.log")" "sealed"
    t_true "the nginx CA is the old one, byte for byte" cmp -s "$WORK/old-ca.crt" "$OLD_STATE/public/nginx-ca.crt"
    t_eq "the old documents are readable (MariaDB's key and the master keyring kept)" \
        "$(curl -s --max-time 30 --cacert "$WORK/old-ca.crt" -ubobross:password123 "https://localhost:$CONFIDOC_HTTPS_PORT/documents/31" | jq -r .content)" "$SENTENCE"
    t_eq "no key file of the old layout is left" \
        "$(secret_lines "$OLD_STATE" | grep -v -e "^$OLD_STATE/cas/" -e "^$OLD_STATE/operator/operator.key$" | wc -l)" 0
    t_eq "the store is sealed" "$(grep -r -l -a 'BEGIN' "$OLD_STATE/cas" | wc -l)" 0
    t_true "make down" env CONFIDOC_STATE_DIR="$OLD_STATE" bash "$SRC/scripts/stack.sh" down >>"$STACK_LOG" 2>&1
else
    t_fail "the tree before the CAS service (git archive of $intro^)"
fi
t_finish
