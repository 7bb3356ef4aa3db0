"""A Spark standalone cluster (one master, N workers) from pyspark's own launch scripts.

For trying the jobs on `spark://` exactly as they run on a real cluster, on one machine.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.jars import java
from orangescrum.core.processes import HOST, ManagedService, free_port, stop_process
from orangescrum.core.settings import Settings

log = logging.getLogger(__name__)


def spark_class() -> Path:
    from pyspark.find_spark_home import _find_spark_home

    return Path(_find_spark_home()) / "bin" / "spark-class"


class LocalSparkCluster(ManagedService):
    """A master and `workers` workers, each a JVM that spark-class starts; stopped on exit.

    `jvm_options` (ORANGESCRUM_JVM_OPTIONS, which `from_settings` passes) go to the master's
    and the workers' JVMs. Not -Xmx: Spark's launcher refuses it there (--memory sets what
    a worker offers its executors; the daemons' own heap is SPARK_DAEMON_MEMORY).
    """

    def __init__(
        self,
        log_dir: Path,
        workers: int = 1,
        cores_per_worker: int = 1,
        *,
        jvm_options: Sequence[str] = (),
    ) -> None:
        self.log_dir = log_dir
        self.workers = workers
        self.cores_per_worker = cores_per_worker
        self.jvm_options = tuple(jvm_options)
        self.port = free_port()
        self.ui_port = free_port()
        self._processes: list[subprocess.Popen[bytes]] = []

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        log_dir: Path | None = None,
        *,
        workers: int = 1,
        cores_per_worker: int = 1,
    ) -> LocalSparkCluster:
        """A cluster with the settings' JVM options, logging to `log_dir` (default the
        settings' log dir's spark/)."""
        return cls(
            log_dir or settings.log_dir / "spark",
            workers,
            cores_per_worker,
            jvm_options=settings.jvm_arguments,
        )

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.port}"

    def environment(self) -> dict[str, str]:
        """spark-class's environment for the master and the workers."""
        env = os.environ | {
            "SPARK_LOCAL_IP": HOST,
            "PYSPARK_PYTHON": sys.executable,
            # The REST submission server would take the fixed port 6066.
            "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",
        }
        if self.jvm_options:
            # Spark's launcher reads this variable for both daemons and splits it like a
            # shell, so a quoted option stays one; the user's own value comes first, ours
            # after it (the last of a JVM option wins).
            daemon = [os.environ.get("SPARK_DAEMON_JAVA_OPTS", ""), shlex.join(self.jvm_options)]
            env["SPARK_DAEMON_JAVA_OPTS"] = " ".join(option for option in daemon if option)
        return env

    def _launch(self, name: str, *args: str) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{name}.log").open("ab") as log_stream:
            self._processes.append(
                subprocess.Popen(
                    [str(spark_class()), *args],
                    stdout=log_stream,
                    stderr=subprocess.STDOUT,
                    env=self.environment(),
                )
            )

    def alive_workers(self) -> int:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.ui_port}/json/", timeout=2) as page:
                return int(json.load(page).get("aliveworkers", 0))
        except OSError:
            return 0

    def start(self, timeout_seconds: float = 90) -> LocalSparkCluster:
        java()
        self._launch(
            "master",
            "org.apache.spark.deploy.master.Master",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--webui-port",
            str(self.ui_port),
        )
        for index in range(self.workers):
            self._launch(
                f"worker-{index}",
                "org.apache.spark.deploy.worker.Worker",
                self.master_url,
                "--host",
                HOST,
                "--cores",
                str(self.cores_per_worker),
                "--memory",
                "1g",
                "--webui-port",
                str(free_port()),
            )
        deadline = time.monotonic() + timeout_seconds
        while self.alive_workers() < self.workers:
            if time.monotonic() > deadline or any(p.poll() is not None for p in self._processes):
                self.stop()
                raise OrangeScrumError(
                    f"the local Spark cluster did not come up; see the logs in {self.log_dir}"
                )
            time.sleep(0.5)
        log.info("Spark standalone master %s with %d worker(s)", self.master_url, self.workers)
        return self

    def stop(self) -> None:
        for process in reversed(self._processes):  # the worker, then the master
            stop_process(process, timeout_seconds=20)
        self._processes.clear()
