"""Background jobs: long work (Odoo syncs, LibreOffice recomputes, large imports) off the web request.

A ``Job`` row records what runs, for which grant, who asked, its progress and its
outcome. Domains register their kinds of job in ``JOBS`` from their
``contributions`` module: a function ``(session, params, progress)`` that does the
domain's work in one transaction and returns a sentence (or a ``JobOutcome``).
``JobQueue`` hands job ids to a huey queue (SQLite file on one machine, Redis
across several) and runs them: each in its own session, progress written in
separate short commits so any web worker sees it, the outcome written at the end.
One job per grant at a time, enforced by a partial unique index. No Flask here:
the composition root gives the queue its app context and session.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask_appbuilder import Model
from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey
from huey.consumer import Consumer
from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import clock
from core.audit import Actor, acting_as
from core.errors import DomainValidationError
from core.formatting import N_, gettext, ngettext, number
from core.records import enum_column
from core.registry import Registry

log = logging.getLogger(__name__)

TASK_NAME = "grantkeeper.run_job"
QUEUE_NAME = "grantkeeper"
# This process, as written on the jobs it runs: a restarted worker recognises its dead predecessors' jobs.
WORKER = f"{socket.gethostname()}:{os.getpid()}"


class JobState(str, enum.Enum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


ACTIVE = (JobState.queued, JobState.running)
STATE_LABELS = {
    JobState.queued: N_("Waiting to start"),
    JobState.running: N_("Running"),
    JobState.done: N_("Finished"),
    JobState.failed: N_("Failed"),
}
_ACTIVE_SQL = "state IN ('queued', 'running')"
# A job row keeps its stage, result and error in English (stored text); ``shown`` translates
# them on the page. These are the sentences and stages this module writes.
INTERRUPTED = N_("Interrupted: the worker stopped before the job finished. Nothing of it was saved; start it again.")
UNQUEUED = N_(
    "The job could not be handed to the worker (the job queue is not reachable); nothing was done. Try again later."
)
UNEXPECTED = N_("The job stopped on an unexpected error and nothing was saved. The worker's log has the details.")
WAITING = N_("Waiting for the worker to start it")
CANCELLED = N_("Cancelled by %(name)s before it started; nothing was done.")
UNKNOWN_KIND = N_("This kind of job (%(kind)s) is not known to this version of Grantkeeper.")
NOTHING_SAVED = N_("Nothing was saved: %(problems)s")
STAGES = (N_("Starting"), N_("Finished"), N_("Stopped"), N_("Cancelled"), N_("Not started"))
# Stored sentences with values in them, matched back to their message to be translated.
_PLACEHOLDER = re.compile(re.escape(re.escape("%(")) + r"(\w+)" + re.escape(re.escape(")s")))
_COUNT = re.compile(r"^\d{1,3}(?:,\d{3})*$")


def _stored_pattern(message: str) -> re.Pattern[str]:
    return re.compile("^" + _PLACEHOLDER.sub(r"(?P<\1>.*?)", re.escape(message)) + "$", re.S)


_STORED_PATTERNS = [(message, _stored_pattern(message)) for message in (CANCELLED, UNKNOWN_KIND, NOTHING_SAVED)]


def stored_sentence(message: str) -> str:
    """Register a sentence (marked with ``N_``) a domain stores with values, so ``shown`` translates it.

    A value named ``problem(s)`` or ``reason`` is itself a stored sentence and translated too; counts written "1,234"
    are written again the reader's way.
    """
    if all(known != message for known, _pattern in _STORED_PATTERNS):
        _STORED_PATTERNS.append((message, _stored_pattern(message)))
    return message


def _shown_value(key: str, value: str) -> str:
    if _COUNT.match(value):
        return number(int(value.replace(",", "")))
    return shown(value) if key in ("problems", "problem", "reason") else value


def shown(text: str | None) -> str:
    """A stage, result or error a job stored in English, in the reader's language when the catalogues have it.

    Sentences of the domains (an import's outcome) are translated when their module marked
    them (``N_``, with ``stored_sentence`` when they carry values); the others are shown as stored.
    """
    if not text:
        return ""
    found = gettext(text)
    if found != text:
        return found
    for message, pattern in _STORED_PATTERNS:
        match = pattern.match(text)
        if match:
            return gettext(message, **{key: _shown_value(key, value) for key, value in match.groupdict().items()})
    return text


class Job(Model):
    """One piece of long work: what, for which grant, who asked, how far it got, how it ended."""

    __tablename__ = "jobs"
    __table_args__ = (
        # One active job per grant, in the database itself (SQLite and PostgreSQL alike).
        Index(
            "uq_jobs_one_active_per_grant",
            "grant_id",
            unique=True,
            sqlite_where=text(_ACTIVE_SQL),
            postgresql_where=text(_ACTIVE_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    state: Mapped[JobState] = mapped_column(enum_column(JobState), default=JobState.queued)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    stage: Mapped[str | None] = mapped_column(String(200))
    done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    total: Mapped[int | None] = mapped_column(Integer)
    result: Mapped[str | None] = mapped_column(Text)
    counts: Mapped[dict[str, int] | None] = mapped_column(JSON)
    record_id: Mapped[int | None] = mapped_column(Integer)  # what the job made (an export), for its link
    error: Mapped[str | None] = mapped_column(Text)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    requested_by: Mapped[str] = mapped_column(String(100))
    worker: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def label(self) -> str:
        """The kind of job in the reader's language (the domain marks its label with ``N_``)."""
        kind = JOBS.get(self.kind)
        return gettext(str(kind.label)) if kind is not None else self.kind.replace("_", " ").capitalize()

    @property
    def state_label(self) -> str:
        return gettext(STATE_LABELS[self.state])

    def progress_text(self) -> str:
        """'412 of 1,000 lines' (or rows, steps), in the reader's language and way of writing numbers."""
        kind = JOBS.get(self.kind)
        return progress_words(kind.unit if kind is not None else "steps", self.done, self.total)


def progress_words(unit: str, done: int, total: int | None) -> str:
    """How far a job got in words: "412 of 1,000 rows", "3 steps"; "" before it counted anything.

    ``unit`` is a kind of job's unit ("rows", "lines", "steps"); another one is counted in steps.
    """
    values = {"done": number(done), "total": number(total)}
    if total:
        if unit == "rows":
            return ngettext("%(done)s of %(total)s row", "%(done)s of %(total)s rows", total, **values)
        if unit == "lines":
            return ngettext("%(done)s of %(total)s line", "%(done)s of %(total)s lines", total, **values)
        return ngettext("%(done)s of %(total)s step", "%(done)s of %(total)s steps", total, **values)
    if not done:
        return ""
    if unit == "rows":
        return ngettext("%(done)s row", "%(done)s rows", done, **values)
    if unit == "lines":
        return ngettext("%(done)s line", "%(done)s lines", done, **values)
    return ngettext("%(done)s step", "%(done)s steps", done, **values)


class Progress(Protocol):
    def __call__(self, stage: str, done: int = 0, total: int | None = None) -> None: ...


@dataclass(frozen=True)
class JobOutcome:
    """What a job function hands back: the sentence shown, the counts kept, what it made.

    ``failed`` keeps the domain's work (e.g. an import rejected with its error report)
    and marks the job failed with ``sentence`` as its error.
    """

    sentence: str
    counts: Mapping[str, int] = field(default_factory=dict)
    record_id: int | None = None
    failed: bool = False


@dataclass(frozen=True)
class JobKind:
    """A kind of job a domain registers: its plain name, the unit of its progress, its function.

    ``links(job)`` (optional, called on the job's page only) gives (label, address)
    pairs to follow: back to the record the job was about, the file it made.
    """

    label: str
    run: Callable[[Session, Mapping[str, Any], Progress], JobOutcome | str]
    unit: str = "steps"
    links: Callable[[Job], list[tuple[str, str]]] | None = None


JOBS: Registry[JobKind] = Registry("job kind")


class JobFailed(Exception):
    """A job function's refusal in a plain sentence for the job's page (nothing of the job saved)."""


class JobAlreadyRunning(DomainValidationError):
    """A second active job for a grant: refused, naming the one running."""

    def __init__(self, job: Job | None) -> None:
        self.job_id = job.id if job is not None else None
        if job is None:
            text_ = gettext("A job for this grant is already running; wait for it to finish.")
        else:
            asked_at = f"{clock.local(job.created_at):%H:%M}"
            text_ = gettext(
                "A job for this grant is already running (%(job)s, asked by %(name)s at %(time)s): "
                "wait for it to finish, then start this one.",
                job=job.label,
                name=job.requested_by,
                time=asked_at,
            )
        super().__init__({"job": [text_]})


def enqueue(session: Session, kind: str, grant_id: int | None, params: Mapping[str, Any], user: Any | None) -> Job:
    """Record a queued job and commit it; a second active job for the same grant is refused.

    ``user`` is whoever asked (anything with ``id`` and ``username``); None is the system.
    Raises ``JobAlreadyRunning`` (with ``job_id``) when the grant has a job queued or running.
    """
    if kind not in JOBS:
        raise ValueError(f"no job kind named {kind!r}")
    job = Job(
        kind=kind,
        grant_id=grant_id,
        state=JobState.queued,
        params=dict(params),
        stage=WAITING,
        done=0,
        requested_by_id=getattr(user, "id", None),
        requested_by=(getattr(user, "username", None) or "system")[:100],
        created_at=clock.now(),
    )
    session.add(job)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise JobAlreadyRunning(active_job(session, grant_id)) from None
    return job


def cancel(session: Session, job_id: int, by: str) -> bool:
    """Withdraw a job that has not started (its worker is busy or not running); False once it has started."""
    withdrawn = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == JobState.queued)
        .values(
            state=JobState.failed,
            error=CANCELLED % {"name": by},
            stage="Cancelled",
            finished_at=clock.now(),
        )
    )
    session.commit()
    return withdrawn.rowcount == 1  # type: ignore[attr-defined]


