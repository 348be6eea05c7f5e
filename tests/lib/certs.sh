# certs.sh: test PKI made with the openssl command line (sourced by tests).
# certs_make DIR creates, all ECDSA P-256, keys 0600:
#   ca.{crt,key}            the test CA every service trusts
#   rogue-ca.{crt,key}      an unrelated CA (for "untrusted client" tests)
#   api.{crt,key}           server cert CN=confidoc-api, DNS:localhost, IP:127.0.0.1
#   proxy.{crt,key}         client cert CN=confidoc-proxy (what nginx presents)
#   other.{crt,key}         client cert CN=someone-else from the test CA
#   rogue.{crt,key}         client cert CN=confidoc-proxy from the rogue CA
#   db.{crt,key}            server cert CN=mariadb, DNS:localhost, IP:127.0.0.1
#   db-client.{crt,key}     client cert CN=confidoc-api-db
#   mc.{crt,key}            server cert CN=memcached, DNS:localhost, IP:127.0.0.1
#   mc-client.{crt,key}     client cert CN=confidoc-api-mc

# shellcheck source=../../scripts/lib/ports.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)/scripts/lib/ports.sh"

_certs_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null && chmod 600 "$1"; }

# _certs_ca DIR NAME CN
_certs_ca() {
    _certs_key "$1/$2.key"
    openssl req -x509 -new -key "$1/$2.key" -subj "/CN=$3" -days 30 -sha256 \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$1/$2.crt" 2>/dev/null
}

# _certs_leaf DIR NAME CN CA USAGE(server|client) [SAN]
_certs_leaf() {
    local dir=$1 name=$2 cn=$3 ca=$4 usage=$5 san=${6:-}
    local ext="$dir/$name.ext"
    _certs_key "$dir/$name.key"
    openssl req -new -key "$dir/$name.key" -subj "/CN=$cn" -out "$dir/$name.csr" 2>/dev/null
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature"
        if [ "$usage" = server ]; then echo "extendedKeyUsage=serverAuth"; else echo "extendedKeyUsage=clientAuth"; fi
        [ -n "$san" ] && echo "subjectAltName=$san"
    } >"$ext"
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/$ca.crt" -CAkey "$dir/$ca.key" \
        -CAcreateserial -days 30 -sha256 -extfile "$ext" -out "$dir/$name.crt" 2>/dev/null
    rm -f "$dir/$name.csr" "$ext"
}

certs_make() {
    local dir=$1
    mkdir -p "$dir"
    _certs_ca "$dir" ca "confidoc test CA"
    _certs_ca "$dir" rogue-ca "rogue CA"
    local san="DNS:localhost,IP:127.0.0.1"
    _certs_leaf "$dir" api confidoc-api ca server "$san"
    _certs_leaf "$dir" proxy confidoc-proxy ca client
    _certs_leaf "$dir" other someone-else ca client
    _certs_leaf "$dir" rogue confidoc-proxy rogue-ca client
    _certs_leaf "$dir" db mariadb ca server "$san"
    _certs_leaf "$dir" db-client confidoc-api-db ca client
    _certs_leaf "$dir" mc memcached ca server "$san"
    _certs_leaf "$dir" mc-client confidoc-api-mc ca client
}

# free_port: prints a TCP port on 127.0.0.1 that nothing listens on now and
# no parallel test has claimed (scripts/lib/ports.sh).
free_port() { pick_port; }
