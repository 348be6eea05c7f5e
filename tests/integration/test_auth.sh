#!/usr/bin/env bash
# test_auth.sh: runs prog_auth (credential cache, invalidation across replicas,
# bounded Argon2id) against a real TLS-only MariaDB.
set -euo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${CONFIDOC_BUILD_DIR:-$SRC/build}
. "$SRC/tests/lib/certs.sh"
. "$SRC/tests/lib/mariadb.sh"

WORK=$(mktemp -d)
chmod 0711 "$WORK"
trap 'mariadb_stop "$WORK/db" >/dev/null 2>&1; rm -rf "$WORK"' EXIT
certs_make "$WORK/certs"
mariadb_start "$WORK/db" "$WORK/certs"
CONFIDOC_TEST_DB_PORT=$MARIADB_PORT CONFIDOC_TEST_CERTS=$WORK/certs \
    timeout 200 "$BUILD/tests/prog_auth"
