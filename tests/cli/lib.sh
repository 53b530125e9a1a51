# Helpers sourced by the CLI tests: environment checks, a scratch directory, cleanup of every
# process a test starts, free loopback ports, TLS server/client plumbing and stats-file reads.
# A test exits 0 (pass), 1 (fail) or 77 (skip, with the reason on stderr).

set -euo pipefail

: "${SIMACCEL_BUILD_DIR:?run through ctest (SIMACCEL_BUILD_DIR unset)}"
: "${SIMACCEL_SOURCE_DIR:?run through ctest (SIMACCEL_SOURCE_DIR unset)}"
export OPENSSL_ENGINES="${OPENSSL_ENGINES:-$SIMACCEL_BUILD_DIR/engines-3}"
export OPENSSL_MODULES="${OPENSSL_MODULES:-$SIMACCEL_BUILD_DIR/ossl-modules}"
# A test decides its own configuration: no site openssl.cnf and no inherited device options.
export OPENSSL_CONF=/dev/null
unset SIMACCEL_OPTS
OPENSSL=${OPENSSL:-openssl}
TIMEOUT=${SIMACCEL_TEST_TIMEOUT:-30}
# Sanitizer builds run longer.
[[ -n ${SIMACCEL_SANITIZER_RT:-} ]] && TIMEOUT=$((TIMEOUT * 3))

TEST_NAME=$(basename "$0" .sh)
say() { printf '%s: %s\n' "$TEST_NAME" "$*" >&2; }
fail() {
    say "FAIL: $*"
    exit 1
}
skip() {
    say "SKIP: $*"
    exit 77
}
# Runs a command under the test timeout; its name is printed so that the log reads as a script.
run() {
    say "+ $*"
    timeout -k 5 "$TIMEOUT" "$@"
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/simaccel-cli.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]:+${PIDS[@]}}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]:+${PIDS[@]}}"; do
        wait "$pid" 2>/dev/null || true
    done
    # Keep the scratch files of a failed run for the ctest log reader.
    if [[ ${KEEP_WORK:-0} == 1 ]]; then
        say "scratch files kept in $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# A sanitizer build's modules need the runtime loaded first in the uninstrumented `openssl`.
if [[ -n ${SIMACCEL_SANITIZER_RT:-} ]]; then
    real_openssl=$(command -v "$OPENSSL") || fail "no $OPENSSL"
    cat >"$WORK/openssl" <<WRAP
#!/bin/sh
LD_PRELOAD="$SIMACCEL_SANITIZER_RT\${LD_PRELOAD:+:\$LD_PRELOAD}" exec "$real_openssl" "\$@"
WRAP
    chmod +x "$WORK/openssl"
    OPENSSL=$WORK/openssl
fi

require_engine() {
    [[ -f $OPENSSL_ENGINES/simaccel.so ]] || fail "no engine at $OPENSSL_ENGINES/simaccel.so"
}
require_python() {
    command -v python3 >/dev/null || skip "python3 is needed to read the stats JSON (scripts/install-deps.sh installs it)"
}

# A TCP port on 127.0.0.1 with nothing listening. Another process may still take it before the
# server binds, so start_server retries on a bind failure.
free_port() {
    local p i
    for ((i = 0; i < 100; i++)); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        # A successful connect means the port is taken.
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    fail "no free port found"
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

# make_cert rsa|ec NAME: a self-signed server certificate NAME.crt with key NAME.key in $WORK.
make_cert() {
    local kind=$1 name=$2
    local -a alg
    case $kind in
    rsa) alg=(-algorithm RSA -pkeyopt rsa_keygen_bits:2048) ;;
    ec) alg=(-algorithm EC -pkeyopt ec_paramgen_curve:P-256) ;;
    *) fail "make_cert: unknown kind $kind" ;;
    esac
    "$OPENSSL" genpkey "${alg[@]}" -out "$WORK/$name.key" 2>/dev/null || fail "genpkey $kind"
    "$OPENSSL" req -new -x509 -key "$WORK/$name.key" -out "$WORK/$name.crt" -days 2 \
        -subj "/CN=localhost" 2>/dev/null || fail "req -x509 $kind"
}

# start_server NAME ARGS...: starts `openssl s_server -accept 127.0.0.1:PORT ARGS...` in the
# background, with stdin a FIFO held open (s_server stops at stdin EOF, and whatever is written
# to the FIFO goes to the client). Sets SERVER_PID, SERVER_PORT, SERVER_LOG, SERVER_IN (an fd).
start_server() {
    local name=$1 try
    shift
    SERVER_LOG=$WORK/$name.server.log
    mkfifo "$WORK/$name.server.in"
    for ((try = 0; try < 5; try++)); do
        SERVER_PORT=$(free_port)
        # The read-write open of the FIFO never blocks and keeps a writer alive.
        exec {SERVER_IN}<>"$WORK/$name.server.in"
        timeout -k 5 "$TIMEOUT" "$OPENSSL" s_server -accept "127.0.0.1:$SERVER_PORT" "$@" \
            <&"$SERVER_IN" >"$SERVER_LOG" 2>&1 &
        SERVER_PID=$!
        PIDS+=("$SERVER_PID")
        if wait_for "$SERVER_LOG" '^ACCEPT' 10 "$SERVER_PID"; then
            say "s_server $name (pid $SERVER_PID) on 127.0.0.1:$SERVER_PORT"
            return 0
        fi
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        exec {SERVER_IN}>&-
        if ! grep -qiE 'bind|address already in use' "$SERVER_LOG"; then
            cat "$SERVER_LOG" >&2
            fail "s_server $name did not start"
        fi
        say "port $SERVER_PORT taken, retrying"
    done
    fail "s_server $name: no port could be bound"
}

# stats_value FILE CLASS FIELD: prints the counter FIELD of op class CLASS from a stats JSON
# written by the device (`stats-file`). Looks for the class object wherever it is nested.
stats_value() {
    python3 - "$@" <<'PY'
import json, sys
path, cls, field = sys.argv[1:4]
with open(path) as f:
    doc = json.load(f)
def find(node):
    if isinstance(node, dict):
        if cls in node and isinstance(node[cls], dict) and field in node[cls]:
            return node[cls][field]
        for v in node.values():
            r = find(v)
            if r is not None:
                return r
    elif isinstance(node, list):
        for v in node:
            r = find(v)
            if r is not None:
                return r
    return None
v = find(doc)
if v is None:
    sys.exit(f"stats: no {cls}.{field} in {path}")
print(v)
PY
}
