#!/usr/bin/env bash
# The reference integrations of examples/ (README "Making your server async-ready"), MODE fd or
# callback, through FRONTEND engine or provider, on 127.0.0.1 with the device's faults on:
#   1. fault-busy and fault-stall: an `openssl s_client` request gets the page; h2load's
#      handshakes (a new connection per request) and keep-alive requests all succeed; the
#      handshakes paused in the device (the server's async-pauses, the stats file's completed
#      private-key operations), EAGAIN refusals were resubmitted (busy > 0, retried <= busy,
#      and in callback mode the loop saw ASYNC_STATUS_EAGAIN), and on SIGTERM the server
#      drains and exits 0 with no connection left.
#   2. fault-error (fixed seed): each device error fails its handshake only; the server goes on
#      serving the others and exits cleanly.
#   3. clients that reset the connection while its handshake is paused: the server finishes
#      those jobs, closes them, serves the next client and exits cleanly.
# Every run is under strict=abort: the servers keep the application's side of the async
# contract (no abort, and the stats file's contract section all zero).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../cli/frontend_lib.sh"
mode=${1:?usage: examples.sh fd|callback engine|provider}
use_frontend "${2:?usage: examples.sh fd|callback engine|provider}"
require_python
require_program h2load nghttp2-client
server_bin=$SIMACCEL_BUILD_DIR/examples/async_${mode}_server
[[ -x $server_bin ]] || fail "no $server_bin (built by the default build)"
make_cert rsa "$WORK/srv"
# The server names no engine or provider: its OPENSSL_CONF loads one (conf/, the samples).
case $FRONTEND in
engine) server_conf=$SIMACCEL_SOURCE_DIR/conf/simaccel-engine.cnf ;;
provider) server_conf=$PROV_CONF ;;
esac

# start_example NAME OPTS: the server with SIMACCEL_OPTS=OPTS, strict=abort (a violation of the
# async contract aborts it: docs/strict.md) and its stats file $WORK/NAME.json;
# sets PID, PORT, LOG (its stdout; stderr in LOG.err).
start_example() {
    local name=$1 opts=$2 try
    LOG=$WORK/$name.log
    for ((try = 0; try < 5; try++)); do
        PORT=$(free_port)
        OPENSSL_CONF=$server_conf SIMACCEL_OPTS="$opts strict=abort stats-file=$WORK/$name.json" \
            timeout -k 5 120 "$server_bin" "$PORT" "$WORK/srv.crt" "$WORK/srv.key" >"$LOG" 2>"$LOG.err" &
        PID=$!
        track "$PID"
        if wait_for "$LOG" 'listening on' 10 "$PID"; then
            say "$name: $(basename "$server_bin") (pid $PID) on 127.0.0.1:$PORT, $opts"
            return 0
        fi
        wait "$PID" 2>/dev/null || true
    done
    cat "$LOG" "$LOG.err" >&2
    fail "$name: the server did not start"
}

# stop_example NAME: SIGTERM, a clean exit within 30 s (every paused job finished), and its
# counters line, as COUNTERS (name value ...).
stop_example() {
    kill -TERM "$PID"
    local rc=0
    wait_pid "$PID" 30 || rc=$?
    cat "$LOG" "$LOG.err" >&2
    ((rc == 0)) || fail "$1: the server exited with $rc after SIGTERM"
    check_contract_clean "$WORK/$1.json"
    COUNTERS=$(grep -E '^async_[a-z]+_server: accepted ' "$LOG" | cut -d: -f2-) ||
        fail "$1: no counters line"
}
# h2load_plain LOG ARGS...: `h2load --h1 ARGS...` without simaccel (no engine, no device
# options, no configuration), its output in LOG.
h2load_plain() {
    local log=$1
    shift
    (unset OPENSSL_ENGINES SIMACCEL_OPTS; export OPENSSL_CONF=/dev/null
        exec timeout -k 5 "$TIMEOUT" h2load --h1 "$@") >"$log" 2>&1
}
# counter NAME: one value of COUNTERS.
counter() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' <<<"$COUNTERS"; }

# 1. Busy and stalls: everything succeeds.
start_example faults "latency=fixed:200us fault-busy=5% fault-stall=2%:20ms"
reply=$(printf 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' |
    run env OPENSSL_CONF=/dev/null "$OPENSSL" s_client -connect "127.0.0.1:$PORT" -quiet 2>&1) ||
    fail "s_client failed: $reply"
