"""Grantkeeper's entry point: ``python run.py [serve|init|create-admin|reset-password|backup|restore|...] ...``."""

from __future__ import annotations

import argparse
import getpass
import os
import sys


def _app():
    from app import create_app

    return create_app()


def _settings(app):
    """The one Settings object the app was built from (host, port, paths...)."""
    return app.config["GK_SETTINGS"]


def _print_credentials(credentials, url: str) -> None:
    if not credentials:
        return
    print("\nSign in at", url)
    for credential in credentials:
        origin = "generated now, shown once" if credential.generated else "from the environment"
        shown = credential.password if credential.generated else "(as set)"
        print(f"  {credential.username:<10} {shown}   [{origin}]")
    print("Keep these somewhere safe: they are not stored in readable form anywhere.\n")


def cmd_init(args: argparse.Namespace) -> int:
    from app.bootstrap import demo_present, initialise, upgrade_database

    app = _app()
    upgrade_database(app)
    if args.demo and demo_present(app):
        print("The demo data is already loaded; nothing to do.")
        return 0
    credentials = initialise(app, demo=args.demo)
    print("Database is up to date" + (" and the demo organisation is loaded." if args.demo else "."))
    settings = _settings(app)
    _print_credentials(credentials, f"http://{settings.host}:{settings.port}/")
    return 0


def cmd_create_admin(args: argparse.Namespace) -> int:
    from app.bootstrap import UserError, create_user, ensure_roles, upgrade_database

    app = _app()
    upgrade_database(app)
    ensure_roles(app)
    password = os.environ.get("GRANTKEEPER_ADMIN_PASSWORD") or getpass.getpass("Password: ")
    try:
        create_user(app, args.username, args.email, args.role, password)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Created {args.role} user '{args.username}'.")
    return 0


def cmd_reset_password(args: argparse.Namespace) -> int:
    app = _app()
    password = os.environ.get("GRANTKEEPER_NEW_PASSWORD") or getpass.getpass("New password: ")
    if not password:
        print("error: password: must not be empty", file=sys.stderr)
        return 2
    from app.users import UserError, reset_password

    try:
        reset_password(app, args.username, password)  # audited as the CLI's, without the password
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Password of '{args.username}' changed.")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Fill a funder template (or build a built-in report) for a grant and period, and keep it."""
    from pathlib import Path

    from tqdm import tqdm

    from core.audit import Actor, acting_as
    from core.errors import DomainValidationError
    from core.extensions import db
    from core.storage import store_for
    from exports import services as exports
    from grants import services as grants

    app = _app()
    out = Path(args.output)
    with app.app_context(), acting_as(Actor(None, "cli", "cli")):
        bar = tqdm(total=2, unit="step", disable=args.quiet or not sys.stderr.isatty(), file=sys.stderr)

        def progress(step: str, done: int, total: int) -> None:
            bar.set_description(step)
            if total:
                bar.total = total
                bar.n = done
            else:
                bar.set_postfix(rows=done)
            bar.refresh()

        try:
            grant = grants.get_grant_by_reference(db.session, args.grant)
            period = grants.get_period(db.session, grant, args.period) if args.period else None
            template = exports.find_template(db.session, grant, args.template) if args.template else None
            record = exports.run_export(
                db.session,
                store_for(app.config),
                grant=grant,
                period=period,
                user="cli",
                template=template,
                builtin=None if template else (args.report or "budget_vs_actual"),
                progress=progress,
                recompute=args.recompute,
            )
            if args.publish:
                exports.publish(db.session, record, user="cli")
            data = exports.export_bytes(store_for(app.config), record)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            bar.close()
            print(f"error: {exc}", file=sys.stderr)
            return 2
        bar.close()
        print(
            f"Wrote {out} ({record.size:,} bytes, sha256 {record.sha256}); export #{record.id} in the history"
            + (", published to the donor." if args.publish else ".")
        )
    return 0


