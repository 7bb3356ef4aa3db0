"""Logging for every command: human-readable text by default, JSON lines for log shippers."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path

# httpx2: confluent-kafka's schema-registry client logs every HTTP request at INFO.
NOISY_LOGGERS = ("py4j", "pyspark", "urllib3", "httpx", "httpx2", "google", "dbt", "airflow")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document)


class _DropPy4j(logging.Filter):
    """py4j's own records describe its socket plumbing, e.g. a traceback per connection when
    Ctrl-C/SIGTERM interrupts a call; what matters reaches the caller as an exception."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Some go through the root logger (`logging.exception`), so the source file decides.
        return not record.name.startswith("py4j") and "/py4j/" not in record.pathname


class _ConsoleOnlyWhatIsForPeople(logging.Filter):
    """Records logged with extra={"file_only": True} (tracebacks behind a one-sentence error)
    go to the log file alone."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "file_only", False)


def _writable(path: Path) -> bool:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.open("a").close()
    except OSError:
        return False
    return True


def configure_logging(
    level: str = "INFO", log_format: str = "text", log_file: Path | None = None
) -> None:
    """The terminal gets `level`; `log_file` (if given) gets INFO and up, details included."""
    console = logging.StreamHandler()
    console.setLevel(level.upper())
    if log_format == "json":
        console.setFormatter(JsonFormatter())
    else:
        console.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S")
        )
    console.addFilter(_DropPy4j())
    console.addFilter(_ConsoleOnlyWhatIsForPeople())
    handlers: list[logging.Handler] = [console]
    if log_file is not None and not _writable(log_file):
        log_file = None  # a read-only data dir must not stop a command that only reads
    if log_file is not None:
        to_file = RotatingFileHandler(log_file, maxBytes=10_000_000, backupCount=3)
        to_file.setLevel(logging.INFO)
        to_file.setFormatter(
            JsonFormatter()
            if log_format == "json"
            else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        )
        to_file.addFilter(_DropPy4j())
        handlers.append(to_file)
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(min(console.level, logging.INFO if log_file is not None else console.level))
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, console.level))
