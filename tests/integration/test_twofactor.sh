#!/usr/bin/env bash
# test_twofactor.sh: sessions, TOTP two-factor and application passwords (issue
# 14) end to end: two confidoc-api replicas on one MariaDB (a multi-replica
# deployment), TOTP codes computed here (RFC 6238, python3's hmac), and a scan
# of the database for the session tokens and TOTP secrets.
set -uo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/tests/lib/testlib.sh"
. "$SRC/tests/lib/certs.sh"
. "$SRC/tests/lib/mariadb.sh"
. "$SRC/tests/lib/api.sh"

WORK=$(mktemp -d /tmp/confidoc-2fa-test.XXXXXX)
chmod 755 "$WORK"
A_PID= B_PID=
cleanup() {
    for pid in $A_PID $B_PID; do kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    mariadb_stop "$WORK/db" >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT
t_watchdog 280
trap 't_watchdog_stop; cleanup' EXIT

certs_make "$WORK/certs" || exit 1
mariadb_start "$WORK/db" "$WORK/certs" || exit 1
export CONFIDOC_RATE_LIMIT=1000000
CONF=("session_ttl = 3600" "session_max_per_user = 3" "login_fail_limit = 6" "login_block_base = 60")
api_start "$WORK/a" "$WORK/certs" "${CONF[@]}" || exit 1
A=$API_URL A_PID=$API_PID A_LOG=$API_LOG
# The second replica: the same database and master key, its own process.
mkdir -p "$WORK/b" && cp -p "$WORK/a/master.key" "$WORK/b/master.key"
API_PORT=
api_start "$WORK/b" "$WORK/certs" "${CONF[@]}" || exit 1
B=$API_URL B_PID=$API_PID B_LOG=$API_LOG
API_PID= # cleanup stops both

sql() { mariadb_sql "$WORK/db" "USE confidoc; $*"; }
json() { jq -c -n "$@"; }

# TOTP code of base32 secret $1 at time step now/30 + $2 (RFC 6238, SHA-1, 6 digits).
totp_at() {
    python3 - "$1" "$2" <<'EOF'
import base64, hashlib, hmac, struct, sys, time
s = sys.argv[1]
key = base64.b32decode(s + "=" * (-len(s) % 8))
step = int(time.time()) // 30 + int(sys.argv[2])
h = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
o = h[19] & 15
print("%06d %d" % ((struct.unpack(">I", h[o:o + 4])[0] & 0x7FFFFFFF) % 1000000, step))
EOF
}
# A fresh code of secret $1: its step is after every step used so far (each
# code is accepted once, and only one later than the last), waiting for the
# next 30 s step when the three accepted ones are used up. Sets CODE.
declare -A LAST_STEP
fresh_code() {
    local s=$1 out step
    for _ in $(seq 1 40); do
        for d in -1 0; do
            out=$(totp_at "$s" "$d")
            step=${out#* }
            if [ "$step" -gt "${LAST_STEP[$s]:-0}" ]; then
                LAST_STEP[$s]=$step
                CODE=${out% *}
                return 0
            fi
        done
        sleep 1
    done
    return 1
}
# The session cookie of the last answer's Set-Cookie; sets TOKEN.
cookie_of_answer() { TOKEN=$(header Set-Cookie | sed -n 's/^__Host-confidoc_session=\([^;]*\);.*/\1/p'); }
# A cookie-authenticated curl: SESSION_URL's replica, token $TOKEN.
login() { # URL USER PASSWORD [CODE]
    local body
    if [ -n "${4:-}" ]; then body=$(json --arg u "$2" --arg p "$3" --arg t "$4" '{username:$u,password:$p,totp:$t}')
    else body=$(json --arg u "$2" --arg p "$3" '{username:$u,password:$p}'); fi
    req api_curl POST "$1/auth/login" -H "Content-Type: application/json" -d "$body"
    cookie_of_answer
    CSRF=$(jq -r '.csrf_token // empty' <<<"$BODY")
}
CK() { echo "Cookie: __Host-confidoc_session=$1"; }

echo "# sessions: login, cookie flags, CSRF, logout on another replica"
api_curl -s -o /dev/null -u alice:alicepassword "$A/users/create_account"
login "$A" alice alicepassword
t_eq "login is 200" "$STATUS" 200
t_eq "login answers the username" "$(jq -r .username <<<"$BODY")" alice
t_true "login answers a CSRF token (43 base64url characters)" \
    bash -c "[[ '$CSRF' =~ ^[A-Za-z0-9_-]{43}$ ]]"
SC=$(header Set-Cookie)
t_true "the session token is 256 bits of base64url" bash -c "[[ '$TOKEN' =~ ^[A-Za-z0-9_-]{43}$ ]]"
t_eq "cookie flags" "${SC#*;}" " HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=3600"
T1=$TOKEN C1=$CSRF
req api_curl POST "$A/auth/login" -H "Content-Type: application/json" \
    -d '{"username":"alice","password":"wrongpassword"}'
t_eq "wrong password is 401" "$STATUS" 401
WRONG=$BODY
t_eq "401 detail" "$(jq -r .detail <<<"$BODY")" "Incorrect username or password"
t_eq "no Basic challenge on /auth/login" "$(header WWW-Authenticate)" ""
req api_curl POST "$A/auth/login" -H "Content-Type: application/json" \
    -d '{"username":"nobody","password":"wrongpassword"}'
t_eq "unknown user answers as a wrong password" "$STATUS $BODY" "401 $WRONG"
req api_curl POST "$A/auth/login" -H "Content-Type: application/json" -d '{"username":"alice"}'
t_eq "login without password is 422" "$STATUS" 422
req api_curl POST "$A/auth/login" -H "Sec-Fetch-Site: cross-site" -H "Content-Type: text/plain" \
    -d '{"username":"alice","password":"alicepassword"}'
t_eq "a cross-site login (login CSRF) is 403" "$STATUS" 403
req api_curl GET "$A/users/me" -H "$(CK "$T1")"
t_eq "the cookie authenticates GET /users/me" "$STATUS $BODY" '200 {"username":"alice"}'
req api_curl GET "$B/users/me" -H "$(CK "$T1")"
t_eq "and on the other replica" "$STATUS $BODY" '200 {"username":"alice"}'
req api_curl GET "$B/users/me" -H "Cookie: theme=dark; __Host-confidoc_session=$T1; lang=en"
t_eq "among other cookies" "$STATUS" 200
DOC='{"record_id":5,"content":"written through a session"}'
req api_curl POST "$B/documents/create_document" -H "$(CK "$T1")" -H "Content-Type: application/json" -d "$DOC"
t_eq "a write without the CSRF token is 403" "$STATUS" 403
t_eq "403 detail" "$(jq -r .detail <<<"$BODY")" "Missing or invalid CSRF token"
req api_curl POST "$B/documents/create_document" -H "$(CK "$T1")" -H "X-CSRF-Token: ${C1%?}x" \
    -H "Content-Type: application/json" -d "$DOC"
t_eq "a wrong CSRF token is 403" "$STATUS" 403
req api_curl POST "$B/documents/create_document" -H "$(CK "$T1")" -H "X-CSRF-Token: $C1" \
    -H "Content-Type: application/json" -d "$DOC"
t_eq "with the CSRF token the write is 200" "$STATUS" 200
req api_curl GET "$A/documents/5" -u alice:alicepassword
t_eq "the document is alice's (read with Basic)" "$(jq -r .content <<<"$BODY")" "written through a session"
req api_curl GET "$A/users/me" -H "$(CK AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA)"
t_eq "an unknown session is 401" "$STATUS" 401
t_eq "401 session detail" "$(jq -r .detail <<<"$BODY")" "Session expired or invalid"
t_contains "and the cookie is cleared" "$(header Set-Cookie)" "__Host-confidoc_session=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0"
req api_curl GET "$A/users/me" -H "Cookie: __Host-confidoc_session=not-a-token"
t_eq "a malformed session cookie is 401" "$STATUS" 401
req api_curl POST "$A/auth/logout" -H "$(CK "$T1")"
t_eq "logout without the CSRF token is 403" "$STATUS" 403
req api_curl POST "$A/auth/logout" -H "$(CK "$T1")" -H "X-CSRF-Token: $C1"
t_eq "logout is 204" "$STATUS" 204
t_contains "logout clears the cookie" "$(header Set-Cookie)" "Max-Age=0"
req api_curl GET "$B/users/me" -H "$(CK "$T1")"
t_eq "the session ended on the other replica too" "$STATUS" 401
t_eq "no session row is left" "$(sql "SELECT COUNT(*) FROM sessions")" 0
for i in 1 2 3 4; do login "$A" alice alicepassword; eval "TM$i=\$TOKEN"; done
t_eq "session_max_per_user: the account keeps 3 sessions" "$(sql "SELECT COUNT(*) FROM sessions")" 3
req api_curl GET "$B/users/me" -H "$(CK "$TM1")"
t_eq "the oldest one went" "$STATUS" 401
req api_curl GET "$B/users/me" -H "$(CK "$TM4")"
t_eq "the newest one works" "$STATUS" 200

echo "# sessions end on every replica: password change, rotate-key, account deletion"
login "$A" alice alicepassword
T2=$TOKEN
req api_curl GET "$B/users/me" -H "$(CK "$T2")"
t_eq "a new session works on B" "$STATUS" 200
req api_curl POST "$A/users/me/password" -u alice:alicepassword -H "Content-Type: application/json" \
    -d '{"new_password":"alicepassword2"}'
t_eq "password change on A is 204" "$STATUS" 204
req api_curl GET "$B/users/me" -H "$(CK "$T2")"
t_eq "the session ended on B after the password change" "$STATUS" 401
login "$B" alice alicepassword2
T3=$TOKEN
req api_curl POST "$A/users/me/rotate-key" -u alice:alicepassword2
t_eq "rotate-key on A is 200" "$STATUS" 200
req api_curl GET "$B/users/me" -H "$(CK "$T3")"
t_eq "the session ended on B after rotate-key" "$STATUS" 401
login "$B" alice alicepassword2
T4=$TOKEN C4=$CSRF
req api_curl GET "$A/documents/5" -H "$(CK "$T4")"
t_eq "documents survive rotate-key and open through a new session" \
    "$(jq -r .content <<<"$BODY")" "written through a session"
req api_curl POST "$A/users/me/rotate-key" -H "$(CK "$T4")" -H "X-CSRF-Token: $C4"
t_eq "rotate-key through a session needs the password" "$STATUS" 422
req api_curl POST "$A/users/me/rotate-key" -H "$(CK "$T4")" -H "X-CSRF-Token: $C4" \
    -H "Content-Type: application/json" -d '{"password":"wrongpassword"}'
t_eq "and refuses a wrong one" "$STATUS" 403
req api_curl POST "$A/users/me/rotate-key" -H "$(CK "$T4")" -H "X-CSRF-Token: $C4" \
    -H "Content-Type: application/json" -d '{"password":"alicepassword2"}'
t_eq "rotate-key through a session with the password is 200" "$STATUS" 200
req api_curl GET "$A/documents/5" -u alice:alicepassword2
t_eq "the password still opens the documents after it" "$(jq -r .content <<<"$BODY")" "written through a session"
login "$A" alice alicepassword2
T5=$TOKEN
req api_curl DELETE "$A/users/me" -u alice:alicepassword2
t_eq "account deletion is 204" "$STATUS" 204
req api_curl GET "$B/users/me" -H "$(CK "$T5")"
t_eq "the session ended with the account (on B)" "$STATUS" 401

echo "# TOTP: pending, confirm, login with a code"
api_curl -s -o /dev/null -u bob:bobpassword1 "$A/users/create_account"
req api_curl POST "$A/users/me/totp" -u bob:bobpassword1
t_eq "a TOTP secret is 200" "$STATUS" 200
S0=$(jq -r .secret <<<"$BODY")
req api_curl POST "$A/users/me/totp" -u bob:bobpassword1
S=$(jq -r .secret <<<"$BODY")
t_true "the secret is 160 bits of base32" bash -c "[[ '$S' =~ ^[A-Z2-7]{32}$ ]]"
t_true "a new pending secret replaces the old" test "$S" != "$S0"
t_eq "otpauth URI" "$(jq -r .otpauth_uri <<<"$BODY")" \
    "otpauth://totp/confidoc:bob?secret=$S&issuer=confidoc&algorithm=SHA1&digits=6&period=30"
QR=$(jq -r .qr_svg <<<"$BODY")
t_true "the QR code is an SVG document" bash -c '[[ "$1" == "<svg "*"</svg>" ]]' _ "$QR"
t_eq "with one path" "$(grep -o '<path' <<<"$QR" | wc -l)" 1
t_not_contains "without script" "$QR" "script"
t_eq "still off while pending: Basic works" "$(api_curl -s -o /dev/null -w '%{http_code}' -u bob:bobpassword1 "$A/users/me")" 200
fresh_code "$S0"
req api_curl POST "$A/users/me/totp/confirm" -u bob:bobpassword1 -H "Content-Type: application/json" \
    -d "$(json --arg c "$CODE" '{code:$c}')"
t_eq "a code of the replaced secret is 422" "$STATUS" 422
t_eq "422 detail" "$(jq -r .detail <<<"$BODY")" "Invalid one-time code"
fresh_code "$S"
req api_curl POST "$A/users/me/totp/confirm" -u bob:bobpassword1 -H "Content-Type: application/json" \
    -d "$(json --arg c "$CODE" '{code:$c}')"
t_eq "confirm with a valid code is 204" "$STATUS" 204
req api_curl GET "$A/users/me" -u bob:bobpassword1
t_eq "Basic with the password alone is now 401" "$STATUS" 401
t_eq "with the two-factor detail" "$(jq -r .detail <<<"$BODY")" \
    "This account uses two-factor authentication: log in with a one-time code, or use an application password"
t_eq "and the Basic challenge" "$(header WWW-Authenticate)" 'Basic realm="confidoc", charset="UTF-8"'
req api_curl GET "$B/users/me" -u bob:bobpassword1
t_eq "on the other replica too" "$STATUS" 401
req api_curl GET "$B/users/me" -u bob:wrongpassword
t_eq "a wrong password still gets the usual 401 body" "$BODY" "$WRONG"
login "$A" bob bobpassword1
t_eq "login without a code is 401" "$STATUS" 401
t_eq "code required detail" "$(jq -r .detail <<<"$BODY")" "A one-time code is required"
login "$A" bob wrongpassword
t_eq "a wrong password without a code reveals nothing" "$STATUS $BODY" "401 $WRONG"
fresh_code "$S"
USED=$CODE
login "$A" bob bobpassword1 "$CODE"
t_eq "login with password and code is 200" "$STATUS" 200
TB=$TOKEN CB=$CSRF
login "$B" bob bobpassword1 "$USED"
t_eq "the same code again (on the other replica) is refused" "$STATUS $BODY" "401 $WRONG"
req api_curl POST "$B/users/me/totp" -H "$(CK "$TB")" -H "X-CSRF-Token: $CB"
t_eq "a second enable is 409" "$STATUS" 409
t_eq "409 detail" "$(jq -r .detail <<<"$BODY")" "Two-factor authentication is already enabled"

echo "# application passwords"
api_curl -s -o /dev/null -u carol:carolpassword "$A/users/create_account"
req api_curl POST "$A/users/me/app-passwords" -u carol:carolpassword -H "Content-Type: application/json" \
    -d '{"name":"laptop"}'
t_eq "creating one with Basic is 403" "$STATUS" 403
t_eq "403 detail" "$(jq -r .detail <<<"$BODY")" "Application passwords are created from a logged-in session"
req api_curl POST "$A/users/me/app-passwords" -H "$(CK "$TB")" -H "X-CSRF-Token: $CB" \
    -H "Content-Type: application/json" -d '{"name":"sync script ✓"}'
t_eq "creating one from the session is 201" "$STATUS" 201
AP=$(jq -r .password <<<"$BODY") APID=$(jq -r .id <<<"$BODY")
t_eq "it answers its name" "$(jq -r .name <<<"$BODY")" "sync script ✓"
t_true "the password is cdap_ and 256 bits" bash -c "[[ '$AP' =~ ^cdap_[A-Za-z0-9_-]{43}$ ]]"
t_true "created_at is a time" bash -c "[[ '$(jq -r .created_at <<<"$BODY")' =~ ^20[0-9-]+T ]]"
req api_curl POST "$A/users/me/app-passwords" -H "$(CK "$TB")" -H "X-CSRF-Token: $CB" \
    -H "Content-Type: application/json" -d '{"name":""}'
t_eq "an empty name is 422" "$STATUS" 422
req api_curl GET "$B/users/me" -u "bob:$AP"
t_eq "Basic with the application password works (two-factor on, replica B)" "$STATUS $BODY" '200 {"username":"bob"}'
req api_curl POST "$B/documents/create_document" -u "bob:$AP" -H "Content-Type: application/json" \
    -d '{"record_id":9,"content":"by the script"}'
t_eq "and on document routes" "$STATUS" 200
req api_curl GET "$A/documents/9" -H "$(CK "$TB")"
t_eq "the session reads what the app password wrote" "$(jq -r .content <<<"$BODY")" "by the script"
req api_curl GET "$A/users/me" -u "bob:cdap_${AP:5:42}x"
t_eq "a wrong application password is 401" "$STATUS $BODY" "401 $WRONG"
req api_curl GET "$A/users/me/app-passwords" -H "$(CK "$TB")"
t_eq "the list has it" "$(jq -r '.app_passwords | map(.id) | join(",")' <<<"$BODY")" "$APID"
t_true "with last_used_at set once used" bash -c "[[ '$(jq -r '.app_passwords[0].last_used_at' <<<"$BODY")' =~ ^20 ]]"
req api_curl DELETE "$A/users/me/app-passwords/$APID" -H "$(CK "$TB")"
t_eq "revoking without the CSRF token is 403" "$STATUS" 403
req api_curl DELETE "$A/users/me/app-passwords/$APID" -H "$(CK "$TB")" -H "X-CSRF-Token: $CB"
t_eq "revoking on A is 204" "$STATUS" 204
req api_curl GET "$B/users/me" -u "bob:$AP"
t_eq "revoked at once on B" "$STATUS" 401
req api_curl DELETE "$A/users/me/app-passwords/$APID" -H "$(CK "$TB")" -H "X-CSRF-Token: $CB"
t_eq "revoking it again is 404" "$STATUS" 404
n=0
for i in $(seq 1 32); do
    req api_curl POST "$A/users/me/app-passwords" -H "$(CK "$TB")" -H "X-CSRF-Token: $CB" \
        -H "Content-Type: application/json" -d "{\"name\":\"device $i\"}"
    [ "$STATUS" = 201 ] && n=$((n + 1))
done
t_eq "32 application passwords per account" "$n" 32
req api_curl POST "$A/users/me/app-passwords" -H "$(CK "$TB")" -H "X-CSRF-Token: $CB" \
    -H "Content-Type: application/json" -d '{"name":"one too many"}'
t_eq "the 33rd is 409" "$STATUS" 409
req api_curl GET "$B/users/me/app-passwords" -H "$(CK "$TB")"
t_eq "the list has 32 (names decrypted)" "$(jq -r '.app_passwords | length' <<<"$BODY"),$(jq -r '.app_passwords[31].name' <<<"$BODY")" "32,device 32"

echo "# the database holds neither the session token nor the TOTP secret"
TOKEN_HEX=$(python3 -c 'import base64,sys; t=sys.argv[1]; print(base64.urlsafe_b64decode(t+"="*(-len(t)%4)).hex().upper())' "$TB")
SECRET_HEX=$(python3 -c 'import base64,sys; print(base64.b32decode(sys.argv[1]).hex().upper())' "$S")
t_eq "one session row for bob" "$(sql "SELECT COUNT(*) FROM sessions s JOIN users u ON u.id = s.user_id")" 1
t_eq "two-factor on in the row" "$(sql "SELECT totp_state FROM users WHERE totp_state <> 0")" 2
mariadb-dump --socket="$MARIADB_SOCKET" -uroot --hex-blob confidoc >"$WORK/dump-hex.sql" 2>/dev/null
mariadb-dump --socket="$MARIADB_SOCKET" -uroot confidoc >"$WORK/dump.sql" 2>/dev/null
t_true "the dump has the sessions table" grep -q 'INSERT INTO `sessions`' "$WORK/dump-hex.sql"
# The scan can find what is there: an account's uid, in the same hex dump.
t_true "the hex scan finds a uid (control)" grep -qi "$(sql "SELECT HEX(uid) FROM users LIMIT 1")" "$WORK/dump-hex.sql"
for what in "$TOKEN_HEX:session token" "$SECRET_HEX:TOTP secret"; do
    t_true "no ${what#*:} in hex" bash -c "! grep -qi '${what%%:*}' '$WORK/dump-hex.sql'"
done
t_true "no session token text" bash -c "! grep -aq -- '$TB' '$WORK/dump.sql'"
t_true "no TOTP secret text" bash -c "! grep -aq '$S' '$WORK/dump.sql'"
t_true "no CSRF token text" bash -c "! grep -aq -- '$CB' '$WORK/dump.sql'"
t_true "no application password" bash -c "! grep -aq -- '${AP:5}' '$WORK/dump.sql'"

echo "# failed codes count toward the lockout"
api_curl -s -o /dev/null -u dave:davepassword "$A/users/create_account"
req api_curl POST "$A/users/me/totp" -u dave:davepassword
SD=$(jq -r .secret <<<"$BODY")
fresh_code "$SD"
api_curl -s -o /dev/null -u dave:davepassword -H "Content-Type: application/json" \
    -d "$(json --arg c "$CODE" '{code:$c}')" "$A/users/me/totp/confirm"
fresh_code "$SD"
GOOD=$CODE
BAD=$(printf '%06d' $(((10#$GOOD + 1) % 1000000)))
got429=
for i in $(seq 1 9); do
    login "$A" dave davepassword "$BAD"
    if [ "$STATUS" = 429 ]; then got429=$i; break; fi
    [ "$STATUS" = 401 ] || t_fail "a wrong code is 401 (attempt $i: $STATUS)"
done
t_true "wrong codes with the right password reach the lockout (429)" test -n "$got429"
t_true "429 has Retry-After" test -n "$(header Retry-After)"
login "$A" dave davepassword "$GOOD"
t_eq "then even the right code is refused while blocked" "$STATUS" 429

echo "# recovery and rotate-key keep two-factor on (the secret re-sealed) and end app passwords"
req api_curl GET "$A/users/create_account" -u erin:erinpassword
ERC=$(jq -r .recovery_code <<<"$BODY")
req api_curl POST "$A/users/me/totp" -u erin:erinpassword
SE=$(jq -r .secret <<<"$BODY")
fresh_code "$SE"
api_curl -s -o /dev/null -u erin:erinpassword -H "Content-Type: application/json" \
    -d "$(json --arg c "$CODE" '{code:$c}')" "$A/users/me/totp/confirm"
fresh_code "$SE"
login "$A" erin erinpassword "$CODE"
TE=$TOKEN CE=$CSRF
req api_curl POST "$A/users/me/app-passwords" -H "$(CK "$TE")" -H "X-CSRF-Token: $CE" \
    -H "Content-Type: application/json" -d '{"name":"phone"}'
EAP=$(jq -r .password <<<"$BODY")
req api_curl POST "$A/documents/create_document" -u "erin:$EAP" -H "Content-Type: application/json" \
    -d '{"record_id":1,"content":"erin keeps this"}'
t_eq "erin writes with her application password" "$STATUS" 200
req api_curl POST "$B/users/recover" -H "Content-Type: application/json" \
    -d "$(json --arg c "$ERC" '{username:"erin",recovery_code:$c,new_password:"erinpassword2"}')"
t_eq "recovery of a two-factor account is 200" "$STATUS" 200
req api_curl GET "$A/users/me" -H "$(CK "$TE")"
t_eq "recovery ended the session" "$STATUS" 401
req api_curl GET "$A/users/me" -u "erin:$EAP"
t_eq "recovery deleted the application passwords" "$STATUS" 401
t_eq "no application password row is left for erin" \
    "$(sql "SELECT COUNT(*) FROM app_passwords WHERE user_id = (SELECT MAX(id) FROM users)")" 0
login "$A" erin erinpassword2
t_eq "two-factor stays on after recovery" "$(jq -r .detail <<<"$BODY")" "A one-time code is required"
fresh_code "$SE"
login "$A" erin erinpassword2 "$CODE"
t_eq "the authenticator's codes still work (secret re-sealed)" "$STATUS" 200
TE=$TOKEN CE=$CSRF
req api_curl POST "$A/users/me/rotate-key" -H "$(CK "$TE")" -H "X-CSRF-Token: $CE" \
    -H "Content-Type: application/json" -d '{"password":"erinpassword2"}'
t_eq "rotate-key through the session is 200" "$STATUS" 200
fresh_code "$SE"
login "$B" erin erinpassword2 "$CODE"
t_eq "after rotate-key too" "$STATUS" 200
req api_curl GET "$B/documents/1" -H "$(CK "$TOKEN")"
t_eq "and her document opens under the new key" "$(jq -r .content <<<"$BODY")" "erin keeps this"

echo "# turning two-factor off"
fresh_code "$S"
req api_curl DELETE "$A/users/me/totp" -H "$(CK "$TB")" -H "X-CSRF-Token: $CB" \
    -H "Content-Type: application/json" -d '{}'
t_eq "disable without a code is 422" "$STATUS" 422
req api_curl DELETE "$A/users/me/totp" -H "$(CK "$TB")" -H "X-CSRF-Token: $CB" \
    -H "Content-Type: application/json" -d '{"code":"000000"}'
t_true "disable with a wrong code is 422" test "$STATUS" = 422 -o "$CODE" = 000000
req api_curl DELETE "$A/users/me/totp" -H "$(CK "$TB")" -H "X-CSRF-Token: $CB" \
    -H "Content-Type: application/json" -d "$(json --arg c "$CODE" '{code:$c}')"
t_eq "disable with a current code is 204" "$STATUS" 204
t_eq "the secret is destroyed" "$(sql "SELECT COUNT(*) FROM users WHERE totp_ct IS NOT NULL AND totp_state = 0")" 0
req api_curl GET "$B/users/me" -u bob:bobpassword1
t_eq "Basic with the password works again" "$STATUS" 200

for pid in $A_PID $B_PID; do
    kill -TERM "$pid"
    wait "$pid"
    t_eq "SIGTERM stops replica $pid cleanly (and, under ASan, without a leak)" "$?" 0
done
A_PID= B_PID=
for log in "$A_LOG" "$B_LOG"; do
    t_not_contains "the log holds no session token" "$(cat "$log")" "$TB"
    t_not_contains "the log holds no password" "$(cat "$log")" "bobpassword1"
    t_not_contains "the log holds no application password" "$(cat "$log")" "${AP:5}"
done
t_finish
