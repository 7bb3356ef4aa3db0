"""The change stream end to end: MariaDB -> Debezium -> Spark (`kafka` source) -> the lake.

A real broker, MariaDB and Connect worker (tests/appdb/test_connect.py's `stack`, one of each
for the module), one lake and checkpoint; the tests run in order. A simulated day is snapshot
into the table topics, the stream drains them (available-now) into a fresh lake, and every
event type's count is checked against what the database holds; then a live status change
arrives as exactly one more event, and a rerun lands nothing. Then what the event stream does
too: a metrics row per batch, dead letters copied to the dead-letter topic. Then failures: the
Connect worker killed (SIGKILL) and restarted while tasks are written and the stream runs
(every change in the marts exactly once); columns added to two tables while it runs (later
changes land, one warning per column); a table topic deleted and recreated (refused).
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from pyspark.sql import SparkSession

from orangescrum.core.appdb.connection import connect
from orangescrum.core.checkpoint import LANDING_ID_FILE, read_checkpoint_file
from orangescrum.core.connect import running_pid, table_topic
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.monitoring import read_metrics
from orangescrum.core.settings import Settings
from orangescrum.core.topics import create_topics, delete_topics
from orangescrum.health import batches_state
from spark.cdc import CdcRules, event_id
from spark.cdc_drift import ColumnDrift, image_fields, known_columns, survey
from spark.cdc_stream import CDC_QUERY_NAME, cdc_checkpoint, run_cdc_stream
from spark.stream import write_batch_metrics
from tests.appdb.test_connect import (  # noqa: F401  (stack: the module's servers)
    Stack,
    execute,
    first_task,
    row_counts,
    stack,
    topic_counts,
    wait_for_counts,
)
from tests.dbt.conftest import new_warehouse

pytestmark = pytest.mark.slow


def query(settings: Settings, sql: str) -> int:
    connection = connect(settings)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return int(cursor.fetchone()[0])
    finally:
        connection.close()


def expected_counts(settings: Settings) -> Counter[str]:
    """What the database holds, as the events the mapping promises for a snapshot."""
    tasks = "easycases WHERE istype = 1"
    counts = {
        "task_created": f"SELECT COUNT(*) FROM {tasks}",
        "task_deleted": f"SELECT COUNT(*) FROM {tasks} AND isactive = 0",
        "task_commented": "SELECT COUNT(*) FROM easycases WHERE istype = 2",
        "user_registered": "SELECT COUNT(*) FROM company_users WHERE user_type = 1",
        "user_invited": "SELECT COUNT(*) FROM company_users WHERE user_type <> 1",
        "user_disabled": "SELECT COUNT(*) FROM company_users WHERE is_active = 0",
        "project_created": "SELECT COUNT(*) FROM projects",
        "project_archived": "SELECT COUNT(*) FROM projects WHERE isactive = 0",
        "project_member_added": "SELECT COUNT(*) FROM project_users",
        "time_logged": "SELECT COUNT(*) FROM log_times WHERE is_from_timer = 0",
        "timer_stopped": "SELECT COUNT(*) FROM log_times WHERE is_from_timer = 1",
        "milestone_created": "SELECT COUNT(*) FROM milestones",
    }
    return Counter({event_type: query(settings, sql) for event_type, sql in counts.items()})


def lake_events(settings: Settings) -> list[dict]:
    folder = Path(settings.lake.raw_events)
    if not folder.exists():
        return []
    dataset = ds.dataset(folder, format="parquet", partitioning="hive")
    return dataset.to_table(columns=["event_id", "event_type", "task_id", "task_state"]).to_pylist()


def dead_letter_files(settings: Settings) -> list[Path]:
    return sorted(Path(settings.lake.dead_letters).rglob("*.parquet"))


@pytest.fixture(scope="module")
def lake_settings(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Settings:  # noqa: F811
    state = tmp_path_factory.mktemp("cdc-lake")
    return stack.settings.model_copy(
        update={"lake_uri": str(state / "lake"), "checkpoint_dir": str(state / "checkpoints")}
    )


def test_the_snapshot_lands_one_event_per_row_and_state_and_a_live_change_lands_once(
    stack: Stack,  # noqa: F811
    lake_settings: Settings,
    spark,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = lake_settings
    rows = row_counts(settings)
    topics = wait_for_counts(settings, rows)  # the snapshot is in the topics

    with caplog.at_level(logging.WARNING):
        totals, silent = run_cdc_stream(spark, settings, available_now=True)
    # Debezium's columns are schema.sql's; no dead-letter topic yet (nothing copied), said once
    assert not [r for r in caplog.records if r.name == "spark.cdc_drift"]
    (missing,) = [r.getMessage() for r in caplog.records if r.name == "spark.cdc_stream"]
    assert missing.startswith(f"Topic {settings.topic_dead_letter} does not exist: the change")
    landed = lake_events(settings)
    expected = +expected_counts(settings)
    assert Counter(row["event_type"] for row in landed) == expected
    assert totals.rows_landed == sum(expected.values()) == len(landed)
    assert (totals.rows_dead_lettered, dead_letter_files(settings)) == (0, [])
    assert len({row["event_id"] for row in landed}) == len(landed)
    # rows of the silent tables, and case_files (a snapshot cannot date an upload)
    assert silent == sum(
        rows[table]
        for table in ("companies", "users", "case_activities", "easycase_milestones", "case_files")
    )

    # a live status change, as the app makes it: the new legend, who, and the touch time
    task_id, legend = first_task(settings)
    new_legend = 3 if legend != 3 else 5
    before = row_counts(settings)
    execute(
        settings,
        (
            "UPDATE easycases SET legend = %s, updated_by = 1, dt_created = %s WHERE id = %s",
            (new_legend, datetime.datetime(2025, 3, 4, 9, 30), task_id),
        ),
    )
    wait_for_counts(settings, {"easycases": topics["easycases"] + 1})
    totals, silent = run_cdc_stream(spark, settings, available_now=True)
    assert (totals.rows_landed, totals.rows_dead_lettered, silent) == (1, 0, 0)
    after = lake_events(settings)
    (new,) = [row for row in after if row["event_id"] not in {r["event_id"] for r in landed}]
    assert (new["event_type"], new["task_id"], new["task_state"]["legend"]) == (
        "task_status_changed",
        task_id,
        new_legend,
    )
    assert row_counts(settings) == before  # an update: no new rows

    # exactly once: a rerun has nothing to read and lands nothing
    totals, silent = run_cdc_stream(spark, settings, available_now=True)
    assert (totals.rows_landed, totals.rows_dead_lettered, silent) == (0, 0, 0)
    assert len(lake_events(settings)) == len(after)


# --- operations parity with the event stream ------------------------------------------------
def change_landing_id(settings: Settings) -> str:
    landing = read_checkpoint_file(cdc_checkpoint(settings), LANDING_ID_FILE)
    assert landing is not None
    return landing


def change_metrics(settings: Settings) -> list[dict]:
    """The change stream's metrics rows, by batch id."""
    rows = read_metrics(*settings.lake.open()).to_pylist()
    ours = [row for row in rows if row["landing_id"] == change_landing_id(settings)]
    return sorted(ours, key=lambda row: row["batch_id"])


