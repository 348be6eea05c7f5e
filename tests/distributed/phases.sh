# phases.sh: the faults under load of tests/distributed/run.sh (sourced by
# it, after the topology is up; uses its functions and variables).
# shellcheck shell=bash
#
# Phases, one after another, while LOAD_WORKERS workers (load.sh) write and
# read through nginx: baseline; galera (db2 killed with SIGKILL, restarted,
# rejoins by state transfer); api (app2's replica killed with SIGKILL,
# restarted through app2's node agent); memcached (mc2's link cut with ip link
# set down, then restored); cas (the CAS stopped and started again, then a
# release through a node agent); after. Then: every write answered 2xx read
# back directly from each API replica, the rate limit across the replicas,
# and a table of the counts.

# audit_releases SESSION: release lines of SESSION in the CAS's audit log.
audit_releases() { grep -c -F "\"kind\":\"release\",\"session\":\"$1\"" "$AUDIT" 2>/dev/null; }
set_phase() {
    echo "$1" >"$W/load/phase"
    PHASE_T0[$1]=$SECONDS
    PHASES+=("$1")
    say "phase $1: $2"
    # A request that a worker began in the phase before ends before the fault.
    sleep 1
}
end_phase() { PHASE_LEN[$1]=$((SECONDS - PHASE_T0[$1])); }
declare -A PHASE_T0=() PHASE_LEN=() FAILS=() RB_OK=() RB_BAD=() RB_PID=()
AUDIT=$W/cas/cas/audit.log
PHASES=()

