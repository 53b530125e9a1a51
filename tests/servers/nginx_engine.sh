#!/usr/bin/env bash
# nginx with `ssl_engine simaccel;` (the engine made default in the master, workers forked:
# the synchronous path, the device restarted lazily in each worker) serves full TLS handshakes
# on an RSA-2048 and an EC P-256 certificate; after a graceful stop (SIGQUIT) every worker's
# stats file accounts for its share of the private-key operations.
source "$(dirname "$0")/lib.sh"
require_engine
require_server nginx

requests=${SIMACCEL_TEST_REQUESTS:-200}
workers=2
make_cert rsa "$WORK/rsa"
make_cert ec "$WORK/ec"

# nginx_conf FILE RSA_PORT EC_PORT: one server per certificate (nginx_engine_conf: lib.sh).
nginx_conf() { nginx_engine_conf "$1" "$workers" "" "$2:rsa" "$3:ec"; }
SIMACCEL_OPTS="stats-file=$WORK/stats.%p.json strict=warn" nginx_up nginx_conf 2
master=$NGINX_PID log=$NGINX_LOG RSA_PORT=${PORTS[0]} EC_PORT=${PORTS[1]}
for ((i = 0; i < 100; i++)); do
    mapfile -t worker_pids < <(children "$master")
    ((${#worker_pids[@]} == workers)) && break
    sleep 0.1
done
((${#worker_pids[@]} == workers)) || fail "nginx master $master has ${#worker_pids[@]} workers, expected $workers"
say "nginx master $master, workers ${worker_pids[*]}, RSA :$RSA_PORT, EC :$EC_PORT"

handshake_load "$RSA_PORT" "$EC_PORT" "$requests"

stop_gracefully "$master" QUIT 30
grep -E '\[(alert|crit|emerg|error)\]' "$log" >&2 && fail "nginx logged errors"

files=()
for w in "${worker_pids[@]}"; do
    f=$WORK/stats.$w.json
    [[ -s $f ]] || { ls "$WORK" >&2; cat "$log" >&2; fail "worker $w wrote no stats file"; }
    cat "$f" >&2
    files+=("$f")
    # A worker may have been handed no RSA or no EC connection: counters are checked when present.
    for cls in rsa-priv ecdsa-sign; do
        n=$(stats_sum "$cls" submitted "$f")
        ((n == 0)) || check_offload "$f" "$cls" 1
    done
done
check_contract_clean "${files[@]}"
for cls in rsa-priv ecdsa-sign; do
    n=$(stats_sum "$cls" completed "${files[@]}")
    ((n >= requests + TLS12)) || fail "workers completed $n $cls operations, expected >= $((requests + TLS12))"
    say "ok: $cls completed by the workers: $n"
done
