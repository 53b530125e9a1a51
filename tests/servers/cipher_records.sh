#!/usr/bin/env bash
# The engine's record ciphers (AES-GCM, ChaCha20-Poly1305; contract.md §10) in real servers'
# data phase; every response byte-exact (sha256) at a client with stock OpenSSL and no engine:
#   s_server  `openssl s_server -async -WWW -engine simaccel` keeps SSL_MODE_ASYNC after the
#             handshake (its SSL_write pauses in the data phase) and serves a 4 MiB file to curl
#             (TLS 1.3 and 1.2, AES-GCM and ChaCha20-Poly1305) and to s_client.
#   nginx     `ssl_engine simaccel;` (nginx makes the engine the default for everything, the
#             ciphers included; synchronous) serves a 1 MiB file.
#   haproxy   the engine through OPENSSL_CONF with `default_algorithms = RSA,EC,CIPHERS`;
#             HAProxy turns async off after the handshake, so its records take the synchronous
#             path; it proxies a 1 MiB body from a plain HTTP backend.
#   faults    s_server with only the cipher classes on the device: busy is retried, an error
#             fails the connection cleanly (no hang, the server goes on), a stall completes late.
#   soak      1,000 connections of 64 KiB each to one s_server: its descriptors and resident
#             memory do not grow.
# The stats files show the cipher calls on the device.
source "$(dirname "$0")/lib.sh"
mode=${1:?usage: cipher_records.sh s_server|nginx|haproxy|faults|soak}
require_engine
require_python
require_program curl curl

make_cert ec "$WORK/ec"
mkdir -p "$WORK/www"
head -c $((4 << 20)) /dev/urandom >"$WORK/www/4m.bin"
head -c $((1 << 20)) /dev/urandom >"$WORK/www/1m.bin"
head -c $((64 << 10)) /dev/urandom >"$WORK/www/64k.bin"

# The clients' TLS versions and suites, as curl arguments.
TLS13_AES128=(--tlsv1.3 --tls13-ciphers TLS_AES_128_GCM_SHA256)
TLS13_CHACHA=(--tlsv1.3 --tls13-ciphers TLS_CHACHA20_POLY1305_SHA256)
TLS12_AES256=(--tlsv1.2 --tls-max 1.2 --ciphers ECDHE-ECDSA-AES256-GCM-SHA384)
TLS12_CHACHA=(--tlsv1.2 --tls-max 1.2 --ciphers ECDHE-ECDSA-CHACHA20-POLY1305)

# curl_get URL OUT [CURL ARGS...]: curl with stock OpenSSL (no engine, no configuration).
curl_get() {
    local url=$1 out=$2
    shift 2
    (unset OPENSSL_ENGINES SIMACCEL_OPTS; export OPENSSL_CONF=/dev/null
        exec timeout -k 5 "$TIMEOUT" curl -sS -k --fail -o "$out" "$@" "$url")
}

# get_exact URL FILE [CURL ARGS...]: the body at URL must be FILE, byte for byte.
get_exact() {
    local url=$1 file=$2 out=$WORK/got.bin
    shift 2
    say "+ curl $* $url"
    curl_get "$url" "$out" "$@" || fail "curl $* $url failed"
    [[ $(sha256sum <"$out") == "$(sha256sum <"$file")" ]] ||
        fail "curl $* $url: the body differs from $(basename "$file")"
    rm -f "$out"
}

case $mode in
s_server)
    cd "$WORK/www" # -WWW serves the current directory
    export SIMACCEL_OPTS="stats-file=$WORK/www.json"
    start_server www -engine simaccel -async -WWW -naccept 5 -cert "$WORK/ec.crt" -key "$WORK/ec.key"
    unset SIMACCEL_OPTS
    url=https://127.0.0.1:$SERVER_PORT/4m.bin
    get_exact "$url" 4m.bin "${TLS13_AES128[@]}"
    get_exact "$url" 4m.bin "${TLS13_CHACHA[@]}"
    get_exact "$url" 4m.bin "${TLS12_AES256[@]}"
    get_exact "$url" 4m.bin "${TLS12_CHACHA[@]}"
    say "+ openssl s_client -quiet: GET /4m.bin"
    printf 'GET /4m.bin HTTP/1.0\r\n\r\n' |
        (unset OPENSSL_ENGINES; exec timeout -k 5 "$TIMEOUT" "$OPENSSL" s_client -quiet \
            -connect "127.0.0.1:$SERVER_PORT" -servername localhost) >"$WORK/s_client.out" 2>/dev/null ||
        fail "s_client failed"
    [[ $(tail -c $((4 << 20)) "$WORK/s_client.out" | sha256sum) == "$(sha256sum <4m.bin)" ]] ||
        fail "s_client: the body differs from 4m.bin"
    wait_pid "$SERVER_PID" 30 || fail "s_server exited with an error"
    # 4 MiB are at least 256 full records per connection: three AES-GCM connections (the two
    # curl ones and s_client's TLS 1.3 default), two ChaCha20-Poly1305.
    check_offload "$WORK/www.json" aes-gcm $((3 * 256))
    check_offload "$WORK/www.json" chacha20-poly1305 $((2 * 256))
    ;;
