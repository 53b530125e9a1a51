#!/usr/bin/env bash
# bench/speed.sh, two short interleaved rounds at one job count: every configuration ran twice
# and offloaded through the device, and the CSV holds each median inside its range and the
# ratios against `-multi 2` worked out from the medians.
source "$SIMACCEL_SOURCE_DIR/tests/cli/lib.sh"
require_python

TIMEOUT=200 run "$SIMACCEL_SOURCE_DIR/bench/speed.sh" -s 1 -r 2 -j 2 --build "$SIMACCEL_BUILD_DIR" \
    -o "$WORK/speed" >&2 || fail "speed.sh failed"
csv=$WORK/speed/speed.csv
[[ -s $csv ]] || fail "no $csv"
cat "$csv" >&2

configs=2
[[ -f $SIMACCEL_BUILD_DIR/engines-3/simaccel.so ]] && configs=$((configs + 1))
[[ -f $SIMACCEL_BUILD_DIR/ossl-modules/simaccel.so ]] && configs=$((configs + 1))
python3 - "$csv" "$configs" <<'PY' || fail "speed.csv is wrong"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
want = int(sys.argv[2]) * 3
assert len(rows) == want, f"{len(rows)} rows, want {want}"
multi = {r["algorithm"]: float(r["ops_per_s"]) for r in rows if r["configuration"] == "software -multi 2"}
for r in rows:
    v, lo, hi = float(r["ops_per_s"]), float(r["ops_min"]), float(r["ops_max"])
    assert r["rounds"] == "2", f"{r['configuration']}: rounds {r['rounds']}"
    assert 0 < lo <= v <= hi, f"{r['configuration']} {r['algorithm']}: {lo} <= {v} <= {hi}"
    want = f"{v / multi[r['algorithm']]:.2f}"
    assert r["ratio_vs_multi2"] == want, f"{r['configuration']}: ratio {r['ratio_vs_multi2']} != {want}"
    assert r["timing"] == "-elapsed", r["timing"]
print("speed.csv: ok")
PY
# Each offloaded configuration wrote the device's stats: the rates are the device's.
for f in "$WORK"/speed/stats-*.json; do
    [[ -e $f ]] || fail "no stats file from an offloaded run"
    n=$(stats_value "$f" rsa-priv completed) || fail "stats: $f"
    ((n > 0)) || fail "$f: rsa-priv completed = $n"
done
say "ok"
