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
  stats.py contract FILE [RULE]      the `contract` section (strict, docs/strict.md): one line
                                     per rule, its name and count; with RULE its count alone
  stats.py table FILE                the classes the device saw, their counters and latency
                                     percentiles, then the resolved configuration
  stats.py rates OLD NEW             the watch lines of the interval between two snapshots
                                     of one process (the time between their mtimes)
  stats.py watch FILE [--every S] [--count N]
                                     like vmstat: every S seconds (default 1) one line per
                                     active op class with the rates since the previous
                                     snapshot (completed, submitted, EAGAIN, failed per
                                     second), requests in flight and the latency quantiles of
                                     that interval; N samples, then exit (default: until
                                     interrupted). FILE is rewritten by a running process with
                                     `stats-interval` (set it shorter than S).

The layout (docs/config.md, stats-file): {"ops": {CLASS: {"submitted": N, ..., "latency_us":
{...}}}, "contract": {RULE: {"count": N, "first": {...}}}, "inflight": N, "max_inflight": N, "workers": N, "config": {KEY: VALUE}}.
"""
import json
import os
import sys
import time


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


def contract(doc, path, rule=None):
    section = doc.get("contract")
    if not isinstance(section, dict):
        raise StatsError(f"{path}: no contract section")
    if rule is not None:
        if rule not in section:
            raise StatsError(f"{path}: no rule {rule} (rules: {', '.join(section)})")
        return str(section[rule]["count"])
    return "\n".join(f"{name} {entry['count']}" for name, entry in section.items())


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


def snapshot(path):
    """(mtime in ns, document), or None while the file does not exist yet. The writer replaces
    the file with rename(2): a reader sees the old or the new document, never a torn one."""
    try:
        st = os.stat(path)
        with open(path) as f:
            return st.st_mtime_ns, json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise StatsError(f"stats {path}: {e}") from None


def quantile(buckets, q):
    """The upper bound (ns) of the bucket holding quantile q of {upper bound: count}."""
    total = sum(buckets.values())
    if total <= 0:
        return None
    rank, seen = max(1, int(q * total + 0.5)), 0
    for upper in sorted(buckets):
        seen += buckets[upper]
        if seen >= rank:
            return upper
    return max(buckets)


def interval_rows(prev, cur, seconds):
    """One row per op class active between two documents: rates over `seconds`, in flight now,
    the latency quantiles (us) of the requests that completed in between."""
    rows = []
    for name, op in cur.get("ops", {}).items():
        old = prev.get("ops", {}).get(name, {})

        def delta(field):
            return op.get(field, 0) - old.get(field, 0)

        # A reset (RESET_STATS, a restart) makes counters go back: count from zero again.
        if delta("submitted") < 0 or delta("completed") < 0:
            old = {}
        d = {k: delta(k) for k in ("submitted", "completed", "failed", "busy", "cancelled")}
        if not any(d.values()) and not old:
            continue
        hist = {u: c for u, c in op.get("latency_us", {}).get("histogram_ns", [])}
        for u, c in old.get("latency_us", {}).get("histogram_ns", []):
            hist[u] = hist.get(u, 0) - c
        hist = {u: c for u, c in hist.items() if c > 0}
        inflight = op.get("submitted", 0) - op.get("completed", 0) - op.get("failed", 0) - \
            op.get("cancelled", 0)
        rows.append({"class": name, "ops": d["completed"] / seconds,
                     "submitted": d["submitted"] / seconds, "eagain": d["busy"] / seconds,
                     "failed": d["failed"] / seconds, "inflight": max(0, inflight),
                     "p50": quantile(hist, 0.50), "p90": quantile(hist, 0.90),
                     "p99": quantile(hist, 0.99)})
    return rows


WATCH_HEADER = (f"{'time':<9}{'op class':<14}{'ops/s':>9}{'subm/s':>9}{'eagain/s':>9}"
                f"{'fail/s':>8}{'inflt':>6}{'p50 us':>9}{'p90 us':>9}{'p99 us':>9}")


def watch_line(stamp, row):
    def us(ns):
        return "-" if ns is None else f"{ns / 1000:.1f}"
    return (f"{stamp:<9}{row['class']:<14}{row['ops']:>9.1f}{row['submitted']:>9.1f}"
            f"{row['eagain']:>9.1f}{row['failed']:>8.1f}{row['inflight']:>6}"
            f"{us(row['p50']):>9}{us(row['p90']):>9}{us(row['p99']):>9}")


def rates(old_path, new_path):
    old, new = snapshot(old_path), snapshot(new_path)
    for path, snap in ((old_path, old), (new_path, new)):
        if snap is None:
            raise StatsError(f"stats {path}: no such file")
    if new[0] <= old[0]:
        raise StatsError(f"{new_path} is not newer than {old_path}")
    rows = interval_rows(old[1], new[1], (new[0] - old[0]) / 1e9)
    stamp = time.strftime("%H:%M:%S", time.localtime(new[0] / 1e9))
    return "\n".join([WATCH_HEADER] + [watch_line(stamp, r) for r in rows])


def watch(path, every, count, out=sys.stdout):
    """Prints until `count` samples were printed (None: forever). The interval of a sample
    is the time between the writes of the two files compared (their mtimes), not the viewer's."""
    prev, printed, header_at = None, 0, 0
    waited = False
    while count is None or printed < count:
        snap = snapshot(path)
        if snap is None:
            if not waited:
                print(f"waiting for {path} (stats-file with stats-interval)", file=out, flush=True)
                waited = True
        elif prev is not None and snap[0] == prev[0]:
            print(f"{time.strftime('%H:%M:%S'):<9}unchanged: the writer stopped, or "
                  f"stats-interval is not shorter than {every}s", file=out, flush=True)
            printed += 1
        elif prev is not None:
            seconds = max(1e-3, (snap[0] - prev[0]) / 1e9)
            rows = interval_rows(prev[1], snap[1], seconds)
            if printed >= header_at:
                print(WATCH_HEADER, file=out)
                header_at = printed + 20
            stamp = time.strftime("%H:%M:%S")
            if not rows:
                print(f"{stamp:<9}{'(idle)':<14}", file=out)
            for row in rows:
                print(watch_line(stamp, row), file=out)
            out.flush()
            printed += 1
        if snap is not None:
            prev = snap
        if count is None or printed < count:
            time.sleep(every)
    return None


