#!/usr/bin/env bash
# Bulk TLS throughput (bench/tls_inproc.cc --bulk): N connections on one thread, each server
# sending BYTES/N to its client, then MB/s. In one run, interleaved, R rounds each:
#   1. 16 KiB writes (full records): software, the engine's record ciphers
#      (default_algorithms = RSA,EC,CIPHERS) and the provider, each with the server synchronous
#      and in SSL_MODE_ASYNC;
#   2. the threshold's effect: the engine, async, at 1 KiB / 4 KiB / 16 KiB writes, with
#      cipher-threshold at its default (2048: 1 KiB records stay in software) and 0 (every record
#      on the device), next to software.
# Prints both as markdown tables (median of the rounds; range). The engine's and the provider's
# device options come from SIMACCEL_OPTS, e.g. "latency-aes-gcm=fixed:5us+100ns/KiB".
#
# Usage: bench/tls_bulk.sh [-b BYTES] [-r ROUNDS] [--build DIR] [-- tls_inproc options]
#   e.g. bench/tls_bulk.sh -b 256M -r 3 -- --connections 4 --tls 1.2
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
SCRIPT_NAME=tls_bulk
source "$src/scripts/lib/common.sh"
bytes=256M
rounds=3
build=$src/build/release
while (($#)); do
    case $1 in
    -b) bytes=${2:?}; shift 2 ;;
    -r) rounds=${2:?}; shift 2 ;;
    --build) build=${2:?}; shift 2 ;;
    --) shift; break ;;
    -h | --help) sed -n '2,15s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) fail "unknown argument '$1' (see --help)" ;;
    esac
done
bin=$build/bench/tls_inproc
[[ -x $bin ]] || fail "$bin not built (cmake --preset release && cmake --build --preset release)"
n=$(numfmt --from=iec "$bytes") || fail "bad byte count '$bytes' (e.g. 64M)"
extra=("$@")

new_scratch work tls_bulk
cleanup_on_exit
# The engine with its record ciphers as defaults: the shipped configuration plus CIPHERS.
sed 's/^default_algorithms = RSA,EC$/default_algorithms = RSA,EC,CIPHERS/' \
    "$src/conf/simaccel-engine.cnf" >"$work/engine-ciphers.cnf"
grep -q '^default_algorithms = RSA,EC,CIPHERS$' "$work/engine-ciphers.cnf" ||
    fail "conf/simaccel-engine.cnf has no 'default_algorithms = RSA,EC' line to extend"

configs=(software engine)
[[ -f $build/ossl-modules/simaccel.so ]] && configs+=(provider)
declare -A rates

# rate CONFIG ASYNC WRITE [OPTS]: MB/s of one run (OPTS: extra device options).
rate() {
    local cfg=$1 async=$2 write=$3 opts=${4:-}
    local -a envs=(OPENSSL_CONF=/dev/null)
    case $cfg in
    engine) envs=("OPENSSL_CONF=$work/engine-ciphers.cnf" "OPENSSL_ENGINES=$build/engines-3") ;;
    provider) envs=("OPENSSL_CONF=$src/conf/simaccel-provider.cnf" "OPENSSL_MODULES=$build/ossl-modules") ;;
    esac
    envs+=("SIMACCEL_OPTS=${SIMACCEL_OPTS:-}${opts:+ $opts}")
    env "${envs[@]}" timeout 600 "$bin" --key ec:P-256 --connections 1 --bulk "$n" \
        --write "$write" --async "$async" "${extra[@]}" | sed -n 's/.*mb_per_s=//p'
}

# measure KEY CONFIG ASYNC WRITE [OPTS]: one round into rates[KEY].
measure() {
    local key=$1 r
    shift
    r=$(rate "$@") || fail "$key failed"
    [[ -n $r ]] || fail "$key printed no rate"
    say "round $round $key: $r MB/s"
    rates[$key]+="$r "
}

for ((round = 1; round <= rounds; round++)); do
    for c in "${configs[@]}"; do
        for a in off on; do
            [[ $c == software && $a == on ]] && continue # no device: the same code path
            measure "$c/$a" "$c" "$a" 16384
        done
    done
    for w in 1024 4096 16384; do
        measure "thr-sw/$w" software off "$w"
        measure "thr-default/$w" engine on "$w"
        measure "thr-0/$w" engine on "$w" cipher-threshold=0
    done
done

median() { local m _; read -r m _ < <(agg ${rates[$1]}); echo "$m"; }
range() { local _ lo hi; read -r _ lo hi < <(agg ${rates[$1]}); echo "$lo–$hi"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

sw=$(median software/off)
echo
echo "Bulk TLS, $(numfmt --to=iec "$n") server to client, 16 KiB writes (MB/s, median of $rounds; range)"
echo
echo "| configuration | server | MB/s | × software | range |"
echo "|---|---|---:|---:|---|"
for c in "${configs[@]}"; do
    for a in off on; do
        [[ $c == software && $a == on ]] && continue
        k=$c/$a m=$(median "$c/$a")
        printf '| %s | %s | %.1f | %s | %s |\n' "$c" "$([[ $a == on ]] && echo SSL_MODE_ASYNC || echo sync)" \
            "$m" "$(ratio "$m" "$sw")" "$(range "$k")"
    done
done
echo
echo "cipher-threshold, the engine with SSL_MODE_ASYNC (MB/s, median of $rounds)"
echo
echo "| write size | software | threshold 2048 | × sw | threshold 0 | × sw |"
echo "|---:|---:|---:|---:|---:|---:|"
for w in 1024 4096 16384; do
    s=$(median "thr-sw/$w") d=$(median "thr-default/$w") z=$(median "thr-0/$w")
    printf '| %s | %.1f | %.1f | %s | %.1f | %s |\n' "$(numfmt --to=iec "$w")" "$s" "$d" \
        "$(ratio "$d" "$s")" "$z" "$(ratio "$z" "$s")"
done
