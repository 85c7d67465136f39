"""Light on a slow connection: versioned assets cached for a year, compressed pages and assets,
optional libraries only on the pages that use them, nothing from outside the app."""

from __future__ import annotations

import gzip
import re

import pytest

from app import assets

ASSET = re.compile(r'(?:src|href)="(/assets/[^"]+)"')


def asset_urls(html: str) -> list[str]:
    return ASSET.findall(html)


def test_the_layout_loads_its_assets_from_versioned_urls_cached_for_a_year(anonymous_client):
    html = anonymous_client.get("/login/").get_data(as_text=True)
    urls = asset_urls(html)
    assert any(url.endswith("/gk/css/grantkeeper.css") for url in urls)
    assert all(f"/assets/{assets.asset_version()}/" in url for url in urls)
    for url in urls:
        response = anonymous_client.get(url)
        assert response.status_code == 200, url
        cache = response.headers["Cache-Control"]
        assert "max-age=31536000" in cache and "immutable" in cache and "public" in cache, (url, cache)


def test_assets_and_pages_are_gzipped_for_a_browser_that_asks(program_client, world):
    css = program_client.get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
    url = next(url for url in asset_urls(css) if url.endswith("bootstrap.min.css"))
    plain = program_client.get(url)
    assert "Content-Encoding" not in plain.headers
    packed = program_client.get(url, headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.get_data()) == plain.get_data()
    assert len(packed.get_data()) < len(plain.get_data()) / 3
    assert "Accept-Encoding" in packed.headers["Vary"]

    page = program_client.get(f"/grants/show/{world.grant_a}", headers={"Accept-Encoding": "gzip"})
    assert page.status_code == 200
    assert page.headers["Content-Encoding"] == "gzip"
    assert "Grant A" in gzip.decompress(page.get_data()).decode()


def test_an_asset_url_of_an_older_release_leads_to_the_current_file(anonymous_client):
    response = anonymous_client.get("/assets/000000000000/gk/css/grantkeeper.css")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/assets/{assets.asset_version()}/gk/css/grantkeeper.css")
    assert anonymous_client.get("/assets/x/elsewhere/etc/passwd").status_code == 404
    assert anonymous_client.get(f"/assets/{assets.asset_version()}/gk/../../../config/settings.py").status_code == 404


def test_a_changed_file_gets_a_new_version(tmp_path, monkeypatch):
    (tmp_path / "site.css").write_text("a { color: #1c5a8f }")
    monkeypatch.setattr(assets, "OWN_STATIC", tmp_path)
    assets.asset_version.cache_clear()
    try:
        first = assets.asset_version()
        (tmp_path / "site.css").write_text("a { color: #0f3a60 }")
        assets.asset_version.cache_clear()
        assert assets.asset_version() != first
    finally:
        monkeypatch.undo()
        assets.asset_version.cache_clear()


def test_the_grant_page_loads_no_icon_font_select2_or_date_picker(program_client, world):
    html = program_client.get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
    for library in ("fontawesome", "select2", "datepicker", "ab_filters.js"):
        assert library not in html, library
    # Flask-AppBuilder's own script reference on this page is versioned too
    assert re.search(r'src="/assets/[0-9a-f]{12}/fab/js/ab_keep_tab\.js"', html)


def test_a_form_with_searchable_choices_loads_select2_and_its_styles(admin_client, world):
    html = admin_client.get("/periods/add").get_data(as_text=True)
    assert "my_select2" in html
    assert "/fab/js/select2/select2.min.js" in html
    assert "/fab/css/select2/select2.min.css" in html


@pytest.mark.parametrize(
    ("body", "needs"),
    [
        ('<i class="fa fa-upload"></i>', {"icons"}),
        ('<select class="my_select2 form-control">', {"select2"}),
        ('<input class="appbuilder_date">', {"datepicker"}),
        ("<p>nothing special, fa-ntastic</p>", set()),
    ],
)
def test_optional_assets_follow_what_the_page_body_uses(body, needs):
    assert {name for name, used in assets.page_needs(body).items() if used} == needs


def test_pages_load_nothing_from_outside_the_app(program_client, world):
    for path in ("/", f"/grants/show/{world.grant_a}", "/periods/list/"):
        html = program_client.get(path).get_data(as_text=True)
        external = re.findall(r'(?:src|href)="((?:https?:)?//[^"]+)"', html)
        assert external == [], (path, external)


def test_a_page_without_an_h1_gets_its_first_h2_as_h1_and_title():
    body = '<main><h2 class="x">Budget <small>vs</small> actual</h2><h2>Other</h2></main>'
    promoted = assets.with_h1(body)
    assert promoted.count("<h1") == 1 and '<h1 class="x">' in promoted and "<h2>Other</h2>" in promoted
    assert assets.heading_text(promoted) == "Budget vs actual"
    assert assets.with_h1("<h1>Kept</h1><h2>Second</h2>").count("<h1") == 1


def test_a_chart_is_described_by_the_table_of_its_figures():
    chart = '<svg class="budget-chart" role="img" aria-label="Spending">...</svg>'
    assert 'aria-describedby="figures"' in assets.described_by(chart, "figures")
