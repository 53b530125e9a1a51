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
# What runs where, and why (docs/reliability.md): everything, in both. The runtime options come
# from tests/sanitizers/options.env, set per test by CMake (tests/sanitizers/sanitizers.cmake):
# the same as `ctest --preset asan|tsan`, which need nothing from the caller's environment.
#   asan  haproxy, nginx and openssl are not instrumented: sanitizers.cmake puts wrappers first
#         on the tests' PATH that preload libasan into them.
#   tsan  the real-server tests (label `servers`, also the reload stresses in tests/fork) skip
#         themselves (tests/servers/lib.sh): the servers' worker threads synchronise with their
#         own uninstrumented atomics and locks, which TSan cannot see, so it would report races
#         in our callbacks that the server orders. Our side of those paths is covered under TSan
#         by the TLS, stress and fork GoogleTest suites (same callbacks, instrumented drivers).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD

phases=("$@")
((${#phases[@]})) || phases=(asan tsan)

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
