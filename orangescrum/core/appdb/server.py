"""The local MariaDB that plays OrangeScrum's own database: a managed process on loopback.

Its datadir lives under <data_dir>/appdb, so the app's rows survive a restart. The binlog is
on, in ROW format with full row images, which is what a change-data-capture reader (Debezium)
needs. root has no password and is reachable only through the Unix socket in that folder;
clients use the application user over TCP on 127.0.0.1. Production points the ORANGESCRUM_APPDB_*
settings at the real app's MariaDB/MySQL instead.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pymysql

from orangescrum.core.appdb.connection import app_password, cdc_password, ensure_schema
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.processes import HOST, ManagedService, claim_port, stop_process

if TYPE_CHECKING:
    from orangescrum.core.settings import Settings

log = logging.getLogger(__name__)

# mariadbd lives in sbin, which a non-root PATH often lacks.
SEARCH_PATH: Final = ("/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin")
INSTALL_HINT: Final = (
    "install it with `apt-get install mariadb-server` (or run `make setup` as root)"
)
# InnoDB's shutdown flushes its buffer pool first; give it time before SIGKILL.
STOP_TIMEOUT_SECONDS: Final = 60
# sun_path holds 108 bytes; a deep data dir gets its socket in the temp folder instead.
MAX_SOCKET_PATH: Final = 100


def find_binary(name: str) -> str:
    search = os.pathsep.join([os.environ.get("PATH", ""), *SEARCH_PATH])
    found = shutil.which(name, path=search)
    if found is None:
        raise OrangeScrumError(f"MariaDB is not installed (no `{name}` found); {INSTALL_HINT}.")
    return found


class LocalMariaDB(ManagedService):
    """mariadbd on 127.0.0.1:`port` with its datadir in `directory`; stopped on exit.

    The first start initialises the datadir; every start (re)creates the database, the
    application user with `password`, the app's tables, and, given `cdc_password`, the user
    Debezium reads the binlog as (all idempotent).
    """

    def __init__(
        self,
        directory: Path,
        *,
        port: int,
        database: str,
        user: str,
        password: str,
        cdc_user: str = "debezium",
        cdc_password: str = "",
    ) -> None:
        self.directory = directory
        self.requested_port = port
        self.port = port
        self.database = database
        self.user = user
        self._password = password
        self.cdc_user = cdc_user
        self._cdc_password = cdc_password
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, port: int | None = None) -> LocalMariaDB:
        """The local server of these settings; `port` overrides ORANGESCRUM_APPDB_PORT."""
        directory = settings.appdb_data_dir
        directory.mkdir(parents=True, exist_ok=True)
        return cls(
            directory,
            port=port if port is not None else settings.appdb_port,
            database=settings.appdb_database,
            user=settings.appdb_user,
            password=app_password(settings, generate=True),
            cdc_user=settings.appdb_cdc_user,
            cdc_password=cdc_password(settings, generate=True),
        )

    # --- layout ---------------------------------------------------------------------------
    @property
    def datadir(self) -> Path:
        return self.directory / "data"

    @property
    def log_file(self) -> Path:
        return self.directory / "server.log"

    @property
    def socket(self) -> Path:
        own = self.directory / "mariadb.sock"
        if len(str(own)) <= MAX_SOCKET_PATH:
            return own
        digest = hashlib.sha256(str(own).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"orangescrum-appdb-{digest}.sock"

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    # --- lifecycle ------------------------------------------------------------------------
    def start(self, timeout_seconds: float = 60) -> LocalMariaDB:
        server = find_binary("mariadbd")
        install = find_binary("mariadb-install-db")
        if (pid := running_pid(self.directory)) is not None:
            raise OrangeScrumError(
                f"The app database in {self.directory} is already running (pid {pid}); stop it "
                "with `orangescrum appdb stop`."
            )
        self.port = claim_port(self.requested_port, "set ORANGESCRUM_APPDB_PORT or pass --port")
        self.directory.mkdir(parents=True, exist_ok=True)
        if not (self.datadir / "mysql").is_dir():
            self._initialise(install)
        with (self.directory / "stdout.log").open("ab") as output:
            self._process = subprocess.Popen(
                self._command(server), stdout=output, stderr=subprocess.STDOUT
            )
        try:
            self._wait_until_ready(timeout_seconds)
            self._bootstrap()
        except BaseException:
            self.stop()
            raise
        (self.directory / "server.json").write_text(json.dumps({"port": self.port}))
        log.info("MariaDB ready on %s (data: %s)", self.address, self.datadir)
        return self

    def exit_code(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def stop(self) -> None:
        if self._process is None:
            return
        stop_process(self._process, STOP_TIMEOUT_SECONDS)
        self._process = None
        log.info("MariaDB on %s stopped", self.address)

    def root_connection(self, database: str | None = None) -> pymysql.connections.Connection:
        """root over the Unix socket: the only way in as root."""
        return pymysql.connect(
            unix_socket=str(self.socket),
            user="root",
            database=database,
            charset="utf8mb4",
            init_command="SET time_zone = '+00:00'",
        )

    # --- steps ----------------------------------------------------------------------------
    def _os_user(self) -> str:
        # mariadbd refuses to run as root unless told to; as anyone else it runs as them.
        return "root" if os.geteuid() == 0 else getpass.getuser()

    def _initialise(self, install: str) -> None:
        command = [
            install,
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--user={self._os_user()}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ]
        install_log = self.directory / "install.log"
        with install_log.open("wb") as output:
            result = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, check=False)
        if result.returncode != 0:
            raise OrangeScrumError(
                f"Initialising the app database in {self.datadir} failed (exit code "
                f"{result.returncode}); see {install_log}, and remove the folder to start empty."
            )

    def _command(self, server: str) -> list[str]:
        return [
            server,
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--user={self._os_user()}",
            f"--bind-address={HOST}",
            f"--port={self.port}",
            f"--socket={self.socket}",
            f"--pid-file={self.directory / 'mariadb.pid'}",
            f"--log-error={self.log_file}",
            # What Debezium reads: every row change, with the whole row before and after.
            f"--log-bin={self.datadir / 'binlog'}",
            "--binlog-format=ROW",
            "--binlog-row-image=FULL",
            "--server-id=1",
            # Accounts match 127.0.0.1 literally; no DNS lookups on connect.
            "--skip-name-resolve",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
            "--default-time-zone=+00:00",
        ]

    def _wait_until_ready(self, timeout_seconds: float) -> None:
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if (code := self.exit_code()) is not None:
                raise OrangeScrumError(
                    f"MariaDB exited with code {code} while starting on {self.address}; see "
                    f"{self.log_file}."
                )
            try:
                self.root_connection().close()
                return
            except pymysql.err.OperationalError:
                time.sleep(0.2)
        raise OrangeScrumError(
            f"MariaDB did not answer on {self.address} within {timeout_seconds:.0f}s; see "
            f"{self.log_file}."
        )

    def _bootstrap(self) -> None:
        """Database, application user (with the current password) and tables; idempotent."""
        connection = self.root_connection()
        try:
            with connection.cursor() as cursor:
                # mariadb-install-db also makes password-less root accounts for TCP; only the
                # socket's root@localhost stays.
                cursor.execute("SELECT host FROM mysql.user WHERE user = 'root'")
                for (host,) in cursor.fetchall():
                    if host != "localhost":
                        cursor.execute("DROP USER %s@%s", ("root", host))
                cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{self.database}`")
                account = (self.user, HOST)
                cursor.execute("CREATE USER IF NOT EXISTS %s@%s", account)
                cursor.execute("ALTER USER %s@%s IDENTIFIED BY %s", (*account, self._password))
                cursor.execute(f"GRANT ALL PRIVILEGES ON `{self.database}`.* TO %s@%s", account)
                if self._cdc_password:
                    self._create_cdc_user(cursor)
            connection.select_db(self.database)
            ensure_schema(connection)
        finally:
            connection.close()

    def _create_cdc_user(self, cursor: pymysql.cursors.Cursor) -> None:
        """Debezium's user: what its MariaDB connector documents, and no more. The binlog and
        RELOAD (FLUSH TABLES WITH READ LOCK, for a consistent snapshot) are server-wide;
        reading rows and LOCK TABLES (its fallback) only in the app's database."""
        account = (self.cdc_user, HOST)
        cursor.execute("CREATE USER IF NOT EXISTS %s@%s", account)
        cursor.execute("ALTER USER %s@%s IDENTIFIED BY %s", (*account, self._cdc_password))
        cursor.execute(
            "GRANT RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO %s@%s",
            account,
        )
        cursor.execute(f"GRANT SELECT, LOCK TABLES ON `{self.database}`.* TO %s@%s", account)


def running_pid(directory: Path) -> int | None:
    """The pid of the MariaDB serving `directory`, if one runs (a stale pid file is ignored)."""
    pid_file = directory / "mariadb.pid"
    try:
        pid = int(pid_file.read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"mariadbd" in command and str(directory).encode() in command else None


def remembered_port(directory: Path) -> int | None:
    try:
        return int(json.loads((directory / "server.json").read_text())["port"])
    except (OSError, ValueError, KeyError):
        return None


def stop_running(directory: Path, timeout_seconds: float = STOP_TIMEOUT_SECONDS) -> int | None:
    """SIGTERM the MariaDB serving `directory` (started by another `appdb start`) and wait
    for it to exit; its pid, or None when none ran."""
    pid = running_pid(directory)
    if pid is None:
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_seconds
    while running_pid(directory) == pid:
        if time.monotonic() > deadline:
            raise OrangeScrumError(
                f"MariaDB (pid {pid}) did not stop within {timeout_seconds:.0f}s; see "
                f"{directory / 'server.log'}."
            )
        time.sleep(0.2)
    return pid
