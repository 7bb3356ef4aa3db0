"""The project's registry client, serde and schema commands against a real HTTP registry.

Apicurio Registry 2.4.2.Final (Confluent-compatible API), built from Maven Central and started
once for the module; the restart and CLI tests start their own on their own data dirs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from ingestion.feed import produce_history
from ingestion.serde import EventDeserializer, EventSerializer
from ingestion.simulator import SimulationConfig
from orangescrum.core.apicurio.server import LocalSchemaRegistry, answers, remembered_port
from orangescrum.core.contract.registry import (
    ConfluentSchemaRegistry,
    IncompatibleSchemaError,
    registry_for,
)
from orangescrum.core.contract.schema import SUBJECT, canonical_schema, load_schema_text
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.settings import Settings
from orangescrum.core.topics import create_topics
from tests.conftest import sigterm_when_ready

pytestmark = pytest.mark.slow

V1, V2 = load_schema_text(1), load_schema_text(2)


def without_company_id(schema_text: str) -> str:
    """v2 minus a required field: FULL-incompatible (old readers need company_id)."""
    schema = json.loads(schema_text)
    schema["fields"] = [f for f in schema["fields"] if f["name"] != "company_id"]
    return json.dumps(schema)


@pytest.fixture(scope="module")
def registry_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("registry"), _env_file=None)


@pytest.fixture(scope="module")
def registry(registry_settings: Settings) -> Iterator[LocalSchemaRegistry]:
    with LocalSchemaRegistry.from_settings(registry_settings) as running:
        yield running


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orangescrum", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | env,
    )


def registry_env(tmp_path: Path, registry: LocalSchemaRegistry) -> dict[str, str]:
    return {
        "ORANGESCRUM_DATA_DIR": str(tmp_path),
        "ORANGESCRUM_SCHEMA_REGISTRY_URL": registry.url,
    }


def test_schema_register_assigns_ids_in_the_http_registry(tmp_path, registry) -> None:
    result = cli("schema", "register", env=registry_env(tmp_path, registry))
    assert result.returncode == 0, result.stderr
    assert f"{SUBJECT} v1: id 1 ({registry.url})" in result.stderr
    assert f"{SUBJECT} v2: id 2 ({registry.url})" in result.stderr
    held = ConfluentSchemaRegistry(registry.url).subject_schemas(SUBJECT)
    assert {i: canonical_schema(text) for i, text in held.items()} == {
        1: canonical_schema(V1),
        2: canonical_schema(V2),
    }
    # Registering again changes nothing: the same ids come back.
    again = cli("schema", "register", env=registry_env(tmp_path, registry))
    assert again.returncode == 0 and f"{SUBJECT} v2: id 2" in again.stderr


def test_a_compatible_new_version_is_accepted(registry) -> None:
    client = ConfluentSchemaRegistry(registry.url)
    subject = "compatible-test-value"
    first = client.register(subject, V1)
    assert client.compatible(subject, V2) is True
    second = client.register(subject, V2)
    assert first != second
    assert set(client.subject_schemas(subject)) == {first, second}
    # Not registered anywhere yet: nothing to test against.
    assert client.compatible("nothing-here-value", V2) is None


def test_an_incompatible_version_is_refused_with_one_sentence(registry) -> None:
    client = ConfluentSchemaRegistry(registry.url)
    subject = "incompatible-test-value"
    client.register(subject, V2)
    assert client.compatible(subject, without_company_id(V2)) is False
    with pytest.raises(IncompatibleSchemaError) as refused:
        EventSerializer.registered(client, subject, without_company_id(V2))
    message = str(refused.value)
    assert "\n" not in message
    assert f"The schema registry at {registry.url} refused the new {subject} version" in message
    assert "company_id" in message  # the registry's own reason, naming the field
    assert isinstance(refused.value, OrangeScrumError)  # the CLI prints it as it is
    assert len(client.subject_schemas(subject)) == 1


def test_schema_check_asks_the_http_registry(tmp_path, registry) -> None:
    env = registry_env(tmp_path, registry)
    assert cli("schema", "register", env=env).returncode == 0
    result = cli("schema", "check", env=env)
    assert result.returncode == 0, result.stderr
    assert "v1 -> v2 (full): compatible" in result.stderr
    assert f"v2 against the latest {SUBJECT} at {registry.url}: compatible" in result.stderr

    candidate = tmp_path / "candidate.avsc"
    candidate.write_text(without_company_id(V2))
    refused = cli("schema", "check", "--candidate", str(candidate), env=env)
    assert refused.returncode == 1
    assert f"{candidate} against the latest {SUBJECT} at {registry.url}: INCOMPATIBLE" in (
        " ".join(refused.stderr.split())  # rich wraps long lines
    )
    assert refused.stderr.count("error:") == 1 and "Traceback" not in refused.stderr


def read_values(settings: Settings) -> list[bytes]:
    consumer = Consumer(
        settings.kafka_client_config() | {"group.id": "registry-test", "enable.partition.eof": True}
    )
    topic = settings.topic_events
    consumer.assign([TopicPartition(topic, p, 0) for p in range(settings.topic_partitions)])
    values, ends = [], 0
    while ends < settings.topic_partitions:
        message = consumer.poll(10)
        assert message is not None, "topic did not reach its end"
        if message.error():
            ends += 1
        else:
            values.append(message.value())
    consumer.close()
    return values


def test_events_produced_with_the_http_registry_decode(kafka_settings, registry) -> None:
    settings = kafka_settings.model_copy(update={"schema_registry_url": registry.url})
    create_topics(settings)
    history = SimulationConfig(seed=5, companies=1, days=2, start_date=date(2024, 3, 4))
    report = produce_history(settings, history)
    assert report.delivery.failed == 0 and report.events > 0

    v2_id = ConfluentSchemaRegistry(registry.url).register(SUBJECT, V2)
    deserializer = EventDeserializer(registry_for(registry.url), V2)
    decoded = [deserializer.deserialize(value) for value in read_values(settings)]
    assert len(decoded) == report.messages
    assert {schema_id for schema_id, _ in decoded} == {v2_id}
    assert {record["event_id"] for _, record in decoded} == report.event_ids
    # A v1 writer's message, its id from the same registry, reads into the v2 reader.
    v1_writer = EventSerializer.registered(registry_for(registry.url), SUBJECT, V1)
    _, old_record = decoded[0]
    v1_record = {k: v for k, v in old_record.items() if k != "client"}
    schema_id, record = deserializer.deserialize(v1_writer.serialize(v1_record))
    assert schema_id == v1_writer.schema_id != v2_id
    assert record == v1_record | {"client": None}


def test_a_restart_keeps_subjects_ids_and_port(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, _env_file=None)
    with LocalSchemaRegistry.from_settings(settings) as first:
        url = first.url
        v1_id = ConfluentSchemaRegistry(url).register("restart-value", V1)
    # Stopped cleanly (SIGTERM): the ids are there, and the same URL still works.
    with LocalSchemaRegistry.from_settings(settings) as second:
        assert second.url == url
        client = ConfluentSchemaRegistry(url)
        assert canonical_schema(client.schema_text(v1_id)) == canonical_schema(V1)
        v2_id = client.register("restart-value", V2)
        # Killed (SIGKILL): every id it handed out is on disk already.
        assert second.pid is not None
        os.kill(second.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while second.exit_code() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert second.exit_code() == -signal.SIGKILL
    with LocalSchemaRegistry.from_settings(settings) as third:
        client = ConfluentSchemaRegistry(third.url)
        assert client.register("restart-value", V1) == v1_id
        assert client.register("restart-value", V2) == v2_id
        assert set(client.subject_schemas("restart-value")) == {v1_id, v2_id}


def test_a_second_registry_on_the_same_data_is_refused(
    registry: LocalSchemaRegistry, registry_settings: Settings
) -> None:
    with pytest.raises(OrangeScrumError, match="is already running"):
        LocalSchemaRegistry.from_settings(registry_settings).start()
    assert answers(registry.url)


def registry_start_command(tmp_path: Path) -> tuple[subprocess.Popen, Path, Path]:
    """`orangescrum registry start` on a data dir in tmp_path: the process, the file its
    output goes to, and the registry's folder."""
    output = tmp_path / "out.txt"
    with output.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "orangescrum", "registry", "start"],
            env=os.environ | {"ORANGESCRUM_DATA_DIR": str(tmp_path)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, output, Settings(data_dir=tmp_path, _env_file=None).schema_registry_data_dir


def test_registry_start_prints_the_url_and_stops_on_sigterm(tmp_path) -> None:
    process, output, directory = registry_start_command(tmp_path)
    text = sigterm_when_ready(process, lambda: "export" in output.read_text(), output)
    port = remembered_port(directory)
    assert f"export ORANGESCRUM_SCHEMA_REGISTRY_URL=http://127.0.0.1:{port}/apis/ccompat/v7" in (
        text
    )
    assert process.returncode == 130, text  # "interrupted", as on Ctrl-C
    assert not answers(f"http://127.0.0.1:{port}/apis/ccompat/v7")
    assert "stopped in" in (directory / "registry.log").read_text()  # Quarkus shut down itself


def test_registry_start_notices_the_registry_dying(tmp_path) -> None:
    process, output, directory = registry_start_command(tmp_path)
    try:
        deadline = time.monotonic() + 120
        while "export" not in output.read_text():
            assert process.poll() is None and time.monotonic() < deadline, output.read_text()
            time.sleep(0.5)
        pid = json.loads((directory / "registry.json").read_text())["pid"]
        os.kill(pid, signal.SIGKILL)
        assert process.wait(timeout=30) == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = " ".join(output.read_text().split())
    assert f"The schema registry exited with code -9; see {directory / 'registry.log'}" in text
