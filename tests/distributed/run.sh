#!/usr/bin/env bash
# run.sh: `make check-distributed` (issue 12, "The distributed topology, for
# real, on one machine"; docs/internals/distributed-test.md). As root: hosts
# made of network namespaces on a bridge of their own (10.231.0.0/24, a
# blackhole route for it in the host namespace first, nothing sent from the
# host namespace), each service on its own address with certificates naming
# its host, every secret released by the CAS through the node agent of the
# service's host (`confidoc-cas run --socket AGENT.sock`):
#
#   cas     10.231.0.2   confidoc-cas serve (the node agents' identities admitted)
#   db1-3   .11-.13      MariaDB Galera (galera-4), replication and SST over TLS
#   mc1-2   .21-.22      memcached (TLS, client certificates)
#   app1-2  .31-.32      confidoc-api replicas
#   web     .41          nginx (TLS; mutual TLS to both replicas)
#   client  .51 (+ load and rate-limit addresses)
#
# Then the original's three queries through nginx, and a mixed read/write
# load during which, one after another: one Galera node is killed and
# brought back, one API replica is killed and brought back, one memcached
# host's link is cut and restored, the CAS is restarted. Checks: see the
# docs. Prints what it does and a table of counts; exit status 0 only when
# every check passed. Bounded (CONFIDOC_DIST_TIMEOUT, default 840 s); the EXIT
# trap kills every process it started (by PID and process group), deletes
# every namespace and the route and removes its directory.
set -uo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
BUILD=${CONFIDOC_BUILD_DIR:-$SRC/build}
# shellcheck source=../lib/testlib.sh
. "$SRC/tests/lib/testlib.sh"
# shellcheck source=../../scripts/lib/api_conf.sh
. "$SRC/scripts/lib/api_conf.sh"

TIMEOUT=${CONFIDOC_DIST_TIMEOUT:-840}
NET=10.231.0
SUBNET=$NET.0/24
CAS_PORT=18000 API_PORT=8080 DB_PORT=3306 MC_PORT=11211
RATE_LIMIT=${CONFIDOC_DIST_RATE_LIMIT:-60} RATE_WINDOW=10
LOAD_WORKERS=${CONFIDOC_DIST_LOAD_WORKERS:-3}

say() { printf '# [%3ds] %s\n' "$SECONDS" "$*"; }
die() {
    t_fail "$*"
    exit 1
}

if [ "$(id -u)" -ne 0 ]; then
    echo "ok - skipped: make check-distributed needs root (network namespaces, mounts, uid changes)"
    exit 77
fi
for t in ip flock setsid setpriv mariadbd mariadb mariadb-install-db mariabackup socat memcached nginx curl jq openssl; do
    command -v "$t" >/dev/null 2>&1 || die "missing program $t (run: make deps)"
done
[ -f /usr/lib/galera/libgalera_smm.so ] || die "missing galera-4 (run: make deps)"
for u in confidoc confidoc-migrate confidoc-probe confidoc-cas mysql memcache www-data; do
    id -u "$u" >/dev/null 2>&1 || die "missing user $u (make up creates the confidoc-* users)"
done
[ -x "$BUILD/confidoc-api" ] && [ -x "$BUILD/confidoc-cas" ] || die "no $BUILD/confidoc-api or confidoc-cas (make build)"

# One run at a time on this machine: the subnet and its route are fixed.
exec 8>/tmp/confidoc-distributed.lock
flock -n 8 || die "another make check-distributed runs (/tmp/confidoc-distributed.lock)"

# bash notes each job that a signal ended ("line N: PID Killed ..."): the
# faults below kill on purpose; those notes are left out.
exec 2> >(grep -v --line-buffered -E '^[^ ]*run.sh: line [0-9]+: +[0-9]+ Killed ' >&2)
W=$(mktemp -d /tmp/confidoc-dist.XXXXXX) || exit 1
chmod 0711 "$W"
mkdir -p "$W/pids" "$W/log" "$W/bin" "$W/load" "$W/keys"
NSP=cdd$$
NSS=()
ROUTE=0
KEEP=${CONFIDOC_DIST_KEEP:-0}

