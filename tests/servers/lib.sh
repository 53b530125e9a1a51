# Helpers for the real-server tests (HAProxy, nginx): built on tests/cli/lib.sh (scratch
# directory, cleanup of every started process, free ports, certificates, stats reads).
# A test exits 0 (pass), 1 (fail) or 77 (skip, with the reason on stderr).

source "$(dirname "${BASH_SOURCE[0]}")/../cli/lib.sh"

# The servers run longer than one CLI command: their own bound, in seconds.
SERVER_TIMEOUT=${SIMACCEL_SERVER_TIMEOUT:-90}

require_program() { # require_program NAME PACKAGE
    command -v "$1" >/dev/null || skip "$1 is not installed (package $2; scripts/install-deps.sh installs it)"
}

# server_pem NAME: NAME.pem = certificate + key, the form HAProxy's `crt` wants.
server_pem() {
    cat "$WORK/$1.crt" "$WORK/$1.key" >"$WORK/$1.pem"
}

# ports_free PORT...: succeeds when nothing listens on any of the ports.
ports_free() {
    local p
    for p in "$@"; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            return 1
        fi
    done
}

# wait_listen PORT SECONDS PID: waits until 127.0.0.1:PORT accepts connections; fails early if
# PID dies.
wait_listen() {
    local port=$1 secs=$2 pid=$3 i
    for ((i = 0; i < secs * 10; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# children PID: the pids of PID's direct children, one per line (none: empty output).
children() {
    local f
    # /proc/PID/task/*/children lists the children of each thread (Linux >= 3.5).
    for f in /proc/"$1"/task/*/children; do
        [[ -r $f ]] && tr ' ' '\n' <"$f"
    done | grep -E '^[0-9]+$' || true
}

# h2load_run LOG URL N C [EXTRA ARGS...]: N HTTPS/1.1 requests over C concurrent clients, every
# request on a new connection (Connection: close: h2load reconnects), so N full handshakes.
# Fails unless every request succeeded with a 2xx.
h2load_run() {
    local log=$1 url=$2 n=$3 c=$4
    shift 4
    say "+ h2load --h1 -n $n -c $c $* $url"
    # The client runs without the engine and without the server's configuration.
    if ! (unset OPENSSL_ENGINES SIMACCEL_OPTS; export OPENSSL_CONF=/dev/null
        exec timeout -k 5 "$TIMEOUT" h2load --h1 -n "$n" -c "$c" -H 'Connection: close' "$@" "$url") \
        >"$log" 2>&1; then
        cat "$log" >&2
        fail "h2load failed on $url"
    fi
    local done_ok
    done_ok=$(sed -nE 's/^requests: .* ([0-9]+) succeeded, ([0-9]+) failed, ([0-9]+) errored.*/\1 \2 \3/p' "$log")
    local -a r=($done_ok)
    if ((${#r[@]} != 3 || r[0] != n || r[1] != 0 || r[2] != 0)); then
        cat "$log" >&2
        fail "h2load on $url: expected $n succeeded requests, got '${done_ok:-no summary}'"
    fi
    grep -Eq "^status codes: $n 2xx" "$log" || { cat "$log" >&2; fail "h2load on $url: not all 2xx"; }
    say "ok: $n requests, $n new TLS connections on $url"
}

# check_offload FILE CLASS MIN: the stats file shows CLASS offloaded asynchronously and cleanly:
# submitted == completed >= MIN, nothing failed or fell back to software, every busy refusal
# was retried.
check_offload() {
    local file=$1 cls=$2 min=$3 sub comp failed busy retried fallback
    sub=$(stats_value "$file" "$cls" submitted) || fail "stats $file: no $cls"
    comp=$(stats_value "$file" "$cls" completed)
    failed=$(stats_value "$file" "$cls" failed)
    busy=$(stats_value "$file" "$cls" busy)
    retried=$(stats_value "$file" "$cls" retried)
    fallback=$(stats_value "$file" "$cls" fallback)
    say "$(basename "$file") $cls: submitted $sub completed $comp failed $failed busy $busy retried $retried fallback $fallback"
    ((sub == comp)) || fail "$file: $cls submitted $sub != completed $comp"
    ((comp >= min)) || fail "$file: $cls completed $comp < $min"
    ((failed == 0)) || fail "$file: $cls failed $failed"
    ((fallback == 0)) || fail "$file: $cls fell back to software $fallback times"
    ((retried <= busy)) || fail "$file: $cls retried $retried > busy $busy"
}

# stats_sum CLASS FIELD FILE...: the sum of one counter over several stats files (a class that
# a process never used counts 0).
stats_sum() {
    python3 - "$@" <<'PY'
import json, sys
cls, field, *paths = sys.argv[1:]
total = 0
for p in paths:
    with open(p) as f:
        total += json.load(f).get("ops", {}).get(cls, {}).get(field, 0)
print(total)
PY
}

# HAProxy ---------------------------------------------------------------------------------------

# haproxy_config FILE NBTHREAD ASYNC(0|1) PORT:PEM...: a frontend per PORT:PEM that answers
# every request itself (no backend), one TLS certificate per port so the test chooses RSA or EC.
haproxy_config() {
    local file=$1 nbthread=$2 async=$3
    shift 3
    {
        echo "global"
        echo "    nbthread $nbthread"
        echo "    maxconn 2048"
        ((async)) && echo "    ssl-mode-async"
        # No session resumption: h2load resumes the session when it reconnects, which would
        # skip the private-key operation this test counts.
        echo "    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets"
        echo "    tune.ssl.cachesize 0"
        echo "    pidfile $WORK/haproxy.pid"
        echo "    log stderr format raw local0 notice"
        echo "defaults"
        echo "    mode http"
        echo "    log global"
        echo "    timeout connect 5s"
        echo "    timeout client 30s"
        echo "    timeout server 30s"
        local spec i=0
        for spec in "$@"; do
            echo "frontend fe$i"
            echo "    bind 127.0.0.1:${spec%%:*} ssl crt ${spec#*:}"
            echo "    http-request return status 200 content-type text/plain string ok"
            i=$((i + 1))
        done
    } >"$file"
}

# haproxy_start NAME CONF ENV... -- ARGS...: starts haproxy in the foreground (-db) with the
# given environment; sets HAPROXY_PID (haproxy itself, not a wrapper, so that it gets the
# signals) and HAPROXY_LOG. The caller checks the listening ports.
haproxy_start() {
    local name=$1 conf=$2
    shift 2
    local -a envs=()
    while [[ $1 != -- ]]; do envs+=("$1"); shift; done
    shift
    HAPROXY_LOG=$WORK/$name.log
    say "+ ${envs[*]} haproxy -db -f $conf $*"
    env "${envs[@]}" haproxy -db -f "$conf" "$@" >"$HAPROXY_LOG" 2>&1 &
    HAPROXY_PID=$!
    PIDS+=("$HAPROXY_PID")
}

# stop_gracefully PID SIGNAL SECONDS: sends SIGNAL (HAProxy: USR1, nginx: QUIT, both a graceful
# stop in which workers exit normally and so write their stats files) and waits for PID.
stop_gracefully() {
    local pid=$1 sig=$2 secs=$3
    kill -"$sig" "$pid" 2>/dev/null || fail "process $pid is gone before its stop"
    wait_pid "$pid" "$secs" || fail "process $pid exited with an error after SIG$sig"
}

# haproxy_up NAME NBTHREAD ASYNC ENV... -- ARGS...: writes a configuration with an RSA frontend
# on RSA_PORT (rsa.pem) and an EC one on EC_PORT (ec.pem), starts haproxy and waits until both
# ports listen; retries with other ports when one was taken meanwhile.
haproxy_up() {
    local name=$1 nbthread=$2 async=$3 try
    shift 3
    for ((try = 0; try < 5; try++)); do
        RSA_PORT=$(free_port)
        EC_PORT=$(free_port)
        ((RSA_PORT != EC_PORT)) || continue
        haproxy_config "$WORK/$name.cfg" "$nbthread" "$async" \
            "$RSA_PORT:$WORK/rsa.pem" "$EC_PORT:$WORK/ec.pem"
        haproxy_start "$name" "$WORK/$name.cfg" "$@"
        if wait_listen "$RSA_PORT" 15 "$HAPROXY_PID" && wait_listen "$EC_PORT" 15 "$HAPROXY_PID"; then
            say "haproxy $name (pid $HAPROXY_PID) on 127.0.0.1:$RSA_PORT (RSA) and :$EC_PORT (EC)"
            return 0
        fi
        kill "$HAPROXY_PID" 2>/dev/null || true
        wait "$HAPROXY_PID" 2>/dev/null || true
        if ! grep -qiE 'cannot bind|address already in use' "$HAPROXY_LOG"; then
            cat "$HAPROXY_LOG" >&2
            fail "haproxy $name did not start"
        fi
        say "a port was taken, retrying"
    done
    fail "haproxy $name: no ports could be bound"
}

# tls12_handshakes PORT N CIPHER: N separate `openssl s_client -tls1_2` handshakes (no session
# reuse: each is a new process), each must succeed with CIPHER.
tls12_handshakes() {
    local port=$1 n=$2 cipher=$3 i log=$WORK/s_client.$1.log
    say "+ $n x openssl s_client -tls1_2 -cipher $cipher -connect 127.0.0.1:$port"
    for ((i = 0; i < n; i++)); do
        if ! (unset OPENSSL_ENGINES SIMACCEL_OPTS; export OPENSSL_CONF=/dev/null
            exec timeout -k 5 "$TIMEOUT" "$OPENSSL" s_client -tls1_2 -cipher "$cipher" \
                -connect "127.0.0.1:$port" -servername localhost </dev/null) >"$log" 2>&1 ||
            ! grep -q "Cipher is $cipher" "$log"; then
            cat "$log" >&2
            fail "TLS 1.2 handshake $i on port $port failed"
        fi
    done
}

# nginx_engine_conf FILE WORKERS EXTRA_MAIN PORT:CERT...: an nginx configuration with
# `ssl_engine simaccel;`, WORKERS worker processes, EXTRA_MAIN added to the main context, and
# one TLS server per PORT:CERT ($WORK/CERT.crt and .key). Everything lives under $WORK/nginx;
# nothing of the system configuration is read. No session cache, no tickets: every connection
# is a full handshake.
nginx_engine_conf() {
    local file=$1 workers=$2 extra=$3 user="" spec
    shift 3
    ((EUID == 0)) && user="user root;"
    {
        cat <<CONF
$user
master_process on;
daemon off;
worker_processes $workers;
$extra
pid $WORK/nginx/nginx.pid;
error_log stderr notice;
ssl_engine simaccel;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/client_body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
CONF
        for spec in "$@"; do
            cat <<CONF
    server {
        listen 127.0.0.1:${spec%%:*} ssl;
        ssl_certificate $WORK/${spec#*:}.crt;
        ssl_certificate_key $WORK/${spec#*:}.key;
        location / { return 200 "ok\n"; }
    }
CONF
        done
        echo "}"
    } >"$file"
}
