"""`orangescrum connect start|status`: Kafka Connect + Debezium on the app database's binlog."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated

import typer

from orangescrum.cli.common import console, load_settings
from orangescrum.core.errors import OrangeScrumError

if TYPE_CHECKING:
    from orangescrum.core.connect import ConnectStatus, LocalConnect

FAILURE_CHECK_SECONDS = 10

connect_app = typer.Typer(
    help="Kafka Connect with Debezium's MariaDB connector: the app database's changes -> Kafka."
)


@connect_app.command("start")
def connect_start(
    port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="REST port on 127.0.0.1. Default: ORANGESCRUM_CONNECT_REST_PORT, else a free one.",
        ),
    ] = None,
) -> None:
    """Run a Kafka Connect worker in the foreground until Ctrl-C, with the connector registered."""
    from orangescrum.core.connect import LocalConnect

    settings = load_settings()
    worker = LocalConnect(settings, port)
    with console.status("starting Kafka Connect (the first start downloads its jars)"):
        worker.start()
    try:
        console.print(_started(worker), soft_wrap=True, markup=False, highlight=False)
        checked = time.monotonic()
        while (code := worker.exit_code()) is None:
            time.sleep(0.5)
            # A failed task stays failed (Debezium has retried by then): stop and say why.
            if time.monotonic() - checked > FAILURE_CHECK_SECONDS:
                checked = time.monotonic()
                if failure := worker.failure():
                    raise OrangeScrumError(
                        f"The Debezium connector failed: {failure}; see {worker.log_file}."
                    )
        raise OrangeScrumError(f"Kafka Connect exited with code {code}; see {worker.log_file}.")
    finally:
        worker.stop()


@connect_app.command("status")
def connect_status(
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
) -> None:
    """The connector and its task, and each app table's topic with its message count."""
    from orangescrum.core.connect import connect_status as gather

    status = gather(load_settings())
    if as_json:
        print(json.dumps(status.to_json(), indent=2))
        return
    _print(status)


def _started(worker: LocalConnect) -> str:
    from orangescrum.core.connect import CONNECTOR_NAME, table_topic

    settings = worker.settings
    return "\n".join(
        [
            f"Kafka Connect on {worker.url} (REST), connector {CONNECTOR_NAME} running "
            f"(log: {worker.log_file}).",
            f"Change events of each app table go to {table_topic(settings, '<table>')}.",
            "Counts: orangescrum connect status",
            "Ctrl-C stops it; the binlog position is kept in Kafka for the next start.",
        ]
    )


def _print(status: ConnectStatus) -> None:
    from rich.table import Table

    if status.worker is None:
        console.print("Kafka Connect is not running (start it with `orangescrum connect start`)")
    else:
        console.print(f"Kafka Connect on {status.worker}")
        state = status.state
        console.print(f"connector {status.connector}: {state.connector or 'not registered'}")
        for task in state.tasks:
            console.print(f"  task {task['id']}: {task['state']}")
        if failure := state.failed:
            console.print(f"  {failure}", style="red", soft_wrap=True, markup=False)
    table = Table(title="Change events per table")
    table.add_column("table")
    table.add_column("topic", overflow="fold")
    table.add_column("messages", justify="right")
    for topic in status.topics:
        messages = "no topic" if topic.messages is None else f"{topic.messages:,}"
        table.add_row(topic.table, topic.topic, messages)
    console.print(table)
