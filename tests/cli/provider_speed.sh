#!/usr/bin/env bash
# `openssl speed -elapsed -async_jobs 8 rsa2048` with conf/simaccel-provider.cnf runs RSA
# signing on the device: a nonzero rate, the stats (SIMACCEL_OPTS stats-file) show the
# completed rsa-priv operations, and more than one request was in the device at once.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/provider_lib.sh"
require_provider
require_python

# A service-time floor keeps each request in the device long enough for the other jobs to
# submit theirs: with 8 jobs, several are in flight together.
export SIMACCEL_OPTS="latency=fixed:200us stats-file=$WORK/stats.json"
out=$(TIMEOUT=60 prov speed -elapsed -async_jobs 8 -seconds 1 -mr rsa2048 2>&1) ||
    fail "openssl speed failed: $out"
printf '%s\n' "$out"
grep -Eq '^[0-9A-F]+:error:|failure' <<<"$out" && fail "speed printed errors"

# -mr: "+F2:idx:bits:sign/s:verify/s".
line=$(grep '^+F2:' <<<"$out" | tail -n 1) || fail "no +F2 line for rsa2048"
awk -F: '{ if (!($4 > 0 && $5 > 0)) exit 1; printf "rsa2048: %.1f sign/s %.1f verify/s\n", $4, $5 }' \
    <<<"$line" >&2 || fail "rsa2048 rate is zero: $line"

cat "$WORK/stats.json" >&2
expect_completed "$WORK/stats.json" rsa-priv
n=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["max_inflight"])' \
    "$WORK/stats.json") || fail "stats: no max_inflight"
((n > 1)) || fail "max_inflight = $n: the async jobs did not overlap in the device"
say "ok (max_inflight: $n)"