def test_each_change_batch_writes_a_metrics_row_that_status_tells_from_the_event_streams(
    lake_settings: Settings,
) -> None:
    settings = lake_settings
    rows = change_metrics(settings)
    # the snapshot's run and the live change's: one row per batch, batch ids from 0
    assert [row["batch_id"] for row in rows] == list(range(len(rows))) and len(rows) >= 2
    assert sum(row["rows_landed"] for row in rows) == len(lake_events(settings))
    assert sum(row["rows_dead_lettered"] for row in rows) == 0
    assert all(row["rows_in"] == row["rows_landed"] for row in rows)
    # the last batch read every table topic to its end: nothing left over
    last = rows[-1]
    topics = {table_topic(settings, table): n for table, n in topic_counts(settings).items()}
    assert json.loads(last["end_offsets"]) == {topic: {"0": n} for topic, n in topics.items()}
    assert last["lag_total"] == 0

    # the event stream's batch 0 beside the change stream's: two files, both in `status`
    now = datetime.datetime.now(datetime.UTC)
    counts = {"rows_in": 5, "rows_landed": 5, "rows_dead_lettered": 0, "dead_letter_reasons": "{}"}
    event_row = write_batch_metrics(settings, "e0e0e0e0", 0, counts, now, now, {"0": 5}, 0)
    filesystem, lake = settings.lake.open()
    try:
        listed = batches_state(filesystem, lake, count=len(rows) + 1)
        assert listed.files == len(rows) + 1
        assert sorted((b.landing_id, b.batch_id, b.rows_landed) for b in listed.recent) == sorted(
            [("e0e0e0e0", 0, 5)]
            + [(row["landing_id"], row["batch_id"], row["rows_landed"]) for row in rows]
        )
        assert change_metrics(settings) == rows  # untouched by the other stream's row
    finally:
        Path(lake.metrics_file(event_row["landing_id"], 0)).unlink()


