#!/usr/bin/env bash
# test_cli.sh: the command-line client `confidoc` against a whole stack
# (make up's script, through nginx): every command, each exit code, a 50 MiB
# random file byte for byte in both directions, and that the client keeps
# what it downloads private and never half-written.
set -uo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
export CONFIDOC_SOURCE_DIR=$SRC
export CONFIDOC_BUILD_DIR=${CONFIDOC_BUILD_DIR:-$SRC/build}
. "$SRC/tests/lib/testlib.sh"
. "$SRC/tests/lib/certs.sh"
. "$SRC/tests/lib/stack.sh"

for v in $(compgen -e | grep '^CONFIDOC_'); do
    case $v in CONFIDOC_SOURCE_DIR | CONFIDOC_BUILD_DIR) ;; *) unset "$v" ;; esac
done
CLI=$CONFIDOC_BUILD_DIR/confidoc
for b in confidoc confidoc-api confidoc-cas; do
    if [ ! -x "$CONFIDOC_BUILD_DIR/$b" ]; then
        echo "not ok - $b must be built in $CONFIDOC_BUILD_DIR"
        exit 1
    fi
done

stack_test_begin cli
# Documents of 50 MiB, and enough requests per minute for the whole test.
export CONFIDOC_MAX_BODY_BYTES=$((64 * 1024 * 1024)) CONFIDOC_RATE_LIMIT=100000

# cli ARGS...: runs the client (no terminal: stdin from /dev/null, setsid so
# it has no /dev/tty) as the stack's user; sets RC, OUT and ERR.
cli() {
    RC=0
    setsid "$CLI" "$@" </dev/null >"$WORK/out" 2>"$WORK/err" || RC=$?
    OUT=$(cat "$WORK/out")
    ERR=$(cat "$WORK/err")
}

echo "# usage [${SECONDS}s]"
cli --help
t_eq "--help exits 0" "$RC" 0
t_contains "--help lists the commands" "$OUT" "app-password create NAME | list | revoke ID"
cli
t_eq "no command is a usage error (2)" "$RC" 2
CONFIDOC_URL=https://localhost:1 cli frobnicate
t_eq "an unknown command is 2" "$RC" 2
cli --url http://localhost:1 ls
t_eq "a plain-http URL is refused (2)" "$RC" 2
cli ls
t_eq "no URL at all is 2" "$RC" 2
CONFIDOC_URL=https://localhost:1 cli get 12ab
t_eq "a malformed record id is 2" "$RC" 2
CONFIDOC_URL=https://localhost:1 cli put "$WORK/nonexistent" --id 1
t_eq "a missing file is 2" "$RC" 2

echo "# make up [${SECONDS}s]"
t_true "make up starts the stack" stack up
stack_env
export CONFIDOC_USER=carol CONFIDOC_PASSWORD='carol password 1'

echo "# unreachable and TLS failures [${SECONDS}s]"
DEAD=$(free_port)
cli --url "https://127.0.0.1:$DEAD" ls
t_eq "nothing listening: exit 3" "$RC" 3
cli --cacert "$CONFIDOC_API_CACERT" ls
t_eq "a server the CA does not verify: exit 3" "$RC" 3
t_contains "the TLS failure is named" "$ERR" "certificate"

echo "# signup [${SECONDS}s]"
cli signup
t_eq "signup exits 0" "$RC" 0
t_contains "signup names the account" "$OUT" "account carol created"
CODE=$(sed -n 's/^recovery code: //p' <<<"$OUT")
t_true "signup prints the recovery code" test -n "$CODE"
t_contains "signup warns about losing the code" "$ERR" "nobody can recover them"
cli signup
t_eq "signup of a taken name: the service refused (1)" "$RC" 1
t_contains "the service's detail is on stderr" "$ERR" "This username is already taken."
CONFIDOC_PASSWORD=wrong-password cli ls
t_eq "a wrong password: 1" "$RC" 1
t_contains "a wrong password: its detail" "$ERR" "Incorrect username or password (HTTP 401)"

