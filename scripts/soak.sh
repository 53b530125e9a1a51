#!/usr/bin/env bash
# Soak (not in CI): a million operations with faults through the ENGINE, reporting throughput and
# any anomaly (a hang, a wrong reason, a bad signature, a descriptor or memory leak).
#   1. tests/model test_soak: SIMACCEL_SOAK_OPS ECDSA signs from 64 ASYNC jobs under
#      fault-busy=0.3, fault-error=0.01, fault-stall=0.01:5ms; reconciles every op with the stats.
#   2. tests/stress NoDescriptorOrMemoryGrowth: five rounds under fault-busy/-error/-stall with
#      the descriptor count and RSS compared between the first and the last round.
#   3. tests/stress EightThreadsOverFourInstances: the multi-thread stress, repeated.
# Usage: scripts/soak.sh [OPS]   (default 1000000)
# Environment: SIMACCEL_SOAK_BUILD (default build/dev, built if missing), SIMACCEL_SOAK_REPEAT
#   (default 5: repetitions of step 3).
set -euo pipefail
cd "$(dirname "$0")/.."
ops=${1:-1000000}
build=${SIMACCEL_SOAK_BUILD:-build/dev}
repeat=${SIMACCEL_SOAK_REPEAT:-5}
if [[ ! -x $build/tests/stress/stress_test || ! -x $build/tests/model/model_test_soak ]]; then
    [[ -f $build/CMakeCache.txt ]] || cmake --preset dev
    cmake --build "$build" -j2 --target stress_test model_test_soak simaccel_engine
fi
build=$(cd "$build" && pwd)
export OPENSSL_ENGINES=$build/engines-3 SIMACCEL_TEST_FRONTEND=engine
unset SIMACCEL_OPTS

anomalies=0
step() { # step NAME CMD...: runs one step, keeps its log, reports its verdict and time
    local name=$1 t0 rc=0 log=$build/soak.$1.log
    shift
    t0=$(date +%s.%N)
    echo "== $name: $*"
    "$@" >"$log" 2>&1 || rc=$?
    grep -E '^\[ (SOAK|STRESS) ' "$log" || true
    printf '   %s: exit %d in %.1f s (log %s)\n' "$name" "$rc" "$(echo "$(date +%s.%N) - $t0" | bc)" "$log"
    # A step that did not run is an anomaly too.
    if ((rc == 0)) && grep -q '^\[  SKIPPED \]' "$log"; then
        grep -m1 -B1 '^\[  SKIPPED \]' "$log"
        rc=77
    fi
    if ((rc != 0)); then
        anomalies=$((anomalies + 1))
        grep -E 'Failure|Expected|Which is|actual|ERROR|WARNING: ThreadSanitizer' -A3 "$log" | head -40
    fi
}

# Throughput with faults over the whole count.
SIMACCEL_SOAK_OPS=$ops step model-soak "$build/tests/model/model_test_soak"
# The same count in five rounds, with leak checks between the first and the last.
SIMACCEL_STRESS_OPS=$((ops / 5)) step growth \
    "$build/tests/stress/stress_test" --gtest_filter=Stress.NoDescriptorOrMemoryGrowth
step threads "$build/tests/stress/stress_test" --gtest_filter=Stress.EightThreadsOverFourInstances \
    --gtest_repeat="$repeat"
step ten-thousand "$build/tests/stress/stress_test" --gtest_filter='Stress.TenThousand*'

echo "== soak: $anomalies anomalies"
((anomalies == 0))
