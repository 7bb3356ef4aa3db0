"""Kafka Connect + Debezium on a SASL_SSL broker: TLS, the `connect` SCRAM user and its ACLs.

One secured broker (`LocalKafka`, security sasl_ssl), one MariaDB and one Connect worker for
the module. The worker's settings are the `connect` user's env file that the broker wrote and
nothing else, as `set -a; . connect.env; orangescrum connect start` gives them; the snapshot
must arrive through that listener, neither Kafka's password nor the database's may show in the
connector's config, its task configs, Connect's config topic or any log, a restarted worker
resumes the binlog, and the broker never had to deny the connect user anything; a worker whose
topics the ACLs do not name stops with one sentence. The tests run in order.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from pydantic import SecretStr

from orangescrum.core.appdb.connection import APP_TABLES, cdc_password
from orangescrum.core.appdb.server import LocalMariaDB
from orangescrum.core.broker import LocalKafka
from orangescrum.core.connect import (
    CONNECTOR_NAME,
    KAFKA_PASSWORD_KEY,
    LocalConnect,
    connector_config,
    rest,
    running_pid,
    table_topic,
    topic_message_counts,
    worker_properties,
    write_secrets,
)
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.kafka_security import (
    ADMIN,
    CONNECT,
    CONNECT_PREFIX,
    PRODUCER,
    STREAM,
    Security,
    acl_bindings,
)
from orangescrum.core.processes import free_port
from orangescrum.core.settings import Settings
from orangescrum.core.topics import create_topics
from tests.appdb.test_connect import (
    HISTORY,
    cli,
    execute,
    first_task,
    payloads,
    row_counts,
    topic_counts,
    wait_for_counts,
)

slow = pytest.mark.slow


@dataclass
class SecuredStack:
    settings: Settings  # the connect user's, from its env file
    admin: Settings  # the broker's super user, to look at what Connect wrote
    kafka: LocalKafka
    worker: LocalConnect


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredStack]:
    data_dir = tmp_path_factory.mktemp("connect-sasl")
    with LocalKafka.from_settings(
        Settings(_env_file=None), data_dir / "kafka-sasl-ssl", security=Security.SASL_SSL
    ) as kafka:
        assert kafka.secrets is not None
        # The ORANGESCRUM_KAFKA_* values come from the connect user's env file alone.
        settings = Settings(
            _env_file=kafka.secrets.env_file(CONNECT), data_dir=data_dir, appdb_port=free_port()
        )
        admin = kafka.secrets.user_settings(
            Settings(data_dir=data_dir, _env_file=None), kafka.bootstrap, ADMIN
        )
        create_topics(admin)  # the events topic: one the connect user must not even see
        with LocalMariaDB.from_settings(settings) as _appdb:
            simulated = cli(settings, "simulate", "app-db", *HISTORY)
            assert simulated.returncode == 0, simulated.stderr
            stack = SecuredStack(settings, admin, kafka, LocalConnect(settings))
            try:
                stack.worker.start()
                yield stack
            finally:
                stack.worker.stop()  # the one running: a test restarts it


def read_raw(settings: Settings, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """(key, value) of every record of partition 0, read as `settings`' user."""
    consumer = Consumer(
        settings.kafka_client_config()
        | {"group.id": "orangescrum-test-reader", "enable.auto.commit": False}
    )
    try:
        partition = TopicPartition(topic, 0, 0)
        _, end = consumer.get_watermark_offsets(partition, timeout=10)
        consumer.assign([partition])
        records: list[tuple[bytes | None, bytes | None]] = []
        deadline = time.monotonic() + 60
        while len(records) < end and time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is None or message.error():
                continue
            records.append((message.key(), message.value()))
        assert len(records) == end, f"read {len(records)} of {end} from {topic}"
        return records
    finally:
        consumer.close()


def read_json(settings: Settings, topic: str) -> list[tuple[Any, Any]]:
    """read_raw, keys and values JSON decoded (None for a missing one)."""
    return [
        (json.loads(key) if key else None, json.loads(value) if value else None)
        for key, value in read_raw(settings, topic)
    ]


@slow
def test_the_snapshot_arrives_through_sasl_ssl_as_the_connect_user(
    secured: SecuredStack,
) -> None:
    settings = secured.settings
    assert (settings.kafka_security_protocol, settings.kafka_sasl_username) == (
        "SASL_SSL",
        CONNECT,
    )
    rows = row_counts(settings)
    assert all(rows.values())
    # Counted as the connect user (`connect status` does the same): one record per row.
    assert wait_for_counts(settings, rows) == rows
    # Read back as the admin: the snapshot's records, and the snapshot finished.
    marks = []
    for table in APP_TABLES:
        events = payloads(read_json(secured.admin, table_topic(settings, table)))
        assert len(events) == rows[table]
        assert {event["op"] for event in events} == {"r"}
        marks += [event["source"]["snapshot"] for event in events]
    assert "last" in marks
    # The schema history went through Debezium's own SASL_SSL producer.
    history = f"{settings.connect_topic_prefix}.schema-history"
    assert read_json(secured.admin, history)
    # Least privilege: the connect user does not even see a topic outside its prefix.
    assert topic_message_counts(secured.admin, [settings.topic_events]) == {
        settings.topic_events: 0
    }
    assert topic_message_counts(settings, [settings.topic_events]) == {settings.topic_events: None}


