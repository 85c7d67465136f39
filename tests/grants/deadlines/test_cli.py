"""`python run.py scheduler --once`: one sweep from the command line, in its own process."""

from __future__ import annotations

from tests.app.test_cli import run


def test_scheduler_once_runs_a_sweep_and_puts_reminders_in_the_outbox_without_smtp(tmp_path):
    instance = tmp_path / "instance"
    assert run(["init", "--demo"], instance).returncode == 0
    result = run(["scheduler", "--once"], instance, {"GRANTKEEPER_SMTP_PASSWORD": "never-printed-pw"})
    assert result.returncode == 0, result.stderr
    assert "Sweep for" in result.stdout and "to the outbox" in result.stdout
    assert "never-printed-pw" not in result.stdout + result.stderr
