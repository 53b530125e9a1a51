#!/usr/bin/env python3
"""trace-file on a known run: trace_workload signs with ECDSA in fd-mode jobs, callback-mode jobs
and outside any job, under fault-busy (EAGAIN retries); the trace it leaves at exit must load
with the json module and hold, for every request: one submit, service, deliver, on_complete and
resume slice in that order (submit <= service <= deliver <= resume), its op class and status; the
slices of each thread nest; every thread has a name; the request counts and EAGAIN retries agree
with the stats file of the same run. A second run with a trace-limit below the request count
keeps exactly the first trace-limit requests.
Usage: check_trace.py WORKLOAD_BINARY [gtest args...]"""
import collections
import json
import os
import re
import subprocess
import sys
import tempfile

SPANS = ["submit", "service", "deliver", "on_complete", "resume"]
FAILS = []


def fail(msg):
    FAILS.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def ns(x):
    """A trace timestamp (microseconds, 3 decimals) as integer nanoseconds."""
    return round(x * 1000)


def run(binary, args, opts, work):
    env = dict(os.environ, SIMACCEL_OPTS=opts)
    p = subprocess.run([binary, "--gtest_filter=TraceWorkload.*"] + args, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=240)
    sys.stderr.write(p.stdout)
    if "[  SKIPPED ]" in p.stdout:
        print("skipped: the workload was skipped")
        sys.exit(77)
    if p.returncode != 0:
        sys.exit("the workload failed (exit status %d)" % p.returncode)
    m = re.search(r"workload: ecdsa-sign fd=(\d+) callback=(\d+) sync=(\d+)", p.stdout)
    if not m:
        sys.exit("the workload printed no 'workload:' line")
    return [int(g) for g in m.groups()]


def load(path):
    with open(path) as f:
        return json.load(f)


def requests_of(trace):
    """id -> {"spans": {name: (tid, b, e, args)}, "async": [(name, b, e)]}"""
    reqs = collections.defaultdict(lambda: {"spans": {}, "async": [], "open": {}})
    for ev in trace["traceEvents"]:
        ph = ev["ph"]
        if ph == "X":
            rid = ev["args"]["id"]
            name = ev["name"]
            if name in reqs[rid]["spans"]:
                fail("request %d: two %s slices" % (rid, name))
            b = ns(ev["ts"])
            reqs[rid]["spans"][name] = (ev["tid"], b, b + ns(ev["dur"]), ev["args"])
        elif ph in "be":
            rid = int(ev["id"], 16)
            key = ev["name"]
            if ph == "b":
                reqs[rid]["open"][key] = ns(ev["ts"])
            else:
                if key not in reqs[rid]["open"]:
                    fail("request %d: async %s ends without a begin" % (rid, key))
                    continue
                reqs[rid]["async"].append((key, reqs[rid]["open"].pop(key), ns(ev["ts"])))
    return reqs


def check_nesting(trace):
    tracks = collections.defaultdict(list)
    for ev in trace["traceEvents"]:
        if ev["ph"] == "X":
            b = ns(ev["ts"])
            tracks[(ev["pid"], ev["tid"])].append((b, b + ns(ev["dur"]), ev["name"], ev["args"]["id"]))
    for track, evs in tracks.items():
        evs.sort(key=lambda e: (e[0], -e[1]))
        stack = []
        for b, e, name, rid in evs:
            while stack and stack[-1][1] <= b:
                stack.pop()
            if stack and e > stack[-1][1]:
                top = stack[-1]
                fail("track %s: %s of request %d [%d, %d] overlaps %s of request %d [%d, %d]"
                     % (track, name, rid, b, e, top[2], top[3], top[0], top[1]))
            stack.append((b, e, name, rid))
    return tracks


def check_requests(trace, reqs, expect_ops):
    """Per request: every slice, the order, the arguments, the async phases nested."""
    retries = collections.Counter()
    per_op = collections.Counter()
    sync = 0
    for rid, r in sorted(reqs.items()):
        spans = r["spans"]
        missing = [s for s in SPANS if s not in spans]
        if missing:
            fail("request %d: no %s slice" % (rid, ", ".join(missing)))
            continue
        args = spans["resume"][3]
        op = args["op"]
        per_op[op] += 1
        retries[op] += args["retries"]
        if op not in expect_ops:
            fail("request %d: unexpected op class %r" % (rid, op))
        if args["status"] != "ok" or args["work_ok"] is not True:
            fail("request %d: status %s work_ok %s" % (rid, args["status"], args["work_ok"]))
        for s in SPANS:
            a = spans[s][3]
            if (a["op"], a["status"], a["instance"]) != (op, args["status"], args["instance"]):
                fail("request %d: %s slice args %s differ from the resume's" % (rid, s, a))
        sub, svc, dlv, cmp_, res = (spans[s] for s in SPANS)
        # submit <= start of service <= end of service <= delivery <= resume. (The delivery
        # publishes the status before it writes the fd: a job may resume before it ends.)
        order = [("submit", sub[1]), ("service begin", svc[1]), ("service end", svc[2]),
                 ("deliver begin", dlv[1]), ("resume begin", res[1]), ("resume end", res[2])]
        for (na, ta), (nb, tb) in zip(order, order[1:]):
            if ta > tb:
                fail("request %d: %s %d after %s %d" % (rid, na, ta, nb, tb))
        if cmp_[1] < dlv[2]:
            fail("request %d: on_complete before the delivery ended" % rid)
        if args["sync"]:
            sync += 1
            if not (sub[0] == svc[0] == dlv[0] == res[0]):
                fail("request %d: a synchronous request left its thread" % rid)
        else:
            if svc[0] == sub[0]:
                fail("request %d: an async request serviced on its submitting thread" % rid)
            if args["resumes"] < 1:
                fail("request %d: an async request that never paused" % rid)
        # The async slice covers the request; its phases lie inside it.
        outer = [a for a in r["async"] if a[0] == op]
        if len(outer) != 1:
            fail("request %d: %d async %s slices" % (rid, len(outer), op))
            continue
        ob, oe = outer[0][1], outer[0][2]
        if not (ob <= sub[1] and res[2] <= oe):
            fail("request %d: the async slice [%d, %d] does not cover its slices" % (rid, ob, oe))
        names = {a[0] for a in r["async"]}
        if "queued" not in names:
            fail("request %d: no queued phase" % rid)
        if args["retries"] and "eagain" not in names:
            fail("request %d: %d retries and no eagain phase" % (rid, args["retries"]))
        for name, b, e in r["async"]:
            if b > e or b < ob or e > oe:
                fail("request %d: async %s [%d, %d] outside [%d, %d]" % (rid, name, b, e, ob, oe))
        if r["open"]:
            fail("request %d: async slices never ended: %s" % (rid, sorted(r["open"])))
    return per_op, retries, sync


