"""DuckDB over a lake on GCS: the fixture lake uploaded to fake-gcs-server, then built.

The dev profile registers gcsfs (an fsspec filesystem) on DuckDB's connection when the lake
root is gs://; ORANGESCRUM_GCS_ENDPOINT points it at the emulator, as it points Spark's
gcs-connector there (tests/spark/test_gcs_connector.py). What it does not cover: Google credentials,
and the latency of a real bucket.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyarrow import fs as pafs

from orangescrum.core.lake import filesystem_for
from orangescrum.core.settings import Settings
from tests.conftest import GCS_BUCKET
from tests.dbt.conftest import PII_SALT, Warehouse
from tests.dbt.lake import write_lake

pytestmark = pytest.mark.slow


def test_duckdb_builds_the_marts_from_a_gcs_lake(
    tmp_path: Path, gcs_endpoint: str, built_warehouse: Warehouse
) -> None:
    local_lake = tmp_path / "local-lake"
    write_lake(local_lake)
    gcs, root = filesystem_for(f"gs://{GCS_BUCKET}/prod", gcs_endpoint)
    pafs.copy_files(
        str(local_lake), root, source_filesystem=pafs.LocalFileSystem(),
        destination_filesystem=gcs,
    )  # fmt: skip
    settings = Settings(
        data_dir=tmp_path / "data",
        lake_uri=f"gs://{GCS_BUCKET}/prod",
        gcs_endpoint=gcs_endpoint,
        pii_salt=PII_SALT,  # as the local build it is compared with
        _env_file=None,
    )
    settings.data_dir.mkdir()
    warehouse = Warehouse(settings=settings, target_path=tmp_path / "dbt_target")

    warehouse.dbt("run-operation", "create_raw_events")
    warehouse.dbt("build", "--exclude-resource-type", "unit_test")

    views = warehouse.query(
        "select sql from duckdb_views() where view_name = 'raw_events' "
        "and schema_name = 'orangescrum_dw'"
    )
    assert f"gs://{GCS_BUCKET}/prod/raw/events/" in views[0][0]
    assert warehouse.snapshot() == built_warehouse.snapshot()