nginx)
    require_program nginx nginx
    conf() { NGINX_LOCATION="root $WORK/www;" nginx_engine_conf "$1" 1 "" "$2:ec"; }
    SIMACCEL_OPTS="stats-file=$WORK/stats.%p.json" nginx_up conf 1
    url=https://127.0.0.1:${PORTS[0]}/1m.bin
    get_exact "$url" "$WORK/www/1m.bin" "${TLS13_AES128[@]}"
    get_exact "$url" "$WORK/www/1m.bin" "${TLS13_CHACHA[@]}"
    get_exact "$url" "$WORK/www/1m.bin" "${TLS12_AES256[@]}"
    get_exact "$url" "$WORK/www/1m.bin" "${TLS12_CHACHA[@]}"
    worker=$(children "$NGINX_PID" | head -n 1)
    stop_gracefully "$NGINX_PID" QUIT 30
    grep -E '\[(alert|crit|emerg|error)\]' "$NGINX_LOG" >&2 && fail "nginx logged errors"
    # 1 MiB is at least 64 full records per response, two responses per cipher family.
    check_offload "$WORK/stats.$worker.json" aes-gcm $((2 * 64))
    check_offload "$WORK/stats.$worker.json" chacha20-poly1305 $((2 * 64))
    ;;
haproxy)
    require_program haproxy haproxy
    make_pem "$WORK/ec"
    sed 's/^default_algorithms = RSA,EC$/default_algorithms = RSA,EC,CIPHERS/' \
        "$SIMACCEL_SOURCE_DIR/conf/simaccel-engine.cnf" >"$WORK/engine-ciphers.cnf"
    grep -q '^default_algorithms = RSA,EC,CIPHERS$' "$WORK/engine-ciphers.cnf" ||
        fail "conf/simaccel-engine.cnf has no 'default_algorithms = RSA,EC' line to extend"
    backend=$(free_port)
    (cd "$WORK/www" && exec python3 -m http.server --bind 127.0.0.1 "$backend") \
        >"$WORK/backend.log" 2>&1 &
    track $!
    wait_listen "$backend" 15 $! || fail "the HTTP backend did not start"
    port=$(free_port)
    cat >"$WORK/haproxy.cfg" <<CFG
global
    nbthread 1
    ssl-mode-async
    tune.ssl.cachesize 0
    log stderr format raw local0 notice
defaults
    mode http
    log global
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:$port ssl crt $WORK/ec.pem ssl-min-ver TLSv1.2 no-tls-tickets
    default_backend files
backend files
    server www 127.0.0.1:$backend
CFG
    haproxy_start haproxy "$WORK/haproxy.cfg" "OPENSSL_CONF=$WORK/engine-ciphers.cnf" \
        "SIMACCEL_OPTS=stats-file=$WORK/haproxy.%p.json" --
    wait_listen "$port" 15 "$HAPROXY_PID" || { cat "$HAPROXY_LOG" >&2; fail "haproxy did not start"; }
    url=https://127.0.0.1:$port/1m.bin
    get_exact "$url" "$WORK/www/1m.bin" "${TLS13_AES128[@]}"
    get_exact "$url" "$WORK/www/1m.bin" "${TLS13_CHACHA[@]}"
    get_exact "$url" "$WORK/www/1m.bin" "${TLS12_AES256[@]}"
    get_exact "$url" "$WORK/www/1m.bin" "${TLS12_CHACHA[@]}"
    stop_gracefully "$HAPROXY_PID" USR1 30
    grep -iE 'alert|error' "$HAPROXY_LOG" >&2 && fail "haproxy logged errors"
    check_offload "$WORK/haproxy.$HAPROXY_PID.json" aes-gcm $((2 * 64))
    check_offload "$WORK/haproxy.$HAPROXY_PID.json" chacha20-poly1305 $((2 * 64))
    ;;