HOSTS=(cas db1 db2 db3 mc1 mc2 app1 app2 web client)
declare -A IP=([cas]=$NET.2 [db1]=$NET.11 [db2]=$NET.12 [db3]=$NET.13 [mc1]=$NET.21 [mc2]=$NET.22
    [app1]=$NET.31 [app2]=$NET.32 [web]=$NET.41 [client]=$NET.51)
AGENT_HOSTS=(db1 db2 db3 mc1 mc2 app1 app2 web client)
RATE_IP=$NET.90

# ---------------------------------------------------------------- processes

# spawn NAME HOST CMD...: CMD in HOST (its network namespace, and a mount
# namespace in which /etc/hosts is the topology's), in a process group of
# its own, output to W/log/NAME.log, PID in W/pids/NAME.
spawn() {
    local name=$1 host=$2
    shift 2
    setsid ip netns exec "$NSP-$host" sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$W/hosts" "$@" \
        </dev/null >>"$W/log/$name.log" 2>&1 &
    echo $! >"$W/pids/$name"
}

# hx HOST CMD...: CMD in HOST, in the foreground.
hx() {
    local host=$1
    shift
    ip netns exec "$NSP-$host" sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$W/hosts" "$@"
}

pid_of() { cat "$W/pids/$1" 2>/dev/null; }

