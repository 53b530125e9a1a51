#!/usr/bin/env bash
# `openssl s_server -async` through the front end given as first argument completes a TLS
# handshake with a stock s_client on 127.0.0.1, data flows both ways, and the device's stats show
# the server's private-key operations. The second argument is the certificate's key:
#   engine    rsa|ec (`-engine simaccel`)
#   provider  ed25519|ec [GROUP] (conf/simaccel-provider.cnf), TLS 1.3 with GROUP, whose key
#             share generation and derive the device computes too:
#   X25519 (default)    x25519-keygen and x25519 in the server's stats file
#   ffdhe2048           dh-keygen and dh
#   default-groups      both sides keep their default lists: OpenSSL >= 3.5 negotiates the hybrid
#                       X25519MLKEM768, whose X25519 half the device computes and whose ML-KEM half
#                       runs in software (docs/provider.md); older OpenSSL negotiates X25519
#   SecP256r1MLKEM768   that hybrid on both sides (OpenSSL >= 3.5): its P-256 half is `ecdh`
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/frontend_lib.sh"
usage="usage: tls.sh engine rsa|ec, or tls.sh provider ed25519|ec"
usage+=" [X25519|ffdhe2048|default-groups|SecP256r1MLKEM768]"
use_frontend "${1:?$usage}"
kind=${2:?$usage}
groups=${3:-}
require_python

case $FRONTEND:$kind in
engine:rsa) cls=rsa-priv ;;
*:ec) cls=ecdsa-sign ;;
provider:ed25519) cls=ed25519 ;;
*) fail "$usage" ;;
esac
read -r major minor < <("$OPENSSL" version -v | sed -En 's/^OpenSSL ([0-9]+)\.([0-9]+).*/\1 \2/p')
[[ -n $major ]] || fail "cannot read the version of $OPENSSL"
hybrids=no
((major > 3 || (major == 3 && minor >= 5))) && hybrids=yes
# The provider's key exchange is offloaded as well (kx_classes: its op classes on the device).
tls=()
group=${groups:-X25519}
temp_key="$group\\b"
case $FRONTEND:$group in
engine:X25519) ;;
provider:X25519) tls=(-tls1_3 -groups X25519) kx_classes=(x25519-keygen x25519) ;;
provider:ffdhe2048)
    tls=(-tls1_3 -groups ffdhe2048) kx_classes=(dh-keygen dh) temp_key='(DH, 2048 bits|ffdhe2048)'
    ;;
provider:default-groups)
    # The group the default lists agree on: the hybrid from OpenSSL 3.5 on.
    tls=(-tls1_3) kx_classes=(x25519) group=X25519
    [[ $hybrids == yes ]] && group=X25519MLKEM768
    temp_key="$group\\b"
    ;;
provider:SecP256r1MLKEM768)
    [[ $hybrids == yes ]] || skip "$group needs OpenSSL >= 3.5; $("$OPENSSL" version -v)"
    tls=(-tls1_3 -groups "$group") kx_classes=(ecdh)
    ;;
*) fail "$usage" ;;
esac
make_cert "$kind" "$WORK/server"

# -naccept 1: the server exits by itself after the client leaves, so the device's stats are
# written at exit (a killed server writes none).
OPENSSL_CONF=$FE_CONF SIMACCEL_OPTS="stats-file=$WORK/stats.json strict=warn" \
    start_server tls -async "${FE_ARGS[@]}" -naccept 1 "${tls[@]}" \
    -cert "$WORK/server.crt" -key "$WORK/server.key"

# The client is stock OpenSSL; its stdin is a FIFO whose only writer is this script: closing it
# is the client's EOF.
CLIENT_LOG=$WORK/client.log
mkfifo "$WORK/client.in"
(unset OPENSSL_ENGINES OPENSSL_MODULES SIMACCEL_OPTS; exec timeout -k 5 "$TIMEOUT" "$OPENSSL" \
    s_client -connect "127.0.0.1:$SERVER_PORT" -servername localhost -CAfile "$WORK/server.crt" \
    "${tls[@]}" {SERVER_IN}>&- <"$WORK/client.in" >"$CLIENT_LOG" 2>&1) &
CLIENT_PID=$!
track "$CLIENT_PID"
exec {CLIENT_IN}>"$WORK/client.in"

dump_logs() {
    say "--- server log"; cat "$SERVER_LOG" >&2 || true
    say "--- client log"; cat "$CLIENT_LOG" >&2 || true
}
wait_for "$CLIENT_LOG" 'Cipher is ' 20 "$CLIENT_PID" || { dump_logs; fail "no handshake"; }
grep -q 'Verify return code: 0 (ok)' "$CLIENT_LOG" || { dump_logs; fail "certificate not verified"; }
if [[ $FRONTEND == provider ]]; then
    grep -Eq 'TLSv1\.3' "$CLIENT_LOG" || { dump_logs; fail "not TLS 1.3"; }
    # 3.0 prints "Server Temp Key", 3.5 "Peer Temp Key" (and "Negotiated TLS1.3 group").
    grep -Eq "(Server|Peer) Temp Key: $temp_key|Negotiated TLS1.3 group: $group\$" "$CLIENT_LOG" ||
        { dump_logs; fail "$group was not the key exchange"; }
fi

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
if [[ $FRONTEND == provider ]]; then
    for c in "${kx_classes[@]}"; do
        expect_completed "$WORK/stats.json" "$c"
    done
fi
# strict=warn: s_server keeps the contract but for one rule: it repeats SSL_accept while
# SSL_waiting_for_async, and its read loop skips select() while a job is paused (contract.md §5):
# a busy loop, which strict rightly reports as spinning when a request takes long enough.
check_contract_clean --allow spinning "$WORK/stats.json"
say "ok: $FRONTEND, $(grep -m1 'Cipher is ' "$CLIENT_LOG"), group $group"
