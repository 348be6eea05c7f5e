#!/usr/bin/env bash
# test_web.sh: the web application end to end against a whole stack (make
# up's script, through nginx): what nginx serves at /app/ and its headers (as
# curl sees them), then tests/web/e2e.mjs in headless Chromium (playwright-core
# from web/node_modules): sign-up, login, upload, download, replace, delete,
# two-factor login, application passwords, password change, logout, CSP.
# Needs the web application built into CONFIDOC_BUILD_DIR/web (make web),
# /usr/bin/chromium and certutil (scripts/install-deps.sh). Screenshots go to
# CONFIDOC_BUILD_DIR/web-screenshots/, or to E2E_SCREENSHOTS (relative to the
# source tree: E2E_SCREENSHOTS=docs/screenshots refreshes the committed ones).
set -uo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
export CONFIDOC_SOURCE_DIR=$SRC
export CONFIDOC_BUILD_DIR=${CONFIDOC_BUILD_DIR:-$SRC/build}
. "$SRC/tests/lib/testlib.sh"
. "$SRC/tests/lib/certs.sh"
. "$SRC/tests/lib/stack.sh"

SHOTS=${E2E_SCREENSHOTS:-$CONFIDOC_BUILD_DIR/web-screenshots}
case $SHOTS in /*) ;; *) SHOTS=$SRC/$SHOTS ;; esac # relative: to the source tree
for v in $(compgen -e | grep '^CONFIDOC_'); do
    case $v in CONFIDOC_SOURCE_DIR | CONFIDOC_BUILD_DIR) ;; *) unset "$v" ;; esac
done
for b in confidoc-api confidoc-cas web/index.html; do
    if [ ! -e "$CONFIDOC_BUILD_DIR/$b" ]; then
        echo "not ok - $b must be built in $CONFIDOC_BUILD_DIR (make build)"
        exit 1
    fi
done
for t in node /usr/bin/chromium certutil; do
    if ! command -v "$t" >/dev/null 2>&1; then
        echo "not ok - $t is missing (scripts/install-deps.sh; node 20 or newer)"
        exit 1
    fi
done
if [ ! -d "$SRC/web/node_modules/playwright-core" ]; then
    echo "not ok - web/node_modules has no playwright-core (npm ci --prefix web, done by make web)"
    exit 1
fi

stack_test_begin web
mkdir -m 0700 "$WORK/e2e"
export CONFIDOC_RATE_LIMIT=100000

echo "# make up [${SECONDS}s]"
t_true "make up starts the stack" stack up
stack_env

# hval NAME: the value of header NAME of the last req, whole (testlib's
# header splits at ": ", which the policy's "data: blob:" holds).
hval() { printf '%s\n' "$HDRS" | sed -n "s/^$1: //Ip" | tail -n 1; }

echo "# what nginx serves [${SECONDS}s]"
CSP="default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
req stack_curl GET "$CONFIDOC_URL/"
t_eq "/ redirects" "$STATUS" 302
t_eq "to /app/" "$(header location)" "$CONFIDOC_URL/app/"
req stack_curl GET "$CONFIDOC_URL/app/" --http2
t_eq "/app/ is the application" "$STATUS" 200
t_contains "its index.html" "$BODY" "<title>confidoc</title>"
t_eq "over HTTP/2" "$(stack_curl -o /dev/null -w '%{http_version}' "$CONFIDOC_URL/app/")" 2
t_eq "with the Content-Security-Policy" "$(hval content-security-policy)" "$CSP"
t_eq "nosniff" "$(header x-content-type-options)" nosniff
t_eq "no referrer" "$(header referrer-policy)" no-referrer
t_eq "index.html: no-cache" "$(header cache-control)" no-cache
t_eq "HSTS still" "$(header strict-transport-security)" "max-age=63072000"
t_not_contains "no inline script" "$BODY" "<script>"
t_not_contains "no inline style" "$BODY" "style="
JS=$(grep -o 'main-[A-Z0-9]*\.js' <<<"$BODY" | head -n 1)
req stack_curl GET "$CONFIDOC_URL/app/$JS"
t_eq "the hashed script ($JS)" "$STATUS" 200
t_eq "is JavaScript" "$(header content-type)" "application/javascript; charset=utf-8"
t_eq "cached for a year" "$(header cache-control)" "public, max-age=31536000, immutable"
t_eq "with the same policy" "$(hval content-security-policy)" "$CSP"
req stack_curl GET "$CONFIDOC_URL/app/nothing-here.js"
t_eq "a missing file is 404" "$STATUS" 404
req stack_curl POST "$CONFIDOC_URL/app/" -d x
t_eq "the application takes no POST" "$STATUS" 405
req stack_curl GET "$CONFIDOC_URL/healthz"
t_eq "the API is proxied as before" "$STATUS" 200
t_eq "its answers carry no app policy" "$(hval content-security-policy)" ""
if [ -f "$SRC/docs/openapi.json" ]; then
    req stack_curl GET "$CONFIDOC_URL/openapi.json"
    t_eq "/openapi.json is served" "$STATUS" 200
    t_true "it is docs/openapi.json" cmp -s <(printf '%s' "$BODY") <(printf '%s' "$(cat "$SRC/docs/openapi.json")")
else
    req stack_curl GET "$CONFIDOC_URL/openapi.json"
    t_eq "no docs/openapi.json: /openapi.json is 404" "$STATUS" 404
fi
t_eq "www is root's, for nginx's group" "$(stat -c '%U:%G %a' "$CONFIDOC_STATE_DIR/nginx/www/app")" \
    "$(if [ "$(id -u)" -eq 0 ]; then echo "root:www-data 750"; else echo "$(id -un):$(id -gn) 700"; fi)"

echo "# the browser (tests/web/e2e.mjs) [${SECONDS}s]"
mkdir -p "$SHOTS"
E2E_WORK=$WORK/e2e E2E_SCREENSHOTS=$SHOTS timeout 200 node "$SRC/tests/web/e2e.mjs" >"$WORK/e2e.out" 2>&1
rc=$?
# Its checks count as this test's.
while IFS= read -r line; do
    case $line in
    "ok - "*) t_ok "${line#ok - }" ;;
    "not ok - "*) t_fail "${line#not ok - }" ;;
    *" passed, "*" failed") ;;
    *) echo "$line" ;;
    esac
done <"$WORK/e2e.out"
t_eq "e2e.mjs exits 0" "$rc" 0
echo "# screenshots: $SHOTS"

t_finish
