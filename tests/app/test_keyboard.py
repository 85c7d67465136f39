"""The cycle with a keyboard only: Tab, Shift+Tab, Enter and Space (and typing into fields).
Every stop of the focus is visible."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.live import CHROMIUM, DESKTOP, PASSWORDS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]

FOCUSED = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const style = getComputedStyle(el);
    return {
        tag: el.tagName.toLowerCase(), id: el.id, name: el.getAttribute('name') || '', type: el.type || '',
        href: el.getAttribute('href') || '', text: (el.innerText || el.value || '').trim().slice(0, 80),
        visible: (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2) || style.boxShadow !== 'none',
    };
}"""


@pytest.fixture(scope="module")
def server(demo_server):
    return demo_server("keyboard-instance")


@pytest.fixture
def browser_context_options():
    return {"viewport": DESKTOP}


class Keyboard:
    """Only the keys the story allows; every focus stop is recorded and must be visible."""

    def __init__(self, page):
        self.page = page
        self.invisible: list[dict] = []

    def _press(self, key: str) -> dict | None:
        self.page.keyboard.press(key)
        focused = self.page.evaluate(FOCUSED)
        if focused and not focused["visible"]:
            self.invisible.append(focused)
        return focused

    def tab_to(self, wanted, *, backwards: bool = False, limit: int = 150) -> dict:
        for _ in range(limit):
            focused = self._press("Shift+Tab" if backwards else "Tab")
            if focused and wanted(focused):
                return focused
        raise AssertionError(f"Tab never reached the element on {self.page.url}")

    def enter(self) -> None:
        with self.page.expect_navigation():
            self.page.keyboard.press("Enter")

    def space(self) -> None:
        self.page.keyboard.press("Space")

    def type(self, text: str) -> None:
        self.page.keyboard.type(text)


def test_a_keyboard_user_logs_in_opens_a_grant_and_enters_a_result_with_evidence(server, page, tmp_path):
    keys = Keyboard(page)
    page.goto(server + "/login/")
    keys.tab_to(lambda f: f["name"] == "username")
    keys.type("program")
    keys.tab_to(lambda f: f["name"] == "password")
    keys.type(PASSWORDS["program"])
    keys.tab_to(lambda f: f["type"] == "submit")
    keys.tab_to(lambda f: f["name"] == "password", backwards=True)  # and back again
    keys.enter()
    assert "/login" not in page.url
    skip = keys.tab_to(lambda f: True)
    assert skip["href"] == "#main"  # the first stop on a page skips to its content

    keys.tab_to(lambda f: "/grants/show/" in f["href"] and "RCM-HIV-2026-SW" in f["text"])
    keys.enter()
    assert "/grants/show/" in page.url

    keys.tab_to(lambda f: f["id"] == "enter-result")
    keys.enter()
    keys.tab_to(lambda f: f["tag"] == "button" and f["type"] == "submit")  # the chooser's Continue
    keys.enter()
    assert "indicator=" in page.url and "period=" in page.url

    # The total must agree with the parts already entered by country (an exhaustive breakdown).
    parts = page.evaluate(
        """() => Object.fromEntries(['value', 'numerator', 'denominator'].map(name => [name,
            Array.from(document.querySelectorAll(`input[name^="part-"][name$="-${name}"]`))
                 .reduce((sum, input) => sum + (parseFloat(input.value) || 0), 0)]))"""
    )
    figures = {"value": "17", "numerator": "3", "denominator": "4"}
    figures.update({name: f"{total:g}" for name, total in parts.items() if total})
    first = keys.tab_to(lambda f: f["name"] in figures)
    keys.type(figures[first["name"]])
    if first["name"] == "numerator":
        keys.tab_to(lambda f: f["name"] == "denominator")
        keys.type(figures["denominator"])

    keys.tab_to(lambda f: f["id"] == "evidence_title")
    keys.type("Outreach log, keyboard test")
    evidence = tmp_path / "outreach-log.txt"
    evidence.write_text("Outreach sessions: 17 (counts only)\n")
    keys.tab_to(lambda f: f["id"] == "evidence_file")
    with page.expect_file_chooser() as chooser:
        keys.space()
    chooser.value.set_files(str(evidence))

    keys.tab_to(lambda f: f["tag"] == "button" and f["type"] == "submit" and f["text"].startswith("Save"))
    keys.enter()
    body = page.inner_text("main")
    assert "Saved the result" in body, body[:500]
    assert "Outreach log, keyboard test" in body  # the evidence came with it
    assert keys.invisible == []


def test_the_menu_is_reached_with_tab_and_opened_with_enter(server, page):
    keys = Keyboard(page)
    page.goto(server + "/login/")
    page.fill("input[name=username]", "program")
    page.fill("input[name=password]", PASSWORDS["program"])
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_load_state()

    toggle = keys.tab_to(lambda f: f["href"] == "#" and f["text"] == "Budgets")
    assert toggle["visible"]
    page.keyboard.press("Enter")
    item = keys.tab_to(lambda f: f["text"] == "Budget vs actual", limit=10)  # the next stops are its items
    assert item["visible"]
    keys.enter()
    assert "/budget-report" in page.url
    assert keys.invisible == []