echo "# 50 MiB round trip [${SECONDS}s]"
head -c $((50 * 1024 * 1024)) /dev/urandom >"$WORK/big.bin"
cli put "$WORK/big.bin" --id 5
t_eq "put of 50 MiB exits 0" "$RC" 0
t_contains "put reports the stored document" "$OUT" "document 5 stored: version 1, 52428800 bytes, application/octet-stream"
cli get 5 -o "$WORK/big.back"
t_eq "get -o exits 0" "$RC" 0
t_true "50 MiB come back byte for byte" cmp -s "$WORK/big.bin" "$WORK/big.back"
t_eq "the download is private (0600)" "$(stat -c %a "$WORK/big.back")" 600
t_eq "no temporary file is left" "$(ls "$WORK" | grep -c 'tmp-')" 0
setsid "$CLI" get 5 </dev/null 2>/dev/null | cmp -s - "$WORK/big.bin"
t_eq "get to stdout streams the same bytes" "$?" 0

echo "# put without an id, from stdin, ls, rm [${SECONDS}s]"
printf 'a small note\n' >"$WORK/note.txt"
cli put "$WORK/note.txt"
t_eq "put without --id exits 0" "$RC" 0
t_contains "put without --id takes the next free id" "$OUT" "document 6 stored"
cli get 6
t_eq "get to stdout" "$OUT" "a small note"
RC=0
printf 'from a pipe' | setsid "$CLI" put - --id 9 --type text/plain >"$WORK/out" 2>"$WORK/err" || RC=$?
t_eq "put - reads standard input (chunked)" "$RC" 0
cli get 9
t_eq "the piped document" "$OUT" "from a pipe"
cli ls
t_eq "ls exits 0" "$RC" 0
t_eq "ls lists every document" "$(awk 'NR > 1 {print $1}' <<<"$OUT" | tr '\n' ' ')" "5 6 9 "
t_contains "ls shows the guessed type" "$(grep '^6 ' <<<"$OUT")" "text/plain; charset=utf-8"
t_contains "ls shows the size" "$(grep '^5 ' <<<"$OUT")" "52428800"
cli --verbose ls
t_eq "ls --verbose exits 0" "$RC" 0
t_contains "--verbose traces the exchange" "$ERR" "> GET /documents?limit=100"
t_contains "--verbose leaves the credentials out" "$ERR" "> Authorization: (not shown)"
t_not_contains "--verbose shows no trace of the password" "$ERR" "$(printf 'carol:carol password 1' | base64)"
cli --url "https://127.0.0.1:$DEAD" ls
t_eq "a failed ls prints nothing on stdout" "$OUT" ""
cli get 999 -o "$WORK/none"
t_eq "get of a missing document: 1" "$RC" 1
t_contains "its detail" "$ERR" "A document with this record ID does not exist (HTTP 404)"
t_true "a refused get writes no file" test ! -e "$WORK/none"
cli rm 6
t_eq "rm exits 0" "$RC" 0
cli rm 6
t_eq "rm of a deleted document: 1" "$RC" 1

echo "# passwd [${SECONDS}s]"
CONFIDOC_NEW_PASSWORD='carol password 2' cli passwd
t_eq "passwd exits 0" "$RC" 0
cli ls
t_eq "the old password no longer works (1)" "$RC" 1
CONFIDOC_PASSWORD='carol password 2' cli get 9
t_eq "the new password opens the documents" "$OUT" "from a pipe"
CONFIDOC_PASSWORD='carol password 2' CONFIDOC_NEW_PASSWORD=short cli passwd
t_eq "a password outside the rules: 1" "$RC" 1

