"""The prod (BigQuery) target run for real against a local BigQuery emulator.

crucible-emulator (its own venv, `.venv-bqemu`, built by `make setup`) serves BigQuery's REST
API over DuckDB; dbt-bigquery reaches it through the profile's `api_endpoint` with
`method: oauth-secrets` and a dummy token (tests/bq_emulator.py).

The emulator reads no gs://, so create_raw_events runs with `raw_relations: native` (managed
tables, partitioned by event_date, raw_events clustered by user_id, event_type) and the
fixture lake's Parquet rows go in by INSERT. Then `dbt build --target prod` runs every model
(BigQuery SQL of the dispatched macros, enforced contracts, the partitioned and clustered
incremental fact), data test and unit test on the emulator; its marts must equal the DuckDB
build of the same lake row for row. A second run as of Saturday exercises the fact's
insert_overwrite of static partitions (the lookback window) with late events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from dbt.cli.main import dbtRunnerResult
from google.cloud import bigquery

from orangescrum.core.settings import Settings, WarehouseTarget
from tests.bq_emulator import BigQueryEmulator, emulator_installed, insert_rows
from tests.dbt.conftest import (
    FIRST_RUN_DATE,
    MARTS,
    PII_SALT,
    Warehouse,
    dbt_as_of,
    mart_content_sql,
)
from tests.dbt.lake import (
    DUPLICATE_DELIVERIES,
    EVENTS,
    LATE_EVENTS,
    TOO_LATE_EVENTS,
    event_uuid,
    write_batch,
    write_lake,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        not emulator_installed(),
        reason="BigQuery emulator venv .venv-bqemu is missing: run `make setup` to build it",
    ),
]

PROJECT = "orangescrum-ci"
DATASET = "orangescrum_dw"
SATURDAY = "2024-03-09"
RECONCILIATION_TEST = "test.orangescrum.assert_fact_activities_reconciles_with_raw_events"
# lake folder -> native raw table (create_raw_events with raw_relations: native)
RAW_TABLES = {
    "raw/events": "raw_events",
    "raw/_dead_letter": "raw_dead_letters",
    "raw/metrics": "raw_pipeline_metrics",
}


@dataclass
class EmulatorWarehouse:
    """The emulator, settings of the prod target pointing at it, and the lake it was fed."""

    emulator: BigQueryEmulator
    settings: Settings
    target_path: Path
    client: bigquery.Client
    loaded_files: set[Path] = field(default_factory=set)

    @property
    def lake_root(self) -> Path:
        return Path(self.settings.lake_root)

    def dbt(
        self, *args: str, run_date: str = FIRST_RUN_DATE, check: bool = True
    ) -> dbtRunnerResult:
        # The emulator reads no gs://: raw tables are native and filled by INSERT.
        vars_ = {"raw_relations": "native"}
        return dbt_as_of(self.settings, self.target_path, args, run_date, check, vars_)

    def load_new_lake_files(self) -> int:
        """INSERT the rows of lake files not loaded yet (the emulator's stand-in for a load
        job); the Hive folder's event_date becomes the column. Returns the rows inserted."""
        inserted = 0
        for folder, table in RAW_TABLES.items():
            for path in sorted((self.lake_root / folder).rglob("*.parquet")):
                if path in self.loaded_files:
                    continue
                partition = {}
                if path.parent.name.startswith("event_date="):
                    event_date = date.fromisoformat(path.parent.name.removeprefix("event_date="))
                    partition = {"event_date": event_date}
                rows = [row | partition for row in pq.read_table(path).to_pylist()]
                inserted += insert_rows(self.client, f"{PROJECT}.{DATASET}.{table}", rows)
                self.loaded_files.add(path)
        return inserted

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row.values()) for row in self.client.query(sql).result()]

    def table(self, name: str, dataset: str = f"{DATASET}_marts") -> bigquery.Table:
        return self.client.get_table(f"{PROJECT}.{dataset}.{name}")


