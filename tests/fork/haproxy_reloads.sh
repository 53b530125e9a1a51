#!/usr/bin/env bash
# HAProxy master-worker (-W, engine loaded in the master, ssl-mode-async) reloaded with SIGUSR2
# several times, with handshakes between the reloads: each new worker serves through its own
# device, each old worker leaves gracefully after writing its stats, the master survives every
# re-exec. SIMACCEL_RELOADS overrides the count (default 5).
source "$(dirname "$0")/../servers/lib.sh"
require_engine
require_python
require_program haproxy haproxy
require_program h2load nghttp2-client

reloads=${SIMACCEL_RELOADS:-5}
requests=40
make_cert rsa rsa && server_pem rsa
make_cert ec ec && server_pem ec

haproxy_up mw 1 1 \
    "OPENSSL_CONF=$SIMACCEL_SOURCE_DIR/conf/simaccel-engine.cnf" \
    "SIMACCEL_OPTS=stats-file=$WORK/stats.%p.json" -- -W
master=$HAPROXY_PID

one_worker() { # one_worker NOT_PID: the single worker, once it is not NOT_PID
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
workers=("$(one_worker)")
h2load_run "$WORK/gen0.log" "https://127.0.0.1:$EC_PORT/" "$requests" 4

for ((r = 1; r <= reloads; r++)); do
    old=${workers[-1]}
    say "+ kill -USR2 $master (reload $r)"
    kill -USR2 "$master"
    for ((i = 0; i < 300; i++)); do
        kill -0 "$old" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$old" 2>/dev/null && fail "old worker $old still alive 15 s after reload $r"
    kill -0 "$master" 2>/dev/null || { cat "$HAPROXY_LOG" >&2; fail "master died in reload $r"; }
    workers+=("$(one_worker "$old")")
    wait_listen "$RSA_PORT" 15 "$master" && wait_listen "$EC_PORT" 15 "$master" ||
        { cat "$HAPROXY_LOG" >&2; fail "ports not listening after reload $r"; }
    h2load_run "$WORK/gen$r-ec.log" "https://127.0.0.1:$EC_PORT/" "$requests" 4
    h2load_run "$WORK/gen$r-rsa.log" "https://127.0.0.1:$RSA_PORT/" "$requests" 4
done

stop_gracefully "$master" USR1 30
grep -iE 'alert|error' "$HAPROXY_LOG" | grep -v 'Exiting Master process' >&2 &&
    fail "haproxy logged errors"
for w in "${workers[@]}"; do
    f=$WORK/stats.$w.json
    [[ -s $f ]] || { ls "$WORK" >&2; cat "$HAPROXY_LOG" >&2; fail "worker $w wrote no stats file"; }
    check_offload "$f" ecdsa-sign "$requests"
done
say "ok: $reloads reloads, ${#workers[@]} worker generations, each offloaded its handshakes"
