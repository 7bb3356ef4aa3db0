"""`orangescrum demo --source appdb`: the database path end to end, reconciled with the database.

The app's MariaDB gets a seeded history (as `simulate app-db` writes it), Kafka Connect +
Debezium snapshot it into the table topics, the change stream lands ActivityEvent rows in the
lake, and dbt builds the same marts as the event path. Each run starts fresh (app tables,
Connect's topics, lake, checkpoints, warehouse), so the same options give the same marts.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final

import duckdb
from confluent_kafka.admin import AdminClient
from rich.console import Console
from rich.table import Table

from ingestion.simulator import SimulationConfig, simulate_history
from orangescrum.core.appdb.apply import ApplyReport, apply_history
from orangescrum.core.appdb.connection import connect, drop_tables, row_counts
from orangescrum.core.appdb.server import LocalMariaDB
from orangescrum.core.broker import LocalKafka
from orangescrum.core.connect import LocalConnect, table_topic, topic_message_counts
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.kafka_security import ClientErrors
from orangescrum.core.processes import free_port
from orangescrum.core.settings import Settings
from orangescrum.core.topics import create_topics, delete_topics
from orangescrum.demo import dbt_status_lines, reset_workspace
from orangescrum.warehouse.load import build_marts, load_raw_events, model_schema
from spark.cdc_stream import run_cdc_stream
from spark.session import spark_session
from spark.stream import StreamTotals

log = logging.getLogger(__name__)

TOTAL_STEPS: Final = 6
# How long the snapshot may take to reach the topics (a busy 2-core machine is slow).
SNAPSHOT_TIMEOUT_SECONDS: Final = 300.0

# Event type -> the rows of the app's tables that give it in a snapshot (spark/cdc.py): each
# row its creation, plus the end state it reached. The demo's reconciliation.
SNAPSHOT_EVENTS: Final[Mapping[str, str]] = {
    "task_created": "easycases WHERE istype = 1",
    "task_deleted": "easycases WHERE istype = 1 AND isactive = 0",
    "task_commented": "easycases WHERE istype = 2",
    "user_registered": "company_users WHERE user_type = 1",
    "user_invited": "company_users WHERE user_type <> 1",
    "user_disabled": "company_users WHERE is_active = 0",
    "project_created": "projects",
    "project_archived": "projects WHERE isactive = 0",
    "project_member_added": "project_users",
    "time_logged": "log_times WHERE is_from_timer = 0",
    "timer_stopped": "log_times WHERE is_from_timer = 1",
    "milestone_created": "milestones",
}


@dataclass(frozen=True)
class AppDbDemoOptions:
    days: int = 30
    seed: int = 42
    companies: int = 2
    start_date: date | None = None  # None: the `days` days ending yesterday (UTC)

    @property
    def simulation(self) -> SimulationConfig:
        first_day = self.start_date or datetime.now(UTC).date() - timedelta(days=self.days)
        # The app writes each event once, when it happens: no late or duplicate hand-offs.
        return SimulationConfig(
            seed=self.seed, companies=self.companies, days=self.days, start_date=first_day
        )


@dataclass
class AppDbDemoResult:
    applied: ApplyReport
    rows: dict[str, int]  # per app table
    streamed: StreamTotals
    silent: int  # change records that mean no event
    expected: Counter[str]  # per event type, from the database
    modelled: Counter[str]  # per event type, in fact_activities
    problems: list[str] = field(default_factory=list)


def snapshot_event_counts(settings: Settings) -> Counter[str]:
    """Per event type, how many events the database's rows give in a snapshot."""
    connection = connect(settings)
    try:
        with connection.cursor() as cursor:
            counts: Counter[str] = Counter()
            for event_type, rows in SNAPSHOT_EVENTS.items():
                cursor.execute(f"SELECT COUNT(*) FROM {rows}")
                counts[event_type] = int(cursor.fetchone()[0])
            return +counts
    finally:
        connection.close()


def fact_event_counts(settings: Settings) -> Counter[str]:
    with duckdb.connect(str(settings.duckdb_file), read_only=True) as connection:
        schema = model_schema(connection, "fact_activities")
        rows = connection.execute(
            f"select event_type, count(*) from {schema}.fact_activities group by event_type"
        ).fetchall()
    return Counter(dict(rows))


def reconcile(result: AppDbDemoResult) -> list[str]:
    """Every mismatch between the database, the stream and the marts, in words."""
    problems = []
    if result.streamed.rows_dead_lettered:
        problems.append(
            f"{result.streamed.rows_dead_lettered} change events dead-lettered "
            f"({result.streamed.dead_letter_reasons})"
        )
    if result.streamed.rows_landed != sum(result.expected.values()):
        problems.append(
            f"the stream landed {result.streamed.rows_landed} events, the database's rows give "
            f"{sum(result.expected.values())}"
        )
    for event_type in sorted(set(result.expected) | set(result.modelled)):
        expected, modelled = result.expected[event_type], result.modelled[event_type]
        if expected != modelled:
            problems.append(f"{event_type}: {modelled} in fact_activities, {expected} expected")
    return problems