@slow
def test_no_password_in_the_connector_config_the_config_topic_or_any_log(
    secured: SecuredStack,
) -> None:
    settings = secured.settings
    kafka_password = settings.kafka_sasl_password.get_secret_value()
    passwords = (kafka_password, cdc_password(settings))
    assert len(kafka_password) >= 24

    url = f"{secured.worker.url}/connectors/{CONNECTOR_NAME}"
    status, config = rest("GET", f"{url}/config")
    assert status == 200
    assert not [p for p in passwords if p in json.dumps(config)]
    jaas = config["schema.history.internal.producer.sasl.jaas.config"]
    assert 'username="connect"' in jaas and "${dir:" in jaas  # resolved inside the worker only
    status, tasks = rest("GET", f"{url}/tasks")
    assert status == 200 and len(tasks) == 1
    assert not [p for p in passwords if p in json.dumps(tasks)]
    # What Connect stored in Kafka: the connector's and its task's configs, as references.
    configs = read_raw(secured.admin, f"{settings.connect_topic_prefix}-connect-configs")
    stored = "\n".join((value or b"").decode() for _, value in configs)
    assert "schema.history.internal.consumer.sasl.jaas.config" in stored
    assert not [p for p in passwords if p in stored]
    # On disk: the worker's properties and logs hold references; only the secrets hold values.
    directory = settings.connect_data_dir
    written = {path for path in directory.rglob("*") if path.is_file()}
    assert {directory / "worker.properties", directory / "connect.log"} <= written
    assert "sasl.jaas.config" in (directory / "connect.log").read_text()  # the client configs
    holding = {
        path for path in written if any(p in path.read_text(errors="replace") for p in passwords)
    }
    secrets = directory / "secrets"
    assert holding == {secrets / "appdb-cdc-password", secrets / KAFKA_PASSWORD_KEY}
    assert {path.stat().st_mode & 0o777 for path in holding} == {0o600}


@slow
def test_a_restarted_worker_resumes_the_binlog_through_sasl_ssl(secured: SecuredStack) -> None:
    settings = secured.settings
    before = topic_counts(settings)
    secured.worker.stop()
    task_id, _ = first_task(settings)
    # changed while no worker runs: read from the binlog after the restart
    execute(settings, ("UPDATE easycases SET legend = 4 WHERE id = %s", (task_id,)))
    secured.worker = LocalConnect(settings)
    secured.worker.start()

    after = wait_for_counts(settings, {"easycases": before["easycases"] + 1})
    assert after == before | {"easycases": before["easycases"] + 1}  # no new snapshot
    *_, (_, value) = read_json(secured.admin, table_topic(settings, "easycases"))
    assert value["payload"]["op"] == "u"
    assert (value["payload"]["after"]["id"], value["payload"]["after"]["legend"]) == (task_id, 4)


@slow
def test_the_broker_never_denied_the_connect_user_anything(secured: SecuredStack) -> None:
    # One denial on purpose, to see that the authorizer's denials reach the broker's log: the
    # stream user looking up a group its ACLs do not name.
    secrets, log = secured.kafka.secrets, secured.kafka.nodes[0].log_file
    assert secrets is not None
    outsider_group = "not-a-stream-group"
    stream = secrets.user_settings(secured.settings, secured.kafka.bootstrap, STREAM)
    consumer = Consumer(stream.kafka_client_config() | {"group.id": outsider_group, "log_level": 0})
    try:
        deadline = time.monotonic() + 30
        while f"Group:LITERAL:{outsider_group}" not in log.read_text(errors="replace"):
            assert time.monotonic() < deadline, "the authorizer logged no denial"
            consumer.poll(0.5)  # librdkafka looks the group's coordinator up meanwhile
    finally:
        consumer.close()
    # Two starts, a snapshot, a binlog change and the counting: the ACLs were enough, not
    # merely enough after retries (every denial is logged as it is made).
    denied = [line for line in log.read_text().splitlines() if "is Denied" in line]
    assert not [line for line in denied if f"User:{CONNECT} " in line], denied[:3]


