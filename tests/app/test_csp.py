"""Scripts run only from our origin or with the page's nonce: no 'unsafe-inline', no 'unsafe-eval', and no page breaks."""

from pathlib import Path

import pytest

from tests.live import CHROMIUM, NO_CHROMIUM, demo_grant_id, sign_in

PAGES = [
    "/grants/list/",
    "/expenditures/list/?_flt_0_grant=1",
    "/requirements/add",
    "/shared-costs/list/",
    "/evidence/list/",
    "/budget-imports/upload",
]


def test_the_policy_allows_no_inline_or_evaluated_script_but_a_nonce(app, world):
    policy = app.test_client().get("/login/").headers["Content-Security-Policy"]
    script = next(part for part in policy.split(";") if part.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script
    assert "'nonce-" in script
    other = app.test_client().get("/login/").headers["Content-Security-Policy"]
    assert other != policy  # a fresh nonce for every response


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=NO_CHROMIUM)
def test_no_page_has_a_script_refused_by_the_policy(demo_server, page):
    server = demo_server("csp-instance", passwords={"admin": "Admin-Csp-pw-12"}, args=())
    refused: list[str] = []
    page.on(
        "console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None
    )
    sign_in(page, server, "admin", "Admin-Csp-pw-12")
    builder = f"/requirements/add?grant={demo_grant_id(page, server)}"
    for path in [*PAGES, builder]:
        page.goto(server + path)
        page.wait_for_load_state("networkidle")
    assert refused == []
    # The requirement builder's own script ran: choosing "custom" shows the custom window fields.
    page.goto(server + builder)
    assert page.locator(".window-custom").first.is_hidden()
    page.select_option("#frequency", "custom")
    assert page.locator(".window-custom").first.is_visible()
