"""Settings: one frozen ``Settings`` read from the environment, and the Flask config classes.

``Settings.from_env()`` is the only place that reads GRANTKEEPER_* (and
DATABASE_URL, RATELIMIT_STORAGE_URI) variables; the app factory builds it once
and copies what Flask and Flask-AppBuilder need into ``app.config``. The Flask
config classes hold constants only, so importing this module reads nothing.
Nothing secret has a default here, and no secret appears in a repr. The
SECRET_KEY is generated once per instance by ``app.instance`` unless
GRANTKEEPER_SECRET_KEY is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_appbuilder.security.manager import AUTH_DB

from config.roles import FAB_ROLES

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ODOO_PREFIX = "GRANTKEEPER_ODOO_"
DEFAULT_EVIDENCE_MAX_BYTES = 25 * 1024 * 1024
# The request limit stays a little above the largest evidence file.
DEFAULT_MAX_CONTENT_LENGTH = 30 * 1024 * 1024


class SettingsError(ValueError):
    """A setting in the environment is unusable; the message names the variable, never a secret value."""


def normalise_database_url(url: str) -> str:
    """Accept the URLs hosting providers hand out and use the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def default_instance_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path((env.get("GRANTKEEPER_INSTANCE") or "").strip() or PROJECT_ROOT / "instance").resolve()


def _hide_password(url: str) -> str:
    # scheme://user:password@host/... -> scheme://user:***@host/...
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


@dataclass(frozen=True)
class SmtpSettings:
    """Where reminders are sent from; without a host they wait in the outbox."""

    host: str = ""
    port: int | None = None
    user: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = True
    ssl: bool = False
    from_addr: str = "grantkeeper@localhost"


@dataclass(frozen=True)
class Limits:
    evidence_max_bytes: int = DEFAULT_EVIDENCE_MAX_BYTES
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH
    ratelimit_storage_uri: str = "memory://"
    reminder_sweep_minutes: int = 15
    # How long a reminder claim stays a sweep's without renewal (renewed every third of it while sending).
    reminder_lease_minutes: int = 30
    # Reminders sent over one SMTP connection and recorded with one statement.
    reminder_batch_size: int = 500
    # After this long a sweep stops and hands back what it has not sent, for the next sweep.
    reminder_sweep_budget_seconds: int = 600
    # Imports of more rows than this run as background jobs (core.jobs) instead of inside the request.
    job_import_rows: int = 2000


@dataclass(frozen=True)
class IatiSettings:
    """Who publishes the IATI activity files (exports.iati): the organisation's IATI identifier, name and type.

    The type is a code of IATI's OrganisationType list (22 = national NGO); exports.iati checks it.
    Without an identifier no IATI file can be made: the page and the command say what to set.
    """

    org_ref: str = ""
    org_name: str = ""
    org_type: str = "22"
    language: str = "en"


