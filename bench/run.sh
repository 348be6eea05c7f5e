#!/usr/bin/env bash
# run.sh: the whole-system benchmark of confidoc (`make bench`), side by side with its ceiling.
#
# Brings up its own stack (`make up`) in a temporary state directory on free ports, with the
# rate limit raised, creates a user and its documents, measures each case with wrk through
# nginx over TLS with keep-alive at each concurrency, measures the ceiling (the same nginx
# configuration in front of a trivial mutual-TLS upstream) at the same concurrencies, and
# writes bench/results/latest.{json,md,png}. Everything it started is stopped at the end,
# whatever happens (trap). docs/performance.md explains every number.
#
# Environment:
#   BENCH_DURATION     seconds measured per case and concurrency (default 20)
#   BENCH_WARMUP       seconds of warm-up before each measurement, not counted (default 3; 0: none)
#   BENCH_CONCURRENCY  connections to measure at (default "1 16 64")
#   BENCH_CASES        cases to run (default: all; names below)
#   BENCH_RESULTS_DIR  where results go (default bench/results)
#   BENCH_ARGON2_COUNT Argon2id computations timed for the capacity (default 10)
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
if ! CONFIDOC_STATE_DIR=$STATE CONFIDOC_HTTPS_PORT=$HTTPS_PORT CONFIDOC_RATE_LIMIT=$RATE_LIMIT \
    CONFIDOC_LIBEXEC_DIR=${CONFIDOC_LIBEXEC_DIR:-$TMP/libexec} \
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

