#!/usr/bin/env bash
# test_images.sh: the images of `make images` (docs/images.md), started with
# podman as the chart runs them: --read-only, --user the chart's uid,
# --cap-drop=ALL, no-new-privileges, tmpfs where the chart has emptyDirs,
# --network host on 127.0.0.1 (ports below 32768). The whole system runs
# from the images through the real launch:
#   - the CAS (confidoc-cas serve, CAS image, uid 10001), its sealing key
#     copied by the image's /usr/bin/install as the chart's init container
#     does, the sessions of deploy/policies + deploy/sessions with the
#     measurements make images wrote;
#   - a node agent (CAS image, uid 0 with CAP_SYS_PTRACE only, host PID
#     namespace), its socket directory bind-mounted read-only into every
#     launched container as the chart's hostPath;
#   - each service through its image's ENTRYPOINT (`confidoc-cas run
#     --session S`): the CAS releases its keys only because the program INSIDE
#     the image has the measured hash and runs as the session's uid:
#     memcached (two instances), MariaDB (data directory by
#     mariadb-install-db through the launcher, as the chart's init
#     container), the migration and confidoc-api, nginx;
#   - checks: memcached answers a TLS `version` and MariaDB a ping and a
#     query; the API's /readyz through curl of the client image (session
#     probe); nginx's /healthz, /app/ and /openapi.json with the CA from the
#     CAS's /v1/values; the chart's helm test script (test.sh) in the client
#     image: the original's three queries through nginx;
#   - each running container: its processes' uid, no capability,
#     no_new_privs, a read-only root; each image: the chart's programs at
#     their paths, its USER, no compiler, no apt lists or caches, no private
#     key, nothing owned by or writable for its uid; an image whose program
#     is not the measured one is refused.
# Usage: test_images.sh [BUILD_DIR] (after make images). Root only; skipped
# (77) without podman or the images. Bounded (watchdog 600 s); prints timings.
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-${CONFIDOC_BUILD_DIR:-$SRC/build}}" && pwd)
# shellcheck source=../lib/testlib.sh
. "$SRC/tests/lib/testlib.sh"
# shellcheck source=../../scripts/lib/ports.sh
. "$SRC/scripts/lib/ports.sh"
# shellcheck source=../../scripts/lib/api_conf.sh
. "$SRC/scripts/lib/api_conf.sh"
# shellcheck source=../../scripts/images/lib.sh
. "$SRC/scripts/images/lib.sh"

[ "$(id -u)" = 0 ] || { echo "skip: test_images needs root (podman)"; exit 77; }
command -v podman >/dev/null || { echo "skip: no podman (make images installs it)"; exit 77; }
MEAS=$BUILD/images/measurements.yaml
[ -s "$MEAS" ] || { echo "skip: no $MEAS (run make images)"; exit 77; }
for c in "${IMG_COMPONENTS[@]}"; do
    pod image exists "$(img_ref "$c")" || { echo "skip: no image $(img_ref "$c") (run make images)"; exit 77; }
done
CASBIN=$BUILD/confidoc-cas
T0=$SECONDS
phase() { echo "# $* [$((SECONDS - T0)) s]"; }

WORK=$(mktemp -d /tmp/confidoc-images-test.XXXXXX)
chmod 0711 "$WORK"
N=confidoc-imgtest-$$ # every container of this run is named $N-*
CONTAINERS=()
cleanup() {
    local c
    for c in "${CONTAINERS[@]}"; do
        timeout 30 podman --runtime "$IMG_RUNTIME" rm -f -t 2 "$c" >/dev/null 2>&1
    done
    if [ "$T_FAIL" -gt 0 ]; then
        for c in "${CONTAINERS[@]}"; do
            [ -s "$WORK/logs/$c.log" ] || continue
            echo "# log of $c:"
            tail -n 15 "$WORK/logs/$c.log" | sed 's/^/#   /'
        done
    fi
    rm -rf "$WORK"
}
t_watchdog 600
trap 't_watchdog_stop; cleanup' EXIT
mkdir -p "$WORK/logs"

meas() { sed -n "s/^    $1: \"\([0-9a-f]\{64\}\)\".*/\1/p" "$MEAS"; }
uid_of() {
    case $1 in
        confidoc-cas) echo 10001 ;; confidoc-api) echo 10002 ;; nginx) echo 10004 ;;
        mariadb) echo 10005 ;; memcached) echo 10006 ;; client) echo 10007 ;;
    esac
}

