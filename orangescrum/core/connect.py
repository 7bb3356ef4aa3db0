"""Kafka Connect with Debezium's MariaDB connector: the app database's binlog -> Kafka topics.

`LocalConnect` runs one Kafka Connect worker in distributed mode (a group of one), so the
connector's config, its binlog offsets and its status live in Kafka topics: a restarted worker
resumes streaming where it stopped instead of taking a new snapshot. Jars come from Maven
Central (orangescrum/core/jars.py). The connector's settings are
orangescrum/core/appdb/debezium-mariadb.json, filled from Settings. The database password never
enters them: Connect reads it from a 0600 file through its DirectoryConfigProvider, so the REST
API, the config topic and the logs only ever show the reference.

The cluster is the one the ORANGESCRUM_KAFKA_* settings name, with their security: the worker's
own clients, the `producer.`/`consumer.`/`admin.` clients it gives the connector, and Debezium's
schema-history producer and consumer all get the same Java client properties, the Kafka password
being a reference to a 0600 file beside the database's. On the local secured broker
(`broker start --security sasl_ssl`) that is the `connect` user, whose ACLs name the default
ORANGESCRUM_CONNECT_TOPIC_PREFIX.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from string import Template
from typing import Any, Final

import pymysql
from confluent_kafka import Consumer, KafkaException, TopicPartition

from orangescrum.core.appdb.connection import APP_TABLES, cdc_password
from orangescrum.core.broker import require_broker
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.jars import connect_classpath, java
from orangescrum.core.kafka_security import (
    CONNECT_STATUS_GROUP,
    connect_groups,
    connect_topics,
    jaas_quoted,
    java_client_properties,
    java_client_sentence,
)
from orangescrum.core.processes import (
    HOST,
    ManagedService,
    claim_port,
    stop_process,
    stop_with_parent,
)
from orangescrum.core.settings import Settings

log = logging.getLogger(__name__)

CONNECTOR_TEMPLATE: Final = Path(__file__).resolve().parent / "appdb" / "debezium-mariadb.json"
CONNECTOR_NAME: Final = "orangescrum-appdb"
MAIN_CLASS: Final = "org.apache.kafka.connect.cli.ConnectDistributed"
LOG4J_CONFIG: Final = Path(__file__).resolve().parent / "kafka-log4j2.properties"
PASSWORD_KEY: Final = "appdb-cdc-password"
KAFKA_PASSWORD_KEY: Final = "kafka-sasl-password"
DIRECTORY_PROVIDER: Final = "org.apache.kafka.common.config.provider.DirectoryConfigProvider"
# Clients the worker configures from its own properties with these prefixes: the connector's
# producer, a sink's consumer, the admin that creates the connector's topics.
CLIENT_PREFIXES: Final = ("producer.", "consumer.", "admin.")
SCHEMA_HISTORY_PREFIXES: Final = (
    "schema.history.internal.producer.",
    "schema.history.internal.consumer.",
)
# One worker with one connector needs little heap; on a shared 2-core machine less is better.
# The worker's properties may name config providers that Kafka instantiates on its own: this
# one only.
JVM_OPTIONS: Final = (
    "-Xms64m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-Djava.awt.headless=true",
    f"-Dorg.apache.kafka.automatic.config.providers={DIRECTORY_PROVIDER}",
)
# On SIGTERM the worker stops its tasks and commits their last offsets; give it the time.
STOP_TIMEOUT_SECONDS: Final = 30
# What the worker logs when its herder (group membership, the config/offset/status topics)
# gives up, a missing ACL for instance; its JVM then waits most of a minute for the REST
# server before it exits.
HERDER_EXIT: Final = "Uncaught exception in herder work thread, exiting"
# Offsets are committed this often while running: after a crash (not a clean stop) at most
# this much of the binlog is read and sent again.
OFFSET_FLUSH_INTERVAL_MS: Final = 5000
# MySQL client error codes worth a sentence of their own.
_ACCESS_DENIED: Final = 1045


def table_topic(settings: Settings, table: str) -> str:
    """The topic Debezium writes table `table`'s change events to."""
    return f"{settings.connect_topic_prefix}.{settings.appdb_database}.{table}"


def secrets_dir(settings: Settings) -> Path:
    return settings.connect_data_dir / "secrets"


def secret_reference(settings: Settings, key: str) -> str:
    """What Connect's DirectoryConfigProvider replaces with the file `write_secret` wrote."""
    return f"${{dir:{secrets_dir(settings)}:{key}}}"


