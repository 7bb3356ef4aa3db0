"""`orangescrum demo`: the whole pipeline on the local stack, ending in reconciled counts."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from datetime import date

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingestion.faults import BAD_KINDS, EXPECTED_REASON
from ingestion.feed import ProduceReport, produce_history
from ingestion.simulator import SimulationConfig
from orangescrum.core.broker import LocalKafka
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.settings import Settings
from orangescrum.core.topics import create_topics, delete_topics
from orangescrum.warehouse.load import (
    WarehouseCounts,
    build_marts,
    load_raw_events,
    warehouse_counts,
)
from spark.session import spark_session
from spark.stream import StreamTotals, run_stream

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoOptions:
    days: int = 3
    seed: int = 42
    companies: int = 2
    late_rate: float = 0.02
    duplicate_rate: float = 0.01
    bad_per_kind: int = 2
    start_date: date | None = None  # None: the `days` days ending yesterday (UTC)


@dataclass
class DemoResult:
    produced: ProduceReport
    streamed: StreamTotals
    warehouse: WarehouseCounts
    problems: list[str] = field(default_factory=list)


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


def run_demo(settings: Settings, options: DemoOptions, console: Console) -> DemoResult:
    total_steps = 6
    console.rule("OrangeScrum Analytics demo")
    console.print(f"[1/{total_steps}] Clean workspace in {settings.data_dir}")
    reset_workspace(settings)
    broker = LocalKafka(settings.kafka_data_dir, settings.jar_cache_dir)
    console.print(f"[2/{total_steps}] Apache Kafka (KRaft, local) on {broker.bootstrap}")
    with broker:
        settings = settings.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap})
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
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.completed:,} messages"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("producing", total=None)
            produced = produce_history(
                settings,
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
        with spark_session(settings, "orangescrum-demo") as spark:
            streamed = run_stream(spark, settings, available_now=True)
    console.print(f"[5/{total_steps}] raw_events in DuckDB over the lake")
    load_raw_events(settings, quiet=True)
    console.print(f"[6/{total_steps}] dbt build (models, data tests, unit tests)")
    statuses = build_marts(settings, quiet=True)
    console.print("      " + ", ".join(f"{n} {status}" for status, n in sorted(statuses.items())))
    counts = warehouse_counts(settings)
    result = DemoResult(produced, streamed, counts, reconcile(produced, streamed, counts))
    print_summary(settings, result, console)
    if result.problems:
        raise OrangeScrumError("counts do not reconcile: " + "; ".join(result.problems))
    return result


def print_summary(settings: Settings, result: DemoResult, console: Console) -> None:
    table = Table(title="Reconciliation", show_header=True)
    table.add_column("stage")
    table.add_column("rows", justify="right")
    table.add_row("messages produced to Kafka", f"{result.produced.messages:,}")
    table.add_row("  of which distinct events", f"{result.produced.unique_events:,}")
    table.add_row("  of which duplicate deliveries", f"{result.produced.duplicates:,}")
    table.add_row("  of which bad messages", f"{sum(result.produced.bad_by_kind.values()):,}")
    table.add_row("read by Spark", f"{result.streamed.rows_in:,}")
    table.add_row("landed in the lake (raw_events)", f"{result.warehouse.raw_rows:,}")
    table.add_row("dead-lettered", f"{result.streamed.rows_dead_lettered:,}")
    table.add_row("rows in fact_activities", f"{result.warehouse.fact_activities:,}")
    console.print(table)
    verdict = "[green]all counts reconcile[/green]" if not result.problems else "[red]MISMATCH"
    console.print(verdict)
    console.print(f"lake:      {settings.lake_root}")
    console.print(f"warehouse: {settings.duckdb_file}")
    console.print("catalog:   make docs   (dbt docs generate + serve on http://127.0.0.1:8081)")
