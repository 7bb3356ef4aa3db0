"""A local BigQuery API emulator (crucible-emulator) as a managed subprocess.

crucible-emulator serves BigQuery's REST v2 API on 127.0.0.1 over DuckDB, with no
authentication. It pins its own duckdb and sqlglot, so it lives in its own virtualenv,
`.venv-bqemu` at the repository root (`make setup` builds it from requirements-bqemu.lock);
this module runs its `crucible serve` CLI there (through LAUNCHER, one shim) and never imports it.

dbt-bigquery reaches it through the prod profile's `api_endpoint` with `method: oauth-secrets`
and any token (see `BigQueryEmulator.settings_overrides`); google-cloud-bigquery through
`client_options={"api_endpoint": ...}` and anonymous credentials (`BigQueryEmulator.client`).
It runs offline: nothing is downloaded at start. State is in memory unless a DuckDB file is
given, so it lives as long as the command (or test) that started it.

What it cannot do (so tests must not rely on it): read gs:// (no external tables), load
anything but CSV, the Storage Read API, INFORMATION_SCHEMA, scripting.
"""

from __future__ import annotations

import atexit
import json
import logging
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.processes import (
    HOST,
    ManagedService,
    claim_port,
    stop_process,
    stop_with_parent,
)

if TYPE_CHECKING:
    from google.cloud import bigquery

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VENV = REPO_ROOT / ".venv-bqemu"
DUMMY_TOKEN = "crucible-emulator-accepts-any-token"  # not a secret: the emulator never reads it

# Runs in the emulator's venv as `python -c LAUNCHER serve --dialect bigquery ...`: the
# `crucible` CLI with one shim. sqlglot 30.22 (pinned by crucible-emulator 0.1.0a2) parses a
# comment written right after a `;` on the same line as a statement of its own
# (exp.Semicolon), which crucible refuses ("Not supported by Crucible: SEMICOLON statement").
# dbt-bigquery's static insert_overwrite script ends its merge with `;-- 2. clean up the temp
# table`, which BigQuery runs fine. Dropping comment-only statements changes no result.
LAUNCHER = """
import sys

from sqlglot import exp

from crucible.cli import main
from crucible.dialects.bigquery import statements

_split = statements.split


def split_without_comment_only_statements(sql):
    parsed = _split(sql)
    kept = [s for s in parsed if not isinstance(getattr(s, "tree", None), exp.Semicolon)]
    return kept or parsed


statements.split = split_without_comment_only_statements
sys.exit(main(sys.argv[1:]))
"""


def emulator_executable(venv: Path = DEFAULT_VENV) -> Path:
    """The `crucible` console script of the emulator's virtualenv, or raise saying how to get it."""
    executable = venv / "bin" / "crucible"
    if not executable.exists():
        raise OrangeScrumError(
            f"The BigQuery emulator is not installed ({executable} is missing): run `make setup` "
            "(it builds .venv-bqemu with crucible-emulator[server] from requirements-bqemu.lock)."
        )
    return executable


def emulator_installed(venv: Path = DEFAULT_VENV) -> bool:
    return (venv / "bin" / "crucible").exists()


def sql_literal(value: Any, field: bigquery.SchemaField) -> str:
    """GoogleSQL literal of a Python value for a column of the given schema field.

    Nulls are typed (`cast(null as ...)`) so they fit struct fields of any type.
    """
    if field.mode == "REPEATED":
        raise OrangeScrumError(f"Column {field.name}: ARRAY columns are not supported here.")
    type_sql = _type_sql(field)
    if value is None:
        return f"cast(null as {type_sql})"
    kind = field.field_type.upper()
    if kind in {"RECORD", "STRUCT"}:
        unknown = set(value) - {sub.name for sub in field.fields}
        if unknown:
            raise OrangeScrumError(f"Column {field.name} has no field(s) {sorted(unknown)}.")
        parts = ", ".join(sql_literal(value.get(sub.name), sub) for sub in field.fields)
        return f"{type_sql}({parts})"
    if kind == "STRING":
        escaped = str(value).replace("\\", "\\\\").replace("'", "\\'")
        return "'" + escaped.replace("\n", "\\n").replace("\r", "\\r") + "'"
    if kind == "BYTES":
        return "b'" + "".join(f"\\x{byte:02x}" for byte in bytes(value)) + "'"
    if kind in {"BOOL", "BOOLEAN"}:
        return "true" if value else "false"
    if kind in {"INT64", "INTEGER"}:
        return str(int(value))
    if kind in {"FLOAT64", "FLOAT"}:
        return f"cast('{float(value)!r}' as float64)"
    if kind == "DATE":
        return f"date '{value.isoformat()}'"
    if kind == "TIMESTAMP":
        if value.tzinfo is None:
            raise OrangeScrumError(f"Column {field.name}: naive datetime {value}, expected UTC.")
        return f"timestamp '{value.isoformat()}'"
    raise OrangeScrumError(f"Column {field.name}: type {kind} is not supported here.")


