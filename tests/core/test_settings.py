"""Settings: read once from the environment, with clear errors and no secret in a repr."""

from pathlib import Path

import pytest

from config.settings import Settings, SettingsError
from tests.conftest import make_settings


def test_an_instance_with_nothing_set_gets_the_documented_defaults(tmp_path):
    settings = make_settings(tmp_path)
    assert settings.instance_path == tmp_path.resolve()
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'grantkeeper.db'}"
    assert settings.storage_root == tmp_path.resolve() / "storage"
    assert settings.secret_key is None
    assert settings.behind_proxy is False
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.base_url == "http://127.0.0.1:8080"
    assert settings.timezone == "UTC"
    assert settings.smtp.host == "" and settings.smtp.port is None
    assert settings.smtp.starttls is True and settings.smtp.ssl is False
    assert settings.smtp.from_addr == "grantkeeper@localhost"
    assert dict(settings.odoo_env) == {}
    assert settings.limits.evidence_max_bytes == 25 * 1024 * 1024
    assert settings.limits.max_content_length == 30 * 1024 * 1024
    assert settings.limits.ratelimit_storage_uri == "memory://"
    assert settings.limits.reminder_sweep_minutes == 15


def test_settings_cannot_be_changed_after_they_are_read(tmp_path):
    settings = make_settings(tmp_path)
    with pytest.raises(AttributeError):
        settings.port = 9000  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.odoo_env["GRANTKEEPER_ODOO_HOST"] = "x"  # type: ignore[index]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://gk:pw@db.example.org/grantkeeper", "postgresql+psycopg://gk:pw@db.example.org/grantkeeper"),
        ("postgresql://gk@db/grantkeeper", "postgresql+psycopg://gk@db/grantkeeper"),
        ("postgresql+psycopg://gk@db/grantkeeper", "postgresql+psycopg://gk@db/grantkeeper"),
        ("sqlite:////srv/gk.db", "sqlite:////srv/gk.db"),
    ],
)
def test_a_hosting_providers_database_url_uses_the_psycopg_driver(tmp_path, given, expected):
    assert make_settings(tmp_path, DATABASE_URL=given).database_url == expected


def test_an_operator_sets_host_port_smtp_and_the_base_url_follows(tmp_path):
    settings = make_settings(
        tmp_path,
        GRANTKEEPER_HOST="0.0.0.0",
        GRANTKEEPER_PORT="9000",
        GRANTKEEPER_TIMEZONE="America/St_Lucia",
        GRANTKEEPER_SMTP_HOST="mail.example.org",
        GRANTKEEPER_SMTP_PORT="465",
        GRANTKEEPER_SMTP_SSL="yes",
        GRANTKEEPER_SMTP_STARTTLS="0",
        GRANTKEEPER_STORAGE="/srv/files",
        GRANTKEEPER_BEHIND_PROXY="1",
        GRANTKEEPER_ODOO_HOST="odoo.example.org",
    )
    assert settings.base_url == "http://0.0.0.0:9000"
    assert settings.timezone == "America/St_Lucia"
    assert (settings.smtp.host, settings.smtp.port, settings.smtp.ssl, settings.smtp.starttls) == (
        "mail.example.org",
        465,
        True,
        False,
    )
    assert settings.storage_root == Path("/srv/files")
    assert settings.behind_proxy is True
    assert dict(settings.odoo_env) == {"GRANTKEEPER_ODOO_HOST": "odoo.example.org"}


def test_a_mistyped_time_zone_is_refused_naming_the_variable(tmp_path):
    with pytest.raises(SettingsError, match="GRANTKEEPER_TIMEZONE: 'Europe/Narnia' is not a time zone name"):
        make_settings(tmp_path, GRANTKEEPER_TIMEZONE="Europe/Narnia")


@pytest.mark.parametrize("variable", ["GRANTKEEPER_PORT", "GRANTKEEPER_SMTP_PORT"])
@pytest.mark.parametrize("value", ["80a", "0", "70000", "-1"])
def test_a_port_that_is_not_a_port_is_refused_naming_the_variable(tmp_path, variable, value):
    with pytest.raises(SettingsError, match=f"{variable}: '{value}' is not a port number"):
        make_settings(tmp_path, **{variable: value})


def test_no_secret_appears_when_settings_are_printed_or_logged(tmp_path):
    settings = make_settings(
        tmp_path,
        GRANTKEEPER_SECRET_KEY="flask-secret-123",
        GRANTKEEPER_SMTP_PASSWORD="smtp-pw-456",
        GRANTKEEPER_ODOO_API_KEY="odoo-key-789",
        DATABASE_URL="postgresql://gk:db-pw-000@db/grantkeeper",
    )
    assert settings.secret_key == "flask-secret-123"
    assert settings.smtp.password == "smtp-pw-456"
    assert settings.odoo_env["GRANTKEEPER_ODOO_API_KEY"] == "odoo-key-789"
    for shown in (repr(settings), str(settings), f"{settings}", repr(settings.smtp)):
        for secret in ("flask-secret-123", "smtp-pw-456", "odoo-key-789", "db-pw-000"):
            assert secret not in shown
    assert "GRANTKEEPER_ODOO_API_KEY" in repr(settings) and "gk:***@db" in repr(settings)


def test_blank_variables_count_as_unset(tmp_path):
    settings = make_settings(tmp_path, GRANTKEEPER_PORT="", GRANTKEEPER_TIMEZONE=" ", DATABASE_URL="")
    assert settings.port == 8080 and settings.timezone == "UTC"
    assert settings.database_url.startswith("sqlite:///")


def test_the_app_reads_one_settings_object_and_sets_the_clock(tmp_path, database_url):
    from app import create_app
    from config.settings import TestConfig
    from core import clock

    settings = Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "GRANTKEEPER_TIMEZONE": "Asia/Tokyo",
            "GRANTKEEPER_SMTP_HOST": "mail.example.org",
            "GRANTKEEPER_SECRET_KEY": "from-settings",
        },
        instance_path=tmp_path,
    )
    try:
        app = create_app(TestConfig, settings=settings)
        assert app.config["GK_SETTINGS"] is settings
        assert app.config["SQLALCHEMY_DATABASE_URI"] == database_url
        assert app.config["REMINDER_TIMEZONE"] == "Asia/Tokyo"
        assert app.config["SMTP_HOST"] == "mail.example.org"
        assert app.config["SECRET_KEY"] == "from-settings"
        assert app.config["STORAGE_ROOT"] == str(tmp_path.resolve() / "storage")
        assert clock.zone().key == "Asia/Tokyo"
    finally:
        clock.set_zone("UTC")
