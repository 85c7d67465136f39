"""Benchmark the template filler against openpyxl load + fill + save.

1. 10,000 cells into Data!C4:L1003 of tests/fixtures/templates/synthetic/tpl_bench_big.xlsx
   (goal: ours at least 50x faster than openpyxl).
2. A template whose sheet part is about 40 MB (generated here: budget lines with
   labels, numbers and a SUM formula per row), 10,000 cells written across it
   (goal: peak memory of the fill within 150 MB).

Run from the repo root:
    python benchmarks/bench_fill.py [--repeat 3] [--big-mb 40] [--big-repeat 1] [--skip-openpyxl-big]
Each run happens in a fresh subprocess so its peak RSS (resource.getrusage ru_maxrss)
belongs to that run alone; the RSS before the fill (interpreter, imports, the template's
bytes) is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "tests" / "fixtures" / "templates" / "synthetic" / "tpl_bench_big.xlsx"
SPEED_GOAL = 50.0
MEMORY_GOAL_MB = 150.0

CHILD = r"""
import io, json, resource, sys, time, warnings
sys.path.insert(0, sys.argv[4])
mode, path, which = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(path, "rb").read()
if which == "small":
    sheet = "Data"
    cells = [(f"{c}{r}", r * 10 + i + 0.25) for r in range(4, 1004) for i, c in enumerate("CDEFGHIJKL")]
else:
    rows = int(sys.argv[5])
    step = max(rows // 10_000, 1)
    sheet = "Budget"
    cells = [(f"C{r}", r + 0.5) for r in range(2, rows + 2, step)][:10_000]
if mode == "ours":
    from exports.xlsx.fill import FillPlan
else:
    import openpyxl
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
c0 = time.process_time()
if mode == "ours":
    plan = FillPlan()
    for ref, value in cells:
        plan.set((sheet, ref), value)
    out = plan.apply(data)
else:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wb = openpyxl.load_workbook(io.BytesIO(data))
    ws = wb[sheet]
    for ref, value in cells:
        ws[ref] = value
    buf = io.BytesIO()
    wb.save(buf)
    out = buf.getvalue()
elapsed = time.perf_counter() - t0
cpu = time.process_time() - c0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": elapsed, "cpu": cpu, "peak_mb": peak / 1024, "baseline_mb": base / 1024,
                  "out_bytes": len(out), "cells": len(cells)}))
