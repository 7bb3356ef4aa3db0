"""`orangescrum maintenance ...`: archive, restore, dead-letter report, cleanup of the lake."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from typing import Annotated

import typer
from rich.table import Table

from orangescrum.cli.common import DATE_FORMATS, console, load_settings, today_utc

maintenance_app = typer.Typer(no_args_is_help=True, add_completion=False)


@maintenance_app.callback()
def maintenance_group() -> None:
    """Lake housekeeping: archive old raw days, restore them, dead-letter report, cleanup."""


def _day(value: datetime | None, default: date) -> date:
    return value.date() if value is not None else default


@maintenance_app.command("archive")
def archive(
    older_than: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Archive raw days more than this many days old (today and yesterday never). "
            "Default: ORANGESCRUM_RAW_RETENTION_DAYS.",
            show_default=False,
        ),
    ] = None,
    as_of: Annotated[
        datetime | None,
        typer.Option(
            formats=DATE_FORMATS,
            help="Count ages from this day instead of today (UTC), e.g. a scheduler's run date.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only print what would be archived.")
    ] = False,
) -> None:
    """Move old raw days that have a current processed copy to archive/."""
    from orangescrum.maintenance import archive_decisions, archive_raw

    settings = load_settings()
    older_than = settings.raw_retention_days if older_than is None else older_than
    today = _day(as_of, today_utc())
    decisions = archive_decisions(settings, older_than, today)
    table = Table("event_date", "action", "why", title=f"raw days as of {today.isoformat()}")
    for decision in decisions:
        action = "archive" if decision.archived else "keep"
        if decision.archived and dry_run:
            action = "would archive"
        table.add_row(decision.day.isoformat(), action, decision.reason)
    if decisions:
        console.print(table)
    archived = archive_raw(settings, older_than, today, dry_run=dry_run)
    verb = "would archive" if dry_run else "archived"
    days = ", ".join(day.isoformat() for day in archived) or "none"
    console.print(f"{verb} {len(archived)} raw day(s): {days}")
    if archived:
        console.print(f"archive: {settings.lake.archived_raw_events}")


@maintenance_app.command("restore")
def restore(
    day: Annotated[
        datetime,
        typer.Option(
            "--date", formats=DATE_FORMATS, help="Archived day to bring back, YYYY-MM-DD."
        ),
    ],
) -> None:
    """Move an archived raw day back to raw/ (to re-compact or re-load it)."""
    from orangescrum.maintenance import restore_archived

    settings = load_settings()
    moved = restore_archived(settings, day.date())
    console.print(
        f"restored {moved} file(s) of {day.date().isoformat()} to {settings.lake.raw_events}"
    )


@maintenance_app.command("dlq-report")
def dlq_report(
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON lines on stdout instead of a table.")
    ] = False,
) -> None:
    """Dead letters in the lake per day and reason."""
    from orangescrum.maintenance import dead_letter_report

    settings = load_settings()
    rows = dead_letter_report(settings)
    if as_json:
        for row in rows:
            sys.stdout.write(
                json.dumps(
                    {
                        "event_date": row.event_date.isoformat(),
                        "reason": row.reason,
                        "count": row.count,
                    }
                )
                + "\n"
            )
        return
    if not rows:
        console.print(f"no dead letters under {settings.lake.dead_letters}")
        return
    table = Table("event_date", "reason", "count", title="dead letters")
    for row in rows:
        table.add_row(row.event_date.isoformat(), row.reason, f"{row.count:,}")
    table.add_section()
    table.add_row("total", "", f"{sum(row.count for row in rows):,}")
    console.print(table)


@maintenance_app.command("cleanup")
def cleanup(
    older_than: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Delete streaming metrics, local logs and stale checkpoints older than this "
            "many days. Default: ORANGESCRUM_METRICS_RETENTION_DAYS.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Prune old streaming metrics (lake), log files and abandoned checkpoints (local)."""
    from orangescrum.maintenance import cleanup as prune

    settings = load_settings()
    older_than = older_than or settings.metrics_retention_days
    result = prune(settings, older_than, datetime.now(UTC))
    console.print(
        f"deleted {result.metrics_files} metrics file(s), {result.log_files} log file(s) and "
        f"{len(result.checkpoints)} abandoned checkpoint folder(s) older than {older_than} days"
    )
