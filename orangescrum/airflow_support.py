"""What the Airflow DAGs in dags/ share: paths, Cosmos configs, defaults, alerts.

DAG files stay short declarations; everything they have in common lives here (the cosmos-demo
`include/` layout). Imports are cheap on purpose: Airflow, Cosmos, Spark and dbt are imported
inside the functions that need them, so the DAG processor pays only for what a DAG uses and
the `orangescrum airflow` CLI can read the paths below without starting Airflow.

Settings (orangescrum/core/settings.py) the DAGs read:

- ORANGESCRUM_DBT_TARGET       dev (DuckDB, default) or prod (BigQuery): picks the dbt target,
                               and whether warehouse tasks must be serialized (DuckDB only).
- ORANGESCRUM_DBT_MANIFEST_PATH  prebuilt manifest.json the dbt graph is rendered from
                               (default dbt_project/target/manifest.json; build it with
                               `orangescrum airflow manifest`).
- ORANGESCRUM_DBT_SELECT       dbt selectors (space-separated) the dbt DAG renders, e.g.
                               "staging marts"; unset = the whole project.
- ORANGESCRUM_ALERT_EMAIL      comma-separated recipients of run success/failure mails, sent
                               through Airflow's [smtp] settings (AIRFLOW__SMTP__SMTP_HOST, ...).
                               Unset: each notification is one log line instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orangescrum import REPO_ROOT
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.settings import Settings, WarehouseTarget, load_settings

if TYPE_CHECKING:
    from airflow.sdk import Asset
    from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig

log = logging.getLogger(__name__)

DBT_PROJECT_NAME = "orangescrum"
DBT_PROFILE_NAME = "orangescrum"
MANIFEST_ENV = "ORANGESCRUM_DBT_MANIFEST_PATH"
SELECT_ENV = "ORANGESCRUM_DBT_SELECT"
ALERT_EMAIL_ENV = "ORANGESCRUM_ALERT_EMAIL"
DAGS_FOLDER = REPO_ROOT / "dags"

# The team that answers for every task; the same name owns every dbt model (dbt group and
# meta.owner, which Cosmos turns into the owner of the tasks it renders).
OWNER = "analytics_engineering"
# DuckDB takes one writer at a time: every task that opens the warehouse file runs in this
# one-slot pool (created by `orangescrum airflow standalone`, or `airflow pools set`).
DUCKDB_POOL = "orangescrum_duckdb"
DUCKDB_POOL_DESCRIPTION = "DuckDB is single-writer: one warehouse task at a time"
DEFAULT_POOL = "default_pool"
TAGS = ("orangescrum",)

# Per-task time limits: generous multiples of what each step takes on the demo data, short
# enough that a hung task frees the pool (and the DuckDB lock) well before the next run.
DBT_NODE_TIMEOUT = timedelta(minutes=20)
FRESHNESS_TIMEOUT = timedelta(minutes=5)
WAREHOUSE_LOAD_TIMEOUT = timedelta(minutes=5)
STREAM_TIMEOUT = timedelta(minutes=12)  # < the 15-minute ingest schedule
COMPACTION_TIMEOUT = timedelta(hours=1)
MAINTENANCE_TIMEOUT = timedelta(minutes=15)


# --- settings and paths ---------------------------------------------------------------------
def manifest_path() -> Path:
    """Where the prebuilt dbt manifest is read from (ORANGESCRUM_DBT_MANIFEST_PATH)."""
    return load_settings().dbt_manifest_file


def require_manifest(path: Path) -> Path:
    if not path.is_file():
        raise OrangeScrumError(
            f"dbt manifest not found at {path}: run `orangescrum airflow manifest` to build it "
            f"(or point {MANIFEST_ENV} at an existing manifest.json)."
        )
    return path


def dbt_target_path(settings: Settings, owner: str) -> Path:
    """A dbt target folder of one DAG's own (not dbt_project/target, which others share).

    Kept between runs so dbt parses partially (seconds instead of a cold parse); safe because
    each owner runs one dbt command at a time (max_active_runs=1, the warehouse pool).
    """
    return settings.data_dir / "airflow-dbt" / owner


def dbt_selection() -> list[str]:
    """The dbt DAG's node selection from ORANGESCRUM_DBT_SELECT (empty: everything)."""
    return load_settings().dbt_select.split()


def lake_asset(settings: Settings) -> Asset:
    """The lake's raw events as the warehouse sees them; ingest updates it, dbt consumes it."""
    from airflow.sdk import Asset

    location = settings.lake.raw_events
    uri = location if "://" in location else Path(location).as_uri()
    return Asset(uri=uri, group="orangescrum")


# --- DuckDB serialization -------------------------------------------------------------------
def is_single_writer(settings: Settings) -> bool:
    return settings.dbt_target == WarehouseTarget.DEV


def warehouse_pool(settings: Settings) -> str:
    """Pool of tasks that open the warehouse: the one-slot pool on DuckDB, else the default."""
    return DUCKDB_POOL if is_single_writer(settings) else DEFAULT_POOL


