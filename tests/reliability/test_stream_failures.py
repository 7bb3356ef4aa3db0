"""Failures the stream must refuse or stop on with one sentence, never work around silently.

In-process (the session's local SparkSession, AvailableNow runs): a recreated topic under a
checkpoint, a lake that refuses writes, a lake out of space (a real 64 KiB tmpfs; skipped
where mounting needs a root this process lacks), a second stream on one checkpoint, a broker
that stays away longer than the outage tolerance.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from orangescrum.core.broker import LocalKafka
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.settings import Settings
from orangescrum.core.topics import create_topics, delete_topics
from spark.stream import checkpoint_lock, run_stream
from tests.spark.test_stream import lake_ids, produce_events

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("new_records", [40, 100, 250])  # fewer, as many, more than before
def test_a_recreated_topic_is_refused_whatever_its_offsets(
    spark: SparkSession, kafka_settings: Settings, new_records: int
) -> None:
    create_topics(kafka_settings)
    first_ids = produce_events(kafka_settings, 100)
    assert run_stream(spark, kafka_settings, available_now=True).rows_landed == 100

    delete_topics(kafka_settings, [kafka_settings.topic_events])
    create_topics(kafka_settings)
    produce_events(kafka_settings, new_records, first=1_000)
    with pytest.raises(OrangeScrumError, match=r"was recreated.*move that checkpoint folder"):
        run_stream(spark, kafka_settings, available_now=True)
    assert sorted(lake_ids(kafka_settings)) == sorted(first_ids)  # nothing skipped or added


def test_an_unwritable_lake_stops_the_stream_naming_the_path(
    spark: SparkSession, kafka_settings: Settings
) -> None:
    blocker = kafka_settings.data_dir / "not-a-folder"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the lake should be\n")
    settings = kafka_settings.model_copy(update={"lake_uri": str(blocker / "lake")})
    create_topics(settings)
    ids = produce_events(settings, 300)

    with pytest.raises(OrangeScrumError, match=f"cannot write the lake at {blocker}") as failure:
        run_stream(spark, settings, available_now=True)
    assert "Traceback" not in str(failure.value)
    assert f"(details: {settings.log_file})" in str(failure.value)
    commits = Path(settings.checkpoint_root) / "events-raw-to-lake" / "commits"
    assert not list(commits.glob("[0-9]*")), "offsets advanced past a batch that did not land"

    blocker.unlink()  # the path is fixed: the rerun lands every event once
    assert run_stream(spark, settings, available_now=True).rows_landed == 300
    assert sorted(lake_ids(settings)) == sorted(ids)


def test_a_second_stream_on_one_checkpoint_is_refused(
    spark: SparkSession, kafka_settings: Settings
) -> None:
    create_topics(kafka_settings)
    produce_events(kafka_settings, 10)
    held = checkpoint_lock(kafka_settings.lake.stream_checkpoint)  # as another process would
    refused = pytest.raises(OrangeScrumError, match=r"Another stream .* on the checkpoint")
    with held, refused:
        run_stream(spark, kafka_settings, available_now=True)
    assert run_stream(spark, kafka_settings, available_now=True).rows_landed == 10


def test_a_broker_that_stays_away_ends_the_stream_with_one_sentence(
    spark: SparkSession, settings: Settings, tmp_path: Path
) -> None:
    kafka = LocalKafka.from_settings(settings, tmp_path / "kafka").start()
    settings = settings.model_copy(
        update={"kafka_bootstrap_servers": kafka.bootstrap, "kafka_outage_tolerance_seconds": 3}
    )
    try:
        create_topics(settings)
        produce_events(settings, 20)
        assert run_stream(spark, settings, available_now=True).rows_landed == 20
    finally:
        kafka.stop()
    with pytest.raises(OrangeScrumError, match=f"Kafka at {kafka.bootstrap} did not answer"):
        run_stream(spark, settings, available_now=True)


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (root only): a lake that runs out of space for real."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def test_a_full_lake_stops_the_stream_and_the_rerun_lands_every_event_once(
    spark: SparkSession, kafka_settings: Settings, small_tmpfs: Path
) -> None:
    lake = small_tmpfs / "lake"
    settings = kafka_settings.model_copy(update={"lake_uri": str(lake)})
    create_topics(settings)
    # 2,000 events over three days and three partitions: nine files, far more than 64 KiB.
    ids = produce_events(settings, 2_000)

    with pytest.raises(OrangeScrumError, match=f"cannot write the lake at {lake}/") as failure:
        run_stream(spark, settings, available_now=True)
    assert "No space left on device" in str(failure.value)
    assert "free space or fix the path" in str(failure.value)
    commits = Path(settings.checkpoint_root) / "events-raw-to-lake" / "commits"
    assert not list(commits.glob("[0-9]*")), "offsets advanced past a batch that did not land"
    assert list(lake.glob("raw/events/*/*.parquet")) == []  # no half batch visible to readers

    subprocess.run(["mount", "-o", "remount,size=16m", str(small_tmpfs)], check=True)
    assert run_stream(spark, settings, available_now=True).rows_landed == 2_000
    assert sorted(lake_ids(settings)) == sorted(ids)
