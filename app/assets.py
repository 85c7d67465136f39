"""The page shell for slow connections: versioned assets, compression, per-page assets.

- Every stylesheet, script, font and image of the layout is served from
  ``/assets/<version>/<origin>/<path>``, where ``version`` is a hash of Flask-AppBuilder's
  release and of our own ``app/static`` files. A release changes the URLs, so browsers may
  keep each file for a year without asking again (``Cache-Control: public,
  max-age=31536000, immutable``). ``url_for('appbuilder.static', ...)`` in any template,
  Flask-AppBuilder's included, is sent to the same versioned URLs.
- Flask-Compress compresses pages and assets (gzip, or brotli where the browser offers it);
  the compressed bytes of a versioned asset are kept in memory after the first request,
  never those of a page.
- The base layout renders the page body first and loads Font Awesome, select2, the date
  picker and Flask-AppBuilder's filter and action scripts only when the body uses them
  (:func:`page_needs`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import flask_appbuilder
from flask import Flask, abort, redirect, send_from_directory, url_for
from flask_compress import Compress
from markupsafe import Markup

YEAR = 365 * 24 * 3600
OWN_STATIC = Path(__file__).resolve().parent / "static"
FAB_STATIC = Path(flask_appbuilder.__file__).resolve().parent / "static" / "appbuilder"
ORIGINS = {"gk": OWN_STATIC, "fab": FAB_STATIC}
COMPRESSED_TYPES = [
    "text/html",
    "text/css",
    "text/plain",
    "text/xml",
    "text/javascript",
    "application/javascript",
    "application/json",
    "image/svg+xml",
    "font/ttf",
    "application/x-font-ttf",
    "application/vnd.ms-fontobject",
]


@lru_cache(maxsize=1)
def asset_version() -> str:
    """Twelve hex digits that change whenever any asset the layout can load changes."""
    digest = hashlib.sha256(f"flask-appbuilder {flask_appbuilder.__version__}".encode())
    for path in sorted(OWN_STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(OWN_STATIC).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def asset_url(origin: str, filename: str) -> str:
    """The versioned URL of ``filename`` under ``origin`` ("gk": ours, "fab": Flask-AppBuilder's)."""
    return url_for("assets.asset", version=asset_version(), origin=origin, filename=filename)


_ICON = re.compile(r'class="(?:[^"]* )?fa(?: [^"]*)?"')


def page_needs(html: str) -> dict[str, bool]:
    """Which optional assets the rendered body of a page uses."""
    return {
        "icons": bool(_ICON.search(html)),
        "select2": "my_select2" in html,
        "datepicker": "appbuilder_date" in html,
        "filters": "AdminFilters" in html,
        "actions": "AdminActions" in html or "modelActions" in html or "action_check" in html,
        "tabs": 'data-toggle="tab"' in html,
    }


_FIRST_H2 = re.compile(r"<h2(\s[^>]*)?>(.*?)</h2>", re.S)
_H1 = re.compile(r"<h1[\s>]")
_H1_TEXT = re.compile(r"<h1(?:\s[^>]*)?>(.*?)</h1>", re.S)
_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def with_h1(html: str) -> Markup:
    """The page body with exactly one ``h1``: a page that has none gets its first ``h2`` promoted."""
    if not _H1.search(html):
        html = _FIRST_H2.sub(lambda m: f"<h1{m.group(1) or ''}>{m.group(2)}</h1>", html, count=1)
    return Markup(html)


def heading_text(html: str) -> str:
    """The plain text of the page's ``h1`` (for the ``<title>``), or '' when there is none."""
    match = _H1_TEXT.search(html)
    if not match:
        return ""
    text = _SPACE.sub(" ", _TAGS.sub(" ", match.group(1))).strip()
    return Markup(text).unescape()


def described_by(chart: Any, target_id: str) -> Markup:
    """A server-rendered SVG chart whose figures are in the element ``target_id`` (a table)."""
    html = str(chart)
    return Markup(html.replace("<svg ", f'<svg aria-describedby="{Markup.escape(target_id)}" ', 1))


def page_lang() -> str:
    """The BCP 47 tag of the language the page is shown in (``lang`` on ``<html>``)."""
    try:
        from flask_babel import get_locale

        locale = get_locale()
    except Exception:  # noqa: BLE001 - outside a request or without Babel: the default
        locale = None
    return str(locale).replace("_", "-") if locale else "en"


class _AssetCache:
    """Flask-Compress's cache: keeps the compressed bytes of versioned assets, never of a page."""

    def __init__(self) -> None:
        self._store: dict[str, bytes] = {}

    @staticmethod
    def _is_asset(key: str) -> bool:
        return key.partition(";")[2].startswith("/assets/")

    def get(self, key: str) -> bytes | None:
        return self._store.get(key) if self._is_asset(key) else None

    def set(self, key: str, value: bytes) -> None:
        if self._is_asset(key):
            self._store[key] = value


def init_app(app: Flask) -> None:
    from flask import Blueprint

    blueprint = Blueprint("assets", __name__)

    @blueprint.route("/assets/<version>/<origin>/<path:filename>")
    def asset(version: str, origin: str, filename: str) -> Any:
        root = ORIGINS.get(origin)
        if root is None:
            abort(404)
        if version != asset_version():
            # A page cached before a release asks for the old version: send the current file.
            return redirect(asset_url(origin, filename), 302)
        response = send_from_directory(root, filename, max_age=YEAR, etag=True)
        response.cache_control.public = True
        response.cache_control.immutable = True
        # Read now (not streamed) so that Flask-Compress compresses it once and keeps the bytes.
        response.direct_passthrough = False
        response.make_sequence()
        return response

    app.register_blueprint(blueprint)

    app.config.setdefault("COMPRESS_MIMETYPES", COMPRESSED_TYPES)
    app.config.setdefault("COMPRESS_ALGORITHM", ["br", "gzip"])
    app.config.setdefault("COMPRESS_LEVEL", 6)
    app.config.setdefault("COMPRESS_BR_LEVEL", 5)
    app.config.setdefault("COMPRESS_MIN_SIZE", 500)
    app.config.setdefault("COMPRESS_STREAMS", False)  # downloads streamed by a view stay as they are
    app.config.setdefault("COMPRESS_CACHE_KEY", lambda req: req.path)
    app.config.setdefault("COMPRESS_CACHE_BACKEND", _AssetCache)
    Compress(app)

    flask_url_for: Callable[..., str] = app.jinja_env.globals["url_for"]  # type: ignore[assignment]

    def versioned_url_for(endpoint: str, **values: Any) -> str:
        if endpoint == "appbuilder.static" and "filename" in values:
            return asset_url("fab", values["filename"])
        return flask_url_for(endpoint, **values)

    app.jinja_env.globals.update(
        url_for=versioned_url_for,
        asset_url=asset_url,
        page_needs=page_needs,
        page_lang=page_lang,
        with_h1=with_h1,
        heading_text=heading_text,
    )
    app.jinja_env.filters["described_by"] = described_by


__all__ = ["asset_url", "asset_version", "described_by", "init_app", "page_needs"]
