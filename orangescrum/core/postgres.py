"""The local PostgreSQL: Airflow's metadata database when ORANGESCRUM_AIRFLOW_DATABASE=postgres.

The server binaries come from Debian's `postgresql` package. The cluster lives in one folder
(<data_dir>/postgres): the database files in `data/`, the server's log, and the generated
password of the `airflow` role (0600), which owns the `airflow` database. The server listens on
127.0.0.1 only, takes TCP logins by password (scram-sha-256), and keeps its unix socket inside
`data/`. PostgreSQL refuses to run as root: under root it runs as the package's `postgres`
user, which then owns `data/`. Production points ORANGESCRUM_AIRFLOW_DATABASE_URL at a managed
PostgreSQL instead.
"""

from __future__ import annotations

import logging
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.kafka_security import write_private
from orangescrum.core.processes import HOST, ManagedService, claim_port, stop_process

log = logging.getLogger(__name__)

ROLE = "airflow"
DATABASE = "airflow"
# Debian installs each major version side by side (<root>/<version>/bin); the newest is used.
DEBIAN_ROOT = Path("/usr/lib/postgresql")
SERVER_USER = "postgres"  # created by Debian's package
INSTALL_HINT = "install it with `apt-get install postgresql` (or `make setup` as root)"
START_TIMEOUT_SECONDS = 60.0
# A fast shutdown ends sessions and writes a checkpoint: seconds, even under load.
STOP_TIMEOUT_SECONDS = 30.0
# sun_path holds 108 bytes; a longer socket path would stop the server from starting.
MAX_SOCKET_PATH = 100


def bin_dir() -> Path:
    """The folder holding initdb and postgres: Debian's newest version, else PATH's."""

    def major(initdb: Path) -> tuple[int, str]:
        version = initdb.parent.parent.name
        return (int(version) if version.isdigit() else 0, version)

    debian = sorted(DEBIAN_ROOT.glob("*/bin/initdb"), key=major, reverse=True)
    on_path = shutil.which("initdb")
    for initdb in [*debian, *([Path(on_path)] if on_path else [])]:
        folder = initdb.parent
        if (folder / "postgres").is_file():
            return folder
    raise OrangeScrumError(
        f"PostgreSQL's server (initdb, postgres) was not found in {DEBIAN_ROOT}/*/bin or on "
        f"PATH: {INSTALL_HINT}."
    )


@dataclass(frozen=True)
class ServerUser:
    """The unprivileged account the server runs as when this process is root."""

    name: str
    uid: int
    gid: int

    @property
    def groups(self) -> list[int]:
        return os.getgrouplist(self.name, self.gid)

    def may_enter(self, folder: Path) -> bool:
        mode = folder.stat()
        if mode.st_uid == self.uid:
            return bool(mode.st_mode & stat.S_IXUSR)
        if mode.st_gid in self.groups:
            return bool(mode.st_mode & stat.S_IXGRP)
        return bool(mode.st_mode & stat.S_IXOTH)


