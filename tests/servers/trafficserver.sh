#!/usr/bin/env bash
# Apache Traffic Server with the engine loaded through OPENSSL_CONF (the default RSA and EC
# implementation) serves full TLS handshakes on an RSA-2048 and an EC P-256 certificate, from a
# private runroot under the scratch directory (lib.sh: ts_layout), origin-less (the generator
# plugin answers). The first argument is async or sync:
#   async  proxy.config.ssl.async.handshake.enabled 1: a handshake runs in an ASYNC job that
#          pauses while the device works, and the network thread serves other connections
#          meanwhile. Traffic Server's debug log shows SSL_ERROR_WANT_ASYNC at least once per
#          handshake, and with one network thread more than one request was in the device at
#          once (max_inflight >= 2), which only paused jobs allow.
#   sync   the same with async handshakes off: the private-key operations still go through the
#          device, one at a time (max_inflight == 1), and no handshake step returns
#          SSL_ERROR_WANT_ASYNC: the control for the assertions above.
# After SIGTERM the stats file shows every private-key operation offloaded and completed.
source "$(dirname "$0")/lib.sh"
mode=${1:?usage: trafficserver.sh async|sync}
case $mode in
async) async=1 ;;
sync) async=0 ;;
*) fail "unknown mode '$mode' (async or sync)" ;;
esac
require_engine
require_trafficserver

requests=${SIMACCEL_TEST_REQUESTS:-200}
net_threads=1
# Traffic Server picks a certificate by the SNI name first, from all its certificates whatever
# the port, and by the port only when no name matches: the clients send `localhost` (s_client)
# or nothing (h2load to an address), so neither certificate may carry that name.
make_cert rsa "$WORK/rsa" rsa.simaccel.test
make_cert ec "$WORK/ec" ec.simaccel.test

# 2ms per operation: with 10 clients at once, several handshakes wait on the device at a time
# whenever the thread does not block.
ts_up "$async" "$net_threads" \
    "OPENSSL_CONF=$SIMACCEL_SOURCE_DIR/conf/simaccel-engine.cnf" \
    "SIMACCEL_OPTS=stats-file=$WORK/stats.%p.json latency=fixed:2ms strict=warn"
grep -q "simaccel" "/proc/$TS_PID/maps" || fail "traffic_server $TS_PID did not load the engine"

h2load_run "$WORK/rsa.log" "https://127.0.0.1:$RSA_PORT/nocache/2" "$requests" 10
h2load_run "$WORK/ec.log" "https://127.0.0.1:$EC_PORT/nocache/2" "$requests" 10
tls12_handshakes "$RSA_PORT" "$TLS12" ECDHE-RSA-AES128-GCM-SHA256
tls12_handshakes "$EC_PORT" "$TLS12" ECDHE-ECDSA-AES128-GCM-SHA256

# SIGTERM: Traffic Server exits through exit(), which writes the stats file.
kill -TERM "$TS_PID" 2>/dev/null || fail "traffic_server $TS_PID is gone before its stop"
wait_pid "$TS_PID" 30 || fail "traffic_server exited with an error after SIGTERM"
diags=$WORK/ts/log/diags.log
if grep -E '(ERROR|FATAL|ALERT|EMERGENCY):' "$diags" "$TS_LOG" >&2; then
    fail "traffic_server logged errors"
fi

stats=$WORK/stats.$TS_PID.json
[[ -s $stats ]] || { ls "$WORK" >&2; cat "$TS_LOG" "$diags" >&2; fail "no stats file $stats"; }
cat "$stats" >&2
# One signature per handshake (a failed or resumed handshake would make fewer).
check_offload "$stats" rsa-priv "$((requests + TLS12))"
check_offload "$stats" ecdsa-sign "$((requests + TLS12))"
check_contract_clean "$stats"
handshakes=$((2 * (requests + TLS12)))
max=$("$STATS" top "$stats" max_inflight) || fail "stats: no max_inflight in $stats"
pauses=$(ts_async_pauses "$TS_LOG")
if ((async)); then
    ((pauses >= handshakes)) ||
        fail "async handshakes: $pauses SSL_ERROR_WANT_ASYNC for $handshakes handshakes"
    ((max >= 2)) || fail "async handshakes: at most $max request in the device at once with \
$net_threads network thread: the jobs did not pause"
else
    ((pauses == 0)) || fail "sync handshakes: $pauses SSL_ERROR_WANT_ASYNC, expected none"
    ((max == 1)) || fail "sync handshakes: $max requests in the device at once with \
$net_threads network thread, expected 1"
fi
say "ok: $mode, $handshakes handshakes offloaded, $pauses SSL_ERROR_WANT_ASYNC, max_inflight $max"
