"""Apache Maven for the registry's one build: the `mvn` on PATH, else a pinned release.

A machine set up for this project needs Python and Java, not Maven: without `mvn` on PATH the
binary distribution of Maven 3.9.9 is downloaded once from Maven Central (the host the jars
already come from), checked against its published SHA-512, and kept in the jar cache.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from typing import Final

from orangescrum.core.errors import OrangeScrumError

log = logging.getLogger(__name__)

MAVEN_VERSION: Final = "3.9.9"
MAVEN_URL: Final = (
    "https://repo1.maven.org/maven2/org/apache/maven/apache-maven/"
    f"{MAVEN_VERSION}/apache-maven-{MAVEN_VERSION}-bin.tar.gz"
)
# What Maven Central publishes beside the archive (apache-maven-3.9.9-bin.tar.gz.sha512), pinned
# here: a truncated or substituted download never runs.
MAVEN_SHA512: Final = (
    "a555254d6b53d267965a3404ecb14e53c3827c09c3b94b5678835887ab404556"
    "bfaf78dcfe03ba76fa2508649dca8531c74bca4d5846513522404d48e8c4ac8b"
)
DOWNLOAD_TIMEOUT_SECONDS: Final = 60


def maven_home(cache_dir: Path) -> Path:
    return cache_dir / f"apache-maven-{MAVEN_VERSION}"


def maven(cache_dir: Path) -> str:
    """The mvn executable: PATH's (it may carry a site's mirror settings), else the cached one."""
    return shutil.which("mvn") or str(download_maven(cache_dir))


def download_maven(cache_dir: Path, url: str = MAVEN_URL, sha512: str = MAVEN_SHA512) -> Path:
    """bin/mvn of Maven MAVEN_VERSION under cache_dir, downloaded and unpacked the first time."""
    home = maven_home(cache_dir)
    executable = home / "bin" / "mvn"
    if executable.is_file():
        return executable
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("downloading Apache Maven %s from %s", MAVEN_VERSION, url)
    # Unpacked beside its final place and renamed: a half-written Maven never looks usable.
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".maven-") as work:
        archive = Path(work) / "maven.tar.gz"
        try:
            with (
                urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response,
                archive.open("wb") as output,
            ):
                shutil.copyfileobj(response, output)
        except OSError as error:  # URLError, timeouts and refused connections alike
            raise OrangeScrumError(
                f"Could not download Apache Maven {MAVEN_VERSION} from {url} ({error}): check "
                "the network, or install Maven (Debian: `apt-get install maven`)."
            ) from None
        digest = hashlib.sha512(archive.read_bytes()).hexdigest()
        if digest != sha512:
            raise OrangeScrumError(
                f"The Apache Maven download from {url} does not match its published SHA-512 "
                f"(got {digest[:16]}...): try again later, or install Maven (Debian: "
                "`apt-get install maven`)."
            )
        with tarfile.open(archive) as tar:
            # "data": no absolute paths, links out of the folder or device files.
            tar.extractall(work, filter="data")
        unpacked = Path(work) / home.name
        if not (unpacked / "bin" / "mvn").is_file():
            raise OrangeScrumError(f"The archive at {url} holds no {home.name}/bin/mvn.")
        unpacked.rename(home)
    return executable
