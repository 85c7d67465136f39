"""``python run.py restore ARCHIVE``: a backup comes back whole (database and files, checksums verified), on SQLite
and PostgreSQL; a damaged archive changes nothing; unfinished uploads are neither kept nor backed up."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tarfile
import time
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine, select, text

from tests.app.test_cli import run

ADMIN = {"GRANTKEEPER_PASSWORD_ADMIN": "Admin-Restore-pw-12"}


@contextlib.contextmanager
def _database(kind: str, instance: Path):
    if kind == "sqlite":
        yield f"sqlite:///{instance / 'grantkeeper.sqlite3'}"
        return
    base = os.environ.get("TEST_DATABASE_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    from tests.conftest import _postgres_database

    try:
        generator = _postgres_database(base)
        url = next(generator)
    except Exception as exc:  # pragma: no cover - only without a PostgreSQL server
        pytest.skip(f"no PostgreSQL server to restore into ({type(exc).__name__})")
    try:
        yield url
    finally:
        with contextlib.suppress(StopIteration):
            next(generator)


def _snapshot(url: str) -> dict[str, list[tuple]]:
    engine = create_engine(url)
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            return {
                name: sorted(tuple(map(str, row)) for row in connection.execute(select(table)))
                for name, table in sorted(metadata.tables.items())
            }
    finally:
        engine.dispose()


def _files(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_backup_restores_the_database_and_every_file_exactly(kind, tmp_path):
    instance = tmp_path / "instance"
    with _database(kind, instance) as url:
        env = {**ADMIN, "DATABASE_URL": url}
        loaded = run(["init", "--demo"], instance, env)
        assert loaded.returncode == 0, loaded.stderr
        storage = instance / "storage"
        leftover = storage / ".incoming-killed-upload"
        leftover.write_bytes(b"x" * 1024)  # an upload a kill interrupted, just now
        made = run(["backup", "-o", str(tmp_path / "backups")], instance, env)
        assert made.returncode == 0, made.stderr
        (archive,) = (tmp_path / "backups").glob("grantkeeper-backup-*.tar.gz")
        with tarfile.open(archive) as opened:
            assert not any(".incoming-" in name for name in opened.getnames())
        leftover.unlink()
        before_rows, before_files = _snapshot(url), _files(storage)
        assert before_files and sum(len(rows) for rows in before_rows.values()) > 100

        # Life goes on after the backup: a renamed grant, a lost file, a new one.
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("UPDATE grants SET title = 'Renamed after the backup'"))
            connection.execute(text("DELETE FROM audit_log"))
        engine.dispose()
        next(iter(p for p in storage.rglob("*") if p.is_file())).unlink()
        (storage / "stray.bin").write_bytes(b"new")

        restored = run(["restore", str(archive), "--yes"], instance, env)
        assert restored.returncode == 0, restored.stderr
        assert "every checksum matched" in restored.stdout
        assert _snapshot(url) == before_rows
        assert _files(storage) == before_files
        assert list(instance.glob("storage.before-restore-*"))  # what was there is kept aside


def test_a_damaged_archive_is_refused_and_changes_nothing(tmp_path):
    instance = tmp_path / "instance"
    url = f"sqlite:///{instance / 'grantkeeper.sqlite3'}"
    env = {**ADMIN, "DATABASE_URL": url}
    assert run(["init", "--demo"], instance, env).returncode == 0
    assert run(["backup", "-o", str(tmp_path / "backups")], instance, env).returncode == 0
    (archive,) = (tmp_path / "backups").glob("grantkeeper-backup-*.tar.gz")
    # Re-pack the archive with one stored file altered, keeping the manifest as it was.
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(archive) as source, tarfile.open(damaged, "w:gz") as target:
        altered = False
        for member in source.getmembers():
            data = source.extractfile(member).read()
            if member.name.startswith("storage/") and not altered:
                data, altered = data + b"!", True
                member.size = len(data)
            target.addfile(member, io.BytesIO(data))
    before_rows, before_files = _snapshot(url), _files(instance / "storage")
    result = run(["restore", str(damaged), "--yes"], instance, env)
    assert result.returncode == 2
    assert "checksums do not match, nothing was restored" in result.stderr
    assert _snapshot(url) == before_rows and _files(instance / "storage") == before_files


def test_an_upload_left_unfinished_is_removed_when_the_app_starts(tmp_path, database_url):
    from tests.conftest import make_app

    storage = tmp_path / "storage"
    storage.mkdir()
    abandoned = storage / ".incoming-abc123"
    abandoned.write_bytes(b"half an upload")
    old = time.time() - 3600
    os.utime(abandoned, (old, old))
    in_progress = storage / ".incoming-def456"
    in_progress.write_bytes(b"being written by another worker")
    make_app(tmp_path, database_url)
    assert not abandoned.exists()
    assert in_progress.exists()  # touched just now: another worker's write, left alone
