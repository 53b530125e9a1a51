#!/usr/bin/env bash
# The sanitizer half of CI: builds the `asan` (ASan + UBSan) and `tsan` (ThreadSanitizer) presets
# and runs the CTest suite in each, one after the other (never both at once on a 2-core runner),
# printing how long each phase took. Exits non-zero if either suite fails.
#
# Usage: scripts/ci-sanitizers.sh [asan] [tsan]        (default: both)
# Environment:
#   SIMACCEL_ASAN_DIR, SIMACCEL_TSAN_DIR  build directories (default: the presets' build/asan,
#                                          build/tsan); set to reuse an existing configured tree
#   SIMACCEL_CTEST_ARGS                    extra ctest arguments for both suites
#
# What runs where, and why (docs/reliability.md):
#   asan  everything, including the real-server tests: haproxy, nginx and openssl are not
#         instrumented, so tests/sanitizers/sanitizers.cmake puts wrappers first on the tests'
#         PATH that preload libasan into them.
#   tsan  everything except the label `servers` (HAProxy and nginx, also the reload stresses in
#         tests/fork): their worker threads synchronise with their own uninstrumented atomics and
#         locks, which TSan cannot see, so it would report races in our callbacks that are
#         ordered by the server; and with the runtime preloaded they run too slowly for the
#         budget. Our side of those paths is covered under TSan by tests/engine/test_tls_async,
#         tests/stress and tests/fork/test_fork (same callbacks, instrumented drivers).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD

phases=("$@")
((${#phases[@]})) || phases=(asan tsan)

# Runtime options for the instrumented test executables. The script-driven tests set their own
# (tests/sanitizers/sanitizers.cmake); these cover the GoogleTest executables, whose CTest
# ENVIRONMENT keeps only its first entry in CMake 3.25.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_odr_violation=0"
export LSAN_OPTIONS="suppressions=$src/tests/sanitizers/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export TSAN_OPTIONS="halt_on_error=1:die_after_fork=0:second_deadlock_stack=1:report_signal_unsafe=0"

declare -A took=()
now() { date +%s; }
rc_all=0

run_phase() {
    local kind=$1 dir preset=$1 t0 t1 t2
    case $kind in
    asan) dir=${SIMACCEL_ASAN_DIR:-} ;;
    tsan) dir=${SIMACCEL_TSAN_DIR:-} ;;
    *) echo "unknown phase '$kind' (asan or tsan)" >&2; return 2 ;;
    esac
    t0=$(now)
    if [[ -n $dir ]]; then
        local san=address
        [[ $kind == tsan ]] && san=thread
        cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSIMACCEL_SANITIZE=$san \
            -DSIMACCEL_WERROR=ON -DSIMACCEL_BUILD_BENCH=OFF >/dev/null
    else
        cmake --preset "$preset" -DSIMACCEL_BUILD_BENCH=OFF >/dev/null
        dir=$src/build/$preset
    fi
    cmake --build "$dir" -j2
    t1=$(now)
    local -a args=(--test-dir "$dir" -j2 --output-on-failure --timeout 600 --no-tests=error)
    [[ $kind == tsan ]] && args+=(-LE servers)
    # shellcheck disable=SC2086
    local rc=0
    ctest "${args[@]}" ${SIMACCEL_CTEST_ARGS:-} || rc=$?
    t2=$(now)
    took[$kind-build]=$((t1 - t0))
    took[$kind-test]=$((t2 - t1))
    echo "== $kind: build $((t1 - t0)) s, tests $((t2 - t1)) s, ctest exit $rc"
    ((rc == 0)) || rc_all=1
}

for p in "${phases[@]}"; do
    run_phase "$p"
done
echo "== sanitizer phases:"
for k in "${!took[@]}"; do
    printf '   %-11s %5d s\n' "$k" "${took[$k]}"
done | sort
exit $rc_all