def watch_args(args):
    if not args:
        raise StatsError("watch: FILE [--every S] [--count N]")
    path, every, count, rest = args[0], 1.0, None, args[1:]
    while rest:
        if len(rest) < 2 or rest[0] not in ("--every", "--count"):
            raise StatsError(f"watch: bad arguments: {' '.join(rest)}")
        try:
            if rest[0] == "--every":
                every = float(rest[1])
                if not 0 < every <= 3600:
                    raise ValueError
            else:
                count = int(rest[1])
                if count < 1:
                    raise ValueError
        except ValueError:
            raise StatsError(f"watch: {rest[0]} {rest[1]}: expected "
                             f"{'seconds in (0, 3600]' if rest[0] == '--every' else 'an integer >= 1'}"
                             ) from None
        rest = rest[2:]
    return path, every, count


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
    if cmd == "contract" and len(args) in (1, 2):
        return contract(load(args[0]), args[0], args[1] if len(args) == 2 else None)
    if cmd == "table" and len(args) == 1:
        return table(load(args[0]))
    if cmd == "rates" and len(args) == 2:
        return rates(args[0], args[1])
    if cmd == "watch":
        try:
            return watch(*watch_args(args))
        except KeyboardInterrupt:
            return None
    raise StatsError(f"bad arguments: {' '.join(argv)}\nusage:\n{usage}")


if __name__ == "__main__":
    try:
        result = main(sys.argv[1:])
        if result is not None:
            print(result)
    except StatsError as e:
        sys.exit(f"stats.py: {e}")
