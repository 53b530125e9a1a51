#!/usr/bin/env python3
"""Turns the raw results of bench/report.sh into gnuplot data files and the summary's tables.

  prepare.py speed SPEED_CSV OUTDIR          -> OUTDIR/speed.<alg>.dat, speed.<alg>.ref
  prepare.py cdf OUT_CSV NAME=STATS_JSON...  -> CSV model,class,upper_us,count,cdf
  prepare.py benchcsv JSON CSV               -> Google Benchmark JSON as CSV
  prepare.py summary OUTDIR                  -> summary.md on stdout
"""
import csv
import json
import os
import re
import sys

ALGS = ["rsa2048", "ecdsap256", "ecdhp256"]
LATENCY_CLASS = "ecdsa-sign"


def read_speed(path):
    rows = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            rows[(r["configuration"], r["algorithm"])] = float(r["ops_per_s"] or 0)
    return rows


def speed_series(rows, alg):
    """{kind: [(jobs, ops)]} for engine/provider, and the two software references."""
    series = {"engine": [], "provider": []}
    for (conf, a), v in rows.items():
        m = re.fullmatch(r"(engine|provider) async_jobs (\d+)", conf)
        if a == alg and m:
            series[m.group(1)].append((int(m.group(2)), v))
    for s in series.values():
        s.sort()
    return series, rows.get(("software", alg), 0.0), rows.get(("software -multi 2", alg), 0.0)


def cmd_speed(speed_csv, outdir):
    rows = read_speed(speed_csv)
    for alg in ALGS:
        series, sw, multi = speed_series(rows, alg)
        jobs = sorted({j for s in series.values() for j, _ in s})
        with open(os.path.join(outdir, f"speed.{alg}.dat"), "w") as f:
            f.write("# async_jobs engine provider software multi2\n")
            for j in jobs:
                e = dict(series["engine"]).get(j, "NaN")
                p = dict(series["provider"]).get(j, "NaN")
                f.write(f"{j} {e} {p} {sw} {multi}\n")


def histogram(stats_path, cls):
    with open(stats_path) as f:
        doc = json.load(f)
    lat = doc.get("ops", {}).get(cls, {}).get("latency_us", {})
    return lat, lat.get("histogram_ns", [])


def cmd_cdf(out_csv, specs):
    with open(out_csv, "w") as f:
        f.write("model,class,upper_us,count,cdf\n")
        for spec in specs:
            name, path = spec.split("=", 1)
            _, buckets = histogram(path, LATENCY_CLASS)
            total = sum(c for _, c in buckets) or 1
            acc = 0
            for upper, count in sorted(buckets):
                acc += count
                f.write(f"{name},{LATENCY_CLASS},{upper / 1000:.3f},{count},{acc / total:.6f}\n")


def cmd_benchcsv(json_path, csv_path):
    with open(json_path) as f:
        runs = json.load(f).get("benchmarks", [])
    fixed = ["name", "iterations", "real_time", "cpu_time", "time_unit"]
    skip = set(fixed) | {"family_index", "per_family_instance_index", "run_name", "run_type",
                         "repetitions", "repetition_index", "threads"}
    extra = list(dict.fromkeys(k for r in runs for k in r if k not in skip))
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(fixed + extra)
        for r in runs:
            w.writerow([r.get(k, "") for k in fixed + extra])


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def fmt(v, nd=0):
    return f"{v:,.{nd}f}" if isinstance(v, (int, float)) else str(v)


