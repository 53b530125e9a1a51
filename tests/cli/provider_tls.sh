#!/usr/bin/env bash
# `openssl s_server -async` with conf/simaccel-provider.cnf completes a TLS 1.3 handshake with a
# stock s_client on 127.0.0.1 (X25519, an Ed25519 or ECDSA P-256 certificate: argument
# ed25519|ec), data flows both ways, and the stats show the server's signature and X25519 on
# the device.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/provider_lib.sh"
require_provider
require_python

kind=${1:?usage: provider_tls.sh ed25519|ec}
case $kind in
ed25519) cls=ed25519 ;;
ec) cls=ecdsa-sign ;;
*) fail "unknown certificate kind '$kind'" ;;
esac
gen_key "$kind" "$WORK/server.key" plain
plain req -new -x509 -key "$WORK/server.key" -out "$WORK/server.crt" -days 2 \
    -subj "/CN=localhost" || fail "req -x509"

# -naccept 1: the server exits by itself after the client leaves, so the stats are written at
# exit (a killed server writes none).
OPENSSL_CONF=$PROV_CONF SIMACCEL_OPTS="stats-file=$WORK/stats.json" \
    start_server tls -async -naccept 1 -tls1_3 -groups X25519 \
    -cert "$WORK/server.crt" -key "$WORK/server.key"

# The client is stock OpenSSL; its stdin is a FIFO whose only writer is this script.
CLIENT_LOG=$WORK/client.log
mkfifo "$WORK/client.in"
(unset SIMACCEL_OPTS OPENSSL_MODULES; exec timeout -k 5 "$TIMEOUT" "$OPENSSL" s_client \
    -connect "127.0.0.1:$SERVER_PORT" -servername localhost -CAfile "$WORK/server.crt" \
    -tls1_3 -groups X25519 {SERVER_IN}>&- <"$WORK/client.in" >"$CLIENT_LOG" 2>&1) &
CLIENT_PID=$!
PIDS+=("$CLIENT_PID")
exec {CLIENT_IN}>"$WORK/client.in"

dump_logs() {
    say "--- server log"; cat "$SERVER_LOG" >&2 || true
    say "--- client log"; cat "$CLIENT_LOG" >&2 || true
}
wait_for "$CLIENT_LOG" 'Cipher is ' 20 "$CLIENT_PID" || { dump_logs; fail "no handshake"; }
grep -q 'Verify return code: 0 (ok)' "$CLIENT_LOG" || { dump_logs; fail "certificate not verified"; }
grep -Eq 'TLSv1\.3' "$CLIENT_LOG" || { dump_logs; fail "not TLS 1.3"; }
# 3.0 prints "Server Temp Key", 3.5 "Peer Temp Key" (and "Negotiated TLS1.3 group").
grep -Eq '(Server|Peer) Temp Key: X25519|Negotiated TLS1.3 group: X25519' "$CLIENT_LOG" ||
    { dump_logs; fail "X25519 was not the key exchange"; }

ping="ping-from-client-$RANDOM$RANDOM"
pong="pong-from-server-$RANDOM$RANDOM"
echo "$ping" >&"$CLIENT_IN"
wait_for "$SERVER_LOG" "^$ping\$" 10 "$SERVER_PID" || { dump_logs; fail "server did not receive the client's line"; }
echo "$pong" >&"$SERVER_IN"
wait_for "$CLIENT_LOG" "^$pong\$" 10 "$CLIENT_PID" || { dump_logs; fail "client did not receive the server's line"; }

# EOF on the client's stdin: it sends close_notify and exits; the server (-naccept 1) follows.
exec {CLIENT_IN}>&-
wait_pid "$CLIENT_PID" 20 || { dump_logs; fail "s_client exited with an error"; }
wait_pid "$SERVER_PID" 20 || { dump_logs; fail "s_server exited with an error"; }
exec {SERVER_IN}>&-
grep -Eq '^[0-9A-F]+:error:' "$SERVER_LOG" && { dump_logs; fail "s_server logged errors"; }

cat "$WORK/stats.json" >&2 || true
expect_completed "$WORK/stats.json" "$cls"
expect_completed "$WORK/stats.json" x25519
say "ok: $(grep -m1 'Cipher is ' "$CLIENT_LOG")"
