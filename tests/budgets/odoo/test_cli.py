"""``python run.py sync-odoo`` end to end: a demo instance, a fake Odoo on the network, the settings in the environment."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.budgets.odoo.conftest import SECRET, odoo_env

ROOT = Path(__file__).resolve().parents[3]
HIV = "RCM-HIV-2026-SW"


def run(instance: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GRANTKEEPER_") and k != "DATABASE_URL"}
    clean["GRANTKEEPER_INSTANCE"] = str(instance)
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "run.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=180
    )


def query(instance: Path, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(instance / "grantkeeper.db") as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    instance = tmp_path_factory.mktemp("odoo-demo")
    result = run(instance, "init", "--demo")
    assert result.returncode == 0, result.stderr
    return instance


def _enable_demo_link(instance: Path) -> None:
    with sqlite3.connect(instance / "grantkeeper.db") as conn:
        conn.execute("UPDATE odoo_links SET enabled = 1")


def test_the_demo_links_grant_1_switched_off_so_nothing_is_contacted(demo):
    rows = query(
        demo, "SELECT l.enabled, l.company_currency, g.reference FROM odoo_links l JOIN grants g ON g.id = l.grant_id"
    )
    assert rows == [(0, "XCD", HIV)]
    assert query(demo, "SELECT count(*) FROM odoo_account_maps")[0][0] == 7
    result = run(demo, "sync-odoo")
    assert result.returncode == 0 and "nothing to sync" in result.stdout
    one = run(demo, "sync-odoo", "--grant", HIV)
    assert one.returncode == 2 and f"the Odoo link of {HIV} is switched off" in one.stderr


def test_sync_odoo_story_from_first_import_to_refusal(demo, odoo):
    _enable_demo_link(demo)
    # Demo Odoo: analytic account 12 in the "Grants" plan; 611 salaries → HR-01, 621 air travel → TRC-01.
    odoo.add_line(
        1, "2026-01-31", -2700.00, account=12, general=(611, "611000 Salaries and wages"), name="Coordinator January"
    )
    odoo.add_line(2, "2026-02-10", -540.00, account=12, general=(621, "621000 Air travel"))
    odoo.add_line(3, "2026-02-11", -100.00, account=12, general=(699, "699000 Bank charges"))

    missing = run(demo, "sync-odoo")
    assert missing.returncode == 2 and "GRANTKEEPER_ODOO_API_KEY" in missing.stderr

    wrong = run(demo, "sync-odoo", env=odoo_env(odoo, api_key="wrong-key-789"))
    assert wrong.returncode == 2 and "refused the login 'sync'" in wrong.stderr
    assert "wrong-key-789" not in wrong.stdout + wrong.stderr

    first = run(demo, "sync-odoo", env=odoo_env(odoo, "xmlrpc"))
    assert first.returncode == 0, first.stderr
    assert f"{HIV}: full sync (first sync), 3 Odoo lines read: 2 created, 0 updated, 0 removed" in first.stdout
    assert "699000 Bank charges (Odoo account 699): 1 line, 100.00 XCD" in first.stdout
    assert query(
        demo,
        "SELECT external_ref, amount, converted_amount FROM expenditures WHERE external_ref LIKE 'odoo:odoo:%' "
        "ORDER BY external_ref",
    ) == [("odoo:odoo:1", 2700, 1000), ("odoo:odoo:2", 540, 200)]

    again = run(demo, "sync-odoo", "--grant", HIV, env=odoo_env(odoo))
    assert (
        again.returncode == 0
        and "sync of changes, 3 Odoo lines read: 0 created, 0 updated, 0 removed, 2 unchanged" in again.stdout
    )

    odoo.delete_line(2)
    full = run(demo, "sync-odoo", "--full", env=odoo_env(odoo))
    assert full.returncode == 0 and "1 removed" in full.stdout

    odoo.add_line(
        4,
        "2028-03-01",
        -27.00,
        account=12,
        general=(611, "611000 Salaries and wages"),
        write_date="2026-08-01 10:00:00",
    )
    refused = run(demo, "sync-odoo", env=odoo_env(odoo))
    assert refused.returncode == 2
    assert f"error: {HIV}: Odoo line 4 (2028-03-01, 611000 Salaries and wages, 27.00 XCD)" in refused.stderr
    assert f"outside grant {HIV}" in refused.stderr
    assert query(demo, "SELECT count(*) FROM expenditures WHERE external_ref LIKE 'odoo:odoo:%'")[0][0] == 1
    assert query(demo, "SELECT last_status FROM odoo_links") == [("refused",)]
    for output in (first, again, full, refused):
        assert SECRET not in output.stdout + output.stderr
    audited = query(
        demo,
        "SELECT DISTINCT username, source FROM audit_log WHERE table_name = 'expenditures' AND username = 'odoo-sync'",
    )
    assert audited == [("odoo-sync", "sync")]


def test_a_sync_killed_half_way_leaves_the_previous_state_and_the_next_sync_runs(demo, odoo):
    import signal
    import threading
    import time

    _enable_demo_link(demo)
    odoo.add_line(11, "2026-01-31", -2700.00, account=12, general=(611, "611000 Salaries and wages"))
    first = run(demo, "sync-odoo", "--grant", HIV, "--full", "--confirm-removals", env=odoo_env(odoo))
    assert first.returncode == 0, first.stderr
    before = query(demo, "SELECT external_ref, amount FROM expenditures WHERE source = 'odoo' ORDER BY external_ref")
    assert not [ref for ref, _ in before if ref.startswith("demo-odoo-")]  # a real sync took the demo's rows away
    status_before = query(demo, "SELECT last_status, last_message, last_write_date FROM odoo_links")

    odoo.cancel(11)
    odoo.add_line(12, "2026-02-28", -540.00, account=12, general=(621, "621000 Air travel"))
    odoo.hang, odoo.hang_after = threading.Event(), odoo.requests + 2  # login and the account check answer
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GRANTKEEPER_") and k != "DATABASE_URL"}
    process = subprocess.Popen(
        [sys.executable, "run.py", "sync-odoo", "--grant", HIV],
        cwd=ROOT,
        env={**clean, "GRANTKEEPER_INSTANCE": str(demo), **odoo_env(odoo)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(1200):  # the sync is reading its lines from Odoo
            if odoo.requests > odoo.hang_after or process.poll() is not None:
                break
            time.sleep(0.1)
        assert process.poll() is None and odoo.requests > odoo.hang_after
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        odoo.hang.set()
        odoo.hang = None

    assert (
        query(demo, "SELECT external_ref, amount FROM expenditures WHERE source = 'odoo' ORDER BY external_ref")
        == before
    )
    assert query(demo, "SELECT last_status, last_message, last_write_date FROM odoo_links") == status_before
    after = run(demo, "sync-odoo", "--grant", HIV, "--confirm-removals", env=odoo_env(odoo))
    assert after.returncode == 0, after.stderr
    assert "1 created" in after.stdout and "1 removed" in after.stdout
