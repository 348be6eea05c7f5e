#!/usr/bin/env bash
# test_cas_run.sh: attested release through `confidoc-cas run` (root only):
# a release server (prog_release_server, standing in for the CAS service)
# with a session for prog_secret_reader; the release to the right binary and
# uid lands in a private tmpfs that the host never sees; a changed byte of the
# binary or of a measured config file, a wrong uid, an unknown session, a
# session without measurements and a caller that is not the launcher are each
# refused, release nothing and leave a "refused" outcome line. Also the
# non-root launcher (user namespace) and the fallback directory.
set -uo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${CONFIDOC_BUILD_DIR:-$SRC/build}
# shellcheck source=../lib/testlib.sh
. "$SRC/tests/lib/testlib.sh"

if [ "$(id -u)" != 0 ]; then
    echo "SKIP: test_cas_run.sh needs root (mount namespaces, uid changes)"
    exit 77
fi
for u in nobody confidoc; do
    id "$u" >/dev/null 2>&1 || { echo "SKIP: no user $u"; exit 77; }
done

t_watchdog 240
WORK=$(mktemp -d /tmp/cas-run-XXXXXX)
SERVER='' SERVER2=''
cleanup() {
    for pid in $SERVER $SERVER2; do
        kill -TERM "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    t_watchdog_stop
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
chmod 755 "$WORK"
mkdir -p "$WORK/bin" "$WORK/conf" "$WORK/policies" "$WORK/state" "$WORK/mnt/svc" "$WORK/mnt/own"
install -m 755 "$BUILD/confidoc-cas" "$WORK/bin/confidoc-cas"
install -m 755 "$BUILD/tests/prog_secret_reader" "$WORK/bin/reader"
install -m 755 "$BUILD/tests/prog_release_client" "$WORK/bin/client"
CAS=$WORK/bin/confidoc-cas
SOCK=$WORK/cas.sock
OUT=$WORK/server.out
echo "listen 127.0.0.1" >"$WORK/conf/svc.conf"
chmod 644 "$WORK/conf/svc.conf"
sha() { sha256sum "$1" | cut -d' ' -f1; }
READER_SHA=$(sha "$WORK/bin/reader")
CONF_SHA=$(sha "$WORK/conf/svc.conf")

# secrets_yaml DIR: a CA (public) and a key, injected under DIR/.
secrets_yaml() {
    cat <<EOF
secrets:
  - name: CA
    kind: x509-ca
    common_name: run test CA
    export_public: true
  - name: KEY
    kind: symmetric-key
injection_files:
  - path: $1/key.hex
    content: \$\$CAS::KEY.hex\$\$
  - path: $1/tls/ca.crt
    content: \$\$CAS::CA.crt\$\$
EOF
}
{
    cat <<EOF
name: svc
measurements:
  executable: [$READER_SHA]
  user: nobody
  config:
    - path: $WORK/conf/svc.conf
      sha256: $CONF_SHA
  mount: $WORK/mnt/svc
EOF
    secrets_yaml svc
} >"$WORK/policies/svc.yaml"
{
    cat <<EOF
name: own
measurements:
  executable: $READER_SHA
  user: confidoc
  mount: $WORK/mnt/own
EOF
    secrets_yaml own
} >"$WORK/policies/own.yaml"
{ echo "name: plain"; secrets_yaml plain; } >"$WORK/policies/plain.yaml"
sed -e 's/^name: own$/name: fb/' -e "s|mount: .*|mount: $WORK/mnt/missing/fb|" \
    -e 's|path: own/|path: fb/|' "$WORK/policies/own.yaml" >"$WORK/policies/fb.yaml"

"$BUILD/tests/prog_release_server" "$WORK/policies" "$WORK/state" "$SOCK" "$CAS" >"$OUT" 2>"$WORK/server.err" &
SERVER=$!
for _ in $(seq 1 100); do grep -q '^ready$' "$OUT" 2>/dev/null && break; sleep 0.1; done
if ! grep -q '^ready$' "$OUT"; then
    t_fail "release server starts" "$(cat "$WORK/server.err")"
    t_finish
    exit 1
fi
t_ok "release server starts"

outcomes() { grep -cE '^(allowed|refused) ' "$OUT"; }
# wait_outcome N: the Nth outcome line (waits for it at most 5 s).
wait_outcome() {
    for _ in $(seq 1 50); do [ "$(outcomes)" -ge "$1" ] && break; sleep 0.1; done
    grep -E '^(allowed|refused) ' "$OUT" | sed -n "$1p"
}
N=0
# host_clean NAME: nothing under the mount points or the state's top level
# (other than the store), and no tmpfs of ours in the host's mount table.
host_clean() {
    local left
    left=$(find "$WORK/mnt" -mindepth 2 2>/dev/null; find "$WORK/state" -mindepth 1 -maxdepth 1 ! -name cas)
    t_eq "$1: nothing written on the host" "$left" ""
    t_not_contains "$1: no secrets mount on the host" "$(cat /proc/self/mountinfo)" "$WORK/mnt"
}
# refused NAME WANT CMD...: the launch exits non-zero with "refused: WANT", runs nothing,
# and the server records a refusal.
refused() {
    local name=$1 want=$2 rc
    shift 2
    "$@" >"$WORK/run.out" 2>"$WORK/run.err"
    rc=$?
    N=$((N + 1))
    t_true "$name: exits non-zero" [ "$rc" -ne 0 ]
    t_contains "$name: clear message" "$(cat "$WORK/run.err")" "confidoc-cas run: refused: $want"
    t_not_contains "$name: the service did not run" "$(cat "$WORK/run.out")" "uid="
    t_contains "$name: outcome refused" "$(wait_outcome "$N")" "refused "
    host_clean "$name"
}

# ---- release to the right binary and uid ----
"$CAS" run --session svc --socket "$SOCK" -- "$WORK/bin/reader" svc/key.hex svc/tls/ca.crt \
    public/svc-CA.crt --hold 2 >"$WORK/run.out" 2>"$WORK/run.err" &
RUN=$!
sleep 1
# While the service runs: its tmpfs is not in the host's mount table, nothing
# is under the mount point on the host.
host_clean "release (while running)"
wait "$RUN"
rc=$?
N=$((N + 1))
t_eq "release: the service exits 0" "$rc" 0
RUN_OUT=$(cat "$WORK/run.out")
t_contains "release: runs as nobody" "$RUN_OUT" "uid=65534 gid=65534 dir=$WORK/mnt/svc"
t_contains "release: key file 0400" "$RUN_OUT" "file svc/key.hex 64 400"
t_contains "release: nested file" "$RUN_OUT" "file svc/tls/ca.crt"
t_contains "release: public file 0444" "$RUN_OUT" "public/svc-CA.crt"
t_contains "release: public file mode" "$(grep public/ <<<"$RUN_OUT")" " 444"
t_contains "release: the mount is a tmpfs" "$RUN_OUT" "tmpfs yes"
LINE=$(wait_outcome "$N")
t_contains "release: outcome allowed" "$LINE" "allowed session=svc who=uid=0 pid="
t_contains "release: outcome names the measurement" "$LINE" "exe=$READER_SHA uid=65534 config=$WORK/conf/svc.conf:$CONF_SHA"
t_contains "release: outcome names the files" "$LINE" "files=svc/key.hex,svc/tls/ca.crt,public/"
t_contains "release: outcome counts the files" "$LINE" "svc-CA.crt nfiles=3"
t_not_contains "release: outcome holds no material" "$LINE" "BEGIN"
host_clean "release (after)"
if ls "$WORK/run.err" >/dev/null && [ -s "$WORK/run.err" ]; then
    t_fail "release: no message on stderr" "$(cat "$WORK/run.err")"
fi

# ---- refusals ----
cp "$WORK/bin/reader" "$WORK/bin/patched"
off=$(($(stat -c %s "$WORK/bin/patched") - 1))
byte=$(od -An -tu1 -j"$off" -N1 "$WORK/bin/patched" | tr -d ' ')
printf '%b' "\\x$(printf %02x $(((byte + 1) % 256)))" | dd of="$WORK/bin/patched" bs=1 seek="$off" conv=notrunc status=none
refused "one byte of the binary" "exe hash mismatch" \
    "$CAS" run --session svc --socket "$SOCK" -- "$WORK/bin/patched" svc/key.hex

cp "$WORK/conf/svc.conf" "$WORK/conf/svc.conf.orig"
printf 'listen 127.0.0.2\n' >"$WORK/conf/svc.conf"
refused "one byte of a config file" "config $WORK/conf/svc.conf mismatch" \
    "$CAS" run --session svc --socket "$SOCK" -- "$WORK/bin/reader" svc/key.hex
mv "$WORK/conf/svc.conf.orig" "$WORK/conf/svc.conf"

refused "wrong uid" "uid mismatch" \
    runuser -u confidoc -- "$CAS" run --session svc --socket "$SOCK" -- "$WORK/bin/reader" svc/key.hex

refused "unknown session" "unknown session or not releasable" \
    "$CAS" run --session nosuch --socket "$SOCK" -- "$WORK/bin/reader" svc/key.hex

refused "session without measurements" "unknown session or not releasable" \
    "$CAS" run --session plain --socket "$SOCK" -- "$WORK/bin/reader" svc/key.hex

# A script cannot be launched (fexecve of an O_CLOEXEC fd): refused before asking.
printf '#!/bin/sh\necho uid=0\n' >"$WORK/bin/script.sh"
chmod 755 "$WORK/bin/script.sh"
"$CAS" run --session svc --socket "$SOCK" -- "$WORK/bin/script.sh" >"$WORK/run.out" 2>"$WORK/run.err"
t_true "a script: exits non-zero" [ $? -ne 0 ]
t_contains "a script: clear message" "$(cat "$WORK/run.err")" "is a script: only binaries can be launched"
t_eq "a script: the CAS was not asked" "$(outcomes)" "$N"

# A caller that is not the launcher, even with the right measurements.
"$WORK/bin/client" "$SOCK" svc "$READER_SHA" 65534 >"$WORK/run.out" 2>&1
rc=$?
N=$((N + 1))
t_true "not the launcher: refused" [ "$rc" -ne 0 ]
t_contains "not the launcher: reason" "$(cat "$WORK/run.out")" "refused: caller is not the confidoc-cas launcher"
t_contains "not the launcher: outcome refused" "$(wait_outcome "$N")" "refused session=svc"

# ---- the CAS's uid checks on their own ----
# A second server accepts prog_release_client as its launcher, so the client
# can report any uid: each uid check is then seen without the launcher's
# honesty (or the other check) covering for it.
SOCK2=$WORK/cas2.sock
OUT2=$WORK/server2.out
mkdir -p "$WORK/state2"
"$BUILD/tests/prog_release_server" "$WORK/policies" "$WORK/state2" "$SOCK2" "$WORK/bin/client" \
    >"$OUT2" 2>"$WORK/server2.err" &
SERVER2=$!
for _ in $(seq 1 100); do grep -q '^ready$' "$OUT2" 2>/dev/null && break; sleep 0.1; done
t_contains "trusted client: released (the control)" \
    "$("$WORK/bin/client" "$SOCK2" svc "$READER_SHA" 65534 2>&1)" "released 3 files"
t_contains "caller uid neither root nor the session's: refused" \
    "$(runuser -u confidoc -- "$WORK/bin/client" "$SOCK2" svc "$READER_SHA" 65534 2>&1)" \
    "refused: uid mismatch: caller uid $(id -u confidoc) is neither root nor the session's user (uid 65534)"
t_contains "measured uid not the session's: refused" \
    "$("$WORK/bin/client" "$SOCK2" svc "$READER_SHA" 0 2>&1)" \
    "refused: uid mismatch: the command would run as uid 0, session svc needs uid 65534"
kill -TERM "$SERVER2"
wait "$SERVER2"
t_eq "second server stops on SIGTERM" "$?" 0
SERVER2=
t_eq "second server: three outcomes" "$(grep -cE '^(allowed|refused) ' "$OUT2")" 3

# ---- not root: a user namespace, the caller's own uid ----
runuser -u confidoc -- "$CAS" run --session own --socket "$SOCK" -- "$WORK/bin/reader" own/key.hex \
    >"$WORK/run.out" 2>"$WORK/run.err"
rc=$?
N=$((N + 1))
t_eq "non-root: the service exits 0" "$rc" 0
t_contains "non-root: runs as confidoc in a tmpfs" "$(cat "$WORK/run.out")" "uid=$(id -u confidoc) gid=$(id -g confidoc) dir=$WORK/mnt/own"
t_contains "non-root: the mount is a tmpfs" "$(cat "$WORK/run.out")" "tmpfs yes"
t_contains "non-root: outcome allowed" "$(wait_outcome "$N")" "allowed session=own who=uid=$(id -u confidoc)"
host_clean "non-root"

# ---- not root, no tmpfs: the fallback directory ----
# Session fb's mount point cannot exist for confidoc (its parent is root's and
# missing), so the namespace's tmpfs fails and the files go to --fallback-dir.
FB=$WORK/fallback
mkdir -m 700 "$FB" && chown confidoc: "$FB"
runuser -u confidoc -- "$CAS" run --session fb --socket "$SOCK" \
    --fallback-dir "$FB" -- "$WORK/bin/reader" fb/key.hex --no-tmpfs-check \
    >"$WORK/run.out" 2>"$WORK/run.err"
rc=$?
N=$((N + 1))
t_eq "fallback: the service exits 0" "$rc" 0
t_contains "fallback: secrets in the fallback directory" "$(cat "$WORK/run.out")" "dir=$FB"
t_contains "fallback: key file 0400" "$(cat "$WORK/run.out")" "file fb/key.hex 64 400"
t_eq "fallback: outcome" "$(wait_outcome "$N" | cut -d' ' -f1)" allowed
t_eq "fallback: the files stay (weaker, documented)" "$(stat -c %a "$FB/fb/key.hex" 2>&1)" 400

t_finish
