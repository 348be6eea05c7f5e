#!/usr/bin/env bash
# test_metrics.sh: confidoc-api's /metrics against a real MariaDB: its own
# listener (mutual TLS with a CA of its own: a client without a certificate,
# or with one of another CA, gets nothing), exact counter deltas for known
# requests, histogram invariants, the format checked strictly (promtool when
# installed, and tests/lib/prom_check.py always), no label value holding a
# username, an address or a document id, and no /metrics on the main port;
# with log_format = json every log line is a JSON object.
set -uo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/tests/lib/testlib.sh"
. "$SRC/tests/lib/certs.sh"
. "$SRC/tests/lib/mariadb.sh"
. "$SRC/tests/lib/api.sh"

WORK=$(mktemp -d /tmp/confidoc-metrics-test.XXXXXX)
chmod 755 "$WORK"
cleanup() {
    api_kill
    mariadb_stop "$WORK/db" >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT
t_watchdog 200
trap 't_watchdog_stop; cleanup' EXIT

C=$WORK/certs
certs_make "$C" || exit 1
# The scraper's own CA and certificate (Prometheus in the chart).
_certs_ca "$C" metrics-ca "confidoc metrics CA"
_certs_leaf "$C" scraper prometheus metrics-ca client
mariadb_start "$WORK/db" "$C" || exit 1
export CONFIDOC_RATE_LIMIT=1000000
MPORT=$(free_port)
api_start "$WORK/api" "$C" "metrics_listen_addr = 127.0.0.1" "metrics_port = $MPORT" \
    "metrics_tls_ca = $C/metrics-ca.crt" "log_format = json" || exit 1
MURL=https://localhost:$MPORT/metrics

scrape_curl() {
    curl --max-time 10 --cacert "$C/ca.crt" --cert "$C/scraper.crt" --key "$C/scraper.key" "$@"
}
# scrape FILE: the exposition into FILE; fails unless 200.
scrape() {
    local code
    code=$(scrape_curl -s -o "$1" -w '%{http_code}' "$MURL") && [ "$code" = 200 ]
}
# val FILE 'name{labels}': the sample's value (0 when absent).
val() {
    awk -v k="$2" 'index($0, k " ") == 1 { v = $NF } END { print (v == "" ? 0 : v) }' "$1"
}
delta() { echo $(($(val "$2" "$3") - $(val "$1" "$3"))); }

USER_NAME=metricsuser$$
PASS=password123
DOC_ID=987654321
AU=(-u "$USER_NAME:$PASS")

echo "# the listener: mutual TLS with its own CA, GET /metrics only"
t_true "a scrape with the scraper's certificate is 200" scrape "$WORK/m0"
req scrape_curl GET "$MURL"
t_contains "Content-Type is the exposition format 0.0.4" "$(header content-type)" "version=0.0.4"
t_true "no client certificate: refused" bash -c \
    '! curl -s --max-time 5 --cacert "$1/ca.crt" "$2" >/dev/null 2>&1' _ "$C" "$MURL"
t_true "a certificate of the API's client CA (not the metrics CA): refused" bash -c \
    '! curl -s --max-time 5 --cacert "$1/ca.crt" --cert "$1/proxy.crt" --key "$1/proxy.key" "$2" >/dev/null 2>&1' \
    _ "$C" "$MURL"
req scrape_curl POST "$MURL" -d x=1
t_eq "POST /metrics is 405" "$STATUS" 405
t_eq "405 names GET in Allow" "$(header allow)" GET
req scrape_curl GET "https://localhost:$MPORT/users/me"
t_eq "any other path on the metrics listener is 404" "$STATUS" 404
req api_curl GET "$API_URL/metrics"
t_eq "the main API port does not serve /metrics (404)" "$STATUS" 404
t_not_contains "the main API port's answer holds no exposition" "$BODY" "# TYPE"

echo "# known requests move the counters by exactly what they are"
req api_curl GET "$API_URL/users/create_account" "${AU[@]}"
t_eq "account created" "$STATUS" 201
scrape "$WORK/m1" || t_fail "scrape before"
for _ in 1 2 3; do
    req api_curl GET "$API_URL/users/me" "${AU[@]}"
    t_eq "GET /users/me is 200" "$STATUS" 200
done
req api_curl GET "$API_URL/users/me"
t_eq "GET /users/me without a credential is 401" "$STATUS" 401
req api_curl GET "$API_URL/documents/$DOC_ID" "${AU[@]}"
t_eq "GET of a missing document is 404" "$STATUS" 404
req api_curl GET "$API_URL/no/such/path/$USER_NAME"
t_eq "an unknown path is 404" "$STATUS" 404
scrape "$WORK/m2" || t_fail "scrape after"
R='confidoc_http_requests_total{route="/users/me",method="GET",status='
t_eq "requests_total /users/me GET 200: +3" "$(delta "$WORK/m1" "$WORK/m2" "${R}\"200\"}")" 3
t_eq "requests_total /users/me GET 401: +1" "$(delta "$WORK/m1" "$WORK/m2" "${R}\"401\"}")" 1
t_eq "requests_total /documents/{record_id} GET 404: +1" "$(delta "$WORK/m1" "$WORK/m2" \
    'confidoc_http_requests_total{route="/documents/{record_id}",method="GET",status="404"}')" 1
