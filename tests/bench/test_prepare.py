#!/usr/bin/env python3
"""bench/plot/prepare.py on fixed inputs: the ratios, medians, ranges and the machine's ceiling
it writes into summary.md, and the gnuplot data it writes, are the numbers worked out by hand
here. Usage: test_prepare.py PATH/TO/prepare.py"""
import os
import subprocess
import sys
import tempfile

PREPARE = sys.argv[1]
failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)


def run(*args):
    r = subprocess.run([sys.executable, PREPARE, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"prepare.py {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
    return r.stdout


HS_HEADER = ("cert,mode,round,tls,clients,seconds,handshakes,failed,handshakes_per_s,"
             "server_cpu_cores,server_cpu_ms_per_handshake,client_cpu_ms_per_handshake,"
             "machine_busy_pct,offloaded,status\n")
# RSA-3072, three rounds per mode. Medians: sync 410 handshakes/s, 2.45 ms server + 0.95 ms
# client; async-engine 640/s (range 600-660), 2.45 + 0.65 ms: the cheapest cost, so the ceiling
# is 2 cores / 3.10 ms = 645.16/s = 1.57 x sync, async at 99 % of it; 640 / 410 = 1.56 x sync.
# P-256: the async round failed, and its status must show.
HS_ROWS = """\
rsa3072,sync,1,TLSv1.2,64,10,4000,0,400.0,1.00,2.500,1.000,70,-,ok
rsa3072,async-engine,1,TLSv1.2,64,10,6000,0,600.0,1.50,2.400,0.600,99,6000,ok
rsa3072,sync,2,TLSv1.2,64,10,4200,0,420.0,1.00,2.400,0.900,70,-,ok
rsa3072,async-engine,2,TLSv1.2,64,10,6600,0,660.0,1.50,2.500,0.700,99,6600,ok
rsa3072,sync,3,TLSv1.2,64,10,4100,0,410.0,1.00,2.450,0.950,70,-,ok
rsa3072,async-engine,3,TLSv1.2,64,10,6400,0,640.0,1.50,2.450,0.650,99,6400,ok
p256,sync,1,TLSv1.2,64,10,10000,0,1000.0,0.50,0.500,0.500,80,-,ok
p256,async-engine,1,TLSv1.2,64,0,0,0,0.0,0,0,0,0,no stats,haproxy exit status 1
"""

SPEED = """\
configuration,algorithm,ops_per_s,ratio_vs_multi2,seconds,timing,rounds,ops_min,ops_max
software,rsa2048,4000.0,0.50,3,-elapsed,3,3900.0,4100.0
software -multi 2,rsa2048,8000.0,1.00,3,-elapsed,3,7900.0,8100.0
engine async_jobs 1,rsa2048,3000.0,0.38,3,-elapsed,3,2900.0,3100.0
engine async_jobs 4,rsa2048,7600.0,0.95,3,-elapsed,3,7000.0,7700.0
engine async_jobs 16,rsa2048,7200.0,0.90,3,-elapsed,3,7100.0,7300.0
"""

with tempfile.TemporaryDirectory() as d:
    with open(os.path.join(d, "machine.txt"), "w") as f:
        f.write("date:        now\nnproc:       2\n")
    with open(os.path.join(d, "handshakes.csv"), "w") as f:
        f.write(HS_HEADER + HS_ROWS)
    os.mkdir(os.path.join(d, "speed"))
    with open(os.path.join(d, "speed", "speed.csv"), "w") as f:
        f.write(SPEED)

    summary = run("summary", d)
    lines = summary.splitlines()
    check("- rsa3072: ssl-mode-async + engine / sync = **1.56x** (rounds 1.46–1.61) "
          "(misses the 1.6x target)" in lines, "async/sync ratio of the medians, rounds' range")
    check(any(l.startswith("- rsa3072: machine ceiling 645 handshakes/s = **1.57x sync** "
                           "(2 cores / (2.450 ms server + 0.650 ms client CPU") and
              "in the async-engine rounds" in l for l in lines),
          "ceiling from the cheapest median cost")
    row = next((l for l in lines if l.startswith("| rsa3072 | async-engine |")), "")
    cells = [c.strip() for c in row.strip("|").split("|")]
    check(len(cells) == 17, f"async row has 17 cells: {row}")
    if len(cells) == 17:
        check(cells[4] == "3", "rounds counted")
        check(cells[5] == "19000", "handshakes summed over the rounds")
        check(cells[7] == "640.0", "median handshakes/s")
        check(cells[8] == "600–660", "range of the rounds")
        check(cells[9] == "1.56", "x sync")
        check(cells[10] == "99 %", "share of the ceiling")
        check(cells[15] == "19000", "offloaded ops summed")
        check(cells[16] == "ok", "status")
    bad = next((l for l in lines if l.startswith("| p256 | async-engine |")), "")
    check(bad.rstrip(" |").endswith("haproxy exit status 1"), f"a failed round's status shows: {bad}")
    check("| no stats |" in bad, f"a round without a stats file says so: {bad}")

    check("| rsa2048 | engine | 4,000 | 8,000 | 3,000 | 7,600 (jobs 4) | 1.90 | 0.95 |" in lines,
          "speed: best job count and its ratios")
    check(any("ran 3 time(s)" in l for l in lines), "speed: rounds stated")

    dat = os.path.join(d, "hs.dat")
    run("handshakes", os.path.join(d, "handshakes.csv"), dat, "sync", "async-engine")
    with open(dat) as f:
        got = f.read().splitlines()
    check(got[0] == "cert sync sync-min sync-max async-engine async-engine-min async-engine-max",
          f"handshakes.dat header: {got[0]}")
    check("rsa3072 410.0 400.0 420.0 640.0 600.0 660.0" in got, f"handshakes.dat medians: {got}")

    run("speed", os.path.join(d, "speed", "speed.csv"), d)
    with open(os.path.join(d, "speed.rsa2048.dat")) as f:
        got = f.read().splitlines()
    check("4 7600.0 NaN 4000.0 8000.0 7000.0 7700.0 NaN NaN" in got,
          f"speed.rsa2048.dat: median, references, range: {got}")

if failures:
    sys.exit(f"{len(failures)} check(s) failed")
print("all checks passed")
