"""Background jobs seen from the web: a real huey consumer over the SQLite queue file, two web workers.

``web_one`` and ``web_two`` are two app instances on the same database and queue
file, as two web workers would be; ``web_two`` also runs the consumer threads
(as ``run.py serve`` does on one machine). Jobs started on one are followed on
the other.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.budgets.conftest import budget  # noqa: F401  (fixture)
from tests.conftest import PASSWORD, login, make_app

RELEASE = threading.Event()
ROOT = Path(__file__).resolve().parents[2]


def _lines(session: Any, params: dict[str, Any], progress: Any) -> Any:
    """A stand-in for a long import: says how far it got, then waits to be let go."""
    from core.jobs import JobFailed, JobOutcome

    progress("Reading the lines", 412, 1000)
    if not RELEASE.wait(timeout=60):
        raise JobFailed("The test never let the job go.")
    progress("Reading the lines", 1000, 1000)
    return JobOutcome("Read 1,000 lines.", counts={"read": 1000})


@pytest.fixture(scope="module")
def queue_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('queue') / 'jobs-queue.db'}"


@pytest.fixture(scope="module")
def web_one(app, instance_path, database_url, queue_file):
    return make_app(instance_path, database_url, JOBS_IMMEDIATE=False, QUEUE_URL=queue_file, JOB_IMPORT_ROWS=1)


@pytest.fixture(scope="module")
def web_two(app, instance_path, database_url, queue_file):
    return make_app(instance_path, database_url, JOBS_IMMEDIATE=False, QUEUE_URL=queue_file)


@pytest.fixture
def slow_kind() -> Iterator[None]:
    from core.jobs import JOBS, JobKind

    RELEASE.clear()
    JOBS.add("test_lines", JobKind("Reading lines", _lines, unit="lines"))
    yield
    RELEASE.set()
    JOBS.remove("test_lines")


@pytest.fixture
def consumer(web_two, world) -> Iterator[Any]:
    """The job worker: huey's consumer threads in web_two's process, over the queue file."""
    from core.jobs import queue_of

    queue = queue_of(web_two)
    queue.huey.flush()  # nothing left over from an earlier test
    queue.progress_every = 0.0
    with queue.running() as running:
        yield running
    RELEASE.set()


def _client(application: Any, username: str) -> Any:
    return login(application.test_client(), username)


def _submit(application: Any, kind: str, grant_id: int | None, username: str = "finance") -> int:
    from core.extensions import db
    from core.jobs import queue_of

    with application.app_context():
        user = application.appbuilder.sm.find_user(username=username)
        return queue_of(application).submit(db.session, kind, grant_id, {}, user).id


def _wait_for(client: Any, job_id: int, condition: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Ask the JSON status until ``condition`` holds (a worker in another thread is doing the work)."""
    status: dict[str, Any] = {}
    for _ in range(600):
        status = client.get(f"/jobs/{job_id}/status.json").get_json()
        if condition(status):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never got there: {status}")


def test_a_jobs_progress_is_visible_from_another_web_worker_and_its_page_survives_a_reload(
    web_one, web_two, world, consumer, slow_kind
):
    job_id = _submit(web_one, "test_lines", world.grant_a)
    other_worker = _client(web_two, "finance")
    status = _wait_for(other_worker, job_id, lambda s: s["done"] == 412)
    assert status["state"] == "running" and status["progress"] == "412 of 1,000 lines"
    assert status["stage"] == "Reading the lines" and status["requested_by"] == "finance"

    page = _client(web_one, "finance").get(f"/jobs/{job_id}").get_data(as_text=True)
    assert '<progress id="job-progress" max="1000" value="412"' in page
    assert '<label for="job-progress" id="job-stage">Reading the lines</label>' in page
    assert "412 of 1,000 lines" in page and "jobs.js" in page  # it follows the job by itself

    RELEASE.set()
    done = _wait_for(other_worker, job_id, lambda s: not s["active"])
    assert (done["state_label"], done["result"], done["error"]) == ("Finished", "Read 1,000 lines.", "")
    reloaded = _client(web_one, "finance").get(f"/jobs/{job_id}").get_data(as_text=True)
    assert "Read 1,000 lines." in reloaded and "jobs.js" not in reloaded and "Finished" in reloaded


