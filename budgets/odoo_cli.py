"""``python run.py sync-odoo``: sync every enabled grant's spending from Odoo (or one grant), print a summary each."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from budgets import odoo_sync
from budgets.odoo import OdooError
from core.audit import acting_as
from core.errors import DomainValidationError


def sync_odoo(
    app: Any,
    *,
    grant: str | None = None,
    full: bool = False,
    confirm_removals: bool = False,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """0 when every grant synced; 2 (with the message on stderr) when settings, Odoo or any grant refused."""
    from core.extensions import db

    with app.app_context(), acting_as(odoo_sync.SYNC_ACTOR):
        try:
            links = odoo_sync.links_to_sync(db.session, grant)
            if not links:
                print("No grant has an enabled Odoo link; nothing to sync.", file=out)
                return 0
            client = odoo_sync.client_from_env(app.config["GK_SETTINGS"].odoo_env)
        except (OdooError, DomainValidationError) as exc:
            print(f"error: {exc}", file=err)
            return 2
        failed = 0
        for link in links:
            reference = link.grant.reference
            try:
                result = odoo_sync.sync_and_commit(
                    db.session, client, link, full=full, confirm_removals=confirm_removals
                )
            except (OdooError, DomainValidationError) as exc:
                failed += 1
                print(f"error: {reference}: {exc}", file=err)
                continue
            print(result.summary(), file=out)
        client.close()
        return 2 if failed else 0
