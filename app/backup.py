"""Backups and restores: the database and the file storage together, in one archive with a manifest.

SQLite is copied with its online backup API (consistent while the app runs);
PostgreSQL with ``pg_dump --format=custom``. Every member's SHA-256 is in
``manifest.json``; ``restore_backup`` checks every one before it changes anything,
then puts the database and the stored files back (the app must be stopped).
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
from core.storage import is_temporary


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
                # Temporary files of unfinished uploads are not data: never backed up.
                for path in sorted(p for p in storage_root.rglob("*") if p.is_file() and not is_temporary(p)):
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
        listing = archive.extractfile("manifest.json")
        if listing is None:
            return ["manifest.json: missing"]
        manifest = json.load(listing)
        for name, expected in manifest["members"].items():
            member = archive.extractfile(name)
            if member is None:
                problems.append(f"{name}: missing")
                continue
            digest = hashlib.sha256(member.read()).hexdigest()
            if digest != expected:
                problems.append(f"{name}: checksum differs")
    return problems


@dataclass
class RestoreResult:
    database: str  # what was restored into, without any password
    files: int
    kept: Path | None  # the storage folder as it was before, moved aside


def _members(archive: tarfile.TarFile) -> dict[str, str]:
    try:
        listing = archive.extractfile("manifest.json")
        if listing is None:
            raise KeyError("manifest.json")
        members = dict(json.load(listing)["members"])
    except (KeyError, TypeError, ValueError):
        raise BackupError("archive: no readable manifest.json; this is not a Grantkeeper backup") from None
    for name in members:
        parts = name.split("/")
        if parts[0] not in ("database", "storage") or ".." in parts or name.startswith("/") or "\\" in name:
            raise BackupError(f"archive: the member name {name!r} is not one a backup writes; refused")
    return members


def restore_backup(archive_path: Path, database_uri: str, storage_root: Path) -> RestoreResult:
    """Put a verified backup back: its database replaces the current one and its files the storage folder.

    Every checksum is verified first; if one differs, nothing is changed. The storage
    folder as it was is kept next to it (``<storage>.before-restore-<time>``).
    """
    if not archive_path.is_file():
        raise BackupError(f"archive: '{archive_path}' does not exist")
    try:
        problems = verify_backup(archive_path)
    except (tarfile.TarError, OSError, KeyError, ValueError, TypeError):
        raise BackupError("archive: it cannot be read as a Grantkeeper backup (.tar.gz with a manifest)") from None
    if problems:
        raise BackupError("archive: the checksums do not match, nothing was restored: " + "; ".join(problems[:10]))
    url = make_url(database_uri)
    backend = url.get_backend_name()
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(archive_path, "r:gz") as archive:
        members = _members(archive)
        work = Path(tmp)
        dumps = [name for name in members if name.startswith("database/")]
        wanted = {"sqlite": "database/grantkeeper.sqlite3", "postgresql": "database/grantkeeper.pgdump"}.get(backend)
        if wanted is None:
            raise BackupError(f"database: restores into '{backend}' are not supported")
        if wanted not in dumps:
            raise BackupError(
                f"archive: it holds {', '.join(dumps) or 'no database'}, which cannot be restored into {backend}"
            )
        staged_files = work / "storage"
        staged_files.mkdir()
        for name, expected in members.items():
            target = work / name
            target.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(name)
            if source is None:
                raise BackupError(f"archive: {name} is missing")
            with target.open("wb") as out:
                shutil.copyfileobj(source, out)
            if _sha256(target) != expected:
                raise BackupError(f"archive: {name} changed while it was read; nothing was restored")
        _restore_database(url, work / wanted)
        kept = None
        if storage_root.exists():
            kept = storage_root.with_name(f"{storage_root.name}.before-restore-{clock.now():%Y%m%dT%H%M%SZ}")
            storage_root.rename(kept)
        shutil.copytree(staged_files, storage_root)
    files = sum(1 for name in members if name.startswith("storage/"))
    return RestoreResult(url.render_as_string(hide_password=True), files, kept)


def _restore_database(url: object, dump: Path) -> None:
    backend = url.get_backend_name()  # type: ignore[attr-defined]
    if backend == "sqlite":
        target = Path(url.database or "")  # type: ignore[attr-defined]
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_name(target.name + ".restoring")
        source = sqlite3.connect(dump)
        dest = sqlite3.connect(staged)
        try:
            source.backup(dest)
        finally:
            dest.close()
            source.close()
        for suffix in ("-wal", "-shm"):  # the old file's journal must not be replayed over the restored one
            Path(str(target) + suffix).unlink(missing_ok=True)
        os.replace(staged, target)
        return
    pg_restore = shutil.which("pg_restore")
    if pg_restore is None:
        raise BackupError("database: pg_restore is not installed (apt-get install postgresql-client)")
    env = dict(os.environ)
    if url.password:  # type: ignore[attr-defined]
        env["PGPASSWORD"] = url.password  # type: ignore[attr-defined]  # by environment, never on the command line
    command = [
        pg_restore,
        "--clean",
        "--if-exists",
        "--no-owner",
        "--single-transaction",
        "--exit-on-error",
        "--dbname",
        url.database or "",  # type: ignore[attr-defined]
    ]
    for flag, value in (("--host", url.host), ("--port", url.port), ("--username", url.username)):  # type: ignore[attr-defined]
        if value:
            command += [flag, str(value)]
    result = subprocess.run([*command, str(dump)], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"database: pg_restore failed, the database is unchanged: {result.stderr.strip()[:500]}")
