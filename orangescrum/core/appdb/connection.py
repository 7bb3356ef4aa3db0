"""Reaching the app database as its application user: password, connection, schema, counts."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pymysql

from orangescrum.core.errors import OrangeScrumError

if TYPE_CHECKING:
    from pymysql.connections import Connection

    from orangescrum.core.settings import Settings

log = logging.getLogger(__name__)

SCHEMA_FILE: Final = Path(__file__).resolve().parent / "schema.sql"
PASSWORD_FILE_NAME: Final = "app-user.password"
CDC_PASSWORD_FILE_NAME: Final = "debezium.password"
# The app's tables, in the order schema.sql creates them.
APP_TABLES: Final = (
    "companies",
    "users",
    "company_users",
    "projects",
    "project_users",
    "easycases",
    "case_activities",
    "log_times",
    "milestones",
    "easycase_milestones",
    "case_files",
)
MARKER_TABLE: Final = "orangescrum_simulation"
# MySQL client error codes worth a sentence of their own.
_CANNOT_CONNECT = (2002, 2003, 2013)
_ACCESS_DENIED = 1045
_UNKNOWN_DATABASE = 1049


def password_file(settings: Settings) -> Path:
    return settings.appdb_data_dir / PASSWORD_FILE_NAME


def app_password(settings: Settings, *, generate: bool = False) -> str:
    """ORANGESCRUM_APPDB_PASSWORD, else the local server's generated one (made if `generate`).

    Generated rather than a default in the code: no password sits in the repository, and a
    local server on a shared machine is not open to a well-known one.
    """
    configured = settings.appdb_password.get_secret_value()
    if configured:
        return configured
    path = password_file(settings)
    if path.is_file():
        return path.read_text().strip()
    if not generate:
        raise OrangeScrumError(
            "No password for the app database: set ORANGESCRUM_APPDB_PASSWORD, or start the "
            "local one with `orangescrum appdb start`, which generates it."
        )
    return _generate(path)


def cdc_password_file(settings: Settings) -> Path:
    return settings.appdb_data_dir / CDC_PASSWORD_FILE_NAME


def cdc_password(settings: Settings, *, generate: bool = False) -> str:
    """ORANGESCRUM_APPDB_CDC_PASSWORD (Debezium's user), else the local server's generated one.

    A user of its own rather than the app's: it needs replication grants on the whole server,
    and the app user must not get them.
    """
    configured = settings.appdb_cdc_password.get_secret_value()
    if configured:
        return configured
    path = cdc_password_file(settings)
    if path.is_file():
        return path.read_text().strip()
    if not generate:
        raise OrangeScrumError(
            f"No password for the app database's change-data-capture user "
            f"{settings.appdb_cdc_user!r}: set ORANGESCRUM_APPDB_CDC_PASSWORD, or start the "
            "local database with `orangescrum appdb start`, which creates the user."
        )
    return _generate(path)


def _generate(path: Path) -> str:
    """A new random password in a 0600 file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(password + "\n")
    return password


def connect(settings: Settings) -> Connection:
    """A transactional UTC connection as the app user, or one sentence naming the setting."""
    address = f"{settings.appdb_host}:{settings.appdb_port}"
    try:
        return pymysql.connect(
            host=settings.appdb_host,
            port=settings.appdb_port,
            user=settings.appdb_user,
            password=app_password(settings),
            database=settings.appdb_database,
            charset="utf8mb4",
            autocommit=False,
            connect_timeout=settings.appdb_connect_timeout_seconds,
            init_command="SET time_zone = '+00:00'",
        )
    except pymysql.err.OperationalError as error:
        code = error.args[0] if error.args else None
        log.debug("connecting to the app database at %s failed", address, exc_info=True)
        if code == _ACCESS_DENIED:
            raise OrangeScrumError(
                f"The app database at {address} refused user {settings.appdb_user!r}: check "
                "ORANGESCRUM_APPDB_USER and ORANGESCRUM_APPDB_PASSWORD."
            ) from None
        if code == _UNKNOWN_DATABASE:
            raise OrangeScrumError(
                f"The server at {address} has no database {settings.appdb_database!r}: check "
                "ORANGESCRUM_APPDB_DATABASE (`orangescrum appdb start` creates it locally)."
            ) from None
        raise OrangeScrumError(
            f"No app database answered at {address} within "
            f"{settings.appdb_connect_timeout_seconds}s ({error.args[-1]}); start it with "
            "`orangescrum appdb start`, or check ORANGESCRUM_APPDB_HOST and "
            "ORANGESCRUM_APPDB_PORT."
        ) from None


def schema_statements() -> list[str]:
    """schema.sql as single statements (it holds no ';' inside a statement)."""
    text = "\n".join(
        line for line in SCHEMA_FILE.read_text().splitlines() if not line.startswith("--")
    )
    return [statement.strip() for statement in text.split(";") if statement.strip()]


def ensure_schema(connection: Connection) -> None:
    with connection.cursor() as cursor:
        for statement in schema_statements():
            cursor.execute(statement)
    connection.commit()


def drop_tables(connection: Connection) -> None:
    """Every table schema.sql creates, for a fresh start (`simulate app-db --reset`)."""
    with connection.cursor() as cursor:
        for table in (*APP_TABLES, MARKER_TABLE):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
    connection.commit()


def row_counts(connection: Connection) -> dict[str, int]:
    counts = {}
    with connection.cursor() as cursor:
        for table in APP_TABLES:
            cursor.execute(f"SELECT COUNT(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
    return counts
