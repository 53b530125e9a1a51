#!/usr/bin/env bash
# In-process TLS handshakes (bench/tls_inproc.cc): one event-loop thread with N async server
# connections and their synchronous clients, RSA-3072 by default, TLS 1.3. Runs software
# (no async mode, OPENSSL_CONF=/dev/null), the engine and the provider (their default
# configuration) R times each, interleaved, and prints handshakes/s with the ratio to software.
#
# Usage: bench/tls_inproc.sh [-n HANDSHAKES] [-r ROUNDS] [--build DIR] [-- tls_inproc options]
#   e.g. bench/tls_inproc.sh -n 600 -r 3 -- --connections 32 --key rsa:3072 --tls 1.3
#   SIMACCEL_OPTS in the environment reaches the device.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
SCRIPT_NAME=tls_inproc
source "$src/scripts/lib/common.sh"
n=600
rounds=3
build=$src/build/release
while (($#)); do
    case $1 in
    -n) n=${2:?}; shift 2 ;;
    -r) rounds=${2:?}; shift 2 ;;
    --build) build=${2:?}; shift 2 ;;
    --) shift; break ;;
    -h | --help) sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) fail "unknown argument '$1' (see --help)" ;;
    esac
done
bin=$build/bench/tls_inproc
[[ -x $bin ]] || fail "$bin not built (cmake --preset release && cmake --build --preset release)"

configs=(software engine)
[[ -f $build/ossl-modules/simaccel.so ]] && configs+=(provider)
declare -A rates
run() { # run CONFIG [tls_inproc options]: prints handshakes/s
    local cfg=$1
    shift
    local -a envs=(OPENSSL_CONF=/dev/null) args=(--async off)
    case $cfg in
    engine) envs=("OPENSSL_CONF=$src/conf/simaccel-engine.cnf" "OPENSSL_ENGINES=$build/engines-3"); args=() ;;
    provider) envs=("OPENSSL_CONF=$src/conf/simaccel-provider.cnf" "OPENSSL_MODULES=$build/ossl-modules"); args=() ;;
    esac
    env "${envs[@]}" timeout 300 "$bin" --handshakes "$n" "${args[@]}" "$@" |
        sed -n 's/.*handshakes_per_s=//p'
}
for ((r = 1; r <= rounds; r++)); do
    for c in "${configs[@]}"; do
        hps=$(run "$c" "$@") || fail "$c round $r failed"
        [[ -n $hps ]] || fail "$c round $r printed no rate"
        say "round $r $c: $hps handshakes/s"
        rates[$c]+="$hps "
    done
done
read -r sw _ < <(agg ${rates[software]})
printf '%-10s %12s %8s %s\n' config "handshakes/s" "x sw" "(median of $rounds; range)"
for c in "${configs[@]}"; do
    read -r m lo hi < <(agg ${rates[$c]})
    printf '%-10s %12.1f %8.2f (%s-%s)\n' "$c" "$m" "$(awk -v a="$m" -v b="$sw" 'BEGIN { print a / b }')" "$lo" "$hi"
done
