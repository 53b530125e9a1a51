# shellcheck shell=bash
# Helpers for the real-server tests (HAProxy, nginx, Traffic Server), sourced by tests/servers
# and tests/fork: built on tests/cli/lib.sh and scripts/lib/common.sh (scratch directory,
# cleanup of every started process, free ports, certificates, HAProxy configuration, stats
# reads).
# A test exits 0 (pass), 1 (fail) or 77 (skip, with the reason on stderr).

source "$(dirname "${BASH_SOURCE[0]}")/../cli/lib.sh"

# The servers' worker threads synchronise with their own uninstrumented atomics and locks, which
# TSan cannot see: it would report races in our callbacks that the server orders, and with the
# runtime preloaded the servers run too slowly for the budget. Our side of the same paths runs
# under TSan in the TLS, stress and fork GoogleTest suites.
[[ ${SIMACCEL_SANITIZE:-} == thread ]] &&
    skip "real servers do not run under TSan (their own synchronisation is not instrumented)"

require_program() { # require_program NAME PACKAGE
    command -v "$1" >/dev/null || skip "$1 is not installed (package $2; scripts/install-deps.sh installs it)"
}
# require_server haproxy|nginx: the server, the h2load client and python3 (for the stats).
require_server() {
    require_python
    require_program "$1" "$1"
    require_program h2load nghttp2-client
}

