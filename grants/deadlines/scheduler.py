"""APScheduler wiring: one periodic reminder sweep, in one process (SCHEDULER.md).

``python run.py scheduler`` runs ``run_blocking`` (the production shape: many
web workers, one scheduler process); SIGTERM and SIGINT stop it gracefully. ``python run.py serve`` on a single
machine calls ``start_background`` once. Nothing here runs at import time and
``create_app`` never starts a scheduler, so web workers never do.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler

from core import clock
from grants.deadlines.mail import SmtpSender, SmtpSettings
from grants.deadlines.reminders import SweepResult, SweepSettings, sweep

log = logging.getLogger(__name__)

SWEEP_JOB_ID = "grantkeeper.reminder_sweep"
DEFAULT_INTERVAL_MINUTES = 15
# A sweep missed by hours (machine asleep, restart) still runs once when it can.
MISFIRE_GRACE_SECONDS = 12 * 3600


def run_sweep(app: Any, now: dt.datetime | None = None, stop: threading.Event | None = None) -> SweepResult:
    """One sweep inside the app's context, with the SMTP settings of its config.

    ``stop``, once set (SIGTERM), ends the sweep after the message in flight and
    releases its unsent claims for the next sweep.
    """
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
                stop=stop,
            )
        finally:
            db.session.remove()


def _scheduled_sweep(app: Any, stop: threading.Event | None = None) -> SweepResult | None:
    if stop is not None and stop.is_set():
        return None  # stopping: no new sweep starts
    return run_sweep(app, stop=stop)


def add_sweep_job(
    scheduler: BaseScheduler, app: Any, *, interval_minutes: int | None = None, stop: threading.Event | None = None
) -> Any:
    """The one sweep job: fixed id, replaced on restart, never two at once, a catch-up run on start."""
    minutes = interval_minutes or int(app.config.get("REMINDER_SWEEP_MINUTES") or DEFAULT_INTERVAL_MINUTES)
    return scheduler.add_job(
        _scheduled_sweep,
        trigger="interval",
        minutes=minutes,
        args=[app, stop],
        id=SWEEP_JOB_ID,
        name="Reminder sweep",
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=MISFIRE_GRACE_SECONDS,
        # The first run is now: the catch-up sweep for whatever fell due while we were down.
        next_run_time=clock.now(),
    )


def build_scheduler(
    app: Any, scheduler_class: type[BaseScheduler] = BackgroundScheduler, *, stop: threading.Event | None = None
) -> BaseScheduler:
    """A scheduler with the in-memory job store: job stores are never shared between processes."""
    scheduler = scheduler_class(timezone=dt.UTC)
    add_sweep_job(scheduler, app, stop=stop)
    return scheduler


def stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    """SIGTERM (systemctl/docker stop) and SIGINT (Ctrl+C) set ``stop`` instead of killing the process.

    Returns a function that puts the previous handlers back. Main thread only.
    """
    previous = {}

    def handler(signum: int, _frame: Any) -> None:
        log.info("reminder scheduler: %s received, stopping after the message in flight", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, handler)

    def restore() -> None:
        for signum, old in previous.items():
            signal.signal(signum, old)

    return restore


def start_background(app: Any) -> BackgroundScheduler:
    """For ``run.py serve`` only: one scheduler thread inside the single serving process."""
    scheduler = build_scheduler(app, BackgroundScheduler)
    scheduler.start()
    log.info("reminder scheduler started in the serving process (job %s)", SWEEP_JOB_ID)
    return scheduler  # type: ignore[return-value]


def run_blocking(app: Any, stop: threading.Event | None = None) -> None:
    """For ``run.py scheduler``: run the sweep every few minutes until SIGTERM/SIGINT (or ``stop``).

    Stopping is graceful: the running sweep finishes the message in flight, records
    what was sent and releases the rest at once, so a restart sends them straight away.
    """
    stop = stop or threading.Event()
    restore = stop_on_signals(stop) if threading.current_thread() is threading.main_thread() else None
    scheduler = build_scheduler(app, BackgroundScheduler, stop=stop)
    scheduler.start()
    log.info("reminder scheduler running (job %s); Ctrl+C or SIGTERM to stop", SWEEP_JOB_ID)
    try:
        while not stop.wait(timeout=1.0):
            pass
    finally:
        stop.set()
        scheduler.shutdown(wait=True)  # waits for a running sweep to wind down
        if restore is not None:
            restore()
        log.info("reminder scheduler stopped")