# ---- the load's accounts, then the workers
for ((k = 0; k < LOAD_WORKERS; k++)); do
    out=$(ccurl --interface "$NET.$((60 + 4 * k))" -u "load$k:loadpass$k" https://web.confidoc/users/create_account)
    [ "$(jq -r .username <<<"$out" 2>/dev/null)" = "load$k" ] || die "create_account load$k: $out"
done
echo start >"$W/load/phase"
for ((k = 0; k < LOAD_WORKERS; k++)); do
    spawn "load$k" client bash "$SRC/tests/distributed/load.sh" "$W" "$k" "$(load_addrs "$k")"
done
say "load: $LOAD_WORKERS workers (write, then read back, about 4 requests/s each, 4 source addresses each) through nginx"

set_phase baseline "the load alone"
sleep 10
end_phase baseline

set_phase galera "db2 killed (SIGKILL), then restarted: it rejoins by state transfer"
stop db2 KILL
sleep 10
t_eq "with db2 down the cluster has 2 nodes" "$(wsrep 1 wsrep_cluster_size)" 2
start_db 2
t_true "db2 rejoins: Synced, wsrep_cluster_size 3" wait_for 120 "db2 rejoining" synced 2 3
for n in 1 3; do t_eq "db$n sees 3 nodes again" "$(wsrep "$n" wsrep_cluster_size)" 3; done
t_true "app2's replica moved from db2 to another node (its log)" \
    grep -q -E 'db: db2.confidoc:3306 unavailable; connecting to db[13].confidoc:3306' "$W/log/api2.log"
sleep 3
end_phase galera

set_phase api "app2's confidoc-api killed (SIGKILL), restarted through app2's node agent"
rel0=$(audit_releases api)
stop api2 KILL
sleep 8
t_true "app2's replica restarts and is ready" start_api 2
t_eq "it got its secrets again: one more release of session api" "$(audit_releases api)" $((rel0 + 1))
t_contains "the release names app2's node" "$(grep -F '"kind":"release","session":"api"' "$AUDIT" | tail -n 1)" \
    "node=${NODE_HASH[app2]}"
sleep 5
end_phase api

mc2_rx() { ip -n "$NSP-br" -s -j link show v-mc2 | jq '.[0].stats64.tx.bytes'; } # the bridge's tx = mc2's rx
mc2_conns() { ip netns exec "$NSP-mc2" ss -Htn state established "( sport = :$MC_PORT )" | wc -l; }
set_phase memcached "mc2's link cut (ip link set eth0 down on mc2), then restored"
ip -n "$NSP-mc2" link set eth0 down
sleep 12
ip -n "$NSP-mc2" link set eth0 up
rx0=$(mc2_rx)
sleep 12
rx1=$(mc2_rx)
t_true "mc2 is used again after its link is back (bytes to it: $rx0 -> $rx1)" test "$rx1" -gt $((rx0 + 1000))
t_true "the replicas hold connections to mc2 again ($(mc2_conns))" test "$(mc2_conns)" -ge 1
for n in 1 2; do
    t_true "app$n limited in-process while mc2 was cut, and went back to it" \
        bash -c "grep -q 'memcached unreachable, limiting in-process (server mc2.confidoc' '$W/log/api$n.log' &&
            grep -q 'memcached reachable again, limiting in memcached (server mc2.confidoc' '$W/log/api$n.log'"
done
end_phase memcached

set_phase cas "the CAS stopped (SIGTERM) and started again with its sealed state"
rel0=$(audit_releases probe)
stop cas TERM
sleep 3
t_true "the CAS restarts" start_cas
t_eq "its pin is the same" "$(cat "$W/cas/pin")" "$PIN"
t_eq "a release through a node agent after the restart (the probe reads app1's /readyz)" \
    "$(probe client -o /dev/null -w '%{http_code}' "https://app1.confidoc:$API_PORT/readyz")" 200
t_eq "one more release of session probe" "$(audit_releases probe)" $((rel0 + 1))
t_true "the audit log verifies against the pin" "$CAS" audit verify "$AUDIT" --pin "$PIN"
sleep 5
end_phase cas

set_phase after "everything back"
sleep 8
end_phase after
: >"$W/load/stop"
for ((k = 0; k < LOAD_WORKERS; k++)); do
    pid=$(pid_of "load$k")
    for ((i = 0; i < 200; i++)); do alive "$pid" || break; sleep 0.1; done
    stop "load$k" KILL
done

# ---- every acknowledged write, read back directly from each replica
# (session probe through the client's agent; its own source addresses, at
# most 50 requests each, so that the read-back stays below the rate limit).
say "read-back: every write answered 2xx, from app1 and from app2 directly"
mkdir -m 0755 "$W/rb"
chown confidoc-probe "$W/rb"
cat "$W"/load/w*.log >"$W/load/all.log"
awk '$2 == "W" && $4 ~ /^2/ {print $3}' "$W/load/all.log" | sort -n -u >"$W/rb/acked"
acked=$(wc -l <"$W/rb/acked")
rb_ip=100
for n in 1 2; do
    cfg=$W/rb/app$n.cfg
    : >"$cfg"
    j=0 gk=-1
    # A curl config group (between "next"s) has one user and one source
    # address: a new group for each user and every 50 reads.
    while read -r id; do
        k=$((id / 100000))
        if [ "$k" != "$gk" ] || [ "$j" -ge 50 ]; then
            [ "$gk" != -1 ] && echo next >>"$cfg"
            gk=$k j=0
            [ "$rb_ip" -le 250 ] || die "more acknowledged writes than the read-back's addresses cover"
            printf 'user = "load%s:loadpass%s"\n' "$k" "$k" >>"$cfg"
            ip -n "$NSP-client" addr add "$NET.$rb_ip/24" dev eth0 2>/dev/null
            printf 'interface = "%s"\nwrite-out = "%%{http_code} %%{url_effective}\\n"\n' "$NET.$rb_ip" >>"$cfg"
            printf 'cacert = "%s"\ncert = "%s"\nkey = "%s"\nsilent\nmax-time = 10\n' \
                "$PR/api-ca.crt" "$PR/api-client.crt" "$PR/api-client.key" >>"$cfg"
            rb_ip=$((rb_ip + 1))
        fi
        printf 'url = "https://app%s.confidoc:%s/documents/%s"\noutput = "%s"\n' \
            "$n" "$API_PORT" "$id" "$W/rb/app$n-$id" >>"$cfg"
        j=$((j + 1))
    done <"$W/rb/acked"
    chmod 0644 "$cfg"
    # Both replicas at once (each hashes the passwords on its own core).
    # shellcheck disable=SC2046
    hx client $(caslaunch client probe) "$(exe curl)" -K "$cfg" >"$W/rb/app$n.codes" 2>/dev/null &
    RB_PID[$n]=$!
done
for n in 1 2; do
    wait "${RB_PID[$n]}"
    # One jq and one awk for all: the answer's status and content of each id.
    jq -r '[input_filename, (.content // "")] | @tsv' "$W/rb/app$n-"* >"$W/rb/app$n.contents" 2>/dev/null
    read -r RB_OK[$n] RB_BAD[$n] <<<"$(awk -F'\t' -v codes="$W/rb/app$n.codes" \
        -v conts="$W/rb/app$n.contents" -v pre="$W/rb/app$n-" -v host="app$n" '
        FILENAME == codes { split($0, a, " "); i = a[2]; sub(/.*\/documents\//, "", i); code[i] = a[1]; next }
        FILENAME == conts { f = $1; sub(pre, "", f); cont[f] = $2; next }
        {
            id = $1; k = int(id / 100000)
            if (code[id] == "200" && cont[id] == "doc " id " of load" k) ok++
            else if (++bad <= 5) printf "# lost or wrong on %s: record %s of load%d (status %s)\n", host, id, k, code[id] >"/dev/stderr"
        }
        END { print ok + 0, bad + 0 }' "$W/rb/app$n.codes" "$W/rb/app$n.contents" "$W/rb/acked")"
    t_eq "every acknowledged write ($acked) reads back from app$n" "${RB_OK[$n]}/${RB_BAD[$n]}" "$acked/0"
done
t_true "the load wrote something in every phase" \
    bash -c "for p in ${PHASES[*]}; do awk -v p=\$p '\$1 == p && \$2 == \"W\" && \$4 ~ /^2/' '$W/load/all.log' | grep -q . || exit 1; done"
for n in 1 2 3; do
    t_eq "db$n: Synced in a cluster of 3 at the end" "$(wsrep "$n" wsrep_local_state_comment) $(wsrep "$n" wsrep_cluster_size)" "Synced 3"
done

# ---- the rate limit across both replicas: RATE_LIMIT+1 requests from one
# fresh address within one window (its start waited for), spread by nginx.
say "rate limit: $((RATE_LIMIT + 1)) requests from $RATE_IP within one ${RATE_WINDOW}s window"
cfg=$W/rl.cfg
printf 'interface = "%s"\ncacert = "%s"\nsilent\nmax-time = 10\nwrite-out = "%%{http_code}\\n"\n' \
    "$RATE_IP" "$W/client/nginx-ca.crt" >"$cfg"
for ((i = 0; i <= RATE_LIMIT; i++)); do printf 'url = "https://web.confidoc/users/me"\noutput = "/dev/null"\n' >>"$cfg"; done
while [ $(($(date +%s) % RATE_WINDOW)) -ne 0 ]; do sleep 0.1; done
rl_t0=$(date +%s)
lines0=$(wc -l <"$H/web/logs/nginx-access.log")
hx client curl -K "$cfg" >"$W/rl.codes" 2>/dev/null
rl_t1=$(date +%s)
rl_limited=$(grep -c '^429$' "$W/rl.codes")
rl_passed=$(grep -c -v '^429$' "$W/rl.codes")
t_true "the burst fit in one window (${rl_t0}..${rl_t1})" test $((rl_t0 / RATE_WINDOW)) -eq $((rl_t1 / RATE_WINDOW))
t_eq "request $((RATE_LIMIT + 1)) is limited (429)" "$(tail -n 1 "$W/rl.codes")" 429
t_true "at most $RATE_LIMIT passed ($rl_passed passed, $rl_limited limited)" test "$rl_passed" -le "$RATE_LIMIT"
spread=$(tail -n +"$((lines0 + 1))" "$H/web/logs/nginx-access.log" | awk '$3 == "/users/me" {print $7}' | sort | uniq -c | xargs)
t_true "nginx spread them over both replicas ($spread)" \
    bash -c "grep -q '${IP[app1]}:' <<<'$spread' && grep -q '${IP[app2]}:' <<<'$spread'"

# ---- the table
echo "#"
printf '# %-10s %5s %8s %8s %8s %8s  %s\n' phase secs writes w-fail reads r-fail "failed answers (status x count)"
for p in "${PHASES[@]}"; do
    read -r wok wf rok rf <<<"$(awk -v p="$p" '$1 == p {
        if ($2 == "W") { if ($4 ~ /^2/) wok++; else wf++ } else { if ($4 == "200") rok++; else rf++ } }
        END { printf "%d %d %d %d\n", wok, wf, rok, rf }' "$W/load/all.log")"
    codes=$(awk -v p="$p" '$1 == p && !(($2 == "W" && $4 ~ /^2/) || ($2 == "R" && $4 == "200")) {print $2 ":" $4}' \
        "$W/load/all.log" | sort | uniq -c | awk '{printf "%s x%d ", $2, $1}')
    printf '# %-10s %5s %8s %8s %8s %8s  %s\n' "$p" "${PHASE_LEN[$p]}" "$wok" "$wf" "$rok" "$rf" "${codes:--}"
    FAILS[$p]=$((wf + rf))
done
echo "#"
printf '# read-back of %s acknowledged writes: app1 %s ok / %s lost, app2 %s ok / %s lost\n' \
    "$acked" "${RB_OK[1]}" "${RB_BAD[1]}" "${RB_OK[2]}" "${RB_BAD[2]}"
printf '# rate limit: %s requests, %s passed, %s limited; replicas: %s\n' "$((RATE_LIMIT + 1))" \
    "$rl_passed" "$rl_limited" "$spread"
echo "#"
# Failed requests: none outside the faults; during a failover at most
# MAX_FAILOVER_ERRORS (requests in flight on the killed process that nginx
# cannot retry: a POST already sent).
MAX_FAILOVER_ERRORS=${CONFIDOC_DIST_MAX_FAILOVER_ERRORS:-6}
for p in baseline memcached cas after; do t_eq "no failed request in phase $p" "${FAILS[$p]}" 0; done
for p in galera api; do
    t_true "at most $MAX_FAILOVER_ERRORS failed requests in phase $p (${FAILS[$p]})" test "${FAILS[$p]}" -le "$MAX_FAILOVER_ERRORS"
done
