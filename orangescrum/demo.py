"""`orangescrum demo`: the whole pipeline on the local stack, ending in reconciled counts."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingestion.faults import BAD_KINDS, EXPECTED_REASON
from ingestion.feed import ProduceReport, produce_history
from ingestion.simulator import SimulationConfig
from orangescrum.core.apicurio.build import apicurio_version, is_built
from orangescrum.core.apicurio.server import LocalSchemaRegistry
from orangescrum.core.broker import LocalKafka, broker_data_dir
from orangescrum.core.contract.registry import register_contract, registry_for
from orangescrum.core.contract.schema import SUBJECT
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.kafka_security import Security
from orangescrum.core.monitoring import read_metrics
from orangescrum.core.processes import HOST, free_port, port_is_free, stop_process
from orangescrum.core.settings import Settings
from orangescrum.core.topics import create_topics, delete_topics
from orangescrum.warehouse.dbt import run_dbt
from orangescrum.warehouse.load import (
    WarehouseCounts,
    build_marts,
    load_raw_events,
    warehouse_counts,
)
from spark.session import spark_session
from spark.stream import StreamTotals, run_stream

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# 30 days show weekly patterns and trends on the dashboard, and cost about what 3 days do: the
# run is dominated by fixed costs (JVM, Kafka, dbt), not by the ~10,000 events (measured on 2
# cores: 3 days 43 s, 30 days 42 s).
DEFAULT_DAYS = 30
STREAM_POLL_SECONDS = 1.0

# What each dbt build status counts, for the line under step 6.
DBT_STATUS_MEANINGS = {
    "success": "models built (tables and views in the warehouse)",
    "pass": "data tests and unit tests that passed",
    "warn": "tests that found rows but only warn",
    "fail": "tests that found rows they must not",
    "error": "nodes that could not run",
    "skipped": "nodes not run because something upstream failed",
    "no-op": "exposures (the dashboards on the marts): recorded for lineage, nothing to run",
}
# Dead-letter reason -> what was wrong with the message (the stream's rules, spark/decode.py).
DEAD_LETTER_MEANINGS = {
    "empty_value": "the message has no value",
    "not_confluent_avro": "no Confluent framing (magic byte 0, schema id)",
    "unknown_schema_id": "a schema id the registry does not know",
    "avro_decode_error": "an Avro body that does not decode",
    "missing_required_field": "event_id, company_id or user_id missing/invalid",
    "unknown_event_type": "an event type the contract does not list",
    "missing_key": "no Kafka key (it must be the company_id)",
    "key_mismatch": "a Kafka key that is not the event's company_id",
    "timestamp_out_of_range": "event time too far in the past or in the future",
}


@dataclass(frozen=True)
class DemoOptions:
    days: int = DEFAULT_DAYS
    seed: int = 42
    companies: int = 2
    late_rate: float = 0.02
    duplicate_rate: float = 0.01
    bad_per_kind: int = 2
    start_date: date | None = None  # None: the `days` days ending yesterday (UTC)
    security: Security = Security.PLAINTEXT  # SASL_SSL: every client logs in as its role's user


@dataclass
class DemoResult:
    produced: ProduceReport
    streamed: StreamTotals
    warehouse: WarehouseCounts
    problems: list[str] = field(default_factory=list)
    broker: LocalKafka | None = None  # still running: run_demo(..., keep_broker=True)
    # The schema registry the demo used, and the ids of the contract's versions there.
    registry_url: str = ""
    schema_ids: dict[int, int] = field(default_factory=dict)  # version -> id
    registry: LocalSchemaRegistry | None = None  # the demo's own, still running like `broker`


@dataclass(frozen=True)
class DemoClients:
    """The settings each part of the demo reaches Kafka with. On a secured broker each is its
    role's user, held to that role's ACLs (topics as admin, the history as producer, the
    stream and its dead letters as stream); on a PLAINTEXT broker all three are the same."""

    admin: Settings
    producer: Settings
    stream: Settings


def demo_clients(settings: Settings, broker: LocalKafka) -> DemoClients:
    local = settings.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap})
    if broker.secrets is None:
        return DemoClients(local, local, local)
    secrets = broker.secrets

    def as_user(user: str) -> Settings:
        return secrets.user_settings(local, broker.bootstrap, user)

    return DemoClients(as_user("admin"), as_user("producer"), as_user("stream"))


def demo_registry(settings: Settings) -> LocalSchemaRegistry | None:
    """The schema registry the demo starts: the local Apicurio Registry, with its subjects and
    ids kept under the data dir (a second run reuses them), or none when
    ORANGESCRUM_SCHEMA_REGISTRY_URL names a registry already running elsewhere."""
    if settings.schema_registry_url:
        return None
    if not is_built(settings.jar_cache_dir):
        raise OrangeScrumError(
            f"The demo's schema registry (Apicurio Registry {apicurio_version()}) is not built "
            f"in {settings.jar_cache_dir}: run `orangescrum registry build` once (`make setup` "
            "does it), or set ORANGESCRUM_SCHEMA_REGISTRY_URL to a running registry."
        )
    return LocalSchemaRegistry.from_settings(settings)


def reset_workspace(settings: Settings) -> None:
    """Lake, checkpoints and warehouse start empty, so a second run reproduces the first.

    The demo's topics are recreated as well (`fresh_topics`): a checkpoint must never meet
    a topic other than the one it read.
    """
    for path in (settings.data_dir / "lake", settings.data_dir / "checkpoints"):
        shutil.rmtree(path, ignore_errors=True)
    for suffix in ("", ".wal"):
        settings.duckdb_file.with_name(settings.duckdb_file.name + suffix).unlink(missing_ok=True)


def reconcile(
    produced: ProduceReport, streamed: StreamTotals, counts: WarehouseCounts
) -> list[str]:
    """Every mismatch between what was produced, landed and modelled, in words."""
    problems = []
    expected_dead = sum(produced.bad_by_kind.values())
    if streamed.rows_in != produced.messages:
        problems.append(f"stream read {streamed.rows_in} of {produced.messages} messages")
    if streamed.rows_dead_lettered != expected_dead:
        problems.append(f"{streamed.rows_dead_lettered} dead letters, expected {expected_dead}")
    expected_reasons: dict[str, int] = {}
    for kind, count in produced.bad_by_kind.items():
        reason = EXPECTED_REASON[kind]
        expected_reasons[reason] = expected_reasons.get(reason, 0) + count
    if streamed.dead_letter_reasons != expected_reasons:
        problems.append(f"dead-letter reasons {streamed.dead_letter_reasons} != {expected_reasons}")
    if counts.raw_rows != produced.events:
        problems.append(f"raw_events has {counts.raw_rows} rows, {produced.events} produced")
    if counts.fact_activities != produced.unique_events:
        problems.append(
            f"fact_activities has {counts.fact_activities} rows, "
            f"{produced.unique_events} distinct events produced"
        )
    if counts.fact_distinct_events != counts.fact_activities:
        problems.append("fact_activities repeats an event_id")
    return problems


def run_demo(
    settings: Settings, options: DemoOptions, console: Console, *, keep_broker: bool = False
) -> DemoResult:
    """The whole pipeline on the local stack; raises OrangeScrumError if counts disagree.

    The broker, and the schema registry the demo starts beside it (`demo_registry`), stop
    once the stream has read everything, unless keep_broker: then both are left running in
    `DemoResult.broker` and `DemoResult.registry` (see `serve_demo`) and the caller stops
    them. Both are stopped whenever the demo fails.
    """
    total_steps = 6
    registry = demo_registry(settings)  # not built: one sentence before anything starts
    console.rule("OrangeScrum Analytics demo")
    console.print(f"[1/{total_steps}] Clean workspace in {settings.data_dir}")
    reset_workspace(settings)
    broker = LocalKafka.from_settings(
        settings, broker_data_dir(settings, 1, options.security), security=options.security
    )
    secured = "" if options.security is Security.PLAINTEXT else ", SASL_SSL with one user per role"
    console.print(f"[2/{total_steps}] Apache Kafka (KRaft, local{secured}) on {broker.bootstrap}")
    try:
        if registry is not None:
            registry.launch()  # its JVM starts while the broker's does
        broker.start()
        if registry is not None:
            registry.wait_until_ready()
            settings = settings.model_copy(update={"schema_registry_url": registry.url})
        registry_url = settings.schema_registry_url
        schema_ids = (
            register_contract(
                registry_for(registry_url, settings.schema_registry_basic_auth.get_secret_value())
            )
            if registry is not None
            else {}
        )
        console.print(
            f"      {registry_line(registry_url, schema_ids, registry)}",
            soft_wrap=True,
            highlight=False,
        )
        clients = demo_clients(settings, broker)
        settings = clients.admin
        produced, streamed = _produce_and_stream(clients, options, console, broker, total_steps)
        if not keep_broker:
            _stop_broker_and_registry(broker, registry)
        console.print(f"[5/{total_steps}] raw_events in DuckDB over the lake")
        load_raw_events(settings, quiet=True)
        console.print(f"[6/{total_steps}] dbt build (models, data tests, unit tests)")
        statuses = build_marts(settings, quiet=True)
        for line in dbt_status_lines(statuses):
            console.print(f"      {line}", highlight=False)
        counts = warehouse_counts(settings)
        result = DemoResult(
            produced,
            streamed,
            counts,
            reconcile(produced, streamed, counts),
            broker=broker if keep_broker else None,
            registry_url=registry_url,
            schema_ids=schema_ids,
            registry=registry if keep_broker else None,
        )
        print_summary(settings, result, console)
        if result.problems:
            raise OrangeScrumError("counts do not reconcile: " + "; ".join(result.problems))
    except BaseException:
        _stop_broker_and_registry(broker, registry)
        raise
    return result


def _stop_broker_and_registry(broker: LocalKafka, registry: LocalSchemaRegistry | None) -> None:
    broker.stop()
    if registry is not None:
        registry.stop()


def registry_line(
    url: str, schema_ids: dict[int, int], registry: LocalSchemaRegistry | None
) -> str:
    """Step 2's line on the schema registry: where it is and, for the demo's own, the ids."""
    if registry is None:
        return f"schema registry {url} (ORANGESCRUM_SCHEMA_REGISTRY_URL; the demo starts none)"
    ids = ", ".join(f"v{version} id {schema_id}" for version, schema_id in schema_ids.items())
    return (
        f"schema registry {url} (Apicurio Registry {apicurio_version()}): {SUBJECT} {ids}; "
        f"ids kept in {registry.directory}"
    )


def _produce_and_stream(
    clients: DemoClients,
    options: DemoOptions,
    console: Console,
    broker: LocalKafka,
    total_steps: int,
) -> tuple[ProduceReport, StreamTotals]:
    """Fresh topics, the simulated history on them, then one AvailableNow run of the stream."""
    settings = clients.admin
    topics = [settings.topic_events, settings.topic_dead_letter]
    delete_topics(settings, topics)
    create_topics(settings)
    console.print(f"      fresh topics {', '.join(topics)}; data in {broker.data_dir}")
    config = SimulationConfig(
        seed=options.seed,
        companies=options.companies,
        days=options.days,
        start_date=options.start_date,
        late_rate=options.late_rate,
        duplicate_rate=options.duplicate_rate,
    )
    console.print(
        f"[3/{total_steps}] Simulating {options.days} days of {options.companies} companies "
        f"(seed {options.seed}) -> topic {settings.topic_events}"
    )
    with (
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.completed:,} messages"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            # piped output (logs, CI) gets the step's result line, not a blank one
            disable=not console.is_terminal,
        ) as progress,
        _logs_above_the_progress(),
    ):
        task = progress.add_task("producing", total=None)
        produced = produce_history(
            clients.producer,
            config,
            dict.fromkeys(BAD_KINDS, options.bad_per_kind),
            progress=lambda n: progress.advance(task, n),
        )
    console.print(
        f"      produced {produced.messages:,} messages: {produced.unique_events:,} events, "
        f"{produced.duplicates:,} duplicate deliveries, {produced.late:,} late, "
        f"{sum(produced.bad_by_kind.values())} bad"
    )
    console.print(f"[4/{total_steps}] Spark Structured Streaming (AvailableNow) -> lake")
    started = time.monotonic()
    with (
        Progress(
            SpinnerColumn(),
            BarColumn(bar_width=24),
            # Spark's status words hold brackets ("KafkaV2[Subscribe[events-raw]]"): no markup
            TextColumn("{task.description}", markup=False),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            # piped output (logs, CI) gets the step's result line, not a blank one
            disable=not console.is_terminal,
        ) as progress,
        _logs_above_the_progress(),
    ):
        state = StreamProgress(produced.messages)
        task = progress.add_task(state.describe(), total=produced.messages)

        def show(state: StreamProgress) -> None:
            progress.update(task, completed=state.read, description=state.describe())

        with (
            spark_session(clients.stream, "orangescrum-demo") as spark,
            _watching_the_stream(clients.stream, spark, state, show),
        ):
            streamed = run_stream(spark, clients.stream, available_now=True)
    batches = "micro-batch" if streamed.batches == 1 else "micro-batches"
    console.print(
        f"      read {streamed.rows_in:,} messages in {streamed.batches} {batches} "
        f"({time.monotonic() - started:.0f}s including Spark's start): "
        f"{streamed.rows_landed:,} landed, {streamed.rows_dead_lettered:,} dead-lettered"
    )
    return produced, streamed


@dataclass
class StreamProgress:
    """What the status line of the Spark step says, from the lake's per-batch metrics and
    Spark's task counts (a batch lands all its rows at once, at its end)."""

    produced: int
    spark_started: bool = False
    batches: int = 0
    landed: int = 0
    dead_lettered: int = 0
    tasks_done: int = 0
    tasks_total: int = 0
    stream_status: str = ""  # Spark's own words between batches, e.g. "Getting offsets from ..."

    @property
    def read(self) -> int:
        return self.landed + self.dead_lettered

    def describe(self) -> str:
        if not self.spark_started:
            return "starting Spark (a local JVM)"
        text = (
            f"{self.read:,} of {self.produced:,} messages read: {self.landed:,} landed, "
            f"{self.dead_lettered:,} dead-lettered"
        )
        if self.tasks_total:
            text += (
                f" · batch {self.batches} running: Spark tasks {self.tasks_done}/{self.tasks_total}"
            )
        elif self.read < self.produced:
            text += f" · {self.stream_status or 'starting the stream'}"
        return text


