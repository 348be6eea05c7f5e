#!/usr/bin/env bash
# run.sh: the whole-system benchmark of confidoc (`make bench`), side by side with its ceiling.
#
# Brings up its own stack (`make up`) in a temporary state directory on free ports, with the
# rate limit raised, creates a user and its documents, measures each case with wrk through
# nginx over TLS with keep-alive at each concurrency, measures the fair ceiling (the stack's
# nginx configuration with worker_processes auto, keep-alive over mutual TLS to a trivial
# upstream nginx, also worker_processes auto, answering the same bytes) at the same
# concurrencies, counts confidoc-api's instructions per request with callgrind
# (bench/callgrind.sh, after the wrk cases), and writes bench/results/latest.{json,md,png}.
# Everything it started is stopped at the end, whatever happens (trap).
# docs/performance.md explains every number.
#
# Environment:
#   BENCH_DURATION     seconds measured per case and concurrency (default 20)
#   BENCH_WARMUP       seconds of warm-up before each measurement, not counted (default 3; 0: none)
#   BENCH_CONCURRENCY  connections to measure at (default "1 16 64")
#   BENCH_CASES        cases to run (default: all; names below)
#   BENCH_RESULTS_DIR  where results go (default bench/results)
#   BENCH_ARGON2_COUNT Argon2id computations timed for the capacity (default 10)
#   BENCH_NGINX_WORKERS the stack nginx's worker_processes (CONFIDOC_NGINX_WORKERS of
#                      make up: auto or 1..64; default: make up's default, auto)
#   BENCH_CALLGRIND    1: count instructions per request with bench/callgrind.sh (default);
#                      0: skip it
#   BENCH_CALLGRIND_REQUESTS  its two run lengths N1,N2 (default 500,1500)
set -euo pipefail
umask 022

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BENCH=$SRC/bench
ALL_CASES="get_1k users_me create_document_1k put_1m get_1m create_account"
DURATION=${BENCH_DURATION:-20}
WARMUP=${BENCH_WARMUP:-3}
CONCS=${BENCH_CONCURRENCY:-1 16 64}
CASES=${BENCH_CASES:-$ALL_CASES}
RESULTS=${BENCH_RESULTS_DIR:-$BENCH/results}
ARGON2_COUNT=${BENCH_ARGON2_COUNT:-10}
NGINX_WORKERS=${BENCH_NGINX_WORKERS:-}
CALLGRIND=${BENCH_CALLGRIND:-1}
CALLGRIND_REQUESTS=${BENCH_CALLGRIND_REQUESTS:-500,1500}
CALLGRIND_CASES="get_1k users_me create_document_1k"
# Requests per client per rate_window: high enough never to refuse a benchmark request.
RATE_LIMIT=100000000
WRK_TIMEOUT=30s
MIB=1048576

say() { echo "bench: $*"; }
die() {
    echo "bench: error: $*" >&2
    exit 1
}

# ---------------------------------------------------------------- checks

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
is_uint "$DURATION" && [ "$DURATION" -ge 1 ] && [ "$DURATION" -le 600 ] ||
    die "BENCH_DURATION=$DURATION: seconds from 1 to 600"
is_uint "$WARMUP" && [ "$WARMUP" -le 120 ] || die "BENCH_WARMUP=$WARMUP: seconds from 0 to 120"
is_uint "$ARGON2_COUNT" && [ "$ARGON2_COUNT" -ge 1 ] && [ "$ARGON2_COUNT" -le 100 ] ||
    die "BENCH_ARGON2_COUNT=$ARGON2_COUNT: from 1 to 100"
for c in $CONCS; do
    is_uint "$c" && [ "$c" -ge 1 ] && [ "$c" -le 1000 ] || die "BENCH_CONCURRENCY: '$c' is not 1..1000"
done
for c in $CASES; do
    case " $ALL_CASES " in *" $c "*) ;; *) die "BENCH_CASES: unknown case '$c' (cases: $ALL_CASES)" ;; esac
done
[ -z "$NGINX_WORKERS" ] || [[ $NGINX_WORKERS =~ ^(auto|[1-9]|[1-5][0-9]|6[0-4])$ ]] ||
    die "BENCH_NGINX_WORKERS=$NGINX_WORKERS: auto or a number from 1 to 64"