# ---- the images themselves ----
phase "the images: programs, users, contents"
for c in "${IMG_COMPONENTS[@]}"; do
    ref=$(img_ref "$c")
    u=$(uid_of "$c")
    t_eq "$c: USER is $u:$u" "$(pod image inspect --format '{{.Config.User}}' "$ref")" "$u:$u"
    mnt=$(pod image mount "$ref")
    case $c in
        confidoc-cas) progs="/usr/bin/confidoc-cas /usr/bin/install /bin/sh" ;;
        confidoc-api) progs="/usr/bin/confidoc-cas /usr/bin/confidoc-api" ;;
        nginx) progs="/usr/bin/confidoc-cas /usr/sbin/nginx /usr/share/confidoc/www/app/index.html /usr/share/confidoc/www/openapi.json" ;;
        mariadb) progs="/usr/bin/confidoc-cas /usr/sbin/mariadbd /usr/bin/mariadb-install-db /usr/bin/mariadb /usr/bin/mariadb-admin /usr/bin/mariabackup /usr/lib/galera/libgalera_smm.so /usr/bin/wsrep_sst_mariabackup /bin/sh /usr/bin/socat" ;;
        memcached) progs="/usr/bin/confidoc-cas /usr/bin/memcached" ;;
        client) progs="/usr/bin/confidoc-cas /usr/bin/curl /usr/bin/jq /usr/bin/openssl /bin/sh" ;;
    esac
    missing=""
    for p in $progs; do [ -e "$mnt$p" ] || missing="$missing $p"; done
    t_eq "$c: holds what the chart runs ($progs)" "${missing# }" ""
    t_eq "$c: its user's name resolves in the image" \
        "$(awk -F: -v u="$u" '$3 == u {print "yes"}' "$mnt/etc/passwd")" yes
    found=""
    for p in gcc cc c++ g++ cpp clang as ld make tcc; do
        [ -e "$mnt/usr/bin/$p" ] && found="$found $p"
    done
    [ -n "$(find "$mnt/usr/lib/gcc" -name cc1 2>/dev/null | head -n 1)" ] && found="$found cc1"
    t_eq "$c: no compiler, assembler or linker" "${found# }" ""
    t_eq "$c: no apt lists, package cache or .deb" \
        "$(find "$mnt/var/lib/apt/lists" "$mnt/var/cache/apt" -type f ! -name lock 2>/dev/null | sed "s|^$mnt||" | xargs)" ""
    # A private key: a PEM block that openssl parses as one (libraries hold
    # the header text as a string, never a key), or a key line of our formats.
    keys=""
    while IFS= read -r f; do
        if openssl pkey -in "$f" -noout 2>/dev/null; then keys="$keys ${f#"$mnt"}"; fi
    done < <(grep -r -l -a -E -e '^-----BEGIN ([A-Z]+ )?PRIVATE KEY-----$' "$mnt" 2>/dev/null)
    keylines=$(grep -r -l -a -E -e '^[0-9]+[:;][0-9a-fA-F]{64}$' "$mnt/etc" "$mnt/usr/share" \
        "$mnt/var" 2>/dev/null | sed "s|^$mnt||" | xargs)
    t_eq "$c: no private key in the image" "${keys# }" ""
    t_eq "$c: no key line (keyring, MariaDB key file) in the image" "$keylines" ""
    t_eq "$c: nothing in the image is owned by uid or gid $u" \
        "$(find "$mnt" -xdev \( -uid "$u" -o -gid "$u" \) 2>/dev/null | sed "s|^$mnt||" | head -n 5 | xargs)" ""
    t_eq "$c: nothing writable by others but sticky directories (/tmp)" \
        "$(find "$mnt" -xdev -perm -0002 ! -type l ! \( -type d -perm -1000 \) 2>/dev/null |
            sed "s|^$mnt||" | head -n 5 | xargs)" ""
    pod image unmount "$ref" >/dev/null
done
for m in "${IMG_MEASURED[@]}"; do
    read -r key comp path <<<"$m"
    t_eq "measurements.yaml's $key is $path in $(img_repo "$comp")" "$(meas "$key")" \
        "$(img_sha256 "$comp" "$path")"
done

# The chart's names and values: every repository values.yaml names is an
# image of make images, and (when test_helm's helm is in the build tree)
# the chart renders with measurements.yaml, each hash in the CAS's --vars.
want=$(for c in "${IMG_COMPONENTS[@]}"; do img_repo "$c"; done | sed "s|^$IMG_PREFIX/|confidoc/|" | sort -u | xargs)
t_eq "the repositories of the chart's values are the images built" \
    "$(sed -n 's/^ *repository: *//p' "$SRC/deploy/helm/confidoc/values.yaml" | sort -u | xargs)" "$want"
