#!/usr/bin/env bash
# simaccel in two minutes: builds the release preset, compares `openssl speed` in software with
# the same run offloaded to the simulated device (-engine simaccel -async_jobs 16), serves one
# async TLS connection through the engine, and prints the device's statistics.
# Usage: scripts/demo.sh [-s SECONDS]   (SIMACCEL_OPTS in the environment reaches the device)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
seconds=2
[[ ${1:-} == -s ]] && seconds=${2:?}

bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j2
build=$src/build/release
[[ -f $build/engines-3/simaccel.so ]] || { echo "demo: the engine was not built" >&2; exit 1; }
export OPENSSL_ENGINES=$build/engines-3

work=$(mktemp -d "${TMPDIR:-/tmp}/simaccel-demo.XXXXXX")
pids=()
cleanup() {
    local p
    for p in "${pids[@]:+${pids[@]}}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]:+${pids[@]}}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
user_opts=${SIMACCEL_OPTS:-}

if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
banner() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

# --- 1. openssl speed: software vs offload --------------------------------------------------
# speed -mr: "+F2:idx:bits:sign/s:verify/s" (RSA), "+F4:..." (ECDSA). -elapsed: per wall-clock
# second; speed's default divides by the process's user CPU time, which leaves out waiting for
# the device and kernel time and would flatter the offload.
rate() { grep "^+$1:" <<<"$2" | tail -n 1 | cut -d: -f4; }
algs=(rsa2048 ecdsap256)
limit=$((seconds * 4 + 60))

banner "software: openssl speed -elapsed -seconds $seconds ${algs[*]}"
sw=$(timeout -k 5 "$limit" openssl speed -mr -elapsed -seconds "$seconds" "${algs[@]}" 2>/dev/null)
banner "offload:  openssl speed -elapsed -engine simaccel -async_jobs 16 -seconds $seconds ${algs[*]}"
hw=$(SIMACCEL_OPTS="$user_opts stats-file=$work/speed-stats.json" timeout -k 5 "$limit" \
    openssl speed -engine simaccel -async_jobs 16 -mr -elapsed -seconds "$seconds" "${algs[@]}" 2>&1)
printf '%-12s %14s %14s %8s\n' "" "software/s" "simaccel/s" "ratio"
for row in "rsa2048 sign:F2" "ecdsap256 sign:F4"; do
    a=$(rate "${row#*:}" "$sw") b=$(rate "${row#*:}" "$hw")
    awk -v n="${row%:*}" -v a="${a:-0}" -v b="${b:-0}" 'BEGIN {
        printf "%-14s %12.1f %14.1f %7.2fx\n", n, a, b, (a > 0 ? b / a : 0) }'
done
echo "(2 cores: offload lets one process use both, so the ratio approaches 'openssl speed -multi 2')"

# --- 2. one async TLS exchange through the engine ---------------------------------------------
banner "TLS: openssl s_server -async -engine simaccel <-> openssl s_client on 127.0.0.1"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
    -days 1 -subj /CN=localhost 2>/dev/null
mkfifo "$work/server.in" "$work/client.in"
exec {server_in}<>"$work/server.in" # held open: s_server quits at stdin EOF
port=
for _ in 1 2 3 4 5; do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then port=; continue; fi # taken
    SIMACCEL_OPTS="$user_opts stats-file=$work/tls-stats.json" timeout -k 5 60 \
        openssl s_server -async -engine simaccel -naccept 1 -accept "127.0.0.1:$port" \
        -cert "$work/cert.pem" -key "$work/key.pem" <&"$server_in" >"$work/server.log" 2>&1 &
    server_pid=$!
    pids+=("$server_pid")
    for ((i = 0; i < 100; i++)); do
        grep -q '^ACCEPT' "$work/server.log" && break 2
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$server_pid" 2>/dev/null || true
    port=
done
[[ -n $port ]] || { cat "$work/server.log" >&2; echo "demo: s_server did not start" >&2; exit 1; }
echo "s_server pid $server_pid listening on 127.0.0.1:$port"

(exec timeout -k 5 30 openssl s_client -connect "127.0.0.1:$port" -CAfile "$work/cert.pem" \
    -servername localhost {server_in}>&- <"$work/client.in" >"$work/client.log" 2>&1) &
client_pid=$!
pids+=("$client_pid")
exec {client_in}>"$work/client.in"
line="hello through simaccel $(date +%s)"
for ((i = 0; i < 200; i++)); do grep -q 'Cipher is ' "$work/client.log" && break; sleep 0.1; done
grep -m1 'Cipher is ' "$work/client.log" || { cat "$work/client.log" >&2; exit 1; }
echo "$line" >&"$client_in"
for ((i = 0; i < 100; i++)); do grep -qF "$line" "$work/server.log" && break; sleep 0.1; done
if grep -qF "$line" "$work/server.log"; then
    echo "server received: $line"
else
    echo "demo: the server did not receive the line" >&2
    exit 1
fi
exec {client_in}>&- # client EOF -> close_notify; the server (-naccept 1) then exits by itself
wait "$client_pid" || true
for ((i = 0; i < 100; i++)); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$server_pid" 2>/dev/null; then
    echo "demo: s_server still running, stopping pid $server_pid" >&2
    kill "$server_pid"
fi
wait "$server_pid" || true
exec {server_in}>&-

# --- 3. what the device saw ---------------------------------------------------------------------
banner "device stats of the TLS server (stats-file=...)"
if [[ -s $work/tls-stats.json ]]; then
    # A summary of the classes the device saw, then the resolved configuration; the file itself
    # also has latency histograms (see docs/config.md, stats-file).
    python3 - "$work/tls-stats.json" <<'PY' || cat "$work/tls-stats.json"
import json, sys
doc = json.load(open(sys.argv[1]))
print(f"{'op class':<14}{'submitted':>10}{'completed':>10}{'failed':>8}{'busy':>6}"
      f"{'p50 us':>10}{'p99 us':>10}")
for name, op in doc.get("ops", {}).items():
    lat = op.get("latency_us", {})
    print(f"{name:<14}{op.get('submitted', 0):>10}{op.get('completed', 0):>10}"
          f"{op.get('failed', 0):>8}{op.get('busy', 0):>6}"
          f"{lat.get('p50', 0):>10}{lat.get('p99', 0):>10}")
print(f"workers {doc.get('workers')}, max in flight {doc.get('max_inflight')}")
cfg = doc.get("config", {})
print("config: " + " ".join(f"{k}={v}" for k, v in cfg.items() if v not in ("inherit",)))
PY
else
    echo "(no stats file was written)"
fi
