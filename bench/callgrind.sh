#!/usr/bin/env bash
# callgrind.sh: user-space instructions per request of confidoc-api, counted with
# valgrind's callgrind (issue 13). Exact and repeatable, unlike times: the figure to
# optimise against. Run alone or from bench/run.sh (`make bench`), after the wrk cases.
#
#   bash bench/callgrind.sh [--keep DIR] [--requests N1,N2] [CASE...]
#
# CASE: get_1k (GET /documents/1 of a 1 KiB document), users_me (GET /users/me),
# create_document_1k (POST /documents/create_document with 1 KiB of content, a new
# record id each time); default: all three. Prints one JSON object on stdout,
# {"get_1k": 123456, ...}: instructions per request, rounded. Progress goes to stderr.
#
# Method (../shared/MACHINE-NOTES.md): its own MariaDB, memcached and certificates
# (tests/lib/*.sh), the data made once by a plain confidoc-api; then, per case and per
# N in N1, N2, a fresh confidoc-api of the release build under
# `valgrind --tool=callgrind`, N keep-alive requests on ONE connection straight to the
# API (one `curl -K FILE` with N `url =` lines), with mutual TLS and the headers nginx
# sends (the proxy's client certificate, Host: localhost, X-Real-IP), then SIGTERM and
# the `totals:` line of the callgrind output. (I2 - I1) / (N2 - N1) is the cost of one
# request: start-up, the first request's Argon2id and shut-down cancel out. Every
# answer's status is checked (2xx, and one connection in all), so a run of errors is
# never counted. The rate limit is raised, the timeouts are generous (valgrind is ~50x
# slower) and the credential cache's TTL is longer than a run, as in steady state.
#
# Options:
#   --keep DIR        keep the callgrind output files in DIR (CASE-N.callgrind.out), for
#                     callgrind_annotate --inclusive=yes|no DIR/get_1k-1500.callgrind.out,
#                     and write DIR/CASE.per-request.txt: the functions by instructions
#                     per request, self and inclusive (the difference of the two runs)
#   --requests N1,N2  the two run lengths (default 500,1500; 1 <= N1 < N2 <= 100000)
# Environment:
#   CONFIDOC_BUILD_DIR   the build holding confidoc-api (default build/, built in release
#                        (RelWithDebInfo) if it has no confidoc-api)
#   CALLGRIND_TIMEOUT    seconds for the whole script (default 1800)
set -euo pipefail
umask 022

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
ALL_CASES="get_1k users_me create_document_1k"
KEEP=
N1=500 N2=1500
CASES=()
TOTAL_TIMEOUT=${CALLGRIND_TIMEOUT:-1800}

say() { echo "callgrind: $*" >&2; }
die() {
    echo "callgrind: error: $*" >&2
    exit 1
}
usage() {
    echo "usage: bash bench/callgrind.sh [--keep DIR] [--requests N1,N2] [CASE...] (cases: $ALL_CASES)" >&2
    exit 2
}
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

while [ $# -gt 0 ]; do
    case $1 in
    --keep)
        [ $# -ge 2 ] || usage
        KEEP=$2
        shift 2
        ;;
    --requests)
        [ $# -ge 2 ] || usage
        [[ $2 =~ ^([0-9]+),([0-9]+)$ ]] || die "--requests N1,N2: two numbers"
        N1=${BASH_REMATCH[1]} N2=${BASH_REMATCH[2]}
        shift 2
        ;;
    -h | --help) usage ;;
    -*) usage ;;
    *)
        case " $ALL_CASES " in *" $1 "*) ;; *) die "unknown case '$1' (cases: $ALL_CASES)" ;; esac
        CASES+=("$1")
        shift
        ;;
    esac
