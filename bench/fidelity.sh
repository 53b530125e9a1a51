#!/usr/bin/env bash
# Timing-model fidelity: measured ECDSA P-256 signs/s through the engine against the model's
# prediction, for latency floors L in {200us, 1ms, 2ms, 5ms} and async jobs J in {1, 8, 64}.
#
#   predicted = min(J / L, C)   C: the host's compute bound, stock `openssl speed -multi NCPU`
#   (no engine): what all cores sign in software. Capacity is unlimited here; with capacity=N
#   the model adds N / L to the min.
#
# Writes OUTDIR/fidelity.csv, OUTDIR/fidelity.md and, with gnuplot, OUTDIR/fidelity.png.
# Usage: bench/fidelity.sh [-s SECONDS] [-o OUTDIR] [--build DIR] [-l "L..."] [-j "J..."] [--rt]
#   -l, -j replace the latency floors and the job counts (e.g. -l "2ms" -j 8).
#   --rt runs `openssl speed` under SCHED_FIFO (chrt -f 20, needs root): on a shared machine it
#   keeps other processes from delaying the device's wake-ups, which the model cannot know about.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
seconds=2
outdir=$src/bench/out
build=$src/build/release
rt=()
OPENSSL=${OPENSSL:-openssl}
latencies=(200us 1ms 2ms 5ms)
jobs_list=(1 8 64)

usage() { sed -n '2,14s/^# \{0,1\}//p' "$0"; }
while (($#)); do
    case $1 in
    -s) seconds=${2:?}; shift 2 ;;
    -o) outdir=${2:?}; shift 2 ;;
    --build) build=${2:?}; shift 2 ;;
    --rt) rt=(chrt -f 20); shift ;;
    -l) read -ra latencies <<<"${2:?}"; shift 2 ;;
    -j) read -ra jobs_list <<<"${2:?}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "fidelity.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "fidelity.sh: -s wants a positive integer" >&2; exit 2; }
build=$(cd "$build" 2>/dev/null && pwd) || { echo "fidelity.sh: no build dir '$build'" >&2; exit 2; }
[[ -f $build/engines-3/simaccel.so ]] || { echo "fidelity.sh: no $build/engines-3/simaccel.so: build first" >&2; exit 2; }
mkdir -p "$outdir"
csv=$outdir/fidelity.csv
md=$outdir/fidelity.md
log=$outdir/fidelity.log
: >"$log"

# signs/s of one `openssl speed` run (sign phase only; -elapsed: wall clock, not CPU time).
rate() { # LATENCY-SPEC JOBS
    local out count secs
    # log=error: a SIMACCEL_OPTS that does not parse is reported (and then the run is refused).
    out=$(OPENSSL_ENGINES=$build/engines-3 SIMACCEL_OPTS="latency=$1 log=error" \
        timeout -k 5 $((seconds * 4 + 60)) "${rt[@]}" "$OPENSSL" speed -elapsed -mr \
        -engine simaccel -async_jobs "$2" -seconds "$seconds" ecdsap256 2>&1) || {
        echo "$out" >>"$log"; echo "fidelity.sh: openssl speed failed (latency=$1 jobs=$2), see $log" >&2; return 1; }
    echo "== latency=$1 jobs=$2" >>"$log"; echo "$out" >>"$log"
    if grep -q 'SIMACCEL_OPTS not applied' <<<"$out"; then
        echo "fidelity.sh: SIMACCEL_OPTS refused (latency=$1), see $log" >&2; return 1
    fi
    # +R5:<count>:256:<seconds> is the ECDSA sign line of -mr output.
    IFS=: read -r _ count _ secs < <(grep '^+R5:' <<<"$out" | head -1)
    awk -v c="$count" -v s="$secs" 'BEGIN { printf "%.1f", c / s }'
}

to_s() { # 200us -> 0.0002
    awk -v d="$1" 'BEGIN { n = d + 0; u = d; sub(/^[0-9.]+/, "", u);
        f = (u == "us") ? 1e-6 : (u == "ms") ? 1e-3 : (u == "ns") ? 1e-9 : 1; printf "%.9f", n * f }'
}

load=$(cut -d' ' -f1 /proc/loadavg)
echo "fidelity.sh: load average $load on $(nproc) CPUs${rt:+ (SCHED_FIFO)}" >&2
# The compute bound: every core signing in software, no engine.
out=$(timeout -k 5 $((seconds * 4 + 60)) "${rt[@]}" "$OPENSSL" speed -elapsed -mr -multi "$(nproc)" \
    -seconds "$seconds" ecdsap256 2>&1) || { echo "fidelity.sh: software speed failed" >&2; exit 1; }
echo "== software -multi $(nproc)" >>"$log"; echo "$out" >>"$log"
# -multi prints the summed rates as +F4:<k>:<bits>:<sign/s>:<verify/s>.
compute_all=$(grep '^+F4:' <<<"$out" | tail -1 | cut -d: -f4)
echo "  compute bound (software, -multi $(nproc)): $compute_all signs/s" >&2
declare -A compute
for j in "${jobs_list[@]}"; do compute[$j]=$compute_all; done

echo "latency,jobs,measured_ops_s,latency_bound_ops_s,compute_bound_ops_s,predicted_ops_s,error_pct,bound" >"$csv"
{
    echo "# Timing-model fidelity: ECDSA P-256 sign, \`openssl speed -elapsed -async_jobs J\`"
    echo
    echo "Load average at start: $load on $(nproc) CPUs${rt:+; openssl speed under SCHED_FIFO}. Seconds per point: $seconds."
    echo
    echo "| latency | jobs | measured ops/s | J/L | compute bound | predicted | error | bound by |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|"
} >"$md"
for l in "${latencies[@]}"; do
    ls=$(to_s "$l")
    for j in "${jobs_list[@]}"; do
        m=$(rate "fixed:$l" "$j")
        row=$(awk -v m="$m" -v j="$j" -v l="$ls" -v c="${compute[$j]}" 'BEGIN {
            lb = j / l; p = (lb < c) ? lb : c; b = (lb < c) ? "latency" : "compute";
            printf "%.1f,%.1f,%.1f,%+.1f,%s", lb, c, p, 100 * (m - p) / p, b }')
        IFS=, read -r lb cb pred err bound <<<"$row"
        echo "$l,$j,$m,$lb,$cb,$pred,$err,$bound" >>"$csv"
        printf '| %s | %s | %.0f | %.0f | %.0f | %.0f | %s%% | %s |\n' \
            "$l" "$j" "$m" "$lb" "$cb" "$pred" "$err" "$bound" >>"$md"
        echo "  latency=$l jobs=$j: measured $m, predicted $pred ($err%, $bound-bound)" >&2
    done
done
cat "$md"

if command -v gnuplot >/dev/null; then
    gnuplot -e "csv='$csv'; png='$outdir/fidelity.png'" "$here/fidelity_plot.gp" &&
        echo "fidelity.sh: wrote $outdir/fidelity.png" >&2
fi
