"""`orangescrum`: one command with a subcommand per operation of the platform.

Every setting comes from ORANGESCRUM_* environment variables (see .env.example); options here
only choose what to do, so the same command works locally and in production.
"""

from __future__ import annotations

import itertools
import logging
import signal
import sys
import time
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import click
import typer
from avro.errors import AvroException
from rich.console import Console
from typer._click import exceptions as typer_click

from ingestion.compatibility import CompatibilityMode
from orangescrum.cli_airflow import airflow_app
from orangescrum.cli_dashboard import dashboard
from orangescrum.cli_lake import batch_app, maintenance_app
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.logs import configure_logging
from orangescrum.core.settings import LogFormat, Settings, effective_values, env_example

log = logging.getLogger(__name__)
console = Console(stderr=True)

app = typer.Typer(
    help="OrangeScrum Analytics: events -> Kafka -> Spark -> lake -> warehouse -> dbt marts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
broker_app = typer.Typer(help="The local Apache Kafka broker (or a three-broker cluster).")
topics_app = typer.Typer(help="Kafka topics.")
simulate_app = typer.Typer(help="Simulate OrangeScrum activity and produce it to Kafka.")
warehouse_app = typer.Typer(help="The warehouse side: raw_events and dbt.")
config_app = typer.Typer(help="Settings.")
schema_app = typer.Typer(help="The Avro event contract and its schema registry.")
spark_app = typer.Typer(help="Spark helpers.")
jars_app = typer.Typer(help="JVM jars from Maven Central (Kafka broker, Spark connectors).")
docs_app = typer.Typer(help="The dbt docs site: the data catalog.")
for sub_app, name in (
    (broker_app, "broker"),
    (topics_app, "topics"),
    (simulate_app, "simulate"),
    (warehouse_app, "warehouse"),
    (config_app, "config"),
    (schema_app, "schema"),
    (spark_app, "spark"),
    (jars_app, "jars"),
    (docs_app, "docs"),
):
    app.add_typer(sub_app, name=name)
app.add_typer(batch_app, name="batch", help="Daily Spark batch: compact a raw day into processed/.")
app.add_typer(
    maintenance_app, name="maintenance", help="Lake upkeep: archive, restore, DLQ report, cleanup."
)
app.add_typer(airflow_app, name="airflow")
app.command()(dashboard)


# History start: a calendar date, so the same seed and start date give the same events whenever
# the command runs; without it the history ends yesterday (UTC).
StartDate = Annotated[
    datetime | None,
    typer.Option(
        formats=["%Y-%m-%d"],
        help="First simulated day (YYYY-MM-DD, UTC). Default: the --days days ending yesterday.",
    ),
]


def _as_date(moment: datetime | None) -> date | None:
    return moment.date() if moment is not None else None


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


def load_settings() -> Settings:
    try:
        return Settings()
    except ValueError as error:
        raise OrangeScrumError(f"invalid ORANGESCRUM_* setting: {error}") from None


# --- demo ---------------------------------------------------------------------------------------
@app.command()
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
            start_date=_as_date(start_date),
        ),
        console,
    )
    console.print(f"demo finished in {time.monotonic() - started:.0f}s")


# --- broker -------------------------------------------------------------------------------------
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


# --- topics -------------------------------------------------------------------------------------
@topics_app.command("create")
def topics_create() -> None:
    """Create the events and dead-letter topics (no-op for topics that exist)."""
    from ingestion.feed import require_broker
    from orangescrum.core.topics import create_topics

    settings = load_settings()
    require_broker(settings)
    for topic, outcome in create_topics(settings).items():
        console.print(f"{topic}: {outcome}")