done
[ ${#CASES[@]} -gt 0 ] || read -r -a CASES <<<"$ALL_CASES"
[ "$N1" -ge 1 ] && [ "$N1" -lt "$N2" ] && [ "$N2" -le 100000 ] ||
    die "--requests $N1,$N2: need 1 <= N1 < N2 <= 100000"
is_uint "$TOTAL_TIMEOUT" && [ "$TOTAL_TIMEOUT" -ge 60 ] && [ "$TOTAL_TIMEOUT" -le 86400 ] ||
    die "CALLGRIND_TIMEOUT=$TOTAL_TIMEOUT: seconds from 60 to 86400"
for t in valgrind curl jq openssl ss mariadbd mariadb-install-db memcached; do
    command -v "$t" >/dev/null 2>&1 || die "missing program $t (run: sudo bash scripts/install-deps.sh --bench)"
done
if [ -n "$KEEP" ]; then
    mkdir -p "$KEEP" && KEEP=$(cd "$KEEP" && pwd -P) || die "cannot create $KEEP"
fi

# ---------------------------------------------------------------- the build

BUILD_DIR=${CONFIDOC_BUILD_DIR:-$SRC/build}
if [ ! -x "$BUILD_DIR/confidoc-api" ]; then
    [ -z "${CONFIDOC_BUILD_DIR:-}" ] || die "no confidoc-api in CONFIDOC_BUILD_DIR=$BUILD_DIR"
    say "building confidoc-api (release) in $BUILD_DIR"
    log=$(mktemp /tmp/confidoc-callgrind-build.XXXXXX)
    { cmake -S "$SRC" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
        cmake --build "$BUILD_DIR" -j "$(nproc)" --target confidoc-api; } >"$log" 2>&1 ||
        { tail -n 40 "$log" >&2; rm -f "$log"; die "build failed"; }
    rm -f "$log"
fi
export CONFIDOC_BUILD_DIR=$BUILD_DIR

# ---------------------------------------------------------------- state, tear-down

WORK=$(mktemp -d /tmp/confidoc-callgrind.XXXXXX)
# MariaDB runs as mysql and memcached as memcache when root: they must traverse it.
chmod 0711 "$WORK"
WATCHDOG_PID=
# shellcheck source=../tests/lib/certs.sh
. "$SRC/tests/lib/certs.sh"
# shellcheck source=../tests/lib/mariadb.sh
. "$SRC/tests/lib/mariadb.sh"
# shellcheck source=../tests/lib/memcached.sh
. "$SRC/tests/lib/memcached.sh"
# shellcheck source=../tests/lib/api.sh
. "$SRC/tests/lib/api.sh"

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    api_kill
    memcached_stop "$WORK/mc" >/dev/null 2>&1 || true
    mariadb_stop "$WORK/db" >/dev/null 2>&1 || true
    if [ -n "$WATCHDOG_PID" ]; then
        kill "$WATCHDOG_PID" 2>/dev/null || true
        wait "$WATCHDOG_PID" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ] && [ -n "$KEEP" ]; then
        cp "$WORK"/api/*.log "$WORK"/*.codes "$KEEP/" 2>/dev/null || true
        say "failed; logs kept in $KEEP"
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'say "stopped after ${TOTAL_TIMEOUT}s (CALLGRIND_TIMEOUT)"; exit 124' TERM
# The whole run is bounded: the watchdog sends this shell SIGTERM (its trap cleans up).
(
    sleep "$TOTAL_TIMEOUT" &
    sleeper=$!
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    wait "$sleeper" && kill -TERM $$ 2>/dev/null
) </dev/null >/dev/null 2>&1 &
WATCHDOG_PID=$!

C=$WORK/certs
certs_make "$C" || die "cannot make certificates"
say "starting MariaDB and memcached in $WORK"
mariadb_start "$WORK/db" "$C" >&2 || die "MariaDB did not start"
memcached_start "$WORK/mc" "$C" >&2 || die "memcached did not start"

# What the stack's api.conf says (scripts/stack.sh), on test certificates; then what
# counting needs: the rate limit raised, timeouts for a process ~50x slower, and the
# credential cache kept for the whole run (steady state: one Argon2id per run, which
# cancels out).
API_LINES=(
    "allowed_client_subjects = CN=confidoc-proxy"
    "memcached_servers = 127.0.0.1:$MEMCACHED_PORT"
    "lockout_memcached_servers = 127.0.0.1:$MEMCACHED_PORT"
    "memcached_server_name = localhost"
    "memcached_tls_ca = $C/ca.crt"
    "memcached_tls_cert = $C/mc-client.crt"
    "memcached_tls_key = $C/mc-client.key"
    "rate_limit = 100000000"
    "db_pool_size = 4"
    "db_connect_timeout = 60"
    "db_io_timeout = 600"
    "db_acquire_timeout_ms = 60000"
    "memcached_timeout_ms = 10000"
    "memcached_connect_timeout_ms = 10000"
    "connection_timeout = 3600"
    "drain_timeout = 120"
    "auth_cache_ttl = 3600"
    "auth_cache_max_age = 86400"
    "log_level = warn"
)
# shellcheck disable=SC2034 # read by tests/lib/api.sh
API_START_TIMEOUT=300 API_STOP_TIMEOUT=300

# ---------------------------------------------------------------- the data

USER=callgrind-$RANDOM$RANDOM
PASS=callgrind-password-$RANDOM$RANDOM$RANDOM
AUTH="Basic $(printf '%s:%s' "$USER" "$PASS" | base64 -w0)"
DOC_1K=1
head -c 768 /dev/urandom | base64 -w0 | tr '+/' '-_' >"$WORK/body-1k.txt"
[ "$(wc -c <"$WORK/body-1k.txt")" -eq 1024 ] || die "internal: 1 KiB body has the wrong size"
CONTENT=$(cat "$WORK/body-1k.txt")

say "creating the user and the 1 KiB document (plain confidoc-api)"
# shellcheck disable=SC2034 # read by tests/lib/api.sh
API_EXEC_PREFIX=()
api_start "$WORK/api" "$C" "${API_LINES[@]}" >&2 || die "confidoc-api did not start"
code=$(api_curl -s -o /dev/null -w '%{http_code}' -H 'X-Real-IP: 127.0.0.1' -X POST \
    -H "Authorization: $AUTH" "$API_URL/users/create_account")
[ "$code" = 201 ] || die "cannot create the account (HTTP $code)"
code=$(api_curl -s -o /dev/null -w '%{http_code}' -H 'X-Real-IP: 127.0.0.1' -X POST \
    -H "Authorization: $AUTH" -H 'Content-Type: application/json' \
    --data-binary "{\"record_id\":$DOC_1K,\"content\":\"$CONTENT\"}" "$API_URL/documents/create_document")
[ "$code" = 200 ] || die "cannot create the 1 KiB document (HTTP $code)"
api_curl -s -o "$WORK/get-1k.json" -H 'X-Real-IP: 127.0.0.1' -H "Authorization: $AUTH" \
    "$API_URL/documents/$DOC_1K"
jq -e --arg c "$CONTENT" '.content == $c' "$WORK/get-1k.json" >/dev/null ||
    die "the 1 KiB document does not read back identical"
api_stop || die "confidoc-api did not stop cleanly"

# ---------------------------------------------------------------- one counted run

# write_config CASE N RUN FILE: the curl config of N requests of CASE on one
# connection. Options before the first url apply to all of them; create_document's
# bodies differ, so each of its requests is its own group (`next`), which curl still
# sends on the same connection.
write_config() {
    local name=$1 n=$2 run=$3 f=$4 i common
    common=$(
        echo "silent"
        echo "show-error"
        echo "max-time = 1800"
        echo "cacert = \"$C/ca.crt\""
        echo "cert = \"$C/proxy.crt\""
        echo "key = \"$C/proxy.key\""
        # What nginx's location / sends (deploy/nginx/nginx.conf.in): HTTP/1.1, Host,
        # X-Real-IP, the client's Authorization; curl's own headers removed.
        echo "http1.1"
        echo "header = \"Host: localhost\""
        echo "header = \"X-Real-IP: 127.0.0.1\""
        echo "header = \"Authorization: $AUTH\""
        echo "header = \"User-Agent:\""
        echo "header = \"Accept:\""
        echo "write-out = \"%{http_code} %{num_connects}\\n\""
    )
    {
        case $name in
        get_1k | users_me)
            echo "$common"
            local path=/users/me
            [ "$name" = users_me ] || path=/documents/$DOC_1K
            for ((i = 0; i < n; i++)); do
                echo "url = \"$API_URL$path\""
                echo "output = \"/dev/null\""
            done
            ;;
        create_document_1k)
            for ((i = 1; i <= n; i++)); do
                [ "$i" = 1 ] || echo "next"
                echo "$common"
                echo "header = \"Content-Type: application/json\""
                # A new record id per request and per run (a reused one is a 409).
                echo "data-binary = \"{\\\"record_id\\\":$((run * 1000000 + i)),\\\"content\\\":\\\"$CONTENT\\\"}\""
                echo "url = \"$API_URL/documents/create_document\""
                echo "output = \"/dev/null\""
            done
            ;;
        esac
    } >"$f"
}

RUN=0
TOTAL=
# count CASE N: sets TOTAL to the instructions of a fresh confidoc-api under callgrind
# that served N requests of CASE on one connection, then stopped. (Not in a $(...)
# subshell: the EXIT trap, which stops the API, must see its PID.)
count() {
    local name=$1 n=$2 out cfg codes want=200 got bad conns total curl_pid
    RUN=$((RUN + 1))
    out=$WORK/$name-$n.callgrind.out
    cfg=$WORK/$name-$n.curl
    codes=$WORK/$name-$n.codes
    write_config "$name" "$n" "$RUN" "$cfg"
    rm -f "$WORK/api/api.log"
    # shellcheck disable=SC2034 # read by tests/lib/api.sh
    API_EXEC_PREFIX=(valgrind -q --tool=callgrind "--callgrind-out-file=$out")
    api_start "$WORK/api" "$C" "${API_LINES[@]}" >&2 || die "confidoc-api under callgrind did not start"
    # In the background, so that the watchdog's SIGTERM is handled at once.
    timeout 1800 curl -K "$cfg" >"$codes" &
    curl_pid=$!
    wait "$curl_pid" || die "curl failed in $name ($n requests; see $codes)"
    api_stop >&2 || die "confidoc-api under callgrind did not stop cleanly ($name, $n requests)"
    got=$(wc -l <"$codes")
    bad=$(awk -v w="$want" '$1 != w' "$codes" | sort | uniq -c | head -n 5 | tr '\n' ';')
    conns=$(awk '{ c += $2 } END { print c + 0 }' "$codes")
    [ "$got" -eq "$n" ] || die "$name: $got answers to $n requests"
    [ -z "$bad" ] || die "$name: answers other than $want (count, status, connects): $bad"
    [ "$conns" -eq 1 ] || die "$name: $conns connections for $n requests (keep-alive broken)"
    total=$(sed -n 's/^totals:[[:space:]]*\([0-9]*\).*/\1/p' "$out" | head -n 1)
    [ -n "$total" ] || total=$(sed -n 's/^summary:[[:space:]]*\([0-9]*\).*/\1/p' "$out" | head -n 1)
    is_uint "$total" && [ "$total" -gt 0 ] || die "$name: no totals in $out"
    [ -z "$KEEP" ] || cp "$out" "$KEEP/"
    say "$(printf '%-20s %6d requests: %15d instructions' "$name" "$n" "$total")"
    TOTAL=$total
}

