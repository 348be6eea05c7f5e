#!/usr/bin/env bash
# tsan_run.sh SCRIPT [ARGS...]: runs an integration test script (bash SCRIPT
# ARGS) in the ThreadSanitizer build (CONFIDOC_TSAN=ON, tests/CMakeLists.txt)
# and fails it when any process it started reported a ThreadSanitizer finding.
#
# The servers a test starts (confidoc-api, confidoc-cas, the prog_* helpers,
# the command-line client) are the build's, so they are TSan-built too. With
# halt_on_error=1 a racing server dies at its first report, which most checks
# notice; but a report at shutdown, or in a process whose exit status nobody
# reads, would go unseen. So every report goes to a file (log_path) in a
# directory of this run, and this wrapper fails the test when one exists,
# printing it. Exit status 77 (skipped) passes through when there is no report.
set -u
dir=$(mktemp -d /tmp/confidoc-tsan.XXXXXX) || exit 1
# Services that drop to another user (MariaDB is not ours; confidoc-cas's
# sandboxes may) must still be able to write their report here.
chmod 1777 "$dir"
# They must read the suppressions file too: a copy here, for a source tree in
# a 0700 home (root's) that they cannot reach.
supp=$(printf '%s' "${TSAN_OPTIONS:-}" | tr ':' '\n' | sed -n 's/^suppressions=//p' | tail -n 1)
if [ -n "$supp" ] && [ -r "$supp" ]; then
    install -m 644 "$supp" "$dir/tsan.supp" || exit 1
    TSAN_OPTIONS=$(printf '%s' "$TSAN_OPTIONS" | sed "s#suppressions=[^:]*#suppressions=$dir/tsan.supp#g")
fi
export TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}log_path=$dir/report"
bash "$@"
rc=$?
shopt -s nullglob
reports=("$dir"/report.*)
if [ "${#reports[@]}" -gt 0 ]; then
    echo "not ok - ThreadSanitizer reported in ${#reports[@]} process(es) this test started:"
    for f in "${reports[@]}"; do
        echo "# ---- $(basename "$f") (report.PID)"
        cat "$f"
    done
    if [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]; then rc=1; fi
fi
rm -rf "$dir"
exit "$rc"