[[ $CALLGRIND =~ ^[01]$ ]] || die "BENCH_CALLGRIND=$CALLGRIND: 0 or 1"
[[ $CALLGRIND_REQUESTS =~ ^([0-9]+),([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -ge 1 ] &&
    [ "${BASH_REMATCH[1]}" -lt "${BASH_REMATCH[2]}" ] && [ "${BASH_REMATCH[2]}" -le 100000 ] ||
    die "BENCH_CALLGRIND_REQUESTS=$CALLGRIND_REQUESTS: N1,N2 with 1 <= N1 < N2 <= 100000"
CG_CASES=()
for c in $CALLGRIND_CASES; do
    case " $CASES " in *" $c "*) CG_CASES+=("$c") ;; esac
done
[ "$CALLGRIND" = 1 ] && [ ${#CG_CASES[@]} -gt 0 ] || CALLGRIND=0
[ "$CALLGRIND" = 0 ] || command -v valgrind >/dev/null 2>&1 ||
    die "missing program valgrind (run: sudo bash scripts/install-deps.sh --bench; or BENCH_CALLGRIND=0)"
for t in wrk gnuplot jq curl cc cmake nginx openssl ss mariadb; do
    command -v "$t" >/dev/null 2>&1 || die "missing program $t (run: sudo bash scripts/install-deps.sh --bench)"
done

# ---------------------------------------------------------------- state, tear-down

TMP=$(mktemp -d /tmp/confidoc-bench.XXXXXX)
# The stack runs its servers as their own users when started as root: every directory
# above the state directory must be traversable by them.
chmod 0711 "$TMP"
STATE=$TMP/state
CEIL=$TMP/ceiling
mkdir -p "$CEIL/log" "$CEIL/tmp" "$TMP/wrk"
STACK_STARTED=0
CEIL_PIDS=()
SAMPLER_PID=
CEIL_WWW=
HTTPS_PORT=

stop_pid() { # stop_pid PID SIGNAL: signal, wait at most 10 s, then SIGKILL
    local pid=$1 sig=$2 i
    kill "-$sig" "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    [ -z "$SAMPLER_PID" ] || stop_pid "$SAMPLER_PID" TERM
    for p in "${CEIL_PIDS[@]}"; do stop_pid "$p" QUIT; done
    if [ "$STACK_STARTED" = 1 ]; then
        say "stopping the stack (make down)"
        CONFIDOC_STATE_DIR=$STATE CONFIDOC_HTTPS_PORT=$HTTPS_PORT \
            make -C "$SRC" --no-print-directory down >"$TMP/down.log" 2>&1 ||
            { cat "$TMP/down.log" >&2; rc=1; }
    fi
    if [ "$rc" -ne 0 ]; then
        mkdir -p "$RESULTS"
        rm -rf "$RESULTS/failed-logs"
        cp -r "$STATE/log" "$RESULTS/failed-logs" 2>/dev/null || true
        cp "$CEIL"/log/* "$TMP"/*.log "$RESULTS/failed-logs/" 2>/dev/null || true
        say "failed; logs kept in $RESULTS/failed-logs"
    fi
    rm -rf "$TMP"
    [ -z "$CEIL_WWW" ] || rm -rf "$CEIL_WWW"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source=../scripts/lib/ports.sh
. "$SRC/scripts/lib/ports.sh"
free_port() { pick_port || die "no free port on 127.0.0.1"; }

# ---------------------------------------------------------------- the stack

# The release build of the two programs the stack runs, made here rather than by `make up`;
# CONFIDOC_BUILD_DIR then tells `make up` not to build. As root, `make up` installs
# confidoc-api from it into a root-owned per-content directory, so the tree may be
# anywhere (root's 0700 home included).
BUILD_DIR=${CONFIDOC_BUILD_DIR:-$SRC/build}
if [ -z "${CONFIDOC_BUILD_DIR:-}" ]; then
    say "building confidoc-api and confidoc-cas (release) in $BUILD_DIR"
    { cmake -S "$SRC" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
        cmake --build "$BUILD_DIR" -j "$(nproc)" --target confidoc-api confidoc-cas; } \
        >"$TMP/build.log" 2>&1 || { tail -n 40 "$TMP/build.log" >&2; die "build failed"; }
    chmod 0755 "$BUILD_DIR/confidoc-api" "$BUILD_DIR/confidoc-cas"
fi
export CONFIDOC_BUILD_DIR=$BUILD_DIR

HTTPS_PORT=$(free_port)
CEIL_PORT=$(free_port)
UP_PORT=$(free_port)
say "bringing up the stack in $STATE on https://localhost:$HTTPS_PORT"
say "rate limit raised to $RATE_LIMIT requests per window (CONFIDOC_RATE_LIMIT) so that throughput can be measured"
STACK_STARTED=1
# BENCH_NGINX_WORKERS reaches make up as CONFIDOC_NGINX_WORKERS; unset, make up's default.
up_env=()
[ -z "$NGINX_WORKERS" ] || up_env=("CONFIDOC_NGINX_WORKERS=$NGINX_WORKERS")
if ! env "${up_env[@]}" CONFIDOC_STATE_DIR="$STATE" CONFIDOC_HTTPS_PORT="$HTTPS_PORT" \
    CONFIDOC_RATE_LIMIT=$RATE_LIMIT CONFIDOC_LIBEXEC_DIR="${CONFIDOC_LIBEXEC_DIR:-$TMP/libexec}" \
    make -C "$SRC" --no-print-directory up >"$TMP/up.log" 2>&1; then
    cat "$TMP/up.log" >&2
    die "make up failed"
fi
[ -f "$STATE/stack.env" ] || die "make up wrote no $STATE/stack.env"
# shellcheck disable=SC1091
. "$STATE/stack.env"
URL=$CONFIDOC_URL
API_PID=$(cat "$CONFIDOC_API_PIDFILE")
NGINX_PID=$(cat "$CONFIDOC_NGINX_PIDFILE")
is_uint "$API_PID" && [ -r "/proc/$API_PID/stat" ] || die "confidoc-api is not running"
is_uint "$NGINX_PID" && [ -r "/proc/$NGINX_PID/cmdline" ] || die "nginx is not running"
CLK_TCK=$(getconf CLK_TCK)

ccurl() { curl -s --max-time 30 --cacert "$CONFIDOC_CACERT" "$@"; }

# ---------------------------------------------------------------- data

BENCH_USER=bench-$RANDOM$RANDOM
BENCH_PASS=bench-password-$RANDOM$RANDOM$RANDOM
AUTH="Basic $(printf '%s:%s' "$BENCH_USER" "$BENCH_PASS" | base64 -w0)"
DOC_1K=1
DOC_1M=2
# 1 KiB of JSON-safe text, and 1 MiB of random bytes.
head -c 768 /dev/urandom | base64 -w0 | tr '+/' '-_' >"$TMP/body-1k.txt"
[ "$(wc -c <"$TMP/body-1k.txt")" -eq 1024 ] || die "internal: 1 KiB body has the wrong size"
head -c "$MIB" /dev/urandom >"$TMP/body-1m.bin"

code=$(ccurl -o /dev/null -w '%{http_code}' -X POST -H "Authorization: $AUTH" "$URL/users/create_account")
[ "$code" = 201 ] || die "cannot create the benchmark's account (HTTP $code)"
printf '{"record_id":%d,"content":"%s"}' "$DOC_1K" "$(cat "$TMP/body-1k.txt")" >"$TMP/doc-1k.json"
code=$(ccurl -o /dev/null -w '%{http_code}' -X POST -H "Authorization: $AUTH" \
    -H 'Content-Type: application/json' --data-binary @"$TMP/doc-1k.json" "$URL/documents/create_document")
[ "$code" = 200 ] || die "cannot create the 1 KiB document (HTTP $code)"
code=$(ccurl -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: $AUTH" \
    -H 'Content-Type: application/octet-stream' --data-binary @"$TMP/body-1m.bin" "$URL/documents/$DOC_1M")
[ "$code" = 201 ] || die "cannot create the 1 MiB document (HTTP $code)"
ccurl -o "$TMP/get-1m.bin" -H "Authorization: $AUTH" "$URL/documents/$DOC_1M/content"
cmp -s "$TMP/get-1m.bin" "$TMP/body-1m.bin" || die "the 1 MiB document does not read back identical"
# The exact answer of GET /documents/{id} of the 1 KiB document: the ceiling answers these bytes.
ccurl -o "$TMP/get-1k.json" -H "Authorization: $AUTH" "$URL/documents/$DOC_1K"
jq -e --rawfile c "$TMP/body-1k.txt" '.content == $c' "$TMP/get-1k.json" >/dev/null ||
    die "the 1 KiB document does not read back identical"
ceil_re='^[A-Za-z0-9 {}":,._@/;=+-]+$'
[[ $(cat "$TMP/get-1k.json") =~ $ceil_re ]] ||
    die "internal: the 1 KiB answer has characters the ceiling's configuration cannot hold"

# ---------------------------------------------------------------- /proc sampling

api_cpu_ticks() { # utime + stime of confidoc-api (all its threads), in clock ticks
    local f
    read -r -a f <<<"$(sed 's/^.*) //' "/proc/$API_PID/stat")"
    echo $((f[11] + f[12]))
}

api_rss_kib() {
    local k v _
    while read -r k v _; do
        if [ "$k" = VmRSS: ]; then
            echo "$v"
            return 0
        fi
    done <"/proc/$API_PID/status"
    return 1
}

# rss_sampler OUT: writes the peak VmRSS of confidoc-api seen so far to OUT, every 100 ms.
rss_sampler() {
    local out=$1 peak=0 v
    while v=$(api_rss_kib); do
        if [ "$v" -gt "$peak" ]; then
            peak=$v
            echo "$peak" >"$out.new" && mv "$out.new" "$out"
        fi
        sleep 0.1
    done
}

sleep 1
IDLE_RSS=$(api_rss_kib)
say "confidoc-api idle RSS: $IDLE_RSS KiB"

# ---------------------------------------------------------------- Argon2id capacity

api_conf=$(tr '\0' ' ' <"/proc/$API_PID/cmdline" | sed -n 's/.* --config \([^ ]*\).*/\1/p')
conf_value() { # conf_value KEY DEFAULT: the environment, else api.conf, else the default
    local var=CONFIDOC_${1^^} v=""
    v=${!var:-}
    [ -n "$v" ] || { [ -n "$api_conf" ] && v=$(sed -n "s/^$1[[:space:]]*=[[:space:]]*//p" "$api_conf" | tail -n 1); }
    echo "${v:-$2}"
}
ARGON2_MEM=$(conf_value argon2_memlimit_kib 19456)
ARGON2_OPS=$(conf_value argon2_opslimit 2)
cc -O2 -Wall -Wextra -Werror -o "$TMP/argon2_rate" "$BENCH/argon2_rate.c" -lsodium ||
    die "cannot build bench/argon2_rate.c"
CORES=$(nproc)
# argon2_time: seconds per Argon2id on one core, now (the machine's speed drifts on a
# shared VM, so the capacity is timed again right around the create_account runs).
argon2_time() {
    sed -n 's/.* avg_s=\([0-9.]*\).*/\1/p' <<<"$("$TMP/argon2_rate" "$ARGON2_MEM" "$ARGON2_OPS" "$ARGON2_COUNT")"
}
set_argon2_cap() { # set_argon2_cap SECONDS...: their mean sets ARGON2_S and ARGON2_CAP
    ARGON2_S=$(printf '%s\n' "$@" | awk '{ t += $1 } END { printf "%.6f", t / NR }')
    ARGON2_CAP=$(awk -v n="$CORES" -v s="$ARGON2_S" 'BEGIN { printf "%.2f", n / s }')
}
set_argon2_cap "$(argon2_time)"
say "Argon2id m=${ARGON2_MEM} KiB t=${ARGON2_OPS}: ${ARGON2_S} s each; capacity $CORES cores / that = $ARGON2_CAP per second"

# ---------------------------------------------------------------- the ceiling

# The fair ceiling (issue 13): the best this machine's nginx does in front of an upstream
# that costs nothing, not nginx capped like the stack's. The front is the stack's own
# nginx configuration (its TLS towards the client, its access log, its proxy settings,
# mutual TLS and upstream keep-alive towards the upstream: what the comparison needs),
# with worker_processes auto (one per core) whatever the stack's is, and only its
# listening port, its upstream's address, and its pid, log and temporary paths changed.
# (The master rewrites its command line as one string, "nginx: master process nginx -p ...".)
nginx_arg() { tr '\0' ' ' <"/proc/$NGINX_PID/cmdline" | sed -n "s/.* $1 \([^ ]*\).*/\1/p"; }
ng_prefix=$(nginx_arg -p)
ng_conf=$(nginx_arg -c)
case $ng_conf in /*) ;; *) ng_conf=${ng_prefix%/}/$ng_conf ;; esac
[ -n "$ng_prefix" ] && [ -r "$ng_conf" ] || die "cannot find the stack's nginx configuration"
api_port=${CONFIDOC_API_ADDR##*:}
# nginx_workers_of MASTER_PID: how many worker processes the nginx master has.
nginx_workers_of() {
    local n=0 c
    for c in $(cat "/proc/$1/task/"*/children 2>/dev/null); do
        tr '\0' ' ' <"/proc/$c/cmdline" 2>/dev/null | grep -q '^nginx: worker process' && n=$((n + 1))
    done
    echo "$n"
}
# The stack nginx's worker_processes as configured (CONFIDOC_NGINX_WORKERS) and as running.
STACK_NGINX_WORKERS=$(sed -n 's/^[[:space:]]*worker_processes[[:space:]]\{1,\}\([^;[:space:]]*\);.*/\1/p' "$ng_conf" | head -n 1)
[ -n "$STACK_NGINX_WORKERS" ] || STACK_NGINX_WORKERS=1 # nginx's built-in default
STACK_NGINX_PROCS=$(nginx_workers_of "$NGINX_PID")
say "stack nginx: worker_processes $STACK_NGINX_WORKERS (worker processes running: $STACK_NGINX_PROCS)"
sed -E -e "s#^([[:space:]]*listen[[:space:]]+127\.0\.0\.1:)$HTTPS_PORT([[:space:];])#\1$CEIL_PORT\2#" \
    -e "s#^([[:space:]]*worker_processes)[[:space:]]+[^;]+;#\1 auto;#" \
    -e "s#^([[:space:]]*server[[:space:]]+127\.0\.0\.1:)$api_port([[:space:];])#\1$UP_PORT\2#" \
    -e "s#^([[:space:]]*pid)[[:space:]]+[^;]+;#\1 $CEIL/front.pid;#" \
    -e "s#^([[:space:]]*error_log)[[:space:]]+[^[:space:];]+#\1 $CEIL/log/front-error.log#" \
    -e "s#^([[:space:]]*access_log)[[:space:]]+[^[:space:];]+#\1 $CEIL/log/front-access.log#" \
    -e "s#^([[:space:]]*(client_body|proxy|fastcgi|uwsgi|scgi)_temp_path)[[:space:]]+[^;]+;#\1 $CEIL/tmp/\2;#" \
    -e "s#^([[:space:]]*proxy_ssl_trusted_certificate)[[:space:]]+[^;]+;#\1 $CONFIDOC_CACERT;#" \
    "$ng_conf" >"$CEIL/front.conf"
grep -Eq "^[[:space:]]*worker_processes[[:space:]]+auto;" "$CEIL/front.conf" &&
    grep -Eq "listen[[:space:]]+127\.0\.0\.1:${CEIL_PORT}[[:space:];]" "$CEIL/front.conf" &&
    grep -Eq "^[[:space:]]*keepalive[[:space:]]+[0-9]+;" "$CEIL/front.conf" &&
    grep -Eq "server[[:space:]]+127\.0\.0\.1:${UP_PORT}[[:space:];]" "$CEIL/front.conf" &&
    ! grep -Eq "127\.0\.0\.1:($HTTPS_PORT|$api_port)[^0-9]|${ng_prefix%/}/(run|log|tmp)|$STATE/(run|log)" "$CEIL/front.conf" ||
    die "cannot derive the ceiling's nginx configuration from $ng_conf"

# Keys are in no file: both nginx instances start through the CAS's launcher as
# session nginx, so the upstream presents nginx's own server certificate (the
# front trusts the public CA for it, above) and verifies the front's client
# certificate against the API's CA, as the API does.
NG_TLS=$CONFIDOC_STATE_DIR/secrets/nginx/nginx/tls
# The upstream's 1 MiB file: the bench's random bytes (nothing secret), in a
# directory of its own that its workers' user can read ($TMP is 0700).
CEIL_WWW=$(mktemp -d "${TMPDIR:-/tmp}/confidoc-bench-www.XXXXXX")
cp "$TMP/body-1m.bin" "$CEIL_WWW/doc-1m.bin"
chmod 0755 "$CEIL_WWW" && chmod 0644 "$CEIL_WWW/doc-1m.bin"
sed -e "s|@DIR@|$CEIL|g" -e "s|@PORT@|$UP_PORT|g" -e "s|@TLS_CERT@|$NG_TLS/server.crt|" \
    -e "s|@TLS_KEY@|$NG_TLS/server.key|" -e "s|@CLIENT_CA@|$NG_TLS/api-ca.crt|" \
    -e "s|@DOC_1M@|$DOC_1M|g" -e "s|@WWW@|$CEIL_WWW|" \
    -e "s|@BODY@|$(cat "$TMP/get-1k.json")|" "$BENCH/ceiling-upstream.conf.in" >"$CEIL/upstream.conf"
NG_RUN=("$CONFIDOC_CAS_LAUNCHER" run --session nginx --socket "$CONFIDOC_CAS_SOCKET" -- "$(command -v nginx)")
# The workers' temporary directories: nginx's master (root) creates them below
# $CEIL/tmp for the workers' user; $CEIL/tmp itself stays root's (0755), so that
# no worker can plant a link there for the master to chown through.
chmod 0755 "$CEIL" "$CEIL/tmp"
for which in upstream front; do
    "${NG_RUN[@]}" -q -t -p "$CEIL" -c "$CEIL/$which.conf" -e "$CEIL/log/$which-error.log" >"$CEIL/log/$which-test.log" 2>&1 ||
        { cat "$CEIL/log/$which-test.log" >&2; die "nginx rejects the ceiling's $which configuration"; }
    "${NG_RUN[@]}" -p "$CEIL" -c "$CEIL/$which.conf" -e "$CEIL/log/$which-error.log" -g 'daemon off;' \
        </dev/null >>"$CEIL/log/$which.out" 2>&1 &
    CEIL_PIDS+=($!)
done
for _ in $(seq 1 100); do
    if ccurl -o "$TMP/ceiling-probe.json" -H "Authorization: $AUTH" \
        "https://localhost:$CEIL_PORT/documents/$DOC_1K" && [ -s "$TMP/ceiling-probe.json" ]; then break; fi
    sleep 0.1
done
cmp -s "$TMP/ceiling-probe.json" "$TMP/get-1k.json" ||
    die "the ceiling does not answer the same bytes (see $CEIL/log)"
ccurl -o "$TMP/ceiling-probe-1m.bin" -H "Authorization: $AUTH" \
    "https://localhost:$CEIL_PORT/documents/$DOC_1M/content" &&
    cmp -s "$TMP/ceiling-probe-1m.bin" "$TMP/body-1m.bin" ||
    die "the ceiling does not answer the same 1 MiB as GET /documents/$DOC_1M/content (see $CEIL/log)"
code=$(ccurl -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: $AUTH" \
    -H 'Content-Type: application/octet-stream' --data-binary @"$TMP/body-1m.bin" \
    "https://localhost:$CEIL_PORT/documents/$DOC_1M")
[ "$code" = 200 ] || die "the ceiling does not take a 1 MiB PUT (HTTP $code)"
# Proof that the upstream demands the proxy's certificate: without one it refuses.
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -k "https://localhost:$UP_PORT/" || true)
[ "$code" = 400 ] || die "the ceiling's upstream does not require a client certificate (HTTP $code)"
# (Each master's PID from its own pid file: the launcher may stand between $! and nginx.)
CEIL_FRONT_PROCS=$(nginx_workers_of "$(cat "$CEIL/front.pid" 2>/dev/null || echo "${CEIL_PIDS[1]}")")
CEIL_UP_PROCS=$(nginx_workers_of "$(cat "$CEIL/upstream.pid" 2>/dev/null || echo "${CEIL_PIDS[0]}")")
CEIL_KEEPALIVE=$(sed -n 's/^[[:space:]]*keepalive[[:space:]]\{1,\}\([0-9]*\);.*/\1/p' "$CEIL/front.conf" | head -n 1)
CEILING_DESC="the stack's nginx configuration with worker_processes auto ($CEIL_FRONT_PROCS workers), keep-alive (upstream keepalive $CEIL_KEEPALIVE per worker) over mutual TLS to a trivial nginx upstream (worker_processes auto, $CEIL_UP_PROCS workers) that answers the same $(wc -c <"$TMP/get-1k.json") bytes as GET /documents/$DOC_1K"
say "ceiling: https://localhost:$CEIL_PORT -> mutual TLS, keep-alive -> trivial upstream on port $UP_PORT"
say "ceiling: $CEILING_DESC"

# ---------------------------------------------------------------- running cases

RUN_NO=0
ROWS=$TMP/rows.jsonl
CEIL_ROWS=$TMP/ceiling.jsonl
: >"$ROWS"
: >"$CEIL_ROWS"
CEIL1M_ROWS=$TMP/ceiling-1m.jsonl
: >"$CEIL1M_ROWS"

db_doc_count() {
    [ -n "${CONFIDOC_DB_ADMIN_SOCKET:-}" ] || return 1
    mariadb --no-defaults --socket="$CONFIDOC_DB_ADMIN_SOCKET" -u root --connect-timeout=5 -N -B \
        -e 'SELECT COUNT(*) FROM confidoc.documents' 2>/dev/null
}

# wrk_run SCRIPT CONC SECONDS URL RUN_NO: runs wrk once with the case's environment and
# prints its BENCH line. RUN_NO makes the ids and usernames of this run its own
# (put_1m replaces the same records in every run instead).
wrk_run() {
    local script=$1 conc=$2 secs=$3 base=$4 run=$5 threads=2 out idbase
    [ "$conc" -ge 2 ] || threads=1
    out=$TMP/wrk/$run.out
    idbase=$((run * 1000000000000))
    [ "$script" != put_1m ] || idbase=9000000000000000
    BENCH_LUA_DIR=$BENCH BENCH_AUTH=$AUTH BENCH_ID_BASE=$idbase \
        BENCH_SLOTS=$(((conc + threads - 1) / threads)) BENCH_DOC_ID=$CASE_DOC \
        BENCH_BODY_FILE=$CASE_BODY \
        wrk -t"$threads" -c"$conc" -d"${secs}s" --timeout "$WRK_TIMEOUT" --latency \
        -s "$BENCH/$script.lua" "$base" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed ($script)"; }
    grep '^BENCH ' "$out" | tail -n 1 | grep . || { cat "$out" >&2; die "no result line from wrk ($script)"; }
}

field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<" ${2#BENCH}"; }

# settle: waits (at most 60 s) until confidoc-api is idle, so that the requests a stopped
# wrk left in flight (up to one per connection, e.g. queued Argon2id) are not charged to
# the next measurement.
settle() {
    local t0 t1 i
    for ((i = 0; i < 200; i++)); do
        t0=$(api_cpu_ticks)
        sleep 0.3
        t1=$(api_cpu_ticks)
        [ $((t1 - t0)) -gt 1 ] || return 0
    done
    say "warning: confidoc-api still busy after 60 s"
}

# rows_of NAME: the file of NAME's rows (the fair ceiling, the 1 MiB ceilings, the cases).
rows_of() {
    case $1 in
    ceiling) echo "$CEIL_ROWS" ;;
    ceiling_*) echo "$CEIL1M_ROWS" ;;
    *) echo "$ROWS" ;;
    esac
}