@dataclass(frozen=True)
class EmulatorBuild:
    """What Friday's `dbt build` left, read back before any later test changes the data."""

    result: dbtRunnerResult
    raw_event_rows: int
    marts: dict[str, list[tuple[Any, ...]]]
    tables: dict[str, bigquery.Table]


@pytest.fixture(scope="module")
def emulator_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorWarehouse]:
    root = tmp_path_factory.mktemp("bigquery_emulator")
    with BigQueryEmulator(root / "emulator.log") as emulator:
        settings = Settings(
            data_dir=root,
            _env_file=None,
            dbt_target=WarehouseTarget.PROD,
            gcp_project=PROJECT,
            bigquery_dataset=DATASET,
            pii_salt=PII_SALT,
            **emulator.settings_overrides(),
        )
        client = emulator.client(PROJECT)
        try:
            yield EmulatorWarehouse(emulator, settings, root / "dbt_target", client)
        finally:
            client.close()


@pytest.fixture(scope="module")
def emulator_build(emulator_warehouse: EmulatorWarehouse) -> EmulatorBuild:
    warehouse = emulator_warehouse
    write_lake(warehouse.lake_root)
    warehouse.dbt("run-operation", "create_raw_events")
    warehouse.load_new_lake_files()
    result = warehouse.dbt("build", check=False)
    [(raw_event_rows,)] = warehouse.query(f"select count(*) from `{PROJECT}.{DATASET}.raw_events`")
    return EmulatorBuild(
        result=result,
        raw_event_rows=raw_event_rows,
        marts={
            mart: warehouse.query(
                mart_content_sql(mart, f"`{PROJECT}.{DATASET}_marts.{mart}`", "except")
            )
            for mart in MARTS
        },
        tables={
            "fact_activities": warehouse.table("fact_activities"),
            "raw_events": warehouse.table("raw_events", DATASET),
        },
    )