def active_job(session: Session, grant_id: int | None) -> Job | None:
    if grant_id is None:
        return None
    return session.scalar(select(Job).where(Job.grant_id == grant_id, Job.state.in_(ACTIVE)))


class _ProgressWriter:
    """Progress in its own short transactions on its own connection, so other workers see it at once.

    On SQLite the domain's transaction holds the one write lock while it saves; a
    progress write then gives up at once (the next one lands after the commit)
    instead of waiting for it.
    """

    def __init__(self, bind: Engine, job_id: int, *, every_seconds: float = 0.5) -> None:
        self.bind, self.job_id, self.every = bind, job_id, every_seconds
        self._last: tuple[str | None, float] = (None, -1.0)  # (stage, monotonic time)

    def __call__(self, stage: str, done: int = 0, total: int | None = None) -> None:
        now = time.monotonic()
        last_stage, last_at = self._last
        if stage == last_stage and now - last_at < self.every and done != total:
            return
        self._last = (stage, now)
        sqlite = self.bind.dialect.name == "sqlite"
        try:
            with self.bind.connect() as connection:
                if sqlite:
                    connection.exec_driver_sql("PRAGMA busy_timeout=100")
                try:
                    connection.execute(
                        update(Job)
                        .where(Job.id == self.job_id)
                        .values(stage=stage[:200], done=max(0, int(done)), total=total)
                    )
                    connection.commit()
                finally:
                    if sqlite:
                        connection.exec_driver_sql("PRAGMA busy_timeout=5000")
        except OperationalError:
            log.debug("job %s: progress not written now (database busy)", self.job_id)