def server_user() -> ServerUser | None:
    """None when not root (the server runs as this user), else Debian's `postgres` user."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise OrangeScrumError(
            f"PostgreSQL refuses to run as root and there is no `{SERVER_USER}` user to run it "
            f"as: {INSTALL_HINT}, which creates that user."
        ) from None
    return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


class LocalPostgres(ManagedService):
    """A PostgreSQL server on `directory` as a managed subprocess; stopped on exit.

    The first start creates the cluster, the `airflow` role (with a generated password) and
    its database; later starts reuse them, so Airflow's metadata survives a restart. `port`:
    the port to listen on, else a free one.
    """

    def __init__(self, directory: Path, *, port: int | None = None) -> None:
        self.directory = directory
        self.requested_port = port
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    # --- layout ---------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def password_file(self) -> Path:
        return self.directory / f"{ROLE}.password"

    @property
    def log_file(self) -> Path:
        return self.directory / "server.log"

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the `airflow` database as the `airflow` role (password included)."""
        return (
            f"postgresql+psycopg2://{ROLE}:{quote(self.password, safe='')}@{HOST}:{self.port}/"
            f"{DATABASE}"
        )

    def connect_args(self) -> dict[str, object]:
        """psycopg2.connect() keywords for the `airflow` role over TCP."""
        return {
            "host": HOST,
            "port": self.port,
            "user": ROLE,
            "password": self.password,
            "dbname": DATABASE,
        }

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def describe(self) -> str:
        return f"PostgreSQL on {HOST}:{self.port} (data: {self.data_dir})"

    # --- lifecycle ------------------------------------------------------------------------
    def start(self, timeout_seconds: float = START_TIMEOUT_SECONDS) -> LocalPostgres:
        binaries = bin_dir()
        user = server_user()
        self.directory.mkdir(parents=True, exist_ok=True)
        if user is not None:
            _require_reachable(self.directory, user)
        self.port = claim_port(
            self.requested_port,
            "set ORANGESCRUM_AIRFLOW_POSTGRES_PORT to another one, or to 0 for a free one",
        )
        self._ensure_cluster(binaries, user)
        self._process = self._launch(binaries, user)
        try:
            self._wait_until_ready(timeout_seconds)
        except OrangeScrumError:
            self.stop()
            raise
        log.info("%s ready", self.describe())
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            # SIGINT is PostgreSQL's fast shutdown: sessions end, a checkpoint is written.
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                stop_process(process)
        log.info("PostgreSQL on %s:%s stopped", HOST, self.port)

    # --- internals ------------------------------------------------------------------------
    def _ensure_cluster(self, binaries: Path, user: ServerUser | None) -> None:
        """initdb and the role on first start; a cluster whose password is lost is refused."""
        if (self.data_dir / "PG_VERSION").is_file():
            if not self.password_file.is_file():
                raise OrangeScrumError(
                    f"The `{ROLE}` role of {self.data_dir} was created with the password in "
                    f"{self.password_file}, which is gone: remove {self.directory} to start "
                    "Airflow on a new, empty metadata database."
                )
            return
        if not self.password_file.is_file():
            write_private(self.password_file, secrets.token_urlsafe(24))
        # Built aside and renamed when complete: an interrupted first start leaves no
        # half-made cluster behind that a later start would take for a ready one.
        building = self.directory / "data.new"
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(mode=0o700)
        if user is not None:
            os.chown(building, user.uid, user.gid)
        self._run(
            binaries / "initdb",
            f"--pgdata={building}",
            "--auth-local=peer",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            user=user,
        )
        # Single-user mode: no server and no superuser password needed; the role's password
        # goes through stdin, never the command line.
        bootstrap = (
            f"CREATE ROLE {ROLE} LOGIN PASSWORD '{self.password}';\n"
            f"CREATE DATABASE {DATABASE} OWNER {ROLE};\n"
        )
        output = self._run(
            binaries / "postgres",
            "--single",
            "-D",
            str(building),
            "postgres",
            user=user,
            stdin=bootstrap,
        )
        if "ERROR:" in output:
            raise OrangeScrumError(
                f"Creating the `{ROLE}` role in {building} failed: "
                f"{output.split('ERROR:', 1)[1].strip().splitlines()[0]}."
            )
        building.rename(self.data_dir)
        log.info("PostgreSQL cluster created in %s", self.data_dir)

    def _run(
        self, program: Path, *args: str, user: ServerUser | None, stdin: str | None = None
    ) -> str:
        result = subprocess.run(
            [str(program), *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            cwd=self.directory,
            env=_server_env(),
            **_as_user(user),
        )
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise OrangeScrumError(
                f"`{program.name}` failed in {self.directory} (exit {result.returncode}): "
                f"{' '.join(tail)}"
            )
        return result.stdout + result.stderr

    def _launch(self, binaries: Path, user: ServerUser | None) -> subprocess.Popen[bytes]:
        socket_dir = str(self.data_dir)
        if len(f"{socket_dir}/.s.PGSQL.{self.port}") > MAX_SOCKET_PATH:
            log.debug("%s is too long a path for a unix socket: TCP only", socket_dir)
            socket_dir = ""
        command = [
            str(binaries / "postgres"),
            "-D",
            str(self.data_dir),
            "-c",
            f"listen_addresses={HOST}",
            "-c",
            f"port={self.port}",
            "-c",
            f"unix_socket_directories={socket_dir}",
        ]
        with self.log_file.open("ab") as output:
            return subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                env=_server_env(),
                # Its own process group: a Ctrl-C meant for Airflow must not stop the database
                # Airflow still needs while it shuts down; stop() ends it afterwards.
                start_new_session=True,
                **_as_user(user),
            )

    def _wait_until_ready(self, timeout_seconds: float) -> None:
        import psycopg2

        deadline = time.monotonic() + timeout_seconds
        error: object = "no answer"
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise OrangeScrumError(
                    f"PostgreSQL exited while starting on {HOST}:{self.port}; see {self.log_file}."
                )
            try:
                psycopg2.connect(**self.connect_args(), connect_timeout=2).close()
                return
            except psycopg2.OperationalError as failure:  # not accepting connections yet
                error = str(failure).strip()
            time.sleep(0.2)
        raise OrangeScrumError(
            f"PostgreSQL did not accept the `{ROLE}` role on {HOST}:{self.port} within "
            f"{timeout_seconds:.0f}s ({error}); see {self.log_file}."
        )


def _server_env() -> dict[str, str]:
    # A user's PGDATA, PGPORT, ... would redirect initdb and the server.
    return {name: value for name, value in os.environ.items() if not name.startswith("PG")}


def _as_user(user: ServerUser | None) -> dict[str, object]:
    """subprocess keywords that run a program as `user` (nothing when it is ourselves)."""
    if user is None:
        return {}
    return {"user": user.uid, "group": user.gid, "extra_groups": user.groups}


def _require_reachable(directory: Path, user: ServerUser) -> None:
    """The server's user can enter every folder above its data, or one sentence on what to do."""
    directory = directory.resolve()
    for folder in [*reversed(directory.parents), directory]:
        if not user.may_enter(folder):
            raise OrangeScrumError(
                f"PostgreSQL runs as the `{user.name}` user here (never as root), which cannot "
                f"enter {folder}: point ORANGESCRUM_DATA_DIR at a folder it can reach, or let it "
                f"through with `chmod o+x {folder}`."
            )
