"""Build Apicurio Registry once: pom.xml beside this file, `mvn package`, quarkus-run.jar.

The build runs in <jar cache>/apicurio-registry-<version>/ with its own Maven repository in
<jar cache>/maven-repository (about 230 MB), so like the jars it happens once per machine and
`make setup` (`orangescrum jars fetch`) does it: about a minute cold, 40-50 s when that
repository is already filled. A built folder remembers the digest of the pom and maven.config it
was built from; while they are unchanged, building again does nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Final

from orangescrum.core.apicurio.maven import maven
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.jars import java
from orangescrum.core.processes import stop_with_parent

log = logging.getLogger(__name__)

PROJECT_DIR: Final = Path(__file__).resolve().parent
# Committed as Maven lays them out, so `mvn package` in a copy of the folder is the build.
PROJECT_FILES: Final = ("pom.xml", ".mvn/maven.config")
_POM_NAMESPACE: Final = {"m": "http://maven.apache.org/POM/4.0.0"}


@cache
def apicurio_version() -> str:
    """The Apicurio Registry release pom.xml builds (its one place)."""
    root = ET.parse(PROJECT_DIR / "pom.xml").getroot()
    version = root.findtext("m:properties/m:apicurio.version", namespaces=_POM_NAMESPACE)
    if not version:
        raise OrangeScrumError(f"{PROJECT_DIR / 'pom.xml'} names no apicurio.version.")
    return version


def build_dir(cache_dir: Path) -> Path:
    return cache_dir / f"apicurio-registry-{apicurio_version()}"


def runner_jar(cache_dir: Path) -> Path:
    return build_dir(cache_dir) / "target" / "quarkus-app" / "quarkus-run.jar"


def build_log(cache_dir: Path) -> Path:
    return build_dir(cache_dir) / "build.log"


def maven_repository(cache_dir: Path) -> Path:
    return cache_dir / "maven-repository"


def _project_digest() -> str:
    digest = hashlib.sha256()
    for name in PROJECT_FILES:
        digest.update(name.encode() + b"\0" + (PROJECT_DIR / name).read_bytes())
    return digest.hexdigest()


def _marker(cache_dir: Path) -> Path:
    return build_dir(cache_dir) / "built.json"


def is_built(cache_dir: Path) -> bool:
    """quarkus-run.jar exists and was built from the committed pom.xml and maven.config.

    The marker is written after Maven succeeds, so a build interrupted after the jar but
    before its lib/ was complete is not taken for a finished one.
    """
    try:
        built = json.loads(_marker(cache_dir).read_text())
    except (OSError, ValueError):
        return False
    return built.get("project_digest") == _project_digest() and runner_jar(cache_dir).is_file()


@contextmanager
def _build_lock(cache_dir: Path) -> Iterator[None]:
    """One build at a time per cache (`make setup` and a test run may both ask for it)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / "apicurio-registry.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build_registry(cache_dir: Path) -> Path:
    """quarkus-run.jar of Apicurio Registry, built into cache_dir the first time.

    Raises OrangeScrumError with one sentence naming the build log when Maven fails.
    """
    if is_built(cache_dir):
        return runner_jar(cache_dir)
    with _build_lock(cache_dir):
        if is_built(cache_dir):  # built by another process while this one waited
            return runner_jar(cache_dir)
        java()  # one sentence if there is none, before any download
        mvn = maven(cache_dir)
        folder = build_dir(cache_dir)
        _marker(cache_dir).unlink(missing_ok=True)
        for name in PROJECT_FILES:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(PROJECT_DIR / name, folder / name)
        log_file = build_log(cache_dir)
        log.info(
            "building Apicurio Registry %s with %s in %s (log: %s)",
            apicurio_version(),
            mvn,
            folder,
            log_file,
        )
        started = time.monotonic()
        code = _run_maven(mvn, cache_dir, folder, log_file)
        if code != 0 or not runner_jar(cache_dir).is_file():
            raise OrangeScrumError(
                f"Building Apicurio Registry {apicurio_version()} with Maven failed (exit code "
                f"{code}; details in {log_file}): check the network, then run `orangescrum "
                "registry build` again."
            )
        _marker(cache_dir).write_text(
            json.dumps({"project_digest": _project_digest(), "maven": mvn})
        )
        log.info("Apicurio Registry built in %.0f s", time.monotonic() - started)
    return runner_jar(cache_dir)


def _run_maven(mvn: str, cache_dir: Path, folder: Path, log_file: Path) -> int:
    command = [
        mvn,
        "--batch-mode",
        # Download progress is most of a cold build's output; failures still name the artifact.
        "--no-transfer-progress",
        f"-Dmaven.repo.local={maven_repository(cache_dir)}",
        # clean: a pom changed since the last build starts from nothing left by the old one.
        "clean",
        "package",
    ]
    with log_file.open("wb") as output:
        output.write((" ".join(command) + "\n").encode())
        output.flush()
        # On Ctrl-C/SIGTERM run() kills Maven; stop_with_parent covers a SIGKILLed parent.
        return subprocess.run(
            command,
            cwd=folder,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
            preexec_fn=stop_with_parent,
        ).returncode
