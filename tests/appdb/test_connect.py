"""Kafka Connect + Debezium on a real broker, a real MariaDB and a real Connect worker.

One of each for the module (always stopped): a day of one company's simulated history is
written to MariaDB, then the worker snapshots it into one topic per table and streams the
binlog from there. The tests run in order: snapshot, changes, restart.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

from orangescrum.core.appdb.connection import APP_TABLES, MARKER_TABLE, cdc_password, connect
from orangescrum.core.appdb.server import LocalMariaDB
from orangescrum.core.broker import LocalKafka
from orangescrum.core.connect import (
    CONNECTOR_NAME,
    LocalConnect,
    check_appdb,
    connect_status,
    connector_config,
    rest,
    running_pid,
    table_topic,
    worker_properties,
)
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.processes import free_port
from orangescrum.core.settings import Settings

slow = pytest.mark.slow

START = datetime.date(2025, 3, 3)
HISTORY = ("--days", "1", "--companies", "1", "--seed", "42", "--start-date", str(START))
# How long the tests wait for change events to arrive (a busy 2-core machine is slow).
ARRIVAL_TIMEOUT_SECONDS = 120
NEW_TASK_ID = 987_654_321


@dataclass
class Stack:
    settings: Settings
    kafka: LocalKafka
    appdb: LocalMariaDB
    worker: LocalConnect


def cli_environment(settings: Settings) -> dict[str, str]:
    return os.environ | {
        "ORANGESCRUM_DATA_DIR": str(settings.data_dir),
        "ORANGESCRUM_APPDB_PORT": str(settings.appdb_port),
        "ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "ORANGESCRUM_KAFKA_CONNECT_TIMEOUT_SECONDS": "3",
    }


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orangescrum", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_environment(settings),
        check=False,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("connect")
    with LocalKafka.from_settings(Settings(_env_file=None), data_dir / "kafka") as kafka:
        settings = Settings(
            data_dir=data_dir,
            appdb_port=free_port(),
            kafka_bootstrap_servers=kafka.bootstrap,
            _env_file=None,
        )
        with LocalMariaDB.from_settings(settings) as appdb:
            simulated = cli(settings, "simulate", "app-db", *HISTORY)
            assert simulated.returncode == 0, simulated.stderr
            worker = LocalConnect(settings)
            try:
                worker.start()
                yield Stack(settings, kafka, appdb, worker)
            finally:
                worker.stop()


def row_counts(settings: Settings) -> dict[str, int]:
    connection = connect(settings)
    try:
        with connection.cursor() as cursor:
            counts = {}
            for table in APP_TABLES:
                cursor.execute(f"SELECT COUNT(*) FROM {table}")
                counts[table] = cursor.fetchone()[0]
            return counts
    finally:
        connection.close()


def execute(settings: Settings, *statements: tuple[str, tuple[Any, ...]]) -> None:
    """As the app does: the app user, one transaction."""
    connection = connect(settings)
    try:
        with connection.cursor() as cursor:
            for sql, parameters in statements:
                cursor.execute(sql, parameters)
        connection.commit()
    finally:
        connection.close()


def first_task(settings: Settings) -> tuple[int, int]:
    """(id, legend) of the first task."""
    connection = connect(settings)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, legend FROM easycases WHERE istype = 1 ORDER BY id LIMIT 1")
            task_id, legend = cursor.fetchone()
            return task_id, legend
    finally:
        connection.close()


def topic_counts(settings: Settings) -> dict[str, int]:
    """Messages in each table's topic (0 before Debezium created it)."""
    return {topic.table: topic.messages or 0 for topic in connect_status(settings).topics}


