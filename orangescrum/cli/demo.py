"""`orangescrum demo`: the whole pipeline on the local stack, reconciled."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from orangescrum.cli.common import StartDate, as_date, console, load_settings


def demo(
    days: Annotated[int, typer.Option(min=1, max=60, help="Days of history to simulate.")] = 3,
    companies: Annotated[int, typer.Option(min=1, help="Companies (tenants) to simulate.")] = 2,
    seed: Annotated[int, typer.Option(help="Simulation seed; same seed, same events.")] = 42,
    bad_per_kind: Annotated[
        int, typer.Option(min=0, help="Bad messages of each kind to mix in.")
    ] = 2,
    start_date: StartDate = None,
) -> None:
    """Run the whole pipeline on the local stack and print reconciled counts."""
    from orangescrum.demo import DemoOptions, run_demo

    started = time.monotonic()
    run_demo(
        load_settings(),
        DemoOptions(
            days=days,
            seed=seed,
            companies=companies,
            bad_per_kind=bad_per_kind,
            start_date=as_date(start_date),
        ),
        console,
    )
    console.print(f"demo finished in {time.monotonic() - started:.0f}s")
