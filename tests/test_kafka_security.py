"""`orangescrum broker start --security sasl_ssl`: TLS, SCRAM-SHA-512 users and ACLs, for real.

One secured broker for the module, started the way a person does (the CLI, in a subprocess);
every client below is configured from the ORANGESCRUM_KAFKA_* values it printed or wrote to
its users' env files, and nothing else.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from pyspark.sql import SparkSession

from ingestion.faults import BAD_KINDS, EXPECTED_REASON, make_bad_messages
from ingestion.feed import event_serializer
from ingestion.producer import EventProducer
from orangescrum import REPO_ROOT
from orangescrum.core.broker import require_broker
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.kafka_security import BrokerSecrets, kafka_error_sentence, write_certificates
from orangescrum.core.processes import HOST, free_port
from orangescrum.core.settings import Settings
from orangescrum.core.topics import create_topics, topic_id
from spark.stream import run_stream
from tests.ingestion.test_serde import FULL_EVENT

pytestmark = pytest.mark.slow

EVENTS, DEAD_LETTERS = "events-raw", "events-dlq"  # the topics the users' ACLs name


@dataclass(frozen=True)
class SecuredBroker:
    printed: str  # what `broker start` printed
    data_dir: Path  # ORANGESCRUM_DATA_DIR of the broker's command
    admin_env: dict[str, str]  # the admin's exports as printed, the password read from its file
    env_files: dict[str, Path]  # user -> the 0600 env file the output names

    def env(self, user: str) -> dict[str, str]:
        if user == "admin":
            return dict(self.admin_env)
        lines = self.env_files[user].read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if line.strip())

    @property
    def bootstrap(self) -> str:
        return self.admin_env["ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS"]


def settings_from_env(env: dict[str, str], data_dir: Path) -> Settings:
    """Settings as a command sees them: ORANGESCRUM_* variables only, no .env file."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("ORANGESCRUM_")]:
            patch.delenv(name)
        for name, value in (env | {"ORANGESCRUM_DATA_DIR": str(data_dir)}).items():
            patch.setenv(name, value)
        return Settings(_env_file=None)


def _exports(printed: str) -> dict[str, str]:
    """`export NAME=VALUE` lines; a "$(cat FILE)" value is read as the shell would."""
    values = {}
    for name, value in re.findall(r"^\s*export (ORANGESCRUM_\w+)=(.*)$", printed, re.M):
        if command := re.fullmatch(r'"\$\(cat (.+)\)"', value):
            value = Path(command[1]).read_text().strip()
        values[name] = value
    return values


def _command_env(data_dir: Path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(data_dir)),
        "ORANGESCRUM_DATA_DIR": str(data_dir),
    }


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBroker]:
    data_dir = tmp_path_factory.mktemp("secured")
    output = data_dir / "broker-start.txt"
    command = [sys.executable, "-m", "orangescrum", "broker", "start", "--security", "sasl_ssl"]
    with output.open("w") as sink:
        process = subprocess.Popen(
            [*command, "--port", str(free_port())],
            env=_command_env(data_dir),
            cwd=REPO_ROOT,
            stdout=sink,
            stderr=sink,
        )
    try:
        deadline = time.monotonic() + 180
        while "Ctrl-C stops it" not in output.read_text():
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, f"no broker:\n{output.read_text()}"
            time.sleep(0.5)
        printed = output.read_text()
        env_files = {
            user: Path(path)
            for user, path in re.findall(r"^\s+(\w+)\s+(/\S+\.env)\s", printed, re.M)
        }
        broker = SecuredBroker(printed, data_dir, _exports(printed), env_files)
        create_topics(settings_from_env(broker.env("admin"), data_dir / "admin"))
        yield broker
    finally:
        process.send_signal(signal.SIGTERM)  # the command stops its broker, as on Ctrl-C
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# A topic created a moment ago may not have its leader in place yet (CreateTopics returns
# before the broker leads the new partitions); the offsets query does not retry on its own.
LEADERSHIP_ERRORS = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
}


def end_offsets(settings: Settings, topic: str, wait_seconds: float = 30.0) -> dict[int, int]:
    """Each partition's end offset, read as `settings`' user."""
    consumer = Consumer(settings.kafka_client_config() | {"group.id": "orangescrum-size"})
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            try:
                return {
                    p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    for p in partitions
                }
            except KafkaException as error:
                if error.args[0].code() not in LEADERSHIP_ERRORS or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        consumer.close()