def dead_letter_topic_messages(settings: Settings) -> list[Any]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": "test-cdc-dlq-reader",
            "enable.auto.commit": False,
        }
    )
    try:
        partition = TopicPartition(settings.topic_dead_letter, 0, 0)
        _, end = consumer.get_watermark_offsets(partition, timeout=10)
        consumer.assign([partition])
        messages: list[Any] = []
        deadline = time.monotonic() + 60
        while len(messages) < end and time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is not None and not message.error():
                messages.append(message)
        return messages
    finally:
        consumer.close()


def test_dead_letters_are_also_copied_to_the_dead_letter_topic(
    stack: Stack,  # noqa: F811
    lake_settings: Settings,
    spark,
) -> None:
    settings = lake_settings
    create_topics(settings.model_copy(update={"topic_partitions": 1}))  # events-dlq
    topic = table_topic(settings, "easycases")
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
    producer.produce(topic, key=b"poison-1", value=b"{not json")
    assert producer.flush(30) == 0
    events_before = len(lake_events(settings))

    totals, silent = run_cdc_stream(spark, settings, available_now=True)
    assert (totals.rows_landed, totals.rows_dead_lettered, silent) == (0, 1, 0)
    assert totals.dead_letter_reasons == {"unparsable_json": 1}
    assert len(lake_events(settings)) == events_before
    (dead_file,) = dead_letter_files(settings)
    assert pq.read_table(dead_file).column("raw_value").to_pylist() == [b"{not json"]
    (message,) = dead_letter_topic_messages(settings)
    assert (message.key(), message.value()) == (b"poison-1", b"{not json")
    headers = {name: value.decode() for name, value in message.headers()}
    assert (headers["reason"], headers["source_topic"]) == ("unparsable_json", topic)
    assert change_metrics(settings)[-1]["rows_dead_lettered"] == 1


# --- failure behaviour ----------------------------------------------------------------------
@contextmanager
def running_stream(spark: SparkSession, settings: Settings) -> Iterator[list[Any]]:
    """The change stream in continuous mode in a thread; stopped (and its outcome put into
    the yielded list: totals and silent, or the error) when the block ends."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.extend(run_cdc_stream(spark, settings, available_now=False))
        except Exception as error:  # reported by the test, not lost in the thread
            outcome.append(error)

    thread = threading.Thread(target=run, name="change-stream", daemon=True)
    thread.start()
    try:
        yield outcome
    finally:
        deadline = time.monotonic() + 60
        while thread.is_alive() and time.monotonic() < deadline:
            for query in spark.streams.active:
                if query.name == CDC_QUERY_NAME:
                    query.stop()
            thread.join(timeout=1)
        assert not thread.is_alive(), "the change stream did not stop"


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout:.0f}s for {what}"
        time.sleep(0.5)


def millis(moment: datetime.datetime) -> int:
    return int(moment.replace(tzinfo=datetime.UTC).timestamp() * 1000)


FIRST_WRITTEN_ID = 700_000_000
WRITTEN_AT = datetime.datetime(2025, 3, 4, 8, 0)
RUN = "2025-03-05"  # dbt's run date: the day after the written changes


class TaskWriter(threading.Thread):
    """Writes as the app does until told to stop: a new task, then its status change, each its
    own transaction."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="task-writer", daemon=True)
        self.settings = settings
        self.written = 0
        self.stop_writing = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop_writing.is_set() and self.written < 10_000:
                task_id = FIRST_WRITTEN_ID + self.written
                created = WRITTEN_AT + datetime.timedelta(seconds=self.written)
                execute(
                    self.settings,
                    (
                        "INSERT INTO easycases (id, uniq_id, case_no, company_id, project_id, "
                        "user_id, title, istype, legend, dt_created, actual_dt_created) "
                        "VALUES (%s, %s, 9000, 1, 1, 1, 'written mid-stream', 1, 1, %s, %s)",
                        (task_id, f"mid-{task_id}", created, created),
                    ),
                )
                execute(
                    self.settings,
                    (
                        "UPDATE easycases SET legend = 2, updated_by = 1, dt_created = %s "
                        "WHERE id = %s",
                        (created + datetime.timedelta(hours=1), task_id),
                    ),
                )
                self.written += 1
                time.sleep(0.02)
        except BaseException as error:  # reported by the test
            self.error = error


