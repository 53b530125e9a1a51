#!/usr/bin/env python3
"""Turns the raw results of bench/report.sh into gnuplot data files and the summary's tables.

  prepare.py speed SPEED_CSV OUTDIR          -> OUTDIR/speed.<alg>.dat, speed.<alg>.ref
  prepare.py cdf OUT_CSV NAME=STATS_JSON...  -> CSV model,class,upper_us,count,cdf
  prepare.py cdfdat CDF_CSV DAT              -> gnuplot blocks per model; the models on stdout
  prepare.py benchcsv JSON CSV               -> Google Benchmark JSON as CSV
  prepare.py handshakes CSV DAT MODE...      -> per certificate: median, min, max per mode
  prepare.py summary OUTDIR                  -> summary.md on stdout
  prepare.py cputime FILE CMD...             -> runs CMD; FILE = its CPU seconds (user + system,
                                                of it and its children); exits with its status
"""
import csv
import json
import os
import re
import resource
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import stats  # noqa: E402 (tools/stats.py: the one reader of the device's stats files)

ALGS = ["rsa2048", "ecdsap256", "ecdhp256"]
LATENCY_CLASS = "ecdsa-sign"


def read_speed(path, column="ops_per_s"):
    """{(configuration, algorithm): value of column}; ops_min/ops_max fall back to ops_per_s
    (files from a single round)."""
    rows = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            rows[(r["configuration"], r["algorithm"])] = float(r.get(column) or r["ops_per_s"] or 0)
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
    lo, hi = read_speed(speed_csv, "ops_min"), read_speed(speed_csv, "ops_max")
    for alg in ALGS:
        series, sw, multi = speed_series(rows, alg)
        lo_s, _, _ = speed_series(lo, alg)
        hi_s, _, _ = speed_series(hi, alg)
        jobs = sorted({j for s in series.values() for j, _ in s})
        with open(os.path.join(outdir, f"speed.{alg}.dat"), "w") as f:
            f.write("# async_jobs engine provider software multi2 engine_min engine_max "
                    "provider_min provider_max\n")
            for j in jobs:
                v = lambda ser, k: dict(ser[k]).get(j, "NaN")
                f.write(f"{j} {v(series, 'engine')} {v(series, 'provider')} {sw} {multi} "
                        f"{v(lo_s, 'engine')} {v(hi_s, 'engine')} "
                        f"{v(lo_s, 'provider')} {v(hi_s, 'provider')}\n")


def histogram(stats_path, cls):
    lat = stats.op_class(stats.load(stats_path), cls).get("latency_us", {})
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


def cmd_cdfdat(cdf_csv, dat_path):
    """gnuplot blocks, one per model, separated by two blank lines: upper_us cdf."""
    with open(cdf_csv) as f:
        rows = list(csv.DictReader(f))
    models = list(dict.fromkeys(r["model"] for r in rows))
    with open(dat_path, "w") as f:
        for i, m in enumerate(models):
            f.write("\n\n" if i else "")
            f.write(f"# {m}\n0 0\n")
            for r in rows:
                if r["model"] == m:
                    f.write(f"{r['upper_us']} {r['cdf']}\n")
    print(" ".join(models))


def cmd_cputime(out_path, *cmd):
    """The client's CPU time in bench/report.sh: it shares the cores with the server."""
    rc = subprocess.call(cmd)
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out_path, "w") as f:
        f.write(f"{u.ru_utime + u.ru_stime:.3f}\n")
    sys.exit(rc)


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


def machine_nproc(path):
    with open(path) as f:
        m = re.search(r"^nproc:\s*(\d+)", f.read(), re.M)
    return int(m.group(1)) if m else 0