# --- simulate -----------------------------------------------------------------------------------
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
    from ingestion.feed import produce_history, require_broker
    from ingestion.simulator import SimulationConfig

    settings = load_settings()
    require_broker(settings)
    config = SimulationConfig(
        seed=seed,
        companies=companies,
        days=days,
        start_date=_as_date(start_date),
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
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    from ingestion.feed import produce_live, require_broker
    from ingestion.simulator import SimulationConfig

    settings = load_settings()
    require_broker(settings)
    with Progress(
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,} events"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"producing at {rate:g}/s to {settings.topic_events}")
        report = produce_live(
            settings,
            SimulationConfig(seed=seed, companies=companies),
            rate,
            duration,
            progress=lambda n: progress.advance(task, n),
        )
    console.print(f"delivered {report.delivery.delivered:,}, failed {report.delivery.failed:,}")


# --- stream -------------------------------------------------------------------------------------
@app.command()
def stream(
    available_now: Annotated[
        bool,
        typer.Option(
            "--available-now/--continuous",
            help="Drain what is in the topic and stop, or keep running on a trigger.",
        ),
    ] = True,
) -> None:
    """Stream the events topic into the lake (Spark Structured Streaming, checkpointed)."""
    from ingestion.feed import require_broker
    from spark.session import build_session, stop_session
    from spark.stream import run_stream

    settings = load_settings()
    require_broker(settings)
    spark = build_session(settings, "orangescrum-stream")
    try:
        totals = run_stream(spark, settings, available_now=available_now)
    finally:
        stop_session(spark)
    console.print(
        f"{totals.batches} batches: {totals.rows_in:,} read, {totals.rows_landed:,} landed, "
        f"{totals.rows_dead_lettered:,} dead-lettered {totals.dead_letter_reasons or ''}"
    )


# --- warehouse ----------------------------------------------------------------------------------
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


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
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
    """Serve the dbt docs catalog (built by `orangescrum dbt docs generate`) until Ctrl-C."""
    from orangescrum.core.processes import HOST, claim_port
    from orangescrum.warehouse.dbt import serve_docs

    settings = load_settings()
    target = target_path or settings.dbt_project_dir / "target"
    claim_port(port, "pass --port")
    console.print(f"dbt docs: http://{HOST}:{port}  (Ctrl-C stops it)", soft_wrap=True)
    serve_docs(target, port)


# --- schema -------------------------------------------------------------------------------------
@schema_app.command("check")
def schema_check(
    candidate: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="A new .avsc to check against the latest version."
        ),
    ] = None,
    mode: Annotated[
        CompatibilityMode | None,
        typer.Option(case_sensitive=False, help="Default: the mode in registry.json."),
    ] = None,
) -> None:
    """Check every shipped schema version (or a candidate) against its predecessor."""
    from ingestion.compatibility import compatibility_problems, registry_mode
    from orangescrum.core.contract.schema import SCHEMA_DIR, available_versions, load_schema_text

    chosen = mode or registry_mode((SCHEMA_DIR / "registry.json").read_text())
    versions = available_versions()
    pairs = [
        (f"v{old}", load_schema_text(old), f"v{new}", load_schema_text(new))
        for old, new in itertools.pairwise(versions)
    ]
    if candidate is not None:
        pairs = [
            (
                f"v{versions[-1]}",
                load_schema_text(versions[-1]),
                str(candidate),
                candidate.read_text(),
            )
        ]
    failures = 0
    for old_name, old_text, new_name, new_text in pairs:
        try:
            problems = compatibility_problems(old_text, new_text, chosen)
        except (ValueError, AvroException) as error:
            # Avro's parse errors subclass neither; a broken file is the user's to fix.
            raise OrangeScrumError(
                f"{new_name} is not a valid Avro record schema ({error}): fix the file and "
                "run the check again"
            ) from None
        status = "compatible" if not problems else "INCOMPATIBLE"
        console.print(f"{old_name} -> {new_name} ({chosen.value}): {status}")
        for problem in problems:
            console.print(f"  {problem}")
        failures += bool(problems)
    if failures:
        raise OrangeScrumError(
            f"{failures} schema change(s) break {chosen.value} compatibility: give new or "
            "removed fields a default instead of changing or deleting them"
        )


@schema_app.command("register")
def schema_register() -> None:
    """Register every shipped version, oldest first, in the configured schema registry."""
    from orangescrum.core.contract.registry import registry_for
    from orangescrum.core.contract.schema import SUBJECT, available_versions, load_schema_text

    settings = load_settings()
    registry = registry_for(
        settings.schema_registry_url, settings.schema_registry_basic_auth.get_secret_value()
    )
    where = settings.schema_registry_url or "orangescrum/core/contract/schemas/registry.json"
    for version in available_versions():
        schema_id = registry.register(SUBJECT, load_schema_text(version))
        console.print(f"{SUBJECT} v{version}: id {schema_id} ({where})")


# --- spark --------------------------------------------------------------------------------------
@jars_app.command("fetch")
def jars_fetch() -> None:
    """Download every JVM jar the project runs into the Ivy cache (once; `make setup` runs it)."""
    from orangescrum.core.jars import fetch_all

    settings = load_settings()
    with console.status(f"resolving JVM jars from Maven Central into {settings.jar_cache_dir}"):
        counts = fetch_all(settings.jar_cache_dir)
    for use, count in counts.items():
        console.print(f"{use}: {count} jars")


@spark_app.command("cluster")
def spark_cluster(
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 2,
    cores: Annotated[int, typer.Option(min=1, help="Cores per worker.")] = 1,
) -> None:
    """Run a local Spark standalone master + workers until Ctrl-C (for spark:// testing)."""
    from spark.cluster import LocalSparkCluster

    settings = load_settings()
    with LocalSparkCluster(
        settings.log_dir / "spark", workers=workers, cores_per_worker=cores
    ) as c:
        console.print(
            f"Spark master {c.master_url} (UI http://127.0.0.1:{c.ui_port}). In other terminals:\n"
            f"  export ORANGESCRUM_SPARK_MASTER={c.master_url}\nCtrl-C stops it."
        )
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            console.print("stopping Spark cluster")


# --- config -------------------------------------------------------------------------------------
@config_app.command("show")
def config_show() -> None:
    """Print every setting as in effect (derived defaults resolved, secrets masked)."""
    for name, value in effective_values(load_settings()).items():
        sys.stdout.write(f"ORANGESCRUM_{name.upper()}={value}\n")


@config_app.command("env-example")
def config_env_example() -> None:
    """Print .env.example (every setting with its default and meaning)."""
    sys.stdout.write(env_example())


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
