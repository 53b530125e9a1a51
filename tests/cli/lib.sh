# shellcheck shell=bash
# Helpers sourced by the CLI tests, on top of scripts/lib/common.sh (messages, process cleanup,
# ports, certificates; the stats files through tools/stats.py): the test environment, a scratch
# directory, an `openssl s_server` with a controllable stdin, and stats-file reads.
# A test exits 0 (pass), 1 (fail) or 77 (skip, with the reason on stderr).

set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/common.sh"

: "${SIMACCEL_BUILD_DIR:?run through ctest (SIMACCEL_BUILD_DIR unset)}"
: "${SIMACCEL_SOURCE_DIR:?run through ctest (SIMACCEL_SOURCE_DIR unset)}"
export OPENSSL_ENGINES="${OPENSSL_ENGINES:-$SIMACCEL_BUILD_DIR/engines-3}"
export OPENSSL_MODULES="${OPENSSL_MODULES:-$SIMACCEL_BUILD_DIR/ossl-modules}"
# A test decides its own configuration: no site openssl.cnf and no inherited device options.
export OPENSSL_CONF=/dev/null
unset SIMACCEL_OPTS
TIMEOUT=${SIMACCEL_TEST_TIMEOUT:-30}
# Sanitizer builds run longer. (OPENSSL is then the wrapper that preloads the runtime:
# tests/sanitizers/sanitizers.cmake.)
[[ -n ${SIMACCEL_SANITIZE:-} ]] && TIMEOUT=$((TIMEOUT * 3))

# Runs a command under the test timeout; its name is printed so that the log reads as a script.
run() {
    say "+ $*"
    timeout -k 5 "$TIMEOUT" "$@"
}

cleanup_on_exit
new_scratch WORK cli

require_engine() {
    [[ -f $OPENSSL_ENGINES/simaccel.so ]] || fail "no engine at $OPENSSL_ENGINES/simaccel.so"
}
require_python() {
    command -v python3 >/dev/null || skip "python3 is needed to read the stats JSON (scripts/install-deps.sh installs it)"
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
        track "$SERVER_PID"
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

# stats_value FILE CLASS FIELD: the counter FIELD of op class CLASS in a stats file written by
# the device (`stats-file`); fails the test when there is none.
stats_value() {
    "$STATS" get "$@" || fail "stats: no $2.$3 in $1"
}

# expect_completed STATS CLASS [MIN]: the device completed at least MIN (default 1) operations of
# CLASS according to the stats file the process wrote at exit.
expect_completed() {
    local stats=$1 cls=$2 min=${3:-1} n
    [[ -s $stats ]] || fail "no stats file $stats written at exit"
    n=$(stats_value "$stats" "$cls" completed)
    ((n >= min)) || fail "the device completed $n $cls operations, expected at least $min"
    say "$cls completed: $n"
}

# check_contract_clean [--allow RULE] FILE...: strict (docs/strict.md) counted no violation of
# the async contract in any of the stats files (the TLS and server tests run with strict=warn);
# --allow RULE: except RULE, which the program under test is known to break (the caller says
# why).
check_contract_clean() {
    local f bad allow=
    if [[ ${1:-} == --allow ]]; then
        allow=$2
        shift 2
    fi
    for f in "$@"; do
        bad=$("$STATS" contract "$f") || fail "stats: no contract section in $f"
        bad=$(awk -v allow="$allow" '$2 != 0 && $1 != allow' <<<"$bad")
        [[ -z $bad ]] || fail "strict counted violations of the async contract in $(basename "$f"): $bad"
    done
    say "strict: no violation of the async contract in $# stats file(s)${allow:+ (but $allow)}"
}
