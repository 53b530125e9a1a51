#!/usr/bin/env bash
# `openssl speed -elapsed -async_jobs 8` through the front end given as argument (engine:
# rsa2048 and ecdsap256 with `-engine simaccel`; provider: rsa2048 with
# conf/simaccel-provider.cnf) runs the signatures on the device: nonzero rates, the stats
# (SIMACCEL_OPTS stats-file) show the completed private-key operations, and more than one
# request was in the device at once.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/frontend_lib.sh"
use_frontend "${1:?usage: speed.sh engine|provider}"
require_python

case $FRONTEND in
engine) algs=(rsa2048:F2:rsa-priv ecdsap256:F4:ecdsa-sign) ;;
provider) algs=(rsa2048:F2:rsa-priv) ;;
esac
# A service-time floor keeps each request in the device long enough for the other jobs to
# submit theirs: with 8 jobs, several are in flight together.
export SIMACCEL_OPTS="latency=fixed:200us stats-file=$WORK/stats.json"
out=$(TIMEOUT=60 fe_openssl speed -elapsed -async_jobs 8 -seconds 1 -mr "${algs[@]%%:*}" 2>&1) ||
    fail "openssl speed failed: $out"
printf '%s\n' "$out"
grep -Eq '^[0-9A-F]+:error:|failure' <<<"$out" && fail "speed printed errors"

cat "$WORK/stats.json" >&2
for a in "${algs[@]}"; do
    IFS=: read -r alg tag cls <<<"$a"
    # -mr: "+F2:idx:bits:sign/s:verify/s" (RSA), "+F4:idx:bits:sign/s:verify/s" (ECDSA).
    line=$(grep "^+$tag:" <<<"$out" | tail -n 1) || fail "no +$tag line for $alg"
    awk -F: -v alg="$alg" '{ if (!($4 > 0 && $5 > 0)) exit 1
                             printf "%s: %.1f sign/s %.1f verify/s\n", alg, $4, $5 }' \
        <<<"$line" >&2 || fail "$alg rate is zero: $line"
    expect_completed "$WORK/stats.json" "$cls"
done
n=$("$STATS" top "$WORK/stats.json" max_inflight) || fail "stats: no max_inflight"
((n > 1)) || fail "max_inflight = $n: the async jobs did not overlap in the device"
say "ok: $FRONTEND (max_inflight: $n)"
