"""The semantic layer's metrics as DuckDB SQL: MetricFlow compiles, the dashboard runs it.

The KPIs are the metrics of dbt_project/models/marts/_marts__metrics.yml, compiled by
MetricFlow's own engine, the one behind `mf query` and `orangescrum metrics query`, so the
dashboard and the command cannot disagree. MetricFlow only compiles here (`explain`): it never
connects to the warehouse; queries.kpis runs the SQL on the dashboard's read-only connection.

The definitions come from dbt's semantic manifest (semantic_manifest.json, written by every
dbt parse or build): `orangescrum dashboard` parses the project before it starts Streamlit and
names the file in ORANGESCRUM_DASHBOARD_SEMANTIC_MANIFEST; without it the page reads
dbt_project/target's (where `mf` reads it too).

No Streamlit here: app.py caches one compiler per manifest version (building one parses the
manifest and takes a moment).
"""

from __future__ import annotations

import datetime as dt
import json
import operator
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from metricflow.data_table.mf_table import MetricFlowDataTable
from metricflow.engine.metricflow_engine import MetricFlowEngine, MetricFlowQueryRequest
from metricflow.protocols.sql_client import SqlClient, SqlEngine
from metricflow.sql.render.duckdb_renderer import DuckDbSqlPlanRenderer
from metricflow.sql.render.sql_plan_renderer import SqlPlanRenderer
from metricflow_semantics.model.dbt_manifest_parser import (
    parse_manifest_from_dbt_generated_manifest,
)
from metricflow_semantics.model.semantic_manifest_lookup import SemanticManifestLookup
from metricflow_semantics.sql.sql_bind_parameters import SqlBindParameterSet

from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.settings import Settings

MANIFEST_NAME = "semantic_manifest.json"
MANIFEST_HINT = (
    "`orangescrum dashboard` writes it (dbt parse) before it starts; "
    "`orangescrum dbt parse` writes dbt_project/target's"
)

NOTHING_TO_RUN = "the dashboard compiles metrics only: it runs their SQL on its own connection"
EMPTY_BINDINGS = SqlBindParameterSet()


class SemanticLayerNotReadyError(OrangeScrumError):
    """No semantic manifest to compile the metrics from, or one MetricFlow cannot read."""


def manifest_file(settings: Settings) -> Path:
    """The manifest the settings name, else dbt_project/target's (`mf`'s own)."""
    configured = settings.dashboard_semantic_manifest.strip()
    if configured:
        return Path(configured)
    return settings.dbt_project_dir / "target" / MANIFEST_NAME


def without_database(manifest: Any) -> Any:
    """The manifest (parsed JSON) with every relation as "schema"."table", no database.

    dbt-duckdb names the database after the warehouse file of the parse ("warehouse" for
    warehouse.duckdb); the dashboard's connection may have opened a file of another name, whose
    database it uses by default.
    """
    if isinstance(manifest, list):
        return [without_database(item) for item in manifest]
    if not isinstance(manifest, dict):
        return manifest
    if {"alias", "schema_name", "relation_name"} <= manifest.keys():
        return manifest | {
            "database": None,
            "relation_name": f'"{manifest["schema_name"]}"."{manifest["alias"]}"',
        }
    return {key: without_database(value) for key, value in manifest.items()}


class _ExplainOnlyClient(SqlClient):
    """The SqlClient MetricFlow needs to compile for DuckDB: a dialect, and nothing to run."""

    @property
    def sql_engine_type(self) -> SqlEngine:
        return SqlEngine.DUCKDB

    @property
    def sql_plan_renderer(self) -> SqlPlanRenderer:
        return DuckDbSqlPlanRenderer()

    def query(
        self, stmt: str, sql_bind_parameter_set: SqlBindParameterSet = EMPTY_BINDINGS
    ) -> MetricFlowDataTable:
        raise NotImplementedError(NOTHING_TO_RUN)

    def execute(
        self, stmt: str, sql_bind_parameter_set: SqlBindParameterSet = EMPTY_BINDINGS
    ) -> None:
        raise NotImplementedError(NOTHING_TO_RUN)

    def dry_run(
        self, stmt: str, sql_bind_parameter_set: SqlBindParameterSet = EMPTY_BINDINGS
    ) -> None:
        raise NotImplementedError(NOTHING_TO_RUN)

    def close(self) -> None:
        pass

    def render_bind_parameter_key(self, bind_parameter_key: str) -> str:
        return f"${bind_parameter_key}"


