#!/usr/bin/env bash
# test_openapi.sh: docs/openapi.json stays true. It must be valid OpenAPI 3.1,
# document exactly the router's routes, and every example it holds is sent to
# a whole stack (make up's script, through nginx) in the document's order;
# each answer must have the example's status and match the schema documented
# for that status (tests/openapi/check.mjs, with ajv from npm).
set -uo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
export CONFIDOC_SOURCE_DIR=$SRC
export CONFIDOC_BUILD_DIR=${CONFIDOC_BUILD_DIR:-$SRC/build}
. "$SRC/tests/lib/testlib.sh"
. "$SRC/tests/lib/certs.sh"
. "$SRC/tests/lib/stack.sh"

for v in $(compgen -e | grep '^CONFIDOC_'); do
    case $v in CONFIDOC_SOURCE_DIR | CONFIDOC_BUILD_DIR) ;; *) unset "$v" ;; esac
done
stack_test_begin openapi
export CONFIDOC_RATE_LIMIT=100000

# The checker's own dependencies (npm, test tooling only), pinned by the lock file.
TOOLS=$SRC/tests/openapi
if [ ! -d "$TOOLS/node_modules/ajv" ]; then
    t_true "npm ci of the checker" npm ci --prefix "$TOOLS" --no-audit --no-fund --silent
fi
t_true "make up starts the stack" stack up
stack_env
# nginx serves the document itself, byte for byte, as JSON.
req stack_curl GET "$CONFIDOC_URL/openapi.json"
t_eq "GET /openapi.json through nginx is 200" "$STATUS" 200
t_eq "it is docs/openapi.json" "$BODY" "$(cat "$SRC/docs/openapi.json")"
t_contains "as JSON" "$(header Content-Type)" "application/json"
(cd "$TOOLS" && node check.mjs "$SRC/docs/openapi.json" "$SRC/src/router/router.c") >"$WORK/check.out" 2>&1
rc=$?
cat "$WORK/check.out"
T_PASS=$((T_PASS + $(grep -c '^ok - ' "$WORK/check.out")))
T_FAIL=$((T_FAIL + $(grep -c '^not ok - ' "$WORK/check.out")))
[ $rc -eq 0 ] || [ "$T_FAIL" -gt 0 ] || t_fail "the checker ran to its end" "exit $rc"
t_finish
