"""Settings classes: one base, then what differs for production-like serving and tests.

Values come from the environment where an operator would set them; nothing
secret has a default here. The SECRET_KEY is generated once per instance by
``app.instance`` and stored with 0600 permissions.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask_appbuilder.security.manager import AUTH_DB

from config.roles import FAB_ROLES

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_instance_path() -> Path:
    return Path(os.environ.get("GRANTKEEPER_INSTANCE", PROJECT_ROOT / "instance")).resolve()


def normalise_database_url(url: str) -> str:
    """Accept the URLs hosting providers hand out and use the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class BaseConfig:
    APP_NAME = "Grantkeeper"
    APP_THEME = ""
    FAB_BASE_TEMPLATE = "grantkeeper_base.html"
    FAB_INDEX_VIEW = "app.dashboard.DashboardIndexView"

    AUTH_TYPE = AUTH_DB
    AUTH_ROLE_ADMIN = "Admin"
    AUTH_ROLE_PUBLIC = "Public"
    AUTH_USER_REGISTRATION = False
    FAB_ROLES = FAB_ROLES
    # Migrations own every table, FAB's included (FAB.md trap 4): FAB must not
    # create tables or sync permissions by itself.
    FAB_CREATE_DB = False
    FAB_UPDATE_PERMS = False
    FAB_ADD_SECURITY_API = False
    FAB_API_SWAGGER_UI = True
    FAB_API_MAX_PAGE_SIZE = 500
    FAB_PASSWORD_COMPLEXITY_ENABLED = True

    SQLALCHEMY_TRACK_MODIFICATIONS = False
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}

    # CSRF on every form (FAB exempts its own API blueprints, which are JWT-only).
    WTF_CSRF_ENABLED = True
    WTF_CSRF_TIME_LIMIT = None

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # Secure is switched on per request when served over HTTPS (see app.security).
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    PERMANENT_SESSION_LIFETIME = 8 * 3600

    # Brute-force protection on the HTML login and the JWT login.
    RATELIMIT_ENABLED = True
    AUTH_RATE_LIMITED = True
    AUTH_RATE_LIMIT = "10 per 5 minute"
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_HEADERS_ENABLED = True

    JWT_ACCESS_TOKEN_EXPIRES = 3600

    MAX_CONTENT_LENGTH = 30 * 1024 * 1024
    # Largest evidence file accepted (bytes); the request limit above stays a little higher.
    EVIDENCE_MAX_BYTES = int(os.environ.get("GRANTKEEPER_EVIDENCE_MAX_BYTES", 25 * 1024 * 1024))
    BABEL_DEFAULT_LOCALE = "en"
    LANGUAGES = {"en": {"flag": "gb", "name": "English"}}

    HOST = os.environ.get("GRANTKEEPER_HOST", "127.0.0.1")
    PORT = int(os.environ.get("GRANTKEEPER_PORT", "8080"))

    # Reminders (grants.deadlines). Without SMTP_HOST, reminders wait in the outbox an admin
    # can read. The password is read from the environment only and never logged or shown.
    SMTP_HOST = os.environ.get("GRANTKEEPER_SMTP_HOST", "")
    SMTP_PORT = int(os.environ.get("GRANTKEEPER_SMTP_PORT") or 0) or None
    SMTP_USER = os.environ.get("GRANTKEEPER_SMTP_USER", "")
    SMTP_PASSWORD = os.environ.get("GRANTKEEPER_SMTP_PASSWORD", "")
    SMTP_STARTTLS = _flag("GRANTKEEPER_SMTP_STARTTLS", True)
    SMTP_SSL = _flag("GRANTKEEPER_SMTP_SSL", False)
    SMTP_FROM = os.environ.get("GRANTKEEPER_SMTP_FROM", "grantkeeper@localhost")
    # Links in reminder e-mails and the calendar feed are absolute URLs from here.
    BASE_URL = os.environ.get("GRANTKEEPER_BASE_URL", f"http://{HOST}:{PORT}")
    # Whose "today" decides what is due (an IANA name, e.g. America/St_Lucia).
    REMINDER_TIMEZONE = os.environ.get("GRANTKEEPER_TIMEZONE", "UTC")
    REMINDER_SWEEP_MINUTES = int(os.environ.get("GRANTKEEPER_REMINDER_SWEEP_MINUTES", "15"))


class TestConfig(BaseConfig):
    TESTING = True
    WTF_CSRF_ENABLED = False
    RATELIMIT_ENABLED = False
    AUTH_RATE_LIMITED = False
    # Fast hashing in tests only (FAB.md speed facts); production keeps FAB's default.
    FAB_PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"
    FAB_PASSWORD_COMPLEXITY_ENABLED = False
    SERVER_NAME = None