# The front: the stack's own nginx configuration, with only its listening port, its
# upstream's address, and its pid, log and temporary paths changed.
# (The master rewrites its command line as one string, "nginx: master process nginx -p ...".)
nginx_arg() { tr '\0' ' ' <"/proc/$NGINX_PID/cmdline" | sed -n "s/.* $1 \([^ ]*\).*/\1/p"; }
ng_prefix=$(nginx_arg -p)
ng_conf=$(nginx_arg -c)
case $ng_conf in /*) ;; *) ng_conf=${ng_prefix%/}/$ng_conf ;; esac
[ -n "$ng_prefix" ] && [ -r "$ng_conf" ] || die "cannot find the stack's nginx configuration"
api_port=${CONFIDOC_API_ADDR##*:}
sed -E -e "s#^([[:space:]]*listen[[:space:]]+127\.0\.0\.1:)$HTTPS_PORT([[:space:];])#\1$CEIL_PORT\2#" \
    -e "s#^([[:space:]]*server[[:space:]]+127\.0\.0\.1:)$api_port([[:space:];])#\1$UP_PORT\2#" \
    -e "s#^([[:space:]]*pid)[[:space:]]+[^;]+;#\1 $CEIL/front.pid;#" \
    -e "s#^([[:space:]]*error_log)[[:space:]]+[^[:space:];]+#\1 $CEIL/log/front-error.log#" \
    -e "s#^([[:space:]]*access_log)[[:space:]]+[^[:space:];]+#\1 $CEIL/log/front-access.log#" \
    -e "s#^([[:space:]]*(client_body|proxy|fastcgi|uwsgi|scgi)_temp_path)[[:space:]]+[^;]+;#\1 $CEIL/tmp/\2;#" \
    -e "s#^([[:space:]]*proxy_ssl_trusted_certificate)[[:space:]]+[^;]+;#\1 $CONFIDOC_CACERT;#" \
    "$ng_conf" >"$CEIL/front.conf"
grep -Eq "listen[[:space:]]+127\.0\.0\.1:$CEIL_PORT[[:space:];]" "$CEIL/front.conf" &&
    grep -Eq "server[[:space:]]+127\.0\.0\.1:$UP_PORT[[:space:];]" "$CEIL/front.conf" &&
    ! grep -Eq "127\.0\.0\.1:($HTTPS_PORT|$api_port)[^0-9]|${ng_prefix%/}/(run|log|tmp)|$STATE/(run|log)" "$CEIL/front.conf" ||
    die "cannot derive the ceiling's nginx configuration from $ng_conf"

# Keys are in no file: both nginx instances start through the CAS's launcher as
# session nginx, so the upstream presents nginx's own server certificate (the
# front trusts the public CA for it, above) and verifies the front's client
# certificate against the API's CA, as the API does.
NG_TLS=$CONFIDOC_STATE_DIR/secrets/nginx/nginx/tls
sed -e "s|@DIR@|$CEIL|g" -e "s|@PORT@|$UP_PORT|g" -e "s|@TLS_CERT@|$NG_TLS/server.crt|" \
    -e "s|@TLS_KEY@|$NG_TLS/server.key|" -e "s|@CLIENT_CA@|$NG_TLS/api-ca.crt|" \
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
# Proof that the upstream demands the proxy's certificate: without one it refuses.
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -k "https://localhost:$UP_PORT/" || true)
[ "$code" = 400 ] || die "the ceiling's upstream does not require a client certificate (HTTP $code)"
say "ceiling: https://localhost:$CEIL_PORT -> mutual TLS -> trivial upstream on port $UP_PORT"

# ---------------------------------------------------------------- running cases

RUN_NO=0
ROWS=$TMP/rows.jsonl
CEIL_ROWS=$TMP/ceiling.jsonl
: >"$ROWS"
: >"$CEIL_ROWS"

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

# measure CASE CONC: warm-up, then the measurement with /proc sampling; appends one row.
measure() {
    local name=$1 conc=$2 base=$URL script=$1 line cpu0 cpu1 rss peak reqs dur ok bad sock \
        okw=0 docs0="" docs1 wl
    if [ "$name" = ceiling ]; then base=https://localhost:$CEIL_PORT; fi
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
        >>"$([ "$name" = ceiling ] && echo "$CEIL_ROWS" || echo "$ROWS")"
    kill -0 "$API_PID" 2>/dev/null || die "confidoc-api died during $name"
    settle
    printf 'bench: %-20s c=%-3s %10s req/s  p50 %8s ms  p99 %8s ms  errors %s\n' "$name" "$conc" \
        "$(jq -r .rps <<<"$(tail -n 1 "$([ "$name" = ceiling ] && echo "$CEIL_ROWS" || echo "$ROWS")")")" \
        "$(awk -v v="$(field p50_us "$line")" 'BEGIN{printf "%.2f", v/1000}')" \
        "$(awk -v v="$(field p99_us "$line")" 'BEGIN{printf "%.2f", v/1000}')" "$((bad + sock))"
}

ncases=$(($(wc -w <<<"$CASES") + 1))
nconcs=$(wc -w <<<"$CONCS")
say "measuring $ncases x $nconcs runs of ${WARMUP}s warm-up + ${DURATION}s (about $((ncases * nconcs * (WARMUP + DURATION) / 60 + 1)) min)"
for c in $CONCS; do
    CASE_DOC=$DOC_1K CASE_BODY=$TMP/body-1k.txt measure ceiling "$c"
done
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

# ---------------------------------------------------------------- results

mkdir -p "$RESULTS"
FLUSH=$(mariadb --no-defaults --socket="${CONFIDOC_DB_ADMIN_SOCKET:-/nonexistent}" -u root -N -B \
    --connect-timeout=5 -e 'SELECT @@innodb_flush_log_at_trx_commit' 2>/dev/null || echo unknown)
jq -s --slurpfile ceil "$CEIL_ROWS" --argjson cap "$ARGON2_CAP" '
    ($ceil | map({key: (.concurrency | tostring), value: .rps}) | from_entries) as $c
    | map({case, concurrency, rps, p50_ms, p99_ms, errors, api_cpu_us_per_req, api_rss_peak_kib,
           ceiling_rps: $c[.concurrency | tostring],
           ratio_to_ceiling: (if $c[.concurrency | tostring] then
               (.rps / $c[.concurrency | tostring] * 1000 | round / 1000) else null end)}
          + (if .case == "create_account" then
               {argon2_capacity_rps: $cap, ratio_to_argon2_capacity: (.rps / $cap * 1000 | round / 1000)}
             else {} end)
          + (if .case == "put_1m" or .case == "get_1m" then
               {mb_per_s: (.rps * 1048576 / 1e6 * 10 | round / 10)} else {} end))' \
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
    echo "Ceiling (the same nginx configuration in front of a trivial mutual-TLS upstream answering the same 1 KiB bytes):"
    echo
    echo "| concurrency | req/s | p50 ms | p99 ms | errors |"
    echo "|---:|---:|---:|---:|---:|"
    jq -r '"| \(.concurrency) | \(.rps) | \(.p50_ms) | \(.p99_ms) | \(.errors) |"' "$CEIL_ROWS"
    echo
    echo "Targets of issue 5 (at concurrency 64 unless said otherwise):"
    echo
    jq -r --argjson idle "$IDLE_RSS" --arg flush "$FLUSH" --arg writes "$(
        [ -s "$TMP/writes.txt" ] && awk '{ if ($4 < $3) bad = 1 } END { print bad ? "missing" : "all stored" }' "$TMP/writes.txt" || echo unchecked)" '
        def row(c; n): map(select(.case == c and .concurrency == n)) | first;
        def mark(ok): if ok == null then "not measured" elif ok then "met" else "NOT met" end;
        def best(c): map(select(.case == c)) | max_by(.rps);
        . as $r
        | [ (row("get_1k"; 64) | if . then ["GET 1 KiB: ratio to ceiling >= 0.20, p99 < 20 ms", "ratio \(.ratio_to_ceiling), p99 \(.p99_ms) ms", mark(.ratio_to_ceiling >= 0.20 and .p99_ms < 20)] else ["GET 1 KiB", "", mark(null)] end),
            (row("create_document_1k"; 64) | if . then ["create_document 1 KiB: ratio >= 0.12, no errors, every 2xx stored", "ratio \(.ratio_to_ceiling), errors \(.errors), rows \($writes), innodb_flush_log_at_trx_commit=\($flush)", mark(.ratio_to_ceiling >= 0.12 and .errors == 0 and $writes == "all stored" and $flush == "1")] else ["create_document 1 KiB", "", mark(null)] end),
            (row("get_1k"; 64) | if . then ["API CPU per GET 1 KiB <= 80 µs", "\(.api_cpu_us_per_req) µs", mark(.api_cpu_us_per_req <= 80)] else ["API CPU per GET 1 KiB", "", mark(null)] end),
            (row("create_account"; 64) | if . then ["create_account >= 70% of the Argon2id capacity", "\(.rps)/s of \(.argon2_capacity_rps)/s = \(.ratio_to_argon2_capacity)", mark(.ratio_to_argon2_capacity >= 0.70)] else ["create_account", "", mark(null)] end),
            ($r | best("put_1m") | if . then ["1 MiB PUT >= 300 MB/s (best concurrency)", "\(.mb_per_s) MB/s at c=\(.concurrency)", mark(.mb_per_s >= 300)] else ["1 MiB PUT", "", mark(null)] end),
            ($r | best("get_1m") | if . then ["1 MiB GET >= 300 MB/s (best concurrency)", "\(.mb_per_s) MB/s at c=\(.concurrency)", mark(.mb_per_s >= 300)] else ["1 MiB GET", "", mark(null)] end),
            ["confidoc-api idle RSS <= 32 MiB", "\($idle / 1024 * 10 | round / 10) MiB", mark($idle <= 32768)],
            ($r | map(select(.concurrency == 64)) | if length > 0 then (max_by(.api_rss_peak_kib) | ["confidoc-api peak RSS <= 256 MiB in the concurrency-64 cases", "\(.api_rss_peak_kib / 1024 * 10 | round / 10) MiB (\(.case))", mark(.api_rss_peak_kib <= 262144)]) else ["peak RSS at 64", "", mark(null)] end)
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
