#!/usr/bin/env bash
# check-boundaries.sh: the module boundaries that include paths cannot fence
# (make lint). CMake links each third-party library PRIVATE to its one module,
# which fences headers in their own directories (mysql.h); the headers that sit
# in /usr/include (sodium.h, jansson.h, microhttpd.h, gnutls/, openssl/, yaml.h)
# are checked here, as is the rule that every non-static symbol of a module
# starts with one of that module's prefixes (docs/internals/layout.md).
#
#   scripts/check-boundaries.sh BUILD_DIR     exit 0 when both rules hold
set -uo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BUILD=$(cd "${1:-$SRC/build}" 2>/dev/null && pwd -P) || { echo "boundary: no build directory ${1:-$SRC/build}"; exit 1; }
fail=0

# Third-party headers: pattern of the include, then the only files that may
# include it (a regular expression over paths below src/).
RULES=(
    'mysql\.h|mysqld_error\.h|errmsg\.h'   '^storage/'
    'microhttpd\.h|gnutls/'                '^http/'
    'sodium\.h|sodium/'                    '^crypto/'
    'jansson\.h'                           '^(handlers|cli)/'
    'curl/'                                '^cli/net\.c$'
    'openssl/'                             '^(cas/pki\.c|cas/pki\.h|cas/seal[a-z_]*\.c|cas/audit[a-z_]*\.[ch]|evidence/binding\.c|evidence/snp_sig\.c|ratelimit/mc\.c|release/measure\.c|casd/tls\.c|crypto/crypto_otp\.c|crypto/crypto_gcm\.c)$'
    'qrencode\.h'                          '^qr/'
    'seccomp\.h'                           '^casd/sandbox\.c$'
    'yaml\.h'                              '^cas/policy[a-z_]*\.[ch]$'
    'keyutils\.h|libgfshare\.h'            '^cas/seal[a-z_]*\.c$'
)
cd "$SRC/src" || exit 1
for ((i = 0; i < ${#RULES[@]}; i += 2)); do
    pat=${RULES[i]} allowed=${RULES[i + 1]}
    while IFS= read -r hit; do
        file=${hit%%:*}
        if ! [[ $file =~ $allowed ]]; then
            echo "boundary: src/$hit: only ${allowed} may include this library's headers"
            fail=1
        fi
    done < <(grep -HnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*<($pat)" */*.c */*.h 2>/dev/null |
        sed 's/:\([0-9]*\):.*/:\1/')
done

# Symbol prefixes per module (STYLE.md: global names start with their module's).
declare -A PREFIX=(
    [log]='log_' [qr]='qr_' [common]='cd_|gate_|codec_|num_|file_|buf_|jsonw_' [validate]='validate_'
    [router]='router_|route_' [metrics]='metrics_' [config]='config_' [crypto]='crypto_' [storage]='db_'
    [ratelimit]='ratelimit_' [auth]='auth_' [http]='http_' [handlers]='handlers_|hd_'
    [cas]='cas_|inject_|pki_|policy_|store_|seal_|audit_'
    [evidence]='evidence_'
    [release]='release_'
    [casd]='casd_'
    [cli]='cli_'
)
for lib in "$BUILD"/libcd_*.a; do
    [ -e "$lib" ] || { echo "boundary: no module libraries in $BUILD (build first)"; exit 1; }
    m=$(basename "$lib" .a)
    m=${m#libcd_}
    want=${PREFIX[$m]:-}
    if [ -z "$want" ]; then
        echo "boundary: module $m has no prefix rule in scripts/check-boundaries.sh"
        fail=1
        continue
    fi
    while read -r sym; do
        [[ $sym =~ ^($want) ]] && continue
        [[ $sym == __* ]] && continue # the compiler's and sanitizers' own (__odr_asan.*)
        echo "boundary: $m exports $sym, which does not start with ${want//|/ or }"
        fail=1
    done < <(nm -g --defined-only "$lib" 2>/dev/null | awk 'NF == 3 && $2 ~ /[TDBRVW]/ { print $3 }')
done
[ "$fail" -eq 0 ] && echo "boundaries: ok"
exit "$fail"
