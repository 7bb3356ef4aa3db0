"""The local PostgreSQL (Airflow's metadata database when ORANGESCRUM_AIRFLOW_DATABASE=postgres).

A real server from Debian's package: each start takes a second or two (initdb once a cluster).
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg2
import pytest

from orangescrum.cli.airflow import describe_database, metadata_database, standalone_env
from orangescrum.core import postgres
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.postgres import HOST, ROLE, LocalPostgres
from orangescrum.core.settings import Settings

pytestmark = pytest.mark.timeout(120)


def reachable_dir() -> Path:
    """A data dir the server's user can reach: under root the server runs as `postgres`,
    which cannot enter pytest's tmp_path (/tmp/pytest-of-root is 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="orangescrum-postgres-tests-"))
    directory.chmod(0o755)
    return directory


@pytest.fixture
def state_dir() -> Iterator[Path]:
    directory = reachable_dir()
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalPostgres]:
    """One server for the tests that only read from it."""
    directory = reachable_dir()
    try:
        with LocalPostgres(directory / "postgres") as running:
            yield running
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def query(server: LocalPostgres, sql: str, **overrides: object) -> list[tuple]:
    connection = psycopg2.connect(**(server.connect_args() | overrides), connect_timeout=5)
    try:
        with connection, connection.cursor() as cursor:  # commits on success
            cursor.execute(sql)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def test_airflow_role_logs_in_over_tcp_with_its_generated_password(server: LocalPostgres) -> None:
    assert query(server, "SELECT current_user, current_database()") == [(ROLE, "airflow")]
    assert query(server, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") == [(False,)]
    assert stat.S_IMODE(server.password_file.stat().st_mode) == 0o600
    assert server.password_file.stat().st_uid == os.geteuid()
    assert len(server.password) >= 24
    assert server.url.startswith(f"postgresql+psycopg2://{ROLE}:")
    assert server.url.endswith(f"@{HOST}:{server.port}/airflow")


def test_a_wrong_password_is_refused(server: LocalPostgres) -> None:
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        query(server, "SELECT 1", password=server.password + "x")


def test_it_listens_on_loopback_only_and_never_as_root(server: LocalPostgres) -> None:
    process = psutil.Process(server.pid)
    listening = [
        (c.laddr.ip, c.laddr.port)
        for c in process.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    assert listening == [(HOST, server.port)]
    assert process.uids().effective != 0
    if os.geteuid() == 0:
        assert server.data_dir.stat().st_uid == process.uids().effective


def test_data_survives_a_restart_and_a_stop_leaves_no_process(state_dir: Path) -> None:
    first = LocalPostgres(state_dir / "postgres").start()
    try:
        query(first, "CREATE TABLE kept (value text); INSERT INTO kept VALUES ('still here')")
        tree = [psutil.Process(first.pid), *psutil.Process(first.pid).children(recursive=True)]
        assert len(tree) > 1  # the postmaster and its background workers
    finally:
        first.stop()
    assert not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not (first.data_dir / "postmaster.pid").exists()

    with LocalPostgres(state_dir / "postgres") as second:
        assert query(second, "SELECT value FROM kept") == [("still here",)]


def test_missing_binaries_are_one_sentence_naming_the_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(postgres, "DEBIAN_ROOT", tmp_path / "none")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(OrangeScrumError, match=r"apt-get install postgresql.*make setup"):
        LocalPostgres(tmp_path / "postgres").start()
    assert not (tmp_path / "postgres").exists()


def test_a_busy_configured_port_is_one_sentence(state_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(OrangeScrumError, match=f"Port {port} is already in use"):
            LocalPostgres(state_dir / "postgres", port=port).start()


def test_a_cluster_whose_password_is_lost_is_refused(state_dir: Path) -> None:
    with LocalPostgres(state_dir / "postgres") as server:
        pass
    server.password_file.unlink()
    with pytest.raises(OrangeScrumError, match=r"remove .* to start Airflow on a new, empty"):
        LocalPostgres(state_dir / "postgres").start()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to `postgres`")
def test_a_data_dir_the_server_user_cannot_reach_is_one_sentence(state_dir: Path) -> None:
    hidden = state_dir / "hidden"
    hidden.mkdir(mode=0o700)
    with pytest.raises(OrangeScrumError, match=f"cannot enter {hidden}: .*chmod o\\+x"):
        LocalPostgres(hidden / "postgres").start()


# --- the setting, as `orangescrum airflow standalone` reads it ---------------------------------
def test_sqlite_stays_the_default_and_airflow_gets_no_database_url(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, _env_file=None)
    with metadata_database(settings) as url:
        assert url is None
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in standalone_env(settings, 8081, url)
    assert describe_database(url) == "SQLite"
    assert not settings.airflow_postgres_dir.exists()


def test_an_external_url_is_passed_to_airflow_without_a_local_server(tmp_path: Path) -> None:
    external = (
        "postgresql+psycopg2://airflow:pw@db.internal:5432/airflow"  # pragma: allowlist secret
    )
    settings = Settings(
        data_dir=tmp_path,
        airflow_database="postgres",
        airflow_database_url=external,
        _env_file=None,
    )
    with metadata_database(settings) as url:
        env = standalone_env(settings, 8081, url)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == external
    assert "pw" not in describe_database(url)
    assert not settings.airflow_postgres_dir.exists()


@pytest.mark.parametrize(
    ("database", "url", "sentence"),
    [
        ("sqlite", "postgresql://db.internal/airflow", "set the latter to postgres"),
        ("postgres", "mysql://db.internal/airflow", "must be a PostgreSQL URL"),
    ],
)
def test_a_url_that_would_be_ignored_or_is_not_postgres_is_refused(
    tmp_path: Path, database: str, url: str, sentence: str
) -> None:
    settings = Settings(
        data_dir=tmp_path, airflow_database=database, airflow_database_url=url, _env_file=None
    )
    with pytest.raises(OrangeScrumError, match=sentence), metadata_database(settings):
        pass


def test_postgres_without_url_runs_the_local_server_for_the_block(state_dir: Path) -> None:
    settings = Settings(data_dir=state_dir, airflow_database="postgres", _env_file=None)
    with metadata_database(settings) as url:
        assert url is not None and f"@{HOST}:" in url
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT current_user")).scalar() == ROLE
        engine.dispose()
        port = int(url.rsplit(":", 1)[1].split("/")[0])
    assert settings.airflow_postgres_dir.is_dir()
    with socket.socket() as probe:  # stopped: nothing answers on its port any more
        assert probe.connect_ex((HOST, port)) != 0
