"""`orangescrum demo`: the whole pipeline on the local stack, reconciled."""

from __future__ import annotations

import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from orangescrum.cli.common import StartDate, as_date, console, load_settings
from orangescrum.core.kafka_security import Security


class DemoSource(StrEnum):
    EVENTS = "events"
    APPDB = "appdb"


# orangescrum.demo's DemoOptions default (that module loads Spark, so the CLI imports it only
# when the command runs; a test keeps the two equal).
DEFAULT_DAYS = 30
MAX_DAYS = 60


def demo(
    days: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_DAYS,
            help=f"Days of history to simulate (default {DEFAULT_DAYS}: about 10,000 events, "
            "weeks of trends on the dashboard; the whole demo takes about 45 s on 2 cores, as "
            "long as 3 days do, since starting Kafka, Spark and dbt dominates).",
        ),
    ] = DEFAULT_DAYS,
    companies: Annotated[int, typer.Option(min=1, help="Companies (tenants) to simulate.")] = 2,
    seed: Annotated[int, typer.Option(help="Simulation seed; same seed, same events.")] = 42,
    bad_per_kind: Annotated[
        int, typer.Option(min=0, help="Bad messages of each kind to mix in.")
    ] = 2,
    start_date: StartDate = None,
    security: Annotated[
        Security,
        typer.Option(
            case_sensitive=False,
            help="sasl_ssl: run the demo's broker secured (TLS, SCRAM-SHA-512 users, ACLs); "
            "topics, producer and stream each log in as their own user.",
        ),
    ] = Security.PLAINTEXT,
    source: Annotated[
        DemoSource,
        typer.Option(
            case_sensitive=False,
            help="events: the simulator's events through Kafka (the default). appdb: the "
            "history written into a local MariaDB as the app would, captured by Kafka Connect "
            "+ Debezium, landed by the change stream, reconciled with the database's rows.",
        ),
    ] = DemoSource.EVENTS,
    keep_running: Annotated[
        bool,
        typer.Option(
            "--keep-running",
            help="Afterwards keep the broker up and serve the dashboard and the dbt docs "
            "(addresses printed) until Ctrl-C or SIGTERM.",
        ),
    ] = False,
) -> None:
    """Run the whole pipeline on the local stack and print reconciled counts."""
    settings = load_settings()
    started = time.monotonic()
    if source is DemoSource.APPDB:
        _appdb_demo(days, companies, seed, start_date, security, bad_per_kind, keep_running)
        console.print(f"demo finished in {time.monotonic() - started:.0f}s")
        return
    from orangescrum.demo import DemoOptions, run_demo, serve_demo

    result = run_demo(
        settings,
        DemoOptions(
            days=days,
            seed=seed,
            companies=companies,
            bad_per_kind=bad_per_kind,
            start_date=as_date(start_date),
            security=security,
        ),
        console,
        keep_broker=keep_running,
    )
    console.print(f"demo finished in {time.monotonic() - started:.0f}s")
    if result.broker is not None:
        from orangescrum.cli.dashboard import streamlit_command

        serve_demo(
            settings,
            result.broker,
            console,
            streamlit_command,
            _docs_serve_command,
            registry_url=result.registry_url,
            registry=result.registry,
        )


def _appdb_demo(
    days: int,
    companies: int,
    seed: int,
    start_date: str | None,
    security: Security,
    bad_per_kind: int,
    keep_running: bool,
) -> None:
    refused = [
        name
        for name, given in (
            ("--security sasl_ssl", security is not Security.PLAINTEXT),
            ("--bad-per-kind", bad_per_kind != 2),
            ("--keep-running", keep_running),
        )
        if given
    ]
    if refused:
        raise typer.BadParameter(
            f"{', '.join(refused)}: the event path only (drop --source appdb to use it); the "
            "database path has no bad messages to mix in and runs its Connect worker on "
            "PLAINTEXT."
        )
    from orangescrum.appdb_demo import AppDbDemoOptions, run_appdb_demo

    options = AppDbDemoOptions(
        days=days, seed=seed, companies=companies, start_date=as_date(start_date)
    )
    run_appdb_demo(load_settings(), options, console)


def _docs_serve_command(port: int, target: Path) -> list[str]:
    """`orangescrum docs serve` of the demo's catalog, as a process of its own."""
    command = ["docs", "serve", "--port", str(port), "--target-path", str(target)]
    return [sys.executable, "-m", "orangescrum", *command]
