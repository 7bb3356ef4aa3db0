"""`orangescrum`: one command with a subcommand per operation of the platform.

Every setting comes from ORANGESCRUM_* environment variables (see .env.example); options here
only choose what to do, so the same command works locally and in production.
"""

from __future__ import annotations

import signal
import sys
from typing import Annotated, NoReturn

import click
import typer
from typer._click import exceptions as typer_click

from orangescrum.cli import (
    appdb,
    broker,
    config,
    registry,
    schema,
    simulate,
    spark,
    topics,
    warehouse,
)
from orangescrum.cli.airflow import airflow_app
from orangescrum.cli.batch import batch_app
from orangescrum.cli.common import console, load_settings
from orangescrum.cli.connect import connect_app
from orangescrum.cli.dashboard import dashboard
from orangescrum.cli.demo import demo
from orangescrum.cli.maintenance import maintenance_app
from orangescrum.cli.metrics import metrics_app
from orangescrum.cli.notebook import notebook
from orangescrum.cli.status import status
from orangescrum.cli.stream import stream
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.logs import configure_logging
from orangescrum.core.settings import LogFormat

app = typer.Typer(
    help="OrangeScrum Analytics: events -> Kafka -> Spark -> lake -> warehouse -> dbt marts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for sub_app, name in (
    (broker.broker_app, "broker"),
    (appdb.appdb_app, "appdb"),
    (connect_app, "connect"),
    (topics.topics_app, "topics"),
    (simulate.simulate_app, "simulate"),
    (warehouse.warehouse_app, "warehouse"),
    (config.config_app, "config"),
    (schema.schema_app, "schema"),
    (registry.registry_app, "registry"),
    (spark.spark_app, "spark"),
    (spark.jars_app, "jars"),
    (warehouse.docs_app, "docs"),
):
    app.add_typer(sub_app, name=name)
app.add_typer(batch_app, name="batch", help="Daily Spark batch: compact a raw day into processed/.")
app.add_typer(
    maintenance_app, name="maintenance", help="Lake upkeep: archive, restore, DLQ report, cleanup."
)
app.add_typer(airflow_app, name="airflow")
app.add_typer(metrics_app, name="metrics")
app.command()(demo)
app.command()(stream)
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
    warehouse.dbt
)
app.command()(dashboard)
app.command()(notebook)
app.command()(status)


@app.callback()
def global_options(
    log_level: Annotated[
        str | None,
        typer.Option(help="DEBUG, INFO, WARNING, ERROR. Default: ORANGESCRUM_LOG_LEVEL."),
    ] = None,
    log_format: Annotated[
        LogFormat | None,
        typer.Option(help="text or json lines. Default: ORANGESCRUM_LOG_FORMAT."),
    ] = None,
) -> None:
    settings = load_settings()
    configure_logging(
        log_level or settings.log_level,
        (log_format or settings.log_format).value,
        settings.log_file,
    )


def _raise_keyboard_interrupt(_signum: int, _frame: object) -> NoReturn:
    # SIGTERM (Airflow, systemd, docker stop) gets the same clean shutdown as Ctrl-C.
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        # Without standalone mode typer returns Ctrl-C's exit code instead of raising.
        exit_code = app(standalone_mode=False)
    except OrangeScrumError as error:
        console.print(f"[red]error:[/red] {error}", soft_wrap=True)
        sys.exit(1)
    except (click.ClickException, typer_click.ClickException) as error:
        # typer parses options with its own bundled click, whose errors are not click's.
        error.show()
        sys.exit(1)
    except (KeyboardInterrupt, click.exceptions.Abort, typer.Abort):
        exit_code = 130
    if exit_code == 130:
        console.print("interrupted")
    sys.exit(exit_code if isinstance(exit_code, int) else 0)
