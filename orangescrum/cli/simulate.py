"""`orangescrum simulate history|live|app-db`: simulated OrangeScrum activity into Kafka, or
into the app's own database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from orangescrum.cli.common import StartDate, as_date, console, load_settings, today_utc

if TYPE_CHECKING:
    from rich.progress import Progress


def event_progress() -> Progress:
    """A live count of events handled, with the time spent (rich loads only when used)."""
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,} events"),
        TimeElapsedColumn(),
        console=console,
    )


simulate_app = typer.Typer(
    help="Simulate OrangeScrum activity and produce it to Kafka (or write it to the app database)."
)


@simulate_app.command("history")
def simulate_history_command(
    days: Annotated[int, typer.Option(min=1, help="Days of history.")] = 3,
    companies: Annotated[int, typer.Option(min=1)] = 2,
    seed: Annotated[int, typer.Option()] = 42,
    late_rate: Annotated[float, typer.Option(min=0, max=1, help="Share delivered late.")] = 0.02,
    duplicate_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Share delivered twice.")
    ] = 0.01,
    bad_per_kind: Annotated[int, typer.Option(min=0, help="Bad messages of each kind.")] = 0,
    start_date: StartDate = None,
) -> None:
    """Produce a deterministic OrangeScrum history to the events topic."""
    from ingestion.faults import BAD_KINDS
    from ingestion.feed import produce_history
    from ingestion.simulator import SimulationConfig
    from orangescrum.core.broker import require_broker

    settings = load_settings()
    require_broker(settings)
    config = SimulationConfig(
        seed=seed,
        companies=companies,
        days=days,
        start_date=as_date(start_date),
        late_rate=late_rate,
        duplicate_rate=duplicate_rate,
    )
    report = produce_history(settings, config, dict.fromkeys(BAD_KINDS, bad_per_kind))
    console.print(
        f"delivered {report.delivery.delivered:,}, failed {report.delivery.failed:,} "
        f"({report.unique_events:,} distinct events, {report.duplicates:,} duplicates, "
        f"{sum(report.bad_by_kind.values())} bad) to {settings.topic_events}"
    )


@simulate_app.command("live")
def simulate_live_command(
    rate: Annotated[float, typer.Option(min=0.1, help="Events per second.")] = 100.0,
    duration: Annotated[
        float | None, typer.Option(min=1, help="Seconds to run; default until Ctrl-C.")
    ] = None,
    companies: Annotated[int, typer.Option(min=1)] = 2,
    seed: Annotated[int, typer.Option()] = 42,
) -> None:
    """Produce a live stream of fresh events at a steady rate."""
    from ingestion.feed import produce_live
    from ingestion.simulator import SimulationConfig
    from orangescrum.core.broker import require_broker

    settings = load_settings()
    require_broker(settings)
    with event_progress() as progress:
        task = progress.add_task(f"producing at {rate:g}/s to {settings.topic_events}")
        report = produce_live(
            settings,
            SimulationConfig(seed=seed, companies=companies),
            rate,
            duration,
            progress=lambda n: progress.advance(task, n),
        )
    console.print(f"delivered {report.delivery.delivered:,}, failed {report.delivery.failed:,}")


@simulate_app.command("app-db")
def simulate_app_db_command(
    days: Annotated[int, typer.Option(min=1, max=60, help="Days of history.")] = 3,
    companies: Annotated[int, typer.Option(min=1)] = 2,
    seed: Annotated[int, typer.Option()] = 42,
    start_date: StartDate = None,
    reset: Annotated[
        bool, typer.Option(help="Empty the app's tables first (another history is there).")
    ] = False,
) -> None:
    """Write a deterministic history into the OrangeScrum app database, as the app would.

    Inserts, updates and soft deletes of the app's own tables (ORANGESCRUM_APPDB_*), in event
    order, in transactions; a re-run of the same history resumes or does nothing.
    """
    import datetime

    from ingestion.simulator import SimulationConfig, simulate_history
    from orangescrum.core.appdb.apply import apply_history
    from orangescrum.core.appdb.connection import connect, drop_tables, row_counts

    settings = load_settings()
    first_day = as_date(start_date) or today_utc() - datetime.timedelta(days=days)
    # The app writes each event once, when it happens: no late or duplicate hand-offs.
    config = SimulationConfig(seed=seed, companies=companies, days=days, start_date=first_day)
    history = f"seed={seed} companies={companies} days={days} start_date={first_day}"
    connection = connect(settings)
    try:
        if reset:
            drop_tables(connection)
        with event_progress() as progress:
            task = progress.add_task(f"applying to {settings.appdb_database}")
            report = apply_history(
                connection,
                (delivery.record for delivery in simulate_history(config)),
                history,
                progress=lambda n: progress.advance(task, n),
            )
        counts = row_counts(connection)
    finally:
        connection.close()
    console.print(
        f"applied {report.applied:,} of {report.events:,} events ({report.statements:,} "
        f"statements; {report.already_applied:,} applied before) to {settings.appdb_database} "
        f"on {settings.appdb_host}:{settings.appdb_port}"
    )
    console.print("  " + ", ".join(f"{table} {rows:,}" for table, rows in counts.items()))