def written_event_ids(settings: Settings) -> set[str]:
    """The events the written tasks must give, from what MariaDB holds."""
    connection = connect(settings)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, actual_dt_created, dt_created, legend FROM easycases "
                "WHERE uniq_id LIKE 'mid-%%'",
                (),
            )
            rows = cursor.fetchall()
    finally:
        connection.close()
    ids = set()
    for task_id, created, touched, legend in rows:
        assert legend == 2
        ids.add(event_id("easycases", {"id": task_id}, "task_created", millis(created)))
        ids.add(event_id("easycases", {"id": task_id}, "task_status_changed", millis(touched)))
    return ids


def test_connect_killed_mid_stream_loses_and_doubles_no_change_in_the_marts(
    stack: Stack,  # noqa: F811
    lake_settings: Settings,
    spark,
) -> None:
    settings = lake_settings.model_copy(update={"trigger_seconds": 0.5})
    before = {row["event_id"] for row in lake_events(settings)}

    def landed() -> list[str]:
        return [row["event_id"] for row in lake_events(settings) if row["event_id"] not in before]

    writer = TaskWriter(settings)
    with running_stream(spark, settings) as outcome:
        writer.start()
        # Connect and the stream both live: some written changes are already in the lake
        wait_until(lambda: len(landed()) > 0 or not writer.is_alive(), "a first change landed")
        jvm = running_pid(settings.connect_data_dir)
        assert jvm is not None
        os.kill(jvm, signal.SIGKILL)  # mid-write: its last binlog offsets were not committed
        wait_until(lambda: stack.worker.exit_code() is not None, "the killed worker to exit")
        time.sleep(1)  # changes written while no worker runs
        writer.stop_writing.set()
        writer.join(timeout=60)
        assert writer.error is None and writer.written >= 2
        stack.worker.stop()
        stack.worker.start()  # resumes from its committed offsets: a replay, no snapshot
        expected = written_event_ids(settings)
        assert len(expected) == 2 * writer.written
        wait_until(lambda: set(landed()) >= expected, "every written change to land")
    assert not [item for item in outcome if isinstance(item, Exception)], outcome

    # the lake: every written change, nothing else; a replayed record lands its event again
    landed_ids = landed()
    assert set(landed_ids) == expected
    # the marts: each change once, as a plain reader sees them
    warehouse = new_warehouse(Path(settings.lake_root).parent)
    warehouse.dbt("run-operation", "create_raw_events", run_date=RUN)
    warehouse.dbt("run", "--select", "stg_orangescrum__events", "fact_activities", run_date=RUN)
    rows = warehouse.query(
        "select event_type, count(*), count(distinct event_id) "
        "from orangescrum_dw_marts.fact_activities where task_id between "
        f"{FIRST_WRITTEN_ID} and {FIRST_WRITTEN_ID + 9_999} group by event_type order by 1"
    )
    assert rows == [
        ("task_created", writer.written, writer.written),
        ("task_status_changed", writer.written, writer.written),
    ]
    print(f"{len(landed_ids) - len(expected)} replayed change(s) absorbed by dedup")