@dataclass(frozen=True)
class Settings:
    """Everything an operator can set, read once; every part of the app reads this."""

    database_url: str
    instance_path: Path
    storage_root: Path
    secret_key: str | None = None
    behind_proxy: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str = "http://127.0.0.1:8080"
    # Whose "today" decides what is due (an IANA name, e.g. America/St_Lucia).
    timezone: str = "UTC"
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    # Raw GRANTKEEPER_ODOO_* variables; budgets.odoo_sync validates them when a sync needs them.
    odoo_env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    limits: Limits = field(default_factory=Limits)
    iati: IatiSettings = field(default_factory=IatiSettings)
    # Where background jobs wait (core.jobs): sqlite:///<file> on one machine, redis://host:port/db across several.
    queue_url: str = ""

    def __repr__(self) -> str:
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "secret_key":
                value = None if value is None else "***"
            elif item.name in ("database_url", "queue_url"):
                value = _hide_password(value)
            elif item.name == "odoo_env":
                value = sorted(value)  # names only: the API key never appears
            shown.append(f"{item.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, instance_path: str | os.PathLike[str] | None = None
    ) -> Settings:
        """Read the settings from ``environ`` (default ``os.environ``); SettingsError names a bad variable.

        ``instance_path`` stands in for GRANTKEEPER_INSTANCE (tests, benchmarks);
        the database and storage defaults follow it.
        """
        env = os.environ if environ is None else environ

        def text(name: str, default: str = "") -> str:
            value = (env.get(name) or "").strip()
            return value or default

        instance = Path(instance_path).resolve() if instance_path else default_instance_path(env)
        host = text("GRANTKEEPER_HOST", "127.0.0.1")
        port = _port(text("GRANTKEEPER_PORT", "8080"), "GRANTKEEPER_PORT")
        smtp_port_text = text("GRANTKEEPER_SMTP_PORT")
        return cls(
            database_url=normalise_database_url(text("DATABASE_URL") or f"sqlite:///{instance / 'grantkeeper.db'}"),
            instance_path=instance,
            storage_root=Path(text("GRANTKEEPER_STORAGE") or instance / "storage"),
            secret_key=text("GRANTKEEPER_SECRET_KEY") or None,
            # Any value switches it on, as documented ("set to 1").
            behind_proxy=bool(text("GRANTKEEPER_BEHIND_PROXY")),
            host=host,
            port=port,
            base_url=text("GRANTKEEPER_BASE_URL", f"http://{host}:{port}"),
            timezone=_timezone(text("GRANTKEEPER_TIMEZONE", "UTC")),
            smtp=SmtpSettings(
                host=text("GRANTKEEPER_SMTP_HOST"),
                port=_port(smtp_port_text, "GRANTKEEPER_SMTP_PORT") if smtp_port_text else None,
                user=text("GRANTKEEPER_SMTP_USER"),
                password=env.get("GRANTKEEPER_SMTP_PASSWORD") or "",
                starttls=_flag(env, "GRANTKEEPER_SMTP_STARTTLS", True),
                ssl=_flag(env, "GRANTKEEPER_SMTP_SSL", False),
                from_addr=text("GRANTKEEPER_SMTP_FROM", "grantkeeper@localhost"),
            ),
            queue_url=_queue_url(text("GRANTKEEPER_QUEUE_URL"), instance),
            odoo_env=MappingProxyType({k: v for k, v in env.items() if k.startswith(ODOO_PREFIX)}),
            iati=IatiSettings(
                org_ref=_iati_ref(text("GRANTKEEPER_IATI_ORG_REF")),
                org_name=text("GRANTKEEPER_IATI_ORG_NAME"),
                org_type=_iati_code(text("GRANTKEEPER_IATI_ORG_TYPE", "22"), "GRANTKEEPER_IATI_ORG_TYPE", 2),
                language=_iati_language(text("GRANTKEEPER_IATI_LANGUAGE", "en")),
            ),
            limits=Limits(
                evidence_max_bytes=_positive_int(
                    text("GRANTKEEPER_EVIDENCE_MAX_BYTES"), "GRANTKEEPER_EVIDENCE_MAX_BYTES", DEFAULT_EVIDENCE_MAX_BYTES
                ),
                ratelimit_storage_uri=text("RATELIMIT_STORAGE_URI", "memory://"),
                reminder_sweep_minutes=_positive_int(
                    text("GRANTKEEPER_REMINDER_SWEEP_MINUTES"), "GRANTKEEPER_REMINDER_SWEEP_MINUTES", 15
                ),
                reminder_lease_minutes=_at_least(
                    _positive_int(text("GRANTKEEPER_REMINDER_LEASE_MINUTES"), "GRANTKEEPER_REMINDER_LEASE_MINUTES", 30),
                    5,
                    "GRANTKEEPER_REMINDER_LEASE_MINUTES",
                    "minutes (a sweep renews its claims every third of it)",
                ),
                reminder_batch_size=_positive_int(
                    text("GRANTKEEPER_REMINDER_BATCH_SIZE"), "GRANTKEEPER_REMINDER_BATCH_SIZE", 500
                ),
                reminder_sweep_budget_seconds=_at_least(
                    _positive_int(
                        text("GRANTKEEPER_REMINDER_SWEEP_BUDGET_SECONDS"),
                        "GRANTKEEPER_REMINDER_SWEEP_BUDGET_SECONDS",
                        600,
                    ),
                    30,
                    "GRANTKEEPER_REMINDER_SWEEP_BUDGET_SECONDS",
                    "seconds",
                ),
                job_import_rows=_positive_int(text("GRANTKEEPER_JOB_IMPORT_ROWS"), "GRANTKEEPER_JOB_IMPORT_ROWS", 2000),
            ),
        )

    def flask_config(self) -> dict[str, Any]:
        """What Flask, Flask-AppBuilder and the existing ``app.config`` readers expect."""
        return {
            "SQLALCHEMY_DATABASE_URI": self.database_url,
            "STORAGE_ROOT": str(self.storage_root),
            "HOST": self.host,
            "PORT": self.port,
            "BASE_URL": self.base_url,
            "REMINDER_TIMEZONE": self.timezone,
            "REMINDER_SWEEP_MINUTES": self.limits.reminder_sweep_minutes,
            "REMINDER_LEASE_MINUTES": self.limits.reminder_lease_minutes,
            "REMINDER_BATCH_SIZE": self.limits.reminder_batch_size,
            "REMINDER_SWEEP_BUDGET_SECONDS": self.limits.reminder_sweep_budget_seconds,
            "EVIDENCE_MAX_BYTES": self.limits.evidence_max_bytes,
            "MAX_CONTENT_LENGTH": self.limits.max_content_length,
            "RATELIMIT_STORAGE_URI": self.limits.ratelimit_storage_uri,
            "SMTP_HOST": self.smtp.host,
            "SMTP_PORT": self.smtp.port,
            "SMTP_USER": self.smtp.user,
            "SMTP_PASSWORD": self.smtp.password,
            "SMTP_STARTTLS": self.smtp.starttls,
            "SMTP_SSL": self.smtp.ssl,
            "SMTP_FROM": self.smtp.from_addr,
            "QUEUE_URL": self.queue_url,
            "JOB_IMPORT_ROWS": self.limits.job_import_rows,
        }


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name)
    if value is None or not value.strip():
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _port(value: str, name: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SettingsError(f"{name}: '{value}' is not a port number (1-65535)")
    return int(value)


def _positive_int(value: str, name: str, default: int) -> int:
    if not value:
        return default
    if not value.isdigit() or int(value) == 0:
        raise SettingsError(f"{name}: '{value}' is not a positive whole number")
    return int(value)


def _at_least(value: int, minimum: int, name: str, unit: str) -> int:
    if value < minimum:
        raise SettingsError(f"{name}: {value} is too small; use at least {minimum} {unit}")
    return value


def _queue_url(value: str, instance: Path) -> str:
    """The job queue: a huey SQLite file in the instance folder unless GRANTKEEPER_QUEUE_URL names another."""
    if not value:
        return f"sqlite:///{instance / 'jobs-queue.db'}"
    if value.startswith(("redis://", "rediss://", "unix://")) or (value.startswith("sqlite:///") and len(value) > 10):
        return value
    raise SettingsError(
        f"GRANTKEEPER_QUEUE_URL: '{_hide_password(value)}' is not a queue address "
        "(use sqlite:///path/to/queue.db on one machine or redis://host:6379/0 across several)"
    )


def _iati_ref(value: str) -> str:
    # {RegistrationAgency}-{RegistrationNumber}, e.g. XM-DAC-41114 or LC-CRO-12345: no spaces.
    if value and (any(ch.isspace() for ch in value) or "-" not in value):
        raise SettingsError(
            f"GRANTKEEPER_IATI_ORG_REF: '{value}' is not an IATI organisation identifier "
            "(agency-number, e.g. LC-CRO-12345, without spaces)"
        )
    return value


def _iati_code(value: str, name: str, digits: int) -> str:
    if not (value.isdigit() and len(value) == digits):
        raise SettingsError(f"{name}: '{value}' is not an IATI code of {digits} digits (e.g. 22 for a national NGO)")
    return value


def _iati_language(value: str) -> str:
    value = value.lower()
    if not (len(value) == 2 and value.isalpha()):
        raise SettingsError(f"GRANTKEEPER_IATI_LANGUAGE: '{value}' is not a two-letter language code (e.g. en, es, fr)")
    return value


def _timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"GRANTKEEPER_TIMEZONE: '{name}' is not a time zone name (use an IANA name such as America/St_Lucia)"
        ) from None
    return name