def poll_stream(settings: Settings, spark: SparkSession | None, state: StreamProgress) -> None:
    """Refresh `state` from the lake's metrics rows (this run's only: the workspace starts
    empty) and, when given a session, Spark's active stages."""
    filesystem, lake = settings.lake.open()
    metrics = read_metrics(filesystem, lake)
    state.batches = metrics.num_rows
    state.landed = sum(rows or 0 for rows in metrics.column("rows_landed").to_pylist())
    state.dead_lettered = sum(
        rows or 0 for rows in metrics.column("rows_dead_lettered").to_pylist()
    )
    if spark is None:
        return
    active = spark.streams.active
    state.stream_status = str(active[0].status["message"]) if active else ""
    tracker = spark.sparkContext.statusTracker()
    stages = [tracker.getStageInfo(stage) for stage in tracker.getActiveStageIds()]
    state.tasks_total = sum(stage.numTasks for stage in stages if stage is not None)
    state.tasks_done = sum(stage.numCompletedTasks for stage in stages if stage is not None)


@contextmanager
def _watching_the_stream(
    settings: Settings,
    spark: SparkSession,
    state: StreamProgress,
    show: Callable[[StreamProgress], None],
) -> Iterator[None]:
    """Poll the stream's progress in a thread while the block runs; stopped (and joined)
    before the block's Spark session goes away."""
    stop = threading.Event()
    state.spark_started = True
    show(state)

    def watch() -> None:
        while not stop.wait(STREAM_POLL_SECONDS):
            try:
                poll_stream(settings, spark, state)
            except Exception as error:  # a status line must never fail the demo
                log.debug("stream progress unknown: %s", error)
                continue
            show(state)

    watcher = threading.Thread(target=watch, name="demo-stream-progress", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join(timeout=10)


@contextmanager
def _logs_above_the_progress() -> Iterator[None]:
    """While a rich progress display is up on a terminal, sys.stderr is rich's proxy, which
    prints above the display; the terminal's log handler holds the real stream and would
    write into the display's line, so it writes through the proxy until the block ends."""
    swapped: list[tuple[logging.StreamHandler[TextIO], TextIO]] = []
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(
            handler, logging.FileHandler
        ):
            previous = handler.setStream(sys.stderr)
            if previous is not None:
                swapped.append((handler, previous))
    try:
        yield
    finally:
        for handler, previous in swapped:
            handler.setStream(previous)


def dbt_status_lines(statuses: dict[str, int]) -> list[str]:
    """`dbt build`'s node counts, one status a line with what it counts."""
    order = list(DBT_STATUS_MEANINGS)
    ranked = sorted(statuses, key=lambda status: order.index(status) if status in order else 99)
    width = max((len(f"{statuses[status]:,}") for status in ranked), default=1)
    return [
        f"{statuses[status]:>{width},} {status:<8} {DBT_STATUS_MEANINGS.get(status, 'nodes')}"
        for status in ranked
    ]


def summary_table(result: DemoResult) -> Table:
    """The reconciliation: every count with one line on what it is and what it must equal."""
    produced, streamed, counts = result.produced, result.streamed, result.warehouse
    bad = sum(produced.bad_by_kind.values())
    kinds = len(produced.bad_by_kind)
    table = Table(title="Reconciliation", box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("count")
    table.add_column("rows", justify="right")
    table.add_column("what it is")
    rows = [
        (
            "messages produced to Kafka",
            produced.messages,
            "distinct events + duplicate deliveries + bad messages",
        ),
        ("  distinct events", produced.unique_events, "actions in the app, one event_id each"),
        (
            "  duplicate deliveries",
            produced.duplicates,
            "an event sent twice: lands, dropped in staging",
        ),
        ("  bad messages", bad, f"broken on purpose ({kinds} kinds): must be dead-lettered"),
        ("  late events", produced.late, "delivered hours to days late: a subset of landed"),
        ("read by Spark", streamed.rows_in, "must equal produced: nothing lost on the way"),
        (
            "landed in the lake (raw_events)",
            counts.raw_rows,
            "must equal distinct events + duplicates, late included",
        ),
        ("dead-lettered", streamed.rows_dead_lettered, "must equal bad messages; by reason:"),
    ]
    rows += [
        (f"  {reason}", count, DEAD_LETTER_MEANINGS.get(reason, ""))
        for reason, count in sorted(streamed.dead_letter_reasons.items())
    ]
    rows.append(
        (
            "rows in fact_activities",
            counts.fact_activities,
            "must equal distinct events: duplicates removed",
        )
    )
    for label, count, meaning in rows:
        table.add_row(label, f"{count:,}", meaning)
    return table


def print_summary(settings: Settings, result: DemoResult, console: Console) -> None:
    console.print(summary_table(result))
    if result.problems:
        console.print("[red]MISMATCH[/red]: " + "; ".join(result.problems), highlight=False)
    else:
        console.print('[green]all counts reconcile[/green]: every "must equal" above holds')
    console.print(f"lake:      {settings.lake_root}")
    console.print(f"warehouse: {settings.duckdb_file}")
    if result.registry_url:
        stopped = (
            " (stopped with the demo; `orangescrum registry start` serves the same ids again)"
            if result.schema_ids and result.registry is None
            else ""
        )
        console.print(f"registry:  {result.registry_url}{stopped}", soft_wrap=True, highlight=False)
    console.print("catalog:   make docs   (dbt docs generate + serve on http://127.0.0.1:8081)")


# --- demo --keep-running -----------------------------------------------------------------------
DOCS_PORT = 8081  # `orangescrum docs serve`'s default
SERVICE_READY_SECONDS = 120  # Streamlit on a busy 2-core machine takes a while
SERVICE_STOP_SECONDS = 15

# (port) -> the command serving the dashboard on it; (port, dbt target folder) -> the docs'.
DashboardCommand = Callable[[int], list[str]]
DocsCommand = Callable[[int, Path], list[str]]


@dataclass
class _Service:
    name: str
    url: str
    port: int
    log_file: Path
    process: subprocess.Popen[bytes]


def docs_target(settings: Settings) -> Path:
    """The dbt target folder of the demo's catalog (not dbt_project/target: other runs use it)."""
    return settings.data_dir / "dbt_docs"


def preferred_port(port: int) -> int:
    """The usual port when it is free, else any free one (the demo prints where it is)."""
    return port if port_is_free(port) else free_port()


def serve_demo(
    settings: Settings,
    broker: LocalKafka,
    console: Console,
    dashboard_command: DashboardCommand,
    docs_command: DocsCommand,
    *,
    registry_url: str = "",
    registry: LocalSchemaRegistry | None = None,
) -> NoReturn:
    """Keep the demo's broker and schema registry, the dashboard and the dbt docs up until
    Ctrl-C or SIGTERM.

    Generates the dbt catalog, starts both servers (their output in the log folder), waits
    until each answers, prints the addresses, then watches them: one that dies stops the
    rest with an error naming its log. Ctrl-C / SIGTERM (KeyboardInterrupt) stops the servers,
    then the broker and the registry (`registry`, the demo's own; `registry_url` is printed
    either way), and is raised again.
    """
    services: list[_Service] = []
    try:
        console.print("dbt docs generate (the catalog)")
        target = docs_target(settings)
        run_dbt(settings, ["docs", "generate"], target_path=target, quiet=True)
        env = os.environ | {
            "ORANGESCRUM_DATA_DIR": str(settings.data_dir),
            "ORANGESCRUM_DUCKDB_PATH": str(settings.duckdb_file),
            "ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "ORANGESCRUM_SCHEMA_REGISTRY_URL": registry_url or settings.schema_registry_url,
        }
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        dashboard_port = preferred_port(settings.dashboard_port)
        docs_port = preferred_port(DOCS_PORT)
        for name, port, command in (
            ("dashboard", dashboard_port, dashboard_command(dashboard_port)),
            ("dbt docs", docs_port, docs_command(docs_port, target)),
        ):
            services.append(_start_service(name, port, command, env, settings.log_dir))
        _wait_until_listening(services, broker, registry)
        width = max(len(s.name) for s in services) + 1
        console.rule("running: Ctrl-C stops everything")
        console.print(
            f"{'kafka:':<{width + 1}} {broker.bootstrap}   "
            f"(export ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap})",
            soft_wrap=True,
        )
        if registry_url:
            console.print(
                f"{'registry:':<{width + 1}} {registry_url}   "
                f"(export ORANGESCRUM_SCHEMA_REGISTRY_URL={registry_url})",
                soft_wrap=True,
                highlight=False,
            )
        for service in services:
            console.print(f"{service.name + ':':<{width + 1}} {service.url}", soft_wrap=True)
        while True:
            _check_alive(services, broker, registry)
            time.sleep(0.5)
    finally:
        _stop_all(services, broker, registry, console)


def _start_service(
    name: str, port: int, command: list[str], env: dict[str, str], log_dir: Path
) -> _Service:
    log_file = log_dir / f"demo-{name.replace(' ', '-')}.log"
    with log_file.open("ab") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    log.info("demo %s: pid %d on port %d, output in %s", name, process.pid, port, log_file)
    return _Service(name, f"http://{HOST}:{port}", port, log_file, process)


def _wait_until_listening(
    services: list[_Service], broker: LocalKafka, registry: LocalSchemaRegistry | None
) -> None:
    deadline = time.monotonic() + SERVICE_READY_SECONDS
    waiting = list(services)
    while waiting:
        _check_alive(services, broker, registry)
        waiting = [s for s in waiting if not _listening(s.port)]
        if waiting and time.monotonic() > deadline:
            names = ", ".join(f"{s.name} (see {s.log_file})" for s in waiting)
            raise OrangeScrumError(
                f"Not listening after {SERVICE_READY_SECONDS}s: {names}; the demo stopped the "
                "rest, so look at that log and run it again."
            )
        time.sleep(0.2)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def _check_alive(
    services: list[_Service], broker: LocalKafka, registry: LocalSchemaRegistry | None
) -> None:
    for service in services:
        code = service.process.poll()
        if code is not None:
            raise OrangeScrumError(
                f"The demo's {service.name} exited with code {code}; see {service.log_file} "
                "(the demo stopped the rest)."
            )
    if broker.exited():
        raise OrangeScrumError(
            f"The demo's Kafka broker stopped; see {broker.nodes[0].log_file} (the demo "
            "stopped the rest)."
        )
    if registry is not None and (code := registry.exit_code()) is not None:
        raise OrangeScrumError(
            f"The demo's schema registry exited with code {code}; see {registry.log_file} (the "
            "demo stopped the rest)."
        )


def _stop_all(
    services: list[_Service],
    broker: LocalKafka,
    registry: LocalSchemaRegistry | None,
    console: Console,
) -> None:
    """SIGTERM each server (SIGKILL after a grace period), then the broker and the schema
    registry; a second Ctrl-C or SIGTERM meanwhile does not cut the clean-up short."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    saved = {}
    if in_main_thread:
        saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for service in services:
            if service.process.poll() is None:
                stop_process(service.process, SERVICE_STOP_SECONDS)
        _stop_broker_and_registry(broker, registry)
        stopped = [s.name for s in services] + ["the Kafka broker"]
        if registry is not None:
            stopped.append("the schema registry")
        console.print(f"stopped {', '.join(stopped)}")
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
