"""Lake maintenance on a gs:// lake, through google-cloud-storage, against fake-gcs-server.

What only a bucket has: copies that fail halfway, objects rewritten while being moved, the
server's own object times, gs:// URIs in messages, the CLI on a gs:// lake. The cases a local
and a gs:// lake share (archive decisions and moves, restore, dead-letter report) run on both
in tests/spark/test_maintenance.py. Every test runs with pyarrow's GcsFileSystem made to fail,
so nothing here can reach the bucket through pyarrow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.api_core.exceptions import PreconditionFailed
from google.cloud import storage
from pyarrow import fs as pafs
from typer.testing import CliRunner

from orangescrum import maintenance
from orangescrum.cli.maintenance import maintenance_app
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.lake_store import GcsLakeStore
from orangescrum.core.settings import Settings
from orangescrum.maintenance import (
    archive_raw,
    cleanup_old_metrics,
    open_store,
    restore_archived,
)
from tests.conftest import GCS_BUCKET, gcs_client
from tests.lake_views import PREFIX, gcs_objects, on_gcs, upload_lake
from tests.spark.test_maintenance import TODAY, build_lake, day_ago


@pytest.fixture(autouse=True)
def no_pyarrow_gcs(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("lake maintenance must not use pyarrow's GcsFileSystem")

    monkeypatch.setattr(pafs, "GcsFileSystem", refuse)


@pytest.fixture
def client(gcs_endpoint: str) -> storage.Client:
    return gcs_client(gcs_endpoint)


@pytest.fixture
def gcs_lake(settings: Settings, client: storage.Client, gcs_endpoint: str) -> Settings:
    return upload_lake(build_lake(settings), client, gcs_endpoint)


# --- the store ----------------------------------------------------------------------------------
def test_a_gcs_lake_is_kept_through_google_cloud_storage(gcs_lake: Settings) -> None:
    store, lake = open_store(gcs_lake)

    assert isinstance(store, GcsLakeStore)
    assert lake.root == f"{GCS_BUCKET}/{PREFIX}"
    with pytest.raises(AssertionError, match="pyarrow"):
        gcs_lake.lake.open()  # the pyarrow route is closed for every test in this module


FailAt = tuple[type, str, int]


@pytest.mark.parametrize(
    ("fail_at", "raw_left", "archived_first"),
    [
        # The second copy fails: the first file moved, the second never left raw/.
        ((storage.Blob, "rewrite", 2), [1], [0]),
        # The first delete fails: its copy exists, and so does its source.
        ((storage.Bucket, "delete_blob", 1), [0, 1], [0]),
    ],
    ids=["crash-while-copying", "crash-before-deleting"],
)
def test_archive_after_a_crash_halfway_moves_what_is_left(
    gcs_lake: Settings,
    client: storage.Client,
    monkeypatch: pytest.MonkeyPatch,
    fail_at: FailAt,
    raw_left: list[int],
    archived_first: list[int],
) -> None:
    before = gcs_objects(client, "raw")
    oldest = day_ago(40)
    names = sorted(before[oldest])
    owner, method, failing_call = fail_at
    original = getattr(owner, method)
    monkeypatch.setattr(owner, method, crash_on_call(original, failing_call))

    with pytest.raises(ConnectionError):
        archive_raw(gcs_lake, 3, TODAY)

    assert gcs_objects(client, "raw")[oldest] == {
        names[i]: before[oldest][names[i]] for i in raw_left
    }
    assert gcs_objects(client, "archive/raw") == {
        oldest: {names[i]: before[oldest][names[i]] for i in archived_first}
    }

    monkeypatch.setattr(owner, method, original)  # the machine is back
    assert archive_raw(gcs_lake, 3, TODAY) == [oldest, day_ago(5)]

    assert gcs_objects(client, "archive/raw") == {d: before[d] for d in (oldest, day_ago(5))}
    assert oldest not in gcs_objects(client, "raw")


def crash_on_call(original: Callable[..., Any], failing_call: int) -> Callable[..., Any]:
    calls = 0

    def maybe_crash(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == failing_call:
            raise ConnectionError("machine lost mid-archive")
        return original(*args, **kwargs)

    return maybe_crash


def test_a_file_rewritten_while_being_moved_stays_for_the_next_run(
    gcs_lake: Settings, client: storage.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = gcs_objects(client, "raw")
    oldest = day_ago(40)
    first = sorted(before[oldest])[0]
    original = storage.Blob.rewrite

    # fake-gcs-server ignores generation preconditions: GCS's answer is simulated.
    def changed_meanwhile(target: storage.Blob, source: storage.Blob, **kwargs: Any) -> Any:
        if source.name == f"{PREFIX}/raw/events/event_date={oldest}/{first}":
            raise PreconditionFailed("source generation changed")
        return original(target, source, **kwargs)

    monkeypatch.setattr(storage.Blob, "rewrite", changed_meanwhile)
    assert archive_raw(gcs_lake, 3, TODAY) == [oldest, day_ago(5)]
    assert gcs_objects(client, "raw")[oldest] == {first: before[oldest][first]}

    monkeypatch.setattr(storage.Blob, "rewrite", original)
    assert archive_raw(gcs_lake, 3, TODAY) == [oldest]
    assert gcs_objects(client, "archive/raw")[oldest] == before[oldest]
    assert oldest not in gcs_objects(client, "raw")


def test_archive_leaves_a_file_being_written_and_clears_a_dead_writers(
    gcs_lake: Settings, client: storage.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_flight = ".part-b-b0000000007-t00000.parquet.0a1b.tmp"
    blob = client.bucket(GCS_BUCKET).blob(
        f"{PREFIX}/raw/events/event_date={day_ago(5)}/{in_flight}"
    )
    blob.upload_from_string(b"being written")
    blob.reload()
    # Ages come from Python's clock (a test may shift it), object times from the server's.
    skew = datetime.now(UTC) - blob.updated
    monkeypatch.setattr(maintenance, "STALE_TEMP_AGE", skew + timedelta(hours=1))

    archive_raw(gcs_lake, 3, TODAY)

    assert gcs_objects(client, "raw")[day_ago(5)] == {in_flight: b"being written"}
    assert len(gcs_objects(client, "archive/raw")[day_ago(5)]) == 2

    # An hour on, the writer is dead: its temp file goes and the day leaves raw/.
    monkeypatch.setattr(maintenance, "STALE_TEMP_AGE", skew - timedelta(seconds=1))
    assert archive_raw(gcs_lake, 3, TODAY) == [day_ago(5)]
    assert day_ago(5) not in gcs_objects(client, "raw")


# --- restore ------------------------------------------------------------------------------------
def test_restore_of_a_day_not_archived_names_the_gs_uri(gcs_lake: Settings) -> None:
    with pytest.raises(OrangeScrumError) as error:
        restore_archived(gcs_lake, day_ago(6))

    uri = f"gs://{GCS_BUCKET}/{PREFIX}/archive/raw/events/event_date={day_ago(6)}"
    assert f"{uri} holds no Parquet file" in str(error.value)


# --- cleanup ------------------------------------------------------------------------------------
def test_cleanup_deletes_exactly_the_old_metrics_files(
    settings: Settings, client: storage.Client, gcs_endpoint: str
) -> None:
    gcs = on_gcs(settings, gcs_endpoint)
    bucket = client.bucket(GCS_BUCKET)

    def write(name: str) -> storage.Blob:
        blob = bucket.blob(f"{PREFIX}/raw/metrics/{name}")
        blob.upload_from_string(b"x")
        blob.reload()
        return blob

    old = [write("metrics-a-b0.parquet"), write("metrics-a-b1.parquet")]
    time.sleep(0.01)
    new = write("metrics-a-b2.parquet")
    assert new.updated > old[-1].updated
    # The server sets the times; "now" puts the 30-day cutoff between the two writes.
    cutoff = old[-1].updated + (new.updated - old[-1].updated) / 2
    now = cutoff + timedelta(days=30)

    assert cleanup_old_metrics(gcs, 30, now) == 2

    remaining = [b.name for b in client.list_blobs(GCS_BUCKET, prefix=f"{PREFIX}/raw/metrics/")]
    assert remaining == [f"{PREFIX}/raw/metrics/metrics-a-b2.parquet"]
    assert cleanup_old_metrics(gcs, 30, now) == 0


# --- CLI ----------------------------------------------------------------------------------------
def test_cli_archive_then_restore(
    gcs_lake: Settings, gcs_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORANGESCRUM_DATA_DIR", str(gcs_lake.data_dir))
    monkeypatch.setenv("ORANGESCRUM_LAKE_URI", gcs_lake.lake_uri)
    monkeypatch.setenv("ORANGESCRUM_GCS_ENDPOINT", gcs_endpoint)
    runner = CliRunner()

    archived = runner.invoke(
        maintenance_app, ["archive", "--older-than", "3", "--as-of", "2026-11-24"]
    )
    restored = runner.invoke(maintenance_app, ["restore", "--date", "2026-11-19"])

    assert archived.exit_code == 0, archived.output
    assert "archived 2 raw day(s): 2026-10-15, 2026-11-19" in archived.output
    assert restored.exit_code == 0, restored.output
    assert f"restored 2 file(s) of 2026-11-19 to gs://{GCS_BUCKET}/{PREFIX}/raw/events" in " ".join(
        restored.output.split()
    )