def warehouse_max_active_tasks(settings: Settings) -> int:
    """DAG-level concurrency of DAGs that write the warehouse (1 on DuckDB)."""
    return 1 if is_single_writer(settings) else 8


# --- defaults and notifications -------------------------------------------------------------
class RunNotifier:
    """One message per DAG run outcome: a mail when ORANGESCRUM_ALERT_EMAIL is set, else a log.

    A DAG-level callback (run by the DAG processor). A plain callable rather than Airflow's
    BaseNotifier, which needs a template environment `dag.test()` does not provide. A broken
    mail server never fails or hides the run: the error is logged with the undelivered message.
    """

    def __init__(self, outcome: str) -> None:
        self.outcome = outcome

    def __call__(self, context: Any) -> None:
        subject, body = describe_run(context, self.outcome)
        recipients = alert_recipients()
        if not recipients:
            level = logging.WARNING if self.outcome == "failed" else logging.INFO
            log.log(level, "orangescrum alert (%s unset): %s | %s", ALERT_EMAIL_ENV, subject, body)
            return
        try:
            from airflow.utils.email import send_email

            send_email(recipients, subject, f"<pre>{body}</pre>")
            log.info("orangescrum alert mailed to %s: %s", ", ".join(recipients), subject)
        except Exception:
            log.exception("orangescrum alert could not be mailed: %s | %s", subject, body)


def alert_recipients() -> list[str]:
    raw = load_settings().alert_email
    return [address.strip() for address in raw.split(",") if address.strip()]


def describe_run(context: Any, outcome: str) -> tuple[str, str]:
    """Subject and body of a run notification, from a DAG callback's context.

    Airflow gives DAG callbacks the DAG, the run id, the reason and, when it has one, the
    last task instance of the run (the failed one on failure).
    """
    dag_id = getattr(context.get("dag"), "dag_id", "?")
    run_id = context.get("run_id") or getattr(context.get("dag_run"), "run_id", "?")
    subject = f"[orangescrum] {dag_id} {outcome}: {run_id}"
    lines = [f"DAG {dag_id}, run {run_id}: {outcome}."]
    if reason := context.get("reason"):
        lines.append(f"Reason: {reason}.")
    task_instance = context.get("ti") or context.get("task_instance")
    if task_instance is not None:
        lines.append(f"Last task: {task_instance.task_id}.")
    return subject, " ".join(lines)


def default_args(**overrides: Any) -> dict[str, Any]:
    """Task defaults for every DAG: owner, retries with backoff, a default time limit."""
    return {
        "owner": OWNER,
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": 2.0,  # 1, 2, 4... minutes, capped below
        "max_retry_delay": timedelta(minutes=10),
        "execution_timeout": timedelta(minutes=30),
    } | overrides


def dag_kwargs(
    *, tags: Sequence[str], max_active_tasks: int = 16, **overrides: Any
) -> dict[str, Any]:
    """DAG arguments every OrangeScrum DAG shares (one run at a time, no catch-up, alerts)."""
    return {
        "start_date": datetime(2024, 1, 1, tzinfo=UTC),
        "catchup": False,
        "max_active_runs": 1,
        "max_active_tasks": max_active_tasks,
        "default_args": default_args(),
        "tags": [*TAGS, *tags],
        "on_success_callback": RunNotifier("succeeded"),
        "on_failure_callback": RunNotifier("failed"),
    } | overrides


# --- Cosmos ---------------------------------------------------------------------------------
def profile_config(settings: Settings) -> ProfileConfig:
    """profiles/profiles.yml; ORANGESCRUM_DBT_TARGET picks the DuckDB or BigQuery output."""
    from cosmos import ProfileConfig

    return ProfileConfig(
        profile_name=DBT_PROFILE_NAME,
        target_name=settings.dbt_target.value,
        profiles_yml_filepath=settings.dbt_profiles_dir / "profiles.yml",
    )


def project_config(
    settings: Settings, project_dir: Path | None = None, manifest: Path | None = None
) -> ProjectConfig:
    """The dbt project, rendered from its prebuilt manifest; env carries the lake/warehouse."""
    from cosmos import ProjectConfig

    return ProjectConfig(
        dbt_project_path=project_dir or settings.dbt_project_dir,
        manifest_path=require_manifest(manifest or manifest_path()),
        project_name=DBT_PROJECT_NAME,
        install_dbt_deps=False,
        env_vars=settings.dbt_env(),
    )


def execution_config() -> ExecutionConfig:
    """dbt runs in the task's own process (dbtRunner): no subprocess, no dbt deps."""
    from cosmos import ExecutionConfig, ExecutionMode, InvocationMode

    return ExecutionConfig(
        execution_mode=ExecutionMode.LOCAL, invocation_mode=InvocationMode.DBT_RUNNER
    )