def uses_sasl(settings: Settings) -> bool:
    return settings.kafka_security_protocol.upper().startswith("SASL")


def kafka_properties(settings: Settings) -> dict[str, str]:
    """The Java clients' security for the settings' cluster, the password as a reference."""
    return java_client_properties(settings, secret_reference(settings, KAFKA_PASSWORD_KEY))


def prefixed(prefixes: tuple[str, ...], properties: dict[str, str]) -> dict[str, str]:
    return {prefix + key: value for prefix in prefixes for key, value in properties.items()}


def connector_config(settings: Settings) -> dict[str, str]:
    """The Debezium connector's config: the template in the repo, filled from `settings`,
    with the Kafka security of the schema history's own producer and consumer.

    Passwords are config-provider references to the files `write_secret` writes.
    """
    database = settings.appdb_database
    values = {
        "appdb_host": settings.appdb_host,
        "appdb_port": str(settings.appdb_port),
        "appdb_cdc_user": settings.appdb_cdc_user,
        "appdb_cdc_password": secret_reference(settings, PASSWORD_KEY),
        "appdb_database": database,
        # Regular expressions matched against the whole name: the app's tables, not the
        # simulator's marker table.
        "table_include_list": ",".join(re.escape(f"{database}.{t}") for t in APP_TABLES),
        "topic_prefix": settings.connect_topic_prefix,
        "kafka_bootstrap_servers": settings.kafka_bootstrap_servers,
        "replication_factor": str(settings.topic_replication_factor),
    }
    template: dict[str, str] = json.loads(CONNECTOR_TEMPLATE.read_text())
    config = {key: Template(value).substitute(values) for key, value in template.items()}
    # Debezium's schema history clients take nothing from the worker's settings.
    return config | prefixed(SCHEMA_HISTORY_PREFIXES, kafka_properties(settings))


def worker_properties(settings: Settings, port: int) -> dict[str, str]:
    """The worker's config (distributed mode, one worker), its clients' security included."""
    # The names the secured broker's ACLs for the connect user name too.
    configs, offsets, status, _ = connect_topics(settings.connect_topic_prefix)
    group, _ = connect_groups(settings.connect_topic_prefix)
    replicas = str(settings.topic_replication_factor)  # -1: the cluster's default
    json_converter = "org.apache.kafka.connect.json.JsonConverter"
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "group.id": group,
        "config.storage.topic": configs,
        "offset.storage.topic": offsets,
        "status.storage.topic": status,
        "config.storage.replication.factor": replicas,
        "offset.storage.replication.factor": replicas,
        "status.storage.replication.factor": replicas,
        "offset.flush.interval.ms": str(OFFSET_FLUSH_INTERVAL_MS),
        "key.converter": json_converter,
        "value.converter": json_converter,
        "listeners": f"http://{HOST}:{port}",
        "rest.advertised.host.name": HOST,
        "rest.advertised.port": str(port),
        # Every plugin on this classpath has a ServiceLoader manifest (Connect's default
        # hybrid mode checked and said so): reading those instead of scanning every class
        # saves seconds at each start.
        "plugin.discovery": "service_load",
        # Resolves the references in the connector's config and in these properties too.
        "config.providers": "dir",
        "config.providers.dir.class": DIRECTORY_PROVIDER,
        # The provider may read the secrets folder and nothing else.
        "config.providers.dir.param.allowed.paths": str(secrets_dir(settings)),
        # The worker's own clients (group, config/offset/status topics) read these; the
        # clients it makes for the connector read only their prefixed copies.
        **kafka_properties(settings),
        **prefixed(CLIENT_PREFIXES, kafka_properties(settings)),
    }


def write_secret(settings: Settings, key: str, text: str) -> Path:
    """A secret exactly (the provider reads the file's bytes), 0600 in 0700."""
    folder = secrets_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    path = folder / key
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    return path


def write_secrets(settings: Settings) -> None:
    """The files the configs' references name: the CDC user's password and, for a SASL
    cluster, the Kafka password as it stands inside the JAAS line's quotes."""
    write_secret(settings, PASSWORD_KEY, cdc_password(settings))
    if uses_sasl(settings):
        password = settings.kafka_sasl_password.get_secret_value()
        write_secret(settings, KAFKA_PASSWORD_KEY, jaas_quoted(password))
    else:  # a password left by an earlier start against a secured cluster
        (secrets_dir(settings) / KAFKA_PASSWORD_KEY).unlink(missing_ok=True)


