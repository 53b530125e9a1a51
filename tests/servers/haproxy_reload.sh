#!/usr/bin/env bash
# HAProxy in master-worker mode (-W, engine loaded in the master through OPENSSL_CONF, workers
# forked) reloaded with SIGUSR2 mid-run: handshakes before and after the reload succeed, the old
# worker leaves gracefully, and both the old and the new worker offloaded their private-key
# operations to their own device (stats file per worker pid).
source "$(dirname "$0")/lib.sh"
require_engine
require_python
require_program haproxy haproxy
require_program h2load nghttp2-client

requests=${SIMACCEL_TEST_REQUESTS:-100}
make_cert rsa rsa && server_pem rsa
make_cert ec ec && server_pem ec

haproxy_up mw 1 1 \
    "OPENSSL_CONF=$SIMACCEL_SOURCE_DIR/conf/simaccel-engine.cnf" \
    "SIMACCEL_OPTS=stats-file=$WORK/stats.%p.json" -- -W
master=$HAPROXY_PID

# worker_of MASTER: the one worker pid (nbthread 1, one process), once the master has forked it.
one_worker() {
    local i w
    for ((i = 0; i < 100; i++)); do
        mapfile -t w < <(children "$master")
        if ((${#w[@]} == 1)); then
            echo "${w[0]}"
            return 0
        fi
        sleep 0.1
    done
    fail "master $master has ${#w[@]} workers, expected 1: ${w[*]:-none}"
}
old=$(one_worker)
say "master $master, worker $old"

h2load_run "$WORK/before-rsa.log" "https://127.0.0.1:$RSA_PORT/" "$requests" 8
h2load_run "$WORK/before-ec.log" "https://127.0.0.1:$EC_PORT/" "$requests" 8

say "+ kill -USR2 $master (reload)"
kill -USR2 "$master"
# The old worker stops listening at once and leaves when its (no longer open) connections are
# done; the re-executed master forks the new one.
for ((i = 0; i < 150; i++)); do
    kill -0 "$old" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$old" 2>/dev/null && fail "old worker $old still alive 15s after the reload"
kill -0 "$master" 2>/dev/null || { cat "$HAPROXY_LOG" >&2; fail "master died in the reload"; }
new=$(one_worker)
[[ $new != "$old" ]] || fail "no new worker after the reload"
wait_listen "$RSA_PORT" 15 "$master" && wait_listen "$EC_PORT" 15 "$master" ||
    { cat "$HAPROXY_LOG" >&2; fail "ports not listening after the reload"; }
say "reloaded: new worker $new"

h2load_run "$WORK/after-rsa.log" "https://127.0.0.1:$RSA_PORT/" "$requests" 8
h2load_run "$WORK/after-ec.log" "https://127.0.0.1:$EC_PORT/" "$requests" 8

stop_gracefully "$master" USR1 30
grep -iE 'alert|error' "$HAPROXY_LOG" | grep -v 'Exiting Master process' >&2 &&
    fail "haproxy logged errors"

for w in "$old" "$new"; do
    f=$WORK/stats.$w.json
    [[ -s $f ]] || { ls "$WORK" >&2; cat "$HAPROXY_LOG" >&2; fail "worker $w wrote no stats file"; }
    check_offload "$f" rsa-priv "$requests"
    check_offload "$f" ecdsa-sign "$requests"
done
say "ok: old worker $old and new worker $new each offloaded $requests RSA and $requests ECDSA handshakes"
