#!/usr/bin/env bash
# test_review_http.sh: regression tests for the HTTP edge findings of the
# outside review (issue 9), through HTTP against real servers (a private
# MariaDB and confidoc-api; prog_http_echo for the server glue alone).
#
# Usage: test_review_http.sh NAME   (one of the names below; ctest runs each
#        as integration.NAME), or with no argument: all of them.
#   review_5_body_limit             413 per route before the body is read
#   review_5_json_bounds            deep nesting and 100k-element arrays refused
#   review_5_rss_bounded            8 such bodies at once leave the API's RSS bounded
#   review_9_mhd_wipe               Authorization wiped in MHD's connection memory
#   review_10_content_disposition   /content as an attachment with a sandbox CSP
#   review_12_large_share           slow readers from one client cannot take every large place
#   review_12_large_stalled         readers that stop reading lose their places (connection_timeout)
#   review_12_readyz_cache          /readyz pings the database at most once a second
#   review_13_gone_frees_places     clients that leave while their large GET is being
#                                   handled give their large places back
#   review_consistency_realm        urllib's HTTPBasicAuthHandler logs in
#   review_consistency_nul          a NUL in a query value or the path is 422
set -uo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${CONFIDOC_BUILD_DIR:-$SRC/build}
export CONFIDOC_BUILD_DIR=$BUILD
. "$SRC/tests/lib/testlib.sh"
. "$SRC/tests/lib/certs.sh"
. "$SRC/tests/lib/mariadb.sh"
. "$SRC/tests/lib/api.sh"

WORK=$(mktemp -d /tmp/confidoc-review-http.XXXXXX)
chmod 755 "$WORK"
BG_PIDS=()
DB_UP=0
cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    api_kill
    [ "$DB_UP" = 1 ] && mariadb_stop "$WORK/db" >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT
t_watchdog 280
trap 't_watchdog_stop; cleanup' EXIT

certs_make "$WORK/certs" >/dev/null 2>&1 || { echo "not ok - certificates"; exit 1; }
C=$WORK/certs
export CONFIDOC_RATE_LIMIT=1000000

# db_and_api [extra config lines...]: a MariaDB (once) and a fresh confidoc-api.
db_and_api() {
    if [ "$DB_UP" = 0 ]; then
        mariadb_start "$WORK/db" "$C" >/dev/null || { echo "not ok - mariadb"; exit 1; }
        DB_UP=1
    fi
    api_start "$WORK/api" "$C" "$@" || { echo "not ok - confidoc-api start"; exit 1; }
    U=$API_URL
}

# curl with the proxy's certificate, as an array: background jobs started
# from it are curl itself (a function would be a subshell whose curl outlives
# a kill of the subshell).
bgcurl() { CURL=(curl --max-time 30 --cacert "$C/ca.crt" --cert "$C/proxy.crt" --key "$C/proxy.key"); }
bgcurl

vm() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status"; }

# A JSON array of n zeros (as a file).
zeros_array() { python3 -c "import sys; n=int(sys.argv[1]); sys.stdout.write('[' + ','.join(['0']*n) + ']')" "$1" >"$2"; }