grep -q '^hello from a simaccel async example server' <<<"$reply" || fail "s_client got: $reply"
say "ok: s_client got the page"
h2load_run "$WORK/close.log" "https://127.0.0.1:$PORT/" 300 16
h2load_plain "$WORK/keepalive.log" -n 200 -c 4 "https://127.0.0.1:$PORT/" ||
    { cat "$WORK/keepalive.log" >&2; fail "h2load keep-alive failed"; }
[[ $(h2load_counts "$WORK/keepalive.log") == "200 0 0" ]] ||
    { cat "$WORK/keepalive.log" >&2; fail "keep-alive: not 200 requests succeeded"; }
say "ok: 200 keep-alive requests on 4 connections"
stop_example faults
say "counters:$COUNTERS"
hs=$(counter handshakes)
((hs >= 305)) || fail "handshakes $hs < 305"
(($(counter failed) == 0)) || fail "failed handshakes with no fault-error"
(($(counter open-at-exit) == 0)) || fail "connections left open at exit"
pauses=$(counter async-pauses)
((pauses >= hs)) || fail "async-pauses $pauses < handshakes $hs: the handshakes did not pause"
"$STATS" check "$WORK/faults.json" rsa-priv "$hs" >&2 || fail "rsa-priv was not offloaded cleanly"
busy=$("$STATS" sum busy "$WORK/faults.json")
((busy > 0)) || fail "no EAGAIN with fault-busy=5%"
# Callback mode: each refusal called the callback once, and the loop saw ASYNC_STATUS_EAGAIN.
if [[ $mode == callback ]]; then
    (($(counter async-retries) == busy)) ||
        fail "the loop saw ASYNC_STATUS_EAGAIN $(counter async-retries) times, the device refused $busy"
fi
say "ok: $hs handshakes, $pauses pauses, $busy EAGAIN refusals resubmitted"

# 2. Device errors fail their own handshakes, nothing else.
start_example errors "latency=fixed:200us fault-error=3% fault-seed=7"
h2load_plain "$WORK/h2load-errors.log" -n 200 -c 8 -H 'Connection: close' \
    "https://127.0.0.1:$PORT/" || true
read -r ok failed _ <<<"$(h2load_counts "$WORK/h2load-errors.log")"
stop_example errors
device_failed=$("$STATS" sum failed "$WORK/errors.json")
say "h2load: $ok succeeded, $failed failed; device errors: $device_failed; counters:$COUNTERS"
((device_failed > 0)) || fail "no device error with fault-error=3%"
((${ok:-0} > 0)) || fail "nothing succeeded besides the device errors"
(($(counter failed) >= device_failed)) || fail "fewer failed handshakes than device errors"
(($(counter open-at-exit) == 0)) || fail "connections left open at exit"
# 3. Clients that reset their connection while its handshake is paused in the device (a long
# latency): the server resumes those jobs to their end, then closes the connections, serves the
# next client and exits clean.
start_example resets "latency=fixed:300ms"
python3 - "$PORT" <<'PY' || fail "the resetting clients failed"
import socket, ssl, struct, sys, time
ctx = ssl.create_default_context()
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
conns = []
for _ in range(10):
    t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))),
                        do_handshake_on_connect=False)
    t.setblocking(False)
    try:
        t.do_handshake()  # sends the ClientHello; the server's signature is then in the device
    except ssl.SSLWantReadError:
        pass
    conns.append(t)
time.sleep(0.1)
for t in conns:  # SO_LINGER 0: close sends a reset
    t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    t.close()
PY
reply=$(printf 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' |
    run env OPENSSL_CONF=/dev/null "$OPENSSL" s_client -connect "127.0.0.1:$PORT" -quiet 2>&1) ||
    fail "s_client after the resets failed: $reply"
grep -q '^hello from a simaccel async example server' <<<"$reply" || fail "s_client got: $reply"
stop_example resets
say "counters:$COUNTERS"
(($(counter handshakes) == 1 && $(counter failed) == 10)) ||
    fail "expected 10 failed handshakes (the resets) and 1 good one"
(($(counter async-pauses) >= 11)) || fail "the reset handshakes were not paused in the device"
(($(counter open-at-exit) == 0)) || fail "connections left open at exit"
say "ok: $mode mode through the $FRONTEND"
