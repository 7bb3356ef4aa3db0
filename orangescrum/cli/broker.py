"""`orangescrum broker start`: the local Apache Kafka broker or cluster."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from orangescrum.cli.common import console, load_settings
from orangescrum.core.errors import OrangeScrumError

broker_app = typer.Typer(help="The local Apache Kafka broker (or a three-broker cluster).")


@broker_app.command("start")
def broker_start(
    port: Annotated[
        int,
        typer.Option(min=1, max=65535, help="Client port of the first broker (127.0.0.1)."),
    ] = 9092,
    brokers: Annotated[
        int,
        typer.Option(
            min=1,
            max=9,
            help="Brokers in the cluster: 3 gives replication factor 3, min.insync.replicas 2.",
        ),
    ] = 1,
) -> None:
    """Run Apache Kafka (KRaft) in the foreground until Ctrl-C; its data stays in the data dir."""
    from orangescrum.core.broker import LocalKafka

    settings = load_settings()
    data_dir = settings.kafka_data_dir if brokers == 1 else settings.data_dir / f"kafka-{brokers}"
    cluster = LocalKafka(data_dir, settings.jar_cache_dir, port=port, brokers=brokers)
    with console.status("starting Apache Kafka (the first start downloads its jars)"):
        cluster.start()
    try:
        console.print(
            f"Apache Kafka {cluster.describe()} on {cluster.bootstrap} (data: {data_dir}).\n"
            "In other terminals:\n"
            f"  export ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS={cluster.bootstrap}\n"
            "Ctrl-C stops it; topics and messages are kept for the next start.",
            soft_wrap=True,
        )
        while not (exited := cluster.exited()):
            time.sleep(0.5)
        node_id, code = exited[0]
        raise OrangeScrumError(
            f"Kafka broker {node_id} exited with code {code}; see "
            f"{cluster.nodes[node_id - 1].log_file}."
        )
    finally:
        cluster.stop()