def check_converter(settings: Settings) -> None:
    """The registry's Avro converter is not on Maven Central: say so instead of pretending."""
    if settings.schema_registry_url:
        log.warning(
            "ORANGESCRUM_SCHEMA_REGISTRY_URL is set, but Confluent's AvroConverter is not on "
            "Maven Central (only in Confluent's own repository), so change events stay JSON "
            "with schemas"
        )


def check_appdb(settings: Settings) -> None:
    """The CDC user can log in and the binlog is what Debezium reads, or one sentence."""
    address = f"{settings.appdb_host}:{settings.appdb_port}"
    user = settings.appdb_cdc_user
    try:
        connection = pymysql.connect(
            host=settings.appdb_host,
            port=settings.appdb_port,
            user=user,
            password=cdc_password(settings),
            connect_timeout=settings.appdb_connect_timeout_seconds,
        )
    except pymysql.err.OperationalError as error:
        log.debug("connecting to the app database as %s failed", user, exc_info=True)
        if error.args and error.args[0] == _ACCESS_DENIED:
            raise OrangeScrumError(
                f"The app database at {address} refused the change-data-capture user {user!r}: "
                "restart `orangescrum appdb start` (it creates the user) or check "
                "ORANGESCRUM_APPDB_CDC_USER and ORANGESCRUM_APPDB_CDC_PASSWORD."
            ) from None
        raise OrangeScrumError(
            f"No app database answered at {address} ({error.args[-1]}); start it with "
            "`orangescrum appdb start`, or check ORANGESCRUM_APPDB_HOST and ORANGESCRUM_APPDB_PORT."
        ) from None
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT @@log_bin, @@binlog_format, @@binlog_row_image")
            log_bin, binlog_format, row_image = cursor.fetchone()
    finally:
        connection.close()
    if (log_bin, binlog_format, row_image) != (1, "ROW", "FULL"):
        raise OrangeScrumError(
            f"The app database at {address} has log_bin={log_bin}, binlog_format="
            f"{binlog_format}, binlog_row_image={row_image}; Debezium needs the binlog on, in "
            "ROW format with FULL row images."
        )


def check_kafka(settings: Settings) -> None:
    """A broker answers these settings' client (login and certificate accepted), or one
    sentence naming what to fix: the worker's JVM would only log its retries."""
    require_broker(settings)


