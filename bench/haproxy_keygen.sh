#!/usr/bin/env bash
# Does offloading the ephemeral key generation move the handshake rate? HAProxy (nbthread 1,
# ssl-mode-async) with a P-256 ECDSA certificate, TLS 1.3, h2load clients on a new connection
# per request (full handshakes: no session cache, no tickets), key share group P-256 and X25519,
# in three configurations, R rounds interleaved:
#   software   no simaccel at all;
#   default    the provider with `offload=default` (key generation on the device);
#   no-keygen  the provider with the same classes but `ec-keygen` and `x25519-keygen`.
# Prints handshakes/s per group and configuration, the ratio to software, the device operations
# per handshake seen in the stats file, and HAProxy's CPU time per handshake.
#
# Usage: bench/haproxy_keygen.sh [-n REQUESTS] [-c CLIENTS] [-r ROUNDS] [--build DIR]
#   (defaults: -n 2000 -c 32 -r 3, build/release). SIMACCEL_OPTS reaches the device.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
SCRIPT_NAME=haproxy_keygen
source "$src/scripts/lib/common.sh"
n=2000
clients=32
rounds=3
build=$src/build/release
while (($#)); do
    case $1 in
    -n) n=${2:?}; shift 2 ;;
    -c) clients=${2:?}; shift 2 ;;
    -r) rounds=${2:?}; shift 2 ;;
    --build) build=${2:?}; shift 2 ;;
    -h | --help) sed -n '2,13s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) fail "unknown argument '$1' (see --help)" ;;
    esac
done
for p in haproxy h2load; do command -v "$p" >/dev/null || fail "$p is not installed (scripts/install-deps.sh)"; done
[[ -f $build/ossl-modules/simaccel.so ]] || fail "no provider in $build (cmake --build --preset release)"
cleanup_on_exit
new_scratch WORK haproxy-keygen
make_cert ec "$WORK/ec" && make_pem "$WORK/ec"
user_opts=${SIMACCEL_OPTS:-}
# `default` without the two key generations a P-256 or X25519 handshake makes.
no_keygen=rsa-priv,rsa-pub,ecdsa-sign,ecdsa-verify,ecdh,x25519,x448,ed25519,ed448,x448-keygen,dh-keygen,dh
tck=$(getconf CLK_TCK)

run() { # run GROUP CONFIG ROUND: prints "handshakes/s cpu_us_per_handshake ops_per_handshake"
    local group=$1 config=$2 round=$3 port cfg=$WORK/hs.cfg async=1
    local -a envs=(OPENSSL_CONF=/dev/null)
    local stats=$WORK/stats.$group.$config.$round
    case $config in
    software) async=0 ;;
    default | no-keygen)
        local offload=default
        [[ $config == no-keygen ]] && offload=$no_keygen
        envs=("OPENSSL_CONF=$src/conf/simaccel-provider.cnf" "OPENSSL_MODULES=$build/ossl-modules"
            "SIMACCEL_OPTS=${user_opts:+$user_opts }offload=$offload stats-file=$stats.%p.json") ;;
    esac
    port=$(free_port)
    haproxy_config "$cfg" 1 "$async" 8192 "ssl-min-ver TLSv1.3 curves $group" "$port:$WORK/ec.pem"
    env "${envs[@]}" haproxy -db -f "$cfg" >"$WORK/haproxy.log" 2>&1 &
    local pid=$!
    track "$pid"
    wait_listen "$port" 15 "$pid" || { cat "$WORK/haproxy.log" >&2; fail "haproxy did not start"; }
    local url=https://127.0.0.1:$port/ log=$WORK/h2load.log
    local -a h2=(h2load --h1 -t 1 -H "Connection: close" --groups="$group")
    (unset SIMACCEL_OPTS; OPENSSL_CONF=/dev/null timeout -k 5 60 "${h2[@]}" -n 200 -c "$clients" "$url") \
        >/dev/null 2>&1 || true # warm-up
    local t0 t1
    t0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    (unset SIMACCEL_OPTS; OPENSSL_CONF=/dev/null timeout -k 5 300 "${h2[@]}" -n "$n" -c "$clients" "$url") \
        >"$log" 2>&1 || true
    t1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    kill -USR1 "$pid" 2>/dev/null || true # graceful stop: the device writes its stats at exit
    wait_pid "$pid" 30 || fail "haproxy exited with an error"
    grep -q "^requests: $n total, $n started, $n done, $n succeeded" "$log" ||
        { grep -E '^(requests|finished)' "$log" >&2; fail "$group $config: not every request succeeded"; }
    local ops=-
    if [[ $config != software ]]; then # every handshake of the warm-up and the run
        local done
        done=$(python3 "$src/tools/stats.py" sum completed "$stats".*.json)
        ops=$(awk -v d="$done" -v h=$((n + 200)) 'BEGIN { printf "%.2f", d / h }')
    fi
    local hps
    hps=$(sed -nE 's/^finished in ([0-9.]+)(m?s), ([0-9.]+) req\/s.*/\3/p' "$log")
    echo "$hps $(awk -v a="$t0" -v b="$t1" -v t="$tck" -v n="$n" 'BEGIN { printf "%.0f", 1e6 * (b - a) / t / n }') $ops"
}

declare -A rates cpu ops
configs=(software default no-keygen)
for group in P-256 X25519; do
    for ((r = 1; r <= rounds; r++)); do
        for c in "${configs[@]}"; do
            read -r hps ms o < <(run "$group" "$c" "$r")
            say "$group round $r $c: $hps handshakes/s, $ms µs CPU per handshake, $o device ops per handshake"
            rates[$group.$c]+="$hps "
            cpu[$group.$c]+="$ms "
            ops[$group.$c]=$o
        done
    done
done
echo "| group | config | handshakes/s (median of $rounds; range) | x software | HAProxy CPU µs/handshake | device ops/handshake |"
echo "|---|---|---:|---:|---:|---:|"
for group in P-256 X25519; do
    read -r sw _ < <(agg ${rates[$group.software]})
    for c in "${configs[@]}"; do
        read -r m lo hi < <(agg ${rates[$group.$c]})
        read -r ms _ < <(agg ${cpu[$group.$c]})
        printf '| %s | %s | %.1f (%s-%s) | %.2f | %s | %s |\n' "$group" "$c" "$m" "$lo" "$hi" \
            "$(awk -v a="$m" -v b="$sw" 'BEGIN { print a / b }')" "$ms" "${ops[$group.$c]}"
    done
done
