"""`orangescrum stream`: the events topic (or the app database's change topics) into the lake."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from orangescrum.cli.common import console, load_settings


class Source(StrEnum):
    events = "events"
    appdb = "appdb"


def stream(
    available_now: Annotated[
        bool,
        typer.Option(
            "--available-now/--continuous",
            help="Drain what is in the topic and stop, or keep running on a trigger.",
        ),
    ] = True,
    source: Annotated[
        Source,
        typer.Option(
            help="events: the Avro events topic. appdb: Debezium's change topics of the app "
            "database, mapped to the same events (its own checkpoint).",
        ),
    ] = Source.events,
) -> None:
    """Stream the events topic into the lake (Spark Structured Streaming, checkpointed)."""
    from orangescrum.core.broker import require_broker
    from spark.session import spark_session

    settings = load_settings()
    require_broker(settings)
    if source is Source.appdb:
        from spark.cdc_stream import run_cdc_stream

        with spark_session(
            settings, "orangescrum-stream-appdb", long_running=not available_now
        ) as spark:
            totals, silent = run_cdc_stream(spark, settings, available_now=available_now)
        console.print(
            f"{totals.batches} batches: {totals.rows_landed:,} events landed, "
            f"{totals.rows_dead_lettered:,} changes dead-lettered "
            f"{totals.dead_letter_reasons or ''}, {silent:,} changes meant no event"
        )
        return
    from spark.stream import run_stream

    with spark_session(settings, "orangescrum-stream", long_running=not available_now) as spark:
        totals = run_stream(spark, settings, available_now=available_now)
    console.print(
        f"{totals.batches} batches: {totals.rows_in:,} read, {totals.rows_landed:,} landed, "
        f"{totals.rows_dead_lettered:,} dead-lettered {totals.dead_letter_reasons or ''}"
    )
