# test_http.sh: the HTTPS server glue end to end (prog_http_echo driven with curl/openssl).
set -euo pipefail

SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${CONFIDOC_BUILD_DIR:-$SRC/build}
PROG=$BUILD/tests/prog_http_echo
# shellcheck source=../lib/certs.sh
source "$SRC/tests/lib/certs.sh"

TMP=$(mktemp -d /tmp/confidoc-http.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

FAILS=0
PASSES=0
ok() { PASSES=$((PASSES + 1)); echo "ok - $*"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }

certs_make "$TMP/c"
C=$TMP/c

# start_server NAME ARGS...: starts prog_http_echo, sets ${NAME}_PORT and ${NAME}_PID.
start_server() {
    local name=$1; shift
    "$PROG" --cert "$C/api.crt" --key "$C/api.key" --ca "$C/ca.crt" "$@" \
        >"$TMP/$name.out" 2>"$TMP/$name.err" &
    local pid=$!
    PIDS+=("$pid")
    local port=""
    for _ in $(seq 1 100); do
        port=$(awk '/^PORT /{print $2}' "$TMP/$name.out" 2>/dev/null || true)
        [ -n "$port" ] && break
        sleep 0.05
    done
    if [ -z "$port" ]; then echo "server $name did not start"; cat "$TMP/$name.err"; exit 1; fi
    printf -v "${name}_PORT" %s "$port"
    printf -v "${name}_PID" %s "$pid"
}

# cr PORT CERTNAME CURLARGS... : curl with a client certificate, bounded in time.
cr() {
    local port=$1 cert=$2; shift 2
    local certargs=()
    [ "$cert" != none ] && certargs=(--cert "$C/$cert.crt" --key "$C/$cert.key")
    curl -sS --max-time 20 --cacert "$C/ca.crt" "${certargs[@]}" "$@"
}

# A: default limits (16 MiB bodies), 3 s idle timeout. B: allow list, small limits.
start_server A --timeout 3 --drain 10
start_server B --allow "CN=confidoc-proxy" --max-body 1024 --max-header 2048 --max-inflight 1500 \
    --timeout 3
UA=https://127.0.0.1:$A_PORT
UB=https://127.0.0.1:$B_PORT

# --- mutual TLS -----------------------------------------------------------------
for v in 1.2 1.3; do
    out=$(cr "$A_PORT" proxy --tlsv$v --tls-max $v -H 'X-Test: abc' "$UA/echo?q=x%20y" \
        -d 'hello' -w '\n%{http_code} %{ssl_verify_result}') || true
    code=$(tail -n1 <<<"$out" | cut -d' ' -f1)
    body=$(head -n1 <<<"$out")
    check "TLS $v with the proxy certificate answers 200" [ "$code" = 200 ]
    check "TLS $v request seen whole" [ "$(jq -r '[.method,.path,.body_len,.x_test,.q,.client_subject,.peer]|join("|")' <<<"$body")" = "POST|/echo|5|abc|x y|CN=confidoc-proxy|127.0.0.1" ]
done
check "request id is 16 hex" grep -Eq '"request_id":"[0-9a-f]{16}"' <<<"$body"

code=$(cr "$A_PORT" none -o /dev/null -w '%{http_code}' "$UA/echo" 2>/dev/null || true)
check "no client certificate: no HTTP response" [ "$code" = 000 ]
code=$(cr "$A_PORT" none --tls-max 1.2 -o /dev/null -w '%{http_code}' "$UA/echo" 2>/dev/null || true)
check "no client certificate (TLS 1.2): no HTTP response" [ "$code" = 000 ]
code=$(cr "$A_PORT" rogue -o /dev/null -w '%{http_code}' "$UA/echo" 2>/dev/null || true)
check "certificate from a rogue CA: no HTTP response" [ "$code" = 000 ]
code=$(cr "$A_PORT" api -o /dev/null -w '%{http_code}' "$UA/echo" 2>/dev/null || true)
check "server-only certificate (no clientAuth) as client: refused" [ "$code" = 000 ]
code=$(cr "$A_PORT" other -o /dev/null -w '%{http_code}' "$UA/echo" || true)
check "other.crt accepted without an allow list" [ "$code" = 200 ]
code=$(cr "$B_PORT" proxy -o /dev/null -w '%{http_code}' "$UB/echo" || true)
check "allow list: proxy accepted" [ "$code" = 200 ]
code=$(cr "$B_PORT" other -o /dev/null -w '%{http_code}' "$UB/echo" 2>/dev/null || true)
check "allow list: other.crt refused" [ "$code" = 000 ]

s_client() { timeout 10 openssl s_client -connect "127.0.0.1:$A_PORT" -CAfile "$C/ca.crt" \
    -cert "$C/proxy.crt" -key "$C/proxy.key" "$@" </dev/null 2>&1 || true; }
check "TLS 1.2 handshake with openssl works" grep -q 'Protocol *: TLSv1.2' <<<"$(s_client -tls1_2)"
tls11=$(s_client -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0')
check "TLS 1.1 refused" bash -c 'grep -q CONNECTED <<<"$1" && grep -q "Cipher is (NONE)" <<<"$1"' _ "$tls11"
check "CBC suite refused (TLS 1.2)" bash -c '! grep -q "Cipher is ECDHE" <<<"$1"' _ \
    "$(s_client -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA256)"

# --- body limits ------------------------------------------------------------------
head -c 8192 /dev/zero | tr '\0' 'a' >"$TMP/8k"
head -c 4096 /dev/zero | tr '\0' 'b' >"$TMP/4k"
head -c 500 /dev/zero | tr '\0' 'c' >"$TMP/500"
head -c 600 /dev/zero | tr "\0" d >"$TMP/600"
hdrs=$TMP/h
out=$(cr "$B_PORT" proxy -D "$hdrs" -H 'Expect: 100-continue' --data-binary @"$TMP/8k" \
    "$UB/echo" -w '\n%{http_code}' || true)
check "Content-Length over the limit: 413" [ "$(tail -n1 <<<"$out")" = 413 ]
check "413 body is JSON detail" [ "$(head -n1 <<<"$out")" = '{"detail":"Request body too large"}' ]
check "413 closes the connection" grep -qi '^connection: close' "$hdrs"
check "413 has the security headers" bash -c 'grep -qi "^cache-control: no-store" "$1" && grep -qi "^x-content-type-options: nosniff" "$1" && grep -qi "^content-type: application/json" "$1"' _ "$hdrs"
check "413 answered before the body was read (in=0)" grep -q 'status=413 .* in=0 ' "$TMP/B.err"
code=$(cr "$B_PORT" proxy -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' \
    --data-binary @"$TMP/4k" "$UB/echo" || true)
check "chunked body over the limit: 413" [ "$code" = 413 ]
out=$(cr "$B_PORT" proxy -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/500" "$UB/echo" || true)
check "chunked body under the limit is buffered whole" [ "$(jq -r .body_len <<<"$out")" = 500 ]

big=$TMP/16m
head -c $((16 * 1024 * 1024)) /dev/urandom >"$big"
out=$(cr "$A_PORT" proxy --data-binary @"$big" "$UA/echo" -w '\n%{http_code}' || true)
check "16 MiB body accepted" [ "$(tail -n1 <<<"$out")" = 200 ]
check "16 MiB body arrives whole" [ "$(head -n1 <<<"$out" | jq -r .body_len)" = 16777216 ]
printf x >>"$big"
code=$(cr "$A_PORT" proxy -o /dev/null -w '%{http_code}' --data-binary @"$big" "$UA/echo" || true)
check "16 MiB + 1 refused with 413" [ "$code" = 413 ]
rm -f "$big"

# --- header limits ----------------------------------------------------------------
long=$(head -c 3000 /dev/zero | tr '\0' 'h')
out=$(cr "$B_PORT" proxy -D "$hdrs" -H "X-Long: $long" "$UB/echo" -w '\n%{http_code}' || true)
check "headers over max_header_bytes: 431" [ "$(tail -n1 <<<"$out")" = 431 ]
check "431 has the security headers" grep -qi '^x-content-type-options: nosniff' "$hdrs"
huge=$(head -c 30000 /dev/zero | tr '\0' 'h')
code=$(cr "$B_PORT" proxy -o /dev/null -w '%{http_code}' -H "X-Long: $huge" "$UB/echo" || true)
check "headers far over the limit: 431" [ "$code" = 431 ]

# --- responses and access log --------------------------------------------------------
code=$(cr "$A_PORT" proxy -D "$hdrs" -o /dev/null -w '%{http_code}' "$UA/teapot" || true)
check "handler status passed through" [ "$code" = 418 ]
check "handler response has the security headers" bash -c 'grep -qi "^cache-control: no-store" "$1" && grep -qi "^x-content-type-options: nosniff" "$1" && grep -qi "^x-echo: yes" "$1"' _ "$hdrs"
cr "$A_PORT" proxy -o /dev/null --data-binary 'SECRET-BODY-MARKER' "$UA/echo?q=SECRET-QUERY" || true
# The line is written when the request completes, which can be just after the
# client has its answer: wait for it (bounded) instead of racing it.
logged() {
    for _ in $(seq 1 50); do
        grep -Eq "$1" "$2" && return 0
        sleep 0.1
    done
    return 1
}
check "access log line written" logged 'req=[0-9a-f]{16} method=POST route=/echo status=200 ms=[0-9.]+ in=18 out=[0-9]+' "$TMP/A.err"
check "no body, query or client address in the log" bash -c '! grep -q "SECRET\|127\.0\.0\.1\|confidoc-proxy" "$1"' _ "$TMP/A.err"

# --- slow clients -------------------------------------------------------------------
# (openssl s_client does not notice a server-side close while its stdin stays
# open, so a few lines of Python hold the TLS connection and time the close.)
slow_client() {
    local port=${2:-$A_PORT}
    timeout 15 python3 - "$port" "$C" "$1" <<'PY'
import socket, ssl, sys, time
port, certs, send = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode()
ctx = ssl.create_default_context(cafile=certs + "/ca.crt")
ctx.load_cert_chain(certs + "/proxy.crt", certs + "/proxy.key")
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
s.settimeout(10)
t0 = time.monotonic()
if send:
    s.sendall(send.replace(b"|", b"\r\n"))
try:
    data = s.recv(100)
except Exception:
    data = b"?"
print("%.1f %d" % (time.monotonic() - t0, len(data)))
PY
}
res=$(slow_client "")
check "idle TLS client disconnected after the 3 s timeout ($res)" \
    awk -v r="$res" 'BEGIN { split(r, a, " "); exit !(a[1] >= 2.5 && a[1] < 6 && a[2] == 0) }'
res=$(slow_client "GET /echo HTTP/1.1|Host: x|")
check "half a request disconnected after the 3 s timeout ($res)" \
    awk -v r="$res" 'BEGIN { split(r, a, " "); exit !(a[1] >= 2.5 && a[1] < 6 && a[2] == 0) }'

# A body announced but not sent holds its share of the in-flight budget.
slow_client "POST /echo HTTP/1.1|Host: x|Content-Length: 1000||" "$B_PORT" >/dev/null &
holder=$!
# The slow client needs a moment (more under sanitizers) to finish its
# handshake and headers; until then the budget is free and we get 200.
for _ in $(seq 1 20); do
    sleep 0.5
    code=$(cr "$B_PORT" proxy -D "$hdrs" -o /dev/null -w '%{http_code}' --data-binary @"$TMP/600" \
        -H 'Content-Type: text/plain' "$UB/echo" || true)
    [ "$code" = 503 ] && break
done
check "in-flight body budget exceeded: 503" [ "$code" = 503 ]
check "503 says Retry-After: 1" grep -qi '^retry-after: 1' "$hdrs"
wait "$holder" || true
code=$(cr "$B_PORT" proxy -o /dev/null -w '%{http_code}' --data-binary @"$TMP/500" "$UB/echo" || true)
check "budget returned once the slow request is gone" [ "$code" = 200 ]

# --- concurrency --------------------------------------------------------------------
for i in $(seq 1 30); do
    cr "$A_PORT" proxy -o /dev/null -w '%{http_code}\n' "$UA/sleep?ms=300" >"$TMP/par.$i" 2>&1 &
done
wait_ok=0
for i in $(seq 1 30); do
    for _ in $(seq 1 100); do [ -s "$TMP/par.$i" ] && break; sleep 0.1; done
    [ "$(cat "$TMP/par.$i")" = 200 ] && wait_ok=$((wait_ok + 1))
done
check "30 concurrent requests all answered 200 ($wait_ok)" [ "$wait_ok" = 30 ]

# --- drain on SIGTERM ---------------------------------------------------------------
cr "$A_PORT" proxy -o /dev/null -w '%{http_code}' "$UA/sleep?ms=1500" >"$TMP/drain" 2>&1 &
curl_pid=$!
sleep 0.5
kill -TERM "$A_PID"
sleep 0.3
code=$(cr "$A_PORT" proxy -o /dev/null -w '%{http_code}' --max-time 3 "$UA/echo" 2>/dev/null || true)
check "no new connection accepted while draining" [ "$code" = 000 ]
wait "$curl_pid" || true
check "request in flight at SIGTERM completes with 200" [ "$(cat "$TMP/drain")" = 200 ]
rc=0
for _ in $(seq 1 100); do kill -0 "$A_PID" 2>/dev/null || break; sleep 0.1; done
wait "$A_PID" || rc=$?
check "server exits 0 after draining" [ "$rc" = 0 ]
code=$(cr "$A_PORT" proxy -o /dev/null -w '%{http_code}' --max-time 3 "$UA/echo" 2>/dev/null || true)
check "nothing listens after stop" [ "$code" = 000 ]

kill -TERM "$B_PID"
rc=0
wait "$B_PID" || rc=$?
check "second server exits 0" [ "$rc" = 0 ]

if [ "$FAILS" -ne 0 ]; then
    echo "--- server A log"; tail -n 40 "$TMP/A.err"
    echo "--- server B log"; tail -n 40 "$TMP/B.err"
fi
echo "$PASSES passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
