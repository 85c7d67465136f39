"""The grant page's panels: each domain contributes a summary without the page knowing it.

A domain registers ``provider(session, grant, user) -> Panel | None`` from its
``register(appbuilder)``; the grant view renders whatever the providers return.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup
from sqlalchemy.orm import Session


@dataclass
class Panel:
    title: str
    order: int
    rows: list[tuple[str, Any]] = field(default_factory=list)  # (label, value) pairs
    html: Markup | None = None  # rendered by the domain's own template
    link: tuple[str, str] | None = None  # (text, url)


PanelProvider = Callable[[Session, Any, Any], "Panel | None"]
_providers: list[PanelProvider] = []


def register_panel(provider: PanelProvider) -> None:
    if provider not in _providers:
        _providers.append(provider)


def grant_panels(session: Session, grant: Any, user: Any) -> list[Panel]:
    panels = [p for p in (provider(session, grant, user) for provider in _providers) if p is not None]
    return sorted(panels, key=lambda panel: panel.order)
