"""The domain packages the app is made of, in dependency order.

For each one the app imports ``<domain>.models`` (before any view, FAB.md
trap 1), then ``<domain>.contributions`` (what the domain adds to the
extension points of the packages below it, see ``core.registry``), calls
``<domain>.views.register(appbuilder)`` and
``<domain>.api.register(appbuilder)``, and the demo loader calls
``<domain>.demo.load(session, ctx)`` — each only where the module exists. A
new domain is one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType

DOMAINS: tuple[str, ...] = (
    "grants",
    "grants.evidence",
    "grants.compliance",
    "grants.deadlines",
    "grants.closing",
    "budgets",
    "indicators",
    "exports",
    "exports.iati",
)


def domain_modules(part: str) -> Iterator[ModuleType]:
    """Yield ``<domain>.<part>`` for every domain that has it, in order."""
    for domain in DOMAINS:
        name = f"{domain}.{part}"
        try:
            yield importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real import error inside the module must surface
                raise


def load_contributions() -> list[ModuleType]:
    """Import every domain's ``contributions`` module, so each extension point holds all it is given.

    Runs after every model is imported and before any view is registered.
    Importing is what registers; a second call (another app in the same
    process) finds the modules loaded and the registries already filled.
    """
    return list(domain_modules("contributions"))
