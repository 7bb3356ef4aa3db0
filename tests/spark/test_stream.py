"""The streaming job against a real Apache Kafka broker and a local SparkSession."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from ingestion.faults import BAD_KINDS, EXPECTED_REASON, make_bad_messages
from ingestion.feed import event_serializer
from ingestion.producer import EventProducer
from orangescrum import REPO_ROOT
from orangescrum.core.topics import create_topics
from spark.stream import (
    BatchLander,
    landing_config,
    run_stream,
)
from tests.conftest import sigterm_when_ready
from tests.ingestion.test_serde import FULL_EVENT

pytestmark = pytest.mark.slow


def produce_events(settings, count: int, first: int = 0) -> list[str]:
    serializer = event_serializer(settings)
    producer = EventProducer(settings, serializer, settings.topic_events)
    now = datetime.now(UTC)
    ids = []
    for n in range(first, first + count):
        event_id = f"{n:08d}-0000-4000-8000-000000000000"
        company = 1 + n % 4
        producer.send(
            FULL_EVENT
            | {
                "event_id": event_id,
                "company_id": company,
                "event_timestamp": now - timedelta(hours=n % 50),
            }
        )
        ids.append(event_id)
    assert producer.flush().failed == 0
    return ids


def lake_ids(settings) -> list[str]:
    with duckdb.connect() as connection:
        rows = connection.execute(
            f"select event_id from read_parquet('{settings.lake.raw_events}/*/*.parquet', "
            "hive_partitioning = true)"
        ).fetchall()
    return [row[0] for row in rows]


def test_restart_resumes_from_checkpoint_without_loss_or_duplicates(spark, kafka_settings) -> None:
    settings = kafka_settings.model_copy(update={"max_events_per_batch": 700})
    create_topics(settings)
    first_ids = produce_events(settings, 1_500)
    first = run_stream(spark, settings, available_now=True)
    # 1,500 records under a 700-record budget need at least three micro-batches.
    assert first.batches >= 3
    assert first.rows_landed == 1_500

    second_ids = produce_events(settings, 400, first=10_000)
    second = run_stream(spark, settings, available_now=True)  # a new query, same checkpoint
    assert second.rows_in == 400

    landed = lake_ids(settings)
    assert len(landed) == len(set(landed))
    assert sorted(landed) == sorted(first_ids + second_ids)

    with duckdb.connect() as connection:
        metrics = connection.execute(
            f"select sum(rows_landed), count(*), max(lag_total) "
            f"from read_parquet('{settings.lake.metrics}/*.parquet')"
        ).fetchone()
    assert metrics[0] == 1_900
    assert metrics[1] == first.batches + second.batches


def test_bad_messages_are_dead_lettered_and_counted(spark, kafka_settings) -> None:
    create_topics(kafka_settings)
    good = produce_events(kafka_settings, 50)
    serializer = event_serializer(kafka_settings)
    bad = make_bad_messages(dict.fromkeys(BAD_KINDS, 2), FULL_EVENT, serializer, seed=5)
    producer = EventProducer(kafka_settings, serializer, kafka_settings.topic_events)
    for message in bad:
        producer.send_raw(message.key, message.value)
    producer.flush()

    totals = run_stream(spark, kafka_settings, available_now=True)

    expected = {}
    for kind in BAD_KINDS:
        expected[EXPECTED_REASON[kind]] = expected.get(EXPECTED_REASON[kind], 0) + 2
    assert totals.rows_landed == len(good)
    assert totals.dead_letter_reasons == expected
    with duckdb.connect() as connection:
        reasons = dict(
            connection.execute(
                f"select reason, count(*) from read_parquet("
                f"'{kafka_settings.lake.dead_letters}/*/*.parquet') group by reason"
            ).fetchall()
        )
        metrics_glob = f"{kafka_settings.lake.metrics}/*.parquet"
        metrics_reasons = connection.execute(
            f"select dead_letter_reasons from read_parquet('{metrics_glob}')"
        ).fetchone()[0]
    assert reasons == expected
    assert json.loads(metrics_reasons) == expected
    # Dead letters are also published to the DLQ topic, reason in the headers.
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        kafka_settings.kafka_client_config()
        | {"group.id": "dlq-check", "enable.partition.eof": True, "auto.offset.reset": "earliest"}
    )
    consumer.assign([TopicPartition(kafka_settings.topic_dead_letter, p, 0) for p in range(3)])
    dlq_reasons: dict[str, int] = {}
    eof = 0
    while eof < 3:
        message = consumer.poll(5)
        assert message is not None, "DLQ topic did not reach EOF"
        if message.error():
            eof += 1
            continue
        reason = dict(message.headers())["reason"].decode()
        dlq_reasons[reason] = dlq_reasons.get(reason, 0) + 1
    consumer.close()
    assert dlq_reasons == expected


def test_sigterm_stops_a_continuous_stream_with_one_word(kafka_settings, tmp_path) -> None:
    create_topics(kafka_settings)
    produce_events(kafka_settings, 50)
    env = dict(os.environ) | {
        "ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.kafka_bootstrap_servers,
        "ORANGESCRUM_TOPIC_EVENTS": kafka_settings.topic_events,
        "ORANGESCRUM_TOPIC_DEAD_LETTER": kafka_settings.topic_dead_letter,
        "ORANGESCRUM_DATA_DIR": str(kafka_settings.data_dir),
        "ORANGESCRUM_TRIGGER_SECONDS": "1",
        "ORANGESCRUM_SPARK_MASTER": "local[2]",
    }
    output = tmp_path / "stream.txt"
    with output.open("w") as sink:
        command = [sys.executable, "-m", "orangescrum", "stream", "--continuous"]
        process = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=sink, stderr=sink)

    def batch_landed() -> bool:
        return any(Path(kafka_settings.lake.metrics).glob("*.parquet"))

    printed = sigterm_when_ready(process, batch_landed, output)
    assert process.returncode == 130, printed
    assert "Traceback" not in printed, printed
    assert printed.strip().splitlines()[-1] == "interrupted"


def test_lag_is_unknown_not_fatal_while_the_broker_is_away(settings) -> None:
    away = settings.model_copy(update={"kafka_bootstrap_servers": "127.0.0.1:1"})
    checkpoint = away.lake.stream_checkpoint
    lander = BatchLander(away, checkpoint, landing_config(away, checkpoint))
    try:
        assert lander._lag({"0": 5}) is None
    finally:
        lander.close()