review_5_body_limit() {
    db_and_api
    api_curl -s -o /dev/null -u bobross:password123 "$U/users/create_account"
    head -c 1048576 /dev/zero | tr '\0' 'a' >"$WORK/1m"
    local out code up t
    # Content-Length: refused on the headers. With Expect: 100-continue the
    # client waits for the server's go-ahead: no body byte may be asked for.
    out=$(api_curl -s -o "$WORK/b" -w '%{http_code} %{size_upload} %{time_total}' \
        -H 'Expect: 100-continue' --expect100-timeout 10 -H 'Content-Type: application/json' \
        --data-binary @"$WORK/1m" "$U/users/recover")
    read -r code up t <<<"$out"
    t_eq "1 MiB to /users/recover (Content-Length) is 413" "$code" 413
    t_eq "  its body was never asked for (no 100 Continue, nothing uploaded)" "$up" 0
    t_true "  answered quickly (${t}s < 5s)" awk -v t="$t" 'BEGIN{exit !(t < 5)}'
    t_eq "  413 detail is JSON" "$(jq -r .detail "$WORK/b" 2>/dev/null)" "Request body too large"
    # Chunked: thrown away as it arrives, 413 at its end.
    out=$(api_curl -s -o "$WORK/b" -w '%{http_code} %{time_total}' -H 'Transfer-Encoding: chunked' \
        -H 'Content-Type: application/json' --data-binary @"$WORK/1m" "$U/users/recover")
    read -r code t <<<"$out"
    t_eq "1 MiB chunked to /users/recover is 413" "$code" 413
    t_true "  answered quickly (${t}s < 5s)" awk -v t="$t" 'BEGIN{exit !(t < 5)}'
    # Every control route has the small limit; document content keeps the large one.
    for r in "POST /users/me/password" "GET /users/me" "POST /users/create_account" \
        "GET /documents" "DELETE /documents/1" "POST /nosuchroute"; do
        set -- $r
        code=$(api_curl -s -o /dev/null -w '%{http_code}' -X "$1" -u bobross:password123 \
            -H 'Expect: 100-continue' --data-binary @"$WORK/1m" "$U$2")
        t_eq "1 MiB to $r is 413" "$code" 413
    done
    head -c 9000 /dev/zero | tr '\0' 'a' >"$WORK/9k"
    code=$(api_curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary @"$WORK/9k" "$U/users/recover")
    t_eq "9000 bytes to /users/recover is 413 (limit 8 KiB)" "$code" 413
    # A well-formed recover body with a 1024-byte password written as \u escapes fits.
    python3 -c "import json; print(json.dumps({'username':'bobross','recovery_code':'0'*39,'new_password':'\x01'*1024}))" >"$WORK/esc"
    code=$(api_curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary @"$WORK/esc" "$U/users/recover")
    t_eq "the largest well-formed recover body ($(wc -c <"$WORK/esc") bytes) is read (401, not 413)" "$code" 401
    python3 -c "import json; print(json.dumps({'record_id':5,'content':'a'*1048576}))" >"$WORK/doc"
    code=$(api_curl -s -o /dev/null -w '%{http_code}' -u bobross:password123 \
        -H 'Content-Type: application/json' --data-binary @"$WORK/doc" "$U/documents/create_document")
    t_eq "1 MiB create_document is still served (200)" "$code" 200
    code=$(api_curl -s -o /dev/null -w '%{http_code}' -u bobross:password123 -X PUT \
        -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/1m" "$U/documents/6")
    t_eq "1 MiB PUT is still served (201)" "$code" 201
    code=$(api_curl -s -o /dev/null -w '%{http_code}' -u bobross:password123 -X PUT \
        -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/octet-stream' \
        --data-binary @"$WORK/1m" "$U/documents/6")
    t_eq "1 MiB chunked PUT is still served (200)" "$code" 200
    api_stop
}

review_5_json_bounds() {
    db_and_api
    api_curl -s -o /dev/null -u bobross:password123 "$U/users/create_account"
    local code
    # 1000 levels: under jansson's own limit (2048), far over ours.
    python3 -c "print('{\"record_id\":7,\"content\":\"x\",\"pad\":' + '['*1000 + ']'*1000 + '}')" >"$WORK/deep"
    code=$(api_curl -s -o "$WORK/b" -w '%{http_code}' -u bobross:password123 \
        -H 'Content-Type: application/json' --data-binary @"$WORK/deep" "$U/documents/create_document")
    t_eq "create_document with 1000 nested arrays is 422" "$code" 422
    python3 -c "print('{\"record_id\":8,\"content\":\"x\",\"pad\":[' + ','.join(['0']*100000) + ']}')" >"$WORK/wide"
    code=$(api_curl -s -o "$WORK/b" -w '%{http_code}' -u bobross:password123 \
        -H 'Content-Type: application/json' --data-binary @"$WORK/wide" "$U/documents/create_document")
    t_eq "create_document with a 100k-element array is 422" "$code" 422
    code=$(api_curl -s -o /dev/null -w '%{http_code}' -u bobross:password123 -X PUT \
        -H 'Content-Type: application/json' --data-binary @"$WORK/wide" "$U/documents/8")
    t_eq "JSON PUT with a 100k-element array is 422" "$code" 422
    code=$(api_curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]' \
        "$U/users/recover")
    t_eq "recover with 40 nested arrays is 422" "$code" 422
    # Brackets inside strings are text, not nesting.
    python3 -c "print('{\"record_id\":9,\"content\":\"' + '['*5000 + ',' * 5000 + '\"}')" >"$WORK/str"
    code=$(api_curl -s -o /dev/null -w '%{http_code}' -u bobross:password123 \
        -H 'Content-Type: application/json' --data-binary @"$WORK/str" "$U/documents/create_document")
    t_eq "brackets and commas inside a string are content (200)" "$code" 200
    api_stop
}

review_5_rss_bounded() {
    db_and_api
    local base hwm i
    zeros_array 524288 "$WORK/arr" # 1 MiB of "0,": half a million values
    base=$(vm "$API_PID" VmRSS)
    echo 5 >"/proc/$API_PID/clear_refs" # VmHWM := VmRSS
    for i in 1 2 3 4 5 6 7 8; do
        "${CURL[@]}" -s -o /dev/null -H 'Content-Type: application/json' \
            --data-binary @"$WORK/arr" "$U/users/recover" &
        BG_PIDS+=($!)
        "${CURL[@]}" -s -o /dev/null -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' \
            --data-binary @"$WORK/arr" "$U/users/recover" &
        BG_PIDS+=($!)
    done
    for i in "${BG_PIDS[@]}"; do wait "$i" 2>/dev/null; done
    BG_PIDS=()
    hwm=$(vm "$API_PID" VmHWM)
    echo "# VmRSS before ${base} kB, peak (VmHWM) while 16 bodies were in flight ${hwm} kB"
    # Before the fix: +339 MiB (release build). After: ~1 MiB, ~60 MiB under
    # ASan (thread stacks, its quarantine of freed TLS state).
    t_true "peak RSS grew by less than 128 MiB ($(((hwm - base) / 1024)) MiB)" \
        test $((hwm - base)) -lt $((128 * 1024))
    t_true "the API is still alive" kill -0 "$API_PID"
    api_stop
}

review_9_mhd_wipe() {
    local prog=$BUILD/tests/prog_http_echo port="" pid i
    "$prog" --cert "$C/api.crt" --key "$C/api.key" --ca "$C/ca.crt" --wipe-check 1 \
        >"$WORK/echo.out" 2>"$WORK/echo.err" &
    pid=$!
    BG_PIDS+=($pid)
    for _ in $(seq 1 100); do
        port=$(awk '/^PORT /{print $2}' "$WORK/echo.out")
        [ -n "$port" ] && break
        sleep 0.05
    done
    local eu=https://localhost:$port
    local ec=(curl -s -o /dev/null --max-time 10 --cacert "$C/ca.crt" --cert "$C/proxy.crt" --key "$C/proxy.key")
    "${ec[@]}" -u marker:MARKERPASSWORD-1 "$eu/echo"
    "${ec[@]}" -u marker:MARKERPASSWORD-2 -H 'Connection: close' "$eu/echo" -d '{"new_password":"BODYMARKER-2-0123"}'
    "${ec[@]}" -u marker:MARKERPASSWORD-3 "$eu/echo" -o /dev/null "$eu/echo" -d '{"new_password":"BODYMARKER-3-0123"}'
    "${ec[@]}" -u marker:MARKERPASSWORD-4 -H 'Transfer-Encoding: chunked' "$eu/echo" -d '{"new_password":"BODYMARKER-4-0123"}'
    for _ in $(seq 1 50); do
        [ "$(grep -c '^WIPE' "$WORK/echo.out")" -ge 5 ] && break
        sleep 0.1
    done
    kill -TERM "$pid"; wait "$pid" 2>/dev/null
    BG_PIDS=()
    t_eq "five requests were checked after completion" "$(grep -c '^WIPE' "$WORK/echo.out")" 5
    t_eq "every one had its Authorization value checked" "$(grep -c '^WIPE ok auth=[1-9]' "$WORK/echo.out")" 5
    t_eq "no Authorization value or body left in MHD's connection memory" \
        "$(grep '^WIPE LEAK' "$WORK/echo.out")" ""
}

review_10_content_disposition() {
    db_and_api
    api_curl -s -o /dev/null -u bobross:password123 "$U/users/create_account"
    api_curl -s -o /dev/null -u bobross:password123 -X PUT -H 'Content-Type: text/html' \
        --data-binary '<script>alert(document.domain)</script>' "$U/documents/31"
    api_curl -s -o /dev/null -u bobross:password123 -X PUT -H 'Content-Type: image/svg+xml' \
        --data-binary '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>' "$U/documents/32"
    api_curl -s -o /dev/null -u bobross:password123 -X PUT -H 'Content-Type: text/plain; charset=utf-8' \
        --data-binary 'plain' "$U/documents/33"
    req api_curl GET "$U/documents/31/content" -u bobross:password123
    t_eq "text/html content is 200" "$STATUS" 200
    t_eq "  Content-Disposition" "$(header Content-Disposition)" \
        "attachment; filename=\"document-31\"; filename*=UTF-8''document-31"
    t_eq "  Content-Security-Policy" "$(header Content-Security-Policy)" "sandbox; default-src 'none'"
    t_eq "  nosniff kept" "$(header X-Content-Type-Options)" nosniff
    t_eq "  bytes unchanged" "$BODY" '<script>alert(document.domain)</script>'
    req api_curl GET "$U/documents/32/content" -u bobross:password123
    t_eq "image/svg+xml: attachment, no extension" "$(header Content-Disposition)" \
        "attachment; filename=\"document-32\"; filename*=UTF-8''document-32"
    t_eq "  Content-Security-Policy" "$(header Content-Security-Policy)" "sandbox; default-src 'none'"
    req api_curl GET "$U/documents/33/content" -u bobross:password123
    t_eq "text/plain: attachment named document-33.txt" "$(header Content-Disposition)" \
        "attachment; filename=\"document-33.txt\"; filename*=UTF-8''document-33.txt"
    t_eq "  content type kept" "$(header Content-Type)" "text/plain; charset=utf-8"
    api_stop
}

review_12_large_share() {
    # 4 places: one client gets ceil(4/4) = 1 of them.
    db_and_api "max_large_transfers = 4" "connection_timeout = 120" "drain_timeout = 1"
    api_curl -s -o /dev/null -u bobross:password123 "$U/users/create_account"
    head -c $((12 * 1024 * 1024)) /dev/urandom >"$WORK/big"
    local code t i slow=()
    code=$(api_curl -s -o /dev/null -w '%{http_code}' -u bobross:password123 -X PUT \
        -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/big" "$U/documents/40")
    t_eq "a 12 MiB document is stored" "$code" 201
    # Four slow readers (10 KiB/s: each would take 20 minutes) from one address.
    for i in 1 2 3 4; do
        "${CURL[@]}" -s -o /dev/null --max-time 100 --limit-rate 10K -u bobross:password123 \
            -H 'X-Real-IP: 198.51.100.7' -w '%{http_code}\n' "$U/documents/40/content" \
            >"$WORK/slow.$i" &
        BG_PIDS+=($!)
        slow+=($!)
    done
    sleep 3
    local start=$SECONDS
    out=$(api_curl -s -o "$WORK/fast" -w '%{http_code} %{time_total}' --max-time 60 \
        -u bobross:password123 -H 'X-Real-IP: 203.0.113.9' "$U/documents/40/content")
    read -r code t <<<"$out"
    t_eq "another client's large GET is served while they read" "$code" 200
    t_true "  within its normal bound (${t}s < 8s, the large-place wait is 10 s)" \
        awk -v t="$t" 'BEGIN{exit !(t < 8)}'
    t_true "  with the document's bytes" cmp -s "$WORK/fast" "$WORK/big"
    # The slow client's other readers wait for its own share (10 s), then 503.
    local busy=0
    for _ in $(seq 1 150); do
        busy=$(cat "$WORK"/slow.* | grep -c 503)
        [ "$busy" -ge 3 ] && break
        sleep 0.1
    done
    t_eq "the slow client's readers beyond its share waited, then 503" "$busy" 3
    for i in "${slow[@]}"; do kill -KILL "$i" 2>/dev/null; wait "$i" 2>/dev/null; done
    BG_PIDS=()
    api_stop
}

# Readers that stop reading, one per address (so the share does not apply):
# connection_timeout drops them, their places come back.
review_13_gone_frees_places() {
    db_and_api "max_large_transfers = 2"
    api_curl -s -o /dev/null -u bobross:password123 "$U/users/create_account"
    head -c $((4 * 1024 * 1024)) /dev/urandom >"$WORK/big"
    local code t i round
    code=$(api_curl -s -o /dev/null -w '%{http_code}' -u bobross:password123 -X PUT \
        -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/big" "$U/documents/41")
    t_eq "a 4 MiB document is stored" "$code" 201
    # Clients that send a large GET and reset the connection while it waits
    # for a place (suspended): MHD sees it only once the answer is ready. Before the
    # fix each such answer kept its large place for good: two of them and no
    # large document was served again.
    for round in 1 2 3; do
        for i in 1 2 3 4 5 6; do
            python3 - "$API_PORT" "$C" <<'EOF2' &
import base64, socket, ssl, struct, sys, time
port, certs = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=certs + "/ca.crt")
ctx.load_cert_chain(certs + "/proxy.crt", certs + "/proxy.key")
raw = socket.create_connection(("127.0.0.1", port))
s = ctx.wrap_socket(raw, server_hostname="localhost")
auth = base64.b64encode(b"bobross:password123").decode()
s.sendall(("GET /documents/41/content HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic %s\r\n"
           "\r\n" % auth).encode())
time.sleep(0.3)  # queued behind the others (one client address: one place at a time)
raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
raw.close()  # a reset, as nginx gives up on an upstream whose client left
EOF2
            BG_PIDS+=($!)
        done
        for i in "${BG_PIDS[@]}"; do wait "$i" 2>/dev/null; done
        BG_PIDS=()
        sleep 0.5
    done
    out=$(api_curl -s -o "$WORK/fast" -w '%{http_code} %{time_total}' --max-time 30 \
        -u bobross:password123 "$U/documents/41/content")
    read -r code t <<<"$out"
    t_eq "after 18 clients left mid-request, a large GET is served" "$code" 200
    t_true "  at once, not after the large-place wait (${t}s < 5s)" awk -v t="$t" 'BEGIN{exit !(t < 5)}'
    t_true "  with the document's bytes" cmp -s "$WORK/fast" "$WORK/big"
    api_stop
}

review_12_large_stalled() {
    db_and_api "max_large_transfers = 4" "connection_timeout = 3" "drain_timeout = 1"
    api_curl -s -o /dev/null -u bobross:password123 "$U/users/create_account"
    head -c $((12 * 1024 * 1024)) /dev/urandom >"$WORK/big"
    local code t i
    code=$(api_curl -s -o /dev/null -w '%{http_code}' -u bobross:password123 -X PUT \
        -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/big" "$U/documents/40")
    t_eq "a 12 MiB document is stored" "$code" 201
    for i in 1 2 3 4; do
        python3 - "$API_PORT" "$C" "198.51.100.$i" >"$WORK/stall.$i" 2>&1 <<'EOF2' &
import base64, socket, ssl, sys, time
port, certs, ip = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=certs + "/ca.crt")
ctx.load_cert_chain(certs + "/proxy.crt", certs + "/proxy.key")
raw = socket.socket()
raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
raw.connect(("127.0.0.1", port))
s = ctx.wrap_socket(raw, server_hostname="localhost")
auth = base64.b64encode(b"bobross:password123").decode()
s.sendall(("GET /documents/40/content HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic %s\r\n"
           "X-Real-IP: %s\r\n\r\n" % (auth, ip)).encode())
print("first bytes", len(s.recv(1024)), flush=True)
time.sleep(40)  # and read nothing more
EOF2
        BG_PIDS+=($!)
    done
    for _ in $(seq 1 50); do
        [ "$(cat "$WORK"/stall.* | grep -c 'first bytes')" -ge 4 ] && break
        sleep 0.1
    done
    t_eq "four stalled readers got their answers started" "$(cat "$WORK"/stall.* | grep -c 'first bytes')" 4
    out=$(api_curl -s -o "$WORK/fast" -w '%{http_code} %{time_total}' --max-time 60 \
        -u bobross:password123 -H 'X-Real-IP: 203.0.113.9' "$U/documents/40/content")
    read -r code t <<<"$out"
    t_eq "a fifth client's large GET is served once they are dropped" "$code" 200
    t_true "  within the large-place wait (${t}s < 10s)" awk -v t="$t" 'BEGIN{exit !(t < 10)}'
    for i in "${BG_PIDS[@]}"; do kill -KILL "$i" 2>/dev/null; wait "$i" 2>/dev/null; done
    BG_PIDS=()
    api_stop
}

review_12_readyz_cache() {
    db_and_api
    local before after i code
    code=$(api_curl -s -o /dev/null -w '%{http_code}' "$U/readyz")
    t_eq "/readyz is 200" "$code" 200
    sleep 1.1
    before=$(mariadb_sql "$WORK/db" "SHOW GLOBAL STATUS LIKE 'Com_admin_commands'" | awk '{print $2}')
    for i in $(seq 1 40); do
        "${CURL[@]}" -s -o /dev/null "$U/readyz" &
        BG_PIDS+=($!)
    done
    for i in "${BG_PIDS[@]}"; do wait "$i" 2>/dev/null; done
    BG_PIDS=()
    after=$(mariadb_sql "$WORK/db" "SHOW GLOBAL STATUS LIKE 'Com_admin_commands'" | awk '{print $2}')
    echo "# database pings for 40 concurrent /readyz: $((after - before))"
    t_true "40 concurrent /readyz made at most 3 pings ($((after - before)))" \
        test $((after - before)) -le 3
    t_eq "/readyz still answers ready" "$(api_curl -s "$U/readyz" | jq -r .status)" ready
    api_stop
}

review_consistency_realm() {
    db_and_api
    api_curl -s -o /dev/null -u bobross:password123 "$U/users/create_account"
    req api_curl GET "$U/users/me"
    t_eq "401 challenge" "$(header WWW-Authenticate)" 'Basic realm="confidoc", charset="UTF-8"'
    local out
    out=$(python3 - "$U/users/me" "$C" <<'EOF'
import ssl, sys, urllib.request
url, certs = sys.argv[1], sys.argv[2]
ctx = ssl.create_default_context(cafile=certs + "/ca.crt")
ctx.load_cert_chain(certs + "/proxy.crt", certs + "/proxy.key")
mgr = urllib.request.HTTPPasswordMgrWithDefaultRealm()
mgr.add_password(None, url, "bobross", "password123")
opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx),
                                     urllib.request.HTTPBasicAuthHandler(mgr))
try:
    with opener.open(url, timeout=20) as r:
        print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code)
EOF
)
    t_eq "urllib's HTTPBasicAuthHandler answers the challenge and logs in" "$out" '200 {"username":"bobross"}'
    api_stop
}