"""


def run(mode: str, path: Path, which: str, rows: int = 0, timeout: float | None = None) -> dict[str, float] | None:
    try:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, mode, str(path), which, str(REPO), str(rows)],
            capture_output=True,
            text=True,
            check=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None
    except subprocess.CalledProcessError as exc:
        print(f"  {mode} failed: {exc.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- a template with a big sheet part ---------------------------------------------------------

_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_R_NS = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'


def make_big_template(path: Path, target_mb: float) -> tuple[int, int]:
    """Write a one-sheet budget template whose sheet XML is about ``target_mb`` MB; (rows, part bytes)."""
    labels = ["Salaries", "Rent", "Travel", "Training", "Equipment", "Outreach", "Audit", "Communications"]
    head = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet {_NS} {_R_NS}>'
        '<dimension ref="A1:H2"/><sheetViews><sheetView workbookViewId="0"/></sheetViews>'
        '<cols><col min="1" max="1" width="30" customWidth="1"/><col min="3" max="7" width="14" style="1"/></cols>'
        '<sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
    )
    tail = '</sheetData><mergeCells count="1"><mergeCell ref="A1:B1"/></mergeCells></worksheet>'
    strings = ["Budget line", "Code", *labels]
    size = len(head) + len(tail)
    target = int(target_mb * 1_000_000)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
            '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
            "</Types>",
        )
        zf.writestr(
            "_rels/.rels",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>",
        )
        zf.writestr(
            "xl/workbook.xml",
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook {_NS} {_R_NS}>'
            '<sheets><sheet name="Budget" sheetId="1" r:id="rId1"/></sheets><calcPr calcId="191029"/></workbook>',
        )
        zf.writestr(
            "xl/_rels/workbook.xml.rels",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>'
            '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
            "</Relationships>",
        )
        zf.writestr(
            "xl/styles.xml",
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<styleSheet {_NS}>'
            '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
            '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>'
            '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
            '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
            '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
            '<xf numFmtId="4" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
            '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>',
        )
        zf.writestr(
            "xl/sharedStrings.xml",
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst {_NS} count="{len(strings)}" '
            f'uniqueCount="{len(strings)}">' + "".join(f"<si><t>{s}</t></si>" for s in strings) + "</sst>",
        )
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            fh.write(head.encode())
            r = 2
            batch: list[str] = []
            while size < target:
                label = 2 + r % len(labels)
                row = (
                    f'<row r="{r}" spans="1:8"><c r="A{r}" t="s"><v>{label}</v></c>'
                    f'<c r="B{r}"><v>{1000 + r}</v></c><c r="C{r}" s="1"/>'
                    f'<c r="D{r}" s="1"><v>{r % 997}.25</v></c><c r="E{r}" s="1"><v>{r % 389}.5</v></c>'
                    f'<c r="F{r}" s="1"><v>{r % 17}</v></c><c r="G{r}" s="1"/>'
                    f'<c r="H{r}" s="1"><f>SUM(C{r}:G{r})</f><v>{r % 997 + r % 389 + r % 17 + 0.75}</v></c></row>'
                )
                batch.append(row)
                size += len(row)
                r += 1
                if len(batch) == 2000:
                    fh.write("".join(batch).encode())
                    batch = []
            fh.write(("".join(batch) + tail).encode())
    return r - 2, size


def _line(label: str, runs: list[dict[str, float]]) -> str:
    t = statistics.median(r["seconds"] for r in runs)
    cpu = statistics.median(r["cpu"] for r in runs)
    peak = max(r["peak_mb"] for r in runs)
    base = statistics.median(r["baseline_mb"] for r in runs)
    each = ", ".join(format(r["seconds"], ".2f") for r in runs)
    return (
        f"{label:9s} wall median {t:7.2f} s (runs: {each}), CPU median {cpu:7.2f} s, "
        f"peak RSS {peak:7.1f} MB (before fill: {base:5.1f} MB), output {runs[0]['out_bytes'] / 1e6:.2f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big-mb", type=float, default=40.0, help="size of the generated sheet part (MB)")
    parser.add_argument("--big-repeat", type=int, default=1, help="runs of our fill on the big template")
    parser.add_argument("--skip-openpyxl-big", action="store_true", help="don't run openpyxl on the big template")
    parser.add_argument("--openpyxl-timeout", type=float, default=1800.0)
    args = parser.parse_args()

    print(
        f"1) template: {TEMPLATE.relative_to(REPO)} ({TEMPLATE.stat().st_size / 1e6:.1f} MB), 10,000 cells Data!C4:L1003"
    )
    results: dict[str, list[dict[str, float]]] = {"ours": [], "openpyxl": []}
    for _ in range(args.repeat):
        for mode in results:
            got = run(mode, TEMPLATE, "small")
            if got is not None:
                results[mode].append(got)
    for mode, runs in results.items():
        print("   " + _line(mode, runs))
    wall = statistics.median(r["seconds"] for r in results["openpyxl"]) / statistics.median(
        r["seconds"] for r in results["ours"]
    )
    cpu = statistics.median(r["cpu"] for r in results["openpyxl"]) / statistics.median(
        r["cpu"] for r in results["ours"]
    )
    verdict = "met" if wall >= SPEED_GOAL else "NOT met"
    print(
        f"   speed: ours is {wall:.1f}x faster by wall time, {cpu:.1f}x by CPU time (goal >= {SPEED_GOAL:.0f}x: {verdict})"
    )

    with tempfile.TemporaryDirectory(prefix="gk-bench-") as tmp:
        big = Path(tmp) / "big_sheet.xlsx"
        rows, part = make_big_template(big, args.big_mb)
        print(
            f"2) generated template: {rows:,} budget lines, sheet part {part / 1e6:.1f} MB, "
            f"file {big.stat().st_size / 1e6:.1f} MB; 10,000 cells written down column C"
        )
        ours = [r for r in (run("ours", big, "big", rows) for _ in range(args.big_repeat)) if r is not None]
        print("   " + _line("ours", ours))
        peak = max(r["peak_mb"] for r in ours)
        verdict = "met" if peak <= MEMORY_GOAL_MB else "NOT met"
        print(
            f"   memory: peak RSS {peak:.0f} MB for a {part / 1e6:.0f} MB sheet part "
            f"({peak / (part / 2**20):.1f}x the part; goal <= {MEMORY_GOAL_MB:.0f} MB: {verdict})"
        )
        if args.skip_openpyxl_big:
            print("   openpyxl: skipped (--skip-openpyxl-big)")
            return
        theirs = run("openpyxl", big, "big", rows, timeout=args.openpyxl_timeout)
        if theirs is None:
            print(f"   openpyxl: could not open and save it within {args.openpyxl_timeout:.0f} s")
            return
        print("   " + _line("openpyxl", [theirs]))
        print(
            f"   ours vs openpyxl: {theirs['seconds'] / statistics.median(r['seconds'] for r in ours):.1f}x faster, "
            f"{theirs['peak_mb'] / peak:.1f}x less peak memory"
        )


if __name__ == "__main__":
    main()
