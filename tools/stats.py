#!/usr/bin/env python3
"""Reads the device's stats files (`stats-file=`, one JSON document per process) and answers the
questions the test and benchmark scripts ask of them. Debian's python3 alone, no packages.

  stats.py get FILE CLASS FIELD      a counter of one op class (exit 1 if the class has none)
  stats.py top FILE KEY              a top-level value (max_inflight, workers, ...)
  stats.py sum FIELD FILE... [--class CLASS]
                                     FIELD summed over the files, of CLASS or of every class
                                     (a class a process never used counts 0)
  stats.py check FILE CLASS MIN      CLASS was offloaded asynchronously and cleanly:
                                     submitted == completed >= MIN, nothing failed or fell back
                                     to software, no more retries than busy refusals; prints
                                     the counters, exit 1 naming the first breach
  stats.py table FILE                the classes the device saw, their counters and latency
                                     percentiles, then the resolved configuration

The layout (docs/config.md, stats-file): {"ops": {CLASS: {"submitted": N, ..., "latency_us":
{...}}}, "inflight": N, "max_inflight": N, "workers": N, "config": {KEY: VALUE}}.
"""
import json
import sys


class StatsError(Exception):
    pass


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise StatsError(f"stats {path}: {e}") from None


def op_class(doc, cls):
    """The counters of one op class ({} when the device never saw it)."""
    return doc.get("ops", {}).get(cls, {})


def counter(doc, cls, field, path="stats"):
    ops = doc.get("ops", {})
    if cls not in ops or field not in ops[cls]:
        raise StatsError(f"{path}: no {cls}.{field}")
    return ops[cls][field]


def total(docs, field, cls=None):
    n = 0
    for doc in docs:
        classes = [op_class(doc, cls)] if cls else doc.get("ops", {}).values()
        n += sum(c.get(field, 0) for c in classes)
    return n


def check_offload(doc, cls, minimum, path="stats"):
    """The counters as one line; raises StatsError naming the first breach."""
    c = {k: counter(doc, cls, k, path) for k in ("submitted", "completed")}
    for k in ("failed", "busy", "retried", "fallback"):
        c[k] = op_class(doc, cls).get(k, 0)
    line = f"{cls}: " + " ".join(f"{k} {v}" for k, v in c.items())
    checks = [
        (c["submitted"] == c["completed"],
         f"submitted {c['submitted']} != completed {c['completed']}"),
        (c["completed"] >= minimum, f"completed {c['completed']} < {minimum}"),
        (c["failed"] == 0, f"failed {c['failed']}"),
        (c["fallback"] == 0, f"fell back to software {c['fallback']} times"),
        (c["retried"] <= c["busy"], f"retried {c['retried']} > busy {c['busy']}"),
    ]
    for ok, what in checks:
        if not ok:
            raise StatsError(f"{path}: {line}: {cls} {what}")
    return line


def table(doc):
    out = [f"{'op class':<14}{'submitted':>10}{'completed':>10}{'failed':>8}{'busy':>6}"
           f"{'p50 us':>10}{'p99 us':>10}"]
    for name, op in doc.get("ops", {}).items():
        lat = op.get("latency_us", {})
        out.append(f"{name:<14}{op.get('submitted', 0):>10}{op.get('completed', 0):>10}"
                   f"{op.get('failed', 0):>8}{op.get('busy', 0):>6}"
                   f"{lat.get('p50', 0):>10}{lat.get('p99', 0):>10}")
    out.append(f"workers {doc.get('workers')}, max in flight {doc.get('max_inflight')}")
    cfg = doc.get("config", {})
    out.append("config: " + " ".join(f"{k}={v}" for k, v in cfg.items() if v != "inherit"))
    return "\n".join(out)


def main(argv):
    usage = __doc__.split("\n\n")[1]
    if not argv:
        raise StatsError("usage:\n" + usage)
    cmd, args = argv[0], argv[1:]
    if cmd == "get" and len(args) == 3:
        return str(counter(load(args[0]), args[1], args[2], args[0]))
    if cmd == "top" and len(args) == 2:
        doc = load(args[0])
        if args[1] not in doc:
            raise StatsError(f"{args[0]}: no {args[1]}")
        return str(doc[args[1]])
    if cmd == "sum" and args:
        cls = None
        if "--class" in args:
            i = args.index("--class")
            if i + 1 >= len(args):
                raise StatsError("sum: --class wants a class")
            cls = args[i + 1]
            args = args[:i] + args[i + 2:]
        if len(args) < 2:
            raise StatsError("sum: FIELD FILE... [--class CLASS]")
        return str(total([load(p) for p in args[1:]], args[0], cls))
    if cmd == "check" and len(args) == 3:
        return check_offload(load(args[0]), args[1], int(args[2]), args[0])
    if cmd == "table" and len(args) == 1:
        return table(load(args[0]))
    raise StatsError(f"bad arguments: {' '.join(argv)}\nusage:\n{usage}")


if __name__ == "__main__":
    try:
        print(main(sys.argv[1:]))
    except StatsError as e:
        sys.exit(f"stats.py: {e}")
