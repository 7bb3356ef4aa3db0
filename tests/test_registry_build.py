"""Building the local schema registry: Maven found or downloaded, one build, failures named."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from orangescrum.core.apicurio import build as registry_build
from orangescrum.core.apicurio import maven as maven_module
from orangescrum.core.apicurio.build import (
    apicurio_version,
    build_log,
    build_registry,
    is_built,
    runner_jar,
)
from orangescrum.core.apicurio.maven import MAVEN_VERSION, download_maven, maven, maven_home
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.settings import Settings

FAKE_MVN = "#!/bin/sh\necho 'fake Maven: Could not resolve io.apicurio:nothing'\nexit 3\n"


def fake_maven_archive(folder: Path) -> tuple[Path, str]:
    """A tar.gz shaped like Maven's binary distribution; its path and SHA-512."""
    archive = folder / "maven.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        body = FAKE_MVN.encode()
        member = tarfile.TarInfo(f"apache-maven-{MAVEN_VERSION}/bin/mvn")
        member.size, member.mode = len(body), 0o755
        tar.addfile(member, io.BytesIO(body))
    return archive, hashlib.sha512(archive.read_bytes()).hexdigest()


def without_mvn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A PATH with java but no mvn."""
    java_only = tmp_path / "java-only"
    java_only.mkdir()
    java = subprocess.run(
        ["sh", "-c", "command -v java"], capture_output=True, text=True, check=True
    ).stdout.strip()
    (java_only / "java").symlink_to(java)
    monkeypatch.setenv("PATH", str(java_only))


def test_the_pom_names_the_release_it_builds() -> None:
    assert apicurio_version() == "2.4.2.Final"


def test_maven_on_path_is_used_as_it_is(monkeypatch, tmp_path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mvn").write_text(FAKE_MVN)
    (bin_dir / "mvn").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert maven(tmp_path / "cache") == str(bin_dir / "mvn")
    assert not (tmp_path / "cache").exists()  # nothing downloaded


def test_without_mvn_maven_is_downloaded_once_and_checked(monkeypatch, tmp_path) -> None:
    archive, digest = fake_maven_archive(tmp_path)
    cache = tmp_path / "cache"
    mvn = download_maven(cache, url=archive.as_uri(), sha512=digest)
    assert mvn == maven_home(cache) / "bin" / "mvn"
    assert subprocess.run([mvn], capture_output=True).returncode == 3  # executable bit kept
    # Unpacked once: a second call reads nothing (the URL would fail).
    assert download_maven(cache, url="file:///nowhere", sha512=digest) == mvn
    assert [p.name for p in cache.iterdir()] == [f"apache-maven-{MAVEN_VERSION}"]


def test_a_download_with_the_wrong_digest_is_refused_and_not_kept(tmp_path) -> None:
    archive, _ = fake_maven_archive(tmp_path)
    cache = tmp_path / "cache"
    with pytest.raises(OrangeScrumError, match="does not match its published SHA-512"):
        download_maven(cache, url=archive.as_uri(), sha512="0" * 128)
    assert list(cache.iterdir()) == []


def test_an_unreachable_download_is_one_sentence(tmp_path) -> None:
    with pytest.raises(OrangeScrumError, match=r"Could not download Apache Maven .*apt-get"):
        download_maven(tmp_path / "cache", url=(tmp_path / "missing.tar.gz").as_uri())


def test_without_mvn_the_build_uses_a_downloaded_maven_and_names_its_log(
    monkeypatch, tmp_path
) -> None:
    without_mvn(monkeypatch, tmp_path)
    archive, digest = fake_maven_archive(tmp_path)
    # The real choice (no mvn on PATH -> download), from a local archive instead of Central.
    monkeypatch.setattr(
        maven_module,
        "download_maven",
        lambda cache: download_maven(cache, archive.as_uri(), digest),
    )
    cache = tmp_path / "cache"
    with pytest.raises(OrangeScrumError) as failure:
        build_registry(cache)
    message = str(failure.value)
    assert f"details in {build_log(cache)}" in message
    assert "exit code 3" in message and "orangescrum registry build" in message
    assert "\n" not in message
    assert "Could not resolve io.apicurio:nothing" in build_log(cache).read_text()
    assert not is_built(cache)
    assert (maven_home(cache) / "bin" / "mvn").is_file()


@pytest.mark.slow
def test_maven_downloads_from_maven_central_when_none_is_installed(tmp_path) -> None:
    mvn = download_maven(tmp_path / "cache")
    result = subprocess.run([mvn, "--version"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Apache Maven {MAVEN_VERSION}" in result.stdout


@pytest.mark.slow
def test_a_second_build_does_nothing(monkeypatch) -> None:
    cache = Settings(_env_file=None).jar_cache_dir
    jar = build_registry(cache)  # builds only on a cache `make setup` has not filled
    assert jar == runner_jar(cache) and jar.is_file()

    def no_maven(*args: object, **kwargs: object) -> None:
        raise AssertionError("a built registry must not run Maven again")

    monkeypatch.setattr(registry_build.subprocess, "run", no_maven)
    started = time.monotonic()
    assert build_registry(cache) == jar
    assert time.monotonic() - started < 1