def produce_events(settings: Settings, count: int, first: int) -> None:
    """`count` valid events through the project's producer, as `settings`' user."""
    producer = EventProducer(settings, event_serializer(settings), settings.topic_events)
    now = datetime.now(UTC)
    for n in range(first, first + count):
        producer.send(
            FULL_EVENT
            | {
                "event_id": f"{n:08d}-0000-4000-8000-000000000000",
                "company_id": 1 + n % 4,
                "event_timestamp": now - timedelta(hours=n % 50),
            }
        )
    report = producer.flush()
    assert (report.delivered, report.failed) == (count, 0), report.errors


def is_one_sentence(text: str) -> bool:
    return "\n" not in text.strip() and text.strip().endswith(".") and "Traceback" not in text


def test_the_printed_settings_are_all_a_client_needs_and_no_password_is_shown(
    secured: SecuredBroker,
) -> None:
    admin = secured.admin_env
    assert admin["ORANGESCRUM_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert admin["ORANGESCRUM_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert admin["ORANGESCRUM_KAFKA_SASL_USERNAME"] == "admin"
    assert (
        Path(admin["ORANGESCRUM_KAFKA_SSL_CA_LOCATION"])
        .read_text()
        .startswith("-----BEGIN CERTIFICATE-----")
    )
    assert set(secured.env_files) == {"admin", "producer", "stream", "connect"}
    security = secured.data_dir / "kafka-sasl-ssl" / "security"
    passwords = [secured.env(user)["ORANGESCRUM_KAFKA_SASL_PASSWORD"] for user in secured.env_files]
    assert len(set(passwords)) == 4 and min(len(p) for p in passwords) >= 24
    # Secrets are the owner's only: passwords, env files, the broker's key and its config.
    secret_files = [
        *security.glob("*.password"),
        *security.glob("*.env"),
        security / "broker.pem",
        secured.data_dir / "kafka-sasl-ssl" / "node-1" / "server.properties",
    ]
    assert len(secret_files) == 10
    assert {oct(path.stat().st_mode & 0o777) for path in secret_files} == {"0o600"}
    assert not (security / "format-arguments").exists()  # the --add-scram file is gone
    # Never printed, never logged: not in the output, nor any log of the broker or the CLI.
    assert not [p for p in passwords if p in secured.printed]
    logs = list(secured.data_dir.rglob("*.log"))
    assert {"server.log", "stdout.log", "orangescrum.log"} <= {path.name for path in logs}
    for path in logs:
        text = path.read_text(errors="replace")
        assert not [p for p in passwords if p in text], path


def test_producer_user_writes_and_stream_user_reads_back_every_message(
    secured: SecuredBroker, tmp_path: Path
) -> None:
    producer = settings_from_env(secured.env("producer"), tmp_path)
    stream = settings_from_env(secured.env("stream"), tmp_path)
    before = end_offsets(stream, EVENTS)  # other tests write this topic too
    produce_events(producer, 120, first=0)

    consumer = Consumer(
        stream.kafka_client_config()
        | {"group.id": "orangescrum-read-back", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(EVENTS, p, offset) for p, offset in before.items()])
    received, deadline = 0, time.monotonic() + 60
    while received < 120 and time.monotonic() < deadline:
        for message in consumer.consume(500, timeout=1):
            assert message.error() is None, message.error()
            received += 1
    consumer.close()
    assert received == 120
    assert sum(end_offsets(stream, EVENTS).values()) == sum(before.values()) + 120


def test_spark_reads_through_sasl_ssl_and_dead_letters_as_the_stream_user(
    secured: SecuredBroker, spark: SparkSession, tmp_path: Path
) -> None:
    producer = settings_from_env(secured.env("producer"), tmp_path)
    stream = settings_from_env(secured.env("stream"), tmp_path)
    produce_events(producer, 300, first=10_000)
    serializer = event_serializer(producer)
    bad = make_bad_messages(dict.fromkeys(BAD_KINDS, 2), FULL_EVENT, serializer, seed=7)
    sender = EventProducer(producer, serializer, EVENTS)
    for message in bad:
        sender.send_raw(message.key, message.value)
    assert sender.flush().failed == 0
    # Every message in the topic is a valid event except these (other tests add only valid
    # ones, or none), and this stream's fresh checkpoint reads the topic from its start.
    in_topic = sum(end_offsets(stream, EVENTS).values())

    totals = run_stream(spark, stream, available_now=True)

    assert totals.rows_in == in_topic
    assert totals.rows_landed == in_topic - len(bad)
    expected: dict[str, int] = {}
    for message in bad:
        reason = EXPECTED_REASON[message.kind]
        expected[reason] = expected.get(reason, 0) + 1
    assert totals.dead_letter_reasons == expected
    # The stream user's DLQ producer published them (it may write events-dlq, nothing else).
    admin = settings_from_env(secured.env("admin"), tmp_path)
    assert sum(end_offsets(admin, DEAD_LETTERS).values()) == len(bad)
    with duckdb.connect() as connection:
        batches, with_lag = connection.execute(
            "select count(*), count(lag_total) from read_parquet(?)",
            [f"{stream.lake.metrics}/*.parquet"],
        ).fetchone()
    assert batches == totals.batches and with_lag == batches  # its lag probe got offsets too


def _cli_json(env: dict[str, str], data_dir: Path, *args: str) -> dict:
    """`orangescrum <args> --json` with only `env`'s ORANGESCRUM_* settings."""
    result = subprocess.run(
        [sys.executable, "-m", "orangescrum", *args, "--json"],
        env=_command_env(data_dir) | env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_topics_peek_dlq_and_status_work_through_sasl_ssl(
    secured: SecuredBroker, tmp_path: Path
) -> None:
    admin_env = secured.env("admin")
    admin = settings_from_env(admin_env, tmp_path)
    produce_events(settings_from_env(secured.env("producer"), tmp_path), 5, first=20_000)
    events_end = sum(end_offsets(admin, EVENTS).values())
    dead_letters_end = sum(end_offsets(admin, DEAD_LETTERS).values())

    listed = {t["name"]: t for t in _cli_json(admin_env, tmp_path, "topics", "list")["topics"]}
    assert listed[EVENTS]["messages"] == events_end
    assert listed[DEAD_LETTERS]["messages"] == dead_letters_end

    peeked = _cli_json(admin_env, tmp_path, "topics", "peek", EVENTS, "--count", "3")
    assert len(peeked["messages"]) == 3
    assert all(m["record"] and m["record"]["event_id"] for m in peeked["messages"])

    dlq = _cli_json(admin_env, tmp_path, "topics", "dlq")
    assert dlq["total"] == dead_letters_end
    assert sum(dlq["reasons"].values()) == dead_letters_end

    status = _cli_json(admin_env, tmp_path, "status")
    assert (status["kafka"]["state"], status["kafka"]["bootstrap"]) == (
        "reachable",
        secured.bootstrap,
    )
    by_name = {topic["name"]: topic for topic in status["kafka"]["topics"]}
    assert by_name[EVENTS]["messages"] == events_end


def test_a_wrong_password_is_one_sentence_naming_the_password_setting(
    secured: SecuredBroker, tmp_path: Path
) -> None:
    env = secured.env("stream") | {"ORANGESCRUM_KAFKA_SASL_PASSWORD": "not-the-password"}
    settings = settings_from_env(env, tmp_path)
    for attempt in (require_broker, lambda s: topic_id(s, EVENTS)):
        with pytest.raises(OrangeScrumError) as failure:
            attempt(settings)
        sentence = str(failure.value)
        assert is_one_sentence(sentence)
        assert "ORANGESCRUM_KAFKA_SASL_PASSWORD" in sentence and "user stream" in sentence
        assert "not-the-password" not in sentence
    # What a person at the terminal sees: that sentence, exit code 1, no traceback.
    result = subprocess.run(
        [sys.executable, "-m", "orangescrum", "topics", "create"],
        env=_command_env(tmp_path) | env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "ORANGESCRUM_KAFKA_SASL_PASSWORD" in result.stderr.strip().splitlines()[-1]


def test_a_certificate_from_another_ca_is_one_sentence_naming_the_ca_setting(
    secured: SecuredBroker, tmp_path: Path
) -> None:
    other_ca = tmp_path / "other-ca.pem"
    write_certificates(other_ca, tmp_path / "other-broker.pem", HOST)
    env = secured.env("stream") | {"ORANGESCRUM_KAFKA_SSL_CA_LOCATION": str(other_ca)}
    with pytest.raises(OrangeScrumError) as failure:
        require_broker(settings_from_env(env, tmp_path))
    sentence = str(failure.value)
    assert is_one_sentence(sentence)
    assert "ORANGESCRUM_KAFKA_SSL_CA_LOCATION" in sentence and str(other_ca) in sentence


def test_a_user_without_an_acl_on_the_topic_is_refused_by_name(
    secured: SecuredBroker, tmp_path: Path
) -> None:
    admin_env = secured.env("admin")
    config = settings_from_env(admin_env, tmp_path).kafka_client_config()
    # Quiet: pytest.raises below keeps this frame (and the client) alive past the broker.
    admin = AdminClient(config | {"log_level": 0})
    outsider = UserScramCredentialUpsertion(
        "outsider", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), b"outsider-secret"
    )
    for future in admin.alter_user_scram_credentials([outsider]).values():
        future.result()
    env = secured.env("stream") | {
        "ORANGESCRUM_KAFKA_SASL_USERNAME": "outsider",
        "ORANGESCRUM_KAFKA_SASL_PASSWORD": "outsider-secret",  # pragma: allowlist secret
    }
    settings = settings_from_env(env, tmp_path)
    require_broker(settings)  # logged in: a user the cluster knows...
    with pytest.raises(OrangeScrumError) as failure:
        topic_id(settings, EVENTS)  # ...but with no ACL on the topic (the stream's first step)
    sentence = str(failure.value)
    assert is_one_sentence(sentence)
    assert "user outsider" in sentence and f"topic {EVENTS}" in sentence
    assert "authorization failed" in sentence

    before = end_offsets(settings_from_env(admin_env, tmp_path), EVENTS)
    errors: list[KafkaError | None] = []
    producer = Producer(settings.kafka_client_config() | {"message.timeout.ms": 10_000})
    producer.produce(EVENTS, value=b"x", on_delivery=lambda error, _: errors.append(error))
    producer.flush(30)
    producer.close()
    assert [error.code() for error in errors if error] == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
    assert end_offsets(settings_from_env(admin_env, tmp_path), EVENTS) == before
    # The sentence a producer's delivery failure translates to.
    assert errors[0] is not None
    refused = kafka_error_sentence(settings, errors[0], resource=EVENTS, action="write to")
    assert refused is not None and is_one_sentence(refused)
    assert f"user outsider to write to topic {EVENTS}" in refused


def test_the_client_port_speaks_sasl_ssl_only(secured: SecuredBroker, tmp_path: Path) -> None:
    admin = settings_from_env(secured.env("admin"), tmp_path)
    before = end_offsets(admin, EVENTS)
    plaintext = Settings(
        data_dir=tmp_path, kafka_bootstrap_servers=secured.bootstrap, _env_file=None
    )
    with pytest.raises(OrangeScrumError) as failure:
        require_broker(plaintext)
    sentence = str(failure.value)
    assert is_one_sentence(sentence)
    assert "ORANGESCRUM_KAFKA_SECURITY_PROTOCOL" in sentence and "PLAINTEXT" in sentence

    errors: list[KafkaError | None] = []
    producer = Producer(plaintext.kafka_client_config() | {"message.timeout.ms": 3000})
    producer.produce(EVENTS, value=b"x", on_delivery=lambda error, _: errors.append(error))
    producer.flush(30)
    producer.close()
    assert len(errors) == 1 and errors[0] is not None  # not delivered
    consumer = Consumer(plaintext.kafka_client_config() | {"group.id": "orangescrum-plain"})
    with pytest.raises(KafkaException):  # no answer to a plaintext client, not even offsets
        consumer.get_watermark_offsets(TopicPartition(EVENTS, 0), timeout=3)
    consumer.close()
    assert end_offsets(admin, EVENTS) == before


def test_a_stream_run_by_a_user_without_read_on_the_topic_is_refused_by_name(
    secured: SecuredBroker, spark: SparkSession, tmp_path: Path
) -> None:
    # The producer user may describe events-raw (WRITE implies it), so the stream's topic
    # check passes and Spark's own Kafka consumer is the one refused.
    producer = settings_from_env(secured.env("producer"), tmp_path)
    produce_events(producer, 5, first=20_000)  # an empty topic would plan no batch to refuse
    with pytest.raises(OrangeScrumError) as failure:
        run_stream(spark, producer, available_now=True)
    sentence = str(failure.value)
    assert is_one_sentence(sentence)
    assert f"user producer to read topic {EVENTS}" in sentence
    assert "authorization failed" in sentence


def test_a_formatted_cluster_whose_passwords_are_gone_is_one_sentence(tmp_path: Path) -> None:
    # The users were created with those passwords at format time: new ones would lock the
    # admin out, so the start refuses instead of timing out.
    secrets = BrokerSecrets(tmp_path / "kafka-sasl-ssl" / "security")
    assert set(secrets.ensure(HOST, formatted=False)) == {"admin", "producer", "stream", "connect"}
    secrets.password_file("stream").unlink()
    with pytest.raises(OrangeScrumError, match="those of stream are gone") as failure:
        secrets.ensure(HOST, formatted=True)
    assert is_one_sentence(str(failure.value))