@slow
def test_a_topic_prefix_the_acls_do_not_name_is_one_sentence(
    secured: SecuredStack, tmp_path: Path
) -> None:
    # Last: it makes the broker deny the connect user. The broker's ACLs name the default
    # prefix; this worker's own topics would be custom-connect-*.
    settings = secured.settings.model_copy(
        update={
            "data_dir": tmp_path,  # a worker of its own beside the running one
            "appdb_cdc_password": SecretStr(cdc_password(secured.settings)),
            "connect_topic_prefix": "custom",
        }
    )
    with pytest.raises(OrangeScrumError) as failure:
        LocalConnect(settings).start(timeout_seconds=120)
    sentence = str(failure.value)
    assert re.fullmatch(
        r"Kafka at \S+ did not allow user connect to use topic custom-connect-(configs|offsets|"
        r"status) \(authorization failed\): grant that user an ACL for it, or set "
        r"ORANGESCRUM_KAFKA_SASL_USERNAME and ORANGESCRUM_KAFKA_SASL_PASSWORD to a user that "
        rf"has one; see {re.escape(str(tmp_path / 'connect' / 'connect.log'))}\.",
        sentence,
    ), sentence
    assert running_pid(settings.connect_data_dir) is None  # the failed worker is gone


# --- fast: no servers ------------------------------------------------------------------------
SECRET = 'pa"ss\\word-Never-Printed'  # pragma: allowlist secret


def secured_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        kafka_bootstrap_servers="127.0.0.1:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="connect",
        kafka_sasl_password=SECRET,
        kafka_ssl_ca_location="/etc/kafka/ca.pem",
        appdb_cdc_password="cdc-secret",  # pragma: allowlist secret
        _env_file=None,
    )


def test_every_kafka_client_of_the_worker_and_of_debezium_gets_the_security_settings(
    tmp_path: Path,
) -> None:
    settings = secured_settings(tmp_path)
    reference = f"${{dir:{tmp_path / 'connect' / 'secrets'}:kafka-sasl-password}}"
    expected = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="connect" password="{reference}";',
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": "/etc/kafka/ca.pem",
    }
    worker = worker_properties(settings, 8083)
    connector = connector_config(settings)
    for properties, prefix in [
        (worker, ""),
        (worker, "producer."),
        (worker, "consumer."),
        (worker, "admin."),
        (connector, "schema.history.internal.producer."),
        (connector, "schema.history.internal.consumer."),
    ]:
        assert {key: properties[prefix + key] for key in expected} == expected, prefix
    assert "SASL" not in json.dumps(connector_config(Settings(data_dir=tmp_path, _env_file=None)))
    assert SECRET not in json.dumps(worker) + json.dumps(connector)


def test_the_kafka_password_file_holds_it_as_the_jaas_line_quotes_it(tmp_path: Path) -> None:
    settings = secured_settings(tmp_path)
    write_secrets(settings)
    secrets = tmp_path / "connect" / "secrets"
    # Kafka's JAAS parser reads backslash escapes between the quotes the reference stands in.
    assert (secrets / KAFKA_PASSWORD_KEY).read_text() == 'pa\\"ss\\\\word-Never-Printed'
    assert (secrets / KAFKA_PASSWORD_KEY).stat().st_mode & 0o777 == 0o600
    # Against a PLAINTEXT cluster no Kafka password stays behind.
    write_secrets(settings.model_copy(update={"kafka_security_protocol": "PLAINTEXT"}))
    assert sorted(path.name for path in secrets.iterdir()) == ["appdb-cdc-password"]


def test_the_connect_users_acls_name_only_its_prefix_and_its_own_topics_and_groups() -> None:
    bindings = acl_bindings("events-raw", "events-dlq")
    granted = {
        (b.restype.name, b.name, b.resource_pattern_type.name, b.operation.name)
        for b in bindings
        if b.principal == f"User:{CONNECT}"
    }
    own_topics = [
        f"{CONNECT_PREFIX}-connect-configs",
        f"{CONNECT_PREFIX}-connect-offsets",
        f"{CONNECT_PREFIX}-connect-status",
        f"{CONNECT_PREFIX}.schema-history",
    ]
    assert granted == {
        ("TOPIC", CONNECT_PREFIX, "PREFIXED", "CREATE"),
        ("TOPIC", CONNECT_PREFIX, "PREFIXED", "WRITE"),
        *(("TOPIC", name, "LITERAL", "READ") for name in own_topics),
        *(("TOPIC", name, "LITERAL", "DESCRIBE_CONFIGS") for name in own_topics),
        ("GROUP", f"{CONNECT_PREFIX}-connect", "LITERAL", "READ"),
        ("GROUP", f"{CONNECT_PREFIX}-schemahistory", "LITERAL", "READ"),
        ("GROUP", "orangescrum-connect-status", "LITERAL", "DESCRIBE"),
    }
    # and the other users' ACLs name nothing of Connect's
    others = [b for b in bindings if b.principal in {f"User:{PRODUCER}", f"User:{STREAM}"}]
    assert not [b for b in others if b.name.startswith(CONNECT_PREFIX)]


def test_the_broker_grants_the_connect_user_the_prefix_it_is_started_with(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, connect_topic_prefix="acme-cdc", _env_file=None)
    broker = LocalKafka.from_settings(settings, tmp_path, security=Security.SASL_SSL)
    prefixes = {
        b.name
        for b in acl_bindings(*broker.acl_topics)
        if b.principal == f"User:{CONNECT}" and b.resource_pattern_type.name == "PREFIXED"
    }
    assert prefixes == {"acme-cdc"}