echo "# two-factor login and application passwords [${SECONDS}s]"
export CONFIDOC_PASSWORD='carol password 2'
# next_code: sets CODE to a code of a time step after the last one used
# (not in a command substitution: LAST_STEP must survive the call) (a code is
# accepted once; the service takes one step of drift, so two codes are
# available at once and a third within 30 s).
LAST_STEP=0
next_code() {
    local now step
    now=$(($(date +%s) / 30))
    step=$((LAST_STEP + 1 > now ? LAST_STEP + 1 : now))
    while [ "$step" -gt $((now + 1)) ]; do
        sleep 1
        now=$(($(date +%s) / 30))
    done
    LAST_STEP=$step
    CODE=$(node "$SRC/tests/lib/totp.mjs" "$TOTP_SECRET" "$step")
}
cli totp enable
t_eq "totp enable without a terminal exits 0" "$RC" 0
TOTP_SECRET=$(sed -n 's/^secret: //p' <<<"$OUT")
t_true "totp enable prints the secret" test -n "$TOTP_SECRET"
t_contains "totp enable prints the otpauth URI" "$OUT" "otpauth://totp/"
t_contains "without a terminal it says how to confirm" "$ERR" "confidoc totp confirm CODE"
cli totp confirm 000000x
t_eq "a malformed code is refused by the service (1)" "$RC" 1
next_code
cli totp confirm "$CODE"
t_eq "totp confirm exits 0" "$RC" 0
cli ls
t_eq "the password alone no longer works (1)" "$RC" 1
t_contains "the client says what would work" "$ERR" "application password"
next_code
cli --code "$CODE" ls
t_eq "with a one-time code the client logs in and lists (0)" "$RC" 0
t_eq "the session's listing" "$(awk 'NR > 1 {print $1}' <<<"$OUT" | tr '\n' ' ')" "5 9 "
next_code
cli --code "$CODE" app-password create laptop
t_eq "app-password create exits 0" "$RC" 0
APP1=$(sed -n 's/^application password [0-9]* (laptop): //p' <<<"$OUT")
APP1_ID=$(sed -n 's/^application password \([0-9]*\) (laptop).*/\1/p' <<<"$OUT")
t_true "the application password is printed once" test -n "$APP1"
t_contains "with a warning that it is shown once" "$ERR" "It is shown once"
CONFIDOC_PASSWORD=$APP1 cli get 9
t_eq "an application password opens the documents" "$OUT" "from a pipe"
CONFIDOC_PASSWORD=$APP1 cli put "$WORK/note.txt" --id 12
t_eq "and stores them" "$RC" 0
CONFIDOC_PASSWORD=$APP1 cli app-password list
t_eq "app-password list exits 0" "$RC" 0
t_contains "the list names laptop" "$OUT" "laptop"
CONFIDOC_PASSWORD=$APP1 cli --code 123456 totp disable 654321
t_eq "two-factor is not managed with an application password (1)" "$RC" 1
CONFIDOC_PASSWORD=$APP1 cli app-password revoke "$APP1_ID"
t_eq "app-password revoke exits 0" "$RC" 0
CONFIDOC_PASSWORD=$APP1 cli ls
t_eq "a revoked application password is refused (1)" "$RC" 1
next_code
C1=$CODE
next_code
cli --code "$C1" totp disable "$CODE"
t_eq "totp disable: a login code, then the next code (0)" "$RC" 0
cli ls
t_eq "the password alone works again" "$RC" 0

echo "# on a terminal: the progress bar and the password prompt [${SECONDS}s]"
# script(1) gives the client a terminal (a pty) for stdin, stdout and stderr.
head -c $((4 * 1024 * 1024)) /dev/urandom >"$WORK/mid.bin"
CONFIDOC_PASSWORD='carol password 2' script -qec "$CLI put $WORK/mid.bin --id 11" /dev/null \
    </dev/null >"$WORK/tty.out" 2>&1
t_contains "a transfer on a terminal draws a progress bar" "$(tr '\r' '\n' <"$WORK/tty.out")" "100% 4.0/4.0 MiB"
t_not_contains "without a terminal there is no bar" "$(cat "$WORK/err")" "MiB/s"
# The password typed once the prompt shows (through a FIFO, so the test
# waits for the prompt: what is typed before it is dropped, like getpass).
unset CONFIDOC_PASSWORD
mkfifo "$WORK/tty.in"
script -qec "$CLI get 9" /dev/null <"$WORK/tty.in" >"$WORK/tty.out" 2>&1 &
SCRIPT_PID=$!
exec 7>"$WORK/tty.in"
for ((i = 0; i < 100; i++)); do
    grep -q "Password: " "$WORK/tty.out" 2>/dev/null && break
    sleep 0.1
done
printf 'carol password 2\n' >&7
exec 7>&-
wait "$SCRIPT_PID"
t_contains "the password is asked for on the terminal" "$(cat "$WORK/tty.out")" "Password: "
t_contains "and the command runs with it" "$(cat "$WORK/tty.out")" "from a pipe"
t_not_contains "the typed password is not echoed" "$(cat "$WORK/tty.out")" "carol password 2"

t_finish