# --- the REST API --------------------------------------------------------------------------
# Loopback only: never through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def rest(
    method: str, url: str, body: object = None, timeout_seconds: float = 10
) -> tuple[int, Any]:
    """(HTTP status, parsed JSON body) of one REST call; OSError when nothing answers."""
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with _OPENER.open(request, timeout=timeout_seconds) as response:
            return response.status, _parse(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _parse(error.read())


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return body.decode(errors="replace")


class LocalConnect(ManagedService):
    """One Kafka Connect worker on 127.0.0.1:`port` (a free one when None), with the Debezium
    connector registered; its settings and log under Settings.connect_data_dir."""

    def __init__(self, settings: Settings, port: int | None = None) -> None:
        self.settings = settings
        self.directory = settings.connect_data_dir
        self.requested_port = port if port is not None else (settings.connect_rest_port or None)
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0  # where this start's lines begin in the (appended) log

    # --- layout ---------------------------------------------------------------------------
    @property
    def log_file(self) -> Path:
        return self.directory / "connect.log"

    @property
    def config_file(self) -> Path:
        return self.directory / "worker.properties"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    # --- lifecycle ------------------------------------------------------------------------
    def start(self, timeout_seconds: float = 180) -> LocalConnect:
        """Check Java, the broker and the app database (one sentence each), start the worker,
        wait for its REST API, register the connector and wait for its task to run."""
        java_binary = java()
        check_kafka(self.settings)
        check_appdb(self.settings)
        check_converter(self.settings)
        classpath = ":".join(str(jar) for jar in connect_classpath(self.settings.jar_cache_dir))
        if (pid := running_pid(self.directory)) is not None:
            raise OrangeScrumError(
                f"Kafka Connect in {self.directory} is already running (pid {pid}); stop it "
                "first (Ctrl-C in its terminal)."
            )
        self.port = claim_port(
            self.requested_port, "set ORANGESCRUM_CONNECT_REST_PORT or pass --port"
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        write_secrets(self.settings)
        properties = worker_properties(self.settings, self.port)
        self.config_file.write_text("".join(f"{k}={v}\n" for k, v in properties.items()))
        command = self.command(java_binary, classpath)
        self._log_offset = self.log_file.stat().st_size if self.log_file.is_file() else 0
        # The binlog client logs through java.util.logging, to stderr: kept in stdout.log.
        with (self.directory / "stdout.log").open("ab") as output:
            self._process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, preexec_fn=stop_with_parent
            )
        (self.directory / "worker.json").write_text(
            json.dumps({"port": self.port, "pid": self._process.pid})
        )
        try:
            deadline = time.monotonic() + timeout_seconds
            self._wait_for_rest(deadline)
            self.register(deadline)
            self.wait_until_running(deadline)
        except BaseException:
            self.stop()
            raise
        log.info("Kafka Connect ready on %s (data: %s)", self.url, self.directory)
        return self

    def command(self, java_binary: str, classpath: str) -> list[str]:
        """The worker's JVM: ORANGESCRUM_JVM_OPTIONS after the built-in options (the last of a
        JVM option wins), its log file, the Connect jars, then its properties file."""
        return [
            java_binary,
            *JVM_OPTIONS,
            *self.settings.jvm_arguments,
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            f"-Dkafka.logs.file={self.log_file}",
            "-cp",
            classpath,
            MAIN_CLASS,
            str(self.config_file),
        ]

    def exit_code(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def failure(self) -> str | None:
        """Why the connector or its task failed (Connect leaves it failed), if it did."""
        with contextlib.suppress(OSError):
            return connector_state(self.url).failed
        return None

    def stop(self) -> None:
        if self._process is None:
            return
        stop_process(self._process, STOP_TIMEOUT_SECONDS)
        self._process = None
        log.info("Kafka Connect on %s stopped", self.url)

    # --- steps ----------------------------------------------------------------------------
    def _check_alive(self) -> None:
        """The worker runs and its herder has not given up, or one sentence: the Kafka
        failure the worker logged (a missing ACL, an untrusted certificate) if it did."""
        code = self.exit_code()
        text = self._this_starts_log()
        if code is None and HERDER_EXIT not in text:
            return
        if code is None and self._process is not None:
            # Its herder stopped every task already: nothing is left to stop gracefully.
            self._process.kill()
            self._process.wait()
        if (sentence := java_client_sentence(self.settings, text)) is not None:
            raise OrangeScrumError(f"{sentence.removesuffix('.')}; see {self.log_file}.")
        exited = "stopped" if code is None else f"exited with code {code}"
        raise OrangeScrumError(f"Kafka Connect {exited} while starting; see {self.log_file}.")

    def _this_starts_log(self) -> str:
        if not self.log_file.is_file():
            return ""
        with self.log_file.open("rb") as log_file:
            log_file.seek(self._log_offset)
            return log_file.read().decode(errors="replace")

    def _wait_for_rest(self, deadline: float) -> None:
        """Until /health says the worker has joined its group and read its config topic."""
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(OSError):
                status, _ = rest("GET", f"{self.url}/health", timeout_seconds=5)
                if status == 200:
                    return
            time.sleep(0.5)
        raise OrangeScrumError(
            f"Kafka Connect did not answer on {self.url} in time; see {self.log_file}."
        )

    def register(self, deadline: float) -> None:
        """PUT the connector's config: creates it, or updates it to the same (idempotent)."""
        config = connector_config(self.settings)
        url = f"{self.url}/connectors/{CONNECTOR_NAME}/config"
        answer: Any = None
        while time.monotonic() < deadline:
            self._check_alive()
            status, answer = rest("PUT", url, config, timeout_seconds=30)
            if status in (200, 201):
                log.info("connector %s registered (%s)", CONNECTOR_NAME, status)
                return
            # 409: a rebalance is in progress; anything else will not get better.
            if status != 409:
                break
            time.sleep(1)
        raise OrangeScrumError(
            f"Kafka Connect refused the connector {CONNECTOR_NAME}: {_message(answer)}; see "
            f"{self.log_file}."
        )

    def wait_until_running(self, deadline: float) -> ConnectorState:
        """Until the connector and its task run; a failed task is one sentence."""
        while time.monotonic() < deadline:
            self._check_alive()
            state = connector_state(self.url)
            if state.failed:
                raise OrangeScrumError(
                    f"The Debezium connector failed: {state.failed}; see {self.log_file}."
                )
            if state.running:
                return state
            time.sleep(0.5)
        raise OrangeScrumError(
            f"The Debezium connector did not start running in time; see {self.log_file}."
        )


def _message(answer: Any) -> str:
    if isinstance(answer, dict) and answer.get("message"):
        return str(answer["message"]).splitlines()[0]
    return str(answer)


@dataclass(frozen=True)
class ConnectorState:
    """The connector's state and its tasks' (RUNNING, PAUSED, FAILED, ...), from the REST API."""

    connector: str | None
    trace: str | None = None  # the connector's failure, if it failed
    tasks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return (
            self.connector == "RUNNING"
            and bool(self.tasks)
            and all(task["state"] == "RUNNING" for task in self.tasks)
        )

    @property
    def failed(self) -> str | None:
        """The first line of the first failure's trace, if anything failed."""
        for part in ({"state": self.connector, "trace": self.trace}, *self.tasks):
            if part["state"] == "FAILED":
                trace = str(part.get("trace") or "failed").strip().splitlines()
                return trace[0] if trace else "failed"
        return None


def connector_state(url: str) -> ConnectorState:
    status, answer = rest("GET", f"{url}/connectors/{CONNECTOR_NAME}/status")
    if status != 200 or not isinstance(answer, dict):
        return ConnectorState(None)
    tasks = [
        {"id": task["id"], "state": task["state"], "trace": task.get("trace")}
        for task in answer.get("tasks", [])
    ]
    connector = answer["connector"]
    return ConnectorState(connector["state"], connector.get("trace"), tasks)


# --- status --------------------------------------------------------------------------------
def running_pid(directory: Path) -> int | None:
    """The pid of the worker started in `directory`, if it still runs."""
    try:
        pid = int(json.loads((directory / "worker.json").read_text())["pid"])
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, KeyError):
        return None
    config = str(directory / "worker.properties").encode()
    return pid if MAIN_CLASS.encode() in command and config in command else None


def remembered_port(directory: Path) -> int | None:
    try:
        return int(json.loads((directory / "worker.json").read_text())["port"])
    except (OSError, ValueError, KeyError):
        return None


@dataclass(frozen=True)
class TableTopic:
    table: str
    topic: str
    messages: int | None  # None: the topic does not exist (yet)


@dataclass(frozen=True)
class ConnectStatus:
    worker: str | None  # its REST URL, None when none answers
    connector: str
    state: ConnectorState
    topics: list[TableTopic]

    def to_json(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "connector": self.connector,
            "connector_state": self.state.connector,
            "connector_trace": self.state.trace,
            "tasks": self.state.tasks,
            "topics": [asdict(topic) for topic in self.topics],
        }


def topic_message_counts(settings: Settings, topics: list[str]) -> dict[str, int | None]:
    """Messages in each topic (latest minus earliest offset, over its partitions); None for a
    topic that does not exist."""
    consumer = Consumer(
        settings.kafka_client_config()
        | {"group.id": CONNECT_STATUS_GROUP, "enable.auto.commit": False, "log_level": 0}
    )
    try:
        metadata = consumer.list_topics(timeout=settings.kafka_connect_timeout_seconds).topics
        counts: dict[str, int | None] = {}
        for topic in topics:
            if topic not in metadata or metadata[topic].error is not None:
                counts[topic] = None
                continue
            total = 0
            for partition in metadata[topic].partitions:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition),
                    timeout=settings.kafka_connect_timeout_seconds,
                )
                total += high - low
            counts[topic] = total
        return counts
    except KafkaException as error:
        raise OrangeScrumError(
            f"Counting the change-event topics on {settings.kafka_bootstrap_servers} failed: "
            f"{error.args[0]}."
        ) from None
    finally:
        consumer.close()


def connect_status(settings: Settings) -> ConnectStatus:
    """The worker (if one answers), the connector and its tasks, and each table's topic."""
    require_broker(settings)
    port = remembered_port(settings.connect_data_dir) or settings.connect_rest_port
    worker: str | None = None
    state = ConnectorState(None)
    if port:
        url = f"http://{HOST}:{port}"
        with contextlib.suppress(OSError):
            state = connector_state(url)
            worker = url
    names = {table: table_topic(settings, table) for table in APP_TABLES}
    counts = topic_message_counts(settings, list(names.values()))
    topics = [TableTopic(table, topic, counts[topic]) for table, topic in names.items()]
    return ConnectStatus(worker, CONNECTOR_NAME, state, topics)