def test_two_jobs_for_the_same_grant_run_one_after_the_other(web_one, web_two, world, consumer, slow_kind):
    from core.jobs import JobAlreadyRunning

    first = _submit(web_one, "test_lines", world.grant_a)
    watcher = _client(web_two, "finance")
    _wait_for(watcher, first, lambda s: s["state"] == "running")
    with pytest.raises(JobAlreadyRunning) as refused:
        _submit(web_two, "test_lines", world.grant_a)  # from the other web worker, at the same time
    assert refused.value.job_id == first
    RELEASE.set()
    _wait_for(watcher, first, lambda s: s["state"] == "done")
    second = _submit(web_two, "test_lines", world.grant_a)
    assert _wait_for(watcher, second, lambda s: not s["active"])["result"] == "Read 1,000 lines."


def test_a_large_actuals_import_runs_as_a_job_and_a_second_one_waits_its_turn(
    web_one,
    web_two,
    world,
    consumer,
    slow_kind,
    budget,  # noqa: F811
):
    from budgets.models import BudgetImport, Expenditure
    from core.extensions import db

    client = _client(web_one, "finance")  # web_one imports files of more than one row as jobs
    content = b"Date,Line,Amount,Currency\n2026-02-03,HR-1,10.00,USD\n2026-02-04,HR-1,5.00,USD\n"
    client.post(
        "/budget-imports/upload",
        data={"grant_id": str(world.grant_a), "file": (io.BytesIO(content), "a.csv")},
        content_type="multipart/form-data",
    )
    with web_one.app_context():
        import_id = db.session.scalar(select(BudgetImport.id))
    form = {"map_date": "Date", "map_line": "Line", "map_amount": "Amount", "map_currency": "Currency"}
    form["date_order"] = "iso"

    busy = _submit(web_one, "test_lines", world.grant_a)
    refused = client.post(f"/budget-imports/{import_id}/confirm", data=form, follow_redirects=True)
    assert f"/jobs/{busy}" in refused.request.path
    assert "A job for this grant is already running (Reading lines, asked by finance" in refused.get_data(as_text=True)
    RELEASE.set()
    _wait_for(client, busy, lambda s: not s["active"])

    started = client.post(f"/budget-imports/{import_id}/confirm", data=form)
    assert started.status_code == 302 and "/jobs/" in started.headers["Location"]
    job_id = int(started.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    done = _wait_for(client, job_id, lambda s: not s["active"])
    assert done["result"] == "Imported 2 expenditures; 0 were already there.", done
    with web_one.app_context():
        assert db.session.scalar(select(func.count(Expenditure.id))) == 2
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert "Import of actuals" in page and f"/budget-imports/show/{import_id}" in page


def test_a_job_is_shown_only_to_those_who_see_its_grant(web_one, world, slow_kind):
    from core.extensions import db
    from core.jobs import Job, JobState

    on_a = _submit(web_one, "test_lines", world.grant_a)
    on_b = _submit(web_one, "test_lines", world.grant_b)
    with web_one.app_context():  # no worker here: mark them finished by hand
        for job in db.session.scalars(select(Job)):
            job.state, job.result = JobState.done, "Read 1,000 lines."
        db.session.commit()
    program = _client(web_one, "program")
    assert program.get(f"/jobs/{on_a}").status_code == 200
    assert program.get(f"/jobs/{on_b}").status_code == 404
    assert program.get(f"/jobs/{on_b}/status.json").status_code == 404
    listing = program.get("/jobs/").get_data(as_text=True)
    assert f"/jobs/{on_a}" in listing and f"/jobs/{on_b}" not in listing
    donor = _client(web_one, "donor")
    assert donor.get(f"/jobs/{on_a}").status_code == 404
    admin = _client(web_one, "admin")
    assert admin.get(f"/jobs/{on_b}").status_code == 200
    assert web_one.test_client().get(f"/jobs/{on_a}").status_code in (302, 401)


def _redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url("redis://127.0.0.1:6379/15", socket_timeout=1).ping())
    except Exception:
        return False