# measure CASE CONC: warm-up, then the measurement with /proc sampling; appends one row.
measure() {
    local name=$1 conc=$2 base=$URL script=$1 line cpu0 cpu1 rss peak reqs dur ok bad sock \
        okw=0 docs0="" docs1 wl
    case $name in
    ceiling) base=https://localhost:$CEIL_PORT ;;
    ceiling_get_1m | ceiling_put_1m) base=https://localhost:$CEIL_PORT script=${name#ceiling_} ;;
    esac
    if [ "$name" = create_document_1k ]; then docs0=$(db_doc_count || true); fi
    if [ "$WARMUP" -gt 0 ]; then
        RUN_NO=$((RUN_NO + 1))
        wl=$(wrk_run "$script" "$conc" "$WARMUP" "$base" "$RUN_NO")
        okw=$(field ok "$wl")
        settle
    fi
    rss=$TMP/rss.peak
    api_rss_kib >"$rss"
    rss_sampler "$rss" &
    SAMPLER_PID=$!
    cpu0=$(api_cpu_ticks)
    RUN_NO=$((RUN_NO + 1))
    line=$(wrk_run "$script" "$conc" "$DURATION" "$base" "$RUN_NO")
    cpu1=$(api_cpu_ticks)
    stop_pid "$SAMPLER_PID" TERM
    SAMPLER_PID=
    peak=$(cat "$rss")
    reqs=$(field requests "$line") dur=$(field duration_us "$line") ok=$(field ok "$line")
    bad=$(field non2xx "$line") sock=$(field sock_errors "$line")
    if [ "$name" = create_document_1k ] && [ -n "$docs0" ]; then
        # Rows are counted after settle: requests in flight when wrk stopped were
        # stored without their 2xx being counted, so rows >= 2xx, never fewer.
        settle
        docs1=$(db_doc_count || true)
        echo "$name $conc $((okw + ok)) $((docs1 - docs0))" >>"$TMP/writes.txt"
    fi
    jq -nc --arg case "$name" --argjson conc "$conc" --argjson reqs "$reqs" --argjson dur "$dur" \
        --argjson ok "$ok" --argjson errors "$((bad + sock))" \
        --argjson p50 "$(field p50_us "$line")" --argjson p99 "$(field p99_us "$line")" \
        --argjson ticks "$((cpu1 - cpu0))" --argjson hz "$CLK_TCK" --argjson rss "$peak" \
        --argjson bytes "$(field bytes "$line")" '
        {case: $case, concurrency: $conc,
         rps: (($reqs / ($dur / 1e6)) * 10 | round / 10),
         p50_ms: ($p50 / 1000), p99_ms: ($p99 / 1000), errors: $errors,
         api_cpu_us_per_req: (if $reqs > 0 then ($ticks * 1e6 / $hz / $reqs) | round else null end),
         api_rss_peak_kib: $rss, requests: $reqs, ok: $ok, bytes_read: $bytes}' \
        >>"$(rows_of "$name")"
    kill -0 "$API_PID" 2>/dev/null || die "confidoc-api died during $name"
    settle
    printf 'bench: %-20s c=%-3s %10s req/s  p50 %8s ms  p99 %8s ms  errors %s\n' "$name" "$conc" \
        "$(jq -r .rps <<<"$(tail -n 1 "$(rows_of "$name")")")" \
        "$(awk -v v="$(field p50_us "$line")" 'BEGIN{printf "%.2f", v/1000}')" \
        "$(awk -v v="$(field p99_us "$line")" 'BEGIN{printf "%.2f", v/1000}')" "$((bad + sock))"
}

