#!/usr/bin/env bash
# Live statistics on a real run through the front end given as argument: `openssl speed
# -async_jobs 8 rsa2048` (`-engine simaccel`, or conf/simaccel-provider.cnf) with
# `stats-interval=200ms` rewrites its stats file while it runs, and `tools/stats.py watch` reads
# it every second: its sample lines show rsa-priv completing at a nonzero rate (the deltas of
# successive snapshots) with latency quantiles, and the file of the finished run still parses.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/frontend_lib.sh"
use_frontend "${1:?usage: stats_watch.sh engine|provider}"
require_python

live=$WORK/live-%p.json
export SIMACCEL_OPTS="latency=fixed:200us fault-busy=0.01 stats-file=$live stats-interval=200ms"
# Long enough for the viewer's samples (it waits for the file, then needs two snapshots).
# OpenSSL 3.5 times ten phases of -seconds each (sign, verify, encrypt, decrypt, KEM, ...).
TIMEOUT=150 fe_openssl speed -elapsed -async_jobs 8 -seconds 6 rsa2048 >"$WORK/speed.log" 2>&1 &
speed=$!
track "$speed"
# `%p` is the pid of the openssl process (a child of the timeout wrapper): the one file there.
# It appears once the device has started: OpenSSL 3.5's speed first times RSA key generation
# (not offloaded) for the whole -seconds.
file=
for ((i = 0; i < 300; i++)); do
    file=$(compgen -G "$WORK/live-*.json" | head -n 1) && break
    sleep 0.1
done
[[ -n $file ]] || fail "no stats file within 30 s of starting speed (stats-interval=200ms)"
say "watching $file"
out=$(timeout -k 5 30 python3 "$STATS" watch "$file" --every 1 --count 3) ||
    fail "stats.py watch failed: $out"
printf '%s\n' "$out" >&2
wait "$speed" || fail "openssl speed failed: $(cat "$WORK/speed.log")"
grep -Eq '^[0-9A-F]+:error:' "$WORK/speed.log" && fail "speed printed errors: $(cat "$WORK/speed.log")"

grep -q '^time .*ops/s .*eagain/s .*p99 us' <<<"$out" || fail "no header line"
# A sample: time, class, ops/s subm/s eagain/s fail/s in-flight p50 p90 p99.
awk '$2 == "rsa-priv" && NF == 10 { n++; if ($3 > 0 && $4 > 0 && $8 != "-" && $10 >= $8) ok++ }
     $2 == "rsa-priv" && $6 != 0 { bad++ }
     END { if (n < 2 || ok < 2 || bad) exit 1 }' <<<"$out" ||
    fail "expected >= 2 rsa-priv samples with ops/s > 0, quantiles and no failures"
# The EAGAIN column counts the fault-busy refusals of the interval: some in the whole run.
awk '$2 == "rsa-priv" && $5 > 0 { found = 1 } END { exit !found }' <<<"$out" ||
    fail "no EAGAIN in any sample with fault-busy=0.01"
expect_completed "$file" rsa-priv
say "ok: $(grep -c rsa-priv <<<"$out") samples"
