"""Lake maintenance (Airflow), daily 03:00 UTC, after the Spark batch.

archive_raw_partitions   raw days older than `raw_retention_days` whose processed copy is
                         current move to {lake}/archive/ (orangescrum.maintenance.archive_raw).
dead_letter_report       dead letters per day and reason, logged (orangescrum.maintenance).
cleanup                  streaming metrics and local logs older than `cleanup_after_days`, and
                         abandoned checkpoint folders (never the live stream's).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task

from orangescrum import airflow_support as support

# The same defaults as `orangescrum maintenance archive|cleanup`: both read the settings.
_settings = support.load_settings()


@dag(
    dag_id="orangescrum_maintenance",
    schedule="0 3 * * *",
    dagrun_timeout=timedelta(hours=1),
    doc_md=__doc__,
    params={
        "raw_retention_days": Param(
            _settings.raw_retention_days, type="integer", minimum=0, description="Days of raw kept"
        ),
        "cleanup_after_days": Param(
            _settings.metrics_retention_days,
            type="integer",
            minimum=1,
            description="Age of metrics, logs and stale checkpoints removed",
        ),
    },
    **support.dag_kwargs(tags=("maintenance", "lake"), max_active_tasks=1),
)
def orangescrum_maintenance() -> None:
    @task(execution_timeout=support.MAINTENANCE_TIMEOUT)
    def archive_raw_partitions() -> list[str]:
        from orangescrum.maintenance import archive_raw

        context = get_current_context()
        today = support.run_moment(context).date()
        days = archive_raw(support.load_settings(), context["params"]["raw_retention_days"], today)
        return [day.isoformat() for day in days]

    @task(execution_timeout=support.MAINTENANCE_TIMEOUT)
    def dead_letter_report() -> dict[str, int]:
        from orangescrum.maintenance import dead_letter_report as count_dead_letters
        from orangescrum.maintenance import dead_letter_totals

        return dead_letter_totals(count_dead_letters(support.load_settings()))

    @task(execution_timeout=support.MAINTENANCE_TIMEOUT)
    def cleanup() -> dict[str, int]:
        from orangescrum.maintenance import cleanup as prune

        context = get_current_context()
        days = context["params"]["cleanup_after_days"]
        result = prune(support.load_settings(), days, support.run_moment(context))
        return {
            "metrics_files": result.metrics_files,
            "log_files": result.log_files,
            "checkpoints": len(result.checkpoints),
        }

    # Independent steps: one failing does not hold back the others.
    archive_raw_partitions()
    dead_letter_report()
    cleanup()


orangescrum_maintenance()