def comparable(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows sorted, timestamps as naive UTC: BigQuery returns aware UTC datetimes, DuckDB's
    `timestamp` naive ones holding UTC (the profile sets TimeZone UTC)."""
    normalised = [
        tuple(
            value.astimezone(UTC).replace(tzinfo=None)
            if isinstance(value, datetime) and value.tzinfo is not None
            else value
            for value in row
        )
        for row in rows
    ]
    return sorted(normalised, key=lambda row: tuple((v is None, str(v)) for v in row))


def test_build_runs_every_model_test_and_unit_test_on_bigquery(
    emulator_build: EmulatorBuild,
) -> None:
    result = emulator_build.result
    problems = [
        f"{r.node.unique_id}: {r.status} {r.message}"
        for r in result.result.results
        if str(r.status) not in {"success", "pass", "no-op"}
    ]
    assert result.success, "\n".join(problems)
    by_type = Counter(r.node.resource_type for r in result.result.results)
    assert by_type["model"] == 23  # 3 staging, 8 intermediate, 12 marts
    assert by_type["unit_test"] >= 8
    assert by_type["test"] >= 80
    marts = [
        r.node
        for r in result.result.results
        if r.node.resource_type == "model" and r.node.fqn[1:2] == ["marts"]
    ]
    assert {node.name for node in marts} == set(MARTS)
    assert all(node.config.contract.enforced for node in marts)
    fact = next(node for node in marts if node.name == "fact_activities")
    assert fact.config.materialized == "incremental"
    assert fact.config.incremental_strategy == "insert_overwrite"


def test_marts_hold_the_fixture_values(emulator_build: EmulatorBuild) -> None:
    assert emulator_build.raw_event_rows == len(EVENTS) + len(DUPLICATE_DELIVERIES)
    fact = emulator_build.marts["fact_activities"]
    assert len(fact) == len({event.event_id for event in EVENTS}) == 35
    columns = [
        schema_field.name for schema_field in emulator_build.tables["fact_activities"].schema
    ]
    hours = sum(row[columns.index("logged_hours")] or 0.0 for row in fact)
    assert hours == 4.0  # 19: 1.5 + 22: 2.0 + 33: 0.5


def test_marts_equal_the_duckdb_build_row_for_row(
    emulator_build: EmulatorBuild, built_warehouse: Warehouse
) -> None:
    duckdb_marts = built_warehouse.snapshot()
    for mart in MARTS:
        assert comparable(emulator_build.marts[mart]) == comparable(duckdb_marts[mart]), mart


def test_fact_is_day_partitioned_on_event_timestamp_and_clustered(
    emulator_build: EmulatorBuild,
) -> None:
    fact = emulator_build.tables["fact_activities"]
    assert fact.time_partitioning is not None
    assert fact.time_partitioning.type_ == "DAY"
    assert fact.time_partitioning.field == "event_timestamp"
    assert fact.clustering_fields == ["user_id", "event_type"]
    raw_events = emulator_build.tables["raw_events"]
    assert raw_events.time_partitioning is not None
    assert (raw_events.time_partitioning.type_, raw_events.time_partitioning.field) == (
        "DAY",
        "event_date",
    )
    assert raw_events.clustering_fields == ["user_id", "event_type"]


def fact_rows(warehouse: EmulatorWarehouse, numbers: list[int]) -> list[tuple[Any, ...]]:
    ids = ", ".join(f"'{event_uuid(number)}'" for number in numbers)
    return warehouse.query(
        "select event_id, activity_date, is_late_arrival "
        f"from `{PROJECT}.{DATASET}_marts.fact_activities` "
        f"where event_id in ({ids}) order by event_id"
    )


def test_insert_overwrite_of_the_lookback_window_picks_up_late_events(
    emulator_build: EmulatorBuild, emulator_warehouse: EmulatorWarehouse
) -> None:
    warehouse = emulator_warehouse
    assert emulator_build.result.success
    # Saturday: a login (36), a comment (37) and 1 h billable (38) from Wednesday the 6th,
    # and a comment from Monday the 4th (39), outside the window 03-06..03-09
    write_batch(warehouse.lake_root, LATE_EVENTS, "part-1.parquet")
    write_batch(warehouse.lake_root, TOO_LATE_EVENTS, "part-2.parquet")
    assert warehouse.load_new_lake_files() == len(LATE_EVENTS) + len(TOO_LATE_EVENTS)

    result = warehouse.dbt(
        "build",
        "--select",
        "stg_orangescrum__events fact_activities+",
        run_date=SATURDAY,
        check=False,
    )
    statuses = {r.node.unique_id: (str(r.status), r.failures) for r in result.result.results}
    assert statuses["model.orangescrum.fact_activities"] == ("success", None)
    # 39 is five days late: the static partitions 03-06..03-09 were overwritten, 03-04 kept
    # as it was, so the reconciliation test reports exactly that one event
    assert statuses[RECONCILIATION_TEST] == ("fail", 1)
    assert fact_rows(warehouse, [36, 37, 38, 39]) == [
        (event_uuid(36), date(2024, 3, 9), False),
        (event_uuid(37), date(2024, 3, 6), True),
        (event_uuid(38), date(2024, 3, 6), True),
    ]
    fact = f"`{PROJECT}`.`{DATASET}_marts`.`fact_activities`"
    assert warehouse.query(f"select count(*) from {fact}") == [(38,)]
    # every day outside the window still holds its Friday rows, none duplicated
    per_day = dict(
        warehouse.query(f"select activity_date, count(*) from {fact} group by activity_date")
    )
    friday = Counter(event.event_timestamp.date() for event in EVENTS)
    assert per_day == {
        day: friday[day] + (2 if day == date(2024, 3, 6) else 0) for day in friday
    } | {date(2024, 3, 9): 1}
    # the table was merged into, not recreated: partitioning and clustering are still there
    table = warehouse.table("fact_activities")
    assert table.time_partitioning is not None
    assert table.time_partitioning.field == "event_timestamp"
    assert table.clustering_fields == ["user_id", "event_type"]
