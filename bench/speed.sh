#!/usr/bin/env bash
# `openssl speed` in software (one process, and -multi 2) against the simaccel engine at several
# -async_jobs depths, for rsa2048 sign, ecdsap256 sign and ecdhp256 derive. Prints a table of
# ops/s with the ratio engine / `-multi 2` (the same two cores used by two processes, which is
# what one process with offload should approach) and writes it as CSV.
#
# Usage: bench/speed.sh [-s SECONDS] [-r ROUNDS] [-o OUTDIR] [--build DIR] [-j "1 4 8 16 32 64"] [--cpu]
#   -r ROUNDS runs every configuration ROUNDS times, interleaved (default 1); the table gives the
#   median, the CSV the median, lowest and highest.
#   Rates are per wall-clock second (speed -elapsed): without it `openssl speed` divides by the
#   process's user CPU time, which leaves out waiting for the device and kernel time and so
#   overstates offload. --cpu measures that way instead (ops per user CPU second).
#   SIMACCEL_OPTS in the environment is passed to the device (e.g. "latency=fixed:100us").
#   Provider rows are added when DIR/ossl-modules/simaccel.so exists.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
source "$src/scripts/lib/common.sh" # agg
seconds=3
rounds=1
outdir=$src/bench/out
build=$src/build/release
jobs_list="1 4 8 16 32 64"
algs=(rsa2048 ecdsap256 ecdhp256)
timing=-elapsed
OPENSSL=${OPENSSL:-openssl}

usage() { sed -n '2,15s/^# \{0,1\}//p' "$0"; }
while (($#)); do
    case $1 in
    -s) seconds=${2:?}; shift 2 ;;
    -r) rounds=${2:?}; shift 2 ;;
    -o) outdir=${2:?}; shift 2 ;;
    --build) build=${2:?}; shift 2 ;;
    -j) jobs_list=${2?}; shift 2 ;;
    --cpu) timing=; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "speed.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "speed.sh: -s wants a positive integer" >&2; exit 2; }
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "speed.sh: -r wants a positive integer" >&2; exit 2; }
build=$(cd "$build" 2>/dev/null && pwd) || { echo "speed.sh: no build dir '$build'" >&2; exit 2; }
engine_so=$build/engines-3/simaccel.so
provider_so=$build/ossl-modules/simaccel.so
[[ -f $engine_so || -f $provider_so ]] ||
    { echo "speed.sh: neither $engine_so nor $provider_so: build first" >&2; exit 2; }
mkdir -p "$outdir"
csv=$outdir/speed.csv
log=$outdir/speed.log
: >"$log"

# One `openssl speed` per configuration covers all algorithms: RSA and ECDSA measure sign and
# verify for N seconds each, ECDH derive for N.
run_timeout=$((seconds * 5 * 2 + 120))

# speed_run LABEL [VAR=VALUE...] -- [SPEED ARGS...]: one `openssl speed -mr` run; appends the
# ops/s of each algorithm to rate[LABEL,ALG] (one value per round) and counts the run in
# ran[LABEL].
declare -A rate ran
labels=()
speed_run() {
    local label=$1
    shift
    local -a envs=()
    while [[ $1 != -- ]]; do envs+=("$1"); shift; done
    shift
    # Offloaded runs write the device's stats, so that a row which silently ran in software
    # (module not loaded, keys not created through it) is caught rather than reported.
    local stats=
    if [[ $label != software* ]]; then
        stats=$outdir/stats-${label// /-}.json
        rm -f "$stats"
        envs+=("SIMACCEL_OPTS=${SIMACCEL_OPTS:-} stats-file=$stats")
    fi
    echo "== $label (round $round of $rounds): ${envs[*]} openssl speed $*" | tee -a "$log" >&2
    local out
    if ! out=$(env "${envs[@]}" timeout -k 10 "$run_timeout" "$OPENSSL" speed -mr \
        ${timing:+"$timing"} -seconds "$seconds" "$@" "${algs[@]}" 2>&1); then
        printf '%s\n' "$out" >>"$log"
        echo "speed.sh: '$label' failed (see $log)" >&2
        return 1
    fi
    printf '%s\n' "$out" >>"$log"
    # -mr: +F2 RSA, +F4 ECDSA ("idx:bits:sign/s:verify/s"), +F5 ECDH ("idx:bits:ops/s:s/op");
    # with -multi the parent's summed line comes last.
    local tag alg v
    for alg in "${algs[@]}"; do
        case $alg in rsa*) tag=F2 ;; ecdsa*) tag=F4 ;; ecdh*) tag=F5 ;; esac
        v=$(grep "^+$tag:" <<<"$out" | tail -n 1 | cut -d: -f4)
        rate[$label,$alg]+="${v:-0} "
    done
    if [[ -n $stats ]]; then
        local done_ops
        done_ops=$(device_ops "$stats")
        echo "   device completed $done_ops operations" | tee -a "$log" >&2
        if [[ $done_ops == 0 ]]; then
            echo "speed.sh: '$label' did not use the device (see $stats)" >&2
            return 1
        fi
    fi
    [[ -n ${ran[$label]:-} ]] || labels+=("$label")
    ran[$label]=$((${ran[$label]:-0} + 1))
}

