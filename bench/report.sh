#!/usr/bin/env bash
# The benchmark report in one command: writes bench/results/<date>/ with CSV, PNG plots and a
# summary.md of ratios, with the machine (nproc, CPU model, OpenSSL version, kernel, load) beside:
#   (a) openssl speed ops/s against async_jobs (bench/speed.sh: engine, provider if built,
#       software one process and -multi 2);
#   (b) TLS handshakes/s against HAProxy nbthread 1, sync vs ssl-mode-async + simaccel, with an
#       RSA-3072 and a P-256 certificate, a new connection per request;
#   (c) CDFs of device request latency under two latency models;
#   (d) the device round-trip microbenchmark (<build>/bench/device_bench);
#   (e) in-process TLS handshakes (bench/tls_inproc.sh: one thread, 32 async server connections
#       and their synchronous clients, RSA-3072, TLS 1.3), software vs engine and provider.
# Every device runs its default configuration (poll-mode adaptive) unless SIMACCEL_OPTS says
# otherwise.
#
# Usage: bench/report.sh [--seconds N] [--out DIR] [--build DIR] [--only PARTS] [--quick]
#   --seconds N  seconds per measurement (default 3; speed runs 3 rounds, handshakes 3 rounds
#                of 3N seconds)
#   --only PARTS the parts to run, letters of abcde (default all: abcde)
#   --out DIR    result directory (default bench/results/<date>)
#   --build DIR  build directory (default build/release, configured and built if missing)
#   --quick      a fast smoke run: 1 s measurements, fewer async_jobs depths
# Numbers mean something only on an otherwise idle machine: the load average is recorded.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
SCRIPT_NAME=report
source "$src/scripts/lib/common.sh"
seconds=3
quick=0
parts=abcde
out=""
build=$src/build/release

usage() { sed -n '2,23s/^# \{0,1\}//p' "$0"; }
while (($#)); do
    case $1 in
    --seconds) seconds=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --build) build=${2:?}; shift 2 ;;
    --only) parts=${2:?}; shift 2 ;;
    --quick) quick=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "report.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
((quick)) && seconds=1
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "report.sh: --seconds wants a positive integer" >&2; exit 2; }
[[ $parts =~ ^[abcde]+$ ]] || { echo "report.sh: --only wants letters of abcde, not '$parts'" >&2; exit 2; }
part() { [[ $parts == *"$1"* ]]; }
if ((quick)); then
    jobs_list="1 16"
    speed_rounds=1
    hs_seconds=3
    hs_rounds=1
    lat_seconds=1
    bench_min_time=0.05
    tls_handshakes=100
    tls_rounds=1
else
    jobs_list="1 2 4 8 16 32 64"
    speed_rounds=3
    hs_seconds=$((seconds * 3))
    hs_rounds=3
    lat_seconds=$seconds
    bench_min_time=1
    tls_handshakes=600
    tls_rounds=3
fi
hs_clients=64

for prog in python3 gnuplot; do
    command -v "$prog" >/dev/null || fail "$prog is missing (scripts/install-deps.sh installs it)"
done

# The build: the release preset by default, configured and built when missing.
if [[ ! -f $build/engines-3/simaccel.so && ! -f $build/ossl-modules/simaccel.so ]]; then
    if [[ $build == "$src/build/release" ]]; then
        say "building the release preset in $build"
        (cd "$src" && cmake --preset release >/dev/null && cmake --build --preset release -j2) >&2
    else
        fail "no simaccel module in '$build': build it first"
    fi
fi
build=$(cd "$build" && pwd)
engine_so=$build/engines-3/simaccel.so
provider_so=$build/ossl-modules/simaccel.so

