"""The local Apicurio Registry: a managed JVM on a loopback port, its storage under the data dir.

Subjects, versions and ids live in an H2 database file in <data_dir>/schema-registry/, so a
restart keeps every id that messages in Kafka carry (Apicurio's default, H2 in memory, would
forget them). The port it last used is kept there too and reused when free, so
ORANGESCRUM_SCHEMA_REGISTRY_URL stays valid across restarts. Its default compatibility rule is
the contract's (registry.json, FULL): without one Apicurio accepts any new version.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from orangescrum.core.apicurio.build import build_registry
from orangescrum.core.contract import REGISTRY_FILE
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.jars import java
from orangescrum.core.processes import (
    HOST,
    ManagedService,
    claim_port,
    free_port,
    port_is_free,
    stop_process,
    stop_with_parent,
)

if TYPE_CHECKING:
    from orangescrum.core.settings import Settings

log = logging.getLogger(__name__)

# The Confluent Schema Registry API; clients (ORANGESCRUM_SCHEMA_REGISTRY_URL) take it as base.
CCOMPAT_PATH: Final = "/apis/ccompat/v7"
# At rest it needs 160-190 MB RSS with this heap; the serial collector keeps a small service
# from running a GC thread per core on a shared 2-core machine.
JVM_OPTIONS: Final = ("-Xms32m", "-Xmx256m", "-XX:+UseSerialGC", "-Djava.awt.headless=true")
# Quarkus stops in well under a second; H2 closes its file on the way.
STOP_TIMEOUT_SECONDS: Final = 20
# 8-12 s on an idle 2-core machine; more while other JVMs start beside it.
START_TIMEOUT_SECONDS: Final = 120
RUNNER: Final = "quarkus-run.jar"


def contract_compatibility() -> str:
    """The contract's compatibility mode (registry.json), as Apicurio's rule names it."""
    return str(json.loads(REGISTRY_FILE.read_text())["compatibility"]).upper()


class LocalSchemaRegistry(ManagedService):
    """Apicurio Registry on 127.0.0.1:`port` (remembered, else free, when None); stopped on exit.

    Its H2 database, log and state file live in `directory`; the runnable jar is built into
    `jar_cache_dir` on first use (orangescrum/core/apicurio/build.py). `jvm_options`
    (ORANGESCRUM_JVM_OPTIONS, which `from_settings` passes) follow the built-in JVM_OPTIONS.
    """

    def __init__(
        self,
        directory: Path,
        jar_cache_dir: Path,
        *,
        port: int | None = None,
        compatibility: str | None = None,
        jvm_options: Sequence[str] = (),
    ) -> None:
        self.directory = directory
        self.jar_cache_dir = jar_cache_dir
        self.requested_port = port
        self.compatibility = compatibility or contract_compatibility()
        self.jvm_options = tuple(jvm_options)
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, port: int | None = None) -> LocalSchemaRegistry:
        return cls(
            settings.schema_registry_data_dir,
            settings.jar_cache_dir,
            port=port,
            jvm_options=settings.jvm_arguments,
        )

    # --- layout ---------------------------------------------------------------------------
    @property
    def database(self) -> Path:
        return database_path(self.directory)

    @property
    def log_file(self) -> Path:
        return self.directory / "registry.log"

    @property
    def state_file(self) -> Path:
        return self.directory / "registry.json"

    @property
    def url(self) -> str:
        """What ORANGESCRUM_SCHEMA_REGISTRY_URL takes."""
        return f"http://{HOST}:{self.port}{CCOMPAT_PATH}"

    # --- lifecycle ------------------------------------------------------------------------
    def start(self, timeout_seconds: float = START_TIMEOUT_SECONDS) -> LocalSchemaRegistry:
        """Build if needed, start, and wait until the API answers (or one sentence on why not)."""
        self.launch()
        self.wait_until_ready(timeout_seconds)
        return self

    def launch(self) -> LocalSchemaRegistry:
        """Build if needed and start the JVM without waiting for it (`url` is known from here
        on); `wait_until_ready` waits. The demo starts its broker in between."""
        java_binary = java()
        jar = build_registry(self.jar_cache_dir)
        if (pid := running_pid(self.directory)) is not None:
            raise OrangeScrumError(
                f"The schema registry in {self.directory} is already running (pid {pid}); stop "
                "it first (Ctrl-C in its terminal)."
            )
        self.port = self._choose_port()
        self.database.parent.mkdir(parents=True, exist_ok=True)
        command = self.command(java_binary, jar)
        with self.log_file.open("ab") as output:
            self._process = subprocess.Popen(
                command,
                cwd=self.directory,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=stop_with_parent,
            )
        self.state_file.write_text(json.dumps({"port": self.port, "pid": self._process.pid}))
        return self

    def command(self, java_binary: str, jar: Path) -> list[str]:
        """The JVM's command line: the caller's options after the built-ins (the last of a JVM
        option wins), then the system properties and the runnable jar."""
        return [java_binary, *JVM_OPTIONS, *self.jvm_options, *self._properties(), "-jar", str(jar)]

    def wait_until_ready(self, timeout_seconds: float = START_TIMEOUT_SECONDS) -> None:
        """Wait until the launched registry answers; stopped, with one sentence, if it does not."""
        try:
            self._wait_until_ready(timeout_seconds)
        except BaseException:
            self.stop()
            raise
        log.info("schema registry ready on %s (data: %s)", self.url, self.directory)

    def _choose_port(self) -> int:
        if self.requested_port is not None:
            return claim_port(self.requested_port, "omit --port to pick a free one")
        remembered = remembered_port(self.directory)
        if remembered is not None and port_is_free(remembered):
            return remembered
        return free_port()

    def _properties(self) -> list[str]:
        """Quarkus and Apicurio settings as system properties: they outrank both the app's
        application.properties and environment variables (a QUARKUS_HTTP_PORT in the shell)."""
        # WRITE_DELAY=0: H2 writes each commit to the file at once instead of within 0.5 s,
        # so even a SIGKILLed registry keeps every id it handed out (registrations are rare).
        database_url = f"jdbc:h2:file:{self.database};WRITE_DELAY=0"
        return [
            f"-Dquarkus.http.host={HOST}",
            f"-Dquarkus.http.port={self.port}",
            f"-Dquarkus.datasource.jdbc.url={database_url}",
            # Apicurio's default global rule (the API can still set one per subject).
            f"-Dregistry.rules.global.compatibility={self.compatibility}",
        ]

    def _wait_until_ready(self, timeout_seconds: float) -> None:
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if (code := self.exit_code()) is not None:
                raise OrangeScrumError(
                    f"The schema registry exited with code {code} while starting; see "
                    f"{self.log_file}."
                )
            if answers(self.url):
                return
            time.sleep(0.5)
        raise OrangeScrumError(
            f"The schema registry did not answer on {self.url} within {timeout_seconds:.0f}s; "
            f"see {self.log_file}."
        )

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def exit_code(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def stop(self) -> None:
        if self._process is None:
            return
        stop_process(self._process, STOP_TIMEOUT_SECONDS)
        self._process = None
        log.info("schema registry on %s stopped", self.url)


def database_path(directory: Path) -> Path:
    """H2's database name: H2 adds `.mv.db` to it for the file itself."""
    return directory / "h2" / "registry"


def answers(url: str) -> bool:
    """The registry at `url` lists its subjects (Quarkus answers 404 until the app is up)."""
    try:
        with urllib.request.urlopen(f"{url}/subjects", timeout=2) as response:
            return response.status == 200
    except OSError:  # refused, reset, timed out; HTTPError (a 404) too
        return False


def _state(directory: Path) -> dict[str, int]:
    try:
        state = json.loads((directory / "registry.json").read_text())
        return {"port": int(state["port"]), "pid": int(state["pid"])}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def remembered_port(directory: Path) -> int | None:
    return _state(directory).get("port")


def running_pid(directory: Path) -> int | None:
    """The pid of the registry started on `directory`'s database, if it still runs."""
    pid = _state(directory).get("pid")
    if pid is None:
        return None
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    database = str(database_path(directory)).encode()
    return pid if RUNNER.encode() in command and database in command else None