def cmd_summary(outdir):
    p = lambda *a: os.path.join(outdir, *a)
    lines = ["# simaccel benchmark report", ""]
    with open(p("machine.txt")) as f:
        lines += ["## Machine", "", "```", f.read().rstrip(), "```", ""]

    if os.path.exists(p("speed", "speed.csv")):
        rows = read_speed(p("speed", "speed.csv"))
        lines += ["## (a) openssl speed: ops/s against async_jobs", "",
                  "One `openssl speed` process; `software -multi 2` is the two-core reference that "
                  "offload from one process should approach (ratio 1.0).", ""]
        t = []
        for alg in ALGS:
            series, sw, multi = speed_series(rows, alg)
            for kind in ("engine", "provider"):
                if not series[kind]:
                    continue
                j1 = dict(series[kind]).get(1, 0.0)
                bj, bv = max(series[kind], key=lambda x: x[1])
                t.append([alg, kind, fmt(sw), fmt(multi), fmt(j1), f"{bv:,.0f} (jobs {bj})",
                          f"{bv / sw:.2f}" if sw else "-", f"{bv / multi:.2f}" if multi else "-"])
        lines += [table(["algorithm", "module", "software 1 proc", "software -multi 2",
                         "async_jobs 1", "best", "best / software", "best / multi 2"], t), ""]
        lines += [f"![{alg}](speed.{alg}.png)" for alg in ALGS if os.path.exists(p(f"speed.{alg}.png"))]
        lines += [""]

    if os.path.exists(p("handshakes.csv")):
        with open(p("handshakes.csv")) as f:
            hs = list(csv.DictReader(f))
        lines += ["## (b) TLS handshakes/s, HAProxy nbthread 1", "",
                  "Each request is a new TLS connection (h2load `--h1`, `Connection: close`, "
                  "clients and duration below). Client and server share the machine's cores: "
                  "`server cpu` is HAProxy's CPU (device threads included) in cores, `machine busy` "
                  "the whole machine's.", ""]
        t = []
        sync = {r["cert"]: float(r["handshakes_per_s"]) for r in hs if r["mode"] == "sync"}
        for r in hs:
            base = sync.get(r["cert"], 0)
            hps = float(r["handshakes_per_s"])
            ratio = f"{hps / base:.2f}" if base and r["mode"] != "sync" else "-"
            t.append([r["cert"], r["mode"], r["tls"], r["clients"], r["seconds"], r["handshakes"],
                      r["failed"], fmt(hps, 1), ratio, r["server_cpu_cores"], r["machine_busy_pct"],
                      r["offloaded"], r["status"]])
        lines += [table(["certificate", "mode", "TLS", "clients", "s", "handshakes", "failed",
                         "handshakes/s", "x sync", "server cpu", "machine busy %", "offloaded ops",
                         "status"], t), ""]
        for cert in sorted(sync):
            for r in hs:
                if r["cert"] == cert and r["mode"] == "async-engine" and sync[cert]:
                    ratio = float(r["handshakes_per_s"]) / sync[cert]
                    if cert == "rsa3072":
                        verdict = "meets" if ratio >= 1.6 else "misses"
                        lines.append(f"- {cert}: ssl-mode-async + engine / sync = **{ratio:.2f}x** "
                                     f"({verdict} the 1.6x target)")
                    else:
                        lines.append(f"- {cert}: ssl-mode-async + engine / sync = **{ratio:.2f}x**")
        if os.path.exists(p("handshakes.png")):
            lines += ["", "![handshakes](handshakes.png)"]
        lines += [""]

    if os.path.exists(p("latency_cdf.csv")):
        lines += ["## (c) device request latency CDF", "",
                  f"`openssl speed -engine simaccel -async_jobs 8 ecdsap256`, class `{LATENCY_CLASS}`, "
                  "one run per latency model; latency is submission to completion, so queueing "
                  "behind the other jobs is included.", ""]
        t = []
        for name in sorted(f[4:-5] for f in os.listdir(outdir) if f.startswith("lat.") and f.endswith(".json")):
            lat, _ = histogram(p(f"lat.{name}.json"), LATENCY_CLASS)
            t.append([name, lat.get("count", 0), lat.get("p50", "-"), lat.get("p90", "-"),
                      lat.get("p99", "-"), lat.get("max", "-")])
        lines += [table(["latency model", "requests", "p50 µs", "p90 µs", "p99 µs", "max µs"], t), ""]
        if os.path.exists(p("latency_cdf.png")):
            lines += ["![latency CDF](latency_cdf.png)", ""]

    if os.path.exists(p("device_bench.csv")):
        lines += ["## (d) device round trip (bench/device_bench)", ""]
        t = []
        with open(p("device_bench.csv")) as f:
            bench_rows = list(csv.DictReader(f))
        for r in bench_rows:
            ips = r.get("items_per_second") or ""
            t.append([r["name"], r["iterations"], f"{float(r['real_time']):.2f} {r['time_unit']}",
                      f"{float(r['cpu_time']):.2f} {r['time_unit']}",
                      f"{float(ips):,.0f}" if ips else "-"])
        lines += [table(["benchmark", "iterations", "real time", "cpu time", "items/s"], t), ""]
    print("\n".join(lines))


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    {"speed": lambda: cmd_speed(*args), "cdf": lambda: cmd_cdf(args[0], args[1:]),
     "benchcsv": lambda: cmd_benchcsv(*args),
     "summary": lambda: cmd_summary(*args)}[cmd]()
