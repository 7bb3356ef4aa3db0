"""`orangescrum jars fetch`, `orangescrum spark cluster`: the JVM side."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from orangescrum.cli.common import console, load_settings

jars_app = typer.Typer(
    help="JVM jars from Maven Central (Kafka broker, Kafka Connect + Debezium, Spark connectors, "
    "the local schema registry)."
)
spark_app = typer.Typer(help="Spark helpers.")


@jars_app.command("fetch")
def jars_fetch() -> None:
    """Download every JVM jar the project runs into the Ivy cache (once; `make setup` runs it).

    The local schema registry is built there too (`orangescrum registry build`), so a set-up
    machine downloads nothing more.
    """
    from orangescrum.cli.registry import build_with_status
    from orangescrum.core.jars import fetch_all

    settings = load_settings()
    with console.status(f"resolving JVM jars from Maven Central into {settings.jar_cache_dir}"):
        counts = fetch_all(settings.jar_cache_dir)
    for use, count in counts.items():
        console.print(f"{use}: {count} jars")
    console.print(f"schema-registry: {build_with_status(settings.jar_cache_dir)}", soft_wrap=True)


@spark_app.command("cluster")
def spark_cluster(
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 2,
    cores: Annotated[int, typer.Option(min=1, help="Cores per worker.")] = 1,
) -> None:
    """Run a local Spark standalone master + workers until Ctrl-C (for spark:// testing)."""
    from spark.cluster import LocalSparkCluster

    settings = load_settings()
    with LocalSparkCluster.from_settings(settings, workers=workers, cores_per_worker=cores) as c:
        console.print(
            f"Spark master {c.master_url} (UI http://127.0.0.1:{c.ui_port}). In other terminals:\n"
            f"  export ORANGESCRUM_SPARK_MASTER={c.master_url}\nCtrl-C stops it."
        )
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            console.print("stopping Spark cluster")