out=${out:-$src/bench/results/$(date +%Y-%m-%d_%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cleanup_on_exit
new_scratch tmp report
# Every step runs with only the configuration it asks for.
export OPENSSL_CONF=/dev/null
unset SIMACCEL_OPTS

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
machine() {
    echo "date:        $(date -Iseconds)"
    echo "host:        $(uname -n)"
    echo "kernel:      $(uname -srm)"
    echo "cpu:         $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "nproc:       $(nproc)"
    echo "memory:      $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "openssl:     $("$OPENSSL" version)"
    # sed, not head: head exits after a line and the writer's SIGPIPE fails the pipeline.
    echo "haproxy:     $(command -v haproxy >/dev/null && haproxy -v 2>&1 | sed -n 1p || echo none)"
    echo "h2load:      $(command -v h2load >/dev/null && h2load --version 2>&1 | sed -n 1p || echo none)"
    echo "simaccel:    $(git -C "$src" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "build:       $build ($(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt" 2>/dev/null))"
    echo "engine:      $([[ -f $engine_so ]] && echo built || echo 'not built')"
    echo "provider:    $([[ -f $provider_so ]] && echo built || echo 'not built')"
    echo "mode:        $( ((quick)) && echo quick || echo full), --seconds $seconds, parts $parts"
}
machine >"$out/machine.txt"
load_start=$(loadavg)
say "results in $out (load average $load_start)"
awk '{ if ($1 >= 1.0) exit 1 }' /proc/loadavg ||
    say "warning: load average ${load_start%% *} >= 1: other work shares the cores, numbers are pessimistic"

# (a) ----------------------------------------------------------------------------------------------
part a && say "(a) openssl speed sweep"
if part a && ! "$here/speed.sh" -s "$seconds" -r "$speed_rounds" -o "$out/speed" --build "$build" -j "$jobs_list" >&2; then
    say "warning: speed.sh reported failed runs (see $out/speed/speed.log)"
fi
if part a && [[ -f $out/speed/speed.csv ]]; then
    python3 "$here/plot/prepare.py" speed "$out/speed/speed.csv" "$tmp"
    for alg in rsa2048 ecdsap256 ecdhp256; do
        gnuplot -e "dat='$tmp/speed.$alg.dat'; out='$out/speed.$alg.png'; alg='$alg'" \
            "$here/plot/speed.gp" 2>>"$out/gnuplot.log" || say "warning: plot speed.$alg failed"
    done
fi

# (b) ----------------------------------------------------------------------------------------------
# h2load_rate LOG: "SECONDS REQ_PER_S" from h2load's "finished in 1.23s, 456.78 req/s" line.
h2load_rate() {
    sed -nE 's/^finished in ([0-9.]+)(m?s), ([0-9.]+) req\/s.*/\1 \2 \3/p' "$1" |
        awk '{ print ($2 == "ms" ? $1 / 1000 : $1), $3 }'
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat; }

# hs_run CERT MODE ROUND: one HAProxy (nbthread 1) for one certificate and mode, a warm-up, then
# $hs_clients concurrent clients for $hs_seconds, each request on a new TLS 1.2 connection
# (ECDHE P-256, AES128-GCM: a cheap client) with a full handshake: h2load resumes sessions
# when it reconnects, so the server has no session cache and no tickets. Appends a row to handshakes.csv.
hs_run() {
    local cert=$1 mode=$2 round=$3 port cfg=$tmp/hs.$1.$2.cfg log=$tmp/hs.$1.$2.log
    local tag=$cert.$mode.r$round
    local -a envs=(OPENSSL_CONF=/dev/null)
    local async=0 cls=rsa-priv
    [[ $cert == p256 ]] && cls=ecdsa-sign
    case $mode in
    sync) ;;
    async-engine)
        async=1
        envs=("OPENSSL_CONF=$src/conf/simaccel-engine.cnf" "OPENSSL_ENGINES=$build/engines-3"
            "SIMACCEL_OPTS=stats-file=$tmp/hs.$cert.$mode.%p.json") ;;
    async-provider)
        async=1
        envs=("OPENSSL_CONF=$src/conf/simaccel-provider.cnf" "OPENSSL_MODULES=$build/ossl-modules"
            "SIMACCEL_OPTS=stats-file=$tmp/hs.$cert.$mode.%p.json") ;;
    esac
    port=$(free_port)
    haproxy_config "$cfg" 1 "$async" 8192 \
        "ssl-max-ver TLSv1.2 ciphers ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256 curves P-256" \
        "$port:$tmp/$cert.pem"
    env "${envs[@]}" haproxy -db -f "$cfg" >"$log" 2>&1 &
    local pid=$!
    track "$pid"
    local status=ok hs=0 failed=0 hps=0 server_cpu=0 server_ms=0 client_ms=0 busy=0 offloaded=- elapsed=0
    if ! wait_listen "$port" 15 "$pid"; then
        status="haproxy did not start"
    else
        local url=https://127.0.0.1:$port/
        local -a h2=(h2load --h1 -t 1 -H "Connection: close" --groups=P-256
            --ciphers=ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256)
        # h2load's timed mode (-D) hangs at its end when it reconnects: the run is a request
        # count sized from the warm-up's rate to last about $hs_seconds.
        timeout -k 5 60 "${h2[@]}" -n 200 -c 16 "$url" >"$tmp/warm.log" 2>&1 || true
        local n
        n=$(h2load_rate "$tmp/warm.log" | awk -v s="$hs_seconds" '{ n = int($2 * s); print (n < 200 ? 200 : n) }')
        n=${n:-200}
        local t0 m0 t1 m1
        t0=$(cpu_ticks "$pid")
        m0=$(machine_ticks)
        # The client's own CPU time too (rusage of the waited-for children): it shares the
        # cores, and the summary works out the machine's ceiling from it.
        python3 "$here/plot/prepare.py" cputime "$tmp/client_cpu" timeout -k 5 $((hs_seconds * 5 + 60)) "${h2[@]}" -c "$hs_clients" -n "$n" "$url" \
            >"$tmp/h2load.log" 2>&1 || true
        # Without ALPN on the bind h2load prints two lines per connection: keep the rest.
        grep -v -e '^No protocol negotiated' -e '^Server does not support NPN/ALPN' \
            "$tmp/h2load.log" >"$out/h2load.$tag.log" || true
        t1=$(cpu_ticks "$pid")
        m1=$(machine_ticks)
        local elapsed errored
        read -r hs failed errored < <(h2load_counts "$out/h2load.$tag.log") || true
        elapsed=$(h2load_rate "$out/h2load.$tag.log" | cut -d' ' -f1)
        [[ -n $hs && -n $elapsed ]] || { hs=0; failed=0; elapsed=1; status="no h2load summary"; }
        local tck
        tck=$(getconf CLK_TCK)
        hps=$(awk -v n="$hs" -v s="$elapsed" 'BEGIN { printf "%.1f", n / s }')
        server_cpu=$(awk -v a="$t0" -v b="$t1" -v t="$tck" -v s="$elapsed" 'BEGIN { printf "%.2f", (b - a) / t / s }')
        server_ms=$(awk -v a="$t0" -v b="$t1" -v t="$tck" -v n="$hs" 'BEGIN { printf "%.3f", n ? 1000 * (b - a) / t / n : 0 }')
        client_ms=$(awk -v c="$(cat "$tmp/client_cpu" 2>/dev/null || echo 0)" -v n="$hs" 'BEGIN { printf "%.3f", n ? 1000 * c / n : 0 }')
        busy=$(awk -v a="${m0% *}" -v A="${m0#* }" -v b="${m1% *}" -v B="${m1#* }" \
            'BEGIN { printf "%.0f", (B > A) ? 100 * (b - a) / (B - A) : 0 }')
        kill -0 "$pid" 2>/dev/null || status="haproxy died during the run"
    fi
    # Graceful stop: the device writes its stats at exit.
    if kill -USR1 "$pid" 2>/dev/null; then
        for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    kill "$pid" 2>/dev/null || true
    local rc=0
    wait "$pid" 2>/dev/null || rc=$?
    ((rc == 0)) || [[ $status != ok ]] || status="haproxy exit status $rc"
    if ((async)); then
        local f=$tmp/hs.$cert.$mode.$pid.json
        if [[ -s $f ]]; then
            cp "$f" "$out/stats.$tag.json"
            offloaded=$("$STATS" sum completed "$f" --class "$cls")
        else
            offloaded="no stats"
        fi
    fi
    if [[ $status != ok ]]; then
        cp "$log" "$out/haproxy.$tag.log"
        say "warning: $cert $mode round $round: $status (log: haproxy.$tag.log)"
    fi
    say "(b) $cert $mode round $round: $hps handshakes/s ($hs in ${elapsed:-?}s, $failed failed), server cpu $server_cpu cores ($server_ms ms/handshake), client $client_ms ms/handshake, machine ${busy}% busy, $status"
    echo "$cert,$mode,$round,TLSv1.2,$hs_clients,${elapsed:-0},$hs,$failed,$hps,$server_cpu,$server_ms,$client_ms,$busy,$offloaded,$status" >>"$out/handshakes.csv"
}

if ! part b; then
    :
elif command -v haproxy >/dev/null && command -v h2load >/dev/null; then
    say "(b) TLS handshakes against HAProxy nbthread 1"
    make_cert rsa3072 "$tmp/rsa3072" && make_pem "$tmp/rsa3072"
    make_cert ec "$tmp/p256" && make_pem "$tmp/p256"
    echo "cert,mode,round,tls,clients,seconds,handshakes,failed,handshakes_per_s,server_cpu_cores,server_cpu_ms_per_handshake,client_cpu_ms_per_handshake,machine_busy_pct,offloaded,status" >"$out/handshakes.csv"
    modes=(sync)
    [[ -f $engine_so ]] && modes+=(async-engine)
    [[ -f $provider_so ]] && modes+=(async-provider)
    # Rounds interleave the modes, so a drift of the machine (a VM's neighbours) spreads over
    # all of them; the summary reports each mode's median and range.
    for c in rsa3072 p256; do
        for r in $(seq "$hs_rounds"); do
            for m in "${modes[@]}"; do hs_run "$c" "$m" "$r"; done
        done
    done
    python3 "$here/plot/prepare.py" handshakes "$out/handshakes.csv" "$tmp/handshakes.dat" "${modes[@]}"
    gnuplot -e "dat='$tmp/handshakes.dat'; out='$out/handshakes.png'; modes=${#modes[@]}" "$here/plot/handshakes.gp" \
        2>>"$out/gnuplot.log" || say "warning: plot handshakes failed"
else
    say "(b) skipped: haproxy or h2load is not installed (scripts/install-deps.sh installs them)"
fi

# (c) ----------------------------------------------------------------------------------------------
if part c && [[ -f $engine_so ]]; then
    say "(c) latency CDFs"
    models=("fixed:200us" "exp:500us")
    specs=()
    for m in "${models[@]}"; do
        name=${m//:/-}
        SIMACCEL_OPTS="latency=$m stats-file=$out/lat.$name.json" OPENSSL_ENGINES=$build/engines-3 \
            timeout -k 5 $((lat_seconds * 4 + 60)) "$OPENSSL" speed -engine simaccel -async_jobs 8 \
            -seconds "$lat_seconds" ecdsap256 >"$tmp/lat.$name.log" 2>&1 ||
            say "warning: latency run $m failed"
        [[ -s $out/lat.$name.json ]] && specs+=("$m=$out/lat.$name.json")
    done
    if ((${#specs[@]})); then
        python3 "$here/plot/prepare.py" cdf "$out/latency_cdf.csv" "${specs[@]}"
        names=$(python3 "$here/plot/prepare.py" cdfdat "$out/latency_cdf.csv" "$tmp/latency_cdf.dat")
        gnuplot -e "dat='$tmp/latency_cdf.dat'; out='$out/latency_cdf.png'; models='$names'" \
            "$here/plot/latency_cdf.gp" 2>>"$out/gnuplot.log" || say "warning: plot latency CDF failed"
    fi
fi

# (d) ----------------------------------------------------------------------------------------------
if ! part d; then
    :
elif [[ -x $build/bench/device_bench ]]; then
    say "(d) device_bench"
    # JSON, turned into CSV here: Google Benchmark's CSV reporter aborts when benchmarks report
    # different counters.
    if timeout -k 5 600 "$build/bench/device_bench" --benchmark_format=json \
        --benchmark_min_time="$bench_min_time" >"$out/device_bench.json" 2>"$tmp/device_bench.err"; then
        python3 "$here/plot/prepare.py" benchcsv "$out/device_bench.json" "$out/device_bench.csv"
    else
        say "warning: device_bench failed: $(tail -n 3 "$tmp/device_bench.err")"
    fi
else
    say "(d) skipped: no $build/bench/device_bench (SIMACCEL_BUILD_BENCH=ON builds it)"
fi

# (e) ----------------------------------------------------------------------------------------------
if ! part e; then
    :
elif [[ -x $build/bench/tls_inproc ]]; then
    say "(e) in-process TLS handshakes"
    if ! "$here/tls_inproc.sh" -n "$tls_handshakes" -r "$tls_rounds" --build "$build" -- \
        --connections 32 --key rsa:3072 --tls 1.3 >"$out/tls_inproc.txt" 2>"$tmp/tls_inproc.err"; then
        say "warning: tls_inproc.sh failed: $(tail -n 3 "$tmp/tls_inproc.err")"
        rm -f "$out/tls_inproc.txt"
    fi
else
    say "(e) skipped: no $build/bench/tls_inproc (SIMACCEL_BUILD_BENCH=ON builds it)"
fi

echo "load:        $load_start at start, $(loadavg) at end (1, 5, 15 min)" >>"$out/machine.txt"
[[ -s $out/gnuplot.log ]] || rm -f "$out/gnuplot.log"
python3 "$here/plot/prepare.py" summary "$out" >"$out/summary.md"
say "wrote $out/summary.md"
