"""Write the next schema revision from the difference between the models and the migrations.

The initial schema (0001) is released and frozen: a change to a model ships as a new
numbered revision made here, is reviewed by hand (autogenerate misses renames and data
moves), and is tested by ``tests/migrations/test_upgrades.py``, which upgrades the demo
snapshot of every earlier release. After the revision is released, freeze the demo at
the new head with ``python -m tests.migrations.snapshot``.

Usage: python migrations/new_revision.py "add budget line totals"
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def next_number() -> str:
    numbers = [int(m.group(1)) for p in (HERE / "versions").glob("*.py") if (m := re.match(r"(\d{4})_", p.name))]
    return f"{max(numbers, default=0) + 1:04d}"


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].strip():
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    message = argv[0].strip()
    from flask_migrate import migrate, upgrade

    from app import create_app
    from config.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env({"GRANTKEEPER_INSTANCE": tmp}, instance_path=Path(tmp))
        app = create_app(settings=settings, INSTANCE_PATH=Path(tmp))
        with app.app_context():
            upgrade(directory=str(HERE))
            rev_id = next_number()
            migrate(directory=str(HERE), message=message, rev_id=rev_id)
    for path in (HERE / "versions").glob(f"{rev_id}_*.py"):
        path.write_text(re.sub(r"Create Date: .*\n", "", path.read_text()))
        print(f"wrote {path.relative_to(HERE.parent)}: read it, then test it with pytest tests/migrations")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