HELM=$(find "$BUILD/tools" -maxdepth 2 -name helm -type f -perm -u+x 2>/dev/null | head -n 1)
if [ -n "$HELM" ]; then
    "$HELM" template t "$SRC/deploy/helm/confidoc" -f "$MEAS" --set "cas.adminKeyHash=$(printf '%064d' 0)" \
        --set "cas.pin=$(printf '%064d' 1)" >"$WORK/rendered.yaml" 2>&1
    t_eq "helm template renders the chart with measurements.yaml" "$?" 0
    miss=""
    for v in API_EXE MARIADBD_EXE MEMCACHED_EXE NGINX_EXE CURL_EXE OPENSSL_EXE MARIADB_EXE; do
        key=$(tr '[:upper:]' '[:lower:]' <<<"${v%_EXE}")
        grep -q -F "${v}_SHA256=$(meas "$key")" "$WORK/rendered.yaml" || miss="$miss $v"
    done
    t_eq "every measurement is in the rendered CAS's --var list" "${miss# }" ""
else
    echo "# no helm in $BUILD/tools (test_helm fetches it): the chart is not rendered here"
fi

# ---- what every launched container shares ----
# The chart's pod settings (values.yaml: containerSecurityContext), its
# emptyDirs as tmpfs: /tmp, /run/secrets (memory-backed, the launcher's
# --fallback-dir), and the node agent's directory read-only (hostPath).
SEC=(--pull=never --read-only --read-only-tmpfs=false --cap-drop=ALL --security-opt no-new-privileges
    --network host --tmpfs "/tmp:rw,size=64m,mode=1777")
