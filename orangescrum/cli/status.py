"""`orangescrum status`: the pipeline's health as one table, or one JSON document.

Registered in orangescrum/cli/app.py as `app.command()(status)`. The facts come from
orangescrum/health.py, imported when the command runs: no Spark, dbt or Airflow is loaded, so
the command answers in about a second. Like every command, the table goes to stderr and
`--json` to stdout.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from orangescrum.cli.common import console, load_settings

if TYPE_CHECKING:
    from rich.table import Table

    from orangescrum.health import (
        BatchesState,
        DbtState,
        DeadLetterState,
        FreshnessState,
        KafkaState,
        LakeState,
        PipelineHealth,
        StreamState,
    )

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
PIPED_WIDTH = 200  # piped, each row stays on one greppable line


def status(
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON document on stdout instead of the table.")
    ] = False,
    batches: Annotated[
        int, typer.Option(min=0, help="How many of the last micro-batches to show.")
    ] = 10,
    kafka_timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds to wait for the Kafka cluster to answer.")
    ] = 5.0,
) -> None:
    """The pipeline's health: Kafka lag, stream checkpoint, lake, dead letters, dbt, freshness.

    Per partition of the events topic: its end offset, the offset the stream's checkpoint
    committed, and the lag between them. Then the lake's days (raw, processed, archived),
    dead letters per reason, the last micro-batches, the last dbt run and its failures, and
    the newest data in the lake and the warehouse. A part that cannot be read (a broker down,
    a locked warehouse) says so and the rest still shows; the exit code is 0 either way.
    """
    from orangescrum.health import gather

    health = gather(load_settings(), batches=batches, kafka_timeout=kafka_timeout)
    if as_json:
        print(json.dumps(health.to_json(), indent=2))
        return
    table = health_table(health)
    if console.is_terminal:
        console.print(table)
    else:
        from rich.console import Console

        Console(stderr=True, width=PIPED_WIDTH).print(table)


def health_table(health: PipelineHealth) -> Table:
    """One table, a section per part of the pipeline: area | item | value | detail."""
    from rich.table import Table

    table = Table(title=f"Pipeline health at {health.checked_at:{TIME_FORMAT}} UTC")
    table.add_column("area", style="bold")
    table.add_column("item", overflow="fold")
    table.add_column("value", justify="right")
    table.add_column("detail", overflow="fold")
    for rows in (
        _kafka_rows(health.kafka),
        _stream_rows(health.stream),
        _lake_rows(health.lake),
        _dead_letter_rows(health.dead_letters),
        _batch_rows(health.batches),
        _dbt_rows(health.dbt),
        _freshness_rows(health.freshness),
        [("problems", "", str(len(health.problems)), sentence) for sentence in health.problems]
        or [("problems", "", "0", "none")],
    ):
        for row in rows:
            table.add_row(*row)
        table.add_section()
    return table


Row = tuple[str, str, str, str]


def _kafka_rows(kafka: KafkaState) -> list[Row]:
    from orangescrum.health import EVENTS_ROLE, REACHABLE

    rows: list[Row] = [("kafka", kafka.bootstrap or "(no address)", kafka.state, kafka.detail)]
    if kafka.state != REACHABLE:
        return rows
    for topic in kafka.topics:
        if not topic.exists:
            rows.append(("kafka", topic.name, "missing", "run `orangescrum topics create`"))
            continue
        if topic.role != EVENTS_ROLE:
            ends = ", ".join(f"p{p.partition} {p.end:,}" for p in topic.partitions)
            rows.append(
                ("kafka", f"{topic.name} ({topic.role})", f"{topic.messages:,} msgs", f"end {ends}")
            )
            continue
        for p in topic.partitions:
            if p.committed is not None:
                read = f"committed {p.committed:,}"
            elif p.lag is None:
                read = "checkpoint unreadable"
            else:
                read = f"not in the checkpoint: read from {p.earliest:,}"
            rows.append(
                (
                    "kafka",
                    f"{topic.name} p{p.partition}",
                    f"lag {_count(p.lag)}",
                    f"end {p.end:,}, {read}",
                )
            )
        rows.append(
            (
                "kafka",
                f"{topic.name} total",
                f"lag {_count(topic.lag_total)}",
                f"{topic.messages:,} messages in {len(topic.partitions)} partition(s)",
            )
        )
    return rows


def _stream_rows(stream: StreamState) -> list[Row]:
    from orangescrum.health import RAN

    if stream.error:
        return [("stream", "checkpoint", "unreadable", f"{stream.error} ({stream.checkpoint})")]
    if stream.state != RAN:
        return [("stream", "checkpoint", stream.state, stream.checkpoint)]
    detail = stream.checkpoint
    if stream.batch_in_flight is not None:
        detail += f"; batch {stream.batch_in_flight} planned, not committed (running or replayed)"
    return [
        ("stream", "checkpoint", f"batch {stream.committed_batch_id} committed", detail),
        ("stream", "landing id", stream.landing_id or "-", f"topic id {stream.topic_id or '-'}"),
    ]


def _lake_rows(lake: LakeState) -> list[Row]:
    if lake.error:
        return [("lake", lake.root, "unreadable", lake.error)]
    if not lake.days:
        return [("lake", lake.root, "empty", "no event_date= folder in raw, processed or archive")]
    rows: list[Row] = []
    for day in lake.days:
        parts = []
        if day.processed_files:
            state = "compacted" if day.compacted else "incomplete: no manifest"
            parts.append(
                f"processed {day.processed_files} file(s), {_size(day.processed_bytes)} ({state})"
            )
        if day.archived_files:
            parts.append(f"archived {day.archived_files} file(s), {_size(day.archived_bytes)}")
        raw = f"raw {day.raw_files} file(s), {_size(day.raw_bytes)}" if day.raw_files else "no raw"
        rows.append(("lake", day.event_date.isoformat(), raw, "; ".join(parts) or "-"))
    totals = lake.totals
    rows.append(
        (
            "lake",
            "total",
            f"{totals['raw_days']} raw day(s), {_size(totals['raw_bytes'])}",
            f"{totals['processed_days']} processed day(s), "
            f"{totals['archived_days']} archived; root {lake.root}",
        )
    )
    return rows


def _dead_letter_rows(dead_letters: DeadLetterState) -> list[Row]:
    if dead_letters.error:
        return [("dead letters", "", "unreadable", dead_letters.error)]
    rows: list[Row] = []
    for reason, count in dead_letters.by_reason.items():
        days = ", ".join(
            f"{row.event_date} {row.count:,}" for row in dead_letters.by_day if row.reason == reason
        )
        rows.append(("dead letters", reason, f"{count:,}", days))
    rows.append(("dead letters", "total", f"{dead_letters.total:,}", "in raw/_dead_letter"))
    return rows


def _batch_rows(batches: BatchesState) -> list[Row]:
    if batches.error:
        return [("batches", "", "unreadable", batches.error)]
    rows: list[Row] = [
        ("batches", "metrics files", f"{batches.files:,}", "one per micro-batch, newest first:")
    ]
    for batch in batches.recent:
        lag = "unknown" if batch.lag_total is None else f"{batch.lag_total:,}"
        rows.append(
            (
                "batches",
                f"{batch.landing_id or '-'} #{batch.batch_id}",
                _time(batch.finished_at),
                f"in {_count(batch.rows_in)}, landed {_count(batch.rows_landed)}, "
                f"dead-lettered {_count(batch.rows_dead_lettered)}, "
                f"{_seconds(batch.duration_seconds)}, lag {lag}",
            )
        )
    return rows


def _dbt_rows(dbt: DbtState) -> list[Row]:
    if dbt.run is None:
        return [("dbt", "last run", dbt.state, dbt.error or dbt.run_results)]
    run = dbt.run
    counts = ", ".join(f"{n:,} {status}" for status, n in run.status_counts.items())
    rows: list[Row] = [
        (
            "dbt",
            f"last {run.command}",
            dbt.state,
            f"finished {_time(run.generated_at)} UTC, {_seconds(run.elapsed_seconds)}: {counts}",
        )
    ]
    for node in run.failures:
        rows.append(("dbt", node.unique_id, node.status, node.message or ""))
    return rows


def _freshness_rows(freshness: FreshnessState) -> list[Row]:
    if freshness.error:
        return [("freshness", "", "unreadable", freshness.error)]
    rows: list[Row] = []
    lake = freshness.lake
    if lake is not None:
        rows.append(
            (
                "freshness",
                "lake",
                _ago(freshness.lake_age_seconds),
                f"newest ingested_at {_time(lake.newest_ingested_at)}, newest event_timestamp "
                f"{_time(lake.newest_event_timestamp)} ({lake.files:,} file(s))",
            )
        )
    warehouse = freshness.warehouse
    if warehouse is not None:
        if warehouse.state == "ok":
            value = _ago(freshness.warehouse_age_seconds)
            detail = (
                f"newest ingested_at {_time(warehouse.newest_ingested_at)}, newest "
                f"event_timestamp {_time(warehouse.newest_event_timestamp)}, loaded "
                f"{_time(warehouse.newest_loaded_at)} ({warehouse.rows:,} rows in "
                f"fact_activities; {warehouse.path})"
            )
        else:
            value, detail = warehouse.state, f"{warehouse.detail} ({warehouse.path})"
        rows.append(("freshness", "warehouse", value, detail))
    return rows


def _time(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment:{TIME_FORMAT}}"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def _ago(seconds: float | None) -> str:
    """A duration for people: 45s, 12m, 3h 20m, 2d 4h ago."""
    if seconds is None:
        return "no data"
    if seconds < 0:
        return "in the future"
    whole = int(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = f"{days}d {hours}h"
    elif hours:
        text = f"{hours}h {minutes}m"
    elif minutes:
        text = f"{minutes}m {secs}s"
    else:
        text = f"{secs}s"
    return f"{text} ago"


def _size(size: int) -> str:
    if size < 1024:
        return f"{size:,} B"
    value = size / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
