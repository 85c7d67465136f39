"""Sign-in limits that fit an office, sessions that end at logout, and one password rule on every path."""

from __future__ import annotations

import pytest

from tests.app.test_cli import run
from tests.conftest import PASSWORD, USERNAMES, make_app


@pytest.fixture
def limited_app(app, world, instance_path, database_url):
    """Production sign-in limits, made small: 3 failures per account, 10 per address, in 5 minutes."""
    return make_app(
        instance_path,
        database_url,
        RATELIMIT_ENABLED=True,
        AUTH_RATE_LIMITED=True,
        AUTH_RATE_LIMIT="3 per 5 minute",
        AUTH_RATE_LIMIT_PER_ADDRESS="10 per 5 minute",
    )


def _sign_in(client, username, password, address="192.0.2.10"):
    return client.post(
        "/login/",
        data={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def _signed_in(client) -> bool:
    response = client.get("/grants/list/")
    return response.status_code == 200 and "/login" not in response.headers.get("Location", "")


def test_an_office_behind_one_address_keeps_signing_in_after_many_good_sign_ins(limited_app):
    client = limited_app.test_client()
    for _ in range(15):  # more than both limits: successes are not counted
        for role in ("program", "finance"):
            assert _sign_in(client, role, PASSWORD).status_code == 302
            client.get("/logout/")
    assert _sign_in(client, "program", PASSWORD).status_code == 302


def test_an_account_guessed_from_several_addresses_is_paused_with_a_page_in_words(limited_app):
    client = limited_app.test_client()
    for number in range(3):
        assert _sign_in(client, "program", "wrong", address=f"198.51.100.{number}").status_code != 429
    response = _sign_in(client, "program", PASSWORD, address="203.0.113.99")  # right password, new address
    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert "Signing in is paused" in page and "too many wrong passwords for this account" in page
    assert int(response.headers["Retry-After"]) > 0
    assert "program" not in page.split("</h1>", 1)[1]  # the page does not echo the account name
    other = limited_app.test_client()
    assert _sign_in(other, "finance", PASSWORD, address="198.51.100.0").status_code == 302  # colleagues go on


def test_a_guesser_at_one_address_is_paused_across_accounts(limited_app, world):
    client = limited_app.test_client()
    names = [f"nobody{n}" for n in range(10)]
    for name in names:
        assert _sign_in(client, name, "wrong", address="192.0.2.66").status_code != 429
    response = _sign_in(client, "auditor", PASSWORD, address="192.0.2.66")
    assert response.status_code == 429
    assert "from this network" in response.get_data(as_text=True)
    assert _sign_in(limited_app.test_client(), "auditor", PASSWORD, address="192.0.2.67").status_code == 302


def test_a_correct_password_clears_the_accounts_failures(limited_app):
    client = limited_app.test_client()
    for _ in range(2):
        _sign_in(client, "donor", "wrong")
    assert _sign_in(client, "donor", PASSWORD).status_code == 302
    client.get("/logout/")
    for _ in range(2):
        assert _sign_in(client, "donor", "wrong").status_code != 429
    assert _sign_in(client, "donor", PASSWORD).status_code == 302


def test_the_api_sign_in_is_limited_per_account_too(limited_app):
    client = limited_app.test_client()
    body = {"username": "finance", "password": "wrong", "provider": "db"}
    codes = [
        client.post("/api/v1/security/login", json=body, environ_base={"REMOTE_ADDR": f"198.51.100.{n}"}).status_code
        for n in range(4)
    ]
    assert codes == [401, 401, 401, 429]
    refused = client.post("/api/v1/security/login", json={**body, "password": PASSWORD})
    assert refused.status_code == 429 and "too many wrong passwords" in refused.json["message"]


def test_a_session_cookie_copied_before_logout_no_longer_works(app, world):
    client = app.test_client()
    assert _sign_in(client, USERNAMES["Program"], PASSWORD).status_code == 302
    assert _signed_in(client)
    copied = client.get_cookie("session").value
    client.get("/logout/")
    thief = app.test_client()
    thief.set_cookie("session", copied)
    response = thief.get("/grants/list/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    again = app.test_client()  # signing in again works, with a fresh session
    assert _sign_in(again, USERNAMES["Program"], PASSWORD).status_code == 302
    assert _signed_in(again)


def test_the_command_line_refuses_a_password_the_web_form_refuses(tmp_path):
    ok = run(["init"], tmp_path, {"GRANTKEEPER_PASSWORD_ADMIN": "Xx-Yy-zz-12345"})
    assert ok.returncode == 0, ok.stderr
    weak = run(["reset-password", "admin"], tmp_path, {"GRANTKEEPER_NEW_PASSWORD": "a"})
    assert weak.returncode == 2
    assert "password: Must have at least two capital letters" in weak.stderr
    created = run(["create-admin", "boss", "boss@example.org"], tmp_path, {"GRANTKEEPER_ADMIN_PASSWORD": "boss"})
    assert created.returncode == 2 and "password: Must have" in created.stderr
    strong = run(["reset-password", "admin"], tmp_path, {"GRANTKEEPER_NEW_PASSWORD": "Longer-Pass-9876"})
    assert strong.returncode == 0, strong.stderr
