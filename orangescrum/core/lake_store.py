"""The few file operations lake maintenance needs, on a local lake or a gs:// one.

A local lake goes through pyarrow's local filesystem. A gs:// lake goes through Google's own
client library (google-cloud-storage): folders are object-name prefixes listed with a
delimiter, and a move is a server-side rewrite followed by a delete of the source, so no byte
passes through this machine and a source is never deleted before its copy exists.

Paths are the ones `LakeLayout.open()` gives: a local path, or `bucket/key` for GCS (so
`LakeLayout.uri` turns either back into what people read).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from pyarrow import fs as pafs

from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.lake import LakeLayout

if TYPE_CHECKING:
    from google.cloud import storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredFile:
    path: str
    name: str
    # Last write; None when the store does not know it.
    updated: datetime | None
    # GCS object generation: moves and deletes act only on the version that was listed.
    generation: int | None = None


class LakeStore(Protocol):
    def subfolders(self, folder: str) -> list[str]:
        """Names of the folders directly under `folder` (none if it does not exist)."""
        ...

    def files(self, folder: str, *, recursive: bool) -> list[StoredFile]:
        """Files under `folder`, sorted by path (none if it does not exist)."""
        ...

    def read_bytes(self, path: str) -> bytes | None:
        """The file's content; None if there is no such file."""
        ...

    def open_input(self, path: str) -> AbstractContextManager[IO[bytes]]:
        """A seekable binary reader (a Parquet reader seeks to the footer first)."""
        ...

    def move(self, file: StoredFile, target_folder: str) -> bool:
        """Move `file` into `target_folder` under its own name; False if it was left in place
        because it changed meanwhile (the next run moves it)."""
        ...

    def delete(self, file: StoredFile) -> None: ...

    def remove_folder_if_empty(self, folder: str) -> bool:
        """Remove `folder` unless a file is in it (one may land at any moment)."""
        ...


class LocalLakeStore:
    """A lake in a local folder, through pyarrow's local filesystem."""

    def __init__(self) -> None:
        self._fs = pafs.LocalFileSystem()

    def subfolders(self, folder: str) -> list[str]:
        return [
            info.base_name
            for info in self._infos(folder, recursive=False)
            if info.type == pafs.FileType.Directory
        ]

    def files(self, folder: str, *, recursive: bool) -> list[StoredFile]:
        return sorted(
            (
                StoredFile(info.path, info.base_name, _aware(info.mtime))
                for info in self._infos(folder, recursive=recursive)
                if info.type == pafs.FileType.File
            ),
            key=lambda file: file.path,
        )

    def read_bytes(self, path: str) -> bytes | None:
        if self._fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with self._fs.open_input_stream(path) as stream:
            return stream.read()

    @contextmanager
    def open_input(self, path: str) -> Iterator[IO[bytes]]:
        with self._fs.open_input_file(path) as handle:
            yield handle

    def move(self, file: StoredFile, target_folder: str) -> bool:
        self._fs.create_dir(target_folder, recursive=True)
        self._fs.move(file.path, f"{target_folder}/{file.name}")
        return True

    def delete(self, file: StoredFile) -> None:
        self._fs.delete_file(file.path)

    def remove_folder_if_empty(self, folder: str) -> bool:
        # rmdir fails on a non-empty folder, so a file landing right now is never deleted.
        try:
            Path(folder).rmdir()
        except OSError:
            return False
        return True

    def _infos(self, folder: str, *, recursive: bool) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(folder, recursive=recursive, allow_not_found=True)
        return self._fs.get_file_info(selector)


class GcsLakeStore:
    """A lake in a GCS bucket, through google-cloud-storage."""

    def __init__(self, client: storage.Client) -> None:
        self._client = client

    def subfolders(self, folder: str) -> list[str]:
        bucket, prefix = _split(f"{folder}/")
        pages = self._client.list_blobs(bucket, prefix=prefix, delimiter="/")
        for _ in pages:  # prefixes fill in as the pages are read
            pass
        return sorted(name.removeprefix(prefix).rstrip("/") for name in pages.prefixes)

    def files(self, folder: str, *, recursive: bool) -> list[StoredFile]:
        bucket, prefix = _split(f"{folder}/")
        blobs = self._client.list_blobs(bucket, prefix=prefix, delimiter=None if recursive else "/")
        return sorted(
            (
                StoredFile(
                    f"{bucket}/{blob.name}",
                    blob.name.rpartition("/")[2],
                    blob.updated,
                    blob.generation,
                )
                for blob in blobs
                # "folder/" placeholders (pyarrow's create_dir writes them) are not files.
                if not blob.name.endswith("/")
            ),
            key=lambda file: file.path,
        )

    def read_bytes(self, path: str) -> bytes | None:
        from google.api_core.exceptions import NotFound

        try:
            return self._blob(path).download_as_bytes()
        except NotFound:
            return None

    @contextmanager
    def open_input(self, path: str) -> Iterator[IO[bytes]]:
        with self._blob(path).open("rb") as handle:
            yield handle

    def move(self, file: StoredFile, target_folder: str) -> bool:
        from google.api_core.exceptions import PreconditionFailed

        source = self._blob(file.path)
        target = self._blob(f"{target_folder}/{file.name}")
        try:
            # A large or cross-class object takes several rewrite calls; each is server-side.
            token, _, _ = target.rewrite(source, if_source_generation_match=file.generation)
            while token is not None:
                token, _, _ = target.rewrite(
                    source, token=token, if_source_generation_match=file.generation
                )
            # The copy is complete here; delete only the generation that was copied, so a
            # replayed batch rewriting the same name meanwhile is not lost.
            source.bucket.delete_blob(source.name, if_generation_match=file.generation)
        except PreconditionFailed:
            log.warning("left %s in place: it changed while being moved", file.path)
            return False
        return True

    def delete(self, file: StoredFile) -> None:
        from google.api_core.exceptions import NotFound

        blob = self._blob(file.path)
        with suppress(NotFound):  # deleted by someone else meanwhile: the outcome wanted
            blob.bucket.delete_blob(blob.name, if_generation_match=file.generation)

    def remove_folder_if_empty(self, folder: str) -> bool:
        from google.api_core.exceptions import NotFound

        if self.files(folder, recursive=False):
            return False
        # A prefix with no object under it does not exist; only a placeholder may be left.
        bucket, key = _split(f"{folder}/")
        with suppress(NotFound):
            self._client.bucket(bucket).delete_blob(key)
        return True

    def _blob(self, path: str) -> storage.Blob:
        bucket, key = _split(path)
        return self._client.bucket(bucket).blob(key)


def open_lake(layout: LakeLayout, gcp_project: str = "") -> tuple[LakeStore, LakeLayout]:
    """(store, `layout` rooted inside it), like `LakeLayout.open()` for pyarrow."""
    if layout.root.startswith("gs://"):
        client = gcs_client(layout.gcs_endpoint, gcp_project)
        return GcsLakeStore(client), replace(layout, root=layout.root.removeprefix("gs://"))
    if layout.is_local:
        return LocalLakeStore(), layout
    raise OrangeScrumError(f"lake maintenance supports local and gs:// lakes, not {layout.root}")


def gcs_client(endpoint: str = "", project: str = "") -> storage.Client:
    """An anonymous client of the emulator at `endpoint`, else Application Default Credentials."""
    from google.cloud import storage

    if endpoint:
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(
            project=project or None,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": endpoint},
        )
    return storage.Client(project=project) if project else storage.Client()


def _split(path: str) -> tuple[str, str]:
    bucket, _, key = path.partition("/")
    return bucket, key


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
