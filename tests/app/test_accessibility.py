"""Every page of the reporting cycle, for every role, at desktop and phone width, checked by
axe-core (WCAG 2.1 A and AA rules) in a real Chromium: no critical or serious violation.

axe-core is vendored in tests/fixtures/axe/ (see SOURCE.md there)."""

from __future__ import annotations

import pytest

from tests.live import AXE, CHROMIUM, DESKTOP, PHONE, ROLES, cycle_pages, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]

WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = {"critical", "serious"}


@pytest.fixture(scope="module")
def server(demo_server):
    return demo_server("a11y-instance")


def axe_violations(page) -> list[str]:
    """The page's critical and serious violations, one readable line each."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=AXE.read_text())
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})", WCAG
    )
    lines = []
    for violation in result["violations"]:
        if violation["impact"] in BLOCKING:
            targets = ", ".join(str(node["target"]) for node in violation["nodes"][:3])
            lines.append(f"{violation['impact']} {violation['id']} ({len(violation['nodes'])}x: {targets})")
    return lines


def check_cycle(browser, server, role, viewport) -> dict[str, list[str]]:
    context = browser.new_context(
        viewport=viewport, bypass_csp=True
    )  # axe is injected as a script: our instrument, not the page
    page = context.new_page()
    try:
        page.goto(server + "/login/")
        failures = {"login page": axe_violations(page)}
        sign_in(page, server, role)
        for name, path in cycle_pages(page, server).items():
            page.goto(server + path)
            page.wait_for_load_state("load")
            failures[f"{name} ({path})"] = axe_violations(page)
    finally:
        context.close()
    return {name: lines for name, lines in failures.items() if lines}


@pytest.mark.parametrize("role", ROLES)
def test_every_page_of_the_cycle_passes_axe_at_desktop_width(server, browser, role):
    assert check_cycle(browser, server, role, DESKTOP) == {}


@pytest.mark.parametrize("role", ROLES)
def test_every_page_of_the_cycle_passes_axe_on_a_phone(server, browser, role):
    assert check_cycle(browser, server, role, PHONE) == {}


def test_axe_reports_a_control_without_a_label(server, browser):
    """The check can fail: an unlabelled select put into a real page is reported."""
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(server + "/login/")
        page.evaluate(
            "() => document.querySelector('main').insertAdjacentHTML('beforeend', '<select><option>x</option></select>')"
        )
        assert any("select-name" in line for line in axe_violations(page))
    finally:
        context.close()


def test_pages_name_themselves_and_mark_their_landmarks(server, browser):
    """A specific <title>, lang on <html>, one h1, header/nav/main/footer and a skip link to main."""
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    page = context.new_page()
    try:
        sign_in(page, server, "program")
        titles = set()
        for name, path in cycle_pages(page, server).items():
            page.goto(server + path)
            shape = page.evaluate(
                """() => ({
                    lang: document.documentElement.lang,
                    title: document.title,
                    h1: document.querySelectorAll('h1').length,
                    header: document.querySelectorAll('header').length,
                    nav: document.querySelectorAll('nav[aria-label]').length,
                    main: document.querySelectorAll('main#main').length,
                    footer: document.querySelectorAll('footer').length,
                    skip: (document.querySelector('a.gk-skip-link') || {}).hash,
                })"""
            )
            assert shape["lang"] == "en", name
            assert shape["h1"] == 1, name
            assert shape["header"] >= 1 and shape["nav"] >= 1 and shape["main"] == 1 and shape["footer"] >= 1, name
            assert shape["skip"] == "#main", name
            assert shape["title"].endswith(" · Grantkeeper"), (name, shape["title"])
            titles.add(shape["title"])
        assert len(titles) >= 10, titles  # pages are told apart by their title
    finally:
        context.close()
