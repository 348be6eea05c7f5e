# test_fuzz_smoke.sh: every libFuzzer harness (fuzz/) builds with clang and survives its
# committed corpus plus a few seconds of fuzzing. clang and its libFuzzer runtime are
# project dependencies (scripts/install-deps.sh): their absence is a failure, not a skip.
set -euo pipefail

SRC=${CONFIDOC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${CONFIDOC_BUILD_DIR:-$SRC/build}
# A build directory of its own, so the normal and ASan builds' trees are not touched.
FUZZ_BUILD=$BUILD/fuzz-smoke-build
SECONDS_EACH=${CONFIDOC_FUZZ_SMOKE_SECONDS:-5}
# The Makefile's FUZZ_TARGETS (target:max_len), the one list of the harnesses.
TARGETS=$(make -s -C "$SRC" --no-print-directory print-fuzz-targets)
[ -n "$TARGETS" ] || { echo "FAIL - no FUZZ_TARGETS in the Makefile"; exit 1; }

TMP=$(mktemp -d /tmp/confidoc-fuzz-smoke.XXXXXX)
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT

FAILS=0
PASSES=0
ok() { PASSES=$((PASSES + 1)); echo "ok - $*"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL - $*"; }

if ! command -v clang >/dev/null 2>&1; then
    echo "FAIL - clang is not installed (apt-get install clang libclang-rt-14-dev)"
    exit 1
fi
RTDIR=$(clang -print-runtime-dir 2>/dev/null || true)
if ! ls "$RTDIR"/libclang_rt.fuzzer*.a >/dev/null 2>&1; then
    echo "FAIL - clang's libFuzzer runtime is missing from '$RTDIR' (apt-get install libclang-rt-14-dev)"
    exit 1
fi
ok "clang and libFuzzer runtime present"

if ! cmake -S "$SRC" -B "$FUZZ_BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCONFIDOC_SANITIZE=ON -DCONFIDOC_FUZZ=ON >"$TMP/configure.log" 2>&1; then
    tail -n 30 "$TMP/configure.log"
    echo "FAIL - configure the fuzz build"
    exit 1
fi
if ! cmake --build "$FUZZ_BUILD" --target fuzzers -j 2 >"$TMP/build.log" 2>&1; then
    grep -E 'error|warning' "$TMP/build.log" | head -n 30 || tail -n 30 "$TMP/build.log"
    echo "FAIL - build the harnesses"
    exit 1
fi
ok "harnesses build with clang, -Werror, ASan, UBSan and libFuzzer"

for tl in $TARGETS; do
    t=${tl%%:*}
    len=${tl#*:}
    bin=$FUZZ_BUILD/fuzz/fuzz_$t
    work=$TMP/corpus-$t
    log=$TMP/$t.log
    dict=()
    [ -f "$SRC/fuzz/dict/$t.dict" ] && dict=(-dict="$SRC/fuzz/dict/$t.dict")
    mkdir -p "$work"
    # A copy: libFuzzer adds inputs to its corpus directory.
    cp "$SRC/fuzz/corpus/$t/"* "$work/"
    if timeout 60 "$bin" -runs=0 "$work" >"$log" 2>&1; then
        ok "fuzz_$t: committed corpus ($(ls "$SRC/fuzz/corpus/$t" | wc -l) inputs)"
    else
        tail -n 30 "$log"
        fail "fuzz_$t: committed corpus"
        continue
    fi
    if timeout $((SECONDS_EACH + 60)) "$bin" "${dict[@]}" -max_len="$len" \
        -max_total_time="$SECONDS_EACH" -timeout=10 -artifact_prefix="$TMP/crash-$t-" \
        "$work" >"$log" 2>&1; then
        ok "fuzz_$t: ${SECONDS_EACH} s of fuzzing"
    else
        tail -n 30 "$log"
        for c in "$TMP"/crash-"$t"-*; do
            [ -f "$c" ] && echo "# crashing input (base64): $(base64 -w0 "$c" | head -c 2000)"
        done
        fail "fuzz_$t: ${SECONDS_EACH} s of fuzzing"
    fi
done

echo "passed $PASSES, failed $FAILS"
[ "$FAILS" -eq 0 ]
