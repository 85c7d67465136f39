"""The instance folder: database file, secret key, stored files. Created on first start."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def ensure_instance(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(path, 0o700)
    except OSError:  # e.g. a mounted volume that refuses chmod; the key file still is 0600
        pass
    return path


def load_or_create_secret(path: Path, configured: str | None = None, name: str = "secret_key") -> str:
    """Return the instance's secret, generating it once with 0600 permissions.

    Never in the repository, never printed. A ``configured`` secret (the
    settings' ``secret_key``, from GRANTKEEPER_SECRET_KEY) takes precedence,
    for several web workers on several hosts.
    """
    if configured:
        return configured
    key_file = path / name
    if key_file.exists():
        return key_file.read_text().strip()
    secret = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting together agree on one key.
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return key_file.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret
