"""Lake maintenance on a gs:// lake, through google-cloud-storage, against fake-gcs-server.

The lake is the one tests/spark/test_maintenance.py builds locally, uploaded object by object;
the operations and their expected outcomes are the same. Every test runs with pyarrow's
GcsFileSystem made to fail, so nothing here can reach the bucket through pyarrow.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
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
    ArchiveDecision,
    DeadLetterCount,
    archive_decisions,
    archive_raw,
    cleanup_old_metrics,
    dead_letter_report,
    open_store,
    restore_archived,
)
from tests.conftest import GCS_BUCKET, gcs_client
from tests.spark.test_maintenance import TODAY, build_lake, day_ago, land_dead_letters

PREFIX = "prod"
AGES = (0, 1, 2, 5, 6, 7, 40)

Objects = dict[date, dict[str, bytes]]


@pytest.fixture(autouse=True)
def no_pyarrow_gcs(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("lake maintenance must not use pyarrow's GcsFileSystem")

    monkeypatch.setattr(pafs, "GcsFileSystem", refuse)


@pytest.fixture
def client(gcs_endpoint: str) -> storage.Client:
    return gcs_client(gcs_endpoint)


def upload_lake(settings: Settings, client: storage.Client, endpoint: str) -> Settings:
    """Copy the local lake to gs://GCS_BUCKET/PREFIX, drop the local copy; gs:// settings."""
    root = Path(settings.lake_root)
    bucket = client.bucket(GCS_BUCKET)
    for path in sorted(root.rglob("*")):
        if path.is_file():
            bucket.blob(f"{PREFIX}/{path.relative_to(root)}").upload_from_filename(path)
    shutil.rmtree(root)  # nothing can be read from a local copy by mistake
    return on_gcs(settings, endpoint)


def on_gcs(settings: Settings, endpoint: str) -> Settings:
    return settings.model_copy(
        update={"lake_uri": f"gs://{GCS_BUCKET}/{PREFIX}", "gcs_endpoint": endpoint}
    )


@pytest.fixture
def gcs_lake(settings: Settings, client: storage.Client, gcs_endpoint: str) -> Settings:
    return upload_lake(build_lake(settings), client, gcs_endpoint)


def objects(client: storage.Client, zone: str) -> Objects:
    """Per day, name -> bytes of the objects under PREFIX/{zone}/events/ ("raw", "archive/raw")."""
    prefix = f"{PREFIX}/{zone}/events/"
    found: Objects = {}
    for blob in client.list_blobs(GCS_BUCKET, prefix=prefix):
        folder, _, name = blob.name.removeprefix(prefix).partition("/")
        day = date.fromisoformat(folder.removeprefix("event_date="))
        found.setdefault(day, {})[name] = blob.download_as_bytes()
    return found


# --- the store ----------------------------------------------------------------------------------
def test_a_gcs_lake_is_kept_through_google_cloud_storage(gcs_lake: Settings) -> None:
    store, lake = open_store(gcs_lake)

    assert isinstance(store, GcsLakeStore)
    assert lake.root == f"{GCS_BUCKET}/{PREFIX}"
    with pytest.raises(AssertionError, match="pyarrow"):
        gcs_lake.lake.open()  # the pyarrow route is closed for every test in this module


# --- archive ------------------------------------------------------------------------------------
def test_archive_decisions_explain_every_day(gcs_lake: Settings) -> None:
    assert archive_decisions(gcs_lake, older_than_days=3, today=TODAY) == [
        ArchiveDecision(day_ago(40), True, "40 days old, processed copy current"),
        ArchiveDecision(
            day_ago(7),
            False,
            "processed copy is stale (1 raw file(s) landed after it): compact it again",
        ),
        ArchiveDecision(day_ago(6), False, "no processed copy: compact it first"),
        ArchiveDecision(day_ago(5), True, "5 days old, processed copy current"),
        ArchiveDecision(day_ago(2), False, "within 3 days"),
        ArchiveDecision(day_ago(1), False, "still being written"),
        ArchiveDecision(day_ago(0), False, "still being written"),
    ]


@pytest.mark.parametrize(
    ("older_than", "archived_ages"),
    [(3, [40, 5]), (5, [40]), (0, [40, 5, 2]), (60, [])],
)
def test_archive_moves_only_old_days_with_a_current_processed_copy(
    gcs_lake: Settings, client: storage.Client, older_than: int, archived_ages: list[int]
) -> None:
    before = objects(client, "raw")
    assert sorted(before) == sorted(day_ago(age) for age in AGES)

    archived = archive_raw(gcs_lake, older_than, TODAY)

    moved = [day_ago(age) for age in archived_ages]
    assert archived == moved
    # Byte for byte, under the same names: raw keeps the rest, archive holds exactly the moved.
    assert objects(client, "raw") == {d: f for d, f in before.items() if d not in moved}
    assert objects(client, "archive/raw") == {d: before[d] for d in moved}


