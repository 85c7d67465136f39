"""Grantkeeper's entry point: ``python run.py [serve|init|create-admin|reset-password] ...``."""

from __future__ import annotations

import argparse
import getpass
import os
import sys


def _app():
    from app import create_app

    return create_app()


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
    _print_credentials(credentials, f"http://{app.config['HOST']}:{app.config['PORT']}/")
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
    with app.app_context():
        user = app.appbuilder.sm.find_user(username=args.username)
        if user is None:
            print(f"error: username: no user '{args.username}'", file=sys.stderr)
            return 2
        app.appbuilder.sm.reset_password(user.id, password)
    print(f"Password of '{args.username}' changed.")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from app.backup import BackupError, make_backup, verify_backup

    app = _app()
    try:
        result = make_backup(
            app.config["SQLALCHEMY_DATABASE_URI"], Path(app.config["STORAGE_ROOT"]), Path(args.output)
        )
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problems = verify_backup(result.path)
    if problems:
        print("error: the backup does not verify: " + "; ".join(problems), file=sys.stderr)
        return 1
    print(f"Wrote {result.path} ({len(result.members)} files, verified against its manifest).")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from app.bootstrap import has_users, initialise, upgrade_database, ensure_roles

    app = _app()
    url = f"http://{args.host or app.config['HOST']}:{args.port or app.config['PORT']}/"
    if not has_users_safe(app, has_users):
        # First start: apply migrations and load the demo so a newcomer sees the product at once.
        credentials = initialise(app, demo=not args.no_demo)
        _print_credentials(credentials, url)
    else:
        upgrade_database(app)
        ensure_roles(app)
    from waitress import serve

    print(f"Grantkeeper is running on {url}  (Ctrl+C to stop)")
    serve(app, host=args.host or app.config["HOST"], port=args.port or app.config["PORT"], threads=8)
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
    serve.set_defaults(func=cmd_serve)

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
    backup = sub.add_parser("backup", help="archive the database and stored files, with checksums")
    backup.add_argument("-o", "--output", default="backups", help="folder for the archive (default ./backups)")
    backup.set_defaults(func=cmd_backup)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["serve", *(argv or [])])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
