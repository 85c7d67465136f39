"""The grant page's panels: each domain contributes a summary without the page knowing it.

A domain adds ``provider(session, grant, user) -> Panel | None`` to ``PANELS``
(``register_panel`` does it from its ``register(appbuilder)``); the grant view
renders whatever the providers return, ordered by ``Panel.order``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup
from sqlalchemy.orm import Session

from core.registry import Registry


@dataclass
class Panel:
    title: str
    order: int
    rows: list[tuple[str, Any]] = field(default_factory=list)  # (label, value) pairs
    html: Markup | None = None  # rendered by the domain's own template
    link: tuple[str, str] | None = None  # (text, url)


PanelProvider = Callable[[Session, Any, Any], "Panel | None"]

PANELS: Registry[PanelProvider] = Registry("grant page panel")


def register_panel(provider: PanelProvider) -> None:
    """Add a panel provider, named after its function (registering again replaces it)."""
    PANELS.add(f"{provider.__module__}.{provider.__qualname__}", provider)


def grant_panels(session: Session, grant: Any, user: Any) -> list[Panel]:
    panels = [p for p in (provider(session, grant, user) for provider in PANELS.values()) if p is not None]
    return sorted(panels, key=lambda panel: panel.order)
