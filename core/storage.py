"""The one content-addressed file store: blobs named by their SHA-256, verified on every read.

Evidence, funder templates and generated exports all go through ``FileStore``.
A blob lives at ``<root>/ab/cd/<sha256>``; writing the same bytes twice stores
them once. Writes go to a temporary file in the same directory and are renamed
into place, so a crash never leaves a half-written blob under a real name, and
several web workers writing the same blob at once are harmless.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

from core.formatting import gettext as _
from core.formatting import number

CHUNK = 1024 * 1024
TEMP_PREFIX = ".incoming-"
# A write in progress touches its temporary file at least every chunk; one untouched this long was abandoned
# (a worker killed mid-upload) and is removed at start-up, even while other workers are serving.
ABANDONED_AFTER_SECONDS = 10 * 60
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class StorageError(Exception):
    """A blob could not be stored or read."""


class BlobNotFound(StorageError):
    pass


class BlobCorrupted(StorageError):
    """The bytes on disk no longer match the checksum they were stored under."""


class BlobTooLarge(StorageError):
    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(_("the file is larger than the limit of %(limit)s bytes", limit=number(limit)))


class FileStore:
    """Content-addressed blobs under ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # ------------------------------------------------------------ naming

    @staticmethod
    def check_sha(sha: str) -> str:
        """Refuse anything that is not a lower-case SHA-256 hex digest (no path tricks)."""
        if not isinstance(sha, str) or not _SHA256.match(sha):
            raise BlobNotFound(_("not a SHA-256 checksum"))
        return sha

    def path_for(self, sha: str) -> Path:
        sha = self.check_sha(sha)
        return self.root / sha[:2] / sha[2:4] / sha

    # ------------------------------------------------------------ writing

    def put(self, data: bytes | BinaryIO, max_bytes: int | None = None) -> str:
        """Store ``data`` (bytes or a binary stream) and return its SHA-256 hex digest.

        With ``max_bytes`` the stream is refused with BlobTooLarge as soon as it
        passes the limit, and nothing is left behind.
        """
        stream: BinaryIO = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=self.root)
        try:
            with os.fdopen(fd, "wb") as tmp:
                while True:
                    chunk = stream.read(CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise BlobTooLarge(size, max_bytes)
                    digest.update(chunk)
                    tmp.write(chunk)
                tmp.flush()
                os.fsync(tmp.fileno())
            sha = digest.hexdigest()
            target = self.path_for(sha)
            if target.exists() and self._matches(target, sha):
                os.unlink(tmp_name)
                return sha
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp_name, 0o640)
            os.replace(tmp_name, target)  # atomic on one filesystem
            return sha
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise

    def remove_abandoned(self, older_than_seconds: float = ABANDONED_AFTER_SECONDS, now: float | None = None) -> int:
        """Delete temporary files of writes that never finished (a kill during an upload); returns how many."""
        if not self.root.is_dir():
            return 0
        now = time.time() if now is None else now
        removed = 0
        for path in self.root.glob(f"{TEMP_PREFIX}*"):
            try:
                if path.is_file() and now - path.stat().st_mtime >= older_than_seconds:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:  # another worker removed or finished it
                continue
        return removed

    # ------------------------------------------------------------ reading

    def exists(self, sha: str) -> bool:
        try:
            return self.path_for(sha).is_file()
        except BlobNotFound:
            return False

    def size(self, sha: str) -> int:
        path = self.path_for(sha)
        if not path.is_file():
            raise BlobNotFound(_("no stored file %(file)s…", file=sha[:12]))
        return path.stat().st_size

    def read(self, sha: str) -> bytes:
        """The blob's bytes, after checking they still hash to ``sha``."""
        path = self.path_for(sha)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(_("no stored file %(file)s…", file=sha[:12])) from None
        if hashlib.sha256(data).hexdigest() != sha:
            raise BlobCorrupted(
                _(
                    "stored file %(file)s… is corrupted (its checksum no longer matches); restore it from a backup",
                    file=sha[:12],
                )
            )
        return data

    def open(self, sha: str) -> BinaryIO:
        """A binary stream of the blob, verified against its checksum before it is handed out.

        The whole file is checked first (streamed, not loaded into memory), so a
        caller never sends a client bytes that turn out to be corrupt half-way.
        """
        path = self.path_for(sha)
        if not path.is_file():
            raise BlobNotFound(_("no stored file %(file)s…", file=sha[:12]))
        if not self._matches(path, sha):
            raise BlobCorrupted(
                _(
                    "stored file %(file)s… is corrupted (its checksum no longer matches); restore it from a backup",
                    file=sha[:12],
                )
            )
        return path.open("rb")

    def delete(self, sha: str) -> bool:
        """Remove a blob (callers check first that nothing refers to it). True if it existed."""
        path = self.path_for(sha)
        try:
            path.unlink()
            return True
        except FileNotFoundError:
            return False

    @staticmethod
    def _matches(path: Path, sha: str) -> bool:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digest.update(chunk)
        return digest.hexdigest() == sha


def is_temporary(path: Path) -> bool:
    """A write in progress (or abandoned): never part of a backup."""
    return path.name.startswith(TEMP_PREFIX)


def store_for(config: dict) -> FileStore:
    """The store configured for an app (``app.config``); the web layer passes its config in."""
    return FileStore(config["STORAGE_ROOT"])


def file_store() -> FileStore:
    """The store of the app serving the current request (views and API only)."""
    # Imported here so that services, which take a FileStore, never pull Flask in.
    from flask import current_app

    return store_for(current_app.config)
