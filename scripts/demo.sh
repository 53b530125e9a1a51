#!/usr/bin/env bash
# simaccel in two minutes: builds the release preset, compares `openssl speed` in software with
# the same run offloaded to the simulated device (-engine simaccel -async_jobs 16), serves one
# async TLS connection through the engine, and prints the device's statistics.
# Usage: scripts/demo.sh [-s SECONDS]   (SIMACCEL_OPTS in the environment reaches the device)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
source scripts/lib/common.sh
seconds=2
[[ ${1:-} == -s ]] && seconds=${2:?}

bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j2
build=$src/build/release
[[ -f $build/engines-3/simaccel.so ]] || fail "the engine was not built"
export OPENSSL_ENGINES=$build/engines-3

cleanup_on_exit
new_scratch work demo
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
make_cert rsa "$work/server"
mkfifo "$work/server.in" "$work/client.in"
exec {server_in}<>"$work/server.in" # held open: s_server quits at stdin EOF
port=
for _ in 1 2 3 4 5; do
    port=$(free_port)
    SIMACCEL_OPTS="$user_opts stats-file=$work/tls-stats.json" timeout -k 5 60 \
        openssl s_server -async -engine simaccel -naccept 1 -accept "127.0.0.1:$port" \
        -cert "$work/server.crt" -key "$work/server.key" <&"$server_in" >"$work/server.log" 2>&1 &
    server_pid=$!
    track "$server_pid"
    for ((i = 0; i < 100; i++)); do
        grep -q '^ACCEPT' "$work/server.log" && break 2
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$server_pid" 2>/dev/null || true
    port=
done
[[ -n $port ]] || { cat "$work/server.log" >&2; fail "s_server did not start"; }
echo "s_server pid $server_pid listening on 127.0.0.1:$port"

(exec timeout -k 5 30 openssl s_client -connect "127.0.0.1:$port" -CAfile "$work/server.crt" \
    -servername localhost {server_in}>&- <"$work/client.in" >"$work/client.log" 2>&1) &
client_pid=$!
track "$client_pid"
exec {client_in}>"$work/client.in"
line="hello through simaccel $(date +%s)"
for ((i = 0; i < 200; i++)); do grep -q 'Cipher is ' "$work/client.log" && break; sleep 0.1; done
grep -m1 'Cipher is ' "$work/client.log" || { cat "$work/client.log" >&2; exit 1; }
echo "$line" >&"$client_in"
for ((i = 0; i < 100; i++)); do grep -qF "$line" "$work/server.log" && break; sleep 0.1; done
if grep -qF "$line" "$work/server.log"; then
    echo "server received: $line"
else
    fail "the server did not receive the line"
fi
exec {client_in}>&- # client EOF -> close_notify; the server (-naccept 1) then exits by itself
wait "$client_pid" || true
for ((i = 0; i < 100; i++)); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$server_pid" 2>/dev/null; then
    say "s_server still running, stopping pid $server_pid"
    kill "$server_pid"
fi
wait "$server_pid" || true
exec {server_in}>&-

# --- 3. what the device saw ---------------------------------------------------------------------
banner "device stats of the TLS server (stats-file=...)"
if [[ -s $work/tls-stats.json ]]; then
    # A summary of the classes the device saw, then the resolved configuration; the file itself
    # also has latency histograms (see docs/config.md, stats-file).
    "$STATS" table "$work/tls-stats.json" || cat "$work/tls-stats.json"
else
    echo "(no stats file was written)"
fi
