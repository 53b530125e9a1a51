#!/usr/bin/env bash
# Configuration errors a user sees: a bad value in the engine's openssl.cnf section is logged
# (OpenSSL drops its own error without config_diagnostics), the engine's errors name the
# function that raised them, and a bad SIMACCEL_OPTS is reported with one "simaccel" prefix.
source "$(dirname "$0")/lib.sh"
require_engine

# The engine section of an openssl.cnf with one bad line; no config_diagnostics.
engine_cnf() {
    cat >"$WORK/engine.cnf" <<CNF
openssl_conf = init
[init]
engines = engine_section
[engine_section]
simaccel = simaccel_section
[simaccel_section]
$1
init = 1
CNF
}

for line in "QUEUE_DEPTH = -1" "LATENCY = 2ms"; do
    engine_cnf "$line"
    key=${line%% =*}
    value=${line##*= }
    lower=$(tr 'A-Z_' 'a-z-' <<<"$key")
    run env OPENSSL_CONF="$WORK/engine.cnf" "$OPENSSL" engine -t -pre GET_STATS simaccel \
        >"$WORK/out" 2>"$WORK/err" || fail "openssl engine failed: $(cat "$WORK/err")"
    cat "$WORK/err" >&2
    # The error names the ctrl as the section spells it, the key and the value.
    grep -qF "simaccel[error]: engine: $line (openssl.cnf engine section or ctrl) refused: key '$lower': bad value '$value'" "$WORK/err" ||
        fail "no error line naming '$line' on stderr"
    # ... and says the engine goes on with what it had: the default.
    grep -q "\"$lower\":\"$( [[ $key == QUEUE_DEPTH ]] && echo 1024 || echo 0)\"" "$WORK/out" ||
        fail "$lower is not at its default after the refused line: $(cat "$WORK/out")"
done

# An error the engine raises names its function, not "(unknown function)".
out=$(run "$OPENSSL" engine -pre QUEUE_DEPTH:abc simaccel 2>&1) || true
printf '%s\n' "$out"
grep -q "simaccel engine routines:set_config_key:bad configuration value:.*engine.cc:[0-9]*:simaccel: key 'queue-depth': bad value 'abc'" <<<"$out" ||
    fail "the engine's error does not name set_config_key"
grep -q "unknown function" <<<"$out" && fail "an engine error has no function name"

# A bad SIMACCEL_OPTS: the whole message, with the prefix once.
run env SIMACCEL_OPTS="queue-depth=zz" "$OPENSSL" engine -t simaccel >/dev/null 2>"$WORK/err" ||
    fail "openssl engine failed: $(cat "$WORK/err")"
cat "$WORK/err" >&2
expected="simaccel[error]: SIMACCEL_OPTS not applied: key 'queue-depth': bad value 'zz' (expected an integer 1..1048576)"
grep -qxF "$expected" "$WORK/err" || fail "expected the line: $expected"
say "ok"
