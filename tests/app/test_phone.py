"""On a 390 px phone: no page of the cycle scrolls sideways, forms put each label above its
field, tables turn into cards, and controls are big enough to tap."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.live import CHROMIUM, PHONE, ROLES, cycle_pages, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


@pytest.fixture(scope="module")
def server(demo_server):
    return demo_server("phone-instance")


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport=PHONE, has_touch=True)
    yield context.new_page()
    context.close()


SIDEWAYS = "() => [document.scrollingElement.scrollWidth, window.innerWidth]"

SMALL_CONTROLS = """() => {
    const small = [];
    for (const el of document.querySelectorAll('main a.btn, main button, main input:not([type=hidden]), main select, main textarea, main .select2-selection, header button, .pagination a')) {
        if (el.classList.contains('select2-hidden-accessible')) continue;  // select2 shows its own box
        const box = el.getBoundingClientRect();
        if (box.width === 0 || box.height === 0) continue;  // not shown
        if (box.width < 24 || box.height < 24) small.push(el.outerHTML.slice(0, 80) + ' ' + Math.round(box.width) + 'x' + Math.round(box.height));
    }
    return small;
}"""


@pytest.mark.parametrize("role", ROLES)
def test_no_page_of_the_cycle_scrolls_sideways_on_a_phone(server, phone, role):
    sign_in(phone, server, role)
    wide = {}
    for name, path in cycle_pages(phone, server).items():
        phone.goto(server + path)
        phone.wait_for_load_state("load")
        scroll_width, inner_width = phone.evaluate(SIDEWAYS)
        if scroll_width > inner_width:
            wide[name] = scroll_width
    assert wide == {}


def test_a_page_wider_than_the_phone_is_detected(server, phone):
    """The check can fail: a block wider than the screen makes the page scroll sideways."""
    phone.goto(server + "/login/")
    phone.evaluate(
        "() => document.querySelector('main').insertAdjacentHTML('beforeend', '<div style=\"width:900px\">x</div>')"
    )
    scroll_width, inner_width = phone.evaluate(SIDEWAYS)
    assert scroll_width > inner_width


def test_controls_of_the_cycle_are_at_least_24_px_and_save_is_44_px(server, phone):
    sign_in(phone, server, "program")
    pages = cycle_pages(phone, server)
    small = {}
    for name, path in pages.items():
        phone.goto(server + path)
        found = phone.evaluate(SMALL_CONTROLS)
        if found:
            small[name] = found
    assert small == {}
    phone.goto(server + pages["consultation form"])
    save = phone.locator("main button[type=submit].btn-primary").first.bounding_box()
    assert save["height"] >= 44
    assert save["width"] >= PHONE["width"] / 2  # a wide target for a thumb


def test_form_labels_sit_above_their_fields_on_a_phone(server, phone):
    sign_in(phone, server, "program")
    pages = cycle_pages(phone, server)
    for name in ("consultation form", "evidence form", "result form"):
        phone.goto(server + pages[name])
        pairs = phone.evaluate(
            """() => Array.from(document.querySelectorAll('main label[for]')).map(label => {
                const field = document.getElementById(label.htmlFor);
                if (!field || field.type === 'checkbox' || field.type === 'radio' || field.type === 'hidden') return null;
                const a = label.getBoundingClientRect(), b = field.getBoundingClientRect();
                if (!b.width) return null;
                return [label.textContent.trim(), a.bottom <= b.top + 2, b.right <= window.innerWidth];
            }).filter(Boolean)"""
        )
        assert pairs, name
        beside = [label for label, above, fits in pairs if not (above and fits)]
        assert beside == [], name


def test_lists_become_cards_with_the_key_column_first(server, phone):
    sign_in(phone, server, "program")
    pages = cycle_pages(phone, server)
    for name in ("evidence list", "period list", "my deadlines"):
        phone.goto(server + pages[name])
        card = phone.locator("main table.gk-cards tbody tr").first
        assert card.count() == 1, name
        cells = card.locator("td, th")
        first = cells.first.bounding_box()
        assert first["x"] >= 0 and first["x"] + first["width"] <= PHONE["width"], name
        # every cell of the card is on screen, one under the other, and names its column
        boxes = [cells.nth(i).bounding_box() for i in range(cells.count())]
        shown = [box for box in boxes if box and box["height"] > 0]
        assert all(box["x"] + box["width"] <= PHONE["width"] + 1 for box in shown), name
        assert [box["y"] for box in shown] == sorted(box["y"] for box in shown), name
        assert cells.first.get_attribute("data-label"), name
