"""The content-addressed file store: stored once, verified on every read, nothing half-written."""

import hashlib
import io

import pytest

from core.storage import BlobCorrupted, BlobNotFound, BlobTooLarge, FileStore


def test_same_file_twice_is_stored_once_under_its_checksum(tmp_path):
    store = FileStore(tmp_path)
    sha = store.put(b"minutes of the RCM")
    again = store.put(io.BytesIO(b"minutes of the RCM"))
    assert sha == again == hashlib.sha256(b"minutes of the RCM").hexdigest()
    assert store.path_for(sha) == tmp_path / sha[:2] / sha[2:4] / sha
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [store.path_for(sha)]
    assert store.read(sha) == b"minutes of the RCM" and store.size(sha) == 18 and store.exists(sha)


def test_a_corrupted_file_is_refused_when_read(tmp_path):
    store = FileStore(tmp_path)
    sha = store.put(b"attendance counts")
    store.path_for(sha).write_bytes(b"attendance COUNTS")
    with pytest.raises(BlobCorrupted, match="corrupted"):
        store.read(sha)
    with pytest.raises(BlobCorrupted):
        store.open(sha)


def test_a_stream_over_the_limit_leaves_nothing_behind(tmp_path):
    store = FileStore(tmp_path)
    with pytest.raises(BlobTooLarge):
        store.put(io.BytesIO(b"x" * 2000), max_bytes=1000)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("name", ["../../etc/passwd", "ABC", "0" * 63, "g" * 64])
def test_only_checksums_name_files(tmp_path, name):
    store = FileStore(tmp_path)
    with pytest.raises(BlobNotFound):
        store.read(name)
    assert store.exists(name) is False


def test_missing_blob_is_reported_as_missing(tmp_path):
    with pytest.raises(BlobNotFound):
        FileStore(tmp_path).open("a" * 64)


def test_views_get_the_store_of_the_app_serving_the_request(tmp_path):
    from flask import Flask

    from core.storage import FileStore, file_store

    web = Flask(__name__)
    web.config["STORAGE_ROOT"] = str(tmp_path / "blobs")
    with web.app_context():
        store = file_store()
    assert isinstance(store, FileStore) and store.root == tmp_path / "blobs"
