#!/usr/bin/env bash
# HAProxy in master-worker mode (-W, the engine loaded in the master through OPENSSL_CONF,
# ssl-mode-async, workers forked) reloaded with SIGUSR2 RELOADS times (first argument), with
# REQUESTS handshakes (second argument) on each certificate before the first reload and after
# each one: each new worker serves through its own device, each old worker leaves gracefully
# after writing its stats (a file per worker pid) showing its own handshakes offloaded, and the
# master survives every re-exec. SIMACCEL_RELOADS overrides RELOADS.
source "$(dirname "$0")/lib.sh"
reloads=${SIMACCEL_RELOADS:-${1:?usage: haproxy_reload.sh RELOADS REQUESTS}}
requests=${2:?usage: haproxy_reload.sh RELOADS REQUESTS}
require_engine
require_server haproxy

server_certs
haproxy_up mw 1 1 \
    "OPENSSL_CONF=$SIMACCEL_SOURCE_DIR/conf/simaccel-engine.cnf" \
    "SIMACCEL_OPTS=stats-file=$WORK/stats.%p.json strict=warn" -- -W
master=$HAPROXY_PID

one_worker() { # one_worker [NOT_PID]: the single worker (nbthread 1), once it is not NOT_PID
    local i w
    for ((i = 0; i < 200; i++)); do
        mapfile -t w < <(children "$master")
        if ((${#w[@]} == 1)) && [[ ${w[0]} != "${1:-}" ]]; then
            echo "${w[0]}"
            return 0
        fi
        sleep 0.05
    done
    fail "master $master: no single new worker (children: ${w[*]:-none})"
}
load() { # load GENERATION: REQUESTS handshakes on each certificate
    h2load_run "$WORK/gen$1-rsa.log" "https://127.0.0.1:$RSA_PORT/" "$requests" 4
    h2load_run "$WORK/gen$1-ec.log" "https://127.0.0.1:$EC_PORT/" "$requests" 4
}
workers=("$(one_worker)")
say "master $master, worker ${workers[0]}"
load 0

for ((r = 1; r <= reloads; r++)); do
    old=${workers[-1]}
    say "+ kill -USR2 $master (reload $r)"
    kill -USR2 "$master"
    # The old worker stops listening at once and leaves when its (no longer open) connections
    # are done; the re-executed master forks the new one.
    for ((i = 0; i < 300; i++)); do
        kill -0 "$old" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$old" 2>/dev/null && fail "old worker $old still alive 15 s after reload $r"
    kill -0 "$master" 2>/dev/null || { cat "$HAPROXY_LOG" >&2; fail "master died in reload $r"; }
    workers+=("$(one_worker "$old")")
    wait_listen "$RSA_PORT" 15 "$master" && wait_listen "$EC_PORT" 15 "$master" ||
        { cat "$HAPROXY_LOG" >&2; fail "ports not listening after reload $r"; }
    say "reload $r: new worker ${workers[-1]}"
    load "$r"
done

stop_gracefully "$master" USR1 30
grep -iE 'alert|error' "$HAPROXY_LOG" | grep -v 'Exiting Master process' >&2 &&
    fail "haproxy logged errors"
for w in "${workers[@]}"; do
    f=$WORK/stats.$w.json
    [[ -s $f ]] || { ls "$WORK" >&2; cat "$HAPROXY_LOG" >&2; fail "worker $w wrote no stats file"; }
    check_offload "$f" rsa-priv "$requests"
    check_offload "$f" ecdsa-sign "$requests"
    check_contract_clean "$f"
done
say "ok: $reloads reloads, ${#workers[@]} worker generations, each offloaded its $requests RSA and $requests ECDSA handshakes"
