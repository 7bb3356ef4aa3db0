"""Schema registries behind one small interface.

Production talks to a Confluent Schema Registry; the local stack reads subject/id assignments
from ``schemas/registry.json``. Serializer and deserializer code is the same for both, and the
consumer only ever needs the schema id in the message to find the writer schema.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Protocol

from orangescrum.core.contract import REGISTRY_FILE
from orangescrum.core.contract.schema import (
    SUBJECT,
    available_versions,
    canonical_schema,
    load_schema_text,
)
from orangescrum.core.errors import OrangeScrumError

# What a Confluent-compatible registry answers when a new version breaks the subject's
# compatibility rule (Apicurio's body then says error_code 0, so the HTTP status is what counts).
_CONFLICT = 409


class UnknownSchemaError(LookupError):
    """The registry has no schema under that id (or that schema under the subject)."""


class IncompatibleSchemaError(OrangeScrumError):
    """The registry refused a new version under its subject's compatibility rule."""


class SchemaRegistry(Protocol):
    def register(self, subject: str, schema_text: str) -> int:
        """Id of schema_text under subject (registering it where the registry allows)."""
        ...

    def schema_text(self, schema_id: int) -> str:
        """Writer schema for an id; raises UnknownSchemaError."""
        ...

    def subject_schemas(self, subject: str) -> dict[int, str]:
        """Every schema registered under subject: id -> schema text (empty if none)."""
        ...


class FileSchemaRegistry:
    """Read-only registry over registry.json: new versions are added by committing a file."""

    def __init__(self, registry_file: Path = REGISTRY_FILE) -> None:
        self._file = registry_file
        document = json.loads(registry_file.read_text())
        self._by_id: dict[int, str] = {}
        self._ids_by_subject: dict[str, dict[str, int]] = {}
        for subject, versions in document["subjects"].items():
            for version in versions:
                text = (registry_file.parent / version["schema_file"]).read_text()
                self._by_id[version["id"]] = text
                self._ids_by_subject.setdefault(subject, {})[canonical_schema(text)] = version["id"]

    def register(self, subject: str, schema_text: str) -> int:
        try:
            return self._ids_by_subject[subject][canonical_schema(schema_text)]
        except KeyError:
            raise UnknownSchemaError(
                f"schema not listed for subject {subject!r} in {self._file}; "
                "add the new version there (after `orangescrum schema check`)"
            ) from None

    def schema_text(self, schema_id: int) -> str:
        try:
            return self._by_id[schema_id]
        except KeyError:
            raise UnknownSchemaError(f"no schema with id {schema_id}") from None

    def subject_schemas(self, subject: str) -> dict[int, str]:
        ids = self._ids_by_subject.get(subject, {}).values()
        return {schema_id: self._by_id[schema_id] for schema_id in sorted(ids)}


class ConfluentSchemaRegistry:
    """A Confluent-compatible registry over HTTP (Confluent, Karapace, Redpanda, Apicurio)."""

    def __init__(self, url: str, basic_auth: str = "") -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        self._url = url
        config = {"url": url}
        if basic_auth:
            config["basic.auth.user.info"] = basic_auth
        # new_client also understands mock:// URLs (an in-memory registry, for tests).
        self._client = SchemaRegistryClient.new_client(config)

    def register(self, subject: str, schema_text: str) -> int:
        from confluent_kafka.schema_registry import Schema
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            return self._client.register_schema(subject, Schema(schema_text, "AVRO"))
        except SchemaRegistryError as error:
            if error.http_status_code != _CONFLICT:
                raise
            # The registry's own words name the field; its first line is enough.
            reason = (str(error.error_message).strip().splitlines() or ["no reason given"])[0]
            raise IncompatibleSchemaError(
                f"The schema registry at {self._url} refused the new {subject} version as "
                f"incompatible with its latest one ({reason}): give new or removed fields a "
                "default, and check a candidate with `orangescrum schema check --candidate "
                "FILE`."
            ) from None

    def compatible(self, subject: str, schema_text: str) -> bool | None:
        """Whether the registry would accept schema_text as subject's next version under its
        rule for that subject; None when the subject has no version there yet."""
        from confluent_kafka.schema_registry import Schema
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            return bool(self._client.test_compatibility(subject, Schema(schema_text, "AVRO")))
        except SchemaRegistryError as error:
            if error.http_status_code == 404:
                return None
            raise

    def schema_text(self, schema_id: int) -> str:
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            return self._client.get_schema(schema_id).schema_str
        except SchemaRegistryError as error:
            if error.http_status_code == 404:
                raise UnknownSchemaError(f"no schema with id {schema_id}") from error
            raise

    def subject_schemas(self, subject: str) -> dict[int, str]:
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            versions = self._client.get_versions(subject)
        except SchemaRegistryError as error:
            if error.http_status_code == 404:
                return {}
            raise
        registered = [self._client.get_version(subject, version) for version in versions]
        return {item.schema_id: item.schema.schema_str for item in registered}


@cache
def registry_for(url: str = "", basic_auth: str = "") -> SchemaRegistry:
    """One registry client per process and URL (executors call this once per worker)."""
    if url:
        return ConfluentSchemaRegistry(url, basic_auth)
    return FileSchemaRegistry()


def register_contract(registry: SchemaRegistry) -> dict[int, int]:
    """Every shipped version of the contract in `registry`, oldest first (each must stay
    compatible with the one before): version -> id."""
    return {
        version: registry.register(SUBJECT, load_schema_text(version))
        for version in available_versions()
    }
