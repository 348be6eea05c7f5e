#!/usr/bin/env bash
# test_cas.sh: confidoc-cas end to end with the openssl command line: the
# shipped policies provisioned into a temporary state directory, idempotence,
# rotation, renewal, template changes and policy errors.
set -euo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${CONFIDOC_BUILD_DIR:-$SRC/build}
CAS=$BUILD/confidoc-cas

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
STATE=$WORK/state
ME=$(id -un)
VARS=(--var API_HOST=localhost --var NGINX_HOST=localhost --var DB_HOST=localhost
      --var MEMCACHED_HOST=localhost --var API_USER="$ME" --var DB_USER="$ME"
      --var MEMCACHED_USER="$ME" --var NGINX_USER="$ME")

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }
cas() { timeout 60 "$CAS" "$@"; }
mode() { stat -c %a "$1"; }
hashes() { (cd "$STATE" && find . -type f ! -name .lock -print0 | sort -z | xargs -0 sha256sum); }
pub() { openssl x509 -in "$1" -noout -pubkey; }
keypub() { openssl pkey -in "$1" -pubout; }

# ---- first provision ----
cas provision --policies "$SRC/deploy/policies" --state "$STATE" "${VARS[@]}" >"$WORK/out1"
grep -q '^created api/MASTER_KEY v1$' "$WORK/out1" || fail "no creation line"
grep -q 'BEGIN' "$WORK/out1" && fail "material printed"
ok "provision exits 0 and names secrets only"

FILES=(api/tls/server.crt api/tls/server.key api/tls/client-ca.crt api/master.keyring
       api/db/ca.crt api/db/client.crt api/db/client.key api/mc/ca.crt api/mc/client.crt
       api/mc/client.key mariadb/tls/ca.crt mariadb/tls/server.crt mariadb/tls/server.key
       mariadb-key/keyfile memcached/tls/ca.crt memcached/tls/server.crt memcached/tls/server.key
       nginx/tls/server.crt nginx/tls/server.key nginx/tls/api-ca.crt nginx/tls/api-client.crt
       nginx/tls/api-client.key migrate/db/ca.crt migrate/db/client.crt migrate/db/client.key)