class BaseConfig:
    """Constants; what comes from the environment is copied in from ``Settings`` by the factory."""

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
    # Secure is switched on per request when served over HTTPS (see grants.access).
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    PERMANENT_SESSION_LIFETIME = 8 * 3600

    # Brute-force protection on the HTML login and the JWT login (app/signin.py): failed attempts only,
    # per account and (much higher, for an office behind one address) per address, counted in the database.
    RATELIMIT_ENABLED = True
    AUTH_RATE_LIMITED = True
    AUTH_RATE_LIMIT = "10 per 15 minute"
    AUTH_RATE_LIMIT_PER_ADDRESS = "100 per 15 minute"
    RATELIMIT_HEADERS_ENABLED = True

    JWT_ACCESS_TOKEN_EXPIRES = 3600

    BABEL_DEFAULT_LOCALE = "en"
    LANGUAGES = {
        "en": {"flag": "gb", "name": "English"},
        "es": {"flag": "es", "name": "Español"},
        "fr": {"flag": "fr", "name": "Français"},
        "nl": {"flag": "nl", "name": "Nederlands"},
    }


class TestConfig(BaseConfig):
    TESTING = True
    WTF_CSRF_ENABLED = False
    RATELIMIT_ENABLED = False
    AUTH_RATE_LIMITED = False
    # Fast hashing in tests only (FAB.md speed facts); production keeps FAB's default.
    FAB_PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"
    FAB_PASSWORD_COMPLEXITY_ENABLED = False
    SERVER_NAME = None
    # Background jobs run at once, inside the request that starts them (core.jobs); tests of the
    # queue itself set it to False and run a consumer.
    JOBS_IMMEDIATE = True
