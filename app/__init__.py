"""The Flask-AppBuilder application factory: wires the domain packages into one web app."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, g, request
from flask_appbuilder import AppBuilder

from config.settings import BaseConfig, Settings
from core.extensions import csrf, db, migrate

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def create_app(config: type[BaseConfig] | None = None, settings: Settings | None = None, **overrides: Any) -> Flask:
    """Build a Grantkeeper app. A new AppBuilder every time (FAB.md trap 2).

    ``settings`` defaults to ``Settings.from_env()``; an ``INSTANCE_PATH``
    override stands in for GRANTKEEPER_INSTANCE. Other overrides go into
    ``app.config`` last.
    """
    from app.domains import load_contributions
    from app.instance import ensure_instance, load_or_create_secret
    from app.presentation import install as install_presentation
    from core import audit, clock
    from core.records import install_validation

    config = config or BaseConfig
    instance_override = overrides.pop("INSTANCE_PATH", None)
    if settings is None:
        settings = Settings.from_env(instance_path=instance_override)
    instance_path = settings.instance_path
    ensure_instance(instance_path)
    app = Flask(
        __name__,
        instance_path=str(instance_path),
        template_folder="templates",
        static_folder="static",
    )
    from grants.access import BoundedRequest, RecordIdConverter

    app.url_map.converters["int"] = RecordIdConverter  # ids beyond 32 bits: 404, not an overflow
    app.request_class = BoundedRequest  # and ?grant=2**70 read as absent, not an overflow
    app.config.from_object(config)
    app.config["GK_SETTINGS"] = settings
    app.config.update(settings.flask_config())
    app.config["SECRET_KEY"] = load_or_create_secret(instance_path, settings.secret_key)
    app.config.update(overrides)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # SQLite: one connection per thread, foreign keys on (see _sqlite_pragmas).
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {}
    clock.set_zone(settings.timezone)
    from core.storage import FileStore

    FileStore(settings.storage_root).remove_abandoned()  # uploads a kill interrupted leave nothing behind

    # Never let a library log a secret: odoolib writes passwords at DEBUG.
    logging.getLogger("odoolib").setLevel(logging.INFO)

    import_models()
    load_contributions()  # after every model, before any view
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True, compare_type=True)
    csrf.init_app(app)  # before AppBuilder (FAB.md trap 9)
    from app.jobs_views import init_jobs

    init_jobs(app)  # the background-job queue (core.jobs) of GRANTKEEPER_QUEUE_URL

    install_validation()
    audit.install_audit()
    audit.set_actor_provider(_actor_from_request)

    from app.signin import init_app as init_signin

    init_signin(app)  # failed sign-ins limited per account and per address in the database; sessions end at logout
    from app import i18n

    i18n.configure(app)  # catalogues compiled, Flask-Babel pointed at them, numbers typed the reader's way
    with app.app_context():
        _sqlite_pragmas()
        appbuilder = AppBuilder(update_perms=False)
        appbuilder.init_app(app, db.session)
        i18n.install(app, appbuilder)  # each user's language, the reader's locale everywhere
        install_user_audit(appbuilder)  # users, roles and passwords in the audit trail
        register_views(appbuilder)
        install_presentation(app, appbuilder)  # plain-language filters, columns, flashes; 403/404 pages

    from app.assets import init_app as init_assets

    init_assets(app)  # versioned, long-cached, compressed assets; compressed pages

    from grants.access import HttpsAwareSessionInterface, csp_nonce, security_headers

    app.jinja_env.globals["csp_nonce"] = csp_nonce  # FAB's baselib.get_nonce() reads it too

    @app.after_request
    def _headers(response: Any) -> Any:
        return security_headers(response)

    app.session_interface = HttpsAwareSessionInterface()
    from sqlalchemy.exc import DataError

    from grants.access import refuse_out_of_range

    app.register_error_handler(OverflowError, refuse_out_of_range)  # SQLite: an int beyond 64 bits
    app.register_error_handler(DataError, refuse_out_of_range)  # PostgreSQL: numeric or integer out of range
    if settings.behind_proxy:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1, x_host=1)  # type: ignore[method-assign]

    @app.context_processor
    def _demo_banner() -> dict[str, Any]:
        from app.dashboard import demo_loaded

        return {"grantkeeper_demo": demo_loaded()}

    return app


def import_models() -> None:
    """Import every model before any view class is defined (FAB.md trap 1)."""
    import app.users  # noqa: F401  (user_preference)
    import core.audit  # noqa: F401
    import core.jobs  # noqa: F401
    import core.signin  # noqa: F401
    from app.domains import domain_modules

    for _module in domain_modules("models"):
        pass


def install_user_audit(appbuilder: AppBuilder) -> None:
    from app.users import install_user_audit as install

    install(appbuilder)


def register_views(appbuilder: AppBuilder) -> None:
    from app.audit_views import register as register_audit
    from app.domains import domain_modules
    from app.jobs_views import register as register_jobs

    for module in domain_modules("views"):
        module.register(appbuilder)
    for module in domain_modules("api"):
        module.register(appbuilder)
    register_audit(appbuilder)
    register_jobs(appbuilder)


def _actor_from_request():
    from flask import has_request_context

    from core.audit import Actor

    if not has_request_context():
        return None
    user = getattr(g, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    source = "api" if request.path.startswith("/api/") else "web"
    return Actor(user.id, user.username, source)


def _sqlite_pragmas() -> None:
    from sqlalchemy import event

    engine = db.engine
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()
