"""Benchmark: a 100,000-row expenditure ledger through write_report (our own sheet writer) vs bare openpyxl write-only.

Run from the repo root:  python benchmarks/bench_builtin.py [--rows 100000] [--repeat 3]
Each run is a fresh subprocess writing to a temporary file, so ru_maxrss is that run's peak.
Then peak memory at 50k / 100k / 500k rows shows that write_report stays flat.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import datetime as dt, json, os, resource, sys, tempfile, time
from decimal import Decimal
sys.path.insert(0, sys.argv[3])
mode, n = sys.argv[1], int(sys.argv[2])

def ledger():
    # Same data for both writers: 10 columns of a typical expenditure ledger.
    start = dt.date(2024, 1, 1)
    for i in range(n):
        yield [
            start + dt.timedelta(days=i % 365),
            f"EXP-{i:06d}",
            "Fuel for field monitoring visit" if i % 3 else "=not a formula, a description",
            f"{6000 + i % 40}",
            f"Budget line {i % 25}",
            Decimal(i % 9973) / 100,
            Decimal(i % 5000) / 100,
            (i % 100) / 100,
            i % 7,
            "USD",
        ]

fd, path = tempfile.mkstemp(suffix=".xlsx")
os.close(fd)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
c0 = time.process_time()
if mode == "ours":
    from exports.builtin import ReportColumn, ReportSheet, write_report
    cols = [ReportColumn("Date", "date"), ReportColumn("Voucher"), ReportColumn("Description", width=40),
            ReportColumn("Account"), ReportColumn("Budget line"), ReportColumn("Amount", "money"),
            ReportColumn("Amount (grant currency)", "money"), ReportColumn("Share", "percent"),
            ReportColumn("Receipts", "int"), ReportColumn("Currency")]
    write_report(path, [ReportSheet("Ledger", cols, ledger(), title_rows=["Expenditure ledger"])])
else:
    from openpyxl import Workbook
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Ledger")
    ws.append(["Date", "Voucher", "Description", "Account", "Budget line", "Amount", "Amount (grant currency)", "Share", "Receipts", "Currency"])
    for row in ledger():
        ws.append(row)
    wb.save(path)
elapsed = time.perf_counter() - t0
cpu = time.process_time() - c0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
size = os.path.getsize(path)
os.unlink(path)
print(json.dumps({"seconds": elapsed, "cpu": cpu, "peak_mb": peak / 1024, "baseline_mb": base / 1024, "out_bytes": size}))
"""


def run(mode: str, rows: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(rows), str(REPO)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"ours": [], "bare": []}
    cpus: dict[str, list[float]] = {"ours": [], "bare": []}
    peaks: dict[str, list[float]] = {"ours": [], "bare": []}
    for _ in range(args.repeat):
        for mode in times:  # interleaved, so load from other processes hits both alike
            r = run(mode, args.rows)
            times[mode].append(r["seconds"])
            cpus[mode].append(r["cpu"])
            peaks[mode].append(r["peak_mb"])
    for mode, label in (("ours", "write_report"), ("bare", "bare openpyxl write_only")):
        print(
            f"{label:26s} {args.rows:,} rows: wall median {statistics.median(times[mode]):6.2f} s "
            f"(runs: {', '.join(f'{t:.2f}' for t in times[mode])}), CPU median {statistics.median(cpus[mode]):6.2f} s, "
            f"peak RSS {max(peaks[mode]):.1f} MB"
        )
    wall = statistics.median(times["ours"]) / statistics.median(times["bare"])
    cpu = statistics.median(cpus["ours"]) / statistics.median(cpus["bare"])
    print(
        f"write_report / bare = {wall:.2f}x wall, {cpu:.2f}x CPU "
        f"(goal <= 0.50x: at least 2x faster; {1 / wall:.2f}x faster)"
    )
    print("memory vs rows (write_report, peak RSS of a fresh process):")
    peaks = []
    for rows in (50_000, 100_000, 500_000):
        r = run("ours", rows)
        print(
            f"  {rows:>7,} rows: {r['peak_mb']:6.1f} MB peak ({r['baseline_mb']:.1f} MB before writing), "
            f"{r['seconds']:.2f} s wall, {r['cpu']:.2f} s CPU, file {r['out_bytes'] / 1e6:.1f} MB"
        )
        peaks.append(r["peak_mb"])
    print(f"peak at 500k / peak at 50k = {peaks[-1] / peaks[0]:.2f}x (goal: flat, <= 1.10x)")


if __name__ == "__main__":
    main()
