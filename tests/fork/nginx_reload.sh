#!/usr/bin/env bash
# nginx with `ssl_engine simaccel;` reloaded 20 times (`nginx -s reload`) while h2load keeps new
# TLS connections coming: every request of the load succeeds, every generation of workers
# (forked from a master that loaded the engine, and re-forked on each reload) offloads its
# private-key operations to its own device and leaves cleanly, and the master survives.
# SIMACCEL_RELOADS overrides the count.
source "$(dirname "$0")/../servers/lib.sh"
require_engine
require_server nginx

reloads=${SIMACCEL_RELOADS:-20}
workers=2
make_cert ec "$WORK/ec"

# nginx_conf FILE PORT (nginx_engine_conf: lib.sh); old workers get 10 s to finish at a reload.
nginx_conf() { nginx_engine_conf "$1" "$workers" "worker_shutdown_timeout 10s;" "$2:ec"; }

export SIMACCEL_OPTS="stats-file=$WORK/stats.%p.json latency=fixed:200us"
nginx_up nginx_conf 1
master=$NGINX_PID log=$NGINX_LOG conf=$NGINX_CONF PORT=${PORTS[0]}

# current_workers: the master's children now, sorted.
current_workers() { children "$master" | sort -n; }
declare -A all_workers=()
wait_generation() { # wait_generation PREVIOUS...: until $workers children none of which is PREVIOUS
    local i w
    for ((i = 0; i < 200; i++)); do
        mapfile -t now < <(current_workers)
        local fresh=0
        for w in "${now[@]}"; do
            [[ " $* " == *" $w "* ]] || fresh=$((fresh + 1))
        done
        if ((fresh >= workers)); then
            for w in "${now[@]}"; do all_workers[$w]=1; done
            return 0
        fi
        sleep 0.05
    done
    fail "no new generation of $workers workers (children now: ${now[*]:-none})"
}
wait_generation
say "nginx master $master on 127.0.0.1:$PORT, workers $(current_workers | tr '\n' ' ')"

# The load: one h2load run across all the reloads, a new TLS connection per request.
requests=$((reloads * 40 + 200))
say "+ h2load --h1 -n $requests -c 4 (background, across the reloads)"
(unset OPENSSL_ENGINES SIMACCEL_OPTS; export OPENSSL_CONF=/dev/null
    exec timeout -k 5 240 h2load --h1 -n "$requests" -c 4 -H 'Connection: close' \
        "https://127.0.0.1:$PORT/") >"$WORK/h2load.log" 2>&1 &
load=$!
track "$load"

for ((r = 1; r <= reloads; r++)); do
    mapfile -t before < <(current_workers)
    run nginx -p "$WORK/nginx/" -e stderr -c "$conf" -s reload >>"$WORK/reload.log" 2>&1 ||
        { cat "$WORK/reload.log" >&2; fail "nginx -s reload $r failed"; }
    wait_generation "${before[@]}"
    kill -0 "$master" 2>/dev/null || { cat "$log" >&2; fail "master died at reload $r"; }
    sleep 0.2
done
say "$reloads reloads done; $((${#all_workers[@]})) worker processes so far"

wait "$load" || { cat "$WORK/h2load.log" >&2; fail "h2load failed during the reloads"; }
summary=$(h2load_counts "$WORK/h2load.log")
read -r ok failed errored <<<"$summary"
say "load across the reloads: ${summary:-no summary} (succeeded failed errored)"
((ok == requests && failed == 0 && errored == 0)) ||
    { cat "$WORK/h2load.log" >&2; fail "not every request succeeded across the reloads"; }

stop_gracefully "$master" QUIT 60
grep -E '\[(alert|crit|emerg)\]' "$log" >&2 && fail "nginx logged alerts"

files=()
for w in "${!all_workers[@]}"; do
    f=$WORK/stats.$w.json
    [[ -s $f ]] || { ls "$WORK" >&2; tail -50 "$log" >&2; fail "worker $w wrote no stats file (did it exit cleanly?)"; }
    files+=("$f")
    n=$(stats_sum ecdsa-sign submitted "$f")
    ((n == 0)) || check_offload "$f" ecdsa-sign 1
done
n=$(stats_sum ecdsa-sign completed "${files[@]}")
((n >= requests)) || fail "workers completed $n ECDSA signs for $requests handshakes"
say "ok: $reloads reloads under load, ${#files[@]} workers, $requests requests, $n offloaded signs"
