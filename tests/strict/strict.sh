#!/usr/bin/env bash
# strict (docs/strict.md): `strict_app CASE` (tests/strict/strict_app.cc) through FRONTEND
# engine or provider.
# A broken application (CASE is the name of the rule it breaks):
#   1. strict=warn: it runs to its end (exit 0); the stats file counts the rule (and no other),
#      with the first occurrence's class and thread; one warning names the rule, an OpenSSL
#      man page and what to do instead.
#   2. strict=abort: the process aborts (SIGABRT) after that warning.
#   3. strict=off: nothing is counted or said.
# The correct application (CASE correct), with fault-busy, fault-stall and fault-error on:
# nothing counted under warn, and no abort under abort.
source "$(dirname "$0")/../cli/lib.sh"
source "$(dirname "$0")/../cli/frontend_lib.sh"
case_name=${1:?usage: strict.sh CASE engine|provider}
use_frontend "${2:?usage: strict.sh CASE engine|provider}"
require_python
app=$SIMACCEL_BUILD_DIR/tests/strict/strict_app
[[ -x $app ]] || fail "no $app"
ulimit -c 0 # the abort runs dump no core
rules=(resumed-on-another-thread missed-wakeup spinning slow-callback abandoned-job left-paused)

# The device options of each case: long enough latencies that the job pauses with its request
# in the device, and a short strict-timeout for the lost wake-up.
case $case_name in
other-thread) rule=resumed-on-another-thread opts="latency=fixed:200ms" ;;
missed-wakeup) rule=missed-wakeup opts="latency=fixed:10ms strict-timeout=100ms" ;;
late-callback) rule=missed-wakeup opts="latency=fixed:10ms strict-timeout=100ms" ;;
spinning) rule=spinning opts="latency=fixed:20ms" ;;
slow-callback) rule=slow-callback opts="latency=fixed:5ms" ;;
abandoned-job) rule=abandoned-job opts="latency=fixed:50ms" ;;
left-paused) rule=left-paused opts="latency=fixed:50ms" ;;
correct) rule="" opts="latency=uniform:50us,2ms fault-busy=5% fault-stall=2%:20ms fault-error=1% fault-seed=11" ;;
*) fail "unknown case $case_name" ;;
esac

# run_app MODE: strict_app under strict=MODE; sets RC, ERR (its stderr) and JSON (its stats).
run_app() {
    JSON=$WORK/$1.json ERR=$WORK/$1.err
    RC=0
    SIMACCEL_TEST_FRONTEND=$FRONTEND \
        SIMACCEL_OPTS="$opts strict=$1 stats-file=$JSON" run "$app" "$case_name" 2>"$ERR" || RC=$?
    cat "$ERR" >&2
}
# count RULE: RULE's count in JSON.
count() { "$STATS" contract "$JSON" "$1"; }
strict_lines() { grep -c 'simaccel\[warn\]: strict: ' "$ERR" || true; }

# 1. warn
run_app warn
((RC == 0)) || fail "strict=warn: $case_name exited with $RC"
"$STATS" contract "$JSON" >&2
for r in "${rules[@]}"; do
    n=$(count "$r")
    if [[ $r == "$rule" ]]; then
        ((n >= 1)) || fail "strict=warn: $r not counted"
    else
        ((n == 0)) || fail "strict=warn: $r counted $n times by $case_name"
    fi
done
if [[ -n $rule ]]; then
    (($(strict_lines) == 1)) || fail "strict=warn: not exactly one strict warning"
    grep -E "strict: $rule: .*[A-Za-z_]+\(3\).* " "$ERR" >/dev/null ||
        fail "strict=warn: the warning does not name $rule and an OpenSSL man page"
    python3 - "$JSON" "$rule" "$case_name" <<'PY' || fail "strict=warn: no first occurrence of $rule"
import json, sys
first = json.load(open(sys.argv[1]))["contract"][sys.argv[2]]["first"]
# The TLS server's first offloaded request: its key share (provider) or its signature.
classes = ("x25519-keygen", "ecdsa-sign") if sys.argv[3] == "late-callback" else ("ecdsa-sign",)
assert first["class"] in classes, first
assert first["thread"] > 0 and first["at_us"] > 0, first
if sys.argv[2] == "resumed-on-another-thread":
    assert first["resumed_thread"] > 0 and first["resumed_thread"] != first["thread"], first
if sys.argv[2] == "spinning":
    assert first["resumes"] > 100, first
if sys.argv[2] == "slow-callback":
    assert first["elapsed_us"] >= 1000, first
if sys.argv[2] == "missed-wakeup":
    assert first["elapsed_us"] >= 100000, first
PY
    if [[ $case_name == late-callback ]]; then
        grep -q "no callback set on its wait ctx" "$ERR" || fail "strict=warn: the message does not say the wait ctx has no callback"
    fi
    say "ok: strict=warn counted $rule $(count "$rule") time(s), said it once"
else
    (($(strict_lines) == 0)) || fail "strict=warn: the correct application got a warning"
    "$STATS" sum submitted "$JSON" | { read -r n; ((n >= 256)) || fail "only $n requests"; }
    say "ok: strict=warn found nothing in the correct application"
fi

# 2. abort
run_app abort
if [[ -n $rule ]]; then
    ((RC == 134)) || fail "strict=abort: $case_name exited with $RC, not SIGABRT (134)"
    grep -q "strict: $rule: .*strict=abort: aborting" "$ERR" || fail "strict=abort: no message before the abort"
    say "ok: strict=abort aborted at $rule"
else
    ((RC == 0)) || fail "strict=abort: the correct application exited with $RC"
    say "ok: strict=abort let the correct application run"
fi

# 3. off
run_app off
((RC == 0)) || fail "strict=off: $case_name exited with $RC"
for r in "${rules[@]}"; do
    (($(count "$r") == 0)) || fail "strict=off: $r counted"
done
(($(strict_lines) == 0)) || fail "strict=off: a strict warning"
say "ok: strict=off: nothing counted or said"
