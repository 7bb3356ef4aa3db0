"""The app database's commands as a person meets them: help."""

from __future__ import annotations

import subprocess
import sys


def orangescrum(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orangescrum", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )


def test_appdb_help_lists_its_commands() -> None:
    result = orangescrum("appdb", "--help")
    assert result.returncode == 0, result.stderr
    for command in ("start", "stop", "status"):
        assert command in result.stdout
    assert "appdb" in orangescrum("--help").stdout


def test_simulate_app_db_help_shows_the_history_options() -> None:
    result = orangescrum("simulate", "app-db", "--help")
    assert result.returncode == 0, result.stderr
    for option in ("--days", "--companies", "--seed", "--start-date", "--reset"):
        assert option in result.stdout
