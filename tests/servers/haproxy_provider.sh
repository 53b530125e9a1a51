#!/usr/bin/env bash
# HAProxy with `ssl-mode-async` and the simaccel provider (OPENSSL_CONF loads the default and
# simaccel providers with default_properties = ?provider=simaccel) serves full TLS handshakes on
# an RSA-2048 and an EC P-256 certificate; the device's stats file shows the private-key
# operations offloaded and completed.
source "$(dirname "$0")/lib.sh"
require_python
[[ -f $OPENSSL_MODULES/simaccel.so ]] ||
    skip "the provider is not built (no $OPENSSL_MODULES/simaccel.so)"
require_program haproxy haproxy
require_program h2load nghttp2-client

requests=${SIMACCEL_TEST_REQUESTS:-200}
make_cert rsa rsa && server_pem rsa
make_cert ec ec && server_pem ec

haproxy_up provider 2 1 \
    "OPENSSL_CONF=$SIMACCEL_SOURCE_DIR/conf/simaccel-provider.cnf" \
    "SIMACCEL_OPTS=stats-file=$WORK/stats.%p.json latency=fixed:100us" --

h2load_run "$WORK/rsa.log" "https://127.0.0.1:$RSA_PORT/" "$requests" 10
h2load_run "$WORK/ec.log" "https://127.0.0.1:$EC_PORT/" "$requests" 10
tls12=20
tls12_handshakes "$RSA_PORT" "$tls12" ECDHE-RSA-AES128-GCM-SHA256
tls12_handshakes "$EC_PORT" "$tls12" ECDHE-ECDSA-AES128-GCM-SHA256

stop_gracefully "$HAPROXY_PID" USR1 30
grep -iE 'alert|error' "$HAPROXY_LOG" >&2 && fail "haproxy logged errors"

stats=$WORK/stats.$HAPROXY_PID.json
[[ -s $stats ]] || { ls "$WORK" >&2; cat "$HAPROXY_LOG" >&2; fail "no stats file $stats"; }
cat "$stats" >&2
check_offload "$stats" rsa-priv "$((requests + tls12))"
check_offload "$stats" ecdsa-sign "$((requests + tls12))"
say "ok: provider, $((2 * (requests + tls12))) handshakes offloaded"
