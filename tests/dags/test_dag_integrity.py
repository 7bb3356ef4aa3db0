"""Every DAG parses without starting a process, is tagged, owned, retried and time-limited;
the dbt graph is exact."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orangescrum import airflow_support as support
from tests.dags.conftest import DAG_IDS, parse_dags

DBT_WRITERS = {"orangescrum_dbt", "orangescrum_spark_batch"}


@pytest.fixture(scope="module")
def dag_env(manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {
        "ORANGESCRUM_DBT_MANIFEST_PATH": str(manifest),
        "ORANGESCRUM_DATA_DIR": str(tmp_path_factory.mktemp("integrity")),
    }


@pytest.fixture(scope="module")
def bag(dag_env: dict[str, str]) -> Any:
    return parse_dags(dag_env)


@pytest.fixture(scope="module")
def manifest_models(manifest: Path) -> dict[str, dict[str, Any]]:
    nodes = json.loads(manifest.read_text())["nodes"]
    return {node["name"]: node for node in nodes.values() if node["resource_type"] == "model"}


def test_every_dag_file_imports_without_errors(bag) -> None:
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == sorted(DAG_IDS)


def test_parsing_the_dag_files_starts_no_process(
    dag_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What keeps the DAG processor's parse cheap (it re-parses every file every few minutes):
    Cosmos renders the dbt graph from the manifest, never `dbt ls`, and no DAG file starts a
    process at import. Asserted on what the parse does, not on how long it took."""
    started: list[Any] = []
    popen_init = subprocess.Popen.__init__

    def recording_init(self: subprocess.Popen, args: Any, *rest: Any, **options: Any) -> None:
        started.append(args)
        popen_init(self, args, *rest, **options)

    monkeypatch.setattr(subprocess.Popen, "__init__", recording_init)
    bag = parse_dags(dag_env)
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == sorted(DAG_IDS)
    assert started == []


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_dag_is_tagged_owned_retried_and_time_limited(bag, dag_id: str) -> None:
    dag = bag.get_dag(dag_id)
    assert "orangescrum" in dag.tags and len(dag.tags) >= 2
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert dag.dagrun_timeout is not None
    assert dag.on_failure_callback and dag.on_success_callback
    for task in dag.tasks:
        assert task.owner == support.OWNER, task.task_id
        assert task.retries >= 1, task.task_id
        assert task.execution_timeout is not None, task.task_id


def test_schedules(bag) -> None:
    def cron(dag_id: str) -> str:
        timetable = bag.get_dag(dag_id).timetable
        assert str(timetable.timezone) in {"UTC", "Timezone('UTC')"}
        return timetable.expression

    assert cron("orangescrum_ingest") == "*/15 * * * *"
    assert cron("orangescrum_spark_batch") == "0 2 * * *"  # 02:00 UTC
    assert cron("orangescrum_maintenance") == "0 3 * * *"  # after the batch


def test_dbt_dag_runs_when_ingest_publishes_the_lake_asset(bag) -> None:
    (outlet,) = bag.get_dag("orangescrum_ingest").get_task("load_raw_events").outlets
    dbt_schedule = bag.get_dag("orangescrum_dbt").timetable.asset_condition
    assert list(dbt_schedule.objects) == [outlet]
    assert outlet.uri.startswith("file:///") and outlet.uri.endswith("/lake/raw/events")


def test_duckdb_writers_are_serialized(bag) -> None:
    for dag_id in DBT_WRITERS:
        dag = bag.get_dag(dag_id)
        assert dag.max_active_tasks == 1, dag_id
        dbt_tasks = [task for task in dag.tasks if task.task_id != "compact_yesterday"]
        assert {task.pool for task in dbt_tasks} == {support.DUCKDB_POOL}, dag_id
    ingest = bag.get_dag("orangescrum_ingest")
    assert ingest.get_task("load_raw_events").pool == support.DUCKDB_POOL
    assert ingest.get_task("stream_micro_run").pool == support.DEFAULT_POOL  # no DuckDB there


def test_bigquery_target_lifts_the_serialization(dag_env) -> None:
    dag = parse_dags(dag_env | {"ORANGESCRUM_DBT_TARGET": "prod"}).get_dag("orangescrum_dbt")
    assert dag.max_active_tasks > 1
    assert {task.pool for task in dag.tasks} == {support.DEFAULT_POOL}
    assert dag.get_task(build_task("stg_orangescrum__events")).profile_config.target_name == "prod"


BUILD_SUFFIX = "_model_build"


def build_task(model: str, group: str = "") -> str:
    """Cosmos' task id of a model's `dbt build` (in a task group: `group.<id>`)."""
    return f"{group}.{model}{BUILD_SUFFIX}" if group else f"{model}{BUILD_SUFFIX}"