review_consistency_nul() {
    db_and_api
    api_curl -s -o /dev/null -u bobross:password123 "$U/users/create_account"
    api_curl -s -o /dev/null -u bobross:password123 -X PUT --data-binary x "$U/documents/31"
    local code
    code=$(api_curl -s -o "$WORK/b" -w '%{http_code}' -u bobross:password123 "$U/documents?limit=1%00abc")
    t_eq "GET /documents?limit=1%00abc is 422" "$code" 422
    t_eq "  with a JSON detail" "$(jq -r 'has("detail")' "$WORK/b" 2>/dev/null)" true
    code=$(api_curl -s -o /dev/null -w '%{http_code}' -u bobross:password123 "$U/documents?after=0%00")
    t_eq "GET /documents?after=0%00 is 422" "$code" 422
    code=$(api_curl -s -o /dev/null -w '%{http_code}' -u bobross:password123 "$U/documents?x%00=1")
    t_eq "a NUL in a query name is 422" "$code" 422
    code=$(api_curl -s -o /dev/null -w '%{http_code}' -u bobross:password123 "$U/documents/31%00x")
    t_eq "GET /documents/31%00x is 422 (not document 31)" "$code" 422
    code=$(api_curl -s -o /dev/null -w '%{http_code}' -u bobross:password123 "$U/documents?limit=1")
    t_eq "GET /documents?limit=1 is 200" "$code" 200
    api_stop
}

ALL="review_5_body_limit review_5_json_bounds review_5_rss_bounded review_9_mhd_wipe
review_10_content_disposition review_12_large_share review_12_large_stalled review_12_readyz_cache review_13_gone_frees_places
review_consistency_realm review_consistency_nul"
for t in ${1:-$ALL}; do
    case " $(echo $ALL) " in *" $t "*) ;; *) echo "not ok - unknown test $t"; exit 2 ;; esac
    echo "# $t"
    "$t"
done
t_watchdog_stop
t_finish