def test_archive_dry_run_moves_nothing(gcs_lake: Settings, client: storage.Client) -> None:
    before = objects(client, "raw")

    assert archive_raw(gcs_lake, 3, TODAY, dry_run=True) == [day_ago(40), day_ago(5)]

    assert objects(client, "raw") == before
    assert objects(client, "archive/raw") == {}


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
    before = objects(client, "raw")
    oldest = day_ago(40)
    names = sorted(before[oldest])
    owner, method, failing_call = fail_at
    original = getattr(owner, method)
    monkeypatch.setattr(owner, method, crash_on_call(original, failing_call))

    with pytest.raises(ConnectionError):
        archive_raw(gcs_lake, 3, TODAY)

    assert objects(client, "raw")[oldest] == {names[i]: before[oldest][names[i]] for i in raw_left}
    assert objects(client, "archive/raw") == {
        oldest: {names[i]: before[oldest][names[i]] for i in archived_first}
    }

    monkeypatch.setattr(owner, method, original)  # the machine is back
    assert archive_raw(gcs_lake, 3, TODAY) == [oldest, day_ago(5)]

    assert objects(client, "archive/raw") == {d: before[d] for d in (oldest, day_ago(5))}
    assert oldest not in objects(client, "raw")


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
    before = objects(client, "raw")
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
    assert objects(client, "raw")[oldest] == {first: before[oldest][first]}

    monkeypatch.setattr(storage.Blob, "rewrite", original)
    assert archive_raw(gcs_lake, 3, TODAY) == [oldest]
    assert objects(client, "archive/raw")[oldest] == before[oldest]
    assert oldest not in objects(client, "raw")


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

    assert objects(client, "raw")[day_ago(5)] == {in_flight: b"being written"}
    assert len(objects(client, "archive/raw")[day_ago(5)]) == 2

    # An hour on, the writer is dead: its temp file goes and the day leaves raw/.
    monkeypatch.setattr(maintenance, "STALE_TEMP_AGE", skew - timedelta(seconds=1))
    assert archive_raw(gcs_lake, 3, TODAY) == [day_ago(5)]
    assert day_ago(5) not in objects(client, "raw")


# --- restore ------------------------------------------------------------------------------------
def test_restore_brings_an_archived_day_back_byte_for_byte(
    gcs_lake: Settings, client: storage.Client
) -> None:
    before = objects(client, "raw")
    archive_raw(gcs_lake, 3, TODAY)

    assert restore_archived(gcs_lake, day_ago(5)) == 2

    assert objects(client, "raw")[day_ago(5)] == before[day_ago(5)]
    assert objects(client, "archive/raw") == {day_ago(40): before[day_ago(40)]}


def test_restore_of_a_day_not_archived_names_the_gs_uri(gcs_lake: Settings) -> None:
    with pytest.raises(OrangeScrumError) as error:
        restore_archived(gcs_lake, day_ago(6))

    uri = f"gs://{GCS_BUCKET}/{PREFIX}/archive/raw/events/event_date={day_ago(6)}"
    assert f"{uri} holds no Parquet file" in str(error.value)


# --- dead letters -------------------------------------------------------------------------------
def test_dead_letter_report_counts_per_day_and_reason(
    settings: Settings, client: storage.Client, gcs_endpoint: str
) -> None:
    land_dead_letters(settings, day_ago(2), "part-a-b1-t0.parquet", ["not_confluent_avro"] * 3)
    land_dead_letters(
        settings, day_ago(1), "part-a-b2-t0.parquet", ["empty_value", "not_confluent_avro"]
    )
    land_dead_letters(settings, day_ago(1), "part-a-b2-t1.parquet", ["empty_value"])
    (Path(settings.lake.dead_letters) / f"event_date={day_ago(1)}" / ".x.parquet.1.tmp").touch()
    gcs = upload_lake(settings, client, gcs_endpoint)

    assert dead_letter_report(gcs) == [
        DeadLetterCount(day_ago(2), "not_confluent_avro", 3),
        DeadLetterCount(day_ago(1), "empty_value", 2),
        DeadLetterCount(day_ago(1), "not_confluent_avro", 1),
    ]


def test_dead_letter_report_of_an_empty_gcs_lake(settings: Settings, gcs_endpoint: str) -> None:
    assert dead_letter_report(on_gcs(settings, gcs_endpoint)) == []


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
