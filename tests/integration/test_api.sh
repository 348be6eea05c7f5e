#!/usr/bin/env bash
# test_api.sh: confidoc-api end to end against a real MariaDB over mutual TLS:
# the original's flow, per-owner isolation, every error status, binary
# documents, passwords and recovery, restarts, and a scan of MariaDB's files
# for plaintext.
set -uo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/tests/lib/testlib.sh"
. "$SRC/tests/lib/certs.sh"
. "$SRC/tests/lib/mariadb.sh"
. "$SRC/tests/lib/api.sh"

WORK=$(mktemp -d /tmp/confidoc-api-test.XXXXXX)
chmod 755 "$WORK"
B_PID=
cleanup() {
    [ -n "$B_PID" ] && kill -KILL "$B_PID" 2>/dev/null
    api_kill
    mariadb_stop "$WORK/db" >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT
# The whole test is bounded: a hang fails it instead of blocking CI.
t_watchdog 280
trap 't_watchdog_stop; cleanup' EXIT

certs_make "$WORK/certs" || exit 1
mariadb_start "$WORK/db" "$WORK/certs" || exit 1
# Rate limiting has its own test; here it must not get in the way.
export CONFIDOC_RATE_LIMIT=1000000
# Two large transfers and one active request at a time: every section runs
# through the gates, and the sections on concurrency run more than they admit.
api_start "$WORK/api" "$WORK/certs" "auth_cache_ttl = 60" "max_large_transfers = 2" \
    "max_active_requests = 1" || exit 1

U=$API_URL
BOB=(-u bobross:password123)
SENTENCE="Ever make mistakes in life? Lets make them birds. Yeah, theyre birds now."

echo "# the original's three commands"
req api_curl GET "$U/users/create_account" "${BOB[@]}"
t_eq "create_account is 201" "$STATUS" 201
t_eq "create_account answers the username" "$(jq -r .username <<<"$BODY")" bobross
RECOVERY=$(jq -r .recovery_code <<<"$BODY")
t_true "create_account carries a recovery code" test "${#RECOVERY}" -eq 39
req api_curl POST "$U/documents/create_document" "${BOB[@]}" -H "Content-Type: application/json" \
    -d "{\"record_id\":\"31\",\"content\":\"$SENTENCE\"}"
t_eq "create_document is 200" "$STATUS" 200
t_eq "create_document echoes an integer record_id" "$(jq -c .record_id <<<"$BODY")" 31
t_eq "create_document echoes the content" "$(jq -r .content <<<"$BODY")" "$SENTENCE"
req api_curl GET "$U/documents/31" "${BOB[@]}"
t_eq "get document is 200" "$STATUS" 200
t_eq "get document: record_id" "$(jq -c .record_id <<<"$BODY")" 31
t_eq "get document: content" "$(jq -r .content <<<"$BODY")" "$SENTENCE"
t_eq "get document: owner" "$(jq -r .owner <<<"$BODY")" bobross

echo "# accounts and credentials"
req api_curl POST "$U/users/create_account" "${BOB[@]}"
t_eq "second create_account is 409" "$STATUS" 409
t_eq "409 detail" "$(jq -r .detail <<<"$BODY")" "This username is already taken."
req api_curl GET "$U/users/me" "${BOB[@]}"
t_eq "me is 200" "$STATUS" 200
t_eq "me answers the username" "$BODY" '{"username":"bobross"}'
req api_curl GET "$U/users/me" -u bobross:wrongpassword
t_eq "wrong password is 401" "$STATUS" 401
WRONG_BODY=$BODY
t_eq "401 detail" "$(jq -r .detail <<<"$BODY")" "Incorrect username or password"
t_eq "401 has WWW-Authenticate" "$(header WWW-Authenticate)" 'Basic realm="confidoc", charset="UTF-8"'
req api_curl GET "$U/users/me" -u nosuchuser:password123
t_eq "unknown user is 401" "$STATUS" 401
t_eq "unknown user and wrong password answer alike" "$BODY" "$WRONG_BODY"
req api_curl GET "$U/users/me"
t_eq "no credentials is 401" "$STATUS" 401
req api_curl GET "$U/users/create_account" -u "bad name:password123"
t_eq "invalid username is 422" "$STATUS" 422
req api_curl GET "$U/users/create_account" -u "shorty:short"
t_eq "short password is 422" "$STATUS" 422

echo "# per-owner record ids"
api_curl -s -o /dev/null -u alice:alicepassword "$U/users/create_account"
req api_curl POST "$U/documents/create_document" -u alice:alicepassword \
    -H "Content-Type: application/json" -d '{"record_id":31,"content":"alice 31"}'
t_eq "alice can also own record 31" "$STATUS" 200
req api_curl GET "$U/documents/31" -u alice:alicepassword
t_eq "alice reads her 31" "$(jq -r .content <<<"$BODY")" "alice 31"
req api_curl GET "$U/documents/31" "${BOB[@]}"
t_eq "bob still reads his 31" "$(jq -r .content <<<"$BODY")" "$SENTENCE"
api_curl -s -o /dev/null -u alice:alicepassword -H "Content-Type: application/json" \
    -d '{"record_id":77,"content":"only alice"}' "$U/documents/create_document"
req api_curl GET "$U/documents/77" "${BOB[@]}"
t_eq "bob cannot see alice's 77" "$STATUS" 404
t_eq "404 detail" "$(jq -r .detail <<<"$BODY")" "A document with this record ID does not exist"
req api_curl POST "$U/documents/create_document" "${BOB[@]}" -H "Content-Type: application/json" \
    -d '{"record_id":31,"content":"again"}'
t_eq "existing record id is 409" "$STATUS" 409

echo "# bad input"
req api_curl GET "$U/nope" "${BOB[@]}"
t_eq "unknown path is 404" "$STATUS" 404
req api_curl PATCH "$U/documents/31" "${BOB[@]}"
t_eq "wrong method is 405" "$STATUS" 405
t_eq "405 has Allow" "$(header Allow)" "GET, PUT, DELETE"
for bad in '{"record_id":"abc","content":"x"}' '{"record_id":-1,"content":"x"}' \
    '{"record_id":9223372036854775808,"content":"x"}' '{"record_id":1.5,"content":"x"}' \
    '{"record_id":true,"content":"x"}' '{"record_id":"1","content":5}' '{"content":"x"}' \
    '{"record_id":1' '[1,2]' ''; do
    req api_curl POST "$U/documents/create_document" "${BOB[@]}" -H "Content-Type: application/json" -d "$bad"
    t_eq "422 for $bad" "$STATUS" 422
done
printf '{"record_id":5,"content":"\xff\xfe"}' >"$WORK/badutf8.json"
req api_curl POST "$U/documents/create_document" "${BOB[@]}" -H "Content-Type: application/json" \
    --data-binary @"$WORK/badutf8.json"
t_eq "invalid UTF-8 is 422" "$STATUS" 422
req api_curl GET "$U/documents/abc" "${BOB[@]}"
t_eq "non-integer path id is 422" "$STATUS" 422
req api_curl GET "$U/documents/9223372036854775808" "${BOB[@]}"
t_eq "path id beyond 2^63-1 is 422" "$STATUS" 422
req api_curl GET "$U/documents/9223372036854775807" "${BOB[@]}"
t_eq "path id 2^63-1 is valid (404)" "$STATUS" 404
head -c $((16 * 1024 * 1024 + 1)) /dev/zero >"$WORK/big.bin"
req api_curl PUT "$U/documents/900" "${BOB[@]}" -H "Content-Type: application/octet-stream" \
    --data-binary @"$WORK/big.bin"
t_eq "body over 16 MiB is 413" "$STATUS" 413
req api_curl GET "$U/users/me" "${BOB[@]}" -H "X-Filler: $(head -c 40000 /dev/zero | tr '\0' a)"
t_eq "oversized headers are 431" "$STATUS" 431

echo "# binary documents, replace, list, delete"
head -c 300000 /dev/urandom >"$WORK/doc.pdf"
req api_curl PUT "$U/documents/42" "${BOB[@]}" -H "Content-Type: application/pdf" --data-binary @"$WORK/doc.pdf"
t_eq "PUT new binary is 201" "$STATUS" 201
t_eq "PUT answers version 1" "$(jq -r .version <<<"$BODY")" 1
api_curl -s -u bobross:password123 -D "$WORK/h" -o "$WORK/back.pdf" "$U/documents/42/content"
t_true "content comes back byte for byte" cmp -s "$WORK/doc.pdf" "$WORK/back.pdf"
t_contains "content keeps its type" "$(tr -d '\r' <"$WORK/h")" "Content-Type: application/pdf"
req api_curl GET "$U/documents/42" "${BOB[@]}"
t_eq "binary document in JSON is base64" "$(jq -r .content_encoding <<<"$BODY")" base64
jq -r .content <<<"$BODY" | base64 -d >"$WORK/b64.out" 2>/dev/null
t_true "base64 decodes to the bytes" cmp -s "$WORK/b64.out" "$WORK/doc.pdf"
req api_curl PUT "$U/documents/42" "${BOB[@]}" -H "Content-Type: application/json" -d '{"content":"now text"}'
t_eq "PUT replace is 200" "$STATUS" 200
t_eq "PUT replace is version 2" "$(jq -r .version <<<"$BODY")" 2
req api_curl GET "$U/documents/42" "${BOB[@]}"
t_eq "replaced content" "$(jq -r .content <<<"$BODY")" "now text"
# If-None-Match: * only creates (the command-line client picks free ids so).
req api_curl PUT "$U/documents/42" "${BOB[@]}" -H "If-None-Match: *" -H "Content-Type: text/plain" --data-binary "overwritten"
t_eq "PUT If-None-Match: * on an existing document is 412" "$STATUS" 412
req api_curl GET "$U/documents/42" "${BOB[@]}"
t_eq "a 412 leaves the document as it was" "$(jq -r .content <<<"$BODY")" "now text"
req api_curl PUT "$U/documents/43" "${BOB[@]}" -H "If-None-Match: *" -H "Content-Type: text/plain" --data-binary "fresh"
t_eq "PUT If-None-Match: * on a free id creates it (201)" "$STATUS" 201
req api_curl PUT "$U/documents/43" "${BOB[@]}" -H 'If-None-Match: "v1"' -H "Content-Type: text/plain" --data-binary "x"
t_eq "PUT If-None-Match with an entity tag is 422 (documents have none)" "$STATUS" 422
req api_curl DELETE "$U/documents/43" "${BOB[@]}"
t_eq "the created document deletes" "$STATUS" 204
for i in 1 2 3 4 5; do
    api_curl -s -o /dev/null "${BOB[@]}" -X PUT -H "Content-Type: text/plain" --data-binary "n$i" "$U/documents/$((100 + i))"
done
req api_curl GET "$U/documents?limit=3" "${BOB[@]}"
t_eq "list page 1" "$(jq -c '[.documents[].record_id]' <<<"$BODY")" "[31,42,101]"
NEXT=$(jq -r .next_after <<<"$BODY")
req api_curl GET "$U/documents?limit=3&after=$NEXT" "${BOB[@]}"
t_eq "list page 2" "$(jq -c '[.documents[].record_id]' <<<"$BODY")" "[102,103,104]"
t_eq "list shows size and type" "$(jq -c '.documents[0] | [.size, .content_type]' <<<"$BODY")" '[2,"text/plain"]'
req api_curl GET "$U/documents?limit=0" "${BOB[@]}"
t_eq "bad limit is 422" "$STATUS" 422
req api_curl DELETE "$U/documents/105" "${BOB[@]}"
t_eq "delete is 204" "$STATUS" 204
req api_curl DELETE "$U/documents/105" "${BOB[@]}"
t_eq "delete again is 404" "$STATUS" 404

echo "# large documents: 12 uploads and 12 downloads at once, 2 handled at a time"
for i in $(seq 1 12); do head -c $((200000 + i * 1000)) /dev/urandom >"$WORK/big.$i"; done
pids=()
for i in $(seq 1 12); do
    api_curl -s -o /dev/null -w '%{http_code}' "${BOB[@]}" -X PUT -H "Content-Type: application/octet-stream" \
        --data-binary @"$WORK/big.$i" "$U/documents/$((500 + i))" >"$WORK/big.$i.put" &
    pids+=($!)
done
wait "${pids[@]}" # not the API, which is a child of this shell too
t_eq "all 12 large uploads are 201" "$(cat "$WORK"/big.*.put | tr -d '\n')" "$(printf '201%.0s' $(seq 1 12))"
pids=()
for i in $(seq 1 12); do
    api_curl -s -o "$WORK/big.$i.back" "${BOB[@]}" "$U/documents/$((500 + i))/content" &
    pids+=($!)
done
wait "${pids[@]}"
ok=0
for i in $(seq 1 12); do cmp -s "$WORK/big.$i" "$WORK/big.$i.back" && ok=$((ok + 1)); done
t_eq "all 12 large downloads come back byte for byte" "$ok" 12

echo "# one active place: 20 reads and 4 first logins (Argon2id) at once"
for i in 1 2 3 4; do api_curl -s -o /dev/null -u "gate$i:gatepassword$i" "$U/users/create_account"; done
pids=()
for i in $(seq 1 20); do
    api_curl -s -o /dev/null -w '%{http_code}\n' "${BOB[@]}" "$U/documents/31" >"$WORK/gate.r$i" &
    pids+=($!)
done
for i in 1 2 3 4; do
    api_curl -s -o /dev/null -w '%{http_code}\n' -u "gate$i:gatepassword$i" "$U/users/me" >"$WORK/gate.l$i" &
    pids+=($!)
done
wait "${pids[@]}"
t_eq "all 24 answered 200" "$(cat "$WORK"/gate.* | sort | uniq -c | tr -s ' ')" " 24 200"

echo "# password change and recovery"
api_curl -s -o /dev/null -u carol:carolpassword "$U/users/create_account"
req api_curl POST "$U/users/me/password" -u carol:carolpassword -H "Content-Type: application/json" \
    -d '{"new_password":"carolnewpassword"}'
t_eq "password change is 204" "$STATUS" 204
req api_curl GET "$U/users/me" -u carol:carolpassword
t_eq "old password no longer works" "$STATUS" 401
req api_curl GET "$U/users/me" -u carol:carolnewpassword
t_eq "new password works" "$STATUS" 200
api_curl -s -o /dev/null -u bobross:password123 -H "Content-Type: application/json" \
    -d '{"record_id":500,"content":"survives recovery"}' "$U/documents/create_document"
req api_curl POST "$U/users/recover" -H "Content-Type: application/json" \
    -d "{\"username\":\"bobross\",\"recovery_code\":\"nope\",\"new_password\":\"recovered123\"}"
t_eq "wrong recovery code is 401" "$STATUS" 401
req api_curl POST "$U/users/recover" -H "Content-Type: application/json" \
    -d "{\"username\":\"bobross\",\"recovery_code\":\"$(tr 'A-Z' 'a-z' <<<"$RECOVERY")\",\"new_password\":\"recovered123\"}"
t_eq "recovery is 200" "$STATUS" 200
NEWCODE=$(jq -r .recovery_code <<<"$BODY")
t_true "recovery issues a new code" test "$NEWCODE" != "$RECOVERY" -a "${#NEWCODE}" -eq 39
req api_curl GET "$U/documents/500" -u bobross:recovered123
t_eq "documents survive recovery" "$(jq -r .content <<<"$BODY")" "survives recovery"
req api_curl GET "$U/users/me" "${BOB[@]}"
t_eq "old password fails after recovery" "$STATUS" 401
req api_curl POST "$U/users/recover" -H "Content-Type: application/json" \
    -d "{\"username\":\"bobross\",\"recovery_code\":\"$RECOVERY\",\"new_password\":\"again12345\"}"
t_eq "a used recovery code fails" "$STATUS" 401
BOB=(-u bobross:recovered123)

echo "# account deletion"
api_curl -s -o /dev/null -u dave:davepassword "$U/users/create_account"
api_curl -s -o /dev/null -u dave:davepassword -X PUT -H "Content-Type: text/plain" --data-binary x "$U/documents/1"
req api_curl DELETE "$U/users/me" -u dave:davepassword
t_eq "account deletion is 204" "$STATUS" 204
req api_curl GET "$U/documents/1" -u dave:davepassword
t_eq "deleted account cannot log in" "$STATUS" 401
req api_curl GET "$U/users/create_account" -u dave:davepassword
t_eq "a deleted username can be taken again" "$STATUS" 201
req api_curl GET "$U/documents/1" -u dave:davepassword
t_eq "the new account sees none of the old documents" "$STATUS" 404

echo "# two replicas on one database: a credential cached on B is re-checked after a change on A"
A_PID=$API_PID A_PORT=$API_PORT A_URL=$API_URL A_LOG=$API_LOG
mkdir -p "$WORK/api2"
cp "$WORK/api/master.key" "$WORK/api2/master.key"
API_PORT=
api_start "$WORK/api2" "$WORK/certs" "auth_cache_ttl = 60" || exit 1
B_PID=$API_PID B=$API_URL
API_PID=$A_PID API_PORT=$A_PORT API_URL=$A_URL API_LOG=$A_LOG
ERIN=(-u erin:erinpassword)
JSON=(-H "Content-Type: application/json")
api_curl -s -o /dev/null "${ERIN[@]}" "$U/users/create_account"
req api_curl POST "$B/documents/create_document" "${ERIN[@]}" "${JSON[@]}" -d '{"record_id":1,"content":"erin one"}'
t_eq "replica B creates a document" "$STATUS" 200
req api_curl GET "$B/documents/1" "${ERIN[@]}"
t_eq "replica B reads it (the credential is cached on B)" "$(jq -r .content <<<"$BODY")" "erin one"
req api_curl POST "$U/users/me/password" "${ERIN[@]}" "${JSON[@]}" -d '{"new_password":"erinnewpassword"}'
t_eq "password changed on replica A" "$STATUS" 204
# B still holds the old credential in its cache: requests answered before any
# statement could confirm it must not get past it.
req api_curl GET "$B/documents/not-a-number" "${ERIN[@]}"
t_eq "old password with a malformed id: 401, not 422" "$STATUS" 401
req api_curl GET "$B/documents/1" "${ERIN[@]}"
t_eq "replica B refuses the old password at once (get)" "$STATUS" 401
req api_curl GET "$B/documents/1/content" "${ERIN[@]}"
t_eq "replica B refuses the old password at once (content)" "$STATUS" 401
req api_curl POST "$B/documents/create_document" "${ERIN[@]}" "${JSON[@]}" -d '{"record_id":2,"content":"erin two"}'
t_eq "replica B refuses the old password at once (create)" "$STATUS" 401
req api_curl GET "$U/documents/2" -u erin:erinnewpassword
t_eq "nothing was stored under the old password" "$STATUS" 404
req api_curl GET "$B/documents/1" -u erin:erinnewpassword
t_eq "replica B accepts the new password" "$(jq -r .content <<<"$BODY")" "erin one"
req api_curl DELETE "$U/users/me" -u erin:erinnewpassword
t_eq "account deleted on replica A" "$STATUS" 204
req api_curl GET "$B/documents/1" -u erin:erinnewpassword
t_eq "replica B refuses the deleted account at once" "$STATUS" 401
kill -TERM "$B_PID" 2>/dev/null
wait "$B_PID" 2>/dev/null
B_PID=

echo "# transport"
t_true "a client without a certificate is refused" bash -c "! curl -s --max-time 5 --cacert $WORK/certs/ca.crt $U/healthz"
t_true "a client certificate from another CA is refused" bash -c "! curl -s --max-time 5 --cacert $WORK/certs/ca.crt --cert $WORK/certs/rogue.crt --key $WORK/certs/rogue.key $U/healthz"
req api_curl GET "$U/readyz"
t_eq "readyz is 200" "$STATUS" 200

echo "# restarts"
t_true "SIGTERM stops the API cleanly" api_stop
api_start "$WORK/api" "$WORK/certs" || exit 1
req api_curl GET "$U/documents/31" "${BOB[@]}"
t_eq "data intact after API restart" "$(jq -r .content <<<"$BODY")" "$SENTENCE"
mariadb_stop "$WORK/db"
req api_curl GET "$U/documents/31" "${BOB[@]}"
t_eq "database down is 503" "$STATUS" 503
t_true "503 has Retry-After" test -n "$(header Retry-After)"
req api_curl GET "$U/readyz"
t_eq "readyz is 503 while the database is down" "$STATUS" 503
mariadb_restart "$WORK/db" || exit 1
for _ in $(seq 1 50); do
    req api_curl GET "$U/documents/31" "${BOB[@]}"
    [ "$STATUS" = 200 ] && break
    sleep 0.2
done
t_eq "API recovers when the database returns" "$STATUS" 200
t_eq "data intact after MariaDB restart" "$(jq -r .content <<<"$BODY")" "$SENTENCE"

echo "# the database never sees plaintext"
MARKER="confidoc-marker-$(openssl rand -hex 8)"
api_curl -s -o /dev/null -u "$MARKER:markerpassword" "$U/users/create_account"
api_curl -s -o /dev/null -u "$MARKER:markerpassword" -H "Content-Type: application/json" \
    -d "{\"record_id\":1,\"content\":\"$MARKER in a document\"}" "$U/documents/create_document"
mariadb-admin --socket="$MARIADB_SOCKET" -uroot flush-tables >/dev/null 2>&1
mariadb --socket="$MARIADB_SOCKET" -uroot -e "SET GLOBAL innodb_fast_shutdown=0" >/dev/null 2>&1
mariadb-dump --socket="$MARIADB_SOCKET" -uroot --hex-blob=0 --all-databases >"$WORK/dump.sql" 2>/dev/null
t_true "the dump is not empty" test -s "$WORK/dump.sql"
t_true "the dump holds no marker" bash -c "! grep -aq '$MARKER' '$WORK/dump.sql'"
mariadb_stop "$WORK/db"
t_true "MariaDB's files hold no marker" bash -c "! grep -raq '$MARKER' '$WORK/db'"
mariadb_restart "$WORK/db" || exit 1

t_true "SIGTERM stops the API cleanly at the end" api_stop
t_not_contains "the log holds no password" "$(cat "$API_LOG")" "password123"
t_not_contains "the log holds no document text" "$(cat "$API_LOG")" "birds"
t_not_contains "the log holds no username" "$(cat "$API_LOG")" "$MARKER"
t_finish