@pytest.mark.skipif(not _redis_up(), reason="needs Redis at 127.0.0.1:6379")
def test_jobs_also_run_over_redis_for_several_machines(web_one, world, slow_kind):
    from core.extensions import db
    from core.jobs import JobQueue, make_huey

    huey = make_huey("redis://127.0.0.1:6379/15")
    huey.flush()
    queue = JobQueue(huey, context=web_one.app_context, session=lambda: db.session)
    queue.progress_every = 0.0
    with queue.running():
        with web_one.app_context():
            user = web_one.appbuilder.sm.find_user(username="finance")
            job_id = queue.submit(db.session, "test_lines", world.grant_a, {}, user).id
        client = _client(web_one, "finance")
        _wait_for(client, job_id, lambda s: s["done"] == 412)
        RELEASE.set()
        assert _wait_for(client, job_id, lambda s: not s["active"])["result"] == "Read 1,000 lines."
    huey.flush()


def test_the_scheduler_process_runs_queued_jobs(web_one, world, budget, instance_path, database_url, queue_file):  # noqa: F811
    """``python run.py scheduler`` is the job worker of an installation: it runs what web workers queue."""
    from budgets import imports
    from core.extensions import db
    from core.jobs import queue_of
    from grants.models import Grant

    with web_one.app_context():
        staged = imports.stage_import(
            db.session,
            db.session.get(Grant, world.grant_a),
            "b.csv",
            b"Date,Line,Amount,Currency\n2026-02-03,HR-1,7.00,USD\n",
            by="finance",
        )
        db.session.commit()
        queue_of(web_one).huey.flush()
        params = {
            "import_id": staged.id,
            "mapping": {"date": "Date", "line": "Line", "amount": "Amount", "currency": "Currency"},
            "date_order": "iso",
        }
        user = web_one.appbuilder.sm.find_user(username="finance")
        job_id = queue_of(web_one).submit(db.session, "actuals_import", world.grant_a, params, user).id
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "GRANTKEEPER_INSTANCE": str(instance_path),
        "GRANTKEEPER_QUEUE_URL": queue_file,
        "GRANTKEEPER_ADMIN_PASSWORD": PASSWORD,
    }
    worker = subprocess.Popen(
        [sys.executable, "run.py", "scheduler"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        client = _client(web_one, "finance")
        done = _wait_for_long(client, job_id)
        assert done["result"] == "Imported 1 expenditure; 0 were already there.", done
    finally:
        worker.send_signal(signal.SIGTERM)
        output = worker.communicate(timeout=60)[0].decode()
    assert worker.returncode == 0, output
    assert "job worker running" in output


def _wait_for_long(client: Any, job_id: int) -> dict[str, Any]:
    status: dict[str, Any] = {}
    for _ in range(1200):  # the worker process starts its own app first
        status = client.get(f"/jobs/{job_id}/status.json").get_json()
        if not status["active"]:
            return status
        time.sleep(0.1)
    raise AssertionError(f"the scheduler never ran job {job_id}: {status}")


def test_the_jobs_list_is_in_the_menu_for_staff_but_not_for_donors(web_one, world):
    assert 'href="/jobs/"' in _client(web_one, "finance").get("/jobs/").get_data(as_text=True)
    assert 'href="/jobs/"' in _client(web_one, "auditor").get("/").get_data(as_text=True)
    assert 'href="/jobs/"' not in _client(web_one, "donor").get("/").get_data(as_text=True)


def test_whoever_asked_may_cancel_a_job_that_has_not_started(web_one, world, slow_kind):
    from core.extensions import db
    from core.jobs import Job, JobState, enqueue

    job_id = _submit(web_one, "test_lines", world.grant_a)  # no worker runs in this test: it stays queued
    program = _client(web_one, "program")
    page = program.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert 'id="job-waiting"' in page and 'id="job-cancel"' not in page  # program did not ask for it
    assert program.post(f"/jobs/{job_id}/cancel").status_code == 404
    finance = _client(web_one, "finance")
    assert 'id="job-cancel"' in finance.get(f"/jobs/{job_id}").get_data(as_text=True)
    page = finance.post(f"/jobs/{job_id}/cancel", follow_redirects=True).get_data(as_text=True)
    assert "The job was cancelled before it started; nothing was done." in page
    assert "Cancelled by finance before it started; nothing was done." in page
    with web_one.app_context():
        assert db.session.get(Job, job_id).state == JobState.failed
        finance_user = web_one.appbuilder.sm.find_user(username="finance")
        job = enqueue(db.session, "test_lines", world.grant_a, {}, finance_user)  # the grant is free again
        job.state = JobState.running
        db.session.commit()
        running = job.id
    page = finance.post(f"/jobs/{running}/cancel", follow_redirects=True).get_data(as_text=True)
    assert "had already started, so it was not cancelled" in page
