"""One lake, two places: a local folder or a gs:// prefix on fake-gcs-server.

Maintenance tests build a lake locally and, for the gs:// case, upload it object by object;
`objects()` reads either back the same way, so one assertion covers both kinds of lake.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from google.cloud import storage

from orangescrum.core.settings import Settings
from tests.conftest import GCS_BUCKET

PREFIX = "prod"

# Per day, object name -> bytes.
Objects = dict[date, dict[str, bytes]]


@dataclass(frozen=True)
class LakeUnderTest:
    settings: Settings
    kind: str  # "local" or "gcs"
    objects: Callable[[str], Objects]  # zone ("raw", "archive/raw") -> what it holds


def on_gcs(settings: Settings, endpoint: str) -> Settings:
    return settings.model_copy(
        update={"lake_uri": f"gs://{GCS_BUCKET}/{PREFIX}", "gcs_endpoint": endpoint}
    )


def upload_lake(settings: Settings, client: storage.Client, endpoint: str) -> Settings:
    """Copy the local lake to gs://GCS_BUCKET/PREFIX, drop the local copy; gs:// settings."""
    root = Path(settings.lake_root)
    bucket = client.bucket(GCS_BUCKET)
    for path in sorted(root.rglob("*")):
        if path.is_file():
            bucket.blob(f"{PREFIX}/{path.relative_to(root)}").upload_from_filename(path)
    shutil.rmtree(root)  # nothing can be read from a local copy by mistake
    return on_gcs(settings, endpoint)


def gcs_objects(client: storage.Client, zone: str) -> Objects:
    prefix = f"{PREFIX}/{zone}/events/"
    found: Objects = {}
    for blob in client.list_blobs(GCS_BUCKET, prefix=prefix):
        folder, _, name = blob.name.removeprefix(prefix).partition("/")
        found.setdefault(_day(folder), {})[name] = blob.download_as_bytes()
    return found


def local_objects(settings: Settings, zone: str) -> Objects:
    root = Path(settings.lake_root) / zone / "events"
    found: Objects = {}
    for path in sorted(root.glob("event_date=*/*")) if root.exists() else []:
        found.setdefault(_day(path.parent.name), {})[path.name] = path.read_bytes()
    return found


def _day(folder: str) -> date:
    return date.fromisoformat(folder.removeprefix("event_date="))
