"""Benchmark: the weight and speed of pages on a slow connection, beside the goals of issue 19.

Usage:
    python benchmarks/bench_pages.py             # the demo on a fresh instance, user "program"
    python benchmarks/bench_pages.py --runs 3    # median of 3 throttled loads per figure

For the landing page, the grant page and the result form, signed in as a program user, in
Debian's Chromium:
- first visit (empty browser cache) and repeat visit (the same page again): bytes over the
  wire (compressed bodies plus headers, from the DevTools protocol) and requests;
- the time to the load event of each under Chromium's network emulation at 750 kbit/s
  down and up with 100 ms latency (Network.emulateNetworkConditions).
Nothing is asserted; the goals are printed beside the figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.live import DESKTOP, chromium, cycle_pages, running_server, sign_in  # noqa: E402

KBIT = 1000 / 8  # bytes per second in one kbit/s
SLOW = {"offline": False, "latency": 100, "downloadThroughput": 750 * KBIT, "uploadThroughput": 750 * KBIT}
FAST = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
GOALS = {"first_kib": 250, "repeat_kib": 60, "repeat_requests": 5}
PAGES = ("landing page", "grant page", "result form")


class Recorder:
    """Counts requests and bytes received over the network through the DevTools protocol."""

    def __init__(self, cdp: Any) -> None:
        self.requests: set[str] = set()
        self.cached: set[str] = set()
        self.bytes = 0
        cdp.on("Network.requestWillBeSent", lambda event: self.requests.add(event["requestId"]))
        cdp.on("Network.requestServedFromCache", lambda event: self.cached.add(event["requestId"]))
        cdp.on("Network.loadingFinished", self._finished)

    def _finished(self, event: dict[str, Any]) -> None:
        self.bytes += int(event.get("encodedDataLength", 0))

    def reset(self) -> None:
        self.requests.clear()
        self.cached.clear()
        self.bytes = 0

    @property
    def network_requests(self) -> int:
        return len(self.requests - self.cached)


def visit(page: Any, cdp: Any, recorder: Recorder, url: str) -> dict[str, float]:
    recorder.reset()
    started = time.perf_counter()
    page.goto(url, wait_until="load")
    seconds = time.perf_counter() - started
    page.wait_for_timeout(300)  # late events of the load
    return {"kib": recorder.bytes / 1024, "requests": recorder.network_requests, "seconds": seconds}


def measure(browser: Any, server: str, path: str, runs: int) -> dict[str, dict[str, float]]:
    figures: dict[str, list[dict[str, float]]] = {"first": [], "repeat": []}
    for _ in range(runs):
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        sign_in(page, server, "program")
        recorder = Recorder(cdp)
        cdp.send("Network.clearBrowserCache")
        cdp.send("Network.emulateNetworkConditions", SLOW)
        figures["first"].append(visit(page, cdp, recorder, server + path))
        figures["repeat"].append(visit(page, cdp, recorder, server + path))
        cdp.send("Network.emulateNetworkConditions", FAST)
        context.close()
    return {
        kind: {key: statistics.median(run[key] for run in runs_) for key in ("kib", "requests", "seconds")}
        for kind, runs_ in figures.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1, help="throttled loads per figure (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as instance, running_server(Path(instance)) as server, chromium() as browser:
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        sign_in(page, server, "program")
        paths = {name: path for name, path in cycle_pages(page, server).items() if name in PAGES}
        context.close()
        print("750 kbit/s down and up, 100 ms latency; user 'program'; goals of issue 19 in brackets\n")
        header = f"{'page':<14} {'visit':<7} {'KiB':>8} {'requests':>9} {'load (s)':>9}   goal"
        print(header)
        print("-" * len(header))
        for name, path in paths.items():
            result = measure(browser, server, path, args.runs)
            for kind in ("first", "repeat"):
                row = result[kind]
                goal = ""
                if name == "grant page" and kind == "first":
                    goal = f"[<= {GOALS['first_kib']} KiB]"
                elif name == "grant page":
                    goal = f"[<= {GOALS['repeat_kib']} KiB, <= {GOALS['repeat_requests']} requests]"
                print(
                    f"{name if kind == 'first' else '':<14} {kind:<7} {row['kib']:>8.1f} {row['requests']:>9.0f}"
                    f" {row['seconds']:>9.2f}   {goal}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
