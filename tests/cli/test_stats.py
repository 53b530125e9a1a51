#!/usr/bin/env python3
"""tools/stats.py on fixed stats files: each question the scripts ask gets the answer worked out
by hand here, and each breach of the offload check fails with a message naming it.
Usage: test_stats.py PATH/TO/stats.py"""
import json
import os
import subprocess
import sys
import tempfile

STATS = sys.argv[1]
failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)


def run(*args):
    r = subprocess.run([sys.executable, STATS, *args], capture_output=True, text=True)
    return r.returncode, r.stdout.strip(), r.stderr.strip()


def op(sub, comp, failed=0, busy=0, retried=0, fallback=0):
    return {"submitted": sub, "completed": comp, "failed": failed, "busy": busy,
            "retried": retried, "fallback": fallback, "software": 0,
            "latency_us": {"count": comp, "p50": 90.5, "p99": 150.0, "histogram_ns": []}}


with tempfile.TemporaryDirectory() as d:
    def write(name, ops, **top):
        path = os.path.join(d, name)
        with open(path, "w") as f:
            json.dump({"ops": ops, "inflight": 0, "max_inflight": 7, "workers": 2,
                       "config": {"workers": "2", "latency-rsa-priv": "inherit"}, **top}, f)
        return path

    a = write("a.json", {"rsa-priv": op(120, 120, busy=5, retried=5), "ecdsa-sign": op(30, 30)})
    b = write("b.json", {"ecdsa-sign": op(12, 12)})
    bad = {
        "unequal": write("u.json", {"rsa-priv": op(10, 9)}),
        "failed": write("f.json", {"rsa-priv": op(10, 10, failed=1)}),
        "fallback": write("s.json", {"rsa-priv": op(10, 10, fallback=2)}),
        "retried": write("r.json", {"rsa-priv": op(10, 10, busy=1, retried=2)}),
    }

    check(run("get", a, "rsa-priv", "completed")[:2] == (0, "120"), "get: a counter")
    rc, _, err = run("get", b, "rsa-priv", "completed")
    check(rc == 1 and "no rsa-priv.completed" in err, "get: a class the device never saw fails")
    check(run("top", a, "max_inflight")[:2] == (0, "7"), "top: max_inflight")
    check(run("sum", "completed", a, b, "--class", "ecdsa-sign")[:2] == (0, "42"),
          "sum: one class over two files")
    check(run("sum", "completed", b, "--class", "rsa-priv")[:2] == (0, "0"),
          "sum: an unused class counts 0")
    check(run("sum", "completed", a, b)[:2] == (0, "162"), "sum: every class over two files")
    rc, out, _ = run("check", a, "rsa-priv", "120")
    check(rc == 0 and "submitted 120 completed 120" in out and "busy 5 retried 5" in out,
          "check: a clean offload passes and prints its counters")
    rc, _, err = run("check", a, "rsa-priv", "121")
    check(rc == 1 and "completed 120 < 121" in err, "check: fewer than MIN fails")
    for what, path in bad.items():
        rc, _, err = run("check", path, "rsa-priv", "1")
        want = {"unequal": "submitted 10 != completed 9", "failed": "failed 1",
                "fallback": "fell back to software 2 times", "retried": "retried 2 > busy 1"}[what]
        check(rc == 1 and want in err, f"check: {what} fails ({want})")
    rc, out, _ = run("table", a)
    check(rc == 0 and "rsa-priv" in out and "90.5" in out and "max in flight 7" in out
          and "workers=2" in out and "inherit" not in out, "table: classes, percentiles, config")
    rc, _, err = run("get", os.path.join(d, "missing.json"), "rsa-priv", "completed")
    check(rc == 1 and "missing.json" in err, "an unreadable file fails naming it")
    check(run("nonsense")[0] == 1, "an unknown command fails")

sys.exit(f"{len(failures)} check(s) failed" if failures else 0)