alive() {
    local st
    [ -r "/proc/$1/stat" ] || return 1
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# stop NAME [SIGNAL]: signals NAME's process group (default TERM), waits at
# most 30 s, then KILLs it; reaps it.
stop() {
    local name=$1 sig=${2:-TERM} pid i
    pid=$(pid_of "$name") || return 0
    [ -n "$pid" ] || return 0
    kill "-$sig" -- "-$pid" 2>/dev/null || kill "-$sig" "$pid" 2>/dev/null
    for ((i = 0; i < 300; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        kill -KILL -- "-$pid" 2>/dev/null
        kill -KILL "$pid" 2>/dev/null
    fi
    { wait "$pid"; } 2>/dev/null
    # Children of the group that outlived their leader (SST scripts, workers).
    kill -KILL -- "-$pid" 2>/dev/null
    rm -f "$W/pids/$name"
}

# wait_for SECONDS WHAT CMD...: polls CMD every 0.2 s.
wait_for() {
    local secs=$1 what=$2 i
    shift 2
    for ((i = 0; i < secs * 5; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    say "timed out after ${secs}s waiting for $what"
    return 1
}

cleanup() {
    local f ns
    trap '' TERM INT
    t_watchdog_stop
    exec 2>/dev/null # bash's notes on the jobs killed here
    for f in "$W"/pids/*; do
        [ -f "$f" ] || continue
        stop "$(basename "$f")" KILL
    done
    if [ "$T_FAIL" -gt 0 ]; then
        for f in "$W"/log/*.log; do
            [ -s "$f" ] || continue
            echo "# --- tail of $(basename "$f")"
            tail -n 15 "$f" | sed 's/^/#   /'
        done
    fi
    for ns in "${NSS[@]}"; do ip netns delete "$ns" 2>/dev/null; done
    [ "$ROUTE" = 1 ] && ip route del blackhole "$SUBNET" 2>/dev/null
    if [ "$KEEP" = 1 ]; then echo "# kept $W"; else rm -rf "$W"; fi
}
t_watchdog "$TIMEOUT"
trap 'trap "" TERM; cleanup' EXIT

# ---------------------------------------------------------------- the network

# What a run that was killed outright (SIGKILL: no EXIT trap) left behind;
# the lock says no run is under way: its namespaces (with the processes
# still in them) and its blackhole route.
for ns in $(ip netns list | awk '{print $1}' | grep -E '^cdd[0-9]+-'); do
    say "removing namespace $ns of an interrupted run"
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns delete "$ns" 2>/dev/null
done
say "network: blackhole route for $SUBNET in the host namespace first"
route=$(ip route show "$SUBNET" | xargs)
if [ "$route" = "blackhole $SUBNET" ]; then
    say "the blackhole route of an interrupted run is there already: kept, removed at the end"
elif [ -n "$route" ]; then
    die "$SUBNET is routed on this machine ($route): the test needs it unused"
else
    ip route add blackhole "$SUBNET" || die "cannot add the blackhole route for $SUBNET"
fi
ROUTE=1
mkns() {
    ip netns add "$NSP-$1" || die "ip netns add $NSP-$1"
    NSS+=("$NSP-$1")
    ip -n "$NSP-$1" link set lo up
}
mkns br
ip -n "$NSP-br" link add br0 type bridge && ip -n "$NSP-br" link set br0 up || die "the bridge"
for h in "${HOSTS[@]}"; do
    mkns "$h"
    ip -n "$NSP-br" link add "v-$h" type veth peer name eth0 netns "$NSP-$h" &&
        ip -n "$NSP-br" link set "v-$h" master br0 up &&
        ip -n "$NSP-$h" addr add "${IP[$h]}/24" dev eth0 &&
        ip -n "$NSP-$h" link set eth0 up || die "the link of $h"
done
# load_addrs K: the source addresses of load worker K (4 each, from .60).
load_addrs() {
    local b=$((60 + 4 * $1))
    echo "$NET.$b,$NET.$((b + 1)),$NET.$((b + 2)),$NET.$((b + 3))"
}
for ((i = 0; i < LOAD_WORKERS; i++)); do
    for a in $(load_addrs "$i" | tr , ' '); do ip -n "$NSP-client" addr add "$a/24" dev eth0; done
done
ip -n "$NSP-client" addr add "$RATE_IP/24" dev eth0
{
    echo "127.0.0.1 localhost"
    for h in "${HOSTS[@]}"; do echo "${IP[$h]} $h.confidoc $h"; done
} >"$W/hosts"
chmod 0644 "$W/hosts"
say "network: ${#HOSTS[@]} hosts on bridge br0 (namespace $NSP-br)"

# ---------------------------------------------------------------- files

install -m 0755 "$BUILD/confidoc-cas" "$BUILD/confidoc-api" "$W/bin/"
CAS=$W/bin/confidoc-cas
sha() { sha256sum <"$1" | cut -d' ' -f1; }
exe() { readlink -f "$(command -v "$1")"; }
H=$W/h
SEC=$W/secrets
mkdir -p "$H" "$SEC"
chmod 0711 "$H" "$SEC"
for s in mariadb memcached migrate api nginx probe; do mkdir -m 0700 "$SEC/$s"; done
dir_for() { # dir_for PATH MODE OWNER:GROUP
    mkdir -p "$1" && chmod "$2" "$1" && chown "$3" "$1"
}

# The operator's key (session access) and each node agent's identity.
"$CAS" client-keygen --key "$W/keys/operator.key" --cert "$W/keys/operator.crt" --name confidoc-operator \
    >"$W/keys/operator.hash" || die "client-keygen"
OPH=$(cat "$W/keys/operator.hash")
NODE_ARGS=()
declare -A NODE_HASH=()
for h in "${AGENT_HOSTS[@]}"; do
    NODE_HASH[$h]=$("$CAS" client-keygen --key "$W/keys/node-$h.key" --cert "$W/keys/node-$h.crt" --name "node-$h")
    NODE_ARGS+=(--node "${NODE_HASH[$h]}")
done

# Configuration files, per host.
for n in 1 2 3; do
    d=$H/db$n
    dir_for "$d" 0750 root:mysql
    for s in data tmp run; do dir_for "$d/$s" 0700 mysql:mysql; done
    t=$SEC/mariadb/mariadb/tls
    sed -e "s|@USER_LINE@||" -e "s|@DB_DIR@|$d|g" -e "s|@TLS_DIR@|$t|g" \
        -e "s|@KEY_DIR@|$SEC/mariadb/mariadb-key|g" -e "s|@DB_PORT@|$DB_PORT|g" \
        -e "s|^bind-address=.*|bind-address=${IP[db$n]}|" \
        -e "s|^innodb_buffer_pool_size=.*|innodb_buffer_pool_size=64M|" \
        -e "s|^innodb_log_file_size=.*|innodb_log_file_size=48M|" \
        "$SRC/deploy/mariadb/my.cnf.in" >"$d/my.cnf"
    # The chart's Galera settings (deploy/helm/confidoc/templates/_configs.tpl).
    cat >>"$d/my.cnf" <<EOF

[galera]
wsrep_on=ON
wsrep_provider=/usr/lib/galera/libgalera_smm.so
wsrep_cluster_name=confidoc
wsrep_cluster_address=gcomm://${IP[db1]},${IP[db2]},${IP[db3]}
wsrep_node_address=${IP[db$n]}
wsrep_node_name=db$n
wsrep_provider_options="gmcast.listen_addr=tcp://${IP[db$n]}:4567;socket.ssl=yes;socket.ssl_cert=$t/server.crt;socket.ssl_key=$t/server.key;socket.ssl_ca=$t/ca.crt;pc.wait_prim=no;pc.recovery=TRUE;gcache.size=64M"
wsrep_sst_method=mariabackup
wsrep_sst_auth=mysql:
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2

[sst]
ssl-mode=VERIFY_CA
tmpdir=$d/tmp
sst-log-archive-dir=$d/tmp/sst-log-archive
EOF
    chmod 0640 "$d/my.cnf" && chown root:mysql "$d/my.cnf"
done
for n in 1 2; do
    d=$H/mc$n
    dir_for "$d" 0750 root:memcache
    sed -e "s|^-l .*|-l ${IP[mc$n]}|" -e "s|@MEMCACHED_PORT@|$MC_PORT|" -e "s|@MEMCACHED_MB@|64|" \
        -e "s|@TLS_DIR@|$SEC/memcached/memcached/tls|g" "$SRC/deploy/memcached/memcached.conf.in" |
        grep -v -e '^#' -e '^$' >"$d/memcached.conf"
done
# The memcached certificate names mc1.confidoc and mc2.confidoc (policy
# memcached below), not localhost: no memcached_server_name, so each server is
# verified against its own name. No lockout memcached in this topology: the
# failed-login counters share memcached_servers (the default).
api_conf() { # api_conf HOST DBHOSTS
    echo "# api.conf of $1 (tests/distributed/run.sh)"
    api_conf_wiring --listen-addr "${IP[$1]}" --listen-port "$API_PORT" --secrets "$SEC/api/api" \
        --db-host "$2" --db-port "$DB_PORT" --memcached "mc1.confidoc:$MC_PORT,mc2.confidoc:$MC_PORT" \
        --extra "rate_limit = $RATE_LIMIT" --extra "rate_window = $RATE_WINDOW"
}
for n in 1 2; do
    d=$H/app$n
    dir_for "$d" 0751 root:confidoc
    # Every Galera node, its own first (app2's: db2, the node killed below).
    api_conf "app$n" "$(if [ "$n" = 1 ]; then echo db1.confidoc,db2.confidoc,db3.confidoc; else
        echo db2.confidoc,db3.confidoc,db1.confidoc; fi)" >"$d/api.conf" || die "cannot write $d/api.conf"
    chmod 0640 "$d/api.conf" && chown root:confidoc "$d/api.conf"
done
m=$SEC/migrate/migrate
dir_for "$H/app1/migrate" 0750 root:confidoc-migrate
cat >"$H/app1/migrate/migrate.conf" <<EOF
tls_cert = unused
tls_key = unused
client_ca = unused
master_key_file = unused
db_host = db1.confidoc
db_port = $DB_PORT
db_name = confidoc
db_user = confidoc_migrate
db_tls_ca = $m/db/ca.crt
db_tls_cert = $m/db/client.crt
db_tls_key = $m/db/client.key
db_pool_size = 1
EOF
chmod 0640 "$H/app1/migrate/migrate.conf" && chown root:confidoc-migrate "$H/app1/migrate/migrate.conf"
d=$H/web
dir_for "$d" 0750 root:www-data
dir_for "$d/conf" 0700 root:root
dir_for "$d/tmp" 0750 root:www-data
dir_for "$d/www" 0750 root:www-data
dir_for "$d/logs" 0700 root:root
sed -e "s|@USER_DIRECTIVE@|user www-data www-data;|" -e "s|@NGINX_DIR@|$d|g" \
    -e "s|@TLS_DIR@|$SEC/nginx/nginx/tls|g" -e "s|@LOG_DIR@|$d/logs|g" -e "s|@HTTPS_PORT@|443|g" \
    -e "s|@MAX_BODY_BYTES@|16777216|g" -e "s|@API_HOST@|api.confidoc|g" -e "s|@WWW_DIR@|$d/www|g" \
    -e "s|@NGINX_WORKERS@|2|g" -e "s|listen 127.0.0.1:|listen ${IP[web]}:|" \
    -e "s|server 127.0.0.1:@API_PORT@;|server ${IP[app1]}:$API_PORT; server ${IP[app2]}:$API_PORT;|" \
    -e "s|\$request_time';|\$request_time \$upstream_addr \$upstream_status';|" \
    "$SRC/deploy/nginx/nginx.conf.in" >"$d/conf/nginx.conf"
grep -q '@[A-Z_]*@' "$d/conf/nginx.conf" && die "unfilled placeholder in nginx.conf"
chmod 0600 "$d/conf/nginx.conf"
dir_for "$W/client" 0755 root:root
for h in "${AGENT_HOSTS[@]}"; do dir_for "$H/$h/agent" 0755 root:root; done

# ---------------------------------------------------------------- policies

# deploy/policies/NAME.yaml with certificates naming this topology's hosts
# (DNS names and addresses), followed by the session (measurements: the
# configuration files of every host running the session).
P=$W/policies
mkdir -m 0700 "$P"
policy() { # policy NAME DNS IPS [sed args...]
    local n=$1 dns=$2 ips=$3
    shift 3
    sed -e "s|dns: \[\"\${[A-Z_]*}\"\]|dns: [$dns]|" -e "s|ip: \[127.0.0.1\]|ip: [$ips]|" "$@" \
        "$SRC/deploy/policies/$n.yaml" >"$P/$n.yaml"
}
policy mariadb '"db1.confidoc", "db2.confidoc", "db3.confidoc"' "${IP[db1]}, ${IP[db2]}, ${IP[db3]}" \
    -e 's|usage: \[server\]|usage: [server, client]|' # Galera's nodes are each other's clients
policy memcached '"mc1.confidoc", "mc2.confidoc"' "${IP[mc1]}, ${IP[mc2]}"
policy api '"api.confidoc", "app1.confidoc", "app2.confidoc"' "${IP[app1]}, ${IP[app2]}"
policy nginx '"web.confidoc"' "${IP[web]}"
cp "$SRC/deploy/policies/migrate.yaml" "$SRC/deploy/policies/probe.yaml" "$P/"
session() { # session NAME EXE... -- USER MOUNT CONFIG...
    local n=$1 e=() u mnt c
    shift
    while [ "$1" != -- ]; do e+=("$(sha "$1")"); shift; done
    shift
    u=$1 mnt=$2
    shift 2
    {
        echo "access:"
        echo "  read: [$OPH]"
        echo "  update: [$OPH]"
        echo "measurements:"
        echo "  executable: [$(IFS=,; echo "${e[*]}" | sed 's/,/, /g')]"
        echo "  user: $u"
        if [ $# -gt 0 ]; then
            echo "  config:"
            for c in "$@"; do printf '    - path: %s\n      sha256: %s\n' "$c" "$(sha "$c")"; done
        fi
        echo "  mount: $mnt"
    } >>"$P/$n.yaml"
}
session mariadb "$(exe mariadbd)" -- mysql "$SEC/mariadb" "$H/db1/my.cnf" "$H/db2/my.cnf" "$H/db3/my.cnf"
session memcached "$(exe memcached)" -- memcache "$SEC/memcached"
session migrate "$W/bin/confidoc-api" -- confidoc-migrate "$SEC/migrate" "$H/app1/migrate/migrate.conf"
session api "$W/bin/confidoc-api" -- confidoc "$SEC/api" "$H/app1/api.conf" "$H/app2/api.conf"
session nginx "$(exe nginx)" -- root "$SEC/nginx" "$H/web/conf/nginx.conf"
session probe "$(exe curl)" "$(exe openssl)" "$(exe mariadb)" -- confidoc-probe "$SEC/probe"
VARS=(--var API_USER=confidoc --var DB_USER=mysql --var MEMCACHED_USER=memcache --var NGINX_USER=www-data)
"$CAS" check --policies "$P" "${VARS[@]}" >"$W/log/policy-check.log" 2>&1 ||
    die "confidoc-cas check refuses the topology's policies: $(tail -n 3 "$W/log/policy-check.log")"

# ---------------------------------------------------------------- the CAS

mkdir -m 0711 "$W/cas"
mkdir -m 0700 "$W/cas/key"
CAS_ARGS=(serve --state "$W/cas" --listen "${IP[cas]}:$CAS_PORT" --name cas.confidoc --admin "$OPH"
    --sealing-key "$W/cas/key/sealing.key" --socket "$W/cas/cas.sock" --worker-user confidoc-cas
    "${NODE_ARGS[@]}" --policies "$P" "${VARS[@]}" --pin-out "$W/cas/pin")
cas_up() {
    [ -s "$W/cas/pin" ] && grep -q 'worker ready' "$W/log/cas.log" &&
        ip netns exec "$NSP-cas" ss -Htln "sport = :$CAS_PORT" | grep -q .
}
start_cas() {
    : >"$W/log/cas.log"
    rm -f "$W/cas/pin"
    spawn cas cas "$CAS" "${CAS_ARGS[@]}"
    wait_for 30 "the CAS" cas_up
}
say "cas: confidoc-cas serve on cas.confidoc:$CAS_PORT, ${#AGENT_HOSTS[@]} node identities admitted"
t_true "the CAS starts" start_cas
PIN=$(cat "$W/cas/pin")

# Every other host: a node agent with its own identity, pinned to the CAS.
agent_sock() { echo "$H/$1/agent/agent.sock"; }
start_agent() {
    spawn "agent-$1" "$1" "$CAS" node-agent --socket "$(agent_sock "$1")" --cas "https://cas.confidoc:$CAS_PORT" \
        --cas-pin "$PIN" --identity-cert "$W/keys/node-$1.crt" --identity-key "$W/keys/node-$1.key"
    wait_for 10 "the node agent of $1" test -S "$(agent_sock "$1")"
}
for h in "${AGENT_HOSTS[@]}"; do start_agent "$h" || die "the node agent of $h"; done
t_ok "a node agent on each of ${AGENT_HOSTS[*]}"

# caslaunch HOST SESSION: the launcher prefix for HOST, through its agent.
caslaunch() { echo "$CAS" run --session "$2" --socket "$(agent_sock "$1")" --; }

# ---------------------------------------------------------------- MariaDB Galera

# db_sql N SQL: the mariadb client on dbN's socket as the mysql user (unix_socket).
db_sql() {
    hx "db$1" setpriv --reuid=mysql --regid=mysql --init-groups -- mariadb --no-defaults \
        --socket="$H/db$1/run/mysqld.sock" -u mysql --connect-timeout=5 -N -B -e "$2"
}
wsrep() { db_sql "$1" "SHOW GLOBAL STATUS LIKE '$2'" 2>/dev/null | cut -f2; }
synced() { [ "$(wsrep "$1" wsrep_local_state_comment)" = Synced ] && [ "$(wsrep "$1" wsrep_cluster_size)" = "${2:-3}" ]; }
start_db() { # start_db N [ARGS...]
    local n=$1
    shift
    # shellcheck disable=SC2046
    # TMPDIR: the SST scripts' temporary files (this machine's /tmp is 0711).
    spawn "db$n" "db$n" env TMPDIR="$H/db$n/tmp" $(caslaunch "db$n" mariadb) "$(exe mariadbd)" --defaults-file="$H/db$n/my.cnf" "$@"
}
say "db1: mariadb-install-db through the launcher (its bootstrap gets the at-rest key and TLS files)"
printf '#!/bin/sh\nexec %s %q "$@"\n' "$(caslaunch db1 mariadb)" "$(exe mariadbd)" >"$W/bin/mariadb-bootstrap"
chmod 0700 "$W/bin/mariadb-bootstrap"
hx db1 env MYSQLD_BOOTSTRAP="$W/bin/mariadb-bootstrap" mariadb-install-db --defaults-file="$H/db1/my.cnf" \
    --user=mysql --auth-root-authentication-method=socket --auth-root-socket-user=mysql --skip-test-db \
    >"$W/log/mariadb-install.log" 2>&1 </dev/null || die "mariadb-install-db on db1"
t_ok "db1's data directory initialised"
say "db1: bootstraps the cluster (--wsrep-new-cluster)"
start_db 1 --wsrep-new-cluster
t_true "db1 is Synced, a cluster of 1" wait_for 60 "db1" synced 1 1
db_sql 1 "CREATE DATABASE IF NOT EXISTS confidoc;
    CREATE USER IF NOT EXISTS 'confidoc'@'$NET.%' REQUIRE SUBJECT '/CN=confidoc-api-db' AND ISSUER '/CN=confidoc MariaDB CA';
    GRANT SELECT, INSERT, UPDATE, DELETE ON confidoc.* TO 'confidoc'@'$NET.%';
    GRANT CREATE ON confidoc.schema_migrations TO 'confidoc'@'$NET.%';
    CREATE USER IF NOT EXISTS 'confidoc_migrate'@'$NET.%' REQUIRE SUBJECT '/CN=confidoc-api-migrate' AND ISSUER '/CN=confidoc MariaDB CA';
    GRANT ALL PRIVILEGES ON confidoc.* TO 'confidoc_migrate'@'$NET.%';" ||
    die "the confidoc accounts on db1"
for n in 2 3; do
    say "db$n: joins (state transfer by mariabackup over TLS)"
    start_db "$n"
    t_true "db$n joins and is Synced" wait_for 120 "db$n" synced "$n" "$n"
done
for n in 1 2 3; do
    t_eq "db$n: wsrep_cluster_size" "$(wsrep "$n" wsrep_cluster_size)" 3
done
t_eq "replication runs over TLS (the provider's socket.ssl)" \
    "$(db_sql 2 "SELECT @@wsrep_provider_options" | grep -o 'socket.ssl = YES' | head -n 1)" "socket.ssl = YES"

# ---------------------------------------------------------------- memcached, API, nginx

start_mc() { # start_mc N
    local args=() line
    while IFS= read -r line; do
        args+=("${line%% *}")
        [ "${line#* }" = "$line" ] || args+=("${line#* }")
    done <"$H/mc$1/memcached.conf"
    # shellcheck disable=SC2046
    spawn "mc$1" "mc$1" $(caslaunch "mc$1" memcached) "$(exe memcached)" "${args[@]}"
    wait_for 30 "mc$1" bash -c "ip netns exec $NSP-mc$1 ss -Htln 'sport = :$MC_PORT' | grep -q ."
}
for n in 1 2; do t_true "memcached on mc$n (TLS, its certificate from the CAS)" start_mc "$n"; done

say "app1: schema migration (session migrate, through app1's agent)"
# shellcheck disable=SC2046
timeout 90 ip netns exec "$NSP-app1" sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$W/hosts" \
    $(caslaunch app1 migrate) "$W/bin/confidoc-api" --config "$H/app1/migrate/migrate.conf" --migrate \
    </dev/null >"$W/log/migrate.log" 2>&1 || die "the migration (see migrate.log): $(tail -n 3 "$W/log/migrate.log")"
t_ok "the schema migration through app1's node agent"

# probe HOST CURL-ARGS...: curl as session probe (through HOST's agent) with
# the probe's client certificate for the API; files under $PR.
PR=$SEC/probe/probe
probe() {
    local h=$1
    shift
    # shellcheck disable=SC2046
    hx "$h" $(caslaunch "$h" probe) "$(exe curl)" -s --max-time 10 --cacert "$PR/api-ca.crt" \
        --cert "$PR/api-client.crt" --key "$PR/api-client.key" "$@"
}
api_ready() { [ "$(probe client -o /dev/null -w '%{http_code}' "https://app$1.confidoc:$API_PORT/readyz")" = 200 ]; }
start_api() {
    # shellcheck disable=SC2046
    spawn "api$1" "app$1" $(caslaunch "app$1" api) "$W/bin/confidoc-api" --config "$H/app$1/api.conf"
    wait_for 60 "api on app$1" api_ready "$1"
}
for n in 1 2; do t_true "confidoc-api on app$n is ready (its secrets through app$n's agent)" start_api "$n"; done

nginx_ready() {
    [ "$(hx client curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$W/client/nginx-ca.crt" \
        https://web.confidoc/healthz)" = 200 ]
}
say "web: nginx (TLS, mutual TLS to app1 and app2 named api.confidoc)"
# shellcheck disable=SC2046
hx web $(caslaunch web nginx) "$(exe nginx)" -q -t -p "$H/web" -c conf/nginx.conf -e stderr \
    >"$W/log/nginx-test.log" 2>&1 || die "nginx -t: $(tail -n 3 "$W/log/nginx-test.log")"
# shellcheck disable=SC2046
spawn nginx web $(caslaunch web nginx) "$(exe nginx)" -p "$H/web" -c conf/nginx.conf -e stderr -g 'daemon off;'

say "client: attests the CAS with its pin and fetches nginx's CA from /v1/values (as the original's client pod)"
t_true "attest the CAS from the client host" hx client "$CAS" attest "cas.confidoc:$CAS_PORT" --expect "$PIN" \
    --ca-out "$W/client/cas-ca.crt"
hx client curl -s --max-time 10 --cacert "$W/client/cas-ca.crt" \
    "https://cas.confidoc:$CAS_PORT/v1/values/session=nginx,secret=SERVER_CA" | jq -j .value >"$W/client/nginx-ca.crt"
t_true "nginx's CA from the CAS" grep -q 'BEGIN CERTIFICATE' "$W/client/nginx-ca.crt"
t_true "nginx answers through its CA" wait_for 30 nginx nginx_ready

# ccurl ARGS...: curl from the client host through nginx.
ccurl() { hx client curl -s --max-time 20 --cacert "$W/client/nginx-ca.crt" "$@"; }
SENTENCE="Ever make mistakes in life? Lets make them birds. Yeah, theyre birds now."
say "the original's three queries through https://web.confidoc"
out=$(ccurl -ubobross:password123 -X GET https://web.confidoc/users/create_account)
t_eq "create_account" "$(jq -r .username <<<"$out")" bobross
out=$(ccurl -o /dev/null -w '%{http_code}' -ubobross:password123 -X POST -H "Content-Type: application/json" \
    -d "{\"record_id\":\"31\",\"content\":\"$SENTENCE\"}" https://web.confidoc/documents/create_document)
t_eq "create_document 31" "${out:0:1}" 2
out=$(ccurl -ubobross:password123 -X GET https://web.confidoc/documents/31)
t_eq "documents/31" "$(jq -r .content <<<"$out")" "$SENTENCE"
for n in 1 2; do
    out=$(probe client -ubobross:password123 "https://app$n.confidoc:$API_PORT/documents/31")
    t_eq "documents/31 read directly from app$n" "$(jq -r .content <<<"$out")" "$SENTENCE"
done

if [ "${CONFIDOC_DIST_PHASES:-1}" = 0 ]; then t_finish; exit; fi
. "$SRC/tests/distributed/phases.sh"
t_finish
