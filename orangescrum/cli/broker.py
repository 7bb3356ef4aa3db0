"""`orangescrum broker start`: the local Apache Kafka broker or cluster."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orangescrum.cli.common import console, load_settings
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.kafka_security import Security

if TYPE_CHECKING:
    from orangescrum.core.broker import LocalKafka

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
    security: Annotated[
        Security,
        typer.Option(
            case_sensitive=False,
            help="sasl_ssl: clients only over TLS (a generated CA) with SCRAM-SHA-512 users "
            "(admin, producer, stream) held to ACLs; the settings they need are printed.",
        ),
    ] = Security.PLAINTEXT,
) -> None:
    """Run Apache Kafka (KRaft) in the foreground until Ctrl-C; its data stays in the data dir."""
    from orangescrum.core.broker import LocalKafka, broker_data_dir

    settings = load_settings()
    data_dir = broker_data_dir(settings, brokers, security)
    cluster = LocalKafka.from_settings(
        settings, data_dir, port=port, brokers=brokers, security=security
    )
    with console.status("starting Apache Kafka (the first start downloads its jars)"):
        cluster.start()
    try:
        # markup off: paths and passwords' file names are printed as they are.
        console.print(_started(cluster, data_dir), soft_wrap=True, markup=False, highlight=False)
        while not (exited := cluster.exited()):
            time.sleep(0.5)
        node_id, code = exited[0]
        raise OrangeScrumError(
            f"Kafka broker {node_id} exited with code {code}; see "
            f"{cluster.nodes[node_id - 1].log_file}."
        )
    finally:
        cluster.stop()


def _started(cluster: LocalKafka, data_dir: Path) -> str:
    """What a person needs to point clients at the cluster; never a password itself."""
    from orangescrum.core.kafka_security import ADMIN, ROLES, USERS

    if cluster.secrets is None:
        return (
            f"Apache Kafka {cluster.describe()} on {cluster.bootstrap} (data: {data_dir}).\n"
            "In other terminals:\n"
            f"  export ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS={cluster.bootstrap}\n"
            "Ctrl-C stops it; topics and messages are kept for the next start."
        )
    secrets = cluster.secrets
    exports = []
    for name, value in secrets.client_env(cluster.bootstrap, ADMIN).items():
        if name == "ORANGESCRUM_KAFKA_SASL_PASSWORD":
            value = f'"$(cat {secrets.password_file(ADMIN)})"'
        exports.append(f"  export {name}={value}")
    events, dead_letters, connect_prefix = cluster.acl_topics
    users = [
        f"  {user:<9} {secrets.env_file(user)}  "
        + ROLES[user].format(
            events=events, dead_letters=dead_letters, connect_prefix=connect_prefix
        )
        for user in USERS
    ]
    return "\n".join(
        [
            f"Apache Kafka {cluster.describe()} on {cluster.bootstrap}, SASL_SSL only "
            f"(SCRAM-SHA-512 users, ACLs; data: {data_dir}).",
            "In other terminals, as the admin user:",
            *exports,
            "Each user's settings, in a 0600 file (load one with `set -a; . FILE; set +a`):",
            *users,
            "Ctrl-C stops it; topics, messages, users and certificates are kept for the next "
            "start.",
        ]
    )
