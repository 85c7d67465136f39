"""Session cookies, CSRF, secret key, rate limits and passwords kept out of logs."""

import logging
import os
import stat

import pytest

from tests.conftest import PASSWORD, make_app


@pytest.fixture
def strict_app(app, world, instance_path, database_url):
    """The production settings for CSRF and rate limits, on the test database."""
    return make_app(
        instance_path,
        database_url,
        WTF_CSRF_ENABLED=True,
        RATELIMIT_ENABLED=True,
        AUTH_RATE_LIMITED=True,
        AUTH_RATE_LIMIT="3 per 5 minute",
    )


def test_login_form_without_csrf_token_is_refused(strict_app):
    client = strict_app.test_client()
    response = client.post("/login/", data={"username": "program", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/grants/list/").status_code == 302  # still anonymous


def test_change_without_csrf_token_is_refused_even_when_signed_in(strict_app, world):
    import re

    client = strict_app.test_client()
    form = client.get("/login/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
    assert (
        client.post("/login/", data={"username": "finance", "password": PASSWORD, "csrf_token": token}).status_code
        == 302
    )
    response = client.post(
        f"/grants/{world.grant_b}/generate-periods", data={"length": "quarter", "due_days": "30", "replace": "1"}
    )
    assert response.status_code == 400


def test_session_cookie_is_httponly_and_samesite_lax(app, world):
    client = app.test_client()
    response = client.post("/login/", data={"username": "program", "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http on loopback


def test_session_cookie_is_secure_over_https(app, world):
    client = app.test_client()
    response = client.post("/login/", data={"username": "program", "password": PASSWORD}, base_url="https://localhost")
    assert "Secure" in response.headers["Set-Cookie"]


def test_security_headers_on_every_page(app, world):
    response = app.test_client().get("/login/")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_secret_key_is_generated_once_with_0600(tmp_path, database_url):
    os.environ.pop("GRANTKEEPER_SECRET_KEY", None)
    first = make_app(tmp_path, database_url)
    second = make_app(tmp_path, database_url)
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"] == key_file.read_text().strip()
    assert len(first.config["SECRET_KEY"]) >= 40


def test_jwt_login_is_rate_limited(strict_app, world):
    client = strict_app.test_client()
    codes = [
        client.post(
            "/api/v1/security/login", json={"username": "program", "password": "wrong", "provider": "db"}
        ).status_code
        for _ in range(5)
    ]
    assert codes[:3] == [401, 401, 401]
    assert 429 in codes[3:]


def test_html_login_is_rate_limited(strict_app, world):
    import re

    client = strict_app.test_client()
    codes = []
    for _ in range(5):
        form = client.get("/login/").get_data(as_text=True)
        match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form)
        token = match.group(1) if match else ""
        codes.append(
            client.post("/login/", data={"username": "program", "password": "wrong", "csrf_token": token}).status_code
        )
    assert 429 in codes


def test_no_password_reaches_the_logs(app, world, caplog):
    from app.bootstrap import create_user

    caplog.set_level(logging.DEBUG)
    secret = "s3cret-Pa55word-never-logged"
    create_user(app, "newbie", "newbie@test.example.org", "Program", secret)
    client = app.test_client()
    client.post("/login/", data={"username": "newbie", "password": secret})
    client.post("/login/", data={"username": "newbie", "password": secret + "x"})
    client.post("/api/v1/security/login", json={"username": "newbie", "password": secret, "provider": "db"})
    assert caplog.records, "logging was captured"
    assert secret not in caplog.text


def test_unknown_page_does_not_leak_internals(program_client, world):
    response = program_client.get("/grants/show/999999")
    assert response.status_code == 404
    assert "Traceback" not in response.get_data(as_text=True)
