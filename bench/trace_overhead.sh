#!/usr/bin/env bash
# The cost of trace-file: `openssl speed -elapsed -engine simaccel -async_jobs J -mr ALG` with the
# trace off and on, interleaved, R rounds each; prints the median sign/s and verify/s of each
# and on / off. "on" records every request of the sign phase (trace-limit, default 200000
# records, ~30 MB allocated at start); the file is written at exit, after the measurement.
#
# Usage: bench/trace_overhead.sh [-s SECONDS] [-r ROUNDS] [-j JOBS] [-a ALG] [-l LIMIT]
#        [-o OPTS] [--build DIR]
#   defaults: -s 3 -r 5 -j 16 -a rsa2048 -l 200000 --build build/release
#   -o OPTS: "on" sets OPTS instead of the trace (the cost of another setting: -o strict=warn)
#   SIMACCEL_OPTS in the environment is passed to both (e.g. "latency=fixed:100us").
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
source "$src/scripts/lib/common.sh" # agg
seconds=3 rounds=5 jobs=16 alg=rsa2048 limit=200000 on_opts='' build=$src/build/release
OPENSSL=${OPENSSL:-openssl}

usage() { sed -n '2,12s/^# \{0,1\}//p' "$0"; }
while (($#)); do
    case $1 in
    -s) seconds=${2:?}; shift 2 ;;
    -r) rounds=${2:?}; shift 2 ;;
    -j) jobs=${2:?}; shift 2 ;;
    -a) alg=${2:?}; shift 2 ;;
    -l) limit=${2:?}; shift 2 ;;
    -o) on_opts=${2:?}; shift 2 ;;
    --build) build=${2:?}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "trace_overhead.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
[[ -f $build/engines-3/simaccel.so ]] ||
    { echo "trace_overhead.sh: no $build/engines-3/simaccel.so: build first" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One run: prints "sign/s verify/s" from speed's -mr line (+F2/+F4/...: idx:bits:sign:verify).
one() {
    local opts=$1 out
    out=$(OPENSSL_ENGINES=$build/engines-3 SIMACCEL_OPTS="${SIMACCEL_OPTS:-} $opts" \
        "$OPENSSL" speed -elapsed -engine simaccel -async_jobs "$jobs" -seconds "$seconds" \
        -mr "$alg" 2>&1) || { echo "trace_overhead.sh: openssl speed failed: $out" >&2; exit 1; }
    awk -F: '/^\+F[0-9]+:/ { s = $4; v = $5 } END { if (s == "") exit 1; print s, v }' <<<"$out" ||
        { echo "trace_overhead.sh: no -mr result line in: $out" >&2; exit 1; }
}

declare -a off_s off_v on_s on_v
for ((r = 1; r <= rounds; r++)); do
    read -r s v < <(one "trace-file=none")
    off_s+=("$s") off_v+=("$v")
    read -r s v < <(one "${on_opts:-trace-file=$work/trace.json trace-limit=$limit}")
    on_s+=("$s") on_v+=("$v")
    [[ -n $on_opts ]] && req="- (on: $on_opts)" || req=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["otherData"]["requests"])' \
        "$work/trace.json" 2>/dev/null || echo "?")
    printf 'round %d: off %s sign/s %s verify/s, on %s sign/s %s verify/s (%s requests traced)\n' \
        "$r" "${off_s[-1]}" "${off_v[-1]}" "${on_s[-1]}" "${on_v[-1]}" "$req" >&2
done
read -r os _ _ < <(agg "${off_s[@]}")
read -r ov _ _ < <(agg "${off_v[@]}")
read -r ns _ _ < <(agg "${on_s[@]}")
read -r nv _ _ < <(agg "${on_v[@]}")
printf '%s -async_jobs %s, %s s x %s rounds (medians); on: %s\n' "$alg" "$jobs" "$seconds" "$rounds" \
    "${on_opts:-trace-file, trace-limit=$limit}"
printf '%-10s %12s %12s\n' "" "sign/s" "verify/s" "off" "$os" "$ov" "on" "$ns" "$nv"
awk -v a="$os" -v b="$ns" -v c="$ov" -v d="$nv" \
    'BEGIN { printf "%-10s %11.1f%% %11.1f%%\n", "on - off", (b / a - 1) * 100, (d / c - 1) * 100 }'
