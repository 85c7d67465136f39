"""APScheduler wiring: one periodic reminder sweep, in one process (SCHEDULER.md).

``python run.py scheduler`` runs ``run_blocking`` (the production shape: many
web workers, one scheduler process). ``python run.py serve`` on a single
machine calls ``start_background`` once. Nothing here runs at import time and
``create_app`` never starts a scheduler, so web workers never do.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from core import clock
from grants.deadlines.mail import SmtpSender, SmtpSettings
from grants.deadlines.reminders import SweepResult, SweepSettings, sweep

log = logging.getLogger(__name__)

SWEEP_JOB_ID = "grantkeeper.reminder_sweep"
DEFAULT_INTERVAL_MINUTES = 15
# A sweep missed by hours (machine asleep, restart) still runs once when it can.
MISFIRE_GRACE_SECONDS = 12 * 3600


def run_sweep(app: Any, now: dt.datetime | None = None) -> SweepResult:
    """One sweep inside the app's context, with the SMTP settings of its config."""
    from core.extensions import db

    with app.app_context():
        smtp = SmtpSettings.from_config(app.config)
        sender = SmtpSender(smtp) if smtp.configured else None
        try:
            return sweep(
                db.session,
                now=now or clock.now(),
                sender=sender,
                settings=SweepSettings.from_config(app.config),
            )
        finally:
            db.session.remove()


def add_sweep_job(scheduler: BaseScheduler, app: Any, *, interval_minutes: int | None = None) -> Any:
    """The one sweep job: fixed id, replaced on restart, never two at once, a catch-up run on start."""
    minutes = interval_minutes or int(app.config.get("REMINDER_SWEEP_MINUTES") or DEFAULT_INTERVAL_MINUTES)
    return scheduler.add_job(
        run_sweep,
        trigger="interval",
        minutes=minutes,
        args=[app],
        id=SWEEP_JOB_ID,
        name="Reminder sweep",
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=MISFIRE_GRACE_SECONDS,
        # The first run is now: the catch-up sweep for whatever fell due while we were down.
        next_run_time=clock.now(),
    )


def build_scheduler(app: Any, scheduler_class: type[BaseScheduler] = BackgroundScheduler) -> BaseScheduler:
    """A scheduler with the in-memory job store: job stores are never shared between processes."""
    scheduler = scheduler_class(timezone=dt.UTC)
    add_sweep_job(scheduler, app)
    return scheduler


def start_background(app: Any) -> BackgroundScheduler:
    """For ``run.py serve`` only: one scheduler thread inside the single serving process."""
    scheduler = build_scheduler(app, BackgroundScheduler)
    scheduler.start()
    log.info("reminder scheduler started in the serving process (job %s)", SWEEP_JOB_ID)
    return scheduler  # type: ignore[return-value]


def run_blocking(app: Any) -> None:
    """For ``run.py scheduler``: run the sweep every few minutes until stopped."""
    scheduler = build_scheduler(app, BlockingScheduler)
    log.info("reminder scheduler running (job %s); Ctrl+C to stop", SWEEP_JOB_ID)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
