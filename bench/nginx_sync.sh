#!/usr/bin/env bash
# nginx without async mode: Debian's nginx with 2 worker processes, RSA-3072, TLS 1.2, h2load
# clients on a new connection per request (full handshakes: no session cache, no tickets),
# in software and with `ssl_engine simaccel;` (the engine's default configuration: every
# private-key operation goes through the device's synchronous lane). R rounds, interleaved;
# prints handshakes/s and the ratio engine / software.
#
# Usage: bench/nginx_sync.sh [-n REQUESTS] [-c CLIENTS] [-r ROUNDS] [--build DIR]
#   (defaults: -n 1500 -c 32 -r 3, build/release). SIMACCEL_OPTS reaches the device.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
SCRIPT_NAME=nginx_sync
source "$src/scripts/lib/common.sh"
n=1500
clients=32
rounds=3
build=$src/build/release
while (($#)); do
    case $1 in
    -n) n=${2:?}; shift 2 ;;
    -c) clients=${2:?}; shift 2 ;;
    -r) rounds=${2:?}; shift 2 ;;
    --build) build=${2:?}; shift 2 ;;
    -h | --help) sed -n '2,9s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) fail "unknown argument '$1' (see --help)" ;;
    esac
done
for p in nginx h2load; do command -v "$p" >/dev/null || fail "$p is not installed (scripts/install-deps.sh)"; done
[[ -f $build/engines-3/simaccel.so ]] || fail "no engine in $build (cmake --build --preset release)"
OPENSSL=${OPENSSL:-openssl}
cleanup_on_exit
new_scratch WORK nginx-bench
make_cert rsa3072 "$WORK/rsa"

declare -A rates
user_opts=${SIMACCEL_OPTS:-}
nginx_conf() { nginx_engine_conf "$1" 2 "" "$2:rsa"; }
run() { # run software|engine: prints handshakes/s
    if [[ $1 == engine ]]; then
        export NGINX_ENGINE=simaccel OPENSSL_ENGINES=$build/engines-3
        export SIMACCEL_OPTS="${user_opts:+$user_opts }stats-file=$WORK/stats.$r.%p.json"
    else
        export NGINX_ENGINE=
    fi
    OPENSSL_CONF=/dev/null nginx_up nginx_conf 1 2>/dev/null
    local url=https://127.0.0.1:${PORTS[0]}/ log=$WORK/h2load.$1.log
    local -a h2=(h2load --h1 -t 1 -H "Connection: close" --ciphers=ECDHE-RSA-AES128-GCM-SHA256 --groups=P-256)
    timeout -k 5 60 "${h2[@]}" -n 100 -c "$clients" "$url" >/dev/null 2>&1 || true # warm-up
    timeout -k 5 300 "${h2[@]}" -n "$n" -c "$clients" "$url" >"$log" 2>&1 || true
    kill "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    grep -q "^requests: $n total, $n started, $n done, $n succeeded" "$log" ||
        { grep -E '^(requests|finished)' "$log" >&2; fail "$1: not every request succeeded"; }
    if [[ $1 == engine ]]; then # the handshakes really went through the device
        local done
        done=$(python3 "$src/tools/stats.py" sum completed "$WORK"/stats.$r.*.json --class rsa-priv)
        ((done >= n)) || fail "engine: $done rsa-priv completions on the device for $n handshakes"
    fi
    sed -nE 's/^finished in ([0-9.]+)(m?s), ([0-9.]+) req\/s.*/\3/p' "$log"
}
for ((r = 1; r <= rounds; r++)); do
    for c in software engine; do
        hps=$(run "$c")
        say "round $r $c: $hps handshakes/s"
        rates[$c]+="$hps "
    done
done
read -r sw _ < <(agg ${rates[software]})
printf '%-10s %12s %8s %s\n' config "handshakes/s" "x sw" "(median of $rounds; range)"
for c in software engine; do
    read -r m lo hi < <(agg ${rates[$c]})
    printf '%-10s %12.1f %8.2f (%s-%s)\n' "$c" "$m" "$(awk -v a="$m" -v b="$sw" 'BEGIN { print a / b }')" "$lo" "$hi"
done
