# shellcheck shell=bash
# The shell library of every simaccel script (tests, benchmarks, demo, CI), sourced, never run:
#   messages    say, fail (exit 1), skip (exit 77: a skipped test), prefixed with SCRIPT_NAME
#   processes   PIDS, track, cleanup_on_exit (stops every tracked pid, removes scratch dirs),
#               new_scratch, wait_pid, wait_for, children
#   ports       port_free, free_port, wait_listen
#   openssl     key_args, make_cert, make_pem, flip_byte
#   servers     haproxy_config, nginx_engine_conf, nginx_up, h2load_counts
#   numbers     agg (median, min, max of a benchmark's rounds)
#   sanitizers  sanitizer_env (tests/sanitizers/options.env: the runtime options, defined once)
# The stats files are read with tools/stats.py ($STATS: `"$STATS" get FILE CLASS FIELD`).

SIMACCEL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATS=$SIMACCEL_ROOT/tools/stats.py
SCRIPT_NAME=${SCRIPT_NAME:-$(basename "$0" .sh)}
OPENSSL=${OPENSSL:-openssl}

# Messages -------------------------------------------------------------------------------------

say() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }
fail() {
    say "FAIL: $*"
    exit 1
}
skip() {
    say "SKIP: $*"
    exit 77
}

# Processes ------------------------------------------------------------------------------------

# Every background process a script starts goes into PIDS (`track $!`); cleanup_on_exit stops
# them all at exit, whatever the exit path, and removes the scratch directories.
PIDS=()
SCRATCH_DIRS=()
track() { PIDS+=("$@"); }

stop_tracked() {
    local pid
    for pid in "${PIDS[@]:+${PIDS[@]}}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]:+${PIDS[@]}}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}

# cleanup_on_exit: the EXIT trap stops the tracked processes and removes the scratch dirs
# (KEEP_WORK=1 keeps them, for the reader of a failed run's log); INT and TERM exit 1 through it.
cleanup_on_exit() {
    trap _common_cleanup EXIT
    trap 'exit 1' INT TERM
}
_common_cleanup() {
    stop_tracked
    local d
    for d in "${SCRATCH_DIRS[@]:+${SCRATCH_DIRS[@]}}"; do
        if [[ ${KEEP_WORK:-0} == 1 ]]; then
            say "scratch files kept in $d"
        else
            rm -rf "$d"
        fi
    done
}

# new_scratch VAR PREFIX: VAR = a new directory under $TMPDIR, removed at exit (cleanup_on_exit).
new_scratch() {
    local d
    d=$(mktemp -d "${TMPDIR:-/tmp}/simaccel-$2.XXXXXX") || fail "cannot create a scratch directory"
    SCRATCH_DIRS+=("$d")
    printf -v "$1" '%s' "$d"
}

# wait_pid PID SECONDS: waits for PID to exit by itself; returns its status, or fails.
wait_pid() {
    local pid=$1 secs=$2 i
    for ((i = 0; i < secs * 10; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            local rc=0
            wait "$pid" || rc=$?
            return "$rc"
        fi
        sleep 0.1
    done
    fail "process $pid did not exit within ${secs}s"
}

# wait_for FILE PATTERN SECONDS [PID]: waits until FILE matches PATTERN (grep -E); fails early
# if PID dies first.
wait_for() {
    local file=$1 pattern=$2 secs=$3 pid=${4:-} i
    for ((i = 0; i < secs * 10; i++)); do
        grep -Eq -- "$pattern" "$file" 2>/dev/null && return 0
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            grep -Eq -- "$pattern" "$file" 2>/dev/null && return 0
            return 1
        fi
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

# Ports ----------------------------------------------------------------------------------------

# port_free PORT...: succeeds when nothing listens on 127.0.0.1 at any of the ports.
port_free() {
    local p
    for p in "$@"; do
        # A successful connect means the port is taken.
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            return 1
        fi
    done
}

# free_port: a TCP port on 127.0.0.1 with nothing listening. Another process may still take it
# before the server binds: callers retry on a bind failure.
free_port() {
    local p i
    for ((i = 0; i < 100; i++)); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        port_free "$p" && { echo "$p"; return 0; }
    done
    fail "no free port found"
}

# wait_listen PORT SECONDS PID: waits until 127.0.0.1:PORT accepts connections; fails early if
# PID dies.
wait_listen() {
    local port=$1 secs=$2 pid=$3 i
    for ((i = 0; i < secs * 10; i++)); do
        port_free "$port" || return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# Numbers ---------------------------------------------------------------------------------------

# agg VALUES...: "median min max" of the numbers (the benchmark scripts' rounds).
agg() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (!NR) { print "0 0 0"; exit }
        printf "%.1f %.1f %.1f\n", (v[int((NR + 1) / 2)] + v[int(NR / 2) + 1]) / 2, v[1], v[NR] }'
}

# OpenSSL --------------------------------------------------------------------------------------

# key_args KIND: sets KEY_ARGS to the `openssl genpkey` arguments of a key of KIND: rsa (2048
# bits), rsa3072, ec (P-256), ed25519, x25519.
key_args() {
    case $1 in
    rsa) KEY_ARGS=(-algorithm RSA -pkeyopt rsa_keygen_bits:2048) ;;
    rsa3072) KEY_ARGS=(-algorithm RSA -pkeyopt rsa_keygen_bits:3072) ;;
    ec) KEY_ARGS=(-algorithm EC -pkeyopt ec_paramgen_curve:P-256) ;;
    ec384) KEY_ARGS=(-algorithm EC -pkeyopt ec_paramgen_curve:P-384) ;;
    ec521) KEY_ARGS=(-algorithm EC -pkeyopt ec_paramgen_curve:P-521) ;;
    ed25519) KEY_ARGS=(-algorithm ED25519) ;;
    x25519) KEY_ARGS=(-algorithm X25519) ;;
    x448) KEY_ARGS=(-algorithm X448) ;;
    ffdhe2048) KEY_ARGS=(-algorithm DH -pkeyopt group:ffdhe2048) ;;
    *) fail "unknown key kind '$1'" ;;
    esac
}