def cmd_iati(args: argparse.Namespace) -> int:
    """Write the IATI 2.03 activity file of one or more grants, validated against IATI's schemas, and keep it."""
    from pathlib import Path

    from core.audit import Actor, acting_as
    from core.errors import DomainValidationError
    from core.extensions import db
    from core.storage import store_for
    from exports.iati import services as iati
    from grants import services as grants

    app = _app()
    settings = _settings(app)
    out = Path(args.output)
    with app.app_context(), acting_as(Actor(None, "cli", "cli")):
        try:
            chosen = [grants.get_grant_by_reference(db.session, reference) for reference in args.grant]
            made = iati.make_file(db.session, chosen, settings.iati, base_url=settings.base_url)
            records = iati.keep(db.session, store_for(app.config), made, chosen, user="cli", publish=args.publish)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(made.data)
            sha = records[0].sha256
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            for field, messages in exc.errors.items():
                for message in messages:
                    print(f"error: {field}: {message}", file=sys.stderr)
            return 2
    print(
        f"Wrote {out} ({len(made.data):,} bytes, sha256 {sha}): {len(chosen)} IATI activities, "
        "valid against the IATI 2.03 schemas; kept in the export history"
        + (" and published to the donors." if args.publish else ".")
    )
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from app.backup import BackupError, make_backup, verify_backup

    settings = _settings(_app())
    try:
        result = make_backup(settings.database_url, settings.storage_root, Path(args.output))
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problems = verify_backup(result.path)
    if problems:
        print("error: the backup does not verify: " + "; ".join(problems), file=sys.stderr)
        return 1
    print(f"Wrote {result.path} ({len(result.members)} files, verified against its manifest).")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Put a backup back after checking every checksum in its manifest (stop the app first)."""
    from pathlib import Path

    from app.backup import BackupError, restore_backup
    from config.settings import Settings

    settings = Settings.from_env()
    if not args.yes:
        print(
            "This replaces the database and every stored file with the backup's.\n"
            "Stop Grantkeeper first. The current storage folder is kept next to the restored one."
        )
        if input("Type 'restore' to go ahead: ").strip() != "restore":
            print("Nothing was changed.")
            return 1
    try:
        result = restore_backup(Path(args.archive), settings.database_url, settings.storage_root)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Restored the database ({result.database}) and {result.files} stored files; every checksum matched.")
    if result.kept is not None:
        print(f"The storage folder as it was is kept in {result.kept}; delete it once you are satisfied.")
    print("Start Grantkeeper again: it applies any newer migrations.")
    return 0


def cmd_sync_odoo(args: argparse.Namespace) -> int:
    """Bring actual spending in from Odoo for every enabled grant link (or one grant)."""
    from budgets.odoo_cli import sync_odoo

    return sync_odoo(_app(), grant=args.grant, full=args.full, confirm_removals=args.confirm_removals)


def cmd_serve(args: argparse.Namespace) -> int:
    from app.bootstrap import ensure_roles, has_users, initialise, upgrade_database

    app = _app()
    host = args.host or _settings(app).host
    port = args.port or _settings(app).port
    url = f"http://{host}:{port}/"
    if not has_users_safe(app, has_users):
        # First start: apply migrations and load the demo so a newcomer sees the product at once.
        credentials = initialise(app, demo=not args.no_demo)
        _print_credentials(credentials, url)
    else:
        upgrade_database(app)
        ensure_roles(app)
    from contextlib import ExitStack

    from waitress import serve

    scheduler = None
    with ExitStack() as stack:
        if not args.no_scheduler:
            # The single-machine default: one reminder scheduler, in this serving process only.
            # With several web workers, pass --no-scheduler and run 'python run.py scheduler' once.
            from grants.deadlines.scheduler import start_background

            scheduler = start_background(app)
            if _settings(app).queue_url.startswith("sqlite"):
                # Background jobs (syncs, large imports, recomputed exports) in a thread of this process too.
                from core.jobs import queue_of

                stack.enter_context(queue_of(app).running())
        print(f"Grantkeeper is running on {url}  (Ctrl+C to stop)")
        try:
            serve(app, host=host, port=port, threads=8)
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
    return 0


def _scheduler_logging() -> None:
    """The scheduler's own output: what each sweep did, one line each, on stdout."""
    import logging

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("grants.deadlines", "apscheduler", "core.jobs", "huey"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False


def cmd_scheduler(args: argparse.Namespace) -> int:
    """The reminder scheduler and the job worker in their own process: the production shape (many web workers, one of these)."""
    import threading

    from app.bootstrap import upgrade_database
    from core.jobs import queue_of
    from grants.deadlines.scheduler import run_blocking, run_sweep, stop_on_signals

    app = _app()
    _scheduler_logging()  # after the app: create_app must not reset it
    upgrade_database(app)
    if args.once:
        stop = threading.Event()
        restore = stop_on_signals(stop)  # SIGTERM: finish the message in flight, release the rest, exit 0
        try:
            result = run_sweep(app, stop=stop)
        finally:
            restore()
        print(result.summary(), flush=True)
        return 0
    print(
        "Reminder scheduler and job worker running (Ctrl+C or SIGTERM to stop). Do not start a second one.",
        flush=True,
    )
    # The huey consumer runs background jobs in threads beside the sweep; a stop lets the job in hand finish.
    with queue_of(app).running(workers=args.job_workers):
        run_blocking(app)
    return 0


def has_users_safe(app, has_users) -> bool:
    from sqlalchemy.exc import OperationalError, ProgrammingError

    try:
        return has_users(app)
    except (OperationalError, ProgrammingError):
        return False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py",
        description="Grantkeeper: grant and donor compliance. Without a command, 'serve' runs.",
    )
    sub = parser.add_subparsers(dest="command", metavar="command")

    serve = sub.add_parser("serve", help="run the web app (default); first start loads the demo")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument("--no-demo", action="store_true", help="on first start, create only the admin user")
    serve.add_argument(
        "--no-scheduler",
        action="store_true",
        help="do not send reminders or run background jobs in this process (run 'python run.py scheduler' separately)",
    )
    serve.set_defaults(func=cmd_serve)

    scheduler = sub.add_parser(
        "scheduler", help="run the reminder scheduler and the background-job worker (one process per installation)"
    )
    scheduler.add_argument("--once", action="store_true", help="run one sweep now and exit (no jobs)")
    scheduler.add_argument(
        "--job-workers", type=int, default=1, help="background jobs run at once, each in a thread (default 1)"
    )
    scheduler.set_defaults(func=cmd_scheduler)

    init = sub.add_parser("init", help="apply migrations and create roles; --demo loads the demo organisation")
    init.add_argument("--demo", action="store_true", help="load the demo organisation of DEMO.md")
    init.set_defaults(func=cmd_init)

    admin = sub.add_parser("create-admin", help="create a user (Admin by default); password asked or from env")
    admin.add_argument("username")
    admin.add_argument("email")
    admin.add_argument("--role", default="Admin", help="Admin, Finance, Program, Donor or Auditor")
    admin.set_defaults(func=cmd_create_admin)

    reset = sub.add_parser("reset-password", help="set a new password for a user")
    reset.add_argument("username")
    reset.set_defaults(func=cmd_reset_password)
    export = sub.add_parser("export", help="fill a funder's template (or a built-in report) for a grant and period")
    export.add_argument("--grant", required=True, help="grant reference, e.g. RCM-HIV-2026-SW")
    export.add_argument("--period", help="period label, e.g. S1 (default: the whole grant)")
    which = export.add_mutually_exclusive_group()
    which.add_argument("--template", help="the funder template's name")
    which.add_argument(
        "--report",
        help="a built-in report: budget_vs_actual, indicator_progress, compliance_matrix, "
        "evidence_register, expenditure_ledger, reporting_periods",
    )
    export.add_argument("-o", "--output", required=True, help="where to write the .xlsx/.xlsm")
    export.add_argument("--publish", action="store_true", help="publish it to the grant's donor users")
    export.add_argument(
        "--recompute",
        action="store_true",
        help="compute formula results with headless LibreOffice so readers that do not recalculate see them",
    )
    export.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    export.set_defaults(func=cmd_export)

    iati = sub.add_parser("iati", help="write the IATI 2.03 activity file of grants (validated against IATI's schemas)")
    iati.add_argument(
        "--grant", required=True, action="append", help="grant reference; repeat for several grants in one file"
    )
    iati.add_argument("-o", "--output", required=True, help="where to write the .xml file")
    iati.add_argument("--publish", action="store_true", help="also publish it to the grants' donor users")
    iati.set_defaults(func=cmd_iati)

    backup = sub.add_parser("backup", help="archive the database and stored files, with checksums")
    backup.add_argument("-o", "--output", default="backups", help="folder for the archive (default ./backups)")
    backup.set_defaults(func=cmd_backup)

    restore = sub.add_parser("restore", help="put a backup back (database and files), checksums verified first")
    restore.add_argument("archive", help="the grantkeeper-backup-*.tar.gz written by 'backup'")
    restore.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    restore.set_defaults(func=cmd_restore)

    odoo = sub.add_parser("sync-odoo", help="bring actual spending in from Odoo (GRANTKEEPER_ODOO_* settings)")
    odoo.add_argument("--grant", help="only this grant reference (default: every grant whose Odoo link is enabled)")
    odoo.add_argument(
        "--full",
        action="store_true",
        help="read every line again, not only changes (every sync removes spending whose Odoo line is gone)",
    )
    odoo.add_argument(
        "--confirm-removals",
        action="store_true",
        help="go ahead when a sync would remove more of a grant's Odoo spending than its link allows without asking",
    )
    odoo.set_defaults(func=cmd_sync_odoo)
    return parser


def main(argv: list[str] | None = None) -> int:
    from config.settings import SettingsError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["serve", *(argv or [])])
    try:
        return args.func(args)
    except SettingsError as exc:
        # A mistyped variable is an operator's error, not a crash: name it and stop.
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
