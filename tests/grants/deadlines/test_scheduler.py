"""Scheduling: one sweep job with the settings of SCHEDULER.md; nothing starts at import or in create_app."""

from __future__ import annotations

import threading


def _scheduler_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if "APScheduler" in t.name or "scheduler" in t.name.lower()]


def test_creating_the_app_starts_no_scheduler(instance_path, database_url):
    import grants.deadlines.scheduler  # noqa: F401 - importing must not start anything
    from tests.conftest import make_app

    before = _scheduler_threads()
    make_app(instance_path, database_url)
    assert _scheduler_threads() == before


def test_one_sweep_job_with_fixed_id_coalescing_one_instance_and_hours_of_grace(app):
    from apscheduler.schedulers.background import BackgroundScheduler

    from grants.deadlines.scheduler import SWEEP_JOB_ID, add_sweep_job, build_scheduler

    scheduler = build_scheduler(app, BackgroundScheduler)
    scheduler.start(paused=True)  # paused: nothing runs in this test
    try:
        add_sweep_job(scheduler, app)  # adding the job again (a restart) replaces it
        [job] = scheduler.get_jobs()
    finally:
        scheduler.shutdown(wait=False)
    assert job.id == SWEEP_JOB_ID
    assert job.coalesce is True and job.max_instances == 1
    assert job.misfire_grace_time >= 3600
    assert job.trigger.interval.total_seconds() == 15 * 60


def test_a_started_background_scheduler_runs_the_catch_up_sweep_at_once(app, world, deadlines):
    """The first run is scheduled for 'now': started, it sweeps without waiting for the interval."""
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
    from apscheduler.schedulers.background import BackgroundScheduler

    from grants.deadlines.scheduler import build_scheduler

    done = threading.Event()
    outcome = {}

    def listener(event):
        outcome["error"] = getattr(event, "exception", None)
        outcome["result"] = getattr(event, "retval", None)
        done.set()

    scheduler = build_scheduler(app, BackgroundScheduler)
    scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    scheduler.start()
    try:
        assert done.wait(timeout=60), "the catch-up sweep did not run"
    finally:
        scheduler.shutdown(wait=True)
    assert outcome["error"] is None
    assert outcome["result"].locked_out is False