def _finish(session: Session, job_id: int, **values: Any) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(finished_at=clock.now(), **values))


def execute(session: Session, job_id: int, *, progress_every: float = 0.5) -> Job | None:
    """Run one queued job to its end in ``session``; None when it was not queued (already taken).

    The job is claimed (queued -> running) in a short commit, the domain's work runs
    as the job's requester, and the outcome is committed with the domain's work when
    the function did not commit itself. Any failure rolls the domain's work back.
    """
    claimed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == JobState.queued)
        .values(state=JobState.running, started_at=clock.now(), worker=WORKER, stage="Starting")
    )
    session.commit()
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    job = session.get(Job, job_id)
    assert job is not None
    kind = JOBS.get(job.kind)
    params = dict(job.params or {})
    actor = Actor(job.requested_by_id, job.requested_by, "job")
    progress = _ProgressWriter(session.get_bind(), job_id, every_seconds=progress_every)  # type: ignore[arg-type]
    try:
        if kind is None:
            raise JobFailed(UNKNOWN_KIND % {"kind": job.kind})
        with acting_as(actor):
            returned = kind.run(session, params, progress)
        outcome = returned if isinstance(returned, JobOutcome) else JobOutcome(str(returned))
        if outcome.failed:
            _finish(session, job_id, state=JobState.failed, error=outcome.sentence, counts=dict(outcome.counts) or None)
        else:
            _finish(
                session,
                job_id,
                state=JobState.done,
                result=outcome.sentence,
                counts=dict(outcome.counts) or None,
                record_id=outcome.record_id,
                stage="Finished",
            )
        session.commit()
    except BaseException as exc:
        session.rollback()
        _finish(session, job_id, state=JobState.failed, error=_sentence(exc), stage="Stopped")
        session.commit()
        if not isinstance(exc, Exception):
            raise
    finally:
        session.expire_all()
    return session.get(Job, job_id)