n1m=0
for name in get_1m put_1m; do case " $CASES " in *" $name "*) n1m=$((n1m + 1)) ;; esac; done
ncases=$(($(wc -w <<<"$CASES") + 1 + n1m))
nconcs=$(wc -w <<<"$CONCS")
say "measuring $ncases x $nconcs runs of ${WARMUP}s warm-up + ${DURATION}s (about $((ncases * nconcs * (WARMUP + DURATION) / 60 + 1)) min)"
for c in $CONCS; do
    CASE_DOC=$DOC_1K CASE_BODY=$TMP/body-1k.txt measure ceiling "$c"
done
# The 1 MiB ceilings: the same front and upstream, the upstream answering the
# 1 MiB from a file (GET) or reading a 1 MiB body and answering 200 (PUT), with
# the cases' own scripts: what nginx and wrk alone cost per MiB on this machine.
for name in get_1m put_1m; do
    case " $CASES " in
    *" $name "*)
        for c in $CONCS; do
            CASE_DOC=$DOC_1M CASE_BODY=$TMP/body-1m.bin measure "ceiling_$name" "$c"
        done
        ;;
    esac
done
# Keep-alive to the upstream: its connections outlive the runs (idle, kept by the front).
CEIL_UP_CONNS=$(ss -Htn state established "( dport = :$UP_PORT )" 2>/dev/null | wc -l)
say "ceiling: $CEIL_UP_CONNS idle keep-alive connections from the front to its upstream after its runs"
[ "$CEIL_UP_CONNS" -gt 0 ] || say "warning: the ceiling's front kept no upstream connection alive"
for name in $CASES; do
    case $name in
    get_1m | put_1m) CASE_DOC=$DOC_1M CASE_BODY=$TMP/body-1m.bin ;;
    *) CASE_DOC=$DOC_1K CASE_BODY=$TMP/body-1k.txt ;;
    esac
    [ "$name" = create_account ] && argon2_before=$(argon2_time)
    for c in $CONCS; do measure "$name" "$c"; done
    if [ "$name" = create_account ]; then
        argon2_after=$(argon2_time)
        set_argon2_cap "$argon2_before" "$argon2_after"
        say "Argon2id timed again around create_account: ${argon2_before} s before, ${argon2_after} s after; capacity $CORES / ${ARGON2_S} = $ARGON2_CAP per second"
    fi
