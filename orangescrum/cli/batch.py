"""`orangescrum batch compact`: the daily Spark batch over the lake."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Annotated

import typer

from orangescrum.cli.common import DATE_FORMATS, console, load_settings, today_utc

batch_app = typer.Typer(no_args_is_help=True, add_completion=False)


# A callback keeps the sub-app a command group (`batch compact`) even when invoked on its own
# (tests, `python -m`), instead of Typer collapsing a one-command app into that command.
@batch_app.callback()
def batch_group() -> None:
    """Daily Spark batch jobs over the lake (compaction)."""


def _day(value: datetime | None, default: date) -> date:
    return value.date() if value is not None else default


@batch_app.command("compact")
def compact(
    day: Annotated[
        datetime | None,
        typer.Option(
            "--date",
            formats=DATE_FORMATS,
            help="Day to compact, YYYY-MM-DD (UTC). Default: yesterday.",
            show_default=False,
        ),
    ] = None,
    rows_per_file: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Target rows per output file. Default: ORANGESCRUM_COMPACTION_ROWS_PER_FILE.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Compact one raw day into processed/: deduplicated by event_id, few large files."""
    from spark.compaction import compact_day, raw_files_for_day
    from spark.session import spark_session

    settings = load_settings()
    target = _day(day, today_utc() - timedelta(days=1))
    started = time.monotonic()
    files = raw_files_for_day(settings, target)  # fail fast, before Spark starts
    console.print(
        f"compacting event_date={target.isoformat()} of {settings.lake_root} "
        f"({len(files)} landed file(s))"
    )
    with (
        console.status(f"compacting {target.isoformat()} (Spark)"),
        spark_session(settings, "orangescrum-compact") as spark,
    ):
        result = compact_day(
            spark,
            settings,
            target,
            rows_per_file=rows_per_file or settings.compaction_rows_per_file,
        )
    console.print(
        f"{target.isoformat()}: {result.rows_in:,} rows in {result.source_files} file(s) -> "
        f"{result.rows_out:,} rows in {result.files_written} file(s), "
        f"{result.duplicates_removed:,} duplicate(s) removed, "
        f"{time.monotonic() - started:.0f}s\n{result.output_path}"
    )
