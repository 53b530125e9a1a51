#!/usr/bin/env python3
"""tools/stats.py on fixed stats files: each question the scripts ask gets the answer worked out
by hand here, and each breach of the offload check fails with a message naming it.
Usage: test_stats.py PATH/TO/stats.py"""
import json
import os
import subprocess
import sys
import tempfile


def op(sub, comp, failed=0, busy=0, retried=0, fallback=0):
    return {"submitted": sub, "completed": comp, "failed": failed, "busy": busy,
            "retried": retried, "fallback": fallback, "software": 0,
            "latency_us": {"count": comp, "p50": 90.5, "p99": 150.0, "histogram_ns": []}}


FILES = {
    "a": {"rsa-priv": op(120, 120, busy=5, retried=5), "ecdsa-sign": op(30, 30)},
    "b": {"ecdsa-sign": op(12, 12)},
    "unequal": {"rsa-priv": op(10, 9)},
    "failed": {"rsa-priv": op(10, 10, failed=1)},
    "fallback": {"rsa-priv": op(10, 10, fallback=2)},
    "retried": {"rsa-priv": op(10, 10, busy=1, retried=2)},
    # Two snapshots of one process 2 s apart (their mtimes are set below).
    "t0": {"rsa-priv": dict(op(100, 100, busy=2), latency_us={"histogram_ns": [[100000, 100]]})},
    "t1": {"rsa-priv": dict(op(300, 290, failed=5, busy=12),
                            latency_us={"histogram_ns": [[100000, 150], [200000, 140]]})},
}
MTIMES = {"t0": 1000, "t1": 1002}
# (what, arguments ({name} = that file's path), exit status, texts expected in stdout when it
# succeeds, in stderr when it fails).
CASES = [
    ("get: a counter", "get {a} rsa-priv completed", 0, ["120"]),
    ("get: a class the device never saw", "get {b} rsa-priv completed", 1,
     ["no rsa-priv.completed"]),
    ("top: max_inflight", "top {a} max_inflight", 0, ["7"]),
    ("sum: one class over two files", "sum completed {a} {b} --class ecdsa-sign", 0, ["42"]),
    ("sum: an unused class counts 0", "sum completed {b} --class rsa-priv", 0, ["0"]),
    ("sum: every class over two files", "sum completed {a} {b}", 0, ["162"]),
    ("check: a clean offload", "check {a} rsa-priv 120", 0,
     ["submitted 120 completed 120", "busy 5 retried 5"]),
    ("check: fewer than MIN", "check {a} rsa-priv 121", 1, ["completed 120 < 121"]),
    ("check: submitted != completed", "check {unequal} rsa-priv 1", 1,
     ["submitted 10 != completed 9"]),
    ("check: a failed request", "check {failed} rsa-priv 1", 1, ["rsa-priv failed 1"]),
    ("check: a software fallback", "check {fallback} rsa-priv 1", 1,
     ["fell back to software 2 times"]),
    ("check: more retries than refusals", "check {retried} rsa-priv 1", 1,
     ["retried 2 > busy 1"]),
    ("table: classes, percentiles, configuration", "table {a}", 0,
     ["rsa-priv", "90.5", "max in flight 7", "config: workers=2"]),
    # 190 completed, 200 submitted, 10 refused, 5 failed in 2 s; 5 in flight; the interval's
    # histogram is 50 x 100 us + 140 x 200 us: p50 and p99 in the 200 us bucket.
    ("rates: deltas of two snapshots over their mtimes", "rates {t0} {t1}", 0,
     ["rsa-priv", " 95.0 ", " 100.0 ", " 5.0 ", " 2.5 ", " 5 ", " 200.0"]),
    ("rates: the older file second", "rates {t1} {t0}", 1, ["is not newer than"]),
    ("watch: a bad interval", "watch {t0} --every 0", 1, ["seconds in (0, 3600]"]),
    ("watch: a bad count", "watch {t0} --count x", 1, ["an integer >= 1"]),
    ("an unreadable file", "get {missing} rsa-priv completed", 1, ["missing.json"]),
    ("an unknown command", "nonsense", 1, ["usage"]),
]

failures = 0
with tempfile.TemporaryDirectory() as d:
    paths = {"missing": os.path.join(d, "missing.json")}
    for name, ops in FILES.items():
        paths[name] = os.path.join(d, f"{name}.json")
        with open(paths[name], "w") as f:
            json.dump({"ops": ops, "inflight": 0, "max_inflight": 7, "workers": 2,
                       "config": {"workers": "2", "latency-rsa-priv": "inherit"}}, f)
        if name in MTIMES:
            os.utime(paths[name], (MTIMES[name], MTIMES[name]))
    for what, args, rc, wants in CASES:
        r = subprocess.run([sys.executable, sys.argv[1], *args.format(**paths).split()],
                           capture_output=True, text=True)
        text = r.stdout if rc == 0 else r.stderr
        ok = r.returncode == rc and all(w in text for w in wants)
        if what.startswith("table"):
            ok = ok and "inherit" not in text
        print(("ok    " if ok else "FAIL  ") + what + ("" if ok else f": exit {r.returncode}, {text!r}"))
        failures += not ok
sys.exit(f"{failures} case(s) failed" if failures else 0)
