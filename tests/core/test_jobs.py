"""Background jobs (core.jobs): one active job per grant, outcomes recorded, failures and kills leave nothing half-saved."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from config.settings import SettingsError
from tests.conftest import make_settings


@pytest.fixture
def job_kinds() -> Iterator[Callable[..., None]]:
    """Add job kinds for one test; they are removed afterwards."""
    from core.jobs import JOBS, JobKind

    added: list[str] = []

    def add(key: str, run: Callable[..., Any], **kw: Any) -> None:
        JOBS.add(key, JobKind(key.replace("_", " ").capitalize(), run, **kw))
        added.append(key)

    yield add
    for key in added:
        JOBS.remove(key)


def _make_funder(session: Any, params: dict[str, Any], progress: Any) -> Any:
    from core.jobs import JobOutcome
    from grants import services

    progress("Making the funder", 0, 1)
    services.create_funder(session, name=params["name"], code=params["code"], default_currency="USD")
    return JobOutcome(f"Made the funder {params['name']}.", counts={"created": 1})


def _funder_then(error: BaseException) -> Callable[..., Any]:
    def run(session: Any, params: dict[str, Any], progress: Any) -> Any:
        from grants import services

        services.create_funder(session, name=params["name"], code=params["code"], default_currency="USD")
        session.flush()
        raise error

    return run


def _finance(app: Any) -> Any:
    """The Finance user, loaded in the current session (the world's copy is detached)."""
    return app.appbuilder.sm.find_user(username="finance")


def _funders(session: Any, code: str) -> int:
    from grants.models import Funder

    return len(list(session.scalars(select(Funder).where(Funder.code == code))))


def test_a_job_runs_as_whoever_asked_and_records_who_when_and_what(app, world, job_kinds):
    from core.audit import AuditEntry
    from core.extensions import db
    from core.jobs import Job, JobState, enqueue, execute

    job_kinds("make_funder", _make_funder)
    with app.app_context():
        job = enqueue(db.session, "make_funder", world.grant_a, {"name": "Jobbed Fund", "code": "JF"}, _finance(app))
        assert job.state == JobState.queued and job.requested_by == "finance"
        finished = execute(db.session, job.id)
        assert finished is not None
        assert finished.state == JobState.done
        assert finished.result == "Made the funder Jobbed Fund."
        assert finished.counts == {"created": 1}
        assert finished.started_at is not None and finished.finished_at is not None
        assert finished.requested_by_id == _finance(app).id
        assert _funders(db.session, "JF") == 1
        entry = db.session.scalar(
            select(AuditEntry).where(AuditEntry.table_name == "funders", AuditEntry.record_label.contains("Jobbed"))
        )
        assert entry is not None and (entry.username, entry.source) == ("finance", "job")
        # A job already run is not run twice.
        assert execute(db.session, job.id) is None
        assert db.session.get(Job, job.id).state == JobState.done


def test_a_second_job_for_the_same_grant_is_refused_while_the_first_is_active(app, world, job_kinds):
    from core.extensions import db
    from core.jobs import JobAlreadyRunning, enqueue, execute

    job_kinds("make_funder", _make_funder)
    with app.app_context():
        finance = _finance(app)
        first = enqueue(db.session, "make_funder", world.grant_a, {"name": "One", "code": "O1"}, finance)
        with pytest.raises(JobAlreadyRunning) as refused:
            enqueue(db.session, "make_funder", world.grant_a, {"name": "Two", "code": "O2"}, finance)
        assert refused.value.job_id == first.id
        assert "A job for this grant is already running (Make funder, asked by finance" in refused.value.summary()
        # Another grant, and work belonging to no grant, are not held up.
        other = enqueue(db.session, "make_funder", world.grant_b, {"name": "B", "code": "B1"}, finance)
        enqueue(db.session, "make_funder", None, {"name": "N1", "code": "N1"}, finance)
        enqueue(db.session, "make_funder", None, {"name": "N2", "code": "N2"}, finance)
        execute(db.session, first.id)
        execute(db.session, other.id)
        again = enqueue(db.session, "make_funder", world.grant_a, {"name": "Two", "code": "O2"}, finance)
        assert execute(db.session, again.id).result == "Made the funder Two."


def test_a_refused_job_saves_nothing_and_says_why(app, world, job_kinds):
    from core.errors import DomainValidationError
    from core.extensions import db
    from core.jobs import JobState, enqueue, execute

    job_kinds("refused", _funder_then(DomainValidationError({"row 7": ["no such budget line"]})))
    with app.app_context():
        job = enqueue(db.session, "refused", world.grant_a, {"name": "Nope", "code": "NP"}, _finance(app))
        failed = execute(db.session, job.id)
        assert failed.state == JobState.failed
        assert failed.error == "Nothing was saved: row 7: no such budget line"
        assert _funders(db.session, "NP") == 0


def test_an_unexpected_error_is_told_in_a_sentence_without_its_details(app, world, job_kinds):
    from core.extensions import db
    from core.jobs import UNEXPECTED, JobState, enqueue, execute

    job_kinds("crash", _funder_then(OSError("[Errno 13] Permission denied: '/srv/odoo/secret.conf'")))
    with app.app_context():
        job = enqueue(db.session, "crash", world.grant_a, {"name": "Crash", "code": "CR"}, _finance(app))
        failed = execute(db.session, job.id)
        assert failed.state == JobState.failed and failed.error == UNEXPECTED
        assert "/srv" not in failed.error and "Errno" not in failed.error
        assert _funders(db.session, "CR") == 0


def test_a_job_can_keep_its_refusal_and_be_marked_failed(app, world, job_kinds):
    from core.extensions import db
    from core.jobs import JobOutcome, JobState, enqueue, execute

    def rejected(session: Any, params: dict[str, Any], progress: Any) -> Any:
        from grants import services

        services.create_funder(session, name="Kept report", code="KR", default_currency="USD")
        return JobOutcome("Nothing imported: 3 problems.", counts={"problems": 3}, failed=True)

    job_kinds("rejected", rejected)
    with app.app_context():
        job = enqueue(db.session, "rejected", world.grant_a, {}, _finance(app))
        done = execute(db.session, job.id)
        assert (done.state, done.error, done.counts) == (
            JobState.failed,
            "Nothing imported: 3 problems.",
            {"problems": 3},
        )
        assert _funders(db.session, "KR") == 1  # the domain's record of the refusal is kept


KILLED_WORKER = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from pathlib import Path
    from tests.conftest import make_app
    from core.extensions import db
    from core.jobs import JOBS, JobKind, execute

    def half_way(session, params, progress):
        from grants import services
        services.create_funder(session, name="Half way", code="HW", default_currency="USD")
        session.flush()
        progress("Saving", 1, 2)
        os.kill(os.getpid(), signal.SIGKILL)  # the worker is killed in the middle of the domain's transaction

    app = make_app(Path({instance!r}), {database!r}, JOBS_IMMEDIATE=True)
    JOBS.add("half_way", JobKind("Half way", half_way))
    with app.app_context():
        execute(db.session, {job_id})
    """
)


def test_a_job_killed_half_way_leaves_the_previous_state_and_is_marked_interrupted(
    app, world, job_kinds, instance_path, database_url
):
    from core.extensions import db
    from core.jobs import INTERRUPTED, Job, JobState, enqueue, fail_interrupted

    job_kinds("half_way", _make_funder)  # the parent only needs the kind to exist
    with app.app_context():
        job = enqueue(db.session, "half_way", world.grant_a, {}, _finance(app))
        job_id = job.id
    script = KILLED_WORKER.format(
        root=str(Path(__file__).resolve().parents[2]), instance=str(instance_path), database=database_url, job_id=job_id
    )
    worker = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert worker.returncode == -9, worker.stderr[-2000:]
    with app.app_context():
        db.session.expire_all()
        killed = db.session.get(Job, job_id)
        assert killed.state == JobState.running and killed.worker.endswith(f":{killed.worker.rpartition(':')[2]}")
        assert _funders(db.session, "HW") == 0  # the domain's work never committed
        assert fail_interrupted(db.session) == 1  # what a worker does when it starts
        db.session.expire_all()
        killed = db.session.get(Job, job_id)
        assert (killed.state, killed.error) == (JobState.failed, INTERRUPTED)
        assert fail_interrupted(db.session) == 0


def test_a_running_job_of_a_live_worker_is_not_marked_interrupted(app, world, job_kinds):
    from core.extensions import db
    from core.jobs import Job, JobState, enqueue, fail_interrupted

    job_kinds("make_funder", _make_funder)
    with app.app_context():
        job = enqueue(db.session, "make_funder", world.grant_a, {}, _finance(app))
        job.state, job.worker = JobState.running, f"{os.uname().nodename}:{os.getppid()}"
        db.session.commit()
        assert fail_interrupted(db.session) == 0
        other_machine = db.session.get(Job, job.id)
        other_machine.worker = "another-host:1"
        db.session.commit()
        assert fail_interrupted(db.session) == 0  # another machine's worker is its own business


def test_the_queue_setting_picks_sqlite_by_default_and_redis_when_named(tmp_path):
    from huey import RedisHuey, SqliteHuey

    from core.jobs import make_huey

    settings = make_settings(tmp_path)
    assert settings.queue_url == f"sqlite:///{tmp_path.resolve() / 'jobs-queue.db'}"
    assert isinstance(make_huey(settings.queue_url), SqliteHuey)
    redis = make_settings(tmp_path, GRANTKEEPER_QUEUE_URL="redis://:s3cret@127.0.0.1:6379/3")
    assert isinstance(make_huey(redis.queue_url), RedisHuey)
    assert "s3cret" not in repr(redis)
    with pytest.raises(SettingsError, match="GRANTKEEPER_QUEUE_URL: 'ftp://x' is not a queue address"):
        make_settings(tmp_path, GRANTKEEPER_QUEUE_URL="ftp://x")
    assert make_settings(tmp_path, GRANTKEEPER_JOB_IMPORT_ROWS="50").limits.job_import_rows == 50
    with pytest.raises(SettingsError, match="GRANTKEEPER_JOB_IMPORT_ROWS"):
        make_settings(tmp_path, GRANTKEEPER_JOB_IMPORT_ROWS="many")


def test_a_job_the_queue_cannot_take_fails_at_once_and_does_not_hold_its_grant(app, world, job_kinds):
    from core.extensions import db
    from core.jobs import UNQUEUED, JobQueue, JobState, enqueue, make_huey

    job_kinds("make_funder", _make_funder)
    unreachable = JobQueue(
        make_huey("redis://127.0.0.1:1/0"), context=app.app_context, session=lambda: db.session
    )  # nothing listens on port 1
    with app.app_context():
        job = unreachable.submit(db.session, "make_funder", world.grant_a, {"name": "Q", "code": "Q1"}, _finance(app))
        assert (job.state, job.error) == (JobState.failed, UNQUEUED)
        assert enqueue(db.session, "make_funder", world.grant_a, {}, _finance(app)).state == JobState.queued