def test_a_column_added_to_an_app_table_is_ignored_with_one_warning_and_changes_still_land(
    stack: Stack,  # noqa: F811
    lake_settings: Settings,
    spark,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = lake_settings.model_copy(update={"trigger_seconds": 0.5})
    before = {row["event_id"] for row in lake_events(settings)}
    task_id, legend = first_task(settings)
    legends = [value for value in (2, 4, 5) if value != legend][:2]
    log_id = query(
        settings, "SELECT MIN(log_id) FROM log_times WHERE approval_status <> 'approved'"
    )
    changed_at = datetime.datetime(2025, 3, 4, 11, 0)

    def new_events() -> list[dict]:
        return [row for row in lake_events(settings) if row["event_id"] not in before]

    with (
        caplog.at_level(logging.WARNING, logger="spark.cdc_drift"),
        running_stream(spark, settings) as outcome,
    ):
        # while Connect and the stream run: the app gains a column, then fills it
        execute(settings, ("ALTER TABLE easycases ADD COLUMN custom_status_id INT NULL", ()))
        execute(settings, ("ALTER TABLE log_times ADD COLUMN description TEXT NULL", ()))
        for step, new_legend in enumerate(legends):
            execute(
                settings,
                (
                    "UPDATE easycases SET legend = %s, custom_status_id = %s, updated_by = 1, "
                    "dt_created = %s WHERE id = %s",
                    (new_legend, 40 + step, changed_at + datetime.timedelta(minutes=step), task_id),
                ),
            )
        execute(
            settings,
            (
                "UPDATE log_times SET approval_status = 'approved', approver_id = 1, "
                "description = 'checked' WHERE log_id = %s",
                (log_id,),
            ),
        )
        wait_until(lambda: len(new_events()) >= 3, "the three changes to land")
    assert not [item for item in outcome if isinstance(item, Exception)], outcome
    assert sorted(row["event_type"] for row in new_events()) == [
        "task_status_changed",
        "task_status_changed",
        "time_entry_approved",
    ]
    warnings = sorted(r.getMessage() for r in caplog.records if r.name == "spark.cdc_drift")
    assert len(warnings) == 2  # once per table and column, however many changes carry it
    assert warnings[0].startswith("Table easycases has a column custom_status_id the change")
    assert warnings[1].startswith("Table log_times has a column description the change")


def test_drift_reads_the_records_schema_or_row_and_warns_once_per_table_and_column() -> None:
    known = known_columns()["milestones"]
    fields = [{"field": name, "type": "string"} for name in sorted(known - {"title"})]
    image = {"type": "struct", "fields": [*fields, {"field": "color", "type": "string"}]}
    schema = {"type": "struct", "fields": [image | {"field": "before"}, image | {"field": "after"}]}
    with_schema = json.dumps({"schema": schema, "payload": {"op": "c"}}, separators=(",", ":"))
    without_schema = json.dumps({"op": "u", "after": dict.fromkeys([*known, "color"])})
    topic = "orangescrum-appdb.orangescrum.milestones"
    seen = survey([topic, topic, topic], [with_schema.encode(), None, b"{oops"], CdcRules())
    assert seen == {("milestones", tuple(sorted(known - {"title"} | {"color"}))): 1}
    assert image_fields(without_schema.encode()) == tuple(sorted(known | {"color"}))

    drift = ColumnDrift()
    ((table, carried),) = seen
    first = drift.observe(table, carried)
    assert [message.split(":")[0] for message in first] == [
        "Table milestones has a column color the change mapping does not know",
        "Table milestones no longer has the column title the change mapping knows",
    ]
    assert drift.observe(table, carried) == []  # once per table and column
    assert drift.observe("no_such_table", ["x"]) == []  # dead-lettered as unknown_table


def test_a_recreated_table_topic_is_refused_in_one_sentence(
    stack: Stack,  # noqa: F811
    lake_settings: Settings,
    spark,
) -> None:
    settings = lake_settings
    topic = table_topic(settings, "case_activities")
    events = len(lake_events(settings))
    batches = len(change_metrics(settings))
    delete_topics(settings, [topic])
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    (created,) = admin.create_topics(
        [NewTopic(topic, num_partitions=1, config={"cleanup.policy": "compact"})]
    ).values()
    created.result(timeout=30)

    with pytest.raises(OrangeScrumError) as refused:
        run_cdc_stream(spark, settings, available_now=True)
    sentence = str(refused.value)
    assert sentence.startswith(f"Topic {topic} was recreated (its id is ")
    assert "move that checkpoint folder aside" in sentence
    assert cdc_checkpoint(settings) in sentence and "\n" not in sentence
    # nothing skipped or landed
    assert (len(lake_events(settings)), len(change_metrics(settings))) == (events, batches)
