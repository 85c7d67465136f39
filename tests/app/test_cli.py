"""run.py as a user runs it: a fresh instance, the demo, the help text, and the server answering."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(args, instance, extra_env=None, timeout=180):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTKEEPER_") and k != "DATABASE_URL"}
    env["GRANTKEEPER_INSTANCE"] = str(instance)
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "run.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_help_lists_every_subcommand_with_one_line(tmp_path):
    result = run(["--help"], tmp_path)
    assert result.returncode == 0
    for command in ("serve", "init", "create-admin"):
        assert command in result.stdout


def test_init_demo_prints_generated_passwords_once_and_is_idempotent(tmp_path):
    first = run(["init", "--demo"], tmp_path, {"GRANTKEEPER_PASSWORD_ADMIN": "Admin-From-Env-123"})
    assert first.returncode == 0, first.stderr
    assert "demo organisation is loaded" in first.stdout
    lines = {line.split()[0]: line for line in first.stdout.splitlines() if line.startswith("  ")}
    assert set(lines) == {"admin", "finance", "program", "donor.gf", "auditor"}
    assert "from the environment" in lines["admin"] and "Admin-From-Env-123" not in first.stdout
    assert "generated now" in lines["program"]
    second = run(["init", "--demo"], tmp_path)
    assert second.returncode == 0
    assert "already loaded" in second.stdout
    assert "generated now" not in second.stdout
    key = tmp_path / "secret_key"
    assert key.exists() and (key.stat().st_mode & 0o777) == 0o600


def test_create_admin_refuses_a_bad_role_with_a_clear_message(tmp_path):
    run(["init"], tmp_path, {"GRANTKEEPER_PASSWORD_ADMIN": "Xx-Yy-zz-12345"})
    result = run(
        ["create-admin", "boss", "boss@example.org", "--role", "Overlord"],
        tmp_path,
        {"GRANTKEEPER_ADMIN_PASSWORD": "Pw-Pw-pw-12345"},
    )
    assert result.returncode == 2
    assert "role: 'Overlord' is not one of Admin, Finance, Program, Donor, Auditor" in result.stderr
    ok = run(
        ["create-admin", "boss", "boss@example.org", "--role", "Finance"],
        tmp_path,
        {"GRANTKEEPER_ADMIN_PASSWORD": "Pw-Pw-pw-12345"},
    )
    assert ok.returncode == 0 and "Created Finance user 'boss'" in ok.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_first_start_migrates_loads_demo_and_serves(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTKEEPER_") and k != "DATABASE_URL"}
    env.update({"GRANTKEEPER_INSTANCE": str(tmp_path), "GRANTKEEPER_PORT": str(port)})
    process = subprocess.Popen(
        [sys.executable, "run.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        body = None
        for _ in range(300):  # polls until the server answers; bounded, no timing asserted
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2) as response:
                    body = response.read().decode()
                    break
            except OSError:
                if process.poll() is not None:
                    break
                time.sleep(0.2)
        assert body is not None, "the server never answered"
        assert "Sign in" in body or "Login" in body or "login" in body
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert f"http://127.0.0.1:{port}/" in output
    assert "admin" in output and "generated now, shown once" in output


def test_backup_archives_database_and_storage_and_verifies(tmp_path):
    import json
    import sqlite3
    import tarfile

    instance = tmp_path / "instance"
    assert run(["init", "--demo"], instance).returncode == 0
    stored = instance / "storage" / "ab" / "cd"
    stored.mkdir(parents=True)
    (stored / "abcdef").write_bytes(b"minutes of the RCM meeting")
    result = run(["backup", "-o", str(tmp_path / "out")], instance)
    assert result.returncode == 0, result.stderr
    (archive_path,) = (tmp_path / "out").glob("grantkeeper-backup-*.tar.gz")
    assert (archive_path.stat().st_mode & 0o777) == 0o600
    with tarfile.open(archive_path) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))
        members = set(manifest["members"])
        assert {"database/grantkeeper.sqlite3", "storage/ab/cd/abcdef"} <= members
        # every stored file is in the archive (the demo's evidence files too)
        stored_files = {
            f"storage/{p.relative_to(instance / 'storage').as_posix()}"
            for p in (instance / "storage").rglob("*")
            if p.is_file()
        }
        assert stored_files == {m for m in members if m.startswith("storage/")}
        archive.extract("database/grantkeeper.sqlite3", tmp_path / "restore", filter="data")
    restored = sqlite3.connect(tmp_path / "restore" / "database" / "grantkeeper.sqlite3")
    assert restored.execute("select reference from grants order by reference").fetchall() == [
        ("CNF-CORE-2026",),
        ("RCM-HIV-2026-SW",),
    ]


def test_a_tampered_backup_is_detected(tmp_path):
    import io
    import tarfile

    from app.backup import make_backup, verify_backup

    db_file = tmp_path / "x.db"
    import sqlite3

    sqlite3.connect(db_file).execute("create table t (x int)")
    result = make_backup(f"sqlite:///{db_file}", tmp_path / "none", tmp_path / "out")
    assert verify_backup(result.path) == []
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(result.path) as src, tarfile.open(tampered, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            if member.name.startswith("database/"):
                data = data + b"junk"
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    assert verify_backup(tampered) == ["database/grantkeeper.sqlite3: checksum differs"]


def test_a_mistyped_setting_stops_with_a_message_naming_the_variable(tmp_path):
    result = run(["init"], tmp_path, {"GRANTKEEPER_TIMEZONE": "Europe/Narnia", "GRANTKEEPER_SECRET_KEY": "not-shown-1"})
    assert result.returncode == 2
    assert "error: GRANTKEEPER_TIMEZONE: 'Europe/Narnia' is not a time zone name" in result.stderr
    assert "Traceback" not in result.stderr and "not-shown-1" not in result.stderr + result.stdout
