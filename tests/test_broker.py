"""The local Apache Kafka: durable across restarts, strict about topics, loud when it dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from orangescrum import REPO_ROOT
from orangescrum.core.broker import LocalKafka, _new_cluster_id
from orangescrum.core.processes import free_port, port_is_free
from orangescrum.core.settings import Settings
from orangescrum.core.topics import create_topics

pytestmark = pytest.mark.slow


def topic_size(bootstrap: str, topic: str, partitions: int) -> int:
    """Messages in the topic. Right after a (re)start the broker answers before it leads its
    partitions again (NOT_LEADER_FOR_PARTITION): ask again until it does, for up to 60 s."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "size-probe"})
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                return sum(
                    consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    for p in range(partitions)
                )
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        consumer.close()


def produce(
    bootstrap: str, topic: str, count: int, timeout_ms: int = 60_000
) -> list[KafkaError | None]:
    outcomes: list[KafkaError | None] = []
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            # Long enough for a leader to move off a killed broker (its session times out).
            "message.timeout.ms": timeout_ms,
        }
    )
    for n in range(count):
        producer.produce(
            topic, key=b"1", value=str(n).encode(), on_delivery=lambda e, _: outcomes.append(e)
        )
    producer.flush(90)
    return outcomes


def test_messages_survive_a_restart_of_the_broker(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, _env_file=None)
    kafka = LocalKafka.from_settings(settings, tmp_path / "kafka")
    with kafka:
        settings = settings.model_copy(update={"kafka_bootstrap_servers": kafka.bootstrap})
        create_topics(settings)
        assert produce(kafka.bootstrap, settings.topic_events, 500) == [None] * 500
        first_bootstrap = kafka.bootstrap
    with LocalKafka.from_settings(settings, tmp_path / "kafka") as restarted:
        # The same ports when they are free, so clients' settings stay valid.
        assert restarted.bootstrap == first_bootstrap
        assert topic_size(restarted.bootstrap, settings.topic_events, 3) == 500


def test_producing_to_a_missing_topic_fails_instead_of_creating_it(broker: LocalKafka) -> None:
    # A missing topic fails at the delivery timeout: a short one keeps the test quick.
    outcomes = produce(broker.bootstrap, "never-created", 1, timeout_ms=3_000)
    assert len(outcomes) == 1 and outcomes[0] is not None
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "x"})
    assert "never-created" not in consumer.list_topics(timeout=10).topics
    consumer.close()


def test_broker_start_exits_with_a_sentence_when_its_broker_dies(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "ORANGESCRUM_DATA_DIR": str(tmp_path),
    }
    port = free_port()
    command = [sys.executable, "-m", "orangescrum", "broker", "start", "--port", str(port)]
    output = tmp_path / "broker-start.txt"
    with output.open("w") as sink:
        process = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=sink, stderr=sink)
    try:
        deadline = time.monotonic() + 120
        while "Ctrl-C stops it" not in output.read_text():
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, "the broker did not start"
            time.sleep(0.5)
        java = _child_pids(process.pid)
        assert java, "the broker runs as a child process"
        for pid in java:
            os.kill(pid, signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    printed = output.read_text()
    assert process.returncode == 1
    assert "Traceback" not in printed
    assert "exited with code" in printed.strip().splitlines()[-1]
    assert port_is_free(port)


def _child_pids(parent: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                children.append(int(entry.name))
    return children


def test_a_cluster_id_never_starts_with_a_dash() -> None:
    # 0xf8 encodes to "-" first: kafka-storage would read such an id as an option.
    draws = iter([b"\xf8" + bytes(15), bytes(16)])
    assert _new_cluster_id(lambda: next(draws)) == "AAAAAAAAAAAAAAAAAAAAAA"
