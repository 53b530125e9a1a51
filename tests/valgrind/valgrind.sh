#!/usr/bin/env bash
# Under valgrind (memcheck), the device neither hangs nor trips an error: one engine RSA
# signature, one provider ECDSA signature and three `s_server -async -engine` TLS handshakes run
# under `valgrind --error-exitcode=1`, each result judged by stock OpenSSL. valgrind does not
# release its scheduler lock around io_uring_enter, so the device must notice it and use the
# plain completion engine (a wait there stops every other thread: the program never returns).
# Leaks are not errors here: the openssl apps leak at exit by themselves. No suppressions:
# memcheck reports nothing in OpenSSL 3.0 or libc on these paths.
SIMACCEL_TEST_TIMEOUT=${SIMACCEL_TEST_TIMEOUT:-90}
source "$SIMACCEL_SOURCE_DIR/tests/cli/lib.sh"
source "$SIMACCEL_SOURCE_DIR/tests/cli/frontend_lib.sh"

[[ -z ${SIMACCEL_SANITIZE:-} ]] ||
    skip "sanitizer build (SIMACCEL_SANITIZE=$SIMACCEL_SANITIZE): valgrind cannot run sanitized code"
command -v valgrind >/dev/null || skip "valgrind is not installed (apt-get install valgrind)"
require_engine
require_provider
require_python

# `openssl` under valgrind; stock `openssl` ($REAL_OPENSSL) is the client and the judge.
# timeout's TERM does not reach a valgrind whose threads are stuck: -k sends KILL after it.
REAL_OPENSSL=$OPENSSL
VG_LOGS=$WORK/vg
mkdir "$VG_LOGS"
cat >"$WORK/vg-openssl" <<WRAP
#!/bin/sh
exec valgrind -q --error-exitcode=1 --log-file="$VG_LOGS/%p.log" "$REAL_OPENSSL" "\$@"
WRAP
chmod +x "$WORK/vg-openssl"
OPENSSL=$WORK/vg-openssl
export SIMACCEL_OPTS

dump_vg() {
    local f
    for f in "$VG_LOGS"/*.log; do
        [[ -s $f ]] || continue
        say "--- valgrind log $f"
        cat "$f" >&2
    done
}
# Every valgrind log of a passing run is empty (-q: nothing but errors).
expect_clean() {
    local f
    for f in "$VG_LOGS"/*.log; do
        [[ -s $f ]] && { dump_vg; fail "valgrind reported errors ($1)"; }
    done
    return 0
}

head -c 32 /dev/urandom >"$WORK/in.bin"
plain genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/rsa.key" ||
    fail "genpkey rsa"
plain genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/ec.key" ||
    fail "genpkey ec"

# 1. The engine: an RSA signature. log=info: the device says why it did not take io_uring.
SIMACCEL_OPTS="log=info stats-file=$WORK/engine.json" run "$OPENSSL" pkeyutl -engine simaccel \
    -sign -inkey "$WORK/rsa.key" -in "$WORK/in.bin" -out "$WORK/rsa.sig" 2>"$WORK/engine.err" ||
    { cat "$WORK/engine.err" >&2; dump_vg; fail "engine pkeyutl -sign under valgrind"; }
grep -q 'running under valgrind: completion engine uses plain' "$WORK/engine.err" ||
    { cat "$WORK/engine.err" >&2; fail "the device did not log its valgrind fallback"; }
plain pkeyutl -verify -inkey "$WORK/rsa.key" -in "$WORK/in.bin" -sigfile "$WORK/rsa.sig" ||
    fail "stock OpenSSL rejects the engine's signature"
expect_completed "$WORK/engine.json" rsa-priv
expect_clean "engine pkeyutl"

# 2. The provider: an ECDSA P-256 signature.
SIMACCEL_OPTS="stats-file=$WORK/provider.json" run env OPENSSL_CONF="$PROV_CONF" "$OPENSSL" \
    pkeyutl -sign -inkey "$WORK/ec.key" -in "$WORK/in.bin" -out "$WORK/ec.sig" ||
    { dump_vg; fail "provider pkeyutl -sign under valgrind"; }
plain pkeyutl -verify -inkey "$WORK/ec.key" -in "$WORK/in.bin" -sigfile "$WORK/ec.sig" ||
    fail "stock OpenSSL rejects the provider's signature"
expect_completed "$WORK/provider.json" ecdsa-sign
expect_clean "provider pkeyutl"

# 3. Async TLS: s_server -async -engine under valgrind, three handshakes by stock s_client; the
# server exits by itself after the third (-naccept 3) and writes its stats.
make_cert rsa "$WORK/server"
SIMACCEL_OPTS="stats-file=$WORK/tls.json" start_server tls -async -engine simaccel -naccept 3 \
    -cert "$WORK/server.crt" -key "$WORK/server.key"
for i in 1 2 3; do
    # stdin at EOF: the client completes the handshake, then closes.
    (unset SIMACCEL_OPTS OPENSSL_ENGINES; exec timeout -k 5 "$TIMEOUT" "$REAL_OPENSSL" s_client \
        -connect "127.0.0.1:$SERVER_PORT" -servername localhost -CAfile "$WORK/server.crt" \
        {SERVER_IN}>&- </dev/null >"$WORK/client$i.log" 2>&1) ||
        { cat "$WORK/client$i.log" "$SERVER_LOG" >&2; dump_vg; fail "handshake $i failed"; }
    grep -q 'Verify return code: 0 (ok)' "$WORK/client$i.log" ||
        { cat "$WORK/client$i.log" >&2; fail "handshake $i: certificate not verified"; }
done
wait_pid "$SERVER_PID" 60 || { cat "$SERVER_LOG" >&2; dump_vg; fail "s_server under valgrind exited with an error"; }
exec {SERVER_IN}>&-
expect_completed "$WORK/tls.json" rsa-priv 3
expect_clean "s_server -async"
say "ok: engine, provider and 3 async handshakes under valgrind, no hang, no error"