class MetricCompiler:
    """MetricFlow's engine on one semantic manifest: metrics and filters in, DuckDB SQL out."""

    def __init__(self, manifest_json: str) -> None:
        manifest = parse_manifest_from_dbt_generated_manifest(
            json.dumps(without_database(json.loads(manifest_json)))
        )
        self._engine = MetricFlowEngine(
            semantic_manifest_lookup=SemanticManifestLookup(manifest),
            sql_client=_ExplainOnlyClient(),
        )
        # One compiler serves every browser session (Streamlit threads); MetricFlow's engine
        # keeps plan caches that are not documented as thread-safe.
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: Path) -> MetricCompiler:
        """The compiler of a semantic_manifest.json; one clear sentence when it is unusable."""
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise SemanticLayerNotReadyError(
                f"No semantic manifest at {path}, so the KPIs cannot be computed from the "
                f"semantic layer's metrics: {MANIFEST_HINT}."
            ) from None
        try:
            return cls(text)
        except Exception as error:  # MetricFlow's parse and validation errors share no base
            detail = " ".join(str(error).split())[:300]  # pydantic's errors span lines
            raise SemanticLayerNotReadyError(
                f"MetricFlow cannot read the semantic manifest {path} "
                f"({type(error).__name__}: {detail}): {MANIFEST_HINT}."
            ) from error

    def sql(self, metrics: Sequence[str], where: Sequence[str] = ()) -> str:
        """One row of the metrics over everything `where` keeps (no group by)."""
        request = MetricFlowQueryRequest.create(
            metric_names=list(metrics), where_constraints=list(where) or None
        )
        with self._lock:
            statement = self._engine.explain(request).sql_statement
        if statement.bind_parameter_set.param_items:
            # The filters are rendered into the SQL; a bound parameter would be run unbound.
            raise NotImplementedError(f"MetricFlow bound parameters for {list(metrics)}")
        return statement.sql.strip().rstrip(";")


# --- filters as where constraints ---------------------------------------------------------------
def _day(value: object) -> str:
    # A datetime is a date too: refuse it rather than drop its time silently.
    if type(value) is not dt.date:
        raise TypeError(f"expected a date, got {value!r}")
    return value.isoformat()


def _integer(value: object) -> int:
    # operator.index takes ints (numpy's too) and refuses text and floats; bools are ints
    # Python-wise but never an id.
    if isinstance(value, bool):
        raise TypeError(f"expected an integer id, got {value!r}")
    return operator.index(value)


def filter_constraints(
    start_date: dt.date,
    end_date: dt.date,
    company_id: int | None = None,
    project_id: int | None = None,
) -> list[str]:
    """The dashboard's filters as MetricFlow where constraints (dates inclusive).

    The values are rendered into the constraint text, so each is checked to be a date or an
    integer first: they come from the page's own widgets, never typed by a reader.
    """
    constraints = [
        "{{ TimeDimension('metric_time', 'day') }} "
        f"between '{_day(start_date)}' and '{_day(end_date)}'"
    ]
    if company_id is not None:
        constraints.append(f"{{{{ Entity('company') }}}} = {_integer(company_id)}")
    if project_id is not None:
        constraints.append(f"{{{{ Entity('project') }}}} = {_integer(project_id)}")
    return constraints


def known_user_constraint(unknown_user_id: int) -> str:
    """Events of the unknown member (no known actor) are no user's."""
    return f"{{{{ Entity('user') }}}} <> {_integer(unknown_user_id)}"