def _type_sql(field: bigquery.SchemaField) -> str:
    kind = field.field_type.upper()
    if kind in {"RECORD", "STRUCT"}:
        return "struct<" + ", ".join(f"{sub.name} {_type_sql(sub)}" for sub in field.fields) + ">"
    return {"INTEGER": "int64", "FLOAT": "float64", "BOOLEAN": "bool"}.get(kind, kind.lower())


def insert_rows(
    client: bigquery.Client, table_id: str, rows: list[dict[str, Any]], batch_size: int = 200
) -> int:
    """Insert rows (column name -> Python value) with INSERT ... VALUES statements.

    The emulator has neither the streaming insertAll API nor query parameters, and loads
    only CSV (no STRUCT columns), so rows go in as literals typed by the table's schema.
    Columns a row lacks are left null. Returns the number of rows inserted.
    """
    schema = {field.name: field for field in client.get_table(table_id).schema}
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        columns = sorted({name for row in batch for name in row})
        unknown = [name for name in columns if name not in schema]
        if unknown:
            raise OrangeScrumError(f"Table {table_id} has no column(s) {unknown}.")
        values = ",\n".join(
            "(" + ", ".join(sql_literal(row.get(name), schema[name]) for name in columns) + ")"
            for row in batch
        )
        client.query(f"insert into `{table_id}` ({', '.join(columns)})\nvalues\n{values}").result()
    return len(rows)


class BigQueryEmulator(ManagedService):
    """`crucible serve --dialect bigquery`: free port, readiness check, log file, stop on exit.

    A context manager: `with BigQueryEmulator(log_file) as emulator:` then
    `Settings(dbt_target=WarehouseTarget.PROD, **emulator.settings_overrides(), ...)`.
    """

    def __init__(
        self,
        log_file: Path,
        *,
        port: int | None = None,
        database: Path | None = None,
        venv: Path = DEFAULT_VENV,
    ) -> None:
        self.log_file = log_file
        self.venv = venv
        self.database = database  # a DuckDB file keeps state across restarts; None = memory
        self.port = claim_port(port, "omit it to pick a free one")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The API root for clients (dbt-bigquery's api_endpoint, client_options)."""
        return f"http://{HOST}:{self.port}"

    def settings_overrides(self) -> dict[str, Any]:
        """Settings fields that point the prod (BigQuery) dbt target at this emulator."""
        return {
            "bigquery_api_endpoint": self.endpoint,
            "bigquery_method": "oauth-secrets",
            "bigquery_token": DUMMY_TOKEN,
            "gcp_keyfile": "",
        }

    def client(self, project: str, location: str = "US") -> bigquery.Client:
        """A google-cloud-bigquery client of this emulator (anonymous, never reaches Google)."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(
            project=project,
            location=location,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": self.endpoint},
        )

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/_crucible/health", timeout=2) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def reset(self) -> None:
        """Drop every dataset, table and job (POST /_crucible/reset)."""
        request = urllib.request.Request(f"{self.endpoint}/_crucible/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30) as reply:
            json.loads(reply.read() or b"{}")

    def start(self, timeout_seconds: float = 60) -> BigQueryEmulator:
        emulator_executable(self.venv)  # raises with what to do when it is not installed
        command = [
            str(self.venv / "bin" / "python"),
            "-c",
            LAUNCHER,
            "serve",
            "--dialect",
            "bigquery",
            "--host",
            HOST,
            "--port",
            str(self.port),
            *(["--database", str(self.database)] if self.database else []),
        ]
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log_stream:
            self._process = subprocess.Popen(
                command,
                stdout=log_stream,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=stop_with_parent if sys.platform == "linux" else None,
            )
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout_seconds
        while not self.is_ready():
            exit_code = self._process.poll()
            if exit_code is not None or time.monotonic() > deadline:
                self.stop()
                reason = (
                    f"exited with code {exit_code}"
                    if exit_code is not None
                    else f"did not answer within {timeout_seconds:.0f}s"
                )
                raise OrangeScrumError(
                    f"The BigQuery emulator on {self.endpoint} {reason}; see {self.log_file}."
                )
            time.sleep(0.1)
        log.info("BigQuery emulator ready on %s (log: %s)", self.endpoint, self.log_file)
        return self

    def stop(self) -> None:
        if self._process is None:
            return
        process, self._process = self._process, None
        atexit.unregister(self.stop)
        stop_process(process)
        log.info("BigQuery emulator on %s stopped", self.endpoint)
