"""`orangescrum metrics`: the semantic layer (MetricFlow) over the marts."""

from __future__ import annotations

from typing import Annotated

import typer

from orangescrum.cli.common import console, load_settings

metrics_app = typer.Typer(
    help=(
        "Metrics defined once (dbt semantic layer, MetricFlow): active users, tasks, hours, "
        "cycle time at any grain. Needs a built warehouse (`orangescrum demo`)."
    ),
    no_args_is_help=True,
)


@metrics_app.command("validate")
def validate(
    skip_warehouse: Annotated[
        bool, typer.Option(help="Check the definitions only, not against the warehouse.")
    ] = False,
) -> None:
    """Validate the semantic models and metrics (`mf validate-configs`)."""
    from orangescrum.warehouse.metrics import run_metricflow

    run_metricflow(
        load_settings(), ["validate-configs", *(["--skip-dw"] if skip_warehouse else [])]
    )


@metrics_app.command("list")
def list_metrics() -> None:
    """The metrics and the dimensions each can be grouped by (`mf list metrics`)."""
    from orangescrum.warehouse.metrics import run_metricflow

    run_metricflow(load_settings(), ["list", "metrics"])


@metrics_app.command("query")
def query(
    metrics: Annotated[
        str, typer.Option(help="Comma-separated metric names, e.g. active_users,hours_logged.")
    ],
    group_by: Annotated[
        str,
        typer.Option(
            help="Comma-separated dimensions, e.g. metric_time__week or project__project_name."
        ),
    ] = "metric_time__day",
    where: Annotated[
        list[str] | None,
        typer.Option(
            help="Filter, e.g. \"{{ TimeDimension('metric_time', 'day') }} >= '2024-03-01'\"."
        ),
    ] = None,
    order: Annotated[str, typer.Option(help="Comma-separated; prefix - for descending.")] = "",
) -> None:
    """Compute metrics at the grain asked for (`mf query`), printed as a table (ordered by the
    group-by unless --order says otherwise)."""
    from rich.table import Table

    from orangescrum.warehouse.metrics import query_metrics

    dimensions = _names(group_by)
    rows = query_metrics(
        load_settings(),
        _names(metrics),
        dimensions,
        where=where or [],
        order=_names(order) or dimensions,
    )
    if not rows:
        console.print("No rows: is the warehouse built (`orangescrum demo`)?")
        return
    table = Table(*rows[0].keys())
    for row in rows:
        table.add_row(*row.values())
    console.print(table)


def _names(comma_separated: str) -> list[str]:
    return [name.strip() for name in comma_separated.split(",") if name.strip()]