def fresh_connect_topics(settings: Settings) -> list[str]:
    """Delete every topic of the connector and its worker (offsets included), so the next
    worker takes a new snapshot of the new history instead of resuming an old binlog."""
    admin = AdminClient(ClientErrors(settings).config())
    prefix = settings.connect_topic_prefix
    doomed = sorted(
        name for name in admin.list_topics(timeout=15).topics if name.startswith(prefix)
    )
    delete_topics(settings, doomed)
    return doomed


def wait_for_snapshot(settings: Settings, rows: Mapping[str, int], worker: LocalConnect) -> None:
    """Until each table's topic holds a record per row (the snapshot is complete)."""
    topics = {table: table_topic(settings, table) for table, count in rows.items() if count}
    deadline = time.monotonic() + SNAPSHOT_TIMEOUT_SECONDS
    while True:
        counts = topic_message_counts(settings, list(topics.values()))
        missing = {
            table: f"{counts[topic] or 0}/{rows[table]}"
            for table, topic in topics.items()
            if (counts[topic] or 0) < rows[table]
        }
        if not missing:
            return
        if (failure := worker.failure()) is not None:
            raise OrangeScrumError(f"Kafka Connect stopped during the snapshot: {failure}")
        if time.monotonic() > deadline:
            raise OrangeScrumError(
                f"The snapshot did not reach the topics in {SNAPSHOT_TIMEOUT_SECONDS:.0f} s "
                f"(records/rows: {missing}); see {worker.log_file}."
            )
        time.sleep(1)


def run_appdb_demo(
    settings: Settings, options: AppDbDemoOptions, console: Console
) -> AppDbDemoResult:
    """The database path on the local stack; raises OrangeScrumError if counts disagree."""
    console.rule("OrangeScrum Analytics demo: the app's database as the source")
    console.print(f"[1/{TOTAL_STEPS}] Clean workspace in {settings.data_dir}")
    reset_workspace(settings)
    with LocalKafka.from_settings(settings, settings.kafka_data_dir) as broker:
        settings = settings.model_copy(
            update={"kafka_bootstrap_servers": broker.bootstrap, "appdb_port": free_port()}
        )
        with LocalMariaDB.from_settings(settings) as appdb:
            console.print(
                f"[2/{TOTAL_STEPS}] Apache Kafka on {broker.bootstrap}, MariaDB on "
                f"{appdb.address} (data in {settings.appdb_data_dir})"
            )
            applied, rows = _simulate(settings, options, console)
            deleted = fresh_connect_topics(settings)
            create_topics(settings)  # the dead-letter topic the change stream copies to
            console.print(
                f"[4/{TOTAL_STEPS}] Kafka Connect + Debezium: snapshot of the app's tables"
                + (f" (previous run's {len(deleted)} topics deleted)" if deleted else "")
            )
            with LocalConnect(settings) as worker:
                wait_for_snapshot(settings, rows, worker)
                console.print(f"      {sum(rows.values()):,} rows in the table topics")
            console.print(f"[5/{TOTAL_STEPS}] Spark change stream (AvailableNow) -> lake")
            with spark_session(settings, "orangescrum-demo-appdb") as spark:
                streamed, silent = run_cdc_stream(spark, settings, available_now=True)
            console.print(
                f"      {streamed.rows_landed:,} events landed, "
                f"{streamed.rows_dead_lettered:,} dead-lettered, {silent:,} changes meant no "
                "event"
            )
            expected = snapshot_event_counts(settings)
    console.print(f"[6/{TOTAL_STEPS}] raw_events in DuckDB, then dbt build")
    load_raw_events(settings, quiet=True)
    for line in dbt_status_lines(build_marts(settings, quiet=True)):
        console.print(f"      {line}", highlight=False)
    result = AppDbDemoResult(applied, rows, streamed, silent, expected, fact_event_counts(settings))
    result.problems = reconcile(result)
    console.print(summary_table(result))
    if result.problems:
        raise OrangeScrumError("counts do not reconcile: " + "; ".join(result.problems))
    console.print("[bold green]reconciled:[/] every row of the database is in the marts once")
    return result


def _simulate(
    settings: Settings, options: AppDbDemoOptions, console: Console
) -> tuple[ApplyReport, dict[str, int]]:
    config = options.simulation
    console.print(
        f"[3/{TOTAL_STEPS}] Simulating {config.days} days of {config.companies} companies "
        f"(seed {config.seed}) into {settings.appdb_database}, as the app writes them"
    )
    history = (
        f"seed={config.seed} companies={config.companies} days={config.days} "
        f"start_date={config.start_date}"
    )
    connection = connect(settings)
    try:
        drop_tables(connection)  # a fresh history: the same options give the same rows
        applied = apply_history(
            connection, (delivery.record for delivery in simulate_history(config)), history
        )
        rows = row_counts(connection)
    finally:
        connection.close()
    console.print(
        f"      {applied.events:,} events -> {applied.statements:,} statements: "
        + ", ".join(f"{table} {count:,}" for table, count in rows.items())
    )
    return applied, rows


def summary_table(result: AppDbDemoResult) -> Table:
    table = Table(title="database -> marts", title_justify="left")
    table.add_column("event type")
    table.add_column("from the database's rows", justify="right")
    table.add_column("in fact_activities", justify="right")
    for event_type in sorted(set(result.expected) | set(result.modelled)):
        table.add_row(
            event_type, f"{result.expected[event_type]:,}", f"{result.modelled[event_type]:,}"
        )
    return table
