"""`orangescrum stream`: the events topic into the lake (Spark Structured Streaming)."""

from __future__ import annotations

from typing import Annotated

import typer

from orangescrum.cli.common import console, load_settings


def stream(
    available_now: Annotated[
        bool,
        typer.Option(
            "--available-now/--continuous",
            help="Drain what is in the topic and stop, or keep running on a trigger.",
        ),
    ] = True,
) -> None:
    """Stream the events topic into the lake (Spark Structured Streaming, checkpointed)."""
    from orangescrum.core.broker import require_broker
    from spark.session import spark_session
    from spark.stream import run_stream

    settings = load_settings()
    require_broker(settings)
    with spark_session(settings, "orangescrum-stream") as spark:
        totals = run_stream(spark, settings, available_now=available_now)
    console.print(
        f"{totals.batches} batches: {totals.rows_in:,} read, {totals.rows_landed:,} landed, "
        f"{totals.rows_dead_lettered:,} dead-lettered {totals.dead_letter_reasons or ''}"
    )