# server_certs: an RSA-2048 and an EC P-256 server certificate, $WORK/rsa.{crt,key,pem} and
# $WORK/ec.{crt,key,pem}.
server_certs() {
    local kind
    for kind in rsa ec; do
        make_cert "$kind" "$WORK/$kind"
        make_pem "$WORK/$kind"
    done
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
    done_ok=$(h2load_counts "$log")
    local -a r=($done_ok)
    if ((${#r[@]} != 3 || r[0] != n || r[1] != 0 || r[2] != 0)); then
        cat "$log" >&2
        fail "h2load on $url: expected $n succeeded requests, got '${done_ok:-no summary}'"
    fi
    grep -Eq "^status codes: $n 2xx" "$log" || { cat "$log" >&2; fail "h2load on $url: not all 2xx"; }
    say "ok: $n requests, $n new TLS connections on $url"
}

# check_offload FILE CLASS MIN: the stats file shows CLASS offloaded asynchronously and cleanly
# (tools/stats.py check: submitted == completed >= MIN, nothing failed or fell back to
# software, no more retries than busy refusals).
check_offload() {
    local line
    line=$("$STATS" check "$@") || fail "offload of $2 in $1"
    say "$(basename "$1") $line"
}

# stats_sum CLASS FIELD FILE...: the sum of one counter over several stats files (a class that
# a process never used counts 0).
stats_sum() {
    local cls=$1 field=$2
    shift 2
    "$STATS" sum "$field" "$@" --class "$cls" || fail "stats: cannot sum $cls.$field"
}

# proc_fds PID, proc_rss_kib PID: the open descriptors and the resident memory (VmRSS, KiB) of a
# process now, the shell side of tests/common/proc_usage.h.
proc_fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
proc_rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# HAProxy ---------------------------------------------------------------------------------------

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
    track "$HAPROXY_PID"
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
        haproxy_config "$WORK/$name.cfg" "$nbthread" "$async" 2048 "" \
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

# handshake_load RSA_PORT EC_PORT REQUESTS: REQUESTS new TLS connections (h2load, TLS 1.3) and
# TLS12 more (s_client, TLS 1.2: the ServerKeyExchange signature) on each port.
TLS12=20
handshake_load() {
    h2load_run "$WORK/rsa.log" "https://127.0.0.1:$1/" "$3" 10
    h2load_run "$WORK/ec.log" "https://127.0.0.1:$2/" "$3" 10
    tls12_handshakes "$1" "$TLS12" ECDHE-RSA-AES128-GCM-SHA256
    tls12_handshakes "$2" "$TLS12" ECDHE-ECDSA-AES128-GCM-SHA256
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

# Traffic Server ---------------------------------------------------------------------------------

# ts_layout DIR: a Traffic Server runroot in DIR (runroot.yaml; TS_RUNROOT=DIR selects it): the
# programs and plugins of the system's installation, everything else (configuration, logs, pid
# and lock files, cache) under DIR, so that nothing under /etc/trafficserver or /var is read or
# written. The configuration starts as a copy of the packaged one (the files records.config does
# not name keep their defaults); ts_config overwrites what the tests decide.
ts_layout() {
    local dir=$1 d
    for d in etc log run var cache; do mkdir -p "$dir/$d"; done
    cp -r /etc/trafficserver/. "$dir/etc/" || fail "cannot copy /etc/trafficserver"
    cat >"$dir/runroot.yaml" <<YAML
prefix: $dir
exec_prefix: /usr
bindir: $(dirname "$(command -v traffic_server)")
sbindir: /usr/sbin
sysconfdir: $dir/etc
datadir: $dir/cache
includedir: /usr/include
libdir: $TS_LIBDIR
libexecdir: $TS_PLUGINDIR
localstatedir: $dir/var
runtimedir: $dir/run
logdir: $dir/log
cachedir: $dir/cache
YAML
    echo "$dir/cache 16M" >"$dir/etc/storage.config"
    : >"$dir/etc/plugin.config"
    # Origin-less: the generator plugin answers /nocache/N with N bytes; nothing is contacted.
    echo "map / http://127.0.0.1/ @plugin=generator.so" >"$dir/etc/remap.config"
}

# ts_config DIR ASYNC(0|1) NET_THREADS PORT:CERT...: records.config and ssl_multicert.config of
# the runroot DIR: one TLS port per PORT:CERT ($WORK/CERT.crt and .key, chosen by the port the
# client connected to), NET_THREADS network threads (those run the handshakes), async handshakes
# on or off, no session cache or tickets (every connection a full handshake), no access logs, no
# HTTP caching. The user stays the caller's (`#-1`; the package's `trafficserver` user would not
# read $WORK), and the crash-log helper is off (it insists on a user name). The `ssl-diag` debug
# tag logs each SSL_do_handshake that did not finish, with its SSL_get_error code, on stdout:
# 9 is SSL_ERROR_WANT_ASYNC, a paused job (ts_async_pauses counts them).
ts_config() {
    local dir=$1 async=$2 threads=$3 spec ports=""
    shift 3
    : >"$dir/etc/ssl_multicert.config"
    for spec in "$@"; do
        ports+="${ports:+ }127.0.0.1:${spec%%:*}:ssl"
        echo "dest_ip=127.0.0.1:${spec%%:*} ssl_cert_name=${spec#*:}.crt ssl_key_name=${spec#*:}.key" \
            >>"$dir/etc/ssl_multicert.config"
    done
    cat >"$dir/etc/records.config" <<CONF
CONFIG proxy.config.admin.user_id STRING #-1
CONFIG proxy.config.crash_log_helper STRING NULL
CONFIG proxy.config.http.server_ports STRING $ports
CONFIG proxy.config.exec_thread.autoconfig INT 0
CONFIG proxy.config.exec_thread.limit INT $threads
CONFIG proxy.config.accept_threads INT 1
CONFIG proxy.config.task_threads INT 1
CONFIG proxy.config.cache.threads_per_disk INT 1
CONFIG proxy.config.http.cache.http INT 0
CONFIG proxy.config.url_remap.remap_required INT 1
CONFIG proxy.config.reverse_proxy.enabled INT 1
CONFIG proxy.config.log.logging_enabled INT 0
CONFIG proxy.config.diags.debug.enabled INT 1
CONFIG proxy.config.diags.debug.tags STRING ssl-diag
CONFIG proxy.config.ssl.async.handshake.enabled INT $async
CONFIG proxy.config.ssl.server.cert.path STRING $WORK
CONFIG proxy.config.ssl.server.private_key.path STRING $WORK
CONFIG proxy.config.ssl.server.session_ticket.enable INT 0
CONFIG proxy.config.ssl.session_cache INT 0
CONFIG proxy.config.ssl.TLSv1_2 INT 1
CONFIG proxy.config.ssl.TLSv1_3 INT 1
CONF
}

# require_trafficserver: traffic_server, its generator plugin, h2load and python3.
require_trafficserver() {
    require_server traffic_server
    TS_LIBDIR=/usr/lib/trafficserver
    TS_PLUGINDIR=$TS_LIBDIR/modules
    [[ -f $TS_PLUGINDIR/generator.so ]] ||
        skip "Traffic Server's generator plugin is not in $TS_PLUGINDIR (package trafficserver)"
}

# ts_up ASYNC NET_THREADS ENV...: starts traffic_server in the foreground from the runroot
# $WORK/ts (TS_RUNROOT) with the given environment, on two free ports, RSA_PORT (rsa.crt) and
# EC_PORT (ec.crt), and waits until both listen; retries with other ports when one was taken
# meanwhile. Sets TS_PID and TS_LOG (stdout + stderr; diagnostics go to $WORK/ts/log/diags.log).
ts_up() {
    local async=$1 threads=$2 try
    shift 2
    TS_LOG=$WORK/ts.log
    ts_layout "$WORK/ts"
    for ((try = 0; try < 5; try++)); do
        RSA_PORT=$(free_port)
        EC_PORT=$(free_port)
        ((RSA_PORT != EC_PORT)) || continue
        ts_config "$WORK/ts" "$async" "$threads" "$RSA_PORT:rsa" "$EC_PORT:ec"
        say "+ $* TS_RUNROOT=$WORK/ts traffic_server"
        env "$@" TS_RUNROOT="$WORK/ts" traffic_server >"$TS_LOG" 2>&1 &
        TS_PID=$!
        track "$TS_PID"
        if wait_listen "$RSA_PORT" 30 "$TS_PID" && wait_listen "$EC_PORT" 30 "$TS_PID"; then
            say "traffic_server (pid $TS_PID) on 127.0.0.1:$RSA_PORT (RSA) and :$EC_PORT (EC)"
            return 0
        fi
        kill "$TS_PID" 2>/dev/null || true
        wait "$TS_PID" 2>/dev/null || true
        if ! grep -qiE 'address already in use|could not bind|bind failed' "$TS_LOG" \
            "$WORK/ts/log/diags.log" 2>/dev/null; then
            cat "$TS_LOG" "$WORK/ts/log/diags.log" >&2 2>/dev/null
            fail "traffic_server did not start"
        fi
        say "a port was taken, retrying"
    done
    fail "traffic_server: no ports could be bound"
}

# ts_async_pauses LOG: how many handshake steps returned SSL_ERROR_WANT_ASYNC in Traffic
# Server's debug output (ts_config: `ssl-diag`). 9.2 has no name for the code and prints
# "unknown SSL error (9)"; later versions may name it.
ts_async_pauses() {
    grep -cE 'SSL handshake error: (SSL_ERROR_WANT_ASYNC|unknown SSL error \(9\))' "$1" || true
}
