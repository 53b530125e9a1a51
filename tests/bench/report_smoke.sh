#!/usr/bin/env bash
# bench/report.sh --quick, parts (b), (d) and (e): HAProxy handshakes in every mode against the
# build tree's modules, the round-trip microbenchmark and the in-process TLS handshakes. Every run succeeds with no failed handshake,
# the async rows show the private-key operations counted by the device, the plot is a PNG, and
# the summary and machine record say what ran.
source "$SIMACCEL_SOURCE_DIR/tests/cli/lib.sh"
require_python
for prog in haproxy h2load gnuplot; do
    command -v "$prog" >/dev/null || skip "$prog is not installed (scripts/install-deps.sh)"
done
[[ -x $SIMACCEL_BUILD_DIR/bench/device_bench ]] || skip "no device_bench in the build (SIMACCEL_BUILD_BENCH=OFF)"

out=$WORK/report
TIMEOUT=280 run "$SIMACCEL_SOURCE_DIR/bench/report.sh" --quick --only bde \
    --build "$SIMACCEL_BUILD_DIR" --out "$out" >&2 || fail "report.sh failed"
cat "$out/summary.md" >&2

python3 - "$out" <<'PY' || fail "report results are wrong"
import csv, os, sys
out = sys.argv[1]
rows = list(csv.DictReader(open(os.path.join(out, "handshakes.csv"))))
modes = {"sync"}
build = os.environ["SIMACCEL_BUILD_DIR"]
if os.path.exists(os.path.join(build, "engines-3", "simaccel.so")):
    modes.add("async-engine")
if os.path.exists(os.path.join(build, "ossl-modules", "simaccel.so")):
    modes.add("async-provider")
got = {(r["cert"], r["mode"]) for r in rows}
want = {(c, m) for c in ("rsa3072", "p256") for m in modes}
assert got == want, f"runs {sorted(got)}, want {sorted(want)}"
for r in rows:
    tag = f"{r['cert']} {r['mode']}"
    assert r["status"] == "ok", f"{tag}: {r['status']}"
    assert int(r["handshakes"]) >= 200 and r["failed"] == "0", f"{tag}: {r['handshakes']} / {r['failed']} failed"
    assert float(r["handshakes_per_s"]) > 0 and float(r["client_cpu_ms_per_handshake"]) > 0, tag
    if r["mode"] == "sync":
        assert r["offloaded"] == "-", f"{tag}: offloaded {r['offloaded']}"
    else:
        # Warm-up and run both went through the device: at least one operation per handshake.
        assert int(r["offloaded"]) >= int(r["handshakes"]), f"{tag}: offloaded {r['offloaded']} < {r['handshakes']}"
with open(os.path.join(out, "handshakes.png"), "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n", "handshakes.png is not a PNG"
bench = list(csv.DictReader(open(os.path.join(out, "device_bench.csv"))))
assert any(b["name"].startswith("BM_RoundTrip1") for b in bench), "no BM_RoundTrip1 in device_bench.csv"
machine = open(os.path.join(out, "machine.txt")).read()
for key in ("nproc:", "openssl:", "haproxy:", "h2load:", "load:", "parts bde"):
    assert key in machine, f"machine.txt lacks {key!r}"
assert all(":" in l for l in machine.splitlines()), f"stray line in machine.txt:\n{machine}"
summary = open(os.path.join(out, "summary.md")).read()
for part in ("## (b) TLS handshakes/s", "## (d) device round trip", "machine ceiling"):
    assert part in summary, f"summary.md lacks {part!r}"
if os.path.exists(os.path.join(build, "bench", "tls_inproc")):
    assert "## (e) in-process TLS handshakes" in summary, "summary.md lacks part (e)"
    tls = open(os.path.join(out, "tls_inproc.txt")).read()
    for cfg in ["software", "engine"] + (["provider"] if "async-provider" in modes else []):
        line = next((l for l in tls.splitlines() if l.startswith(cfg + " ")), None)
        assert line and float(line.split()[1]) > 0, f"tls_inproc.txt has no rate for {cfg}:\n{tls}"
assert "## (a)" not in summary and "## (c)" not in summary, "parts not asked for ran"
print("report: ok")
PY
say "ok"
