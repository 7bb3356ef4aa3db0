"""A Spark standalone cluster (one master, N workers) from pyspark's own launch scripts.

For trying the jobs on `spark://` exactly as they run on a real cluster, on one machine.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.jars import java
from orangescrum.core.processes import HOST, ManagedService, free_port, stop_process

log = logging.getLogger(__name__)


def spark_class() -> Path:
    from pyspark.find_spark_home import _find_spark_home

    return Path(_find_spark_home()) / "bin" / "spark-class"


class LocalSparkCluster(ManagedService):
    def __init__(self, log_dir: Path, workers: int = 1, cores_per_worker: int = 1) -> None:
        self.log_dir = log_dir
        self.workers = workers
        self.cores_per_worker = cores_per_worker
        self.port = free_port()
        self.ui_port = free_port()
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.port}"

    def _launch(self, name: str, *args: str) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = os.environ | {
            "SPARK_LOCAL_IP": HOST,
            "PYSPARK_PYTHON": sys.executable,
            # The REST submission server would take the fixed port 6066.
            "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",
        }
        with (self.log_dir / f"{name}.log").open("ab") as log_stream:
            self._processes.append(
                subprocess.Popen(
                    [str(spark_class()), *args],
                    stdout=log_stream,
                    stderr=subprocess.STDOUT,
                    env=env,
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
