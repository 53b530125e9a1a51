#!/usr/bin/env bash
# trace-file with `%p` across fork: `openssl speed -multi 2 -async_jobs 4` through the front end
# given as argument forks two workers; each writes its own trace (the path's `%p`), holding its
# own requests only (a fork child's trace starts empty), up to trace-limit, with its own pid.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/frontend_lib.sh"
use_frontend "${1:?usage: trace_fork.sh engine|provider}"
require_python

export SIMACCEL_OPTS="trace-file=$WORK/trace.%p.json trace-limit=300 latency=fixed:50us"
out=$(TIMEOUT=60 fe_openssl speed -elapsed -async_jobs 4 -seconds 1 -multi 2 ecdsap256 2>&1) ||
    fail "openssl speed failed: $out"
grep -Eq '^[0-9A-F]+:error:|failure' <<<"$out" && fail "speed printed errors: $out"
python3 - "$WORK" <<'PY' || fail "the workers' traces are wrong"
import glob, json, os, re, sys
files = glob.glob(os.path.join(sys.argv[1], "trace.*.json"))
workers = []
for f in files:
    pid = int(re.search(r"trace\.(\d+)\.json$", f).group(1))
    d = json.load(open(f))
    pids = {e["pid"] for e in d["traceEvents"]}
    if pids != {pid}:
        sys.exit("%s: events of pids %s" % (f, sorted(pids)))
    n = d["otherData"]["requests"]
    ids = sorted({e["args"]["id"] for e in d["traceEvents"] if e["ph"] == "X"})
    if ids != list(range(n)):
        sys.exit("%s: request ids %s... for %d requests" % (f, ids[:5], n))
    print("%s: %d requests" % (os.path.basename(f), n), file=sys.stderr)
    if n:
        workers.append(n)
if len(workers) < 2 or any(n != 300 for n in workers):
    sys.exit("expected two worker traces of 300 requests each, got %s from %s" % (workers, files))
PY
say "ok: $FRONTEND: one trace per forked worker"