def read_topic(settings: Settings, topic: str, start: int = 0) -> list[tuple[Any, Any]]:
    """(key, value) of every record from offset `start` to the end, JSON decoded (None for a
    tombstone's value)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": "test-connect-reader",
            "enable.auto.commit": False,
        }
    )
    try:
        partition = TopicPartition(topic, 0, start)
        _, end = consumer.get_watermark_offsets(partition, timeout=10)
        consumer.assign([partition])
        records: list[tuple[Any, Any]] = []
        deadline = time.monotonic() + 60
        while start + len(records) < end and time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is None or message.error():
                continue
            key = json.loads(message.key()) if message.key() else None
            value = json.loads(message.value()) if message.value() else None
            records.append((key, value))
        assert start + len(records) == end, f"read {len(records)} of {end - start} from {topic}"
        return records
    finally:
        consumer.close()


def wait_for_counts(
    settings: Settings, expected: dict[str, int], worker: subprocess.Popen[bytes] | None = None
) -> dict[str, int]:
    """Until every topic holds at least `expected` messages; then the counts as they are."""
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_SECONDS
    while True:
        counts = topic_counts(settings)
        if all(counts[table] >= n for table, n in expected.items()):
            return counts
        assert worker is None or worker.poll() is None, "the worker exited"
        assert time.monotonic() < deadline, f"waited for {expected}, have {counts}"
        time.sleep(1)


def payloads(records: list[tuple[Any, Any]]) -> list[dict[str, Any]]:
    return [value["payload"] for _, value in records if value is not None]


@slow
def test_the_snapshot_puts_one_record_per_row_into_each_tables_topic(stack: Stack) -> None:
    settings = stack.settings
    rows = row_counts(settings)
    assert all(rows.values())  # every app table has rows to snapshot
    counts = wait_for_counts(settings, rows)
    assert counts == rows
    snapshot_marks = []
    for table in APP_TABLES:
        records = read_topic(settings, table_topic(settings, table))
        events = payloads(records)
        assert len(events) == rows[table]
        assert {event["op"] for event in events} == {"r"}  # read by the snapshot
        # one record per row: every primary key once
        assert len({json.dumps(key["payload"], sort_keys=True) for key, _ in records}) == len(
            records
        )
        snapshot_marks += [event["source"]["snapshot"] for event in events]
    assert "last" in snapshot_marks  # the snapshot finished
    # one topic per app table (not the simulator's marker table), DDL, the schema history
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    prefix = settings.connect_topic_prefix
    names = {name for name in admin.list_topics(timeout=10).topics if name.startswith(prefix)}
    connect_topics = {f"{prefix}-connect-{kind}" for kind in ("configs", "offsets", "status")}
    assert names - connect_topics == {
        prefix,
        f"{prefix}.schema-history",
        *(table_topic(settings, table) for table in APP_TABLES),
    }
    resource = ConfigResource(ConfigResource.Type.TOPIC, table_topic(settings, "easycases"))
    topic_config = admin.describe_configs([resource])[resource].result()
    assert topic_config["cleanup.policy"].value == "compact"


@slow
def test_status_reports_the_running_connector_and_the_counts_per_table(stack: Stack) -> None:
    result = cli(stack.settings, "connect", "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["worker"] == stack.worker.url
    assert status["connector"] == CONNECTOR_NAME
    assert status["connector_state"] == "RUNNING"
    assert [task["state"] for task in status["tasks"]] == ["RUNNING"]
    rows = row_counts(stack.settings)
    assert {t["table"]: t["messages"] for t in status["topics"]} == rows
    assert {t["topic"] for t in status["topics"]} == {
        f"orangescrum-appdb.orangescrum.{table}" for table in APP_TABLES
    }


@slow
def test_an_insert_an_update_and_a_delete_arrive_as_change_events(stack: Stack) -> None:
    settings = stack.settings
    topic = table_topic(settings, "easycases")
    before = wait_for_counts(settings, row_counts(settings))
    task_id, legend = first_task(settings)
    new_legend = 3 if legend != 3 else 5
    now = datetime.datetime(2025, 3, 4, 9, 30)
    execute(
        settings,
        (
            "INSERT INTO easycases (id, uniq_id, case_no, company_id, project_id, user_id, "
            "title, istype, legend, dt_created, actual_dt_created) "
            "VALUES (%s, %s, 9999, 1, 1, 1, 'Written by the test', 1, 1, %s, %s)",
            (NEW_TASK_ID, f"test-{NEW_TASK_ID}", now, now),
        ),
    )
    execute(settings, ("UPDATE easycases SET legend = %s WHERE id = %s", (new_legend, task_id)))
    execute(settings, ("DELETE FROM easycases WHERE id = %s", (NEW_TASK_ID,)))

    # c, u, d and the delete's tombstone
    wait_for_counts(settings, {"easycases": before["easycases"] + 4})
    records = read_topic(settings, topic, start=before["easycases"])
    assert len(records) == 4
    (_, created), (_, updated), (deleted_key, deleted), (tombstone_key, tombstone) = records
    created, updated, deleted = created["payload"], updated["payload"], deleted["payload"]
    assert created["op"] == "c" and created["before"] is None
    assert created["after"]["id"] == NEW_TASK_ID
    assert created["after"]["title"] == "Written by the test"
    assert updated["op"] == "u"
    assert (updated["before"]["id"], updated["after"]["id"]) == (task_id, task_id)
    assert (updated["before"]["legend"], updated["after"]["legend"]) == (legend, new_legend)
    assert deleted["op"] == "d" and deleted["after"] is None
    assert deleted["before"]["id"] == NEW_TASK_ID
    assert tombstone is None and tombstone_key == deleted_key == {
        "schema": tombstone_key["schema"],
        "payload": {"id": NEW_TASK_ID},
    }
    # from the binlog, not a snapshot; nothing else changed
    assert {event["source"]["snapshot"] for event in (created, updated, deleted)} == {"false"}
    after = topic_counts(settings)
    assert {t: n for t, n in after.items() if t != "easycases"} == {
        t: n for t, n in before.items() if t != "easycases"
    }


@slow
def test_the_password_is_in_no_log_config_or_answer(stack: Stack) -> None:
    password = cdc_password(stack.settings)
    directory = stack.settings.connect_data_dir
    written = [path for path in directory.rglob("*") if path.is_file()]
    holding = [path for path in written if password in path.read_text(errors="replace")]
    assert holding == [directory / "secrets" / "appdb-cdc-password"]
    assert holding[0].stat().st_mode & 0o777 == 0o600
    status, answer = rest("GET", f"{stack.worker.url}/connectors/{CONNECTOR_NAME}/config")
    assert status == 200 and password not in json.dumps(answer)
    assert answer["database.password"].startswith("${dir:")  # resolved only inside the task


@slow
def test_a_restarted_worker_resumes_the_binlog_without_a_new_snapshot(stack: Stack) -> None:
    settings = stack.settings
    before = topic_counts(settings)
    stack.worker.stop()
    task_id, _ = first_task(settings)
    # changed while no worker runs: read from the binlog after the restart
    execute(settings, ("UPDATE easycases SET legend = 4 WHERE id = %s", (task_id,)))
    output = settings.data_dir / "connect-start.out"
    with output.open("w") as sink:
        worker = subprocess.Popen(
            [sys.executable, "-m", "orangescrum", "connect", "start"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=cli_environment(settings),
        )
    try:
        after = wait_for_counts(settings, {"easycases": before["easycases"] + 1}, worker)
        assert after == before | {"easycases": before["easycases"] + 1}  # no new snapshot
        ((_, value),) = read_topic(
            settings, table_topic(settings, "easycases"), before["easycases"]
        )
        assert value["payload"]["op"] == "u"
        assert (value["payload"]["after"]["id"], value["payload"]["after"]["legend"]) == (
            task_id,
            4,
        )
        # and what changes while it runs arrives too, once
        execute(settings, ("UPDATE companies SET name = 'Renamed by the test'", ()))
        wait_for_counts(settings, {"companies": before["companies"] + 1}, worker)
        ((_, value),) = read_topic(
            settings, table_topic(settings, "companies"), before["companies"]
        )
        assert value["payload"]["after"]["name"] == "Renamed by the test"
        assert topic_counts(settings) == after | {"companies": before["companies"] + 1}
        jvm = running_pid(settings.connect_data_dir)
        assert jvm is not None
        worker.send_signal(signal.SIGTERM)  # what Ctrl-C does
        assert worker.wait(timeout=60) == 130
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    printed = output.read_text()
    assert f"connector {CONNECTOR_NAME} running" in printed
    assert cdc_password(settings) not in printed
    assert running_pid(settings.connect_data_dir) is None
    assert not Path(f"/proc/{jvm}").exists()


@slow
def test_a_missing_broker_is_one_sentence(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", _env_file=None
    )
    result = cli(settings, "connect", "start")
    assert result.returncode == 1
    assert f"No Kafka broker answered at {settings.kafka_bootstrap_servers}" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("error:") == 1


# --- fast: no servers ------------------------------------------------------------------------
SECRET = "s3cret-Never-Printed"  # pragma: allowlist secret


def test_the_rendered_connector_config_reads_the_app_tables_and_hides_the_password(
    tmp_path: Path,
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        appdb_port=3399,
        appdb_cdc_password=SECRET,
        kafka_bootstrap_servers="127.0.0.1:9092",
        _env_file=None,
    )
    config = connector_config(settings)
    assert config["connector.class"] == "io.debezium.connector.mariadb.MariaDbConnector"
    assert (config["database.hostname"], config["database.port"]) == ("127.0.0.1", "3399")
    assert config["database.user"] == "debezium"
    assert config["database.include.list"] == "orangescrum"
    assert config["topic.prefix"] == "orangescrum-appdb"
    assert config["snapshot.mode"] == "initial"
    assert config["schema.history.internal.kafka.bootstrap.servers"] == "127.0.0.1:9092"
    assert config["schema.history.internal.kafka.topic"] == "orangescrum-appdb.schema-history"
    assert config["topic.creation.default.partitions"] == "1"
    assert config["value.converter"] == "org.apache.kafka.connect.json.JsonConverter"
    assert config["value.converter.schemas.enable"] == "true"
    # the include list matches the app's tables exactly, not the marker table
    patterns = config["table.include.list"].split(",")
    captured = [
        name
        for name in (*APP_TABLES, MARKER_TABLE, "company_users_x")
        if any(re.fullmatch(p, f"orangescrum.{name}") for p in patterns)
    ]
    assert captured == list(APP_TABLES)
    # every placeholder filled; the password only as the config provider's reference
    secrets = tmp_path / "connect" / "secrets"
    assert config["database.password"] == f"${{dir:{secrets}:appdb-cdc-password}}"
    assert not [v for k, v in config.items() if "${" in v and k != "database.password"]
    worker = worker_properties(settings, 8083)
    assert worker["config.providers.dir.param.allowed.paths"] == str(secrets)
    rendered = json.dumps(config) + json.dumps(worker)
    assert SECRET not in rendered


def test_without_java_start_is_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    settings = Settings(data_dir=tmp_path, _env_file=None)
    with pytest.raises(OrangeScrumError, match=r"need Java 17 and none was found"):
        LocalConnect(settings).start()


def test_an_unreachable_app_database_is_one_sentence(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        appdb_port=free_port(),
        appdb_cdc_password=SECRET,
        appdb_connect_timeout_seconds=2,
        _env_file=None,
    )
    with pytest.raises(
        OrangeScrumError,
        match=rf"No app database answered at 127\.0\.0\.1:{settings.appdb_port} .*"
        "ORANGESCRUM_APPDB_HOST and ORANGESCRUM_APPDB_PORT",
    ):
        check_appdb(settings)