t_eq "requests_total route none GET 404: +1" "$(delta "$WORK/m1" "$WORK/m2" \
    'confidoc_http_requests_total{route="none",method="GET",status="404"}')" 1
t_eq "duration histogram /users/me: _count +4" "$(delta "$WORK/m1" "$WORK/m2" \
    'confidoc_http_request_duration_seconds_count{route="/users/me"}')" 4
t_eq "duration histogram /users/me: +Inf bucket +4" "$(delta "$WORK/m1" "$WORK/m2" \
    'confidoc_http_request_duration_seconds_bucket{route="/users/me",le="+Inf"}')" 4
t_eq "scrapes are not counted as API requests" "$(grep -c 'route="/metrics"' "$WORK/m2")" 0
dbn=$(delta "$WORK/m1" "$WORK/m2" 'confidoc_db_round_trip_seconds_count{op="execute"}')
t_true "database round trips were counted ($dbn)" test "$dbn" -ge 1
t_true "the account's Argon2id was timed" test \
    "$(val "$WORK/m2" confidoc_argon2_hash_seconds_count)" -ge 1
t_eq "nothing waits for an Argon2id slot now" "$(val "$WORK/m2" confidoc_argon2_queue_length)" 0
t_eq "in flight now: none" "$(val "$WORK/m2" confidoc_http_requests_in_flight)" 0
t_true "process_start_time_seconds is a recent epoch time" awk -v t="$(val "$WORK/m2" \
    process_start_time_seconds)" -v now="$(date +%s)" 'BEGIN { exit !(t > now - 600 && t <= now + 1) }'

echo "# the format, strictly"
t_true "prom_check.py accepts the exposition (buckets cumulative, +Inf == _count)" \
    python3 "$SRC/tests/lib/prom_check.py" "$WORK/m2"
printf 'x_total{a="1"} 1\n# TYPE x_total counter\n' >"$WORK/bad1"
t_true "prom_check.py refuses a sample before its TYPE" bash -c '! python3 "$1" "$2" 2>/dev/null' \
    _ "$SRC/tests/lib/prom_check.py" "$WORK/bad1"
printf '# TYPE h histogram\nh_bucket{le="1"} 5\nh_bucket{le="+Inf"} 4\nh_sum 1\nh_count 4\n' >"$WORK/bad2"
t_true "prom_check.py refuses buckets that are not cumulative" bash -c \
    '! python3 "$1" "$2" 2>/dev/null' _ "$SRC/tests/lib/prom_check.py" "$WORK/bad2"
if command -v promtool >/dev/null; then
    out=$(promtool check metrics <"$WORK/m2" 2>&1)
    t_eq "promtool check metrics: no problem" "$?:$out" "0:"
else
    echo "# promtool not installed (Debian package prometheus): prom_check.py only"
fi

echo "# no label value identifies a user, an address or a document"
labels=$(grep -v '^#' "$WORK/m2" | grep -o '{[^}]*}' | sort -u)
t_not_contains "no username in a label" "$labels" "$USER_NAME"
t_not_contains "no document id in a label" "$labels" "$DOC_ID"
t_not_contains "no address in a label" "$labels" "127.0.0.1"
t_not_contains "no host name in a label" "$labels" "localhost"
t_not_contains "nothing of the unknown path in a label" "$labels" "no/such"
t_eq "every route label is a router pattern or none" "$(grep -o 'route="[^"]*"' "$WORK/m2" |
    sort -u | grep -cvE 'route="(none|/[a-z_/{}-]*)"')" 0

echo "# log_format = json: one JSON object a line, the same fields"
t_true "every log line parses as a JSON object" python3 -c '
import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    assert isinstance(o, dict) and {"ts", "prog", "level", "msg"} <= o.keys(), line
' "$API_LOG"
t_eq "the access lines of the 3 GET /users/me 200 are there, with their route pattern" \
    "$(grep -c '"route":"/users/me","status":200' "$API_LOG")" 3
t_not_contains "no username in the log" "$(cat "$API_LOG")" "$USER_NAME"

rc=0; api_stop || rc=$?
t_eq "confidoc-api stops with status 0 (both listeners drained)" "$rc" 0
t_finish