# make_cert KIND PATH [CN]: a key PATH.key of KIND (key_args) and a self-signed certificate
# PATH.crt for CN (default localhost), made by stock `$OPENSSL` (the caller's configuration:
# usually none).
make_cert() {
    local kind=$1 path=$2 cn=${3:-localhost}
    key_args "$kind"
    "$OPENSSL" genpkey "${KEY_ARGS[@]}" -out "$path.key" 2>/dev/null || fail "genpkey $kind"
    "$OPENSSL" req -new -x509 -key "$path.key" -out "$path.crt" -days 2 -subj "/CN=$cn" \
        2>/dev/null || fail "req -x509 $kind"
}

# make_pem PATH: PATH.pem = PATH.crt + PATH.key, the form HAProxy's `crt` wants.
make_pem() { cat "$1.crt" "$1.key" >"$1.pem"; }

# flip_byte FILE OFFSET: XORs one byte of FILE with 0x01 (a damaged signature or certificate).
flip_byte() {
    local b
    b=$(od -An -tu1 -j "$2" -N 1 "$1" | tr -d ' ')
    # shellcheck disable=SC2059 # the format is the escape that makes the byte
    printf "\\$(printf %03o $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# Servers --------------------------------------------------------------------------------------

# haproxy_config FILE NBTHREAD ASYNC(0|1) MAXCONN BIND_OPTS PORT:PEM...: a configuration with
# one frontend per PORT:PEM that answers every request itself (no backend); its pid file and
# stderr log beside FILE. TLS 1.2 at least, no session resumption (no tickets, no cache): every
# new connection is a full handshake, with the private-key operation the callers count.
# BIND_OPTS (may be empty) go on every `bind` line, e.g. "ssl-max-ver TLSv1.2 curves P-256".
haproxy_config() {
    local file=$1 nbthread=$2 async=$3 maxconn=$4 bind_opts=$5 spec i=0
    shift 5
    {
        echo "global"
        echo "    nbthread $nbthread"
        echo "    maxconn $maxconn"
        ((async)) && echo "    ssl-mode-async"
        echo "    tune.ssl.cachesize 0"
        echo "    pidfile ${file%.cfg}.pid"
        echo "    log stderr format raw local0 notice"
        echo "defaults"
        echo "    mode http"
        echo "    log global"
        echo "    timeout connect 5s"
        echo "    timeout client 30s"
        echo "    timeout server 30s"
        for spec in "$@"; do
            echo "frontend fe$i"
            echo "    bind 127.0.0.1:${spec%%:*} ssl crt ${spec#*:} ssl-min-ver TLSv1.2 no-tls-tickets${bind_opts:+ $bind_opts}"
            echo "    http-request return status 200 content-type text/plain string ok"
            i=$((i + 1))
        done
    } >"$file"
}

# h2load_counts LOG: "SUCCEEDED FAILED ERRORED" from h2load's `requests:` summary line (empty
# output when there is none).
h2load_counts() {
    sed -nE 's/^requests: .* ([0-9]+) succeeded, ([0-9]+) failed, ([0-9]+) errored.*/\1 \2 \3/p' "$1"
}

# Sanitizers -----------------------------------------------------------------------------------

# nginx_engine_conf FILE WORKERS EXTRA_MAIN PORT:CERT...: an nginx configuration with
# `ssl_engine simaccel;` (NGINX_ENGINE=ID another engine, NGINX_ENGINE= none), WORKERS worker processes, EXTRA_MAIN added to the main context, and
# one TLS server per PORT:CERT ($WORK/CERT.crt and .key). Everything lives under $WORK/nginx;
# nothing of the system configuration is read. No session cache, no tickets: every connection
# is a full handshake. Each server answers "ok", or does what NGINX_LOCATION says in
# `location /` (e.g. "root /dir;" to serve files).
nginx_engine_conf() {
    local file=$1 workers=$2 extra=$3 user="" spec engine=${NGINX_ENGINE-simaccel}
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
${engine:+ssl_engine $engine;}
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
        location / { ${NGINX_LOCATION:-return 200 "ok\n";} }
    }
CONF
        done
        echo "}"
    } >"$file"
}

