"""`orangescrum topics list|peek|dlq` as a person and a script meet them, on the real broker."""

from __future__ import annotations

import subprocess

import pytest

from orangescrum.core.settings import Settings
from orangescrum.core.topics import DAY_MS
from tests.ingestion.test_browse import (
    UNDECODABLE,
    KnownTopic,
    produce_known_messages,
    publish_known_dead_letters,
)
from tests.test_cli import json_of, settings_env
from tests.test_cli import orangescrum as run_cli


def orangescrum(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    return run_cli("topics", *args, env=settings_env(settings))


@pytest.fixture
def known(kafka_settings: Settings) -> KnownTopic:
    return produce_known_messages(kafka_settings)


def test_list_json(known: KnownTopic) -> None:
    document = json_of(orangescrum(known.settings, "list", "--json"))
    assert document["bootstrap"] == known.settings.kafka_bootstrap_servers
    topics = {t["name"]: t for t in document["topics"]}
    assert topics[known.topic] == {
        "name": known.topic,
        "partitions": [
            {"partition": 0, "earliest": 0, "latest": 3, "messages": 3},
            {"partition": 1, "earliest": 0, "latest": 3, "messages": 3},
        ],
        "messages": 6,
        "retention_ms": 7 * DAY_MS,
    }
    assert topics[known.settings.topic_dead_letter]["messages"] == 0


def test_list_table(known: KnownTopic) -> None:
    result = orangescrum(known.settings, "list")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # people's output goes to stderr
    lines = result.stderr.splitlines()
    at = next(i for i, line in enumerate(lines) if f" {known.topic} " in line)
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines[at : at + 3]]
    assert rows == [
        [known.topic, "7d", "0", "0", "3", "3"],
        ["", "", "1", "0", "3", "3"],
        ["", "", "all", "", "", "6"],
    ]


def test_peek_json_one_partition_from_an_offset(known: KnownTopic) -> None:
    document = json_of(
        orangescrum(
            known.settings,
            "peek",
            known.topic,
            "--partition",
            "1",
            "--from-offset",
            "1",
            "--count",
            "2",
            "--json",
        )
    )
    messages = document["messages"]
    assert [(m["partition"], m["offset"]) for m in messages] == [(1, 1), (1, 2)]
    assert messages[0]["decode_error"]["reason"] == "not_confluent_avro"
    assert messages[0]["value_preview"] == UNDECODABLE.hex()
    assert messages[0]["record"] is None
    assert messages[1]["decode_error"]["reason"] == "unknown_schema_id"
    assert messages[1]["schema_id"] == 999_999
    assert messages[0]["timestamp"] == known.timestamps[(1, 1)].isoformat()
    assert document["notes"] == []
    assert document["partitions"] == [
        {"partition": 1, "earliest": 0, "latest": 3, "start": 1, "next_offset": 3}
    ]


def test_peek_json_decodes_records(known: KnownTopic) -> None:
    document = json_of(orangescrum(known.settings, "peek", known.topic, "--count", "2", "--json"))
    first, second = document["messages"]
    assert (first["partition"], first["offset"], second["partition"], second["offset"]) == (
        0,
        0,
        1,
        0,
    )
    expected = known.records[(0, 0)]
    assert first["key"] == "1" and first["schema_id"] == 2
    assert first["record"]["event_id"] == expected["event_id"]
    assert first["record"]["event_type"] == expected["event_type"]
    assert first["record"]["company_id"] == expected["company_id"] == 1
    assert first["record"]["event_timestamp"] == expected["event_timestamp"].isoformat()
    assert second["record"]["event_id"] == known.records[(1, 0)]["event_id"]


def test_peek_for_people_shows_records_and_reasons(known: KnownTopic) -> None:
    result = orangescrum(known.settings, "peek", known.topic)
    assert result.returncode == 0, result.stderr
    out = result.stderr
    assert f"{known.topic} partition 1 offset 1" in out
    assert "not decoded not_confluent_avro: first byte ff is not the Confluent magic byte 00" in out
    assert "not decoded unknown_schema_id: no schema with id 999999" in out
    assert f'"event_id": "{known.records[(0, 2)]["event_id"]}"' in out
    assert f"note: end of {known.topic} reached: 6 messages, fewer than the 10 asked for." in out


def test_peek_beyond_the_end_prints_what_there_is(known: KnownTopic) -> None:
    result = orangescrum(known.settings, "peek", known.topic, "--from-offset", "10", "--json")
    document = json_of(result)
    assert document["messages"] == []
    assert document["notes"] == [
        f"offset 10 is beyond the end of {known.topic} (latest offset by partition: 0: 3, "
        "1: 3): no messages there yet."
    ]


def test_unknown_topic_is_one_sentence_listing_the_topics(known: KnownTopic) -> None:
    result = orangescrum(known.settings, "peek", "no-such-topic")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: Topic no-such-topic does not exist on 127.0.0.1:")
    assert known.topic in result.stderr and known.settings.topic_dead_letter in result.stderr


def test_bad_partition_and_count_are_refused(known: KnownTopic) -> None:
    result = orangescrum(known.settings, "peek", known.topic, "--partition", "7")
    assert result.returncode == 1
    assert f"Topic {known.topic} has no partition 7" in result.stderr
    result = orangescrum(known.settings, "peek", known.topic, "--count", "0")
    assert result.returncode == 1
    assert "'--count'" in result.stderr and "Traceback" not in result.stderr


def test_dlq_json_and_table(kafka_settings: Settings) -> None:
    publish_known_dead_letters(kafka_settings)
    document = json_of(orangescrum(kafka_settings, "dlq", "--count", "1", "--json"))
    assert document["topic"] == kafka_settings.topic_dead_letter
    assert document["reasons"] == {"not_confluent_avro": 2, "missing_key": 1}
    assert document["total"] == 3 and document["reasons_complete"] is True
    (message,) = document["messages"]
    assert message["offset"] == 0
    assert message["dead_letter"] == {
        "reason": "not_confluent_avro",
        "detail": "first byte ff is not the magic byte",
        "source_topic": kafka_settings.topic_events,
        "source_partition": 1,
        "source_offset": 7,
    }
    result = orangescrum(kafka_settings, "dlq")
    assert result.returncode == 0, result.stderr
    assert (
        "dead letter missing_key: message has no key (expected the company_id) "
        f"(from {kafka_settings.topic_events} partition 1 offset 8)"
    ) in result.stderr
    rows = {
        cells[0]: cells[1]
        for line in result.stderr.splitlines()
        if len(cells := [c.strip() for c in line.split("│")[1:-1]]) == 2
    }
    assert rows == {"not_confluent_avro": "2", "missing_key": "1", "total": "3"}


@pytest.mark.slow
def test_unreachable_broker_is_one_sentence(settings: Settings) -> None:
    env = settings_env(settings) | {
        "ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "ORANGESCRUM_KAFKA_CONNECT_TIMEOUT_SECONDS": "2",
    }
    for command in (["list"], ["peek", "events-raw"], ["dlq"]):
        result = run_cli("topics", *command, env=env)
        assert result.returncode == 1
        assert "No Kafka broker answered at 127.0.0.1:1 within 2s" in result.stderr
        assert "Traceback" not in result.stderr
