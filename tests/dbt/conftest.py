"""Fixtures for the dbt project: a hand-written lake, a DuckDB warehouse built from it."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from dbt.cli.main import dbtRunnerResult

from orangescrum import REPO_ROOT
from orangescrum.core.settings import Settings
from orangescrum.warehouse.dbt import run_dbt
from tests.dbt.lake import write_lake

# The first week of the fixture history ends on Friday 2024-03-08 (see tests/dbt/lake.py).
FIRST_RUN_DATE = "2024-03-08"
MARTS = (
    "dim_users",
    "dim_projects",
    "dim_tasks",
    "dim_companies",
    "dim_dates",
    "fact_activities",
    "fact_time_entries",
    "agg_daily_metrics",
    "agg_daily_company_metrics",
    "dim_users_history",
    "dim_projects_history",
    "dim_tasks_history",
)


def marts_with_loaded_at() -> frozenset[str]:
    """Marts whose contract has loaded_at, the time of the dbt run that wrote each row: equal
    tables are compared without it. Read from the marts' properties (contracts are enforced,
    so they list every column), so a mart that becomes incremental needs no edit here."""
    names = set()
    for properties in (REPO_ROOT / "dbt_project" / "models" / "marts").glob("*.yml"):
        for model in yaml.safe_load(properties.read_text()).get("models", []):
            if any(column["name"] == "loaded_at" for column in model.get("columns", [])):
                names.add(model["name"])
    return frozenset(names)


INCREMENTAL_MARTS = marts_with_loaded_at()


def mart_content_sql(mart: str, relation: str, exclude_keyword: str = "exclude") -> str:
    """`select *` of a mart minus loaded_at (DuckDB says `exclude`, BigQuery `except`)."""
    if mart in INCREMENTAL_MARTS:
        return f"select * {exclude_keyword} (loaded_at) from {relation}"
    return f"select * from {relation}"


@dataclass(frozen=True)
class Warehouse:
    """A DuckDB warehouse over a lake, and a private dbt target folder for its runs."""

    settings: Settings
    target_path: Path

    @property
    def lake_root(self) -> Path:
        return Path(self.settings.lake_root)

    def dbt(
        self, *args: str, run_date: str = FIRST_RUN_DATE, check: bool = True, **dbt_vars: str
    ) -> dbtRunnerResult:
        """`dbt <args>` on the dev target, as of run_date (the vars the fact's window uses)."""
        return dbt_as_of(self.settings, self.target_path, args, run_date, check, dbt_vars)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        # dbt-duckdb keeps the database open in this process: connect with the same
        # (default) configuration, never read_only, or DuckDB refuses the second handle.
        with duckdb.connect(str(self.settings.duckdb_file)) as connection:
            return connection.execute(sql).fetchall()

    def rows(self, sql: str) -> list[dict[str, Any]]:
        with duckdb.connect(str(self.settings.duckdb_file)) as connection:
            cursor = connection.execute(sql)
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def snapshot(self, models: Sequence[str] = MARTS) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of each mart, sorted: equal snapshots mean identical tables."""
        return {
            model: sorted(
                self.query(mart_content_sql(model, f"orangescrum_dw_marts.{model}")),
                key=lambda row: tuple((value is None, str(value)) for value in row),
            )
            for model in models
        }


def dbt_as_of(
    settings: Settings,
    target_path: Path,
    args: Sequence[str],
    run_date: str,
    check: bool,
    dbt_vars: dict[str, str],
) -> dbtRunnerResult:
    """`dbt <args> --vars {run_date, **dbt_vars}` with the settings' target."""
    all_vars = {"run_date": run_date} | dbt_vars
    return run_dbt(
        settings, [*args, "--vars", json.dumps(all_vars)], target_path=target_path, check=check
    )


# The e-mail hashes in the fixture warehouses are salted with this (ORANGESCRUM_PII_SALT).
PII_SALT = "fixture-salt"


def new_warehouse(root: Path) -> Warehouse:
    """Settings rooted in `root` (lake in root/lake, warehouse in root/warehouse.duckdb)."""
    root.mkdir(parents=True, exist_ok=True)  # DuckDB does not create the file's folder
    settings = Settings(data_dir=root, pii_salt=PII_SALT, _env_file=None)
    return Warehouse(settings=settings, target_path=root / "dbt_target")


@pytest.fixture(scope="session")
def make_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Warehouse]:
    """Factory: a fresh folder with the fixture lake written into it."""

    def make(name: str) -> Warehouse:
        warehouse = new_warehouse(tmp_path_factory.mktemp(name))
        write_lake(warehouse.lake_root)
        return warehouse

    return make


@pytest.fixture(scope="session")
def first_build(
    make_warehouse: Callable[[str], Warehouse],
) -> tuple[Warehouse, dbtRunnerResult]:
    """The fixture lake loaded and `dbt build` run once (models, tests, unit tests)."""
    warehouse = make_warehouse("built")
    warehouse.dbt("run-operation", "create_raw_events")
    return warehouse, warehouse.dbt("build")


@pytest.fixture(scope="session")
def built_warehouse(first_build: tuple[Warehouse, dbtRunnerResult]) -> Warehouse:
    return first_build[0]
