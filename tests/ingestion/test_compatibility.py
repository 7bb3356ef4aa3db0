"""Schema evolution: what the contract allows, and what it rejects naming the field."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import pytest

from ingestion.compatibility import CompatibilityMode, compatibility_problems
from ingestion.serde import EventDeserializer, EventSerializer
from orangescrum.core.contract.registry import ConfluentSchemaRegistry, FileSchemaRegistry
from orangescrum.core.contract.schema import SUBJECT, available_versions, load_schema_text
from tests.ingestion.test_serde import FULL_EVENT

V1 = load_schema_text(1)


def edited_v1(edit) -> str:
    schema = json.loads(V1)
    edit(schema)
    return json.dumps(schema)


def field(schema: dict, name: str) -> dict:
    return next(f for f in schema["fields"] if f["name"] == name)


def test_shipped_versions_are_each_compatible_with_the_previous() -> None:
    versions = available_versions()
    assert versions[:2] == [1, 2]
    for old, new in itertools.pairwise(versions):
        assert compatibility_problems(load_schema_text(old), load_schema_text(new)) == []


def test_adding_an_optional_field_is_compatible_both_ways() -> None:
    added = edited_v1(
        lambda s: s["fields"].append(
            {"name": "locale", "type": ["null", "string"], "default": None}
        )
    )
    assert compatibility_problems(V1, added, CompatibilityMode.FULL) == []


def test_removing_a_required_field_is_rejected_naming_it() -> None:
    removed = edited_v1(lambda s: s["fields"].remove(field(s, "user_id")))
    assert compatibility_problems(V1, removed) == [
        "forward: field 'user_id' is required here and absent in the other version"
    ]
    # Avro's BACKWARD rule alone allows dropping a field: the new reader ignores it.
    assert compatibility_problems(V1, removed, CompatibilityMode.BACKWARD) == []


def test_adding_a_required_field_breaks_backward() -> None:
    added = edited_v1(lambda s: s["fields"].append({"name": "tenant_plan", "type": "string"}))
    assert compatibility_problems(V1, added, CompatibilityMode.BACKWARD) == [
        "backward: field 'tenant_plan' is required here and absent in the other version"
    ]


def test_changing_a_type_is_rejected_naming_the_nested_field() -> None:
    def change(schema: dict) -> None:
        field(schema, "task_state")["type"][1]["fields"][0]["type"] = "string"  # task_number

    problems = compatibility_problems(V1, edited_v1(change))
    assert problems == [
        "backward: field 'task_state.task_number': reader type: string not compatible with "
        "writer type: int",
        "forward: field 'task_state.task_number': reader type: int not compatible with "
        "writer type: string",
    ]


def test_int_to_long_promotion_is_backward_only() -> None:
    def widen(schema: dict) -> None:
        field(schema, "task_state")["type"][1]["fields"][0]["type"] = "long"

    widened = edited_v1(widen)
    assert compatibility_problems(V1, widened, CompatibilityMode.BACKWARD) == []
    assert compatibility_problems(V1, widened, CompatibilityMode.FORWARD) != []


def test_cli_check_fails_on_an_incompatible_candidate(tmp_path) -> None:
    candidate = tmp_path / "activity_event.v3.avsc"
    candidate.write_text(edited_v1(lambda s: s["fields"].remove(field(s, "company_id"))))
    result = subprocess.run(
        [sys.executable, "-m", "orangescrum", "schema", "check", "--candidate", str(candidate)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "field 'company_id'" in result.stderr
    assert "INCOMPATIBLE" in result.stderr


def test_v1_data_decodes_with_the_v2_reader() -> None:
    registry = FileSchemaRegistry()
    old_writer = EventSerializer.registered(registry, SUBJECT, V1)
    schema_id, record = EventDeserializer(registry, load_schema_text(2)).deserialize(
        old_writer.serialize(FULL_EVENT)
    )
    assert schema_id == 1
    assert record["client"] is None
    assert record["event_id"] == FULL_EVENT["event_id"]


def test_confluent_registry_client_runs_the_same_serde_path() -> None:
    """confluent-kafka's in-memory `mock://` registry stands in for a real one."""
    registry = ConfluentSchemaRegistry("mock://orangescrum-tests")
    serializer = EventSerializer.registered(registry, SUBJECT, load_schema_text(2))
    payload = serializer.serialize(FULL_EVENT | {"client": "mobile"})
    schema_id, record = EventDeserializer(registry, load_schema_text(2)).deserialize(payload)
    assert schema_id == serializer.schema_id
    assert record["client"] == "mobile"


@pytest.mark.parametrize("version", [1, 2])
def test_file_registry_ids_are_stable(version: int) -> None:
    assert FileSchemaRegistry().register(SUBJECT, load_schema_text(version)) == version