def _sentence(exc: BaseException) -> str:
    if isinstance(exc, JobFailed):
        return str(exc)
    if isinstance(exc, DomainValidationError):
        return NOTHING_SAVED % {"problems": exc.summary()}
    if isinstance(exc, Exception):
        log.exception("job failed on an unexpected error")
        return UNEXPECTED
    return INTERRUPTED


def fail_interrupted(session: Session, *, host: str | None = None, alive: Callable[[int], bool] | None = None) -> int:
    """Mark failed ("interrupted") the running jobs of this machine whose worker process is gone.

    Called when a worker starts. The domain's work of such a job was one
    transaction that never committed, so its previous state is intact.
    """
    host = host or socket.gethostname()
    alive = alive or _process_alive
    gone = []
    for job in session.scalars(select(Job).where(Job.state == JobState.running)):
        worker_host, _, pid = (job.worker or "").rpartition(":")
        if worker_host == host and pid.isdigit() and (int(pid) == os.getpid() or not alive(int(pid))):
            gone.append(job.id)
    if gone:
        _finish_all(session, gone)
    return len(gone)


def _finish_all(session: Session, ids: list[int]) -> None:
    session.execute(
        update(Job)
        .where(Job.id.in_(ids), Job.state == JobState.running)
        .values(state=JobState.failed, error=INTERRUPTED, stage="Stopped", finished_at=clock.now())
    )
    session.commit()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------- the queue


def make_huey(url: str, *, immediate: bool = False) -> Huey:
    """The huey queue the setting names: ``sqlite:///path`` (one machine), ``redis://...`` (several), ``memory://``."""
    huey: Huey
    if url.startswith(("redis://", "rediss://", "unix://")):
        huey = RedisHuey(QUEUE_NAME, url=url)
    elif url.startswith("sqlite:///"):
        huey = SqliteHuey(QUEUE_NAME, filename=url[len("sqlite:///") :])
    elif url == "memory://":
        huey = MemoryHuey(QUEUE_NAME)
    else:
        raise ValueError(f"not a queue address: {url!r}")
    huey.immediate = immediate
    return huey


class _QuietConsumer(Consumer):
    """A huey consumer that leaves signals to its host (``run.py``), so it also runs beside other work."""

    def _set_signal_handlers(self) -> None:
        pass


class JobQueue:
    """One app's queue: submit jobs, and run them (in a consumer or, in immediate mode, at once).

    ``context`` enters whatever the job functions need around them (the app
    context); ``session`` gives the session to run in inside it.
    """

    def __init__(
        self, huey: Huey, *, context: Callable[[], AbstractContextManager[Any]], session: Callable[[], Session]
    ) -> None:
        self.huey = huey
        self._context = context
        self._session = session
        self.progress_every = 0.5
        self._task = huey.task(name=TASK_NAME)(self.run)

    def submit(
        self, session: Session, kind: str, grant_id: int | None, params: Mapping[str, Any], user: Any | None
    ) -> Job:
        """``enqueue`` and hand the job to the queue; its id is what the job page shows."""
        job = enqueue(session, kind, grant_id, params, user)
        job_id = job.id
        try:
            self._task(job_id)
        except Exception:
            # The queue is unreachable (Redis down...): the job must not hold its grant forever.
            log.exception("job %s could not be handed to the queue", job_id)
            session.rollback()
            _finish(session, job_id, state=JobState.failed, error=UNQUEUED, stage="Not started")
            session.commit()
        session.expire_all()
        return session.get(Job, job_id) or job

    def run(self, job_id: int) -> None:
        """Run one job (what the consumer calls)."""
        with self._context():
            session = self._session()
            try:
                execute(session, job_id, progress_every=self.progress_every)
            finally:
                session.close()

    def fail_interrupted(self) -> int:
        with self._context():
            session = self._session()
            try:
                return fail_interrupted(session)
            finally:
                session.close()

    def consumer(self, workers: int = 1) -> Consumer:
        return _QuietConsumer(self.huey, workers=workers, worker_type="thread", periodic=False, max_delay=1.0)

    @contextmanager
    def running(self, workers: int = 1) -> Iterator[Consumer]:
        """A consumer in this process's threads for the block (``run.py serve``/``scheduler``, tests)."""
        self.fail_interrupted()
        consumer = self.consumer(workers)
        consumer.start()
        try:
            yield consumer
        finally:
            consumer.stop(graceful=True)


EXTENSION_KEY = "grantkeeper_jobs"


def queue_of(app: Any) -> JobQueue:
    """The queue the composition root gave an app (``app.extensions``)."""
    return app.extensions[EXTENSION_KEY]  # type: ignore[no-any-return]
