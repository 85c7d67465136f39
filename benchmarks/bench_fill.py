"""Benchmark: fill Data!C4:L1003 of tpl_bench_big.xlsx with our filler vs openpyxl load+fill+save.

Run from the repo root:  python benchmarks/bench_fill.py [--repeat 3]
Each run happens in a fresh subprocess so peak RSS (ru_maxrss) belongs to that run alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "tests" / "fixtures" / "templates" / "synthetic" / "tpl_bench_big.xlsx"

CHILD = r"""
import io, json, resource, sys, time, warnings
sys.path.insert(0, sys.argv[3])
mode, path = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
cells = [(f"{c}{r}", r * 10 + i + 0.25) for r in range(4, 1004) for i, c in enumerate("CDEFGHIJKL")]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if mode == "ours":
    from exports.xlsx.fill import FillPlan
    t0 = time.perf_counter()
    c0 = time.process_time()
    plan = FillPlan()
    for ref, value in cells:
        plan.set(("Data", ref), value)
    out = plan.apply(data)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
else:
    import openpyxl
    t0 = time.perf_counter()
    c0 = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wb = openpyxl.load_workbook(io.BytesIO(data))
    ws = wb["Data"]
    for ref, value in cells:
        ws[ref] = value
    buf = io.BytesIO()
    wb.save(buf)
    out = buf.getvalue()
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": elapsed, "cpu": cpu, "peak_mb": peak / 1024, "baseline_mb": base / 1024, "out_bytes": len(out)}))
"""


def run(mode: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(TEMPLATE), str(REPO)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"template: {TEMPLATE.resolve()} ({TEMPLATE.stat().st_size / 1e6:.1f} MB), 10,000 cells Data!C4:L1003")
    results: dict[str, list[dict[str, float]]] = {"ours": [], "openpyxl": []}
    for _ in range(args.repeat):
        for mode in results:
            results[mode].append(run(mode))
    summary = {}
    for mode, runs in results.items():
        t = statistics.median(r["seconds"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        peak = max(r["peak_mb"] for r in runs)
        base = statistics.median(r["baseline_mb"] for r in runs)
        summary[mode] = (t, cpu, peak)
        each = ", ".join(format(r["seconds"], ".2f") for r in runs)
        print(
            f"{mode:9s} wall median {t:6.2f} s (runs: {each}), "
            f"CPU median {cpu:6.2f} s, peak RSS {peak:6.1f} MB (before fill: {base:5.1f} MB), "
            f"output {runs[0]['out_bytes'] / 1e6:.2f} MB"
        )
    print(
        f"speed: ours is {summary['openpyxl'][0] / summary['ours'][0]:.1f}x faster by wall time, "
        f"{summary['openpyxl'][1] / summary['ours'][1]:.1f}x by CPU time (target >= 4x); "
        f"peak memory ours {summary['ours'][2]:.0f} MB vs openpyxl {summary['openpyxl'][2]:.0f} MB"
    )


if __name__ == "__main__":
    main()