# device_ops FILE: the sum of `completed` over the op classes of a stats JSON ("?" if unread).
device_ops() {
    [[ -s $1 ]] || { echo 0; return; }
    "$src/tools/stats.py" sum completed "$1" 2>/dev/null || echo "?"
}

# Rounds interleave the configurations, so a drift of the machine spreads over all of them.
for round in $(seq "$rounds"); do
    speed_run "software" -- || true
    speed_run "software -multi 2" -- -multi 2 || true
    if [[ -f $engine_so ]]; then
        for j in $jobs_list; do
            speed_run "engine async_jobs $j" "OPENSSL_ENGINES=$build/engines-3" -- \
                -engine simaccel -async_jobs "$j" || true
        done
    fi
    if [[ -f $provider_so ]]; then
        for j in $jobs_list; do
            speed_run "provider async_jobs $j" "OPENSSL_MODULES=$build/ossl-modules" \
                "OPENSSL_CONF=$src/conf/simaccel-provider.cnf" -- -async_jobs "$j" || true
        done
    fi
done

# med[LABEL,ALG], lo[...], hi[...]: over the rounds that ran.
declare -A med lo hi
for label in "${labels[@]}"; do
    for alg in "${algs[@]}"; do
        # shellcheck disable=SC2086 # the values are a space-separated list of numbers
        read -r "med[$label,$alg]" "lo[$label,$alg]" "hi[$label,$alg]" < <(agg ${rate[$label,$alg]})
    done
done

# The table, and the CSV with the same numbers.
base="software -multi 2"
ratio() { # ratio LABEL ALG: ops/s over the -multi 2 baseline, or "-"
    awk -v a="${med[$1,$2]:-0}" -v b="${med[$base,$2]:-0}" \
        'BEGIN { if (b > 0 && a > 0) printf "%.2f", a / b; else printf "-" }'
}
{
    printf '%-24s' "configuration"
    for alg in "${algs[@]}"; do printf ' %14s %7s' "$alg/s" "x-multi"; done
    printf '\n'
    for label in "${labels[@]}"; do
        printf '%-24s' "$label"
        for alg in "${algs[@]}"; do
            printf ' %14.1f %7s' "${med[$label,$alg]}" "$(ratio "$label" "$alg")"
        done
        printf '\n'
    done
} | tee "$outdir/speed.txt"

{
    echo "configuration,algorithm,ops_per_s,ratio_vs_multi2,seconds,timing,rounds,ops_min,ops_max"
    for label in "${labels[@]}"; do
        for alg in "${algs[@]}"; do
            echo "$label,$alg,${med[$label,$alg]},$(ratio "$label" "$alg"),$seconds,${timing:-cpu},${ran[$label]},${lo[$label,$alg]},${hi[$label,$alg]}"
        done
    done
} >"$csv"
unit="wall-clock"
[[ -z $timing ]] && unit="user CPU"
echo "speed.sh: ops per $unit second; wrote $csv and $outdir/speed.txt (raw output in $log)" >&2
# Fail when a configuration did not run, so that scripted uses notice.
expected=2
[[ -f $engine_so ]] && expected=$((expected + $(wc -w <<<"$jobs_list")))
[[ -f $provider_so ]] && expected=$((expected + $(wc -w <<<"$jobs_list")))
done_runs=0
for label in "${labels[@]}"; do done_runs=$((done_runs + ran[$label])); done
((done_runs == expected * rounds)) ||
    { echo "speed.sh: $((expected * rounds - done_runs)) run(s) failed" >&2; exit 1; }