def median(values):
    v = sorted(values)
    n = len(v)
    return (v[(n - 1) // 2] + v[n // 2]) / 2 if n else 0.0


def handshake_groups(rows):
    """{(cert, mode): [rows of every round]}, in the order they were run."""
    groups = {}
    for r in rows:
        groups.setdefault((r["cert"], r["mode"]), []).append(r)
    return groups


def cmd_handshakes(csv_path, dat_path, *modes):
    """gnuplot data: one row per certificate; per mode the median, min and max handshakes/s."""
    with open(csv_path) as f:
        groups = handshake_groups(csv.DictReader(f))
    with open(dat_path, "w") as f:
        f.write("cert " + " ".join(f"{m} {m}-min {m}-max" for m in modes) + "\n")
        for cert in dict.fromkeys(c for c, _ in groups):
            cols = []
            for m in modes:
                v = [float(r["handshakes_per_s"] or 0) for r in groups.get((cert, m), [])] or [0.0]
                cols += [f"{median(v):.1f}", f"{min(v):.1f}", f"{max(v):.1f}"]
            f.write(cert + " " + " ".join(cols) + "\n")


def handshake_section(hs, nproc, have_plot):
    """Section (b): the table, the async/sync ratios and the machine's ceiling.

    Every (certificate, mode) ran in several interleaved rounds: the table gives the median
    round's figures and the range of handshakes/s.

    The load generator runs on the same cores as the server. A synchronous server with one
    thread is bound by that thread; an offloaded one by the whole machine, which must also run
    the client. The same cryptography is done in every mode, so the most any mode can reach
    here is nproc / (server + client CPU per handshake), taking the cheapest median cost
    measured for the certificate (the client's cost per handshake varies with how busy it is
    kept, so no single mode's figure is the rule): the ceiling against which async is judged.
    """
    num = lambda r, k: float(r.get(k) or 0)
    groups = handshake_groups(hs)
    agg = {}
    for key, rows in groups.items():
        ok = [r for r in rows if r["status"] == "ok"] or rows
        med = lambda k: median([num(r, k) for r in ok])
        agg[key] = {
            "rounds": len(rows), "ok": sum(r["status"] == "ok" for r in rows),
            "hps": med("handshakes_per_s"),
            "lo": min(num(r, "handshakes_per_s") for r in ok),
            "hi": max(num(r, "handshakes_per_s") for r in ok),
            "handshakes": sum(int(num(r, "handshakes")) for r in rows),
            "failed": sum(int(num(r, "failed")) for r in rows),
            "server_cpu": med("server_cpu_cores"), "server_ms": med("server_cpu_ms_per_handshake"),
            "client_ms": med("client_cpu_ms_per_handshake"), "busy": med("machine_busy_pct"),
            # A count summed over the rounds; "-" for sync, or what a round said instead.
            "offloaded": sum(int(r["offloaded"]) for r in rows if r["offloaded"].isdigit())
            if any(r["offloaded"].isdigit() for r in rows) else rows[0]["offloaded"],
            "status": "ok" if all(r["status"] == "ok" for r in rows) else
            "; ".join(sorted({r["status"] for r in rows if r["status"] != "ok"})),
            "tls": rows[0]["tls"], "clients": rows[0]["clients"],
        }
    lines = ["## (b) TLS handshakes/s, HAProxy nbthread 1", "",
             "Each request is a new TLS connection (h2load `--h1`, `Connection: close`). Every "
             "mode ran in interleaved rounds; figures are the median round's, `range` the "
             "lowest and highest round, `handshakes`/`failed`/`offloaded ops` the sum over the "
             "rounds. Client and server share the machine's cores: `server cpu` is HAProxy's "
             "CPU (device threads included) in cores and in ms per handshake, `client ms` "
             "h2load's CPU per handshake, `machine busy` the whole machine's.", ""]
    cost = lambda a: a["server_ms"] + a["client_ms"]
    cheapest, ceiling = {}, {}
    for (cert, mode), a in agg.items():
        if cost(a) and a["ok"] and (cert not in cheapest or cost(a) < cost(cheapest[cert][1])):
            cheapest[cert] = (mode, a)
    for cert, (_, a) in cheapest.items():
        if nproc:
            ceiling[cert] = 1000.0 * nproc / cost(a)
    t = []
    for (cert, mode), a in agg.items():
        base = agg.get((cert, "sync"), {}).get("hps", 0)
        ratio = f"{a['hps'] / base:.2f}" if base and mode != "sync" else "-"
        of_ceiling = f"{100 * a['hps'] / ceiling[cert]:.0f} %" if cert in ceiling else "-"
        t.append([cert, mode, a["tls"], a["clients"], a["rounds"], a["handshakes"], a["failed"],
                  fmt(a["hps"], 1), f"{a['lo']:,.0f}–{a['hi']:,.0f}", ratio, of_ceiling,
                  f"{a['server_cpu']:.2f}", f"{a['server_ms']:.3f}", f"{a['client_ms']:.3f}",
                  f"{a['busy']:.0f}", a["offloaded"], a["status"]])
    lines += [table(["certificate", "mode", "TLS", "clients", "rounds", "handshakes", "failed",
                     "handshakes/s", "range", "x sync", "of ceiling", "server cpu", "server ms",
                     "client ms", "machine busy %", "offloaded ops", "status"], t), ""]
    for cert in dict.fromkeys(c for c, _ in agg):
        base = agg.get((cert, "sync"), {}).get("hps", 0)
        if not base:
            continue
        for (c, mode), a in agg.items():
            if c != cert or mode == "sync":
                continue
            ratio = a["hps"] / base
            verdict = ""
            if cert == "rsa3072":
                verdict = " (meets the 1.6x target)" if ratio >= 1.6 else " (misses the 1.6x target)"
            lines.append(f"- {cert}: ssl-mode-async + {mode[6:]} / sync = **{ratio:.2f}x**"
                         f" (rounds {a['lo'] / base:.2f}–{a['hi'] / base:.2f}){verdict}")
        if cert in ceiling:
            mode, a = cheapest[cert]
            lines.append(f"- {cert}: machine ceiling {ceiling[cert]:,.0f} handshakes/s = "
                         f"**{ceiling[cert] / base:.2f}x sync** ({nproc} cores / "
                         f"({a['server_ms']:.3f} ms server + {a['client_ms']:.3f} ms client CPU "
                         f"per handshake, the cheapest measured, in the {mode} rounds))")
    lines += ["", "`of ceiling` is the share of the most this machine could do with this client "
              "on the same cores: near 100 % means the cores are the limit, not simaccel. The "
              "ratio an offload can show against a one-thread sync server is bounded by that "
              "ceiling: on a machine with few cores the load generator takes a large share."]
    if have_plot:
        lines += ["", "![handshakes](handshakes.png)"]
    return lines + [""]


def cmd_summary(outdir):
    p = lambda *a: os.path.join(outdir, *a)
    lines = ["# simaccel benchmark report", ""]
    with open(p("machine.txt")) as f:
        lines += ["## Machine", "", "```", f.read().rstrip(), "```", ""]

    if os.path.exists(p("speed", "speed.csv")):
        rows = read_speed(p("speed", "speed.csv"))
        with open(p("speed", "speed.csv")) as f:
            nrounds = max((int(r.get("rounds") or 1) for r in csv.DictReader(f)), default=1)
        lines += ["## (a) openssl speed: ops/s against async_jobs", "",
                  "One `openssl speed` process; `software -multi 2` is the two-core reference that "
                  "offload from one process should approach (ratio 1.0). "
                  f"Every configuration ran {nrounds} time(s), interleaved: figures are medians, "
                  "the plots' bars the lowest and highest run.", ""]
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
        lines += handshake_section(hs, machine_nproc(p("machine.txt")),
                                   os.path.exists(p("handshakes.png")))

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

    if os.path.exists(p("tls_inproc.txt")):
        with open(p("tls_inproc.txt")) as f:
            text = f.read().rstrip()
        lines += ["## (e) in-process TLS handshakes (bench/tls_inproc.sh)", "",
                  "One event-loop thread: 32 server connections in `SSL_MODE_ASYNC` and their "
                  "synchronous clients (whose RSA verify runs outside a job, on the caller's "
                  "lane), RSA-3072, TLS 1.3; software without async against the engine and the "
                  "provider in their default configuration. Handshakes/s, median of the rounds.",
                  "", "```", text, "```", ""]
    print("\n".join(lines))


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    {"speed": lambda: cmd_speed(*args), "cdf": lambda: cmd_cdf(args[0], args[1:]),
     "cdfdat": lambda: cmd_cdfdat(*args), "benchcsv": lambda: cmd_benchcsv(*args),
     "handshakes": lambda: cmd_handshakes(*args), "summary": lambda: cmd_summary(*args),
     "cputime": lambda: cmd_cputime(*args)}[cmd]()
