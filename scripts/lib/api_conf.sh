# api_conf.sh: the one writer of confidoc-api's wiring in api.conf (sourced by
# scripts/stack.sh, tests/images/test_images.sh, tests/distributed/run.sh;
# tested by tests/integration/test_api_conf.sh). The Helm chart renders the
# same keys itself (deploy/helm/confidoc/templates/_helpers.tpl).
#
# api_conf_wiring OPTION VALUE...: prints the wiring lines of api.conf (no
# comment: each caller writes its own header, mode and owner).
#   required: --listen-addr ADDR --listen-port PORT
#             --secrets DIR     the API session's secrets: DIR/tls/server.crt,
#                               server.key, client-ca.crt; DIR/master.keyring;
#                               DIR/db/{ca,client}.crt, client.key; DIR/mc/ the same
#             --db-host HOSTS   (db_host: a ,-separated list for failover)
#             --db-port PORT
#             --memcached SERVERS   (memcached_servers, host:port,...)
#   optional, each line only when given (an empty value: not given):
#             --lockout-memcached SERVERS   (lockout_memcached_servers)
#             --memcached-server-name NAME  (memcached_server_name)
#             --extra 'KEY = VALUE'  a line after the wiring (repeatable; KEY
#                               not a wiring key)
#   fixed: allowed_client_subjects CN=confidoc-proxy;CN=confidoc-probe,
#          trusted_proxy_subjects CN=confidoc-proxy, db_name and db_user confidoc.
# e.g. conf=$(api_conf_wiring --listen-addr 127.0.0.1 --listen-port 8080 ...) || die
# Refuses (non-zero, a message on stderr, nothing printed) a missing or empty
# required value, an unknown option, a malformed --extra and any value with a
# control character: a newline would add a key of its own. set -u safe.
# shellcheck shell=bash

# The keys api_conf_wiring may write, in its order (stack.sh's WIRING_KEYS).
# shellcheck disable=SC2034 # used by the scripts that source this file
API_CONF_KEYS=(listen_addr listen_port tls_cert tls_key client_ca allowed_client_subjects
    trusted_proxy_subjects master_key_file db_host db_port db_name db_user db_tls_ca db_tls_cert
    db_tls_key memcached_servers lockout_memcached_servers memcached_server_name memcached_tls_ca
    memcached_tls_cert memcached_tls_key)

api_conf_wiring() {
    local addr="" port="" s="" dbh="" dbp="" mc="" lmc="" name="" opt v k out
    local extras=()
    while [ $# -gt 0 ]; do
        opt=$1
        if [ $# -lt 2 ]; then
            echo "api_conf_wiring: $opt needs a value" >&2
            return 2
        fi
        v=$2
        shift 2
        if [[ $v == *[[:cntrl:]]* ]]; then
            echo "api_conf_wiring: $opt: a control character (newline) in the value" >&2
            return 2
        fi
        case $opt in
        --listen-addr) addr=$v ;;
        --listen-port) port=$v ;;
        --secrets) s=$v ;;
        --db-host) dbh=$v ;;
        --db-port) dbp=$v ;;
        --memcached) mc=$v ;;
        --lockout-memcached) lmc=$v ;;
        --memcached-server-name) name=$v ;;
        --extra)
            k=${v%% = *}
            if ! [[ $v =~ ^[a-z][a-z0-9_]*\ =\ [^[:space:]] ]]; then
                echo "api_conf_wiring: --extra '$v': expected 'key = value'" >&2
                return 2
            fi
            if [[ " ${API_CONF_KEYS[*]} " == *" $k "* ]]; then
                echo "api_conf_wiring: --extra: $k is a wiring key (its own option)" >&2
                return 2
            fi
            extras+=("$v")
            ;;
        *)
            echo "api_conf_wiring: unknown option $opt" >&2
            return 2
            ;;
        esac
    done
    for v in "--listen-addr:$addr" "--listen-port:$port" "--secrets:$s" "--db-host:$dbh" \
        "--db-port:$dbp" "--memcached:$mc"; do
        if [ -z "${v#*:}" ]; then
            echo "api_conf_wiring: ${v%%:*} is required" >&2
            return 2
        fi
    done
    out="listen_addr = $addr
listen_port = $port
tls_cert = $s/tls/server.crt
tls_key = $s/tls/server.key
client_ca = $s/tls/client-ca.crt
allowed_client_subjects = CN=confidoc-proxy;CN=confidoc-probe
trusted_proxy_subjects = CN=confidoc-proxy
master_key_file = $s/master.keyring
db_host = $dbh
db_port = $dbp
db_name = confidoc
db_user = confidoc
db_tls_ca = $s/db/ca.crt
db_tls_cert = $s/db/client.crt
db_tls_key = $s/db/client.key
memcached_servers = $mc"
    [ -z "$lmc" ] || out+=$'\n'"lockout_memcached_servers = $lmc"
    [ -z "$name" ] || out+=$'\n'"memcached_server_name = $name"
    out+="
memcached_tls_ca = $s/mc/ca.crt
memcached_tls_cert = $s/mc/client.crt
memcached_tls_key = $s/mc/client.key"
    for v in ${extras[@]+"${extras[@]}"}; do out+=$'\n'"$v"; done
    printf '%s\n' "$out"
}