done

# ---------------------------------------------------------------- instructions per request

# After the wrk cases, so that valgrind never shares the cores with a timed run. Its own
# MariaDB, memcached and confidoc-api (the same release build); the counts are exact,
# whatever the load (docs/performance.md).
INSTR='{}'
CG_N1=${CALLGRIND_REQUESTS%,*} CG_N2=${CALLGRIND_REQUESTS#*,}
if [ "$CALLGRIND" = 1 ]; then
    say "counting instructions per request with callgrind (${CG_CASES[*]}; $CG_N1 and $CG_N2 requests)"
    CALLGRIND_TIMEOUT=1800 bash "$BENCH/callgrind.sh" --requests "$CALLGRIND_REQUESTS" "${CG_CASES[@]}" \
        >"$TMP/callgrind.json" 2>"$TMP/callgrind.log" ||
        { cat "$TMP/callgrind.log" >&2; die "bench/callgrind.sh failed"; }
    INSTR=$(jq -ce 'if type == "object" and ([.[] | numbers] | length) == length then . else error end' \
        "$TMP/callgrind.json") || die "bench/callgrind.sh printed no result object"
    say "instructions per request: $INSTR"
fi

# ---------------------------------------------------------------- results

mkdir -p "$RESULTS"
FLUSH=$(mariadb --no-defaults --socket="${CONFIDOC_DB_ADMIN_SOCKET:-/nonexistent}" -u root -N -B \
    --connect-timeout=5 -e 'SELECT @@innodb_flush_log_at_trx_commit' 2>/dev/null || echo unknown)
# One object per case and concurrency, as before (fields are only added): the ceiling
# and nginx settings of the run, and, on the rows of the counted cases, their
# instructions per request (the same figure at every concurrency: it is counted once).
jq -s --slurpfile ceil "$CEIL_ROWS" --slurpfile ceil1m "$CEIL1M_ROWS" --argjson cap "$ARGON2_CAP" --argjson instr "$INSTR" \
    --argjson cgreq "[$CG_N1,$CG_N2]" --arg ngw "$STACK_NGINX_WORKERS" \
    --argjson ngp "$STACK_NGINX_PROCS" --argjson cfp "$CEIL_FRONT_PROCS" \
    --argjson cup "$CEIL_UP_PROCS" --arg cdesc "$CEILING_DESC" '
    ($ceil | map({key: (.concurrency | tostring), value: .rps}) | from_entries) as $c
    | ($ceil1m | map({key: "\(.case | ltrimstr("ceiling_"))/\(.concurrency)", value: .rps})
       | from_entries) as $c1m
    | map({case, concurrency, rps, p50_ms, p99_ms, errors, api_cpu_us_per_req, api_rss_peak_kib,
           ceiling_rps: $c[.concurrency | tostring],
           ratio_to_ceiling: (if $c[.concurrency | tostring] then
               (.rps / $c[.concurrency | tostring] * 1000 | round / 1000) else null end),
           nginx_worker_processes_setting: $ngw, nginx_worker_processes: $ngp,
           ceiling: $cdesc, ceiling_front_workers: $cfp, ceiling_upstream_workers: $cup}
          + (if $instr[.case] then
               {instructions_per_request: $instr[.case], callgrind_requests: $cgreq} else {} end)
          + (if .case == "create_account" then
               {argon2_capacity_rps: $cap, ratio_to_argon2_capacity: (.rps / $cap * 1000 | round / 1000)}
             else {} end)
          + (if .case == "put_1m" or .case == "get_1m" then
               {mb_per_s: (.rps * 1048576 / 1e6 * 10 | round / 10)}
               + ($c1m["\(.case)/\(.concurrency)"] as $m | if $m then
                   {ceiling_1m_mb_per_s: ($m * 1048576 / 1e6 * 10 | round / 10),
                    ratio_to_ceiling_1m: (.rps / $m * 1000 | round / 1000)} else {} end)
             else {} end))' \
    "$ROWS" >"$TMP/latest.json"

# The Markdown report: settings, machine, the table, the ceiling, the targets.
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem_total=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
{
    echo "# confidoc benchmark results"
    echo
    echo "Written by \`make bench\` (bench/run.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown). See docs/performance.md for what each number means."
    echo
    echo "- Machine: ${cpu_model:-unknown CPU}, $CORES cores, $mem_total RAM; $(. /etc/os-release && echo "$PRETTY_NAME"), Linux $(uname -r)"
    echo "- Software: $(nginx -v 2>&1 | sed 's/^nginx version: //'), $(mariadb --version | sed 's/.*Distrib \([^,]*\),.*/MariaDB \1/;s/^mariadb.*from \([0-9.]*\).*/MariaDB \1/'), $(wrk -v 2>&1 | head -n 1 | awk '{print "wrk " $2}')"
    echo "- Load: wrk over TLS with keep-alive, -t2 (-t1 at concurrency 1), ${WARMUP} s warm-up then ${DURATION} s measured per case and concurrency; rate limit raised to $RATE_LIMIT per window"
    echo "- nginx of the stack: worker_processes $STACK_NGINX_WORKERS (worker processes running: $STACK_NGINX_PROCS; CONFIDOC_NGINX_WORKERS, BENCH_NGINX_WORKERS)"
    echo "- Ceiling: $CEILING_DESC"
    echo "- confidoc-api idle RSS after start-up: $IDLE_RSS KiB ($(awk -v k="$IDLE_RSS" 'BEGIN{printf "%.1f", k/1024}') MiB)"
    echo "- Argon2id m=$ARGON2_MEM KiB t=$ARGON2_OPS: $ARGON2_S s per hash on one core (mean of timings just before and after the create_account runs when they ran); capacity $CORES / $ARGON2_S = $ARGON2_CAP accounts/s"
    echo "- Durability: innodb_flush_log_at_trx_commit=$FLUSH; create_document rows checked against 2xx answers: $(
        if [ -s "$TMP/writes.txt" ]; then
            awk '{ ok += $3; rows += $4; if ($4 < $3) bad = 1 } END { printf "%d 2xx answers, %d new rows%s", ok, rows, bad ? " (FEWER ROWS THAN 2xx ANSWERS)" : " (every 2xx stored; extra rows are requests in flight when wrk stopped)" }' "$TMP/writes.txt"
        else echo "not checked"; fi)"
    echo
    echo "| case | concurrency | req/s | MB/s | p50 ms | p99 ms | errors | API CPU µs/req | API peak RSS MiB | ceiling req/s | ratio to ceiling |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    jq -r '.[] | "| \(.case) | \(.concurrency) | \(.rps) | \(.mb_per_s // "") | \(.p50_ms) | \(.p99_ms) | \(.errors) | \(.api_cpu_us_per_req // "") | \((.api_rss_peak_kib / 1024 * 10 | round) / 10) | \(.ceiling_rps // "") | \(.ratio_to_ceiling // "") |"' "$TMP/latest.json"
    echo
    echo "Fair ceiling (what it is: above):"
    echo
    echo "| concurrency | req/s | p50 ms | p99 ms | errors |"
    echo "|---:|---:|---:|---:|---:|"
    jq -r '"| \(.concurrency) | \(.rps) | \(.p50_ms) | \(.p99_ms) | \(.errors) |"' "$CEIL_ROWS"
    echo
    if [ -s "$CEIL1M_ROWS" ]; then
        echo "1 MiB ceilings: the same front and upstream, the upstream answering the 1 MiB of GET /documents/$DOC_1M/content from a file, or reading a 1 MiB PUT body and answering 200; the cases' own wrk scripts. What nginx and wrk alone do with a MiB on this machine:"
        echo
        echo "| case | concurrency | req/s | MB/s | p50 ms | p99 ms | errors |"
        echo "|---|---:|---:|---:|---:|---:|---:|"
        jq -r '"| \(.case) | \(.concurrency) | \(.rps) | \(.rps * 1048576 / 1e6 * 10 | round / 10) | \(.p50_ms) | \(.p99_ms) | \(.errors) |"' "$CEIL1M_ROWS"
        echo
    fi
    if [ "$CALLGRIND" = 1 ]; then
        echo "confidoc-api instructions per request (callgrind, user space, whole process: (I2 - I1) / ($CG_N2 - $CG_N1) over $CG_N1 and $CG_N2 keep-alive requests straight to the API, bench/callgrind.sh):"
        echo
        echo "| case | instructions per request |"
        echo "|---|---:|"
        jq -r 'to_entries[] | "| \(.key) | \(.value) |"' <<<"$INSTR"
    else
        echo "confidoc-api instructions per request: not counted (BENCH_CALLGRIND=0, or none of $CALLGRIND_CASES in BENCH_CASES)."
    fi
    echo
    echo "Targets of issue 13 (at concurrency 64 unless said otherwise; ratios are to the fair ceiling):"
    echo
    jq -r --argjson idle "$IDLE_RSS" --arg flush "$FLUSH" --argjson instr "$INSTR" --arg writes "$(
        [ -s "$TMP/writes.txt" ] && awk '{ if ($4 < $3) bad = 1 } END { print bad ? "missing" : "all stored" }' "$TMP/writes.txt" || echo unchecked)" '
        def row(c; n): map(select(.case == c and .concurrency == n)) | first;
        def mark(ok): if ok == null then "not measured" elif ok then "met" else "NOT met" end;
        def best(c): map(select(.case == c)) | max_by(.rps);
        . as $r
        | [ (row("get_1k"; 64) | if . then ["GET 1 KiB: >= 0.30 of the fair ceiling, p99 < 20 ms, no errors", "ratio \(.ratio_to_ceiling), p99 \(.p99_ms) ms, errors \(.errors)", mark(.ratio_to_ceiling >= 0.30 and .p99_ms < 20 and .errors == 0)] else ["GET 1 KiB: >= 0.30 of the fair ceiling, p99 < 20 ms, no errors", "", mark(null)] end),
            (row("users_me"; 64) | if . then ["users/me: >= 0.35 of the fair ceiling", "ratio \(.ratio_to_ceiling), errors \(.errors)", mark(.ratio_to_ceiling >= 0.35 and .errors == 0)] else ["users/me: >= 0.35 of the fair ceiling", "", mark(null)] end),
            (row("create_document_1k"; 64) | if . then ["create_document 1 KiB: >= 0.20 of the fair ceiling, durable at 2xx", "ratio \(.ratio_to_ceiling), errors \(.errors), rows \($writes), innodb_flush_log_at_trx_commit=\($flush)", mark(.ratio_to_ceiling >= 0.20 and .errors == 0 and $writes == "all stored" and $flush == "1")] else ["create_document 1 KiB: >= 0.20 of the fair ceiling, durable at 2xx", "", mark(null)] end),
            ($instr.get_1k | if . then ["confidoc-api instructions per GET 1 KiB (callgrind) <= 100,000", "\(.)", mark(. <= 100000)] else ["confidoc-api instructions per GET 1 KiB (callgrind) <= 100,000", "", mark(null)] end),
            (row("get_1k"; 64) | if . then ["confidoc-api CPU per GET 1 KiB <= 80 µs", "\(.api_cpu_us_per_req) µs", mark(.api_cpu_us_per_req <= 80)] else ["confidoc-api CPU per GET 1 KiB <= 80 µs", "", mark(null)] end),
            ($r | best("get_1m") | if . then ["1 MiB GET >= 400 MB/s (best concurrency)", "\(.mb_per_s) MB/s at c=\(.concurrency)\(if .ceiling_1m_mb_per_s then " (1 MiB ceiling there: \(.ceiling_1m_mb_per_s) MB/s)" else "" end)", mark(.mb_per_s >= 400)] else ["1 MiB GET >= 400 MB/s (best concurrency)", "", mark(null)] end),
            ($r | best("put_1m") | if . then ["1 MiB PUT >= 300 MB/s (best concurrency)", "\(.mb_per_s) MB/s at c=\(.concurrency)\(if .ceiling_1m_mb_per_s then " (1 MiB ceiling there: \(.ceiling_1m_mb_per_s) MB/s)" else "" end)", mark(.mb_per_s >= 300)] else ["1 MiB PUT >= 300 MB/s (best concurrency)", "", mark(null)] end),
            (row("create_account"; 64) | if . then ["create_account >= 90% of the Argon2id capacity", "\(.rps)/s of \(.argon2_capacity_rps)/s = \(.ratio_to_argon2_capacity)", mark(.ratio_to_argon2_capacity >= 0.90)] else ["create_account >= 90% of the Argon2id capacity", "", mark(null)] end),
            ["confidoc-api idle RSS <= 32 MiB", "\($idle / 1024 * 10 | round / 10) MiB", mark($idle <= 32768)],
            ($r | map(select(.concurrency == 64)) | if length > 0 then (max_by(.api_rss_peak_kib) | ["confidoc-api peak RSS <= 256 MiB at c=64", "\(.api_rss_peak_kib / 1024 * 10 | round / 10) MiB (\(.case))", mark(.api_rss_peak_kib <= 262144)]) else ["confidoc-api peak RSS <= 256 MiB at c=64", "", mark(null)] end)
          ]
        | (["| target | measured | |", "|---|---|---|"] + map("| \(.[0]) | \(.[1]) | \(.[2]) |"))[]' "$TMP/latest.json"
} >"$TMP/latest.md"

