"""JVM dependencies (Kafka broker, Kafka Connect + Debezium, Spark connectors) from Maven Central.

They are resolved with the Apache Ivy jar that pyspark's wheel ships, so a machine needs
Python and Java but no Maven. Top-level coordinates are pinned here; Maven Central's POMs
never change, so the transitive set is pinned with them. Downloads land in one Ivy cache
(Settings.jar_cache_dir) and each resolved classpath is remembered there: after `make setup`
(`orangescrum jars fetch`) nothing is downloaded again and no resolution runs.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from orangescrum.core.errors import OrangeScrumError

log = logging.getLogger(__name__)

IVY_SETTINGS = Path(__file__).resolve().parent / "ivysettings.xml"
KAFKA_VERSION = "4.4.0"
SCALA_BINARY_VERSION = "2.13"


@dataclass(frozen=True)
class Module:
    organisation: str
    name: str
    revision: str
    # A Maven classifier ("shaded"): that one artifact, without the POM's dependencies.
    classifier: str = ""

    @property
    def coordinate(self) -> str:
        suffix = f":jar:{self.classifier}" if self.classifier else ""
        return f"{self.organisation}:{self.name}:{self.revision}{suffix}"


# The broker, and the SLF4J binding that sends its logs to log4j2 (Kafka's distribution
# ships one in libs/; the Maven artifact does not depend on it).
KAFKA_BROKER_MODULES = (
    Module("org.apache.kafka", f"kafka_{SCALA_BINARY_VERSION}", KAFKA_VERSION),
    Module("org.apache.logging.log4j", "log4j-slf4j-impl", "2.25.5"),
)
# Kafka Connect and Debezium's MariaDB connector on one classpath (the connector's own jars
# sit beside the runtime's; no plugin.path isolation is needed for a single plugin).
# Connect stays on 4.3: Debezium 3.5 fails on 4.4's runtime (a Sanitizer class it uses moved);
# a 4.3 worker talks to the 4.4 broker. Debezium's MySQL connector refuses MariaDB, so it is
# the MariaDB one. Debezium asks for Jackson's jsr310 module 2.19 while Connect brings
# jackson-databind 2.21: pinning the module to 2.21 keeps one Jackson version.
CONNECT_VERSION = "4.3.0"
DEBEZIUM_VERSION = "3.5.0.Final"
KAFKA_CONNECT_MODULES = (
    Module("org.apache.kafka", "connect-runtime", CONNECT_VERSION),
    Module("org.apache.kafka", "connect-json", CONNECT_VERSION),
    Module("io.debezium", "debezium-connector-mariadb", DEBEZIUM_VERSION),
    Module("com.fasterxml.jackson.datatype", "jackson-datatype-jsr310", "2.21.2"),
    Module("org.apache.logging.log4j", "log4j-slf4j-impl", "2.25.5"),
)
# Google's Cloud Storage connector, the release Dataproc's 3.0 images ship with Spark 4.1 and
# Hadoop 3.5 (image 3.0.2; pyspark 4.2's wheel carries Hadoop 3.5.0 too). The shaded jar bundles
# its Google client libraries under a private package, so they cannot clash with Spark's.
GCS_CONNECTOR = Module("com.google.cloud.bigdataoss", "gcs-connector", "4.0.4", classifier="shaded")
# pyspark's wheel already carries these (same versions); a second copy on the classpath
# only risks conflicts.
SPARK_PACKAGE_EXCLUDES = (
    "org.apache.hadoop:hadoop-client-api",
    "org.apache.hadoop:hadoop-client-runtime",
)


def spark_version() -> str:
    # Package metadata, not `import pyspark`: the broker needs these jars without Spark.
    return importlib.metadata.version("pyspark")


def spark_modules() -> tuple[Module, ...]:
    """Spark's own Kafka source and spark-avro, matching the installed pyspark."""
    version = spark_version()
    return (
        Module("org.apache.spark", f"spark-sql-kafka-0-10_{SCALA_BINARY_VERSION}", version),
        Module("org.apache.spark", f"spark-avro_{SCALA_BINARY_VERSION}", version),
    )


