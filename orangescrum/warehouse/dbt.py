"""Run dbt in-process against the project in dbt_project/ with this platform's settings."""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from dbt.cli.main import dbtRunner, dbtRunnerResult

from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.processes import HOST
from orangescrum.core.settings import Settings, WarehouseTarget

log = logging.getLogger(__name__)

# How DuckDB says another process holds the database file.
LOCK_CONFLICT = "Could not set lock on file"


@contextmanager
def _patched_environ(values: dict[str, str]) -> Iterator[None]:
    # dbt reads env_var() from os.environ at parse time; restore it so callers keep theirs.
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_dbt(
    settings: Settings,
    args: Sequence[str],
    *,
    target_path: Path | None = None,
    check: bool = True,
    quiet: bool = False,
) -> dbtRunnerResult:
    """Invoke `dbt <args>` with the project, profiles and target taken from settings.

    target_path keeps concurrent invocations (tests, Airflow) from sharing dbt_project/target.
    """
    command = [
        *(["--quiet"] if quiet else []),
        *args,
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(settings.dbt_profiles_dir),
        "--target",
        settings.dbt_target.value,
    ]
    if target_path is not None:
        command += ["--target-path", str(target_path)]
    log.info("dbt %s", " ".join(args))
    settings.duckdb_file.parent.mkdir(parents=True, exist_ok=True)
    if settings.dbt_target is WarehouseTarget.DEV:
        require_warehouse_unlocked(settings.duckdb_file)
    env = settings.dbt_env()
    if target_path is not None:
        env["DBT_LOG_PATH"] = str(target_path / "logs")
    with _patched_environ(env):
        try:
            result = dbtRunner().invoke(command)
        finally:
            _release_duckdb()
    if isinstance(result.exception, KeyboardInterrupt):
        # Ctrl-C or SIGTERM (e.g. stopping `dbt docs serve`): a stop, not a failed build.
        raise KeyboardInterrupt
    if check:
        raise_for_failure(settings, args, result)
    return result


def raise_for_failure(settings: Settings, args: Sequence[str], result: dbtRunnerResult) -> None:
    """The one-sentence error of a dbt invocation that did not succeed (nothing if it did)."""
    if result.success:
        return
    if settings.dbt_target is WarehouseTarget.DEV:
        held = _lock_conflict(result)
        if held is not None:
            # Another writer took the file after the check above (both started together).
            raise _warehouse_held(settings.duckdb_file, held)
    detail = result.exception or _failed_nodes(result)
    raise OrangeScrumError(
        f"`dbt {' '.join(args)}` failed: {detail}. See the dbt output above "
        f"(and dbt.log under the target folder) for the failing model or test."
    )


def require_warehouse_unlocked(path: Path) -> None:
    """DuckDB has one writer: say who holds the file instead of failing every dbt node."""
    import duckdb

    if not path.exists():
        return
    try:
        duckdb.connect(str(path)).close()
    except duckdb.IOException as error:
        raise _warehouse_held(path, str(error)) from None


def _warehouse_held(path: Path, duckdb_error: str) -> OrangeScrumError:
    holder = re.search(r"held in (.+?) \(PID (\d+)\)", duckdb_error)
    who = f"{holder.group(1)} (PID {holder.group(2)})" if holder else "another process"
    return OrangeScrumError(
        f"The warehouse {path} is open in {who}: DuckDB allows one writer, so stop that "
        "process (or wait for it), then run this again."
    )


def _lock_conflict(result: dbtRunnerResult) -> str | None:
    """DuckDB's lock error, when the run failed because another process holds the file."""
    return next((m for m in error_messages(result) if LOCK_CONFLICT in m), None)


def error_messages(result: dbtRunnerResult) -> list[str]:
    """The invocation's exception and the messages of nodes that errored (not failed tests)."""
    messages = [str(result.exception)] if result.exception is not None else []
    for node in getattr(result.result, "results", None) or []:
        if str(node.status).lower() in {"error", "runtimeerror"} and node.message:
            messages.append(str(node.message))
    return messages


def _release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after an invocation.

    It would otherwise hold the warehouse file's lock until the process exits, blocking the
    dashboard, other processes and even read-only connections from this one.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
            DuckDBConnectionManager._ENV = None


def status_counts(result: dbtRunnerResult) -> dict[str, int]:
    """How many nodes ended in each status (pass, success, fail, error, skipped, ...)."""
    counts: dict[str, int] = {}
    for node_result in getattr(result.result, "results", None) or []:
        status = str(node_result.status).lower()
        counts[status] = counts.get(status, 0) + 1
    return counts


def _failed_nodes(result: dbtRunnerResult) -> str:
    nodes = getattr(result.result, "results", None) or []
    failed = [
        # run-operation results carry no node, only a message
        getattr(getattr(r, "node", None), "unique_id", None) or str(getattr(r, "message", r))
        for r in nodes
        if str(r.status).lower() in {"error", "fail", "runtimeerror"}
    ]
    return ", ".join(failed) if failed else "see the errors above"


class _DocsServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A browser that cancels a download resets the connection: not a server error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("docs client %s went away", client_address)
            return
        super().handle_error(request, client_address)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        # One line per request on stderr is the stdlib's default; keep it for --log-level DEBUG.
        log.debug("docs request: %s", format % args)


def serve_docs(target: Path, port: int) -> None:
    """dbt's catalog site from a target folder on 127.0.0.1, until Ctrl-C or SIGTERM.

    What `dbt docs serve` does (its index.html next to manifest.json and catalog.json), minus
    the traceback dbt logs when it is stopped.
    """
    from dbt.task.docs import DOCS_INDEX_FILE_PATH

    if not (target / "catalog.json").is_file():
        raise OrangeScrumError(
            f"No dbt docs catalog in {target}: run `orangescrum dbt docs generate` first "
            "(`make docs` does both)."
        )
    shutil.copyfile(DOCS_INDEX_FILE_PATH, target / "index.html")
    handler = partial(_QuietHandler, directory=str(target))
    with _DocsServer((HOST, port), handler) as server:
        log.info("dbt docs on http://%s:%d (Ctrl-C stops it)", HOST, port)
        server.serve_forever()
