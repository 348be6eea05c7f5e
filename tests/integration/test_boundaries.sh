#!/usr/bin/env bash
# test_boundaries.sh: scripts/check-boundaries.sh passes on the tree as it is,
# and fails on a copy with a planted third-party include outside its module,
# and on a module library that exports a symbol without the module's prefix.
set -uo pipefail
SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${CONFIDOC_BUILD_DIR:-$SRC/build}
. "$SRC/tests/lib/testlib.sh"

WORK=$(mktemp -d /tmp/confidoc-boundaries.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

t_true "the tree keeps its boundaries" bash "$SRC/scripts/check-boundaries.sh" "$BUILD"

mkdir -p "$WORK/tree/scripts"
cp -r "$SRC/src" "$WORK/tree/"
cp "$SRC/scripts/check-boundaries.sh" "$WORK/tree/scripts/"
sed -i '1a #include <sodium.h>' "$WORK/tree/src/auth/auth.c"
out=$(bash "$WORK/tree/scripts/check-boundaries.sh" "$BUILD" 2>&1)
t_eq "sodium.h in auth is refused" "$?" 1
t_contains "and named" "$out" "src/auth/auth.c:2"

cp "$SRC/src/auth/auth.c" "$WORK/tree/src/auth/auth.c"
mkdir -p "$WORK/libs"
cp "$BUILD"/libcd_*.a "$WORK/libs/"
printf 'int leaked_global_name(void) { return 1; }\n' >"$WORK/x.c"
cc -c -o "$WORK/x.o" "$WORK/x.c" && ar q "$WORK/libs/libcd_auth.a" "$WORK/x.o" 2>/dev/null
out=$(bash "$WORK/tree/scripts/check-boundaries.sh" "$WORK/libs" 2>&1)
t_eq "a symbol without its module's prefix is refused" "$?" 1
t_contains "and named" "$out" "leaked_global_name"
t_finish