def render_config(select: Sequence[str] = ()) -> RenderConfig:
    """One `dbt build` task per model (the model, then its tests, in one dbt invocation),
    from the manifest (no dbt at parse). A failing test fails its model's task and stops what
    is downstream, as separate run and test tasks would, with half the tasks; tests with
    two parent models get a task of their own after both."""
    from cosmos import LoadMode, RenderConfig, TestBehavior

    return RenderConfig(
        load_method=LoadMode.DBT_MANIFEST,
        test_behavior=TestBehavior.BUILD,
        select=list(select),
        # Exposures document the dashboards; there is nothing to run for them.
        exclude=["resource_type:exposure"],
        should_detach_multiple_parents_tests=True,
        # Cosmos' per-model Assets would name DuckDB files; the lake Asset is the contract.
        emit_datasets=False,
    )


# dbt flags of every model/test task. --no-write-json: each task runs in a temporary copy of
# the project that Cosmos deletes when dbt returns, and no reader of its manifest.json,
# run_results.json or graph.gpickle is configured (no OpenLineage provider, no run results to
# XCom, no artifact upload), so writing them (the manifest twice per task) was pure CPU. The
# partial-parse cache (partial_parse.msgpack) and compiled SQL are written regardless. Not for
# source_freshness: Cosmos reads its sources.json.
DBT_TASK_GLOBAL_FLAGS = ("--no-write-json",)


def dbt_operator_args(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Arguments every Cosmos dbt task gets: the warehouse pool, a time limit, dbt flags."""
    return {
        "install_deps": False,
        "pool": warehouse_pool(settings),
        "execution_timeout": DBT_NODE_TIMEOUT,
        "dbt_cmd_global_flags": list(DBT_TASK_GLOBAL_FLAGS),
    } | overrides


def dbt_dag(
    dag_id: str,
    *,
    schedule: Any,
    settings: Settings | None = None,
    project_dir: Path | None = None,
    manifest: Path | None = None,
    select: Sequence[str] | None = None,
    tags: Sequence[str] = ("dbt",),
    doc_md: str | None = None,
    **dag_overrides: Any,
) -> Any:
    """The dbt graph as a Cosmos DbtDag, with `dbt source freshness` gating every model.

    project_dir/manifest/select default to the repository's project, ORANGESCRUM_DBT_MANIFEST_PATH
    and ORANGESCRUM_DBT_SELECT; tests pass a copy of the project to exercise failures.
    """
    from cosmos import DbtDag, InvocationMode
    from cosmos.operators.local import DbtSourceLocalOperator

    settings = settings or load_settings()
    project = project_config(settings, project_dir, manifest)
    profile = profile_config(settings)
    dag = DbtDag(
        # dbt / Cosmos
        project_config=project,
        profile_config=profile,
        execution_config=execution_config(),
        render_config=render_config(dbt_selection() if select is None else select),
        operator_args=dbt_operator_args(settings),
        # Airflow
        **dag_kwargs(
            dag_id=dag_id,
            schedule=schedule,
            tags=tags,
            max_active_tasks=warehouse_max_active_tasks(settings),
            dagrun_timeout=timedelta(hours=2),
            doc_md=doc_md,
            **dag_overrides,
        ),
    )
    roots = list(dag.roots)
    freshness = DbtSourceLocalOperator(
        # Same partial-parse cache as the model tasks: the first dbt parse of a run seeds it.
        cache_dir=getattr(roots[0], "cache_dir", None) if roots else None,
        task_id="source_freshness",
        dag=dag,
        project_dir=str(project.dbt_project_path),
        manifest_filepath=str(project.manifest_path),
        profile_config=profile,
        invocation_mode=InvocationMode.DBT_RUNNER,
        install_deps=False,
        env=settings.dbt_env(),
        emit_datasets=False,
        pool=warehouse_pool(settings),
        execution_timeout=FRESHNESS_TIMEOUT,
        doc_md="`dbt source freshness`: stale raw data fails the run before any model builds.",
    )
    for root in roots:
        freshness >> root
    return dag


def dbt_task_group(
    group_id: str,
    settings: Settings,
    *,
    select: Sequence[str],
    dbt_vars: dict[str, str] | None = None,
    unit_tests: bool = True,
) -> Any:
    """A Cosmos task group of the selected models (a `dbt build` task each), inside a DAG
    context. `unit_tests=False` leaves the models' unit tests to CI."""
    from cosmos import DbtTaskGroup

    overrides: dict[str, Any] = {"vars": dbt_vars} if dbt_vars else {}
    if not unit_tests:
        overrides["dbt_cmd_flags"] = ["--exclude-resource-type", "unit_test"]
    return DbtTaskGroup(
        group_id=group_id,
        project_config=project_config(settings),
        profile_config=profile_config(settings),
        execution_config=execution_config(),
        render_config=render_config(select),
        operator_args=dbt_operator_args(settings, **overrides),
    )


# --- helpers the tasks call -----------------------------------------------------------------
def run_moment(context: Any) -> datetime:
    """When a run is "as of": its logical date, or when it was due for runs without one."""
    moment = context.get("logical_date") or context["dag_run"].run_after
    return moment.astimezone(UTC)


def processing_day(context: Any) -> date:
    """The day a daily run processes: the day before its logical date (UTC)."""
    return run_moment(context).date() - timedelta(days=1)