# per_request_profile CASE: DIR/CASE.per-request.txt, the functions by instructions per
# request, self and inclusive: (the N2 run's figure - the N1 run's) / (N2 - N1), so that
# start-up drops out of the profile as it does of the total.
per_request_profile() {
    local name=$1 inc f1 f2
    f1=$KEEP/$name-$N1.callgrind.out f2=$KEEP/$name-$N2.callgrind.out
    [ -s "$f1" ] && [ -s "$f2" ] || { say "no per-request profile for $name (no outputs)"; return 0; }
    {
        echo "# $name: confidoc-api instructions per request by function, ($N2-request run - $N1-request run) / $((N2 - N1))"
        for inc in no yes; do
            echo
            echo "## $([ "$inc" = no ] && echo self || echo inclusive), top 40"
            {
                callgrind_annotate --auto=no --inclusive="$inc" --threshold=100 "$f1" | sed 's/^/1 /'
                callgrind_annotate --auto=no --inclusive="$inc" --threshold=100 "$f2" | sed 's/^/2 /'
            } | awk -v d=$((N2 - N1)) '
                $2 ~ /^[0-9,]+$/ && $3 ~ /^\(/ && $0 !~ /PROGRAM TOTALS/ {
                    v = $2; gsub(/,/, "", v)
                    k = $0; sub(/^[12] +[0-9,]+ +\([ 0-9.]+%\) +/, "", k)
                    s[k] += ($1 == 2 ? v : -v)
                }
                END { for (k in s) if (s[k] > 0) printf "%10.0f  %s\n", s[k] / d, k }' |
                sort -rn | awk 'NR <= 40' # reads all: no SIGPIPE for sort (pipefail)
        done
    } >"$KEEP/$name.per-request.txt" 2>&1 || say "no per-request profile for $name"
}

RESULT='{}'
for name in "${CASES[@]}"; do
    count "$name" "$N1"
    i1=$TOTAL
    count "$name" "$N2"
    i2=$TOTAL
    per=$(((i2 - i1 + (N2 - N1) / 2) / (N2 - N1)))
    [ "$i2" -gt "$i1" ] || die "$name: $N2 requests counted no more than $N1 ($i2 <= $i1)"
    say "$name: ($i2 - $i1) / ($N2 - $N1) = $per instructions per request"
    [ -z "$KEEP" ] || per_request_profile "$name"
    RESULT=$(jq -c --arg k "$name" --argjson v "$per" '. + {($k): $v}' <<<"$RESULT")
done
echo "$RESULT"
