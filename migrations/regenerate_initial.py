"""Regenerate 0001_initial_schema.py from the models (pre-release only).

Until the first release no database outside development exists, so the
schema lives in one initial migration. After a release, add ordinary
revisions with ``flask --app app:create_app db migrate`` instead.

Usage: python migrations/regenerate_initial.py
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def main() -> int:
    target = HERE / "versions" / "0001_initial_schema.py"
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["GRANTKEEPER_INSTANCE"] = tmp
        os.environ.pop("DATABASE_URL", None)
        from flask_migrate import migrate

        from app import create_app

        app = create_app()
        if target.exists():
            target.unlink()
        with app.app_context():
            migrate(directory=str(HERE), message="initial schema", rev_id="0001")
    generated = next((HERE / "versions").glob("0001_*.py"))
    if generated != target:
        generated.rename(target)
    text = target.read_text()
    text = re.sub(r"Create Date: .*\n", "", text)
    target.write_text(text)
    print(f"wrote {target.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
