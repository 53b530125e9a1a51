#!/usr/bin/env bash
# `openssl s_server -async -engine simaccel` completes a TLS handshake with a plain s_client on
# 127.0.0.1 for an RSA or an EC certificate (argument: rsa|ec), data flows both ways, and the
# device's stats show the server's private-key operations.
source "$(dirname "$0")/lib.sh"
require_engine
require_python

kind=${1:?usage: engine_tls.sh rsa|ec}
case $kind in
rsa) cls=rsa-priv ;;
ec) cls=ecdsa-sign ;;
*) fail "unknown certificate kind '$kind'" ;;
esac
make_cert "$kind" server

# -naccept 1: the server exits by itself after the client leaves, so the device's stats are
# written at exit (a killed server writes none).
SIMACCEL_OPTS="stats-file=$WORK/stats.json" \
    start_server tls -async -engine simaccel -naccept 1 \
    -cert "$WORK/server.crt" -key "$WORK/server.key"

# The client's stdin is a FIFO whose only writer is this script: closing it is the client's EOF.
CLIENT_LOG=$WORK/client.log
mkfifo "$WORK/client.in"
(unset OPENSSL_ENGINES; exec timeout -k 5 "$TIMEOUT" "$OPENSSL" s_client \
    -connect "127.0.0.1:$SERVER_PORT" -servername localhost -CAfile "$WORK/server.crt" \
    {SERVER_IN}>&- <"$WORK/client.in" >"$CLIENT_LOG" 2>&1) &
CLIENT_PID=$!
PIDS+=("$CLIENT_PID")
exec {CLIENT_IN}>"$WORK/client.in"

dump_logs() {
    say "--- server log"; cat "$SERVER_LOG" >&2 || true
    say "--- client log"; cat "$CLIENT_LOG" >&2 || true
}
wait_for "$CLIENT_LOG" 'Cipher is ' 20 "$CLIENT_PID" || { dump_logs; fail "no handshake"; }
grep -q 'Verify return code: 0 (ok)' "$CLIENT_LOG" || { dump_logs; fail "certificate not verified"; }

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

[[ -s $WORK/stats.json ]] || { dump_logs; fail "no stats file written at server exit"; }
cat "$WORK/stats.json" >&2
n=$(stats_value "$WORK/stats.json" "$cls" completed) || fail "stats: $cls"
((n > 0)) || fail "the device computed no $cls operation (completed = $n)"
say "ok: $(grep -m1 'Cipher is ' "$CLIENT_LOG"), $cls completed: $n"
