#!/usr/bin/env bash
# HAProxy with `ssl-mode-async` and simaccel, through the front end given as first argument
# (engine: the engine loaded through OPENSSL_CONF, as Debian's HAProxy has no `ssl-engine`;
# provider: OPENSSL_CONF loads the default and simaccel providers with default_properties =
# ?provider=simaccel), nbthread the second, serves full TLS handshakes on an RSA-2048 and an EC
# P-256 certificate; after a graceful stop the device's stats show every private-key operation
# offloaded and completed, strict=warn found no violation of the async contract, and (provider) every handshake's key share generated on the device.
source "$(dirname "$0")/lib.sh"
frontend=${1:?usage: haproxy_async.sh engine|provider NBTHREAD}
nbthread=${2:?usage: haproxy_async.sh engine|provider NBTHREAD}
case $frontend in
engine) require_engine ;;
provider)
    [[ -f $OPENSSL_MODULES/simaccel.so ]] ||
        skip "the provider is not built (no $OPENSSL_MODULES/simaccel.so)" ;;
*) fail "unknown front end '$frontend' (engine or provider)" ;;
esac
require_server haproxy

requests=${SIMACCEL_TEST_REQUESTS:-200}
server_certs

haproxy_up "$frontend" "$nbthread" 1 \
    "OPENSSL_CONF=$SIMACCEL_SOURCE_DIR/conf/simaccel-$frontend.cnf" \
    "SIMACCEL_OPTS=stats-file=$WORK/stats.%p.json latency=fixed:100us strict=warn" --

handshake_load "$RSA_PORT" "$EC_PORT" "$requests"

stop_gracefully "$HAPROXY_PID" USR1 30
grep -iE 'alert|error' "$HAPROXY_LOG" >&2 && fail "haproxy logged errors"

stats=$WORK/stats.$HAPROXY_PID.json
[[ -s $stats ]] || { ls "$WORK" >&2; cat "$HAPROXY_LOG" >&2; fail "no stats file $stats"; }
cat "$stats" >&2
# One signature per handshake (a failed or resumed handshake would make fewer).
check_offload "$stats" rsa-priv "$((requests + TLS12))"
check_offload "$stats" ecdsa-sign "$((requests + TLS12))"
check_contract_clean "$stats"
if [[ $frontend == provider ]]; then
    # The key share of every handshake was generated on the device too (X25519 from the
    # clients' default groups; P-256 if a client prefers it).
    kg=0
    for c in x25519-keygen ec-keygen; do
        kg=$((kg + $("$STATS" sum submitted "$stats" --class "$c")))
    done
    ((kg >= 2 * (requests + TLS12))) ||
        fail "key shares generated on the device: $kg, expected $((2 * (requests + TLS12)))"
    say "key shares generated on the device: $kg"
fi
say "ok: $frontend, nbthread $nbthread, $((2 * (requests + TLS12))) handshakes offloaded"
