"""Project hygiene: raw relations on an empty lake, docs coverage, PII flags, enum lists, lint."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from orangescrum import REPO_ROOT
from orangescrum.core.contract import events
from tests.dbt.conftest import Warehouse, new_warehouse

RAW_RELATIONS = ("raw_events", "raw_dead_letters", "raw_pipeline_metrics")


def column_types(warehouse: Warehouse, schema: str, relation: str) -> list[tuple[str, str]]:
    return warehouse.query(
        "select column_name, data_type from information_schema.columns "
        f"where table_schema = '{schema}' and table_name = '{relation}' "
        "order by ordinal_position"
    )


@pytest.mark.slow
def test_empty_lake_gives_typed_raw_relations(tmp_path: Path, built_warehouse: Warehouse) -> None:
    empty = new_warehouse(tmp_path)  # no file in the lake yet
    empty.dbt("run-operation", "create_raw_events")
    for relation in RAW_RELATIONS:
        # the stand-in has exactly the columns and types the Parquet files give
        expected = column_types(built_warehouse, "orangescrum_dw", relation)
        assert column_types(empty, "orangescrum_dw", relation) == expected, relation
        assert empty.query(f"select count(*) from orangescrum_dw.{relation}") == [(0,)]


@pytest.mark.slow
def test_duckdb_memory_limit_reaches_dbts_connection(tmp_path: Path) -> None:
    base = new_warehouse(tmp_path)
    limited = Warehouse(
        base.settings.model_copy(update={"duckdb_memory_limit": "1GB"}), base.target_path
    )

    shown = limited.dbt(
        "show", "--inline", "select current_setting('memory_limit') as memory_limit"
    )

    # DuckDB reports 10^9 bytes in binary units.
    assert shown.result.results[0].agate_table.rows[0][0] == "953.6 MiB"


def manifest(warehouse: Warehouse) -> dict:
    return json.loads((warehouse.target_path / "manifest.json").read_text())


@pytest.mark.slow
def test_every_model_and_column_is_described(built_warehouse: Warehouse) -> None:
    models = [
        node for node in manifest(built_warehouse)["nodes"].values()
        if node["resource_type"] == "model"
    ]  # fmt: skip
    assert len(models) == 23
    for model in models:
        assert model["description"].strip(), model["name"]
        built = {name for name, _ in column_types(built_warehouse, model["schema"], model["name"])}
        documented = {name for name, column in model["columns"].items()
                      if column["description"].strip()}  # fmt: skip
        assert built == documented, model["name"]


@pytest.mark.slow
def test_docs_generate_catalogs_the_marts(built_warehouse: Warehouse) -> None:
    built_warehouse.dbt("docs", "generate")
    catalog = json.loads((built_warehouse.target_path / "catalog.json").read_text())
    catalogued = {node["metadata"]["name"] for node in catalog["nodes"].values()}
    assert {"dim_users", "dim_projects", "dim_dates", "fact_activities"} <= catalogued
    assert "agg_daily_metrics" in catalogued
    assert catalog["sources"]  # the raw relations too


@pytest.mark.slow
def test_pii_columns_are_flagged(built_warehouse: Warehouse) -> None:
    nodes = manifest(built_warehouse)["nodes"]
    flagged = {
        (node["name"], name)
        for node in nodes.values()
        if node["resource_type"] == "model"
        for name, column in node["columns"].items()
        if column.get("config", {}).get("meta", {}).get("contains_pii")
        or column.get("meta", {}).get("contains_pii")
    }
    assert {
        ("stg_orangescrum__events", "user_initials"),
        ("stg_orangescrum__events", "user_email_hash"),
        ("stg_orangescrum__events", "comment_body"),
        ("dim_users", "user_initials"),
        ("dim_users", "user_email_hash"),
    } <= flagged


ENUMS = {
    "event_type": events.EVENT_TYPES,
    "task_status": tuple(events.TASK_STATUS_LEGEND),
    "user_role": events.USER_ROLES,
    "user_type": events.USER_TYPES,
    "project_type": events.PROJECT_TYPES,
    "project_status": events.PROJECT_STATUSES,
    "task_type": events.TASK_TYPES,
    "task_priority": events.TASK_PRIORITIES,
    "time_log_approval_status": events.APPROVAL_STATUSES,
}


@pytest.mark.slow
def test_accepted_values_match_the_event_vocabulary(built_warehouse: Warehouse) -> None:
    checked = set()
    for node in manifest(built_warehouse)["nodes"].values():
        metadata = node.get("test_metadata") or {}
        if metadata.get("name") != "accepted_values" or node["column_name"] not in ENUMS:
            continue
        assert sorted(metadata["kwargs"]["values"]) == sorted(ENUMS[node["column_name"]])
        checked.add(node["column_name"])
    assert checked == set(ENUMS)


def test_event_categories_macro_matches_the_event_vocabulary() -> None:
    macro = (REPO_ROOT / "dbt_project" / "macros" / "event_categories.sql").read_text()
    block = macro[macro.index("macro event_categories") : macro.index("endmacro")]
    categories = dict(re.findall(r"'(\w+)': \[([^\]]*)\]", block))
    listed = {name: tuple(re.findall(r"'(\w+)'", values)) for name, values in categories.items()}
    assert listed == {
        "user": events.USER_EVENT_TYPES,
        "project": events.PROJECT_EVENT_TYPES,
        "task": events.TASK_EVENT_TYPES,
        "milestone": events.MILESTONE_EVENT_TYPES,
        "time": events.TIME_EVENT_TYPES,
    }
