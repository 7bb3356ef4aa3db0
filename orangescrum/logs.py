"""Logging for every command: human-readable text by default, JSON lines for log shippers."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

NOISY_LOGGERS = ("py4j", "pyspark", "urllib3", "google", "dbt", "airflow")


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


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S")
        )
    handler.addFilter(_DropPy4j())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
