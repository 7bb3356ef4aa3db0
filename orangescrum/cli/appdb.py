"""`orangescrum appdb start|stop|status`: the local MariaDB that plays OrangeScrum's database."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from orangescrum.cli.common import console, load_settings
from orangescrum.core.errors import OrangeScrumError

if TYPE_CHECKING:
    from orangescrum.core.appdb.server import LocalMariaDB
    from orangescrum.core.settings import Settings

appdb_app = typer.Typer(
    help="The OrangeScrum app's own database (MariaDB, binlog in ROW format): a local one."
)


@appdb_app.command("start")
def appdb_start(
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Port on 127.0.0.1. Default: ORANGESCRUM_APPDB_PORT."),
    ] = None,
) -> None:
    """Run MariaDB in the foreground until Ctrl-C; its data stays in <data_dir>/appdb."""
    from orangescrum.core.appdb.server import LocalMariaDB

    settings = load_settings()
    server = LocalMariaDB.from_settings(settings, port)
    with console.status("starting MariaDB"):
        server.start()
    try:
        console.print(_started(server, settings), soft_wrap=True, markup=False, highlight=False)
        while (code := server.exit_code()) is None:
            time.sleep(0.5)
        raise OrangeScrumError(f"MariaDB exited with code {code}; see {server.log_file}.")
    finally:
        server.stop()


@appdb_app.command("stop")
def appdb_stop() -> None:
    """Stop the local app database another `orangescrum appdb start` runs."""
    from orangescrum.core.appdb.server import stop_running

    settings = load_settings()
    pid = stop_running(settings.appdb_data_dir)
    console.print("no app database was running" if pid is None else f"stopped MariaDB (pid {pid})")


@appdb_app.command("status")
def appdb_status() -> None:
    """Whether the local app database runs, where, and the rows of each app table."""
    from orangescrum.core.appdb.connection import connect, row_counts
    from orangescrum.core.appdb.server import remembered_port, running_pid

    settings = load_settings()
    pid = running_pid(settings.appdb_data_dir)
    if pid is None:
        console.print(f"the local app database is not running (data: {settings.appdb_data_dir})")
    else:
        port = remembered_port(settings.appdb_data_dir)
        console.print(f"the local app database runs (pid {pid}) on 127.0.0.1:{port}")
    connection = connect(settings)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT @@version, @@binlog_format")
            version, binlog_format = cursor.fetchone()
        counts = row_counts(connection)
    finally:
        connection.close()
    console.print(
        f"{settings.appdb_host}:{settings.appdb_port}/{settings.appdb_database}: MariaDB "
        f"{version}, binlog_format {binlog_format}"
    )
    for table, rows in counts.items():
        console.print(f"  {table:<20} {rows:>9,}")


def _started(server: LocalMariaDB, settings: Settings) -> str:
    """What a person needs to connect; never the password itself."""
    from orangescrum.core.appdb.connection import password_file

    password = (
        "$ORANGESCRUM_APPDB_PASSWORD"
        if settings.appdb_password.get_secret_value()
        else f"$(cat {password_file(settings)})"
    )
    lines = [
        f"MariaDB (the OrangeScrum app database `{server.database}`) on {server.address}, "
        f"binlog in ROW format (data: {server.datadir}).",
    ]
    if server.port != settings.appdb_port:
        lines += ["In other terminals:", f"  export ORANGESCRUM_APPDB_PORT={server.port}"]
    lines += [
        "Connect:",
        f'  mariadb -h 127.0.0.1 -P {server.port} -u {server.user} -p"{password}" '
        f"{server.database}",
        "Fill it: orangescrum simulate app-db --days 3",
        "Ctrl-C stops it; the data is kept for the next start.",
    ]
    return "\n".join(lines)
