#!/usr/bin/env bash
# test_cas_recover.sh: the CAS's sealed state and its recovery, driven through
# the commands: recovery-keygen, a sealed store (prog_seal: seal_open then
# store_open, as the service starts), the sealing key lost, recover with the
# recovery keys (1 of 2 and 2 of 3) into a new key file or keyring key, the
# store opened again.
set -uo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${CONFIDOC_BUILD_DIR:-$SRC/build}
. "$SRC/tests/lib/testlib.sh"
CAS=$BUILD/confidoc-cas
PROG=$BUILD/tests/prog_seal

WORK=$(mktemp -d)
RING=confidoc-test-recover-$$
cleanup() {
    t_watchdog_stop
    "$PROG" keyring-drop "$RING" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
t_watchdog 120
cas() { timeout 30 "$CAS" "$@"; }
prog() { timeout 30 "$PROG" "$@"; }
mode() { stat -c %a "$1"; }

# ---- recovery-keygen ----
for i in 1 2 3 4; do
    cas recovery-keygen --private "$WORK/r$i.key" --public "$WORK/r$i.pub" >/dev/null ||
        t_fail "recovery-keygen $i"
done
t_eq "private key 0600" "$(mode "$WORK/r1.key")" 600
t_eq "public key 0644" "$(mode "$WORK/r1.pub")" 644
t_true "private key is X25519" grep -q 'BEGIN PRIVATE KEY' "$WORK/r1.key"
t_eq "public key is X25519" "$(openssl pkey -pubin -in "$WORK/r1.pub" -noout -text 2>/dev/null | head -1)" \
    "X25519 Public-Key:"
before=$(sha256sum "$WORK/r1.key")
out=$(cas recovery-keygen --private "$WORK/r1.key" --public "$WORK/new.pub" 2>&1)
t_eq "keygen over an existing file exits 1" "$?" 1
t_contains "keygen says why" "$out" "exists"
t_eq "the existing private key is untouched" "$(sha256sum "$WORK/r1.key")" "$before"
t_true "no public key left behind" test ! -e "$WORK/new.pub"
cas recovery-keygen --private "$WORK/x.key" >/dev/null 2>&1
t_eq "keygen without --public exits 2" "$?" 2

# ---- 2 of 3: a sealed store ----
S=$WORK/state
prog create "$S" "$WORK/sealing.key" 2 "$WORK/r1.pub" "$WORK/r2.pub" "$WORK/r3.pub" >/dev/null 2>&1
t_eq "a sealed store created" "$?" 0
t_eq "sealing key created 0600" "$(mode "$WORK/sealing.key")" 600
t_true "state-key.sealed written" test -f "$S/cas/state-key.sealed"
t_eq "three wraps and an index" "$(ls "$S/cas/recovery" | sort | tr '\n' ' ')" "1.wrap 2.wrap 3.wrap index "
if grep -rqa -e '-----BEGIN' -e 'prog-seal-material' -e 'name: api' "$S/cas"; then
    t_fail "no plaintext material in STATE/cas"
else
    t_ok "no plaintext material in STATE/cas"
fi
t_eq "the store opens with the sealing key" "$(prog check "$S" "$WORK/sealing.key" 2>&1)" opened

# ---- the sealing key lost ----
mv "$WORK/sealing.key" "$WORK/sealing.key.lost"
out=$(prog check "$S" "$WORK/sealing.key" 2>&1)
t_contains "without the sealing key the store does not open" "$out" "not found"
sealed=$(sha256sum "$S/cas/state-key.sealed")
out=$(cas recover --state "$S" --recovery-key "$WORK/r2.key" --sealing-key "$WORK/new.key" 2>&1)
t_eq "recover with one of 2-of-3 keys exits 1" "$?" 1
t_contains "recover says how many are needed" "$out" "1 distinct recovery key given, 2 needed"
t_true "nothing rewritten" test "$(sha256sum "$S/cas/state-key.sealed")" = "$sealed"
out=$(cas recover --state "$S" --recovery-key "$WORK/r2.key" --recovery-key "$WORK/r2.key" \
    --sealing-key "$WORK/new.key" 2>&1)
t_eq "the same key twice is one key" "$?" 1
out=$(cas recover --state "$S" --recovery-key "$WORK/r4.key" --recovery-key "$WORK/r2.key" \
    --sealing-key "$WORK/new.key" 2>&1)
t_eq "a key that is not a recovery key exits 1" "$?" 1
t_contains "and is named" "$out" "r4.key is not one of this state's recovery keys"
out=$(cas recover --state "$S" --recovery-key "$WORK/r3.key" --recovery-key "$WORK/r1.key" \
    --sealing-key "$WORK/new.key" 2>&1)
t_eq "recover with two of the three keys exits 0" "$?" 0
t_eq "the new sealing key is created 0600" "$(mode "$WORK/new.key")" 600
t_eq "the store opens with the new sealing key" "$(prog check "$S" "$WORK/new.key" 2>&1)" opened
out=$(prog check "$S" "$WORK/sealing.key.lost" 2>&1)
t_contains "the old sealing key no longer opens it" "$out" "does not open with this sealing key"

# recover into the kernel keyring
out=$(cas recover --state "$S" --recovery-key "$WORK/r1.key" --recovery-key "$WORK/r2.key" \
    --sealing-keyring "$RING" 2>&1)
t_eq "recover into a keyring key exits 0" "$?" 0
t_eq "the store opens with the keyring key" "$(prog check "$S" "keyring:$RING" 2>&1)" opened

# a tampered wrap is refused
printf 'x' | dd of="$S/cas/recovery/2.wrap" bs=1 seek=60 conv=notrunc status=none
out=$(cas recover --state "$S" --recovery-key "$WORK/r1.key" --recovery-key "$WORK/r2.key" \
    --sealing-key "$WORK/new2.key" 2>&1)
t_eq "a tampered wrap: recover exits 1" "$?" 1
t_contains "and names the wrap" "$out" "2.wrap does not open"

# ---- 1 of 2 ----
S1=$WORK/state1
prog create "$S1" "$WORK/one.key" 1 "$WORK/r1.pub" "$WORK/r2.pub" >/dev/null 2>&1
t_eq "a 1-of-2 sealed store created" "$?" 0
rm -f "$WORK/one.key"
for i in 1 2; do
    cas recover --state "$S1" --recovery-key "$WORK/r$i.key" --sealing-key "$WORK/one-$i.key" >/dev/null 2>&1
    t_eq "1 of 2: recover with key $i exits 0" "$?" 0
    t_eq "1 of 2: opens after recovery with key $i" "$(prog check "$S1" "$WORK/one-$i.key" 2>&1)" opened
done

# ---- no recovery keys: recover says so ----
S0=$WORK/state0
prog create "$S0" "$WORK/zero.key" >/dev/null 2>&1
out=$(cas recover --state "$S0" --recovery-key "$WORK/r1.key" --sealing-key "$WORK/z2.key" 2>&1)
t_eq "a state without recovery keys: recover exits 1" "$?" 1
t_contains "and says so" "$out" "no recovery keys"
cas recover --state "$S0" --sealing-key "$WORK/z2.key" >/dev/null 2>&1
t_eq "recover without --recovery-key exits 2" "$?" 2

t_finish