def check_threads(trace, tracks):
    names = {ev["tid"]: ev["args"]["name"] for ev in trace["traceEvents"]
             if ev["ph"] == "M" and ev["name"] == "thread_name"}
    for (_, tid) in tracks:
        if tid not in names:
            fail("thread %d has slices and no thread_name" % tid)
    if not any(n.startswith("simaccel-w") for n in names.values()):
        fail("no worker thread track (simaccel-wN): %s" % sorted(names.values()))
    if len(tracks) < 2:
        fail("all slices on %d track(s)" % len(tracks))
    if not any(ev["ph"] == "M" and ev["name"] == "process_name" for ev in trace["traceEvents"]):
        fail("no process_name")


def main():
    binary, args = sys.argv[1], sys.argv[2:]
    with tempfile.TemporaryDirectory() as work:
        trace_path = os.path.join(work, "trace.%p.json")
        stats_path = os.path.join(work, "stats.json")
        opts = ("trace-file=%s trace-limit=100000 stats-file=%s fault-busy=0.2 workers=2 "
                "latency=fixed:100us" % (trace_path, stats_path))
        n_fd, n_cb, n_sync = run(binary, args, opts, work)
        files = [f for f in os.listdir(work) if f.startswith("trace.") and f.endswith(".json")]
        if len(files) != 1:
            sys.exit("expected one trace.<pid>.json (%%p), found %s" % files)
        trace = load(os.path.join(work, files[0]))
        stats = load(stats_path)
        reqs = requests_of(trace)
        tracks = check_nesting(trace)
        per_op, retries, sync = check_requests(trace, reqs, set(stats["ops"]))
        check_threads(trace, tracks)
        n = n_fd + n_cb + n_sync
        if per_op["ecdsa-sign"] != n:
            fail("%d ecdsa-sign requests traced, the workload made %d" % (per_op["ecdsa-sign"], n))
        # Against the stats of the same run: every accepted request, every EAGAIN retry.
        for op, st in stats["ops"].items():
            if per_op[op] != st["submitted"]:
                fail("%s: %d traced, stats submitted %d" % (op, per_op[op], st["submitted"]))
            if retries[op] != st["retried"]:
                fail("%s: %d retries traced, stats retried %d" % (op, retries[op], st["retried"]))
        if sum(retries.values()) == 0:
            fail("fault-busy=0.2 and no EAGAIN retry traced")
        if sync < n_sync:
            fail("%d synchronous requests traced, at least %d expected" % (sync, n_sync))
        other = trace["otherData"]
        if other["requests"] != len(reqs) or other["full"] or other["unfinished"]:
            fail("otherData %s, %d requests" % (other, len(reqs)))
        print("full run: %d requests (%s), %d EAGAIN retries, %d synchronous, %d tracks"
              % (len(reqs), dict(per_op), sum(retries.values()), sync, len(tracks)))

        # The bound: fewer records than requests keeps exactly the first `limit`.
        limit = n // 2
        bounded = os.path.join(work, "bounded.json")
        run(binary, args, "trace-file=%s trace-limit=%d fault-busy=0.2" % (bounded, limit), work)
        trace = load(bounded)
        reqs = requests_of(trace)
        check_nesting(trace)
        check_requests(trace, reqs, set(stats["ops"]))
        if sorted(reqs) != list(range(limit)):
            fail("trace-limit=%d kept %d requests: ids %s..." % (limit, len(reqs), sorted(reqs)[:5]))
        if trace["otherData"]["requests"] != limit or trace["otherData"]["full"] is not True:
            fail("trace-limit=%d: otherData %s" % (limit, trace["otherData"]))
        print("bounded run: trace-limit=%d kept %d requests" % (limit, len(reqs)))
    if FAILS:
        sys.exit("%d check(s) failed" % len(FAILS))
    print("ok")


if __name__ == "__main__":
    main()
