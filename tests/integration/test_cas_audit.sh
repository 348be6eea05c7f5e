#!/usr/bin/env bash
# test_cas_audit.sh: `confidoc-cas audit verify` on logs written by the audit
# module (tests/integration/prog_audit.c) and then tampered with by sed and awk:
# intact -> exit 0; an edited, removed, reordered, foreign, forged or cut entry,
# a wrong pin and a torn last line -> non-zero, naming the first bad line.
set -uo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${CONFIDOC_BUILD_DIR:-$SRC/build}
. "$SRC/tests/lib/testlib.sh"
CAS=$BUILD/confidoc-cas
PROG=$BUILD/tests/prog_audit

WORK=$(mktemp -d)
trap 't_watchdog_stop; rm -rf "$WORK"' EXIT
t_watchdog 120
cd "$WORK" || exit 1

# verify FILE [ARGS...]: sets RC and OUT (stdout and stderr)
verify() { OUT=$(timeout 30 "$CAS" audit verify "$@" 2>&1); RC=$?; }
# expect_bad NAME LINE FILE [ARGS...]: non-zero, naming LINE as the first bad entry
expect_bad() {
    local name=$1 line=$2
    shift 2
    verify "$@"
    # Here-strings, not printf | grep -q: under pipefail, grep -q leaving
    # before printf's last write made the pipeline fail now and then (SIGPIPE).
    if [ "$RC" -ne 0 ] && grep -q "first bad entry: line $line\$" <<<"$OUT" &&
        grep -q ": line $line: " <<<"$OUT"; then
        t_ok "$name"
    else
        t_fail "$name" "exit $RC: $OUT"
    fi
}

"$PROG" keygen k1 && "$PROG" keygen k2 || { echo "not ok - keygen"; exit 1; }
PIN1=$("$PROG" pin k1)
PIN2=$("$PROG" pin k2)
HEAD=$("$PROG" append log k1 8) || { echo "not ok - prog_audit append"; exit 1; }

verify log
t_eq "intact log: exit 0" "$RC" 0
t_eq "intact log: count" "$OUT" "audit log log: 9 entries, intact
head: $HEAD"
verify log --pin "$PIN1" --head "$HEAD"
t_eq "intact log with its pin and sealed head: exit 0" "$RC" 0
t_eq "log mode 0600" "$(stat -c %a log)" 600

# reopening continues the chain
HEAD2=$("$PROG" append log k1 2)
verify log --pin "$PIN1" --head "$HEAD2"
t_contains "reopened log continues the chain" "$OUT" "11 entries, intact"
"$PROG" append log k2 1 >/dev/null 2>"$WORK/err"
t_true "another key cannot continue the log" [ $? -ne 0 ]
t_contains "  ... and says why" "$(cat "$WORK/err")" "not the pinned key"
cp log orig

# one byte of a middle line edited (a name, a seq, a prev hash, a signature)
sed '5s/"session":"nginx"/"session":"nginX"/' orig >t; expect_bad "edited session name found" 5 t
sed '5s/"seq":4,/"seq":5,/' orig >t; expect_bad "edited seq found" 5 t
sed -E '5s/"prev":"(.)/"prev":"f\1/; 5s/"prev":"f(.{63})./"prev":"f\1/' orig >t
cmp -s t orig && t_fail "prev edit changed nothing" || expect_bad "edited prev found" 5 t
awk 'NR == 6 { sub(/"sig":"M/, "\"sig\":\"N") } { print }' orig >t; expect_bad "edited signature found" 6 t
awk 'NR == 5 { sub(/"kind":"release_refused"/, "\"kind\":\"release\"") } { print }' orig >t
cmp -s t orig && t_fail "refusal edit changed nothing" || expect_bad "a refusal turned into a release found" 5 t

# removed, reordered
sed '5d' orig >t; expect_bad "removed line found" 5 t
t_contains "  ... as a seq gap" "$OUT" "seq 5 where 4 was expected"
sed '1d' orig >t; expect_bad "removed genesis line found" 1 t
awk 'NR == 5 { held = $0; next } NR == 6 { print; print held; next } { print }' orig >t
expect_bad "two lines swapped found" 5 t

# appended by someone else: a line of another key's log; a forged line in
# the right format with a recomputed chain and another key's signature
"$PROG" append other k2 12 >/dev/null
{ cat orig; sed -n '12p' other; } >t; expect_bad "a foreign log's line appended found" 12 t
t_contains "  ... by its chain" "$OUT" "prev is not the hash of the line before"
prev=$(tail -n 1 orig | sha256sum | cut -c1-64)
body="{\"seq\":11,\"time\":\"2026-12-01T00:00:00Z\",\"prev\":\"$prev\",\"kind\":\"release\",\"session\":\"api\",\"who\":\"-\",\"measurement\":null,\"secrets\":[\"MASTER_KEY\"],\"hash\":null,\"reason\":null"
forge() { # forge KEY: the line signed with KEY (OpenSSL's own s; the log wants low s)
    sig=$(printf '%s' "$body" | openssl dgst -sha256 -sign "$1" | base64 -w0)
    { cat orig; printf '%s,"sig":"%s"}\n' "$body" "$sig"; } >t
}
forge k2; expect_bad "a forged line signed by another key found" 12 t
t_contains "  ... by its signature" "$OUT" "bad signature"
ok=0
for _ in $(seq 1 40); do forge k1; verify t; [ "$RC" -eq 0 ] && { ok=1; break; }; done
t_eq "  (the same forged line signed with the log's key verifies: the format is right)" "$ok" 1

# a whole log rewritten with another key: only the pin finds it
verify other
t_eq "a rewritten log verifies without a pin" "$RC" 0
expect_bad "a rewritten log fails against the pin" 1 other --pin "$PIN1"
expect_bad "a wrong pin refused" 1 orig --pin "$PIN2"
t_contains "  ... as not the pinned key" "$OUT" "not the pinned key"

# the end cut off: an intact shorter chain, found only with the sealed head
head -n 10 orig >t
verify t
t_eq "a cut end alone verifies (a chain cannot show it)" "$RC" 0
expect_bad "a cut end found against the sealed head" 11 t --head "$HEAD2"
t_contains "  ... as lines removed from its end" "$OUT" "removed from its end"

# a torn last line, a missing file, usage
{ cat orig; printf '{"seq":11,"ti'; } >t; expect_bad "a torn last line found" 12 t
t_contains "  ... as a torn write" "$OUT" "torn write"
verify nonexistent
t_true "a missing log: non-zero" [ "$RC" -ne 0 ]
verify orig --pin nothex
t_eq "a malformed pin: usage error" "$RC" 2
if grep -q "PRIVATE KEY" orig; then t_fail "no key material in the log"; else t_ok "no key material in the log"; fi

t_watchdog_stop
t_finish