def java() -> str:
    """The java executable (JAVA_HOME first, then PATH), or one sentence on how to get it."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise OrangeScrumError(
            "Kafka and Spark need Java 17 and none was found: install it (Debian: "
            "`apt-get install openjdk-17-jre-headless`) or set JAVA_HOME."
        )
    return found


def ivy_jar() -> Path:
    spec = importlib.util.find_spec("pyspark")
    folders = list(spec.submodule_search_locations or []) if spec else []
    jars = sorted(jar for folder in folders for jar in (Path(folder) / "jars").glob("ivy-*.jar"))
    if not jars:
        raise OrangeScrumError(
            "pyspark's Apache Ivy jar (pyspark/jars/ivy-*.jar) is missing; reinstall with "
            "`make setup`."
        )
    return jars[-1]


def _dependency(m: Module) -> str:
    head = (
        f"    <dependency org={quoteattr(m.organisation)} name={quoteattr(m.name)} "
        f'rev={quoteattr(m.revision)} conf="default->default"'
    )
    if not m.classifier:
        return head + "/>"
    # A shaded jar already holds what the POM lists, so nothing transitive comes with it.
    return (
        f'{head} transitive="false">\n      <artifact name={quoteattr(m.name)} type="jar" '
        f'ext="jar" m:classifier={quoteattr(m.classifier)}/>\n    </dependency>'
    )


def _ivy_file(modules: tuple[Module, ...], excludes: tuple[str, ...]) -> str:
    dependencies = "\n".join(_dependency(m) for m in modules)
    exclusions = "\n".join(
        f"    <exclude org={quoteattr(org)} module={quoteattr(name)}/>"
        for org, name in (exclude.split(":") for exclude in excludes)
    )
    return (
        '<ivy-module version="2.0" xmlns:m="http://ant.apache.org/ivy/maven">\n'
        '  <info organisation="orangescrum" module="jvm-dependencies"/>\n'
        '  <configurations><conf name="default"/></configurations>\n'
        f"  <dependencies>\n{dependencies}\n{exclusions}\n  </dependencies>\n"
        "</ivy-module>\n"
    )


def resolve(
    modules: tuple[Module, ...], cache_dir: Path, name: str, excludes: tuple[str, ...] = ()
) -> list[Path]:
    """The jars of `modules` and everything they depend on, downloaded once into cache_dir.

    The classpath is remembered per name and pin, so later calls start no JVM at all.
    """
    pins = "-".join(m.revision for m in modules)
    memo = cache_dir / "classpaths" / f"{name}-{pins}.txt"
    if memo.is_file():
        jars = [Path(entry) for entry in memo.read_text().split(":") if entry]
        if jars and all(jar.is_file() for jar in jars):
            return jars
    memo.parent.mkdir(parents=True, exist_ok=True)
    log.info("resolving %s from Maven Central into %s", name, cache_dir)
    with tempfile.TemporaryDirectory(prefix="orangescrum-ivy-") as work:
        ivy_xml = Path(work) / "ivy.xml"
        ivy_xml.write_text(_ivy_file(modules, excludes))
        output = Path(work) / "classpath.txt"
        command = [
            java(),
            "-jar",
            str(ivy_jar()),
            "-settings",
            str(IVY_SETTINGS),
            "-ivy",
            str(ivy_xml),
            "-confs",
            "default",
            "-cache",
            str(cache_dir / "cache"),
            "-cachepath",
            str(output),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not output.is_file():
            log_file = cache_dir / f"resolve-{name}.log"
            log_file.write_text(result.stdout + result.stderr)
            raise OrangeScrumError(
                f"Could not resolve {', '.join(m.coordinate for m in modules)} from Maven "
                f"Central (details in {log_file}); check the network, then run "
                "`orangescrum jars fetch` again."
            )
        memo.write_text(output.read_text().strip())
    return [Path(entry) for entry in memo.read_text().split(":") if entry]


def kafka_classpath(cache_dir: Path) -> list[Path]:
    return resolve(KAFKA_BROKER_MODULES, cache_dir, "kafka-broker")


def connect_classpath(cache_dir: Path) -> list[Path]:
    """Kafka Connect's worker with Debezium's MariaDB connector (orangescrum/core/connect.py)."""
    return resolve(KAFKA_CONNECT_MODULES, cache_dir, "kafka-connect")


def spark_connector_jars(cache_dir: Path) -> list[Path]:
    """Jars for `spark.jars`; the same as `--packages` with the coordinates of spark_modules()."""
    return resolve(spark_modules(), cache_dir, "spark-connectors", SPARK_PACKAGE_EXCLUDES)


def gcs_connector_jars(cache_dir: Path) -> list[Path]:
    """Google's Cloud Storage connector for Hadoop: Spark's gs:// filesystem (spark.jars)."""
    return resolve((GCS_CONNECTOR,), cache_dir, "gcs-connector")


def fetch_all(cache_dir: Path) -> dict[str, int]:
    """Download every JVM dependency the project runs (set-up); jar counts by use."""
    return {
        "kafka-broker": len(kafka_classpath(cache_dir)),
        "kafka-connect": len(connect_classpath(cache_dir)),
        "spark-connectors": len(spark_connector_jars(cache_dir)),
        "gcs-connector": len(gcs_connector_jars(cache_dir)),
    }