# (podman gives a --tmpfs the mode of the image's directory when it has one:
# the images have no /run/secrets or /run/mariadb, the runtime makes them.)
# launch NAME: LAUNCH=(the podman arguments of a launched container).
launch() {
    LAUNCH=("${SEC[@]}" --tmpfs "/run/secrets:rw,size=16m,mode=1777" -v "$WORK/agent:/run/confidoc:ro")
}
# start NAME COMPONENT PODMAN-ARGS... -- CONTAINER-ARGS...: a detached container
# of the component's image as its uid (PODMAN-ARGS may override it).
start() {
    local name=$N-$1 comp=$2 u
    shift 2
    u=$(uid_of "$comp")
    local pargs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do pargs+=("$1"); shift; done
    shift
    CONTAINERS+=("$name")
    pod run -d --name "$name" --user "$u:$u" "${pargs[@]}" "$(img_ref "$comp")" "$@" >/dev/null
}
logs() { pod logs "$N-$1" >"$WORK/logs/$N-$1.log" 2>&1; cat "$WORK/logs/$N-$1.log"; }
cpid() { pod inspect --format '{{.State.Pid}}' "$N-$1" 2>/dev/null; }
running() { [ "$(pod inspect --format '{{.State.Running}}' "$N-$1" 2>/dev/null)" = true ]; }
# wait_for SECONDS COMMAND...: until COMMAND succeeds (every 0.5 s).
wait_for() {
    local end=$((SECONDS + $1))
    shift
    while [ $SECONDS -lt $end ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    return 1
}
listening() { ss -Htln "sport = :$1" | grep -q .; }
# wait_listen SECONDS NAME PORT: until PORT listens; gives up when NAME stopped.
wait_listen() {
    local end=$((SECONDS + $1))
    while [ $SECONDS -lt $end ]; do
        listening "$3" && return 0
        running "$2" || return 1
        sleep 0.5
    done
    return 1
}
# confined NAME UID: every process of the container runs as UID with no
# capability and no_new_privs, and its root is mounted read-only.
confined() {
    local name=$1 u=$2 p bad="" pids
    pids=$(pod top "$N-$name" hpid 2>/dev/null | tail -n +2 | xargs)
    [ -n "$pids" ] || { t_fail "$name: has processes"; return; }
    for p in $pids; do
        [ "$(awk '/^Uid:/ {print $2 $3 $4 $5}' "/proc/$p/status")" = "$u$u$u$u" ] || bad="$bad uid:$p"
        [ "$(awk '/^CapEff:/ {print $2}' "/proc/$p/status")" = 0000000000000000 ] || bad="$bad cap:$p"
        [ "$(awk '/^NoNewPrivs:/ {print $2}' "/proc/$p/status")" = 1 ] || bad="$bad nnp:$p"
    done
    t_eq "$name: its processes ($(wc -w <<<"$pids")) run as uid $u, no capability, no_new_privs" "${bad# }" ""
    p=${pids%% *}
    t_eq "$name: its root filesystem is read-only" \
        "$(awk '$5 == "/" {print $6}' "/proc/$p/mountinfo" | cut -d, -f1 | tail -n 1)" ro
}

# ---- the CAS ----
phase "the CAS from its image"
CAS_PORT=$(pick_port) || exit 1
H_admin=$("$CASBIN" client-keygen --key "$WORK/admin.key" --cert "$WORK/admin.crt" --name admin)
mkdir -p "$WORK/node" && chmod 0700 "$WORK/node"
H_node=$("$CASBIN" client-keygen --key "$WORK/node/node.key" --cert "$WORK/node/node.crt" --name imgtest-node)
# The sealing key as the chart's bootstrap Secret holds it (64 hex digits,
# 0440, the pod's fsGroup), copied into the memory-backed directory by the
# image's install, as the chart's init container does.
mkdir -p "$WORK/bootstrap" "$WORK/cas-key" "$WORK/cas-state" "$WORK/sessions" "$WORK/agent"
openssl rand -hex 32 | tr -d '\n' >"$WORK/bootstrap/sealing.key"
chgrp 10001 "$WORK/bootstrap/sealing.key" && chmod 0440 "$WORK/bootstrap/sealing.key"
chown 10001:10001 "$WORK/cas-key" "$WORK/cas-state" && chmod 0700 "$WORK/cas-key" "$WORK/cas-state"
chmod 0755 "$WORK/agent" "$WORK/sessions"
CONTAINERS+=("$N-sealing-key")
t_true "the CAS image's install copies the sealing key (the chart's init container)" \
    pod run --rm --name "$N-sealing-key" --user 10001:10001 "${SEC[@]}" -v "$WORK/bootstrap:/bootstrap:ro" \
    -v "$WORK/cas-key:/run/cas-key" --entrypoint /usr/bin/install "$(img_ref confidoc-cas)" \
    -m 0600 /bootstrap/sealing.key /run/cas-key/sealing.key
t_eq "the copy is the CAS uid's, 0600" "$(stat -c '%u %a' "$WORK/cas-key/sealing.key" 2>/dev/null)" "10001 600"

# The configuration files of the services, rendered as the chart's
# _configs.tpl renders them, with this test's addresses (127.0.0.1, ports of
# its own). Smaller InnoDB sizes than the chart's (a test's disk and time).
DB_PORT=$(pick_port) MC_PORT=$(pick_port) LMC_PORT=$(pick_port) API_PORT=$(pick_port) NG_PORT=$(pick_port) || exit 1
C=$WORK/conf
mkdir -p "$C"
sed -e 's|@USER_LINE@|# (no user line: the pod runs as the mysql uid)|' \
    -e 's|@DB_DIR@/data|/var/lib/mysql/data|' -e 's|@DB_DIR@/tmp|/tmp|' -e 's|@DB_DIR@/run|/run/mariadb|' \
    -e "s|@DB_PORT@|$DB_PORT|" -e 's|@TLS_DIR@|/run/secrets/mariadb/mariadb/tls|' \
    -e 's|@KEY_DIR@|/run/secrets/mariadb/mariadb-key|' \
    -e 's|innodb_buffer_pool_size=256M|innodb_buffer_pool_size=64M|' \
    -e 's|innodb_log_file_size=512M|innodb_log_file_size=48M|' "$SRC/deploy/mariadb/my.cnf.in" >"$C/my.cnf"
printf 'init_file=/etc/confidoc/mariadb/init.sql\n' >>"$C/my.cnf"
# init.sql and the bootstrap wrapper: the chart's (templates/_configs.tpl).
sed -n '/define "confidoc.initSql"/,/^{{ end -}}/p' "$SRC/deploy/helm/confidoc/templates/_configs.tpl" |
    sed '1d;$d' >"$C/init.sql"
printf '#!/bin/sh\nexec /usr/bin/confidoc-cas run --session mariadb --socket /run/confidoc/agent.sock --fallback-dir /run/secrets/mariadb -- /usr/sbin/mariadbd "$@"\n' >"$C/bootstrap"
{
    echo "# api.conf of test_images (the chart's wiring, this test's addresses)"
    api_conf_wiring --listen-addr 127.0.0.1 --listen-port "$API_PORT" --secrets /run/secrets/api/api \
        --db-host localhost --db-port "$DB_PORT" --memcached "127.0.0.1:$MC_PORT" \
        --lockout-memcached "127.0.0.1:$LMC_PORT" --memcached-server-name localhost \
        --extra "log_level = info"
} >"$C/api.conf" || exit 1
s=/run/secrets/migrate/migrate
cat >"$C/migrate.conf" <<EOF
# migrate.conf of test_images
master_key_file = unused
db_host = localhost
db_port = $DB_PORT
db_name = confidoc
db_user = confidoc_migrate
db_tls_ca = $s/db/ca.crt
db_tls_cert = $s/db/client.crt
db_tls_key = $s/db/client.key
db_pool_size = 1
tls_cert = unused
tls_key = unused
client_ca = unused
EOF
sed -e 's|@USER_DIRECTIVE@|# (no user directive: the pod runs as one unprivileged uid)|' \
    -e 's|@NGINX_DIR@/tmp|/tmp|g' -e 's|@NGINX_DIR@|/tmp|g' -e 's|@LOG_DIR@/nginx-access.log|/dev/stdout|' \
    -e "s|127.0.0.1:@HTTPS_PORT@|127.0.0.1:$NG_PORT|" -e "s|127.0.0.1:@API_PORT@|127.0.0.1:$API_PORT|" \
    -e 's|@API_HOST@|localhost|g' -e 's|@MAX_BODY_BYTES@|16777216|' \
    -e 's|@TLS_DIR@|/run/secrets/nginx/nginx/tls|g' -e 's|@NGINX_WORKERS@|1|' \
    -e 's|@WWW_DIR@|/usr/share/confidoc/www|g' "$SRC/deploy/nginx/nginx.conf.in" >"$C/nginx.conf"
t_eq "every placeholder of the configuration templates is filled" \
    "$(grep -l -E '@[A-Z_]+@' "$C"/* | xargs)" ""
chmod 0755 "$C" && chmod 0644 "$C"/* && chmod 0555 "$C/bootstrap"
sha() { sha256sum "$1" | cut -d' ' -f1; }

# The sessions as the chart's ConfigMap composes them, and its --var list.
for s in mariadb memcached migrate api nginx probe; do
    cat "$SRC/deploy/policies/$s.yaml" "$SRC/deploy/sessions/$s.yaml" >"$WORK/sessions/$s.yaml"
done
chmod 0644 "$WORK/sessions"/*
VARS=(API_HOST=localhost NGINX_HOST=localhost DB_HOST=localhost MEMCACHED_HOST=localhost
    API_USER=10002 MIGRATE_USER=10003 DB_USER=10005 MEMCACHED_USER=10006 NGINX_USER=10004
    NGINX_MASTER_USER=10004 PROBE_USER=10007 "OPERATOR_KEY_HASH=$H_admin"
    STATE_DIR=/etc/confidoc SECRETS_DIR=/run/secrets
    "API_EXE_SHA256=$(meas api)" "MARIADBD_EXE_SHA256=$(meas mariadbd)"
    "MEMCACHED_EXE_SHA256=$(meas memcached)" "NGINX_EXE_SHA256=$(meas nginx)"
    "CURL_EXE_SHA256=$(meas curl)" "OPENSSL_EXE_SHA256=$(meas openssl)"
    "MARIADB_EXE_SHA256=$(meas mariadb)" "MY_CNF_SHA256=$(sha "$C/my.cnf")"
    "API_CONF_SHA256=$(sha "$C/api.conf")" "MIGRATE_CONF_SHA256=$(sha "$C/migrate.conf")"
    "NGINX_CONF_SHA256=$(sha "$C/nginx.conf")")
varargs=()
for v in "${VARS[@]}"; do varargs+=(--var "$v"); done

start cas confidoc-cas -v "$WORK/cas-state:/var/lib/confidoc" -v "$WORK/cas-key:/run/cas-key:ro" \
    -v "$WORK/sessions:/etc/confidoc-cas/sessions:ro" "${SEC[@]}" -- \
    serve --state /var/lib/confidoc --listen "127.0.0.1:$CAS_PORT" --name localhost \
    --admin "$H_admin" --node "$H_node" --sealing-key /run/cas-key/sealing.key \
    --policies /etc/confidoc-cas/sessions "${varargs[@]}"
t_true "the CAS listens (serve in its image, uid 10001)" wait_listen 60 cas "$CAS_PORT"
PIN=$(logs cas | grep -o -E 'pin [0-9a-f]{64}' | head -n 1 | cut -d' ' -f2)
t_eq "its log names its pin (what the chart's install reads)" "${#PIN}" 64
confined cas 10001
attest_quiet() { "$@" >/dev/null; }
t_true "attest the CAS with the pin from its log" attest_quiet \
    "$CASBIN" attest "localhost:$CAS_PORT" --expect "$PIN" --ca-out "$WORK/cas-ca.crt"

phase "the node agent from the CAS image"
start agent confidoc-cas --user 0:0 "${SEC[@]}" --cap-add SYS_PTRACE --pid host \
    -e CONFIDOC_NODE_NAME=imgtest-node -v "$WORK/agent:/run/confidoc" \
    -v "$WORK/node:/etc/confidoc/node-identity:ro" -- \
    node-agent --socket /run/confidoc/agent.sock --cas "https://localhost:$CAS_PORT" --cas-pin "$PIN" \
    --identity-cert /etc/confidoc/node-identity/node.crt --identity-key /etc/confidoc/node-identity/node.key
t_true "the node agent's socket appears" wait_for 30 test -S "$WORK/agent/agent.sock"
t_true "node-agent --check answers (the DaemonSet's liveness probe)" \
    pod exec "$N-agent" /usr/bin/confidoc-cas node-agent --check --socket /run/confidoc/agent.sock
t_contains "the agent logs its node identity" "$(logs agent)" "$H_node"
p=$(cpid agent)
t_eq "the agent keeps CAP_SYS_PTRACE only" "$(awk '/^CapEff/ {print $2}' "/proc/$p/status")" 0000000000080000

# ---- memcached, two instances, through the image's entrypoint ----
phase "memcached through its launcher"
for inst in memcached memcached-lockout; do
    port=$MC_PORT
    [ "$inst" = memcached-lockout ] && port=$LMC_PORT
    tls=/run/secrets/memcached/$inst/tls
    launch "$inst"
    start "$inst" memcached "${LAUNCH[@]}" -- /usr/bin/memcached -l 127.0.0.1 -p "$port" -U 0 -m 64 -c 1024 -Z \
        -o "ssl_chain_cert=$tls/server.crt,ssl_key=$tls/server.key,ssl_ca_cert=$tls/ca.crt,ssl_verify_mode=2,ssl_min_version=2"
done
t_true "memcached listens (its keys released to the image's memcached as uid 10006)" \
    wait_listen 30 memcached "$MC_PORT"
t_true "memcached-lockout listens" wait_listen 30 memcached-lockout "$LMC_PORT"
confined memcached 10006
# probe ARGS...: the client image's launcher with session probe (its
# openssl or curl measured, uid 10007), bounded.
CONTAINERS+=("$N-probe")
probe() {
    launch probe
    timeout 60 nice -n 19 ionice -c3 podman --runtime "$IMG_RUNTIME" run --rm -i --name "$N-probe" \
        --user 10007:10007 "${LAUNCH[@]}" --entrypoint /usr/bin/confidoc-cas "$(img_ref client)" \
        run --session probe --socket /run/confidoc/agent.sock --fallback-dir /run/secrets/probe -- "$@"
}
P=/run/secrets/probe/probe
# mc_version OUT OPENSSL-ARGS...: `version` to memcached through the client
# image's openssl (session probe); stdin stays open until memcached answered
# or openssl ended (at most 30 s), however long the launch took.
mc_version() {
    local out=$1 fifo=$WORK/mc.fifo pid
    shift
    rm -f "$fifo" && mkfifo "$fifo"
    probe /usr/bin/openssl s_client -brief -connect "127.0.0.1:$MC_PORT" -servername localhost "$@" \
        <"$fifo" >"$out" 2>&1 &
    pid=$!
    exec 9>"$fifo"
    printf 'version\r\n' >&9
    wait_for 30 eval "grep -q VERSION '$out' || ! kill -0 $pid"
    exec 9>&-
    wait "$pid"
    cat "$out"
}
out=$(mc_version "$WORK/mc1.out" -verify_return_error -CAfile "$P/mc-ca.crt" -cert "$P/mc-client.crt" \
    -key "$P/mc-client.key")
t_contains "memcached answers a TLS version to the client image's openssl (session probe)" "$out" "VERSION 1."
out=$(mc_version "$WORK/mc2.out" -CAfile "$P/mc-ca.crt")
t_not_contains "and nothing without a client certificate" "$out" "VERSION"
t_contains "which memcached refuses with a TLS alert" "$out" "certificate required"

# ---- MariaDB: the data directory, then the server, through the launcher ----
phase "MariaDB through its launcher"
mkdir -p "$WORK/db"
chown 10005:10005 "$WORK/db" && chmod 0700 "$WORK/db"
DBM=(-v "$WORK/db:/var/lib/mysql" --tmpfs "/run/mariadb:rw,size=1m,mode=1777"
    -v "$C/my.cnf:/etc/confidoc/mariadb/my.cnf:ro" -v "$C/init.sql:/etc/confidoc/mariadb/init.sql:ro")
CONTAINERS+=("$N-initdb")
t0=$SECONDS
launch initdb
timeout 180 nice -n 19 ionice -c3 podman --runtime "$IMG_RUNTIME" run --rm --name "$N-initdb" \
    --user 10005:10005 "${LAUNCH[@]}" "${DBM[@]}" -v "$C/bootstrap:/etc/confidoc/mariadb/bootstrap:ro" \
    --entrypoint /bin/sh "$(img_ref mariadb)" -c \
    'test -d /var/lib/mysql/data/mysql || MYSQLD_BOOTSTRAP=/etc/confidoc/mariadb/bootstrap exec mariadb-install-db --defaults-file=/etc/confidoc/mariadb/my.cnf --auth-root-authentication-method=socket --auth-root-socket-user=mysql --skip-test-db' \
    >"$WORK/logs/initdb.log" 2>&1
rc=$?
t_eq "mariadb-install-db makes the data directory, its bootstrap through the launcher ($((SECONDS - t0)) s)" "$rc" 0
[ "$rc" = 0 ] || tail -n 15 "$WORK/logs/initdb.log" | sed 's/^/#   /'
launch mariadb
start mariadb mariadb "${LAUNCH[@]}" "${DBM[@]}" --
t_true "mariadbd listens (its TLS files and at-rest key released to the image's mariadbd as mysql, 10005)" \
    wait_listen 120 mariadb "$DB_PORT"
t_contains "mariadb-admin ping over the socket (the chart's liveness probe)" \
    "$(pod exec "$N-mariadb" mariadb-admin --no-defaults --socket=/run/mariadb/mysqld.sock ping 2>&1)" "is alive"
t_eq "SELECT 1 as mysql by unix_socket (the chart's readiness probe)" \
    "$(pod exec "$N-mariadb" mariadb --no-defaults --socket=/run/mariadb/mysqld.sock --user=mysql --batch \
        --skip-column-names --execute 'SELECT 1' 2>&1)" 1
t_eq "init.sql made the API's accounts" \
    "$(pod exec "$N-mariadb" mariadb --no-defaults --socket=/run/mariadb/mysqld.sock --user=mysql --batch \
        --skip-column-names --execute "SELECT COUNT(*) FROM mysql.user WHERE User LIKE 'confidoc%'" 2>&1)" 2
t_eq "the tables are encrypted at rest (the key from the CAS)" \
    "$(pod exec "$N-mariadb" mariadb --no-defaults --socket=/run/mariadb/mysqld.sock --user=mysql --batch \
        --skip-column-names --execute 'SELECT @@innodb_encrypt_tables' 2>&1)" ON
confined mariadb 10005
# Galera: the image's mariadbd with galera-4 bootstraps a one-node cluster
# (started directly, not through the launcher: session mariadb measures the
# standalone my.cnf; make check-distributed runs a three-node cluster).
G_PORT=$(pick_port) GDB_PORT=$(pick_port) || exit 1
CONTAINERS+=("$N-galera")
out=$(timeout 90 nice -n 19 ionice -c3 podman --runtime "$IMG_RUNTIME" run --rm --name "$N-galera" \
    --user 10005:10005 "${SEC[@]}" --entrypoint /bin/sh "$(img_ref mariadb)" -c "
    mariadb-install-db --no-defaults --datadir=/tmp/g --auth-root-authentication-method=socket \
        --auth-root-socket-user=mysql --skip-test-db --innodb-log-file-size=8M >/tmp/install.log 2>&1 || { cat /tmp/install.log; exit 1; }
    mariadbd --no-defaults --datadir=/tmp/g --socket=/tmp/g.sock --port=$GDB_PORT --bind-address=127.0.0.1 \
        --innodb-buffer-pool-size=32M --innodb-log-file-size=8M --binlog-format=ROW --innodb-autoinc-lock-mode=2 \
        --wsrep-on=ON --wsrep-provider=/usr/lib/galera/libgalera_smm.so --wsrep-cluster-address=gcomm:// \
        --wsrep-node-address=127.0.0.1 '--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:$G_PORT;gcache.size=16M' \
        >/tmp/d.log 2>&1 &
    q() { mariadb --no-defaults --socket=/tmp/g.sock --user=mysql --batch --skip-column-names -e \"\$1\"; }
    for i in \$(seq 1 60); do
        [ \"\$(q \"SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='WSREP_READY'\" 2>/dev/null)\" = ON ] && break
        sleep 0.5
    done
    q \"SHOW STATUS WHERE Variable_name IN ('wsrep_ready', 'wsrep_cluster_size')\" 2>&1 || tail -n 5 /tmp/d.log" 2>&1)
t_eq "Galera: the image's mariadbd and galera-4 bootstrap a one-node cluster" "$(tr -s '\t\n' '  ' <<<"$out" | sed 's/ $//')" \
    "wsrep_cluster_size 1 wsrep_ready ON"

# ---- the migration, then the API ----
phase "the migration and confidoc-api through their launchers"
CONTAINERS+=("$N-migrate")
t0=$SECONDS
launch migrate
timeout 120 nice -n 19 ionice -c3 podman --runtime "$IMG_RUNTIME" run --rm --name "$N-migrate" \
    --user 10003:10003 "${LAUNCH[@]}" -v "$C/migrate.conf:/etc/confidoc/migrate/migrate.conf:ro" \
    --entrypoint /usr/bin/confidoc-cas "$(img_ref confidoc-api)" \
    run --session migrate --socket /run/confidoc/agent.sock --fallback-dir /run/secrets/migrate -- \
    /usr/bin/confidoc-api --config /etc/confidoc/migrate/migrate.conf --migrate >"$WORK/logs/migrate.log" 2>&1
rc=$?
t_eq "confidoc-api --migrate as 10003 (session migrate) ($((SECONDS - t0)) s)" "$rc" 0
[ "$rc" = 0 ] || tail -n 15 "$WORK/logs/migrate.log" | sed 's/^/#   /'
launch api
start api confidoc-api "${LAUNCH[@]}" -v "$C/api.conf:/etc/confidoc/api/api.conf:ro" --
t_true "confidoc-api listens (its keys released to the image's confidoc-api as 10002)" \
    wait_listen 60 api "$API_PORT"
confined api 10002
out=$(probe /usr/bin/curl -s -o /dev/null -w '%{http_code}' --max-time 20 --cacert "$P/api-ca.crt" \
    --cert "$P/api-client.crt" --key "$P/api-client.key" "https://localhost:$API_PORT/readyz" 2>&1)
t_eq "/readyz answers 200 to the client image's curl (session probe: the database and memcached are up)" \
    "$out" 200

# ---- nginx ----
phase "nginx through its launcher"
launch nginx
start nginx nginx "${LAUNCH[@]}" -v "$C/nginx.conf:/etc/confidoc/nginx/conf/nginx.conf:ro" --
t_true "nginx listens (its keys released to the image's nginx as 10004)" wait_listen 30 nginx "$NG_PORT"
confined nginx 10004
curl -s --max-time 10 --cacert "$WORK/cas-ca.crt" \
    "https://localhost:$CAS_PORT/v1/values/session=nginx,secret=SERVER_CA" | jq -j .value >"$WORK/nginx-ca.crt"
t_true "nginx's CA from the CAS's /v1/values" grep -q 'BEGIN CERTIFICATE' "$WORK/nginx-ca.crt"
ng() { curl -s -o /dev/null -w '%{http_code}' --max-time 20 --cacert "$WORK/nginx-ca.crt" "https://localhost:$NG_PORT$1"; }
t_eq "nginx answers /healthz through the API (mutual TLS)" "$(ng /healthz)" 200
t_eq "nginx serves the web application from the image (/app/)" "$(ng /app/)" 200
t_eq "nginx serves /openapi.json from the image" "$(ng /openapi.json)" 200

# ---- the client image: the chart's helm test ----
phase "the client image: the chart's test.sh (helm test)"
CL=$WORK/client
mkdir -p "$CL"
sed -n '/^  test.sh: |$/,/^{{- end }}/p' "$SRC/deploy/helm/confidoc/templates/client-configmap.yaml" |
    sed '1d;$d' | sed 's/^    //' >"$CL/test.sh"
chmod 0755 "$CL" && chmod 0644 "$CL/test.sh"
CONTAINERS+=("$N-client")
out=$(timeout 120 nice -n 19 ionice -c3 podman --runtime "$IMG_RUNTIME" run --rm --name "$N-client" \
    --user 10007:10007 "${SEC[@]}" -v "$CL:/etc/confidoc/client:ro" \
    -e "CAS_ADDR=localhost:$CAS_PORT" -e "CAS_PIN=$PIN" -e NGINX_HOST=localhost \
    -e "NGINX_ADDR=127.0.0.1:$NG_PORT" "$(img_ref client)" /etc/confidoc/client/test.sh 2>&1)
rc=$?
# shellcheck disable=SC2001 # a prefix on every line
echo "$out" | sed 's/^/#   test.sh: /'
t_eq "test.sh passes in the client image (the original's three queries through nginx)" "$rc" 0
t_eq "it ran every check" "$(grep -c '^ok - ' <<<"$out")" 6

# ---- a program that is not the measured one gets nothing ----
phase "refusals"
CONTAINERS+=("$N-wrong")
launch wrong
out=$(timeout 60 nice -n 19 ionice -c3 podman --runtime "$IMG_RUNTIME" run --rm --name "$N-wrong" \
    --user 10006:10006 "${LAUNCH[@]}" "$(img_ref memcached)" /bin/cat /run/secrets/memcached/memcached/tls/server.key 2>&1)
t_contains "the memcached image's launcher refuses another program (exe hash mismatch)" "$out" "exe hash mismatch"
t_not_contains "and releases no key" "$out" "PRIVATE KEY"
CONTAINERS+=("$N-wronguid")
launch wronguid
out=$(timeout 60 nice -n 19 ionice -c3 podman --runtime "$IMG_RUNTIME" run --rm --name "$N-wronguid" \
    --user 10007:10007 "${LAUNCH[@]}" "$(img_ref memcached)" 2>&1)
t_contains "and memcached as another uid than the session's" "$out" "uid mismatch"
t_true "every service still runs" eval 'running cas && running agent && running memcached && running mariadb && running api && running nginx'
for c in cas agent memcached memcached-lockout mariadb api nginx; do logs "$c" >/dev/null; done

phase "done"
t_finish
