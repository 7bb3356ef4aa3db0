"""`orangescrum demo --keep-running`: broker, schema registry, dashboard and dbt docs up until
SIGTERM, then gone."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from orangescrum.core.apicurio.server import answers
from orangescrum.core.broker import wait_until_ready
from orangescrum.core.processes import free_port, port_is_free

ADDRESSES = re.compile(
    r"^kafka:\s+(?P<kafka>\S+).*\n^registry:\s+(?P<registry>http://\S+)\s+"
    r"\(export ORANGESCRUM_SCHEMA_REGISTRY_URL=(?P=registry)\)\n"
    r"^dashboard:\s+(?P<dashboard>http://\S+)\n^dbt docs:\s+(?P<docs>http://\S+)$",
    re.MULTILINE,
)


def port_of(address: str) -> int:
    """The port of a URL (http://host:port/path) or of host:port."""
    port = urlsplit(address if "://" in address else f"//{address}").port
    assert port is not None, address
    return port


@pytest.mark.slow
def test_keep_running_serves_until_sigterm_then_frees_every_port(tmp_path: Path) -> None:
    output = tmp_path / "demo.log"
    env = os.environ | {
        "ORANGESCRUM_DATA_DIR": str(tmp_path / "state"),
        "ORANGESCRUM_DASHBOARD_PORT": str(free_port()),
    }
    command = [sys.executable, "-m", "orangescrum", "demo", "--keep-running"]
    with output.open("w") as log:
        process = subprocess.Popen(
            [*command, "--days", "1", "--companies", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 600
        while not (found := ADDRESSES.search(output.read_text())):
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(1)
        kafka, registry = found["kafka"], found["registry"]
        dashboard, docs = found["dashboard"], found["docs"]
        assert port_of(dashboard) == int(env["ORANGESCRUM_DASHBOARD_PORT"])
        wait_until_ready(kafka, timeout_seconds=10)
        assert answers(registry)
        for url in (dashboard, docs):
            with urllib.request.urlopen(url, timeout=30) as response:
                assert response.status == 200, url
        with urllib.request.urlopen(docs + "/catalog.json", timeout=30) as response:
            assert b"fact_activities" in response.read()
        assert process.poll() is None

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 130
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = output.read_text()
    assert "stopped dashboard, dbt docs, the Kafka broker, the schema registry" in text
    assert text.rstrip().endswith("interrupted")
    assert "Traceback" not in text
    for address in (kafka, registry, dashboard, docs):
        assert port_is_free(port_of(address)), f"{address} still taken:\n{text}"
