"""The app database on a real MariaDB: a simulated history reconciles with its events, exactly.

One server for the module (started once in a temp dir, always stopped); the history is two
days of one company, written through the CLI as a person would.
"""

from __future__ import annotations

import datetime
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from ingestion.simulator import SimulationConfig, simulate_history
from orangescrum.core.appdb.connection import APP_TABLES, connect
from orangescrum.core.appdb.server import LocalMariaDB, running_pid, stop_running
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.processes import HOST, free_port
from orangescrum.core.settings import Settings

pytestmark = pytest.mark.slow

START = datetime.date(2025, 3, 3)
HISTORY = ("--days", "2", "--companies", "1", "--seed", "42", "--start-date", str(START))


class Running:
    """The module's server; a test that restarts it swaps in the new one."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server = LocalMariaDB.from_settings(settings)


@pytest.fixture(scope="module")
def appdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("appdb"), appdb_port=free_port(), _env_file=None
    )
    running = Running(settings)
    running.server.start()
    try:
        yield running
    finally:
        running.server.stop()


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    config = SimulationConfig(seed=42, companies=1, days=2, start_date=START)
    records = [delivery.record for delivery in simulate_history(config)]
    return sorted(records, key=lambda r: r["event_timestamp"])


def cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = os.environ | {
        "ORANGESCRUM_DATA_DIR": str(settings.data_dir),
        "ORANGESCRUM_APPDB_PORT": str(settings.appdb_port),
        "ORANGESCRUM_APPDB_CONNECT_TIMEOUT_SECONDS": "3",
    }
    return subprocess.run(
        [sys.executable, "-m", "orangescrum", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment | env,
        check=False,
    )


def query(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    connection = connect(settings)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())
    finally:
        connection.close()


def checksums(settings: Settings) -> dict[str, int]:
    rows = query(settings, f"CHECKSUM TABLE {', '.join(APP_TABLES)}")
    return {name.split(".")[-1]: checksum for name, checksum in rows}


@pytest.fixture(scope="module")
def simulated(appdb: Running) -> subprocess.CompletedProcess[str]:
    result = cli(appdb.settings, "simulate", "app-db", *HISTORY)
    assert result.returncode == 0, result.stderr
    return result


def test_the_server_logs_every_row_change_for_cdc_and_listens_on_loopback(appdb: Running) -> None:
    ((binlog_format, row_image, log_bin, bind),) = query(
        appdb.settings,
        "SELECT @@binlog_format, @@binlog_row_image, @@log_bin, @@bind_address",
    )
    assert (binlog_format, row_image, log_bin, bind) == ("ROW", "FULL", 1, HOST)


def test_the_simulated_history_reconciles_with_its_events(
    appdb: Running, simulated: subprocess.CompletedProcess[str], events: list[dict[str, Any]]
) -> None:
    settings = appdb.settings
    of_type: dict[str, list[dict[str, Any]]] = {}
    for record in events:
        of_type.setdefault(record["event_type"], []).append(record)
    created = {r["task_id"] for r in of_type["task_created"]}
    tasks = query(
        settings, "SELECT id, legend, isactive, project_id FROM easycases WHERE istype = 1"
    )
    assert {task_id for task_id, *_ in tasks} == created
    # each task's row is its last state in the events
    last: dict[int, dict[str, Any]] = {}
    for record in events:
        if record["task_state"] is not None:
            last[record["task_id"]] = record
    deleted = {r["task_id"] for r in of_type.get("task_deleted", [])}
    assert deleted and of_type.get("task_moved")  # the history exercises both
    for task_id, legend, isactive, project_id in tasks:
        assert legend == last[task_id]["task_state"]["legend"]
        assert project_id == last[task_id]["project_id"]
        assert isactive == (0 if task_id in deleted else 1)
    time_logs = of_type["timer_stopped"] + of_type["time_logged"]
    assert query(settings, "SELECT COUNT(*) FROM log_times") == [(len(time_logs),)]
    decided = {
        r["time_log"]["time_log_id"]: r["time_log"]["approval_status"]
        for r in events
        if r["event_type"].startswith("time_entry_")
    }
    rows = dict(query(settings, "SELECT log_id, approval_status FROM log_times"))
    assert {log_id: rows[log_id] for log_id in decided} == decided
    assert sum(status == "pending" for status in rows.values()) == len(rows) - len(decided)
    replies = query(settings, "SELECT COUNT(*) FROM easycases WHERE istype = 2")
    assert replies == [(len(of_type["task_commented"]),)]
    activities = sum(
        len(of_type.get(t, []))
        for t in ("task_created", "task_status_changed", "task_commented", "task_deleted")
    )
    assert query(settings, "SELECT COUNT(*) FROM case_activities") == [(activities,)]
    users = {
        r["user_state"]["user_id"] for r in of_type["user_registered"] + of_type["user_invited"]
    }
    assert query(settings, "SELECT COUNT(*) FROM users") == [(len(users),)]
    assert query(settings, "SELECT COUNT(*) FROM milestones") == [
        (len(of_type["milestone_created"]),)
    ]
    assert query(settings, "SELECT COUNT(*) FROM case_files") == [(len(of_type["file_uploaded"]),)]
    assert f"applied {len(events):,} of {len(events):,} events" in simulated.stderr


def test_a_rerun_writes_nothing_and_leaves_identical_tables(
    appdb: Running, simulated: subprocess.CompletedProcess[str], events: list[dict[str, Any]]
) -> None:
    before = checksums(appdb.settings)
    again = cli(appdb.settings, "simulate", "app-db", *HISTORY)
    assert again.returncode == 0, again.stderr
    assert f"applied 0 of {len(events):,} events" in again.stderr
    assert checksums(appdb.settings) == before
    assert all(before.values())  # every app table has rows


def test_the_same_history_rebuilt_from_empty_tables_is_identical(
    appdb: Running, simulated: subprocess.CompletedProcess[str]
) -> None:
    before = checksums(appdb.settings)
    rebuilt = cli(appdb.settings, "simulate", "app-db", *HISTORY, "--reset")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert checksums(appdb.settings) == before


def test_another_history_is_refused_not_mixed_in(
    appdb: Running, simulated: subprocess.CompletedProcess[str]
) -> None:
    result = cli(appdb.settings, "simulate", "app-db", "--days", "2", "--seed", "43")
    assert result.returncode == 1
    assert "holds another simulated history (seed=42 companies=1 days=2" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_data_survives_a_stop_and_a_start(
    appdb: Running, simulated: subprocess.CompletedProcess[str]
) -> None:
    before = checksums(appdb.settings)
    # `orangescrum appdb stop`'s way: SIGTERM to the server found by its pid file
    assert stop_running(appdb.settings.appdb_data_dir) is not None
    assert running_pid(appdb.settings.appdb_data_dir) is None
    appdb.server.stop()
    appdb.server = LocalMariaDB.from_settings(appdb.settings)
    appdb.server.start()
    assert checksums(appdb.settings) == before


def test_a_second_server_on_the_same_data_is_refused(appdb: Running) -> None:
    with pytest.raises(OrangeScrumError, match=r"already running \(pid \d+\); stop it with"):
        LocalMariaDB.from_settings(appdb.settings, free_port()).start()


def test_a_busy_port_is_one_sentence(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = Settings(data_dir=tmp_path, appdb_port=port, _env_file=None)
        with pytest.raises(OrangeScrumError, match=f"Port {port} is already in use"):
            LocalMariaDB.from_settings(settings).start()


def test_a_missing_mariadb_is_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orangescrum.core.appdb import server

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(server, "SEARCH_PATH", ())
    settings = Settings(data_dir=tmp_path, _env_file=None)
    with pytest.raises(
        OrangeScrumError, match=r"MariaDB is not installed .*apt-get install mariadb-server"
    ):
        LocalMariaDB.from_settings(settings).start()


def test_an_unreachable_database_names_the_settings(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, appdb_port=free_port(), _env_file=None)
    result = cli(settings, "simulate", "app-db", ORANGESCRUM_APPDB_PASSWORD="x")
    assert result.returncode == 1
    assert f"No app database answered at 127.0.0.1:{settings.appdb_port}" in result.stderr
    assert "ORANGESCRUM_APPDB_HOST and ORANGESCRUM_APPDB_PORT" in result.stderr


def test_a_wrong_password_names_the_settings(appdb: Running) -> None:
    result = cli(appdb.settings, "appdb", "status", ORANGESCRUM_APPDB_PASSWORD="wrong")
    assert result.returncode == 1
    assert "refused user 'orangescrum': check ORANGESCRUM_APPDB_USER and" in result.stderr
    with pytest.raises(pymysql.err.OperationalError):  # root has no TCP account
        pymysql.connect(host=HOST, port=appdb.settings.appdb_port, user="root").close()


def test_appdb_start_runs_until_sigterm_and_stops_mariadb(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, appdb_port=free_port(), _env_file=None)
    environment = os.environ | {
        "ORANGESCRUM_DATA_DIR": str(tmp_path),
        "ORANGESCRUM_APPDB_PORT": str(settings.appdb_port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "orangescrum", "appdb", "start"],
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert process.stderr is not None
        lines = []
        for line in process.stderr:
            lines.append(line)
            if line.startswith("Ctrl-C stops it"):
                break
        output = "".join(lines)
        assert f"on 127.0.0.1:{settings.appdb_port}, binlog in ROW format" in output
        assert f"mariadb -h 127.0.0.1 -P {settings.appdb_port} -u orangescrum" in output
        status = cli(settings, "appdb", "status")
        assert status.returncode == 0, status.stderr
        assert "binlog_format ROW" in status.stderr
        process.send_signal(signal.SIGTERM)
        rest = process.communicate(timeout=90)[1]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, rest
    assert "interrupted" in rest
    assert running_pid(settings.appdb_data_dir) is None