# nginx_up CONF_FN N: starts nginx (master and workers, in the foreground) on N free ports with
# the configuration `CONF_FN FILE PORT...` writes into $WORK/nginx/nginx.conf; retries with
# other ports when one was taken meanwhile. Sets NGINX_PID (the master), NGINX_LOG, NGINX_CONF
# and PORTS (the N ports).
nginx_up() {
    local conf_fn=$1 n=$2 try i p
    NGINX_LOG=$WORK/nginx.log
    NGINX_CONF=$WORK/nginx/nginx.conf
    mkdir -p "$WORK/nginx/logs"
    for ((try = 0; try < 5; try++)); do
        PORTS=()
        for ((i = 0; i < n; i++)); do
            p=$(free_port)
            [[ " ${PORTS[*]} " == *" $p "* ]] && continue 2
            PORTS+=("$p")
        done
        "$conf_fn" "$NGINX_CONF" "${PORTS[@]}"
        say "+ nginx -p $WORK/nginx/ -e stderr -c $NGINX_CONF"
        nginx -p "$WORK/nginx/" -e stderr -c "$NGINX_CONF" >"$NGINX_LOG" 2>&1 &
        NGINX_PID=$!
        track "$NGINX_PID"
        local up=1
        for p in "${PORTS[@]}"; do
            wait_listen "$p" 15 "$NGINX_PID" || { up=0; break; }
        done
        ((up)) && return 0
        kill "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
        grep -qi 'address already in use' "$NGINX_LOG" || { cat "$NGINX_LOG" >&2; fail "nginx did not start"; }
        say "a port was taken, retrying"
    done
    fail "nginx: no ports could be bound"
}

# sanitizer_env address|thread: the runtime options of tests/sanitizers/options.env for that
# sanitizer, as NAME=VALUE lines, for a script that runs instrumented programs itself
# (scripts/fuzz.sh). CTest's tests get them from CMake (tests/sanitizers/sanitizers.cmake).
# Use: `while read -r kv; do export "$kv"; done < <(sanitizer_env address)`.
sanitizer_env() {
    local kind=$1 dir=$SIMACCEL_ROOT/tests/sanitizers line
    local -A opt=()
    while IFS= read -r line; do
        [[ $line =~ ^([A-Z_]+)=(.*)$ ]] || continue
        opt[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]//@DIR@/$dir}
    done <"$dir/options.env"
    case $kind in
    address) printf '%s\n' "ASAN_OPTIONS=${opt[ASAN_OPTIONS]}" "LSAN_OPTIONS=${opt[LSAN_OPTIONS]}" \
        "UBSAN_OPTIONS=${opt[UBSAN_OPTIONS]}" ;;
    thread) echo "TSAN_OPTIONS=${opt[TSAN_OPTIONS]}" ;;
    *) fail "sanitizer_env: unknown sanitizer '$kind' (address or thread)" ;;
    esac
}
