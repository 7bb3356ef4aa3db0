"""dbt (Airflow + Cosmos): the dbt graph task by task, a `dbt build` task per model (the model,
then its tests; a test with two parent models gets its own task after both).

Scheduled on the lake Asset the ingest DAG publishes. `source_freshness` runs
`dbt source freshness` first: stale raw data fails the run before any model builds. Rendered
from the prebuilt manifest (ORANGESCRUM_DBT_MANIFEST_PATH, default
dbt_project/target/manifest.json; `orangescrum airflow manifest` builds it). On DuckDB every
task runs in the one-slot `orangescrum_duckdb` pool and the DAG runs one task at a time.
"""

from __future__ import annotations

from orangescrum import airflow_support as support

settings = support.load_settings()

dag = support.dbt_dag(
    "orangescrum_dbt",
    schedule=[support.lake_asset(settings)],
    settings=settings,
    doc_md=__doc__,
)
