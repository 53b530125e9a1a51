#!/usr/bin/env bash
# `openssl speed -engine simaccel -async_jobs 8` runs RSA and ECDSA through the device: nonzero
# rates, and the device's stats show the completed private-key operations.
source "$(dirname "$0")/lib.sh"
require_engine
require_python

export SIMACCEL_OPTS="stats-file=$WORK/stats.json"
out=$(TIMEOUT=60 run "$OPENSSL" speed -engine simaccel -async_jobs 8 -seconds 1 -mr \
    rsa2048 ecdsap256 2>&1) || fail "openssl speed failed: $out"
printf '%s\n' "$out"

# -mr: "+F2:idx:bits:sign/s:verify/s" (RSA), "+F4:idx:bits:sign/s:verify/s" (ECDSA).
check_rate() {
    local tag=$1 what=$2 line
    line=$(grep "^+$tag:" <<<"$out" | tail -n 1) || fail "no +$tag line for $what"
    awk -F: -v what="$what" '{ if (!($4 > 0 && $5 > 0)) { print what ": zero rate: " $0; exit 1 }
                               printf "%s: %.1f sign/s %.1f verify/s\n", what, $4, $5 }' \
        <<<"$line" >&2 || fail "$what rate is zero"
}
check_rate F2 rsa2048
check_rate F4 ecdsap256
grep -Eq '^[0-9A-F]+:error:|failure' <<<"$out" && fail "speed printed errors"

[[ -s $WORK/stats.json ]] || fail "no stats file written at exit"
cat "$WORK/stats.json" >&2
for cls in rsa-priv ecdsa-sign; do
    n=$(stats_value "$WORK/stats.json" "$cls" completed) || fail "stats: $cls"
    ((n > 0)) || fail "stats: $cls completed = $n"
    say "$cls completed: $n"
done
say "ok"