faults)
    cd "$WORK/www"
    only="offload=aes-gcm,chacha20-poly1305 fault-seed=11"
    # Busy: every refusal is resubmitted; the response arrives whole.
    export SIMACCEL_OPTS="stats-file=$WORK/busy.json $only fault-busy=30%"
    start_server busy -engine simaccel -async -WWW -naccept 1 -cert "$WORK/ec.crt" -key "$WORK/ec.key"
    get_exact "https://127.0.0.1:$SERVER_PORT/4m.bin" 4m.bin "${TLS13_AES128[@]}"
    wait_pid "$SERVER_PID" 30 || fail "s_server exited with an error"
    retried=$(stats_value "$WORK/busy.json" aes-gcm retried)
    ((retried > 0)) || fail "no cipher request was refused and retried with fault-busy=30%"
    check_offload "$WORK/busy.json" aes-gcm 256
    say "ok: busy: $retried resubmissions, the response whole"
    # Error: the first large record fails; the connection ends (curl fails, without waiting
    # for its timeout) and the server serves the next client (which fails the same way). The
    # server's alert follows the failed record, whose sequence number the client never saw:
    # the client reports a bad record MAC, as with a card's failed record.
    export SIMACCEL_OPTS="stats-file=$WORK/error.json $only fault-error=1"
    start_server error -engine simaccel -async -WWW -naccept 2 -cert "$WORK/ec.crt" -key "$WORK/ec.key"
    for i in 1 2; do
        start=$SECONDS
        curl_get "https://127.0.0.1:$SERVER_PORT/4m.bin" "$WORK/error.out" "${TLS12_CHACHA[@]}" &&
            fail "connection $i succeeded with fault-error=1"
        ((SECONDS - start < TIMEOUT / 2)) || fail "connection $i hung before failing"
    done
    wait_pid "$SERVER_PID" 30 || fail "s_server exited with an error after the failed connections"
    failed=$(stats_value "$WORK/error.json" chacha20-poly1305 failed)
    ((failed >= 2)) || fail "expected a failed record per connection, stats say $failed"
    say "ok: error: both connections failed cleanly, $failed failed records"
    # Stall: 5% of the records complete 100 ms late; the response is whole, and late.
    export SIMACCEL_OPTS="stats-file=$WORK/stall.json $only fault-stall=5%:100ms"
    start_server stall -engine simaccel -async -WWW -naccept 1 -cert "$WORK/ec.crt" -key "$WORK/ec.key"
    t0=$(date +%s%N)
    get_exact "https://127.0.0.1:$SERVER_PORT/4m.bin" 4m.bin "${TLS13_CHACHA[@]}"
    ms=$((($(date +%s%N) - t0) / 1000000))
    wait_pid "$SERVER_PID" 30 || fail "s_server exited with an error"
    check_offload "$WORK/stall.json" chacha20-poly1305 256
    ((ms >= 200)) || fail "4 MiB with fault-stall=5%:100ms took only ${ms} ms"
    say "ok: stall: the response whole after ${ms} ms"
    unset SIMACCEL_OPTS
    ;;
soak)
    TIMEOUT=$((TIMEOUT * 4))
    cd "$WORK/www"
    warm=100 n=1000
    export SIMACCEL_OPTS="stats-file=$WORK/soak.json"
    # One connection more than measured: the server is still there to be measured.
    start_server soak -engine simaccel -async -WWW -naccept $((warm + n + 1)) \
        -cert "$WORK/ec.crt" -key "$WORK/ec.key"
    unset SIMACCEL_OPTS
    pid=$(children "$SERVER_PID" | head -n 1) # s_server under its `timeout`
    [[ -n $pid ]] || fail "no s_server process under $SERVER_PID"
    # urls N: a curl config of N fetches of 64 KiB, each on a new connection (the server closes).
    urls() {
        local i
        for ((i = 0; i < $1; i++)); do
            printf 'url = "https://127.0.0.1:%s/64k.bin"\noutput = "/dev/null"\n' "$SERVER_PORT"
        done
    }
    # One fetch on the command line, the rest from the config.
    urls $((warm - 1)) >"$WORK/warm.curl"
    urls $((n - 1)) >"$WORK/soak.curl"
    say "+ curl -K warm.curl ($warm connections)"
    curl_get "https://127.0.0.1:$SERVER_PORT/64k.bin" /dev/null -K "$WORK/warm.curl" ||
        fail "the warm-up connections failed"
    fds0=$(proc_fds "$pid") rss0=$(proc_rss_kib "$pid")
    say "+ curl -K soak.curl ($n connections)"
    curl_get "https://127.0.0.1:$SERVER_PORT/64k.bin" /dev/null -K "$WORK/soak.curl" ||
        fail "the soak connections failed"
    fds1=$(proc_fds "$pid") rss1=$(proc_rss_kib "$pid")
    say "s_server $pid: $fds0 -> $fds1 descriptors, $rss0 -> $rss1 KiB resident"
    ((fds1 <= fds0)) || fail "descriptors grew over $n connections: $fds0 -> $fds1"
    if [[ ${SIMACCEL_SANITIZE:-} == address ]]; then
        # ASan's quarantine keeps freed memory resident (256 MB by default): growth says nothing
        # here; LeakSanitizer checks the server for leaks at its exit instead.
        say "resident memory not checked under ASan (its quarantine holds freed blocks)"
    else
        ((rss1 - rss0 < 4096)) || fail "resident memory grew by $((rss1 - rss0)) KiB over $n connections"
    fi
    get_exact "https://127.0.0.1:$SERVER_PORT/64k.bin" 64k.bin "${TLS13_AES128[@]}"
    wait_pid "$SERVER_PID" 30 || fail "s_server exited with an error"
    # 64 KiB: at least 4 full records per connection.
    check_offload "$WORK/soak.json" aes-gcm $((4 * (warm + n + 1)))
    ;;
*) fail "unknown mode '$mode' (s_server, nginx, haproxy, faults, soak)" ;;
esac
say "ok: $mode"
