"""In a real browser: a large import leads to its job's page, which follows the job by itself (CSP-clean script)
until the worker — a separate ``run.py scheduler`` process — has run it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live import CHROMIUM, NO_CHROMIUM, ROOT, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=NO_CHROMIUM)]


@pytest.fixture(scope="module")
def server(demo_server: Any) -> Iterator[tuple[str, dict[str, str]]]:
    seen: dict[str, str] = {}
    # No job worker in the web process (--no-scheduler): the job waits until the scheduler process starts.
    url = demo_server(
        "jobs-server",
        environment={"GRANTKEEPER_JOB_IMPORT_ROWS": "1"},
        args=("serve", "--no-scheduler"),
        ready=lambda env: seen.update(env),
    )
    yield url, seen


def test_the_job_page_follows_a_large_import_until_the_worker_has_run_it(
    server: Any, browser: Any, page: Any, tmp_path: Path
):
    url, env = server
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    sign_in(page, url, "finance")
    csv = tmp_path / "actuals.csv"
    csv.write_text("Date,Line,Amount,Currency\n2026-02-03,HR-1,10.00,USD\n2026-02-04,HR-1,5.00,USD\n")
    page.goto(url + "/budget-imports/upload")
    page.set_input_files("#import-upload input[name=file]", str(csv))
    page.click("#import-upload button[type=submit], #import-upload input[type=submit]")
    page.wait_for_load_state()
    page.click("#import-mapping button[type=submit]")
    page.wait_for_load_state()

    assert "/jobs/" in page.url
    assert page.inner_text("#job-state") == "Waiting to start"
    assert page.get_attribute("#job-progress", "id") == "job-progress"  # a labelled <progress>
    assert page.inner_text("label[for=job-progress]")

    worker = subprocess.Popen(
        [sys.executable, "run.py", "scheduler"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        # No reload from the test: the page's own script sees the job end and shows its outcome.
        page.wait_for_selector("#job-result:not([hidden]), #job-error:not([hidden])", timeout=120_000)
    finally:
        worker.send_signal(signal.SIGINT)
        worker.communicate(timeout=60)
    outcome = page.inner_text("#job-result:not([hidden]), #job-error:not([hidden])")
    assert outcome.startswith(("Imported", "Nothing imported")), outcome
    assert page.inner_text("#job-state") in ("Finished", "Failed")
    assert "The import" in page.inner_text("#job-links")
    assert not [p for p in problems if "Content Security Policy" in p], problems

    # The job's page and the list of jobs pass axe (injected into a context of its own: our instrument).
    from tests.app.test_accessibility import axe_violations

    context = browser.new_context(bypass_csp=True)
    checker = context.new_page()
    sign_in(checker, url, "finance")
    for address in (page.url, url + "/jobs/"):
        checker.goto(address)
        assert axe_violations(checker) == [], address
    context.close()
