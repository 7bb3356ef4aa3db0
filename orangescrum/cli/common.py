"""What every command module shares: the console, settings loading, date options."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

import typer
from rich.console import Console

from orangescrum.core.settings import load_settings

__all__ = ["DATE_FORMATS", "StartDate", "as_date", "console", "load_settings", "today_utc"]

# Progress and results go to stderr, so stdout stays clean for --json output.
console = Console(stderr=True)

DATE_FORMATS = ["%Y-%m-%d"]

# History start: a calendar date, so the same seed and start date give the same events whenever
# the command runs; without it the history ends yesterday (UTC).
StartDate = Annotated[
    datetime | None,
    typer.Option(
        formats=DATE_FORMATS,
        help="First simulated day (YYYY-MM-DD, UTC). Default: the --days days ending yesterday.",
    ),
]


def as_date(moment: datetime | None) -> date | None:
    return moment.date() if moment is not None else None


def today_utc() -> date:
    return datetime.now(UTC).date()