for f in "${FILES[@]}"; do
    [ -f "$STATE/$f" ] || fail "missing $f"
    [ "$(mode "$STATE/$f")" = 600 ] || fail "$f mode $(mode "$STATE/$f")"
    # policy migrate names its owner (confidoc-migrate) rather than a variable
    owner=$ME
    case $f in migrate/*)
        [ "$(id -u)" = 0 ] && id confidoc-migrate >/dev/null 2>&1 && owner=confidoc-migrate ;;
    esac
    [ "$(stat -c %U "$STATE/$f")" = "$owner" ] || fail "$f owner"
done
for d in api api/tls api/db api/mc mariadb mariadb/tls mariadb-key memcached memcached/tls nginx nginx/tls migrate migrate/db cas cas/api; do
    want=700 # 0750 (root's, the owner's group) when the owner is another user
    case $d in migrate*)
        [ "$(id -u)" = 0 ] && id confidoc-migrate >/dev/null 2>&1 && want=750 ;;
    esac
    [ "$(mode "$STATE/$d")" = "$want" ] || fail "dir $d mode $(mode "$STATE/$d")"
done
[ "$(mode "$STATE/public/nginx-ca.crt")" = 644 ] || fail "public CA mode"
[ -z "$(find "$STATE/cas" -type f ! -perm 0600)" ] || fail "store file not 0600"
ok "every contract file exists: 0600 files, 0700 directories, public CA 0644"

# verify LEAF CA PURPOSE
verify() {
    openssl verify -purpose "$3" -CAfile "$STATE/$2" "$STATE/$1" >/dev/null 2>&1 ||
        fail "$1 does not verify against $2 ($3)"
}
verify api/tls/server.crt api/tls/client-ca.crt sslserver
verify nginx/tls/api-client.crt api/tls/client-ca.crt sslclient
verify nginx/tls/api-client.crt nginx/tls/api-ca.crt sslclient
verify api/tls/server.crt nginx/tls/api-ca.crt sslserver
verify api/db/client.crt mariadb/tls/ca.crt sslclient
verify mariadb/tls/server.crt api/db/ca.crt sslserver
verify api/mc/client.crt memcached/tls/ca.crt sslclient
verify memcached/tls/server.crt api/mc/ca.crt sslserver
verify nginx/tls/server.crt public/nginx-ca.crt sslserver
# a certificate of one CA does not verify against another
openssl verify -CAfile "$STATE/api/db/ca.crt" "$STATE/api/tls/server.crt" >/dev/null 2>&1 &&
    fail "cross-CA verification succeeded"
# the client certificate does not serve
openssl verify -purpose sslserver -CAfile "$STATE/api/tls/client-ca.crt" \
    "$STATE/nginx/tls/api-client.crt" >/dev/null 2>&1 && fail "client cert verifies as server"
ok "each leaf verifies against its own CA, for its own usage only"

subject() { openssl x509 -in "$STATE/$1" -noout -subject -nameopt RFC2253 | sed 's/^subject=//'; }
issuer() { openssl x509 -in "$STATE/$1" -noout -issuer -nameopt RFC2253 | sed 's/^issuer=//'; }
[ "$(subject nginx/tls/api-client.crt)" = "CN=confidoc-proxy" ] || fail "proxy subject"
[ "$(subject api/tls/server.crt)" = "CN=confidoc-api" ] || fail "api subject"
[ "$(subject api/db/client.crt)" = "CN=confidoc-api-db" ] || fail "db client subject"
[ "$(issuer api/db/client.crt)" = "CN=confidoc MariaDB CA" ] || fail "db client issuer"
[ "$(subject api/mc/client.crt)" = "CN=confidoc-api-mc" ] || fail "mc client subject"
[ "$(subject mariadb/tls/server.crt)" = "CN=mariadb" ] || fail "db subject"
[ "$(subject memcached/tls/server.crt)" = "CN=memcached" ] || fail "mc subject"
[ "$(subject api/tls/client-ca.crt)" = "CN=confidoc API CA" ] || fail "api CA subject"
[ "$(subject memcached/tls/ca.crt)" = "CN=confidoc memcached CA" ] || fail "mc CA subject"
[ "$(subject public/nginx-ca.crt)" = "CN=confidoc public CA" ] || fail "public CA subject"
for f in api/tls/server.crt mariadb/tls/server.crt memcached/tls/server.crt nginx/tls/server.crt; do
    san=$(openssl x509 -in "$STATE/$f" -noout -ext subjectAltName)
    grep -q 'DNS:localhost' <<<"$san" || fail "$f lacks DNS:localhost"
    grep -q 'IP Address:127.0.0.1' <<<"$san" || fail "$f lacks IP:127.0.0.1"
done
# server.crt is leaf + chain: two certificates, the second the CA
[ "$(grep -c 'BEGIN CERTIFICATE' "$STATE/api/tls/server.crt")" = 2 ] || fail "chain length"
grep -q 'CA:TRUE' <<<"$(openssl x509 -in "$STATE/api/tls/client-ca.crt" -noout -ext basicConstraints)" ||
    fail "CA constraint"
for pair in api/tls/server api/db/client api/mc/client nginx/tls/api-client mariadb/tls/server \
    memcached/tls/server nginx/tls/server; do
    [ "$(pub "$STATE/$pair.crt")" = "$(keypub "$STATE/$pair.key")" ] || fail "$pair key mismatch"
done
grep -q 'BEGIN PRIVATE KEY' "$STATE/api/tls/server.key" || fail "key not PKCS#8"
ok "subjects, issuers, SANs (DNS:localhost, IP:127.0.0.1), chain, keys match certificates"

grep -Eq '^1:[0-9a-f]{64}$' "$STATE/api/master.keyring" || fail "keyring format"
[ "$(wc -l <"$STATE/api/master.keyring")" = 1 ] || fail "keyring lines"
grep -Eq '^1;[0-9a-f]{64}$' "$STATE/mariadb-key/keyfile" || fail "keyfile format"
[ "$(wc -l <"$STATE/mariadb-key/keyfile")" = 1 ] || fail "keyfile lines"
ok "keyring (V:HEX64) and MariaDB keyfile (V;HEX64) formats"

# ---- idempotence ----
hashes >"$WORK/h1"
cas provision --policies "$SRC/deploy/policies" --state "$STATE" "${VARS[@]}" >"$WORK/out2"
hashes >"$WORK/h2"
cmp -s "$WORK/h1" "$WORK/h2" || { diff "$WORK/h1" "$WORK/h2"; fail "second provision changed files"; }
grep -Ev '^(kept|unchanged) ' "$WORK/out2" && fail "second provision did more than keep"
grep -q '^kept api/API_CA_CERT v1$' "$WORK/out2" || fail "no kept line"
grep -q '^unchanged api/tls/server.crt$' "$WORK/out2" || fail "no unchanged line"
cas check --policies "$SRC/deploy/policies" "${VARS[@]}" >/dev/null || fail "check"
ok "a second provision keeps every secret and file (sha256 identical)"

# ---- rotation of a symmetric key ----
v1=$(cat "$STATE/api/master.keyring")
cas rotate --policies "$SRC/deploy/policies" --state "$STATE" api/MASTER_KEY "${VARS[@]}" >"$WORK/out3"
grep -q '^rotated api/MASTER_KEY v2$' "$WORK/out3" || fail "rotate line"
[ "$(head -1 "$STATE/api/master.keyring")" = "$v1" ] || fail "version 1 lost"
sed -n 2p "$STATE/api/master.keyring" | grep -Eq '^2:[0-9a-f]{64}$' || fail "version 2"
[ "$(wc -l <"$STATE/api/master.keyring")" = 2 ] || fail "keyring lines after rotation"
grep -q '^wrote api/master.keyring$' "$WORK/out3" || fail "keyring not rewritten"
grep -q '^wrote api/tls' "$WORK/out3" && fail "rotation disturbed TLS files"
ok "rotate api/MASTER_KEY appends version 2 and keeps version 1"

# ---- rotation of a CA ----
hashes >"$WORK/h3"
old_ca_pub=$(pub "$STATE/api/tls/client-ca.crt")
cas rotate --policies "$SRC/deploy/policies" --state "$STATE" api/API_CA_CERT "${VARS[@]}" >"$WORK/out4"
[ "$(pub "$STATE/api/tls/client-ca.crt")" != "$old_ca_pub" ] || fail "CA key not replaced"
for f in api/tls/server.crt api/tls/client-ca.crt nginx/tls/api-ca.crt nginx/tls/api-client.crt; do
    grep -q "^wrote $f$" "$WORK/out4" || fail "$f not re-issued"
done
grep -q '^renewed api/API_SERVER v2' "$WORK/out4" || fail "server cert not renewed"
grep -q '^renewed api/PROXY_CLIENT v2' "$WORK/out4" || fail "proxy cert not renewed"
verify api/tls/server.crt api/tls/client-ca.crt sslserver
verify nginx/tls/api-client.crt nginx/tls/api-ca.crt sslclient
grep -q '^wrote mariadb' "$WORK/out4" && fail "unrelated policy rewritten"
[ "$(grep mariadb/ "$WORK/h3")" = "$(hashes | grep mariadb/)" ] || fail "mariadb files changed"
ok "rotate api/API_CA_CERT re-issues the API server and proxy client certificates"

# rotating an imported name or an unknown secret is refused
set +e
cas rotate --policies "$SRC/deploy/policies" --state "$STATE" nginx/API_CA_CERT "${VARS[@]}" \
    >/dev/null 2>"$WORK/err"
rc=$?
set -e
[ "$rc" = 2 ] && grep -q 'nginx.yaml:[0-9]*: secret API_CA_CERT: is imported' "$WORK/err" ||
    fail "rotate of an import: rc=$rc"
ok "rotating an import is refused with its FILE:LINE"

# ---- renewal near expiry ----
later=$(($(date +%s) + 380 * 86400))
CONFIDOC_CAS_NOW=$later cas provision --policies "$SRC/deploy/policies" --state "$STATE" \
    "${VARS[@]}" >"$WORK/out5"
grep -q '^renewed nginx/NGINX_SERVER v2 (expires within 30 days)$' "$WORK/out5" ||
    fail "leaf not renewed"
grep -q '^kept nginx/SERVER_CA v1$' "$WORK/out5" || fail "CA renewed too early"
grep -q '^wrote nginx/tls/server.crt$' "$WORK/out5" || fail "renewed cert not injected"
verify nginx/tls/server.crt public/nginx-ca.crt sslserver
ok "certificates expiring within 30 days are renewed, others kept"

# a short-lived certificate from a policy is renewed on each run
mkdir -p "$WORK/short"
cat >"$WORK/short/short.yaml" <<'EOF'
name: short
secrets:
  - name: CA
    kind: x509-ca
    common_name: short CA
  - name: LEAF
    kind: x509
    issuer: CA
    common_name: short
    usage: [client]
    validity_days: 20
injection_files:
  - path: short/leaf.crt
    content: $$CAS::LEAF.chain$$
EOF
cas provision --policies "$WORK/short" --state "$WORK/s2" >/dev/null
cas provision --policies "$WORK/short" --state "$WORK/s2" >"$WORK/out6"
grep -q '^renewed short/LEAF v2 (expires within 30 days)$' "$WORK/out6" || fail "20-day cert kept"
grep -q '^kept short/CA v1$' "$WORK/out6" || fail "short CA"
ok "a 20-day certificate is renewed by the next provision"

# ---- template change ----
cp -r "$SRC/deploy/policies" "$WORK/pol"
sed -i 's/ip: \[127.0.0.1\]/ip: [127.0.0.1, "::1"]/' "$WORK/pol/memcached.yaml"
cas provision --policies "$WORK/pol" --state "$STATE" "${VARS[@]}" >"$WORK/out7"
grep -q '^renewed memcached/MC_SERVER v3 (template, key or issuer changed)$' "$WORK/out7" ||
    fail "template change not re-issued"
[ "$(grep -c '^renewed' "$WORK/out7")" = 1 ] || fail "template change renewed more"
grep -q 'IP Address:0:0:0:0:0:0:0:1' <<<"$(openssl x509 -in "$STATE/memcached/tls/server.crt" -noout -ext subjectAltName)" ||
    fail "new SAN missing"
ok "a changed template (SANs) re-issues that certificate only"

# ---- errors ----
expect_policy_error() { # DIR PATTERN
    set +e
    cas provision --policies "$1" --state "$WORK/never" "${VARS[@]}" >/dev/null 2>"$WORK/err"
    local rc=$?
    set -e
    [ "$rc" = 2 ] || fail "policy error exit $rc, want 2 ($(cat "$WORK/err"))"
    grep -Eq "$2" "$WORK/err" || fail "message '$(cat "$WORK/err")' lacks '$2'"
    [ ! -e "$WORK/never" ] || fail "a rejected policy wrote files"
}
mkdir -p "$WORK/e1" "$WORK/e2" "$WORK/e3"
cp "$SRC/deploy/policies/"*.yaml "$WORK/e1/"
sed -i '/- policy: nginx/d; /- policy: probe/d; s/^    export:$//' "$WORK/e1/api.yaml" # api exports nothing now
expect_policy_error "$WORK/e1" "e1/nginx.yaml:[0-9]+: secret API_CA_CERT: imports api/API_CA_CERT, which policy 'api' does not export"
cp "$SRC/deploy/policies/"*.yaml "$WORK/e2/"
sed -i 's/issuer: DB_CA_CERT/issuer: DB_CA/' "$WORK/e2/mariadb.yaml"
expect_policy_error "$WORK/e2" "e2/mariadb.yaml:18: secret DB_SERVER: issuer 'DB_CA' is not declared"
printf 'name: e3\nsecrets:\n  - name: A\n    kind: x509-ca\n    issuer: B\n    common_name: a\n  - name: B\n    kind: x509-ca\n    issuer: A\n    common_name: b\n' >"$WORK/e3/e3.yaml"
expect_policy_error "$WORK/e3" "e3/e3.yaml:[0-9]+: secret [AB]: dependency cycle"
set +e
"$CAS" check --policies "$SRC/deploy/policies" >/dev/null 2>"$WORK/err"
rc=$?
set -e
[ "$rc" = 2 ] && grep -q 'api.yaml:5: unknown variable ${API_USER}' "$WORK/err" ||
    fail "unknown variable: rc=$rc $(cat "$WORK/err")"
CONFIDOC_CAS_VAR_API_USER=x CONFIDOC_CAS_VAR_DB_USER=x CONFIDOC_CAS_VAR_MEMCACHED_USER=x \
    CONFIDOC_CAS_VAR_NGINX_USER=x CONFIDOC_CAS_VAR_API_HOST=h CONFIDOC_CAS_VAR_DB_HOST=h \
    CONFIDOC_CAS_VAR_MEMCACHED_HOST=h CONFIDOC_CAS_VAR_NGINX_HOST=h \
    "$CAS" check --policies "$SRC/deploy/policies" >/dev/null || fail "variables from environment"
set +e
cas provision --policies "$SRC/deploy/policies" --state /dev/null/state "${VARS[@]}" \
    >/dev/null 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || fail "runtime error exit $rc, want 1"
ok "policy errors exit 2 with FILE:LINE: secret NAME; runtime errors exit 1"
# ---- docs/policies.md shows the shipped policies as they are ----
for name in api mariadb memcached migrate nginx probe; do
    awk -v h="### deploy/policies/$name.yaml" '
        $0 == h { inh = 1; next }
        inh && /^```yaml$/ { inb = 1; next }
        inb && /^```$/ { exit }
        inb { print }' "$SRC/docs/policies.md" >"$WORK/doc-$name.yaml"
    cmp -s "$WORK/doc-$name.yaml" "$SRC/deploy/policies/$name.yaml" ||
        fail "docs/policies.md shows an outdated $name.yaml"
done
ok "docs/policies.md embeds the shipped policies verbatim"

# ---- ownership when root ----
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
    OWN=(--var API_HOST=localhost --var NGINX_HOST=localhost --var DB_HOST=localhost
         --var MEMCACHED_HOST=localhost --var API_USER=nobody --var DB_USER=no-such-user-cas
         --var MEMCACHED_USER=root --var NGINX_USER=nobody)
    cas provision --policies "$SRC/deploy/policies" --state "$WORK/s3" "${OWN[@]}" \
        >/dev/null 2>"$WORK/err"
    for f in api/tls/server.key api/master.keyring nginx/tls/api-client.key; do
        [ "$(stat -c %U "$WORK/s3/$f")" = nobody ] || fail "$f not owned by nobody"
    done
    # Directories stay root's (finding 2): the owner reaches its files through
    # its group; a directory it owned would let it plant links for root.
    for d in api api/tls nginx nginx/tls; do
        [ "$(stat -c '%U %G %a' "$WORK/s3/$d")" = "root $(id -gn nobody) 750" ] ||
            fail "$d: $(stat -c '%U %G %a' "$WORK/s3/$d"), want root $(id -gn nobody) 750"
    done
    [ "$(mode "$WORK/s3/api/tls/server.key")" = 600 ] || fail "chowned key mode"
    [ "$(stat -c %U "$WORK/s3/mariadb-key/keyfile")" = root ] || fail "unknown owner: not root's"
    grep -q "owner 'no-such-user-cas' does not exist" "$WORK/err" || fail "no warning"
    [ "$(stat -c %U "$WORK/s3/public/nginx-ca.crt")" = root ] || fail "public file owner"
    [ "$(stat -c %U "$WORK/s3/cas/api/MASTER_KEY.v1.bin")" = root ] || fail "store owner"
    # A link planted where a directory or file goes is never followed.
    rm -rf "$WORK/s4" "$WORK/sentinel"
    mkdir -p "$WORK/s4/api" "$WORK/sentinel"
    echo keep >"$WORK/sentinel/file"
    chmod 0644 "$WORK/sentinel/file"
    chmod 0755 "$WORK/sentinel"
    ln -s "$WORK/sentinel" "$WORK/s4/api/tls"
    ln -s "$WORK/sentinel/file" "$WORK/s4/api/master.keyring"
    cas provision --policies "$SRC/deploy/policies" --state "$WORK/s4" "${OWN[@]}" \
        >/dev/null 2>&1 && fail "provision followed a planted directory link"
    [ "$(stat -c '%U %a' "$WORK/sentinel" "$WORK/sentinel/file")" = "root 755
root 644" ] || fail "a planted link was followed"
    [ "$(cat "$WORK/sentinel/file")" = keep ] || fail "a planted link was written through"
    [ -z "$(ls "$WORK/sentinel" | grep -v '^file$')" ] || fail "files written through a planted link"
    rm "$WORK/s4/api/tls"
    cas provision --policies "$SRC/deploy/policies" --state "$WORK/s4" "${OWN[@]}" \
        >/dev/null 2>&1 || fail "provision after the link was removed"
    [ -L "$WORK/s4/api/master.keyring" ] && fail "the planted file link was kept"
    [ "$(cat "$WORK/sentinel/file")" = keep ] || fail "a planted file link was written through"
    ok "as root, files belong to the policy's owner, directories stay root's; planted links are refused or replaced, never followed"
fi
echo "all confidoc-cas checks passed"
