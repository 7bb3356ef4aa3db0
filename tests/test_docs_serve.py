"""`orangescrum docs serve`: serves the catalog, then SIGTERM stops it and frees the port.

The target folder is a minimal one (catalog.json and manifest.json): the command copies dbt's
own index.html next to them, which is all the site needs to load, so no warehouse is built.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from orangescrum.core.processes import HOST, free_port, port_is_free
from tests.conftest import sigterm_when_ready

pytestmark = pytest.mark.slow  # a CLI subprocess that imports dbt (a few seconds)


@dataclass
class Site:
    """What the running server answered, recorded by `ready()` before the SIGTERM."""

    port: int
    process: subprocess.Popen[bytes]
    index_status: int | None = None
    index_title_found: bool = False
    catalog: bytes = b""
    children: list[int] = field(default_factory=list)
    # A browser keeps connections open: one idle connection must not hold the shutdown up.
    idle_connection: socket.socket | None = None

    def ready(self) -> bool:
        if port_is_free(self.port):
            return False
        base = f"http://{HOST}:{self.port}"
        with urllib.request.urlopen(f"{base}/", timeout=30) as response:
            self.index_status = response.status
            self.index_title_found = b"<title>dbt Docs</title>" in response.read()
        with urllib.request.urlopen(f"{base}/catalog.json", timeout=30) as response:
            self.catalog = response.read()
        self.children = [child.pid for child in psutil.Process(self.process.pid).children()]
        self.idle_connection = socket.create_connection((HOST, self.port), timeout=30)
        return True


def test_docs_serve_serves_the_index_and_stops_on_sigterm(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "catalog.json").write_text('{"nodes": {}, "sources": {}}')
    (target / "manifest.json").write_text('{"nodes": {}}')
    port = free_port()
    env = os.environ | {"ORANGESCRUM_DATA_DIR": str(tmp_path / "state"), "HOME": str(tmp_path)}
    output = tmp_path / "serve.txt"
    command = ["docs", "serve", "--port", str(port), "--target-path", str(target)]
    with output.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "orangescrum", *command], env=env, stdout=sink, stderr=sink
        )
    site = Site(port, process)
    try:
        printed = sigterm_when_ready(process, site.ready, output)
    finally:
        if site.idle_connection is not None:
            site.idle_connection.close()

    assert site.index_status == 200
    assert site.index_title_found, "the index page is not dbt's docs site"
    assert site.catalog == b'{"nodes": {}, "sources": {}}'
    assert site.children == []  # the server runs in the command's own process

    # Documented: SIGTERM stops it like Ctrl-C, "interrupted", exit 130.
    assert process.returncode == 130, printed
    assert printed.strip().splitlines()[-1] == "interrupted"
    assert "Traceback" not in printed
    assert not psutil.pid_exists(process.pid)
    assert port_is_free(port)  # the listening socket was closed, nothing else holds it