# The chart: requests/s against concurrency, each case beside the ceiling.
{
    printf 'concurrency ceiling'
    for name in $CASES; do printf ' %s' "$name"; done
    echo
    for c in $CONCS; do
        printf '%s %s' "$c" "$(jq -r --argjson c "$c" 'select(.concurrency == $c) | .rps' "$CEIL_ROWS")"
        for name in $CASES; do
            printf ' %s' "$(jq -r --arg n "$name" --argjson c "$c" '.[] | select(.case == $n and .concurrency == $c) | .rps' "$TMP/latest.json")"
        done
        echo
    done
} >"$TMP/chart.dat"
gnuplot -e "datafile='$TMP/chart.dat'; outfile='$TMP/latest.png'; ncols=$((ncases + 1)); subtitle='$CORES cores, ${DURATION} s per point'" \
    "$BENCH/chart.gp" 2>"$TMP/gnuplot.log" || { cat "$TMP/gnuplot.log" >&2; die "gnuplot failed"; }

cp "$TMP/latest.json" "$TMP/latest.md" "$TMP/latest.png" "$RESULTS/"
rm -rf "$RESULTS/failed-logs"
echo
cat "$RESULTS/latest.md"
echo
say "wrote $RESULTS/latest.json, latest.md and latest.png"