def model_of(task_id: str) -> str:
    return task_id.rpartition(".")[2].removesuffix(BUILD_SUFFIX)


def test_cosmos_graph_equals_the_manifest_model_graph(bag, manifest_models) -> None:
    dag = bag.get_dag("orangescrum_dbt")
    build_tasks = {model_of(t.task_id): t for t in dag.tasks if t.task_id.endswith(BUILD_SUFFIX)}
    # Same models, one `dbt build` task each (its tests inside it: no run/test pairs)...
    assert set(build_tasks) == set(manifest_models)
    assert not [t for t in dag.tasks if t.task_id.endswith((".run", ".test"))]
    for name, node in manifest_models.items():
        parents = {
            dep.split(".")[-1] for dep in node["depends_on"]["nodes"] if dep.startswith("model.")
        }
        upstream = build_tasks[name].upstream_task_ids
        # ...same dependencies: a model builds after each parent model's build (its tests
        # included), and models reading only sources after source freshness.
        assert {model_of(task_id) for task_id in upstream} == (parents or {"source_freshness"})
    assert [task.task_id for task in dag.roots] == ["source_freshness"]


def test_multi_parent_tests_run_after_every_parent(bag, manifest) -> None:
    nodes = json.loads(manifest.read_text())["nodes"].values()
    tests = {node["name"]: node for node in nodes if node["resource_type"] == "test"}
    dag = bag.get_dag("orangescrum_dbt")
    detached = [task for task in dag.tasks if task.task_id.endswith("_test")]
    assert detached, "relationships tests have two parents and get their own task"
    for task in detached:
        node = tests[task.task_id.removesuffix("_test")]
        parents = {
            dep.split(".")[-1] for dep in node["depends_on"]["nodes"] if dep.startswith("model.")
        }
        assert set(task.upstream_task_ids) == {build_task(parent) for parent in parents}


def test_spark_batch_rebuilds_staging_and_downstream_after_compaction(bag) -> None:
    dag = bag.get_dag("orangescrum_spark_batch")
    run_tasks = {model_of(t.task_id) for t in dag.tasks if t.task_id.endswith(BUILD_SUFFIX)}
    assert run_tasks == {
        "stg_orangescrum__events",
        "int_users_state_history",
        "int_projects_state_history",
        "int_tasks_state_history",
        "int_project_memberships",
        "int_tasks_cycle_times",
        "int_users_daily_activity",
        "int_projects_daily_activity",
        "int_project_tasks",
        "dim_users",
        "dim_projects",
        "dim_tasks",
        "dim_companies",
        "fact_activities",
        "fact_time_entries",
        "agg_daily_metrics",
        "agg_daily_company_metrics",
        "dim_users_history",
        "dim_projects_history",
        "dim_tasks_history",
    }
    first = dag.get_task(build_task("stg_orangescrum__events", "rebuild_marts"))
    assert first.upstream_task_ids == {"compact_yesterday"}
    assert first.vars == {"run_date": "{{ ti.xcom_pull(task_ids='compact_yesterday') }}"}
    # unit tests run in CI, not every night against the warehouse
    assert "--exclude-resource-type" in first.dbt_cmd_flags


def test_dbt_tasks_write_no_json_artifacts_but_freshness_does(bag) -> None:
    # Cosmos deletes each task's project copy; only source_freshness has a reader (its
    # sources.json), so only it writes dbt's JSON artifacts.
    dag = bag.get_dag("orangescrum_dbt")
    for task in dag.tasks:
        flags = task.dbt_cmd_global_flags
        if task.task_id == "source_freshness":
            assert "--no-write-json" not in flags
        else:
            assert "--no-write-json" in flags, task.task_id


def test_selection_env_renders_a_subset(dag_env) -> None:
    selected = dag_env | {"ORANGESCRUM_DBT_SELECT": "stg_orangescrum__events dim_users"}
    dag = parse_dags(selected).get_dag("orangescrum_dbt")
    assert {model_of(t.task_id) for t in dag.tasks if t.task_id.endswith(BUILD_SUFFIX)} == {
        "stg_orangescrum__events",
        "dim_users",
    }


def test_missing_manifest_is_an_import_error_naming_the_fix(dag_env, tmp_path) -> None:
    missing = tmp_path / "nowhere" / "manifest.json"
    bag = parse_dags(dag_env | {"ORANGESCRUM_DBT_MANIFEST_PATH": str(missing)})
    errors = {Path(path).name: message for path, message in bag.import_errors.items()}
    assert set(errors) == {"orangescrum_dbt.py", "orangescrum_spark_batch.py"}
    for message in errors.values():
        assert str(missing) in message
        assert "orangescrum airflow manifest" in message
    # The DAGs without dbt are unaffected.
    assert {"orangescrum_ingest", "orangescrum_maintenance"} <= set(bag.dag_ids)
