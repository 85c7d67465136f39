"""Backups: the database and the file storage together, in one archive with a manifest.

SQLite is copied with its online backup API (consistent while the app runs);
PostgreSQL with ``pg_dump --format=custom``. Every member's SHA-256 is in
``manifest.json`` so a restore can be checked before it is trusted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from core import clock


class BackupError(RuntimeError):
    pass


@dataclass
class BackupResult:
    path: Path
    members: dict[str, str]  # archive name -> sha256


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _dump_database(database_uri: str, workdir: Path) -> Path:
    url = make_url(database_uri)
    if url.get_backend_name() == "sqlite":
        source_path = url.database
        if not source_path or not Path(source_path).exists():
            raise BackupError(f"database: SQLite file '{source_path}' does not exist")
        target = workdir / "grantkeeper.sqlite3"
        source = sqlite3.connect(source_path)
        dest = sqlite3.connect(target)
        try:
            source.backup(dest)
        finally:
            dest.close()
            source.close()
        return target
    if url.get_backend_name() == "postgresql":
        pg_dump = shutil.which("pg_dump")
        if pg_dump is None:
            raise BackupError("database: pg_dump is not installed (apt-get install postgresql-client)")
        target = workdir / "grantkeeper.pgdump"
        env = dict(os.environ)
        if url.password:
            env["PGPASSWORD"] = url.password  # passed by environment, never on the command line
        command = [pg_dump, "--format=custom", "--no-owner", f"--file={target}", "--dbname", url.database or ""]
        if url.host:
            command += ["--host", url.host]
        if url.port:
            command += ["--port", str(url.port)]
        if url.username:
            command += ["--username", url.username]
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise BackupError(f"database: pg_dump failed: {result.stderr.strip()[:500]}")
        return target
    raise BackupError(f"database: backups of '{url.get_backend_name()}' are not supported")


def make_backup(database_uri: str, storage_root: Path, out_dir: Path, now: dt.datetime | None = None) -> BackupResult:
    """Write ``grantkeeper-backup-<UTC time>.tar.gz`` into ``out_dir`` and return its members."""
    now = now or clock.now()
    out_dir.mkdir(parents=True, exist_ok=True)
    archive_path = out_dir / f"grantkeeper-backup-{now:%Y%m%dT%H%M%SZ}.tar.gz"
    members: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        dump = _dump_database(database_uri, Path(tmp))
        partial = archive_path.with_suffix(".partial")
        with tarfile.open(partial, "w:gz") as archive:
            members[f"database/{dump.name}"] = _sha256(dump)
            archive.add(dump, arcname=f"database/{dump.name}")
            if storage_root.exists():
                for path in sorted(p for p in storage_root.rglob("*") if p.is_file()):
                    name = f"storage/{path.relative_to(storage_root).as_posix()}"
                    members[name] = _sha256(path)
                    archive.add(path, arcname=name)
            manifest = json.dumps(
                {"created": now.isoformat(), "format": 1, "members": members}, indent=2, sort_keys=True
            ).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(manifest)
            info.mtime = int(now.timestamp())
            archive.addfile(info, io.BytesIO(manifest))
        os.chmod(partial, 0o600)  # the archive holds everything, confidential evidence included
        partial.rename(archive_path)
    return BackupResult(archive_path, members)


def verify_backup(archive_path: Path) -> list[str]:
    """Return the problems found (empty when every member matches the manifest)."""
    problems = []
    with tarfile.open(archive_path, "r:gz") as archive:
        manifest = json.load(archive.extractfile("manifest.json"))
        for name, expected in manifest["members"].items():
            member = archive.extractfile(name)
            if member is None:
                problems.append(f"{name}: missing")
                continue
            digest = hashlib.sha256(member.read()).hexdigest()
            if digest != expected:
                problems.append(f"{name}: checksum differs")
    return problems
