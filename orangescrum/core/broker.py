"""The local Apache Kafka: KRaft brokers (combined broker + controller) on loopback ports.

The jars come from Maven Central (orangescrum/core/jars.py). Each node keeps its log dirs under
the data dir, so topics and messages survive a restart of the broker; the ports a cluster
last used are kept there too and reused when free, so clients' settings stay valid.
Production points ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS at a real cluster instead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.jars import java, kafka_classpath
from orangescrum.core.kafka_security import (
    ADMIN,
    CONNECT_PREFIX,
    BrokerSecrets,
    ClientErrors,
    Security,
    acl_bindings,
    kafka_error_sentence,
    listener_properties,
    write_private,
)
from orangescrum.core.processes import (
    HOST,
    ManagedService,
    claim_port,
    free_port,
    port_is_free,
    stop_process,
)
from orangescrum.core.settings import Settings

log = logging.getLogger(__name__)

LOG4J_CONFIG = Path(__file__).resolve().parent / "kafka-log4j2.properties"
# A combined node at rest needs ~250 MB; more heap only delays its garbage collections.
JVM_OPTIONS = ("-Xms128m", "-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true")
# Kafka's controlled shutdown moves leadership first; give it time before SIGKILL.
STOP_TIMEOUT_SECONDS = 30


def wait_until_ready(
    bootstrap: str,
    timeout_seconds: float,
    brokers: int = 1,
    *,
    config: dict[str, object] | None = None,
    errors: ClientErrors | None = None,
) -> None:
    """Block until `brokers` brokers answer a metadata request, or raise naming the address.

    `config`: the client's settings (security included), else PLAINTEXT to `bootstrap`.
    `errors`: its error_cb; a security failure it hears ends the wait with its sentence at
    once, since a refused login or an untrusted certificate does not get better by retrying.
    """
    client_config: dict[str, object] = {"bootstrap.servers": bootstrap, "log_level": 0}
    client_config |= config or {}
    try:
        admin = AdminClient(client_config)
    except KafkaException as failure:  # e.g. an unreadable ssl.ca.location
        sentence = errors and kafka_error_sentence(errors.settings, failure.args[0])
        raise OrangeScrumError(sentence or f"Kafka client for {bootstrap}: {failure}.") from None
    deadline = time.monotonic() + timeout_seconds
    error: object = "no answer"
    while time.monotonic() < deadline:
        try:
            if len(admin.list_topics(timeout=1).brokers) >= brokers:
                return
        except Exception as failure:  # KafkaException while the socket is not up yet
            error = failure
        admin.poll(0.2)  # serves error_cb (and waits a little before the next try)
        if errors is not None:
            errors.raise_if_heard()
    raise OrangeScrumError(
        f"No Kafka broker answered at {bootstrap} within {timeout_seconds:.0f}s ({error}); "
        "check the address and that the broker is running."
    )


@dataclass(frozen=True)
class Node:
    node_id: int
    port: int
    controller_port: int
    directory: Path

    @property
    def log_dir(self) -> Path:
        return self.directory / "data"

    @property
    def config_file(self) -> Path:
        return self.directory / "server.properties"

    @property
    def log_file(self) -> Path:
        return self.directory / "server.log"


def node_properties(node: Node, nodes: list[Node], secured: dict[str, object] | None = None) -> str:
    """server.properties of one combined KRaft node of a loopback cluster; `secured`: the
    listener settings of a SASL_SSL node (orangescrum.core.kafka_security), which replace the
    PLAINTEXT ones."""
    voters = ",".join(f"{n.node_id}@{HOST}:{n.controller_port}" for n in nodes)
    replicas = len(nodes)
    settings = {
        "process.roles": "broker,controller",
        "node.id": node.node_id,
        # A static quorum: the voters come from this file on every start, so a node that
        # restarts on other ports still finds its peers.
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://{HOST}:{node.port},CONTROLLER://{HOST}:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{node.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": node.log_dir,
        # Topics are created by `orangescrum topics create` with their settings; a producer
        # writing to a missing topic must fail, not create one with defaults.
        "auto.create.topics.enable": "false",
        "num.partitions": 3,
        "default.replication.factor": replicas,
        "min.insync.replicas": min(2, replicas),
        "offsets.topic.replication.factor": replicas,
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": min(2, replicas),
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": min(2, replicas),
        "group.initial.rebalance.delay.ms": 0,
        # Events are judged against their own time downstream; a historical backfill must
        # not be refused for old record timestamps.
        "log.message.timestamp.before.max.ms": 9223372036854775807,
    }
    settings |= secured or {}
    return "".join(f"{key}={value}\n" for key, value in settings.items())


class LocalKafka(ManagedService):
    """`brokers` Apache Kafka nodes as managed subprocesses; stopped on exit.

    Ports are free loopback ports (or `port` for the first node's client listener); the
    cluster id and the ports are kept in `data_dir` beside the nodes' log dirs.

    `security=Security.SASL_SSL`: clients reach it only over TLS with a SCRAM-SHA-512 user and
    ACLs (orangescrum.core.kafka_security); the users' ACLs name `events_topic`,
    `dead_letter_topic` and the Kafka Connect worker's topics (`connect_topic_prefix`). A data
    dir keeps the mode it was formatted with.

    `jvm_options` (ORANGESCRUM_JVM_OPTIONS is `settings.jvm_arguments`) follow the
    built-in JVM_OPTIONS on every node's command line, storage formatting included.
    `from_settings` passes them and the settings' topics; launchers use it, so no broker
    misses the user's options.
    """

    def __init__(
        self,
        data_dir: Path,
        jar_cache_dir: Path,
        *,
        port: int | None = None,
        brokers: int = 1,
        security: Security = Security.PLAINTEXT,
        events_topic: str = "events-raw",
        dead_letter_topic: str = "events-dlq",
        connect_topic_prefix: str = CONNECT_PREFIX,
        jvm_options: Sequence[str] = (),
    ) -> None:
        if brokers < 1:
            raise OrangeScrumError(f"--brokers must be at least 1, got {brokers}.")
        self.data_dir = data_dir
        self.jar_cache_dir = jar_cache_dir
        self.brokers = brokers
        self.security = security
        self.jvm_options = tuple(jvm_options)
        self.acl_topics = (events_topic, dead_letter_topic, connect_topic_prefix)
        self.secrets = (
            BrokerSecrets(data_dir / "security") if security is Security.SASL_SSL else None
        )
        self.nodes = self._plan_nodes(port)
        self._processes: list[subprocess.Popen[bytes]] = []

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        data_dir: Path,
        *,
        port: int | None = None,
        brokers: int = 1,
        security: Security = Security.PLAINTEXT,
    ) -> LocalKafka:
        """A cluster in `data_dir` as `settings` configure it: their jar cache, their JVM
        options (ORANGESCRUM_JVM_OPTIONS) and, for a secured cluster's ACLs, their events,
        dead-letter and Connect topics."""
        return cls(
            data_dir,
            settings.jar_cache_dir,
            port=port,
            brokers=brokers,
            security=security,
            events_topic=settings.topic_events,
            dead_letter_topic=settings.topic_dead_letter,
            connect_topic_prefix=settings.connect_topic_prefix,
            jvm_options=settings.jvm_arguments,
        )

    # --- layout ---------------------------------------------------------------------------
    @property
    def _state_file(self) -> Path:
        return self.data_dir / "cluster.json"

    def _plan_nodes(self, port: int | None) -> list[Node]:
        state = self._load_state()
        remembered = {n["node_id"]: n for n in state.get("nodes", [])}
        nodes = []
        for node_id in range(1, self.brokers + 1):
            old = remembered.get(node_id, {})
            if node_id == 1 and port is not None:
                client_port = claim_port(port, "omit --port to pick a free one")
            else:
                client_port = _reuse_or_free(old.get("port"))
            controller_port = _reuse_or_free(old.get("controller_port"), avoid={client_port})
            nodes.append(
                Node(node_id, client_port, controller_port, self.data_dir / f"node-{node_id}")
            )
        return nodes

    def _load_state(self) -> dict:
        if not self._state_file.is_file():
            return {}
        state = json.loads(self._state_file.read_text())
        if len(state.get("nodes", [])) != self.brokers:
            raise OrangeScrumError(
                f"{self.data_dir} holds a {len(state.get('nodes', []))}-broker cluster, not "
                f"{self.brokers}: use that many brokers, or another data dir for this one."
            )
        # SCRAM users exist only if the storage was formatted with them, and a secured start
        # must never quietly serve an open cluster's data.
        formatted_as = Security(state.get("security", Security.PLAINTEXT))
        if formatted_as is not self.security:
            raise OrangeScrumError(
                f"{self.data_dir} holds a {formatted_as.value} cluster, not "
                f"{self.security.value}: start it as {formatted_as.value}, or use another data "
                "dir for this one."
            )
        return state

    @property
    def cluster_id(self) -> str:
        state = self._load_state() if self._state_file.is_file() else {}
        return state.get("cluster_id", "")

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{HOST}:{node.port}" for node in self.nodes)

    @property
    def port(self) -> int:
        return self.nodes[0].port

    def client_config(self, user: str = ADMIN) -> dict[str, object]:
        """librdkafka settings to reach this cluster (as `user` when it is secured)."""
        if self.secrets is None:
            return {"bootstrap.servers": self.bootstrap}
        return dict(self.secrets.client_config(self.bootstrap, user))

    # --- lifecycle ------------------------------------------------------------------------
    def start(self, timeout_seconds: float | None = None) -> LocalKafka:
        """Start every node; wait up to timeout_seconds (default 60 s a node: on 2 cores three
        JVMs starting at once take turns) for all of them to answer."""
        java_binary = java()
        classpath = ":".join(str(jar) for jar in kafka_classpath(self.jar_cache_dir))
        cluster_id = self.cluster_id or _new_cluster_id()
        formatted = any((node.log_dir / "meta.properties").is_file() for node in self.nodes)
        passwords = (
            self.secrets.ensure(HOST, formatted=formatted) if self.secrets is not None else {}
        )
        for node in self.nodes:
            node.directory.mkdir(parents=True, exist_ok=True)
            if self.secrets is None:
                node.config_file.write_text(node_properties(node, self.nodes))
            else:
                secured = listener_properties(
                    HOST, node.port, node.controller_port, self.secrets, passwords[ADMIN]
                )
                # 0600: it holds the admin's password (the broker's JAAS logins).
                write_private(node.config_file, node_properties(node, self.nodes, secured))
            if not (node.log_dir / "meta.properties").is_file():
                _format_storage(
                    java_binary,
                    classpath,
                    node,
                    cluster_id,
                    self.secrets,
                    passwords,
                    jvm_options=self.jvm_options,
                )
        self._save_state(cluster_id)
        for node in self.nodes:
            self._processes.append(_launch(self.command(java_binary, classpath, node), node))
        try:
            timeout = timeout_seconds if timeout_seconds is not None else 60.0 * self.brokers
            wait_until_ready(
                self.bootstrap, timeout, brokers=self.brokers, config=self.client_config()
            )
            if self.secrets is not None:
                self._grant_acls()
                self.secrets.write_env_files(self.bootstrap)
        except OrangeScrumError:
            self.stop()
            raise OrangeScrumError(
                f"The local Kafka broker did not start on {self.bootstrap}; see "
                f"{self.nodes[0].log_file}."
            ) from None
        log.info(
            "Kafka %s ready on %s (%s; data: %s)",
            self.describe(),
            self.bootstrap,
            self.security.value,
            self.data_dir,
        )
        return self

    def command(self, java_binary: str, classpath: str, node: Node | None = None) -> list[str]:
        """The broker JVM's command line of `node` (default the first): the built-in options,
        then the caller's (the last of a JVM option wins), its log file, the jars, kafka.Kafka
        and the node's server.properties."""
        node = node or self.nodes[0]
        return _kafka_command(
            java_binary,
            classpath,
            node,
            "kafka.Kafka",
            str(node.config_file),
            jvm_options=self.jvm_options,
        )

    def _grant_acls(self) -> None:
        """The service users' ACLs, as the admin; creating an existing ACL changes nothing."""
        admin = AdminClient(self.client_config() | {"log_level": 0})
        for binding, future in admin.create_acls(acl_bindings(*self.acl_topics)).items():
            try:
                future.result()
            except KafkaException as error:
                raise OrangeScrumError(f"Creating the ACL {binding} failed: {error}.") from None

    def describe(self) -> str:
        return "broker" if self.brokers == 1 else f"cluster of {self.brokers} brokers"

    def _save_state(self, cluster_id: str) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        nodes = [
            {"node_id": n.node_id, "port": n.port, "controller_port": n.controller_port}
            for n in self.nodes
        ]
        state = {"cluster_id": cluster_id, "nodes": nodes, "security": self.security.value}
        self._state_file.write_text(json.dumps(state))

    def kill(self, node_id: int) -> None:
        """SIGKILL one node (failure tests): no controlled shutdown, like a lost machine."""
        process = self._processes[node_id - 1]
        process.kill()
        process.wait()

    def exited(self) -> list[tuple[int, int]]:
        """(node id, exit code) of every node that is no longer running."""
        return [
            (index + 1, code)
            for index, process in enumerate(self._processes)
            if (code := process.poll()) is not None
        ]

    def stop(self) -> None:
        for process in self._processes:
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            stop_process(process, STOP_TIMEOUT_SECONDS)
        if self._processes:
            log.info("Kafka %s on %s stopped", self.describe(), self.bootstrap)
        self._processes = []


def _reuse_or_free(port: int | None, avoid: set[int] | None = None) -> int:
    if port is not None and port not in (avoid or set()) and port_is_free(port):
        return port
    while True:
        candidate = free_port()
        if candidate not in (avoid or set()):
            return candidate


def _new_cluster_id(random_bytes: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """Kafka's own `random-uuid`: 16 random bytes, URL-safe base64 without padding.

    Like Kafka's Uuid.randomUuid, it draws again when the text starts with "-": one id in 64
    does, and kafka-storage's argument parser reads it as an option (`--cluster-id -x...`).
    """
    import base64

    while True:
        cluster_id = base64.urlsafe_b64encode(random_bytes()).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _kafka_command(
    java_binary: str,
    classpath: str,
    node: Node,
    main_class: str,
    *args: str,
    jvm_options: Sequence[str] = (),
) -> list[str]:
    """A JVM of the node's: its heap, the caller's `jvm_options` (after the built-ins: the last
    of a JVM option wins), its log file, the broker jars, then `main_class args`."""
    return [
        java_binary,
        *JVM_OPTIONS,
        *jvm_options,
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        f"-Dkafka.logs.file={node.log_file}",
        "-cp",
        classpath,
        main_class,
        *args,
    ]


def _format_storage(
    java_binary: str,
    classpath: str,
    node: Node,
    cluster_id: str,
    secrets: BrokerSecrets | None = None,
    passwords: dict[str, str] | None = None,
    *,
    jvm_options: Sequence[str] = (),
) -> None:
    """kafka-storage format; a secured node gets its SCRAM users here (KRaft keeps them in
    the metadata log, and the admin must exist before anyone can log in to add others)."""
    with contextlib.ExitStack() as stack:
        users = (
            ()
            if secrets is None
            else (stack.enter_context(secrets.scram_arguments(passwords or {})),)
        )
        command = _kafka_command(
            java_binary,
            classpath,
            node,
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id",
            cluster_id,
            "--config",
            str(node.config_file),
            "--ignore-formatted",
            *users,
            jvm_options=jvm_options,
        )
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise OrangeScrumError(
            f"Formatting Kafka storage in {node.log_dir} failed: "
            f"{(result.stderr or result.stdout).strip().splitlines()[-1:]}; remove the folder "
            "to start that broker empty."
        )


def _launch(command: list[str], node: Node) -> subprocess.Popen[bytes]:
    with (node.directory / "stdout.log").open("ab") as output:
        return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)


def broker_data_dir(settings: Settings, brokers: int, security: Security) -> Path:
    """One data dir per shape: a cluster keeps its node count and its security for life."""
    name = "kafka" if security is Security.PLAINTEXT else "kafka-sasl-ssl"
    if brokers == 1 and security is Security.PLAINTEXT:
        return settings.kafka_data_dir
    return settings.data_dir / (name if brokers == 1 else f"{name}-{brokers}")


def require_broker(settings: Settings) -> None:
    """The configured cluster answers these settings' client (security included), or one
    sentence on what to fix: the address, the password, the CA, the protocol."""
    if not settings.kafka_bootstrap_servers:
        raise OrangeScrumError(
            "No Kafka broker is configured: start one with `orangescrum broker start` and set "
            "ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS to the address it prints, or run "
            "`orangescrum demo`, which brings its own."
        )
    errors = ClientErrors(settings)
    wait_until_ready(
        settings.kafka_bootstrap_servers,
        timeout_seconds=settings.kafka_connect_timeout_seconds,
        config=errors.config(),
        errors=errors,
    )
