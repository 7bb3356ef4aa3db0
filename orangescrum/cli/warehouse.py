"""`orangescrum warehouse|dbt|docs`: the raw tables over the lake, dbt, the docs catalog."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from orangescrum.cli.common import console, load_settings

log = logging.getLogger(__name__)

warehouse_app = typer.Typer(help="The warehouse side: raw_events and dbt.")
docs_app = typer.Typer(help="The dbt docs site: the data catalog.")


@warehouse_app.command("load")
def warehouse_load() -> None:
    """Create or refresh raw_events (and dead letters, metrics) over the lake."""
    from orangescrum.warehouse.load import load_raw_events

    load_raw_events(load_settings())


@warehouse_app.command("build")
def warehouse_build() -> None:
    """`dbt build`: every model, test and unit test of the project."""
    from orangescrum.warehouse.load import build_marts

    build_marts(load_settings())


def dbt(context: typer.Context) -> None:
    """Any dbt command with this project's settings, e.g. `orangescrum dbt test -s staging`."""
    from orangescrum.warehouse.dbt import run_dbt

    run_dbt(load_settings(), context.args)


@docs_app.command("serve")
def docs_serve(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 8081,
    target_path: Annotated[
        Path | None,
        typer.Option(help="dbt target folder with the catalog. Default: dbt_project/target."),
    ] = None,
) -> None:
    """Serve the dbt docs catalog (built by `orangescrum dbt docs generate`) until stopped.

    Ctrl-C or SIGTERM stops it like every other command ("interrupted", exit 130): the
    server runs in this process (no child), and its socket is closed before the exit, so
    the port is free again at once (tests/test_docs_serve.py).
    """
    from orangescrum.core.processes import HOST, claim_port
    from orangescrum.warehouse.dbt import serve_docs

    settings = load_settings()
    target = target_path or settings.dbt_project_dir / "target"
    claim_port(port, "pass --port")
    console.print(f"dbt docs: http://{HOST}:{port}  (Ctrl-C or SIGTERM stops it)", soft_wrap=True)
    serve_docs(target, port)
