#!/usr/bin/env bash
# Fuzzes the configuration parsers and the engine ctrl string path with libFuzzer
# (tests/fuzz/config_fuzz.h) for a bounded time. Builds a separate clang tree with ASan + UBSan
# and coverage instrumentation; the seed corpus is tests/fuzz/corpus (from docs/config.md) plus
# tests/fuzz/regressions. A crash leaves its input in the artifact directory: add it to
# tests/fuzz/regressions/ (fuzz_replay_test then replays it in every build) and fix the bug.
# Usage: scripts/fuzz.sh [SECONDS]   (default 300; CI runs 60)
# Environment: SIMACCEL_FUZZ_BUILD (default build/fuzz), CLANG_CXX / CLANG_CC (default
#   clang++-14 / clang-14, Debian's), SIMACCEL_FUZZ_JOBS (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-300}
build=${SIMACCEL_FUZZ_BUILD:-build/fuzz}
cxx=${CLANG_CXX:-clang++-14}
cc=${CLANG_CC:-clang-14}
command -v "$cxx" >/dev/null || { echo "fuzz.sh: $cxx not found (apt-get install clang-14)" >&2; exit 77; }

if [[ ! -f $build/CMakeCache.txt ]]; then
    # -fsanitize=fuzzer-no-link: coverage feedback from all of our code, not just the target.
    cmake -S . -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSIMACCEL_SANITIZE=address -DSIMACCEL_BUILD_FUZZ=ON \
        -DSIMACCEL_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link >/dev/null
fi
cmake --build "$build" -j2 --target config_fuzzer simaccel_engine

work=$build/fuzz-work
mkdir -p "$work/corpus" "$work/artifacts"
export OPENSSL_ENGINES=$PWD/$build/engines-3 OPENSSL_CONF=/dev/null
unset SIMACCEL_OPTS
# The suite's ASan + UBSan options (tests/sanitizers/options.env). Leak checking stays on: the
# harness restores the device after every input.
source scripts/lib/common.sh
while read -r kv; do export "$kv"; done < <(sanitizer_env address)
jobs=${SIMACCEL_FUZZ_JOBS:-1}
par=()
((jobs > 1)) && par=(-jobs="$jobs" -workers="$jobs")
rc=0
"$build/tests/fuzz/config_fuzzer" -max_total_time="$secs" -max_len=1024 -timeout=10 \
    "${par[@]}" -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
    "$work/corpus" tests/fuzz/corpus tests/fuzz/regressions || rc=$?
if ((rc != 0)); then
    echo "fuzz.sh: the fuzzer found a problem (exit $rc); inputs in $work/artifacts:" >&2
    ls -l "$work/artifacts" >&2
    echo "copy each into tests/fuzz/regressions/ and fix the bug" >&2
    exit 1
fi
echo "fuzz.sh: no crash in $secs s; corpus $(ls "$work/corpus" | wc -l) inputs"
