#!/usr/bin/env bash
# test_cas_metrics.sh: confidoc-cas serve's /metrics: on its own listener
# (--metrics-listen), served by the sandboxed worker, rendered by the parent;
# only a client certificate whose key hash is a --metrics-client gets it; the
# main port has no /metrics and the metrics port nothing else; the format is
# checked strictly; a release and a refusal (root: `run` mounts and changes
# uid) move confidoc_cas_releases_total{service} and
# confidoc_cas_refusals_total{reason} by one each, and the audit writes with
# them; no label names a client, an address or a key hash.
set -uo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${CONFIDOC_BUILD_DIR:-$SRC/build}
CAS=$BUILD/confidoc-cas
# shellcheck source=../lib/testlib.sh
source "$SRC/tests/lib/testlib.sh"
# shellcheck source=../../scripts/lib/ports.sh
source "$SRC/scripts/lib/ports.sh"

WORK=$(mktemp -d /tmp/confidoc-cas-metrics.XXXXXX)
chmod 755 "$WORK"
SERVE_PID=
cleanup() {
    [ -n "$SERVE_PID" ] && kill -KILL "$SERVE_PID" 2>/dev/null
    [ -n "$SERVE_PID" ] && wait "$SERVE_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
t_watchdog 180
trap 't_watchdog_stop; cleanup' EXIT

PORT=$(pick_port)
MPORT=$(pick_port)
for who in admin scraper stranger; do
    "$CAS" client-keygen --key "$WORK/$who.key" --cert "$WORK/$who.crt" --name "$who" \
        >"$WORK/$who.hash"
    declare "H_${who}=$(cat "$WORK/$who.hash")"
done

rc=0; "$CAS" serve --state "$WORK/nostate" --listen "127.0.0.1:$PORT" \
    --metrics-listen "127.0.0.1:$MPORT" --sealing-key "$WORK/sealing.key" >"$WORK/out" 2>&1 || rc=$?
t_contains "--metrics-listen without a --metrics-client is refused" "$rc $(cat "$WORK/out")" \
    "needs at least one --metrics-client"

"$CAS" serve --state "$WORK/state" --listen "127.0.0.1:$PORT" --name localhost \
    --admin "$H_admin" --sealing-key "$WORK/sealing.key" --socket "$WORK/cas.sock" \
    --metrics-listen "127.0.0.1:$MPORT" --metrics-client "$H_scraper" \
    --pidfile "$WORK/serve.pid" --pin-out "$WORK/pin" >>"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 1 100); do
    grep -q 'worker ready' "$WORK/serve.log" 2>/dev/null && ss -Htln "sport = :$MPORT" | grep -q . &&
        break
    sleep 0.1
done
t_true "serve starts with a metrics listener" bash -c 'ss -Htln "sport = :$1" | grep -q .' _ "$MPORT"
"$CAS" attest "127.0.0.1:$PORT" --expect "$(cat "$WORK/pin")" --ca-out "$WORK/ca.pem" >/dev/null

m() { # m WHO URL: curl as WHO (none: no certificate)
    local who=$1; shift
    if [ "$who" = none ]; then
        curl -s --max-time 10 --cacert "$WORK/ca.pem" "$@"
    else
        curl -s --max-time 10 --cacert "$WORK/ca.pem" --cert "$WORK/$who.crt" \
            --key "$WORK/$who.key" "$@"
    fi
}
scraper() { m scraper "$@"; }
stranger() { m stranger "$@"; }
nocert() { m none "$@"; }
MURL=https://localhost:$MPORT/metrics
scrape() { # scrape FILE
    local code
    code=$(scraper -o "$1" -w '%{http_code}' "$MURL") && [ "$code" = 200 ]
}
val() { awk -v k="$2" 'index($0, k " ") == 1 { v = $NF } END { print (v == "" ? 0 : v) }' "$1"; }
delta() { echo $(($(val "$2" "$3") - $(val "$1" "$3"))); }

echo "# who may scrape, and where"
t_true "the --metrics-client's certificate gets 200" scrape "$WORK/m0"
req scraper GET "$MURL"
t_contains "the exposition format 0.0.4" "$(header content-type)" "version=0.0.4"
req stranger GET "$MURL"
t_eq "another client certificate: 403" "$STATUS" 403
req nocert GET "$MURL"
t_eq "no client certificate: 403" "$STATUS" 403
t_not_contains "403 holds no counter" "$BODY" "confidoc_cas"
req scraper POST "$MURL" -H "Content-Length: 0"
t_eq "POST /metrics: 405" "$STATUS" 405
req scraper GET "https://localhost:$MPORT/v1/values/session=cas-identity,secret=CA"
t_eq "the metrics port serves nothing else (404)" "$STATUS" 404
req scraper GET "https://localhost:$PORT/metrics"
t_eq "the main port has no /metrics (404)" "$STATUS" 404
t_true "prom_check.py accepts the exposition" python3 "$SRC/tests/lib/prom_check.py" "$WORK/m0"
if command -v promtool >/dev/null; then
    out=$(promtool check metrics <"$WORK/m0" 2>&1)
    t_eq "promtool check metrics: no problem" "$?:$out" "0:"
fi
scrape "$WORK/m1"
t_eq "scrapes are counted: +2 since m0 (the 200 above and m1's own; not the refused ones)" \
    "$(delta "$WORK/m0" "$WORK/m1" confidoc_cas_scrapes_total)" 2

if [ "$(id -u)" != 0 ]; then
    echo "# releases: root only (run mounts a tmpfs and changes uid); skipped"
    t_finish
    exit $?
fi

echo "# a release and a refusal move the counters"
mkdir -p "$WORK/bin" "$WORK/mnt/run"
install -m 755 "$BUILD/tests/prog_secret_reader" "$WORK/bin/reader"
cat >"$WORK/runner.yaml" <<YAML
name: runner
measurements:
  executable: [$(sha256sum "$WORK/bin/reader" | cut -d' ' -f1)]
  user: nobody
  mount: $WORK/mnt/run
secrets:
  - name: KEY
    kind: symmetric-key
injection_files:
  - path: runner/key.hex
    content: \$\$CAS::KEY.hex\$\$
YAML
t_true "the admin creates a releasable session" bash -c '"$@" >/dev/null' _ "$CAS" session put \
    "$WORK/runner.yaml" --cas "localhost:$PORT" --cacert "$WORK/ca.pem" --cert "$WORK/admin.crt" \
    --key "$WORK/admin.key"
scrape "$WORK/m2"
out=$("$CAS" run --session runner --socket "$WORK/cas.sock" -- "$WORK/bin/reader" runner/key.hex 2>&1)
t_contains "run gets the session's files" "$out" "file runner/key.hex"
rc=0; "$CAS" run --session runner --socket "$WORK/cas.sock" -- /bin/true >"$WORK/out" 2>&1 || rc=$?
t_contains "another executable is refused" "$rc $(cat "$WORK/out")" "refused"
rc=0; "$CAS" run --session nosuch --socket "$WORK/cas.sock" -- "$WORK/bin/reader" >"$WORK/out" 2>&1 || rc=$?
t_contains "an unknown session is refused" "$rc $(cat "$WORK/out")" "refused"
scrape "$WORK/m3"
t_eq "releases_total{service=\"runner\"}: +1" \
    "$(delta "$WORK/m2" "$WORK/m3" 'confidoc_cas_releases_total{service="runner"}')" 1
t_eq "refusals_total{reason=\"executable\"}: +1" \
    "$(delta "$WORK/m2" "$WORK/m3" 'confidoc_cas_refusals_total{reason="executable"}')" 1
t_eq "refusals_total{reason=\"unknown_session\"}: +1" \
    "$(delta "$WORK/m2" "$WORK/m3" 'confidoc_cas_refusals_total{reason="unknown_session"}')" 1
t_eq "no other reason moved" "$(delta "$WORK/m2" "$WORK/m3" 'confidoc_cas_refusals_total{reason="other"}')" 0
t_eq "audit writes: +3 (one a release or refusal)" \
    "$(delta "$WORK/m2" "$WORK/m3" 'confidoc_cas_audit_writes_total{result="ok"}')" 3
t_true "prom_check.py accepts it still" python3 "$SRC/tests/lib/prom_check.py" "$WORK/m3"
labels=$(grep -v '^#' "$WORK/m3" | grep -o '{[^}]*}' | sort -u)
t_not_contains "no key hash in a label" "$labels" "$H_scraper"
t_not_contains "no address in a label" "$labels" "127.0.0.1"
t_not_contains "no uid or pid in a label" "$labels" "uid="

kill -TERM "$SERVE_PID"
rc=0; wait "$SERVE_PID" || rc=$?
SERVE_PID=
t_eq "SIGTERM stops serve with status 0" "$rc" 0
t_finish
