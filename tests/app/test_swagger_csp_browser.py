"""The API's Swagger UI (/swagger/v1) works under the nonce Content Security Policy, in a real browser."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.live import CHROMIUM, NO_CHROMIUM, PASSWORDS, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=NO_CHROMIUM)]


def test_swagger_ui_renders_the_operations_with_no_script_refused_by_the_policy(demo_server, page):
    server = demo_server("swagger-instance", args=())
    refused: list[str] = []
    errors: list[str] = []
    page.on(
        "console",
        lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None,
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, server, "admin", PASSWORDS["admin"])
    response = page.goto(server + "/swagger/v1")
    assert response is not None and response.status == 200
    policy = response.headers["content-security-policy"]
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";")[0]
    # The operations are drawn by Swagger UI's own script, from the OpenAPI document.
    page.wait_for_selector(".opblock", timeout=30_000)
    operations = page.locator(".opblock")
    assert operations.count() > 50
    assert page.locator(".opblock-summary-path", has_text="/api/v1/evidence/").count() > 0
    page.wait_for_load_state("networkidle")
    assert refused == []
    assert errors == []
