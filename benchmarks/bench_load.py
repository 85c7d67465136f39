"""Benchmark: 20 signed-in users browsing at once, four gunicorn workers on PostgreSQL, loopback only.

Usage:
    python benchmarks/bench_load.py                       # 20 users x 30 requests, at most 180 s
    python benchmarks/bench_load.py --users 20 --requests 40 --seconds 300
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres python benchmarks/bench_load.py

A fresh instance with the demo in a throw-away PostgreSQL database (dropped at the end),
served by ``gunicorn -w 4 'app:create_app()'`` on 127.0.0.1 with the production settings
(CSRF, sign-in limits, session checks). Each user signs in through the login form with
its own session (the demo's five accounts, shared out), then cycles through the grant
pages, budget vs actual and the indicator progress table of the grants it sees. Bounded:
each user stops after ``--requests`` requests or when ``--seconds`` have passed, and the
script stops the server itself. Prints errors (any answer but 200, or no answer),
requests per second and p50/p95 per page. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import requests
from support import scratch_database

ROOT = Path(__file__).resolve().parent.parent
PASSWORDS = {
    "admin": "Admin-Bench-pw-12",
    "finance": "Finance-Bench-pw-12",
    "program": "Program-Bench-pw-12",
    "donor.gf": "Donor-Bench-pw-12",
    "auditor": "Auditor-Bench-pw-12",
}
BROWSERS = ("finance", "program", "donor.gf", "admin", "auditor")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sign_in(base: str, username: str) -> requests.Session:
    session = requests.Session()
    form = session.get(base + "/login/", timeout=30).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form)
    response = session.post(
        base + "/login/",
        data={"username": username, "password": PASSWORDS[username], "csrf_token": token.group(1) if token else ""},
        allow_redirects=False,
        timeout=30,
    )
    if response.status_code != 302 or "/login" in response.headers.get("Location", ""):
        raise RuntimeError(f"{username} could not sign in ({response.status_code})")
    return session


def _pages(session: requests.Session, base: str) -> list[tuple[str, str]]:
    listing = session.get(base + "/grants/list/", timeout=60).text
    ids = sorted({int(i) for i in re.findall(r"/grants/show/(\d+)", listing)})
    pages = []
    for grant_id in ids:
        pages += [
            ("grant page", f"/grants/show/{grant_id}"),
            ("budget vs actual", f"/budget-report/grant/{grant_id}"),
            ("progress table", f"/indicator-progress/{grant_id}"),
        ]
    return pages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--requests", type=int, default=30, help="requests per user")
    parser.add_argument("--seconds", type=float, default=180.0, help="stop every user after this long")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    base_db = os.environ.get("BENCH_DATABASE_URL") or os.environ.get(
        "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    instance = Path(tempfile.mkdtemp(prefix="gk-bench-load-"))
    database_url, drop = scratch_database(base_db, instance, "bench")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTKEEPER_") and k != "DATABASE_URL"}
    env.update({"GRANTKEEPER_INSTANCE": str(instance), "DATABASE_URL": database_url})
    env.update({"GRANTKEEPER_PASSWORD_" + u.upper().replace(".", "_"): p for u, p in PASSWORDS.items()})
    server = None
    try:
        loaded = subprocess.run(
            [sys.executable, "run.py", "init", "--demo"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        if loaded.returncode != 0:
            print(loaded.stderr, file=sys.stderr)
            return 1
        gunicorn = shutil.which("gunicorn") or "gunicorn"
        server = subprocess.Popen(
            [gunicorn, "-w", str(args.workers), "-b", f"127.0.0.1:{port}", "--timeout", "120", "app:create_app()"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                requests.get(base + "/login/", timeout=2)
                break
            except requests.RequestException:
                if server.poll() is not None:
                    print("gunicorn exited", file=sys.stderr)
                    return 1
                time.sleep(0.2)

        sessions = [_sign_in(base, BROWSERS[n % len(BROWSERS)]) for n in range(args.users)]
        plans = [_pages(session, base) for session in sessions]
        timings: dict[str, list[float]] = defaultdict(list)
        errors: list[str] = []
        lock = threading.Lock()
        deadline = time.monotonic() + args.seconds

        def browse(number: int) -> None:
            session, plan = sessions[number], plans[number]
            if not plan:
                with lock:
                    errors.append(f"user {number}: no grant pages to browse")
                return
            for step in range(args.requests):
                if time.monotonic() > deadline:
                    return
                name, path = plan[(step + number) % len(plan)]
                started = time.perf_counter()
                try:
                    response = session.get(base + path, timeout=60, allow_redirects=False)
                    ok = response.status_code == 200
                    why = f"{response.status_code}"
                except requests.RequestException as exc:
                    ok, why = False, type(exc).__name__
                elapsed = time.perf_counter() - started
                with lock:
                    timings[name].append(elapsed)
                    if not ok:
                        errors.append(f"{path}: {why}")

        threads = [threading.Thread(target=browse, args=(n,)) for n in range(args.users)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        total = sum(len(v) for v in timings.values())
        print(
            f"{args.users} signed-in users, {args.workers} gunicorn workers, PostgreSQL, loopback; "
            f"{total} requests in {wall:.1f} s"
        )
        print(f"errors: {len(errors)}" + (f"  (first: {', '.join(errors[:5])})" if errors else ""))
        print(f"requests per second: {total / wall:.1f}")
        print(f"{'page':<18} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8}")
        for name in ("grant page", "budget vs actual", "progress table"):
            values = sorted(timings.get(name, []))
            if not values:
                continue
            p50 = statistics.median(values) * 1000
            p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))] * 1000
            print(f"{name:<18} {len(values):>8} {p50:>8.0f} {p95:>8.0f}")
        return 0
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        drop()
        shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
