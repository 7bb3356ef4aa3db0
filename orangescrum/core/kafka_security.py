"""SASL_SSL for the local Apache Kafka, and one sentence for each way a secured client fails.

`orangescrum broker start --security sasl_ssl` gives the local broker what a production
cluster has: clients reach it only over TLS (a throwaway CA signs the broker's certificate),
log in with SCRAM-SHA-512 and are held to ACLs (StandardAuthorizer, deny by default):

| user       | may                                                                         |
|------------|-----------------------------------------------------------------------------|
| `admin`    | everything (super user): topics create/delete/peek, status; inter-broker    |
| `producer` | WRITE on the events and dead-letter topics (the simulator)                  |
| `stream`   | READ on the events topic and its consumer groups, WRITE on the dead letters |
| `connect`  | CREATE and WRITE on topics prefixed `orangescrum-appdb`; READ on its four   |
|            | (Connect's configs, offsets, status; the schema history), its two groups;   |
|            | DESCRIBE on the group `connect status` counts with                          |

Everything lives in `<broker data dir>/security/` (folder 0700, secrets 0600): `ca.pem`, the
clients' trust anchor (ORANGESCRUM_KAFKA_SSL_CA_LOCATION); `broker.pem`, the broker's key and
certificate chain (a PEM key store); `<user>.password` and `<user>.env` (every
ORANGESCRUM_KAFKA_* value that user needs). Passwords come from `secrets.token_urlsafe`, reach
Kafka's format tool through a 0600 argument file (never a command line) and are never logged
or printed.

The controller listener stays on loopback but is not open either: it speaks SASL_PLAINTEXT
with the admin's PLAIN login, so no port of a secured node accepts an anonymous client.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import socket
import ssl
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pydantic import SecretStr

from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.settings import Settings

if TYPE_CHECKING:  # confluent_kafka is imported where it is used: `orangescrum --help` needs
    # only the Security choices of this module.
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AclBinding, AdminClient

T = TypeVar("T")

MECHANISM = "SCRAM-SHA-512"
ADMIN, PRODUCER, STREAM, CONNECT = "admin", "producer", "stream", "connect"
USERS = (ADMIN, PRODUCER, STREAM, CONNECT)
# The broker grants Connect's ACLs on the default prefix (ORANGESCRUM_CONNECT_TOPIC_PREFIX):
# it is started without the settings of the Connect worker that will use it.
CONNECT_PREFIX = str(Settings.model_fields["connect_topic_prefix"].default)
# `connect status` counts the change-event topics with a consumer of this group: librdkafka
# looks up its coordinator (DESCRIBE) though it never joins it.
CONNECT_STATUS_GROUP = "orangescrum-connect-status"
# What each user is for, {events} and {dead_letters} being the topics its ACLs name.
ROLES = {
    ADMIN: "super user: topics create/delete/peek/dlq, status",
    PRODUCER: "writes {events} and {dead_letters}: simulate",
    STREAM: "reads {events}, writes {dead_letters}: stream",
    CONNECT: "creates and writes the {connect_prefix}* topics: connect start",
}
# Spark's kafka source names its consumer groups spark-kafka-source-<query id>-...; the
# project's own probes (stream lag, status, tests) use orangescrum-*.
STREAM_GROUP_PREFIXES = ("spark-kafka-source-", "orangescrum-")
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"
PLAIN_LOGIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
# The certificates outlive any local cluster; a start re-issues them only when less than
# this is left, because a running client (a stream) keeps the CA it read at connect time.
CERTIFICATE_DAYS = 825
RENEW_BEFORE = timedelta(days=30)


class Security(StrEnum):
    PLAINTEXT = "plaintext"  # the demo and the tests' shared broker: no login, no TLS
    SASL_SSL = "sasl_ssl"  # TLS + SCRAM-SHA-512 users + ACLs on the client listener


def write_private(path: Path, text: str) -> None:
    """Write a secret readable by its owner only, also when the file already existed."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)


@dataclass(frozen=True)
class BrokerSecrets:
    """The CA, the broker's key store and the users' passwords of one secured local cluster."""

    directory: Path

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def keystore_file(self) -> Path:
        return self.directory / "broker.pem"

    def password_file(self, user: str) -> Path:
        return self.directory / f"{user}.password"

    def env_file(self, user: str) -> Path:
        return self.directory / f"{user}.env"

    def ensure(self, host: str, *, formatted: bool) -> dict[str, str]:
        """Create what is missing (keep what exists: the users were formatted with these
        passwords); return every user's password. `formatted`: the storage exists already,
        so its users' passwords must too."""
        lost = [user for user in USERS if not self.password_file(user).is_file()]
        if formatted and lost:
            # A cluster formatted before a user was added to USERS lacks its password too:
            # SCRAM users are created at format time only.
            raise OrangeScrumError(
                f"The cluster's users were created with the passwords in {self.directory}, "
                f"and those of {', '.join(lost)} are gone (or the cluster predates them): "
                f"remove {self.directory.parent} to start a new secured cluster."
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        if _needs_certificate(self.keystore_file, self.ca_file):
            write_certificates(self.ca_file, self.keystore_file, host)
        return {user: self._password(user) for user in USERS}

    def password(self, user: str) -> str:
        return self.password_file(user).read_text().strip()

    def _password(self, user: str) -> str:
        path = self.password_file(user)
        if not path.is_file():
            write_private(path, secrets.token_urlsafe(24))
        return self.password(user)

    def write_env_files(self, bootstrap: str) -> None:
        for user in USERS:
            lines = [f"{name}={value}" for name, value in self.client_env(bootstrap, user).items()]
            write_private(self.env_file(user), "\n".join(lines) + "\n")

    def client_env(self, bootstrap: str, user: str) -> dict[str, str]:
        """Every ORANGESCRUM_KAFKA_* value a client of `user` needs, password included."""
        return {
            "ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "ORANGESCRUM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "ORANGESCRUM_KAFKA_SASL_MECHANISM": MECHANISM,
            "ORANGESCRUM_KAFKA_SASL_USERNAME": user,
            "ORANGESCRUM_KAFKA_SASL_PASSWORD": self.password(user),
            "ORANGESCRUM_KAFKA_SSL_CA_LOCATION": str(self.ca_file),
        }

    def user_settings(self, settings: Settings, bootstrap: str, user: str) -> Settings:
        """`settings` with `user`'s client values in place of its ORANGESCRUM_KAFKA_* ones."""
        update: dict[str, object] = {
            name.removeprefix("ORANGESCRUM_").lower(): value
            for name, value in self.client_env(bootstrap, user).items()
        }
        update["kafka_sasl_password"] = SecretStr(str(update["kafka_sasl_password"]))
        return settings.model_copy(update=update)

    def client_config(self, bootstrap: str, user: str) -> dict[str, str]:
        """librdkafka settings of `user`: Settings.kafka_client_config() of the values in
        `user`'s env file, so the broker's own clients and `set -a; . <user>.env` agree.
        model_construct: those values only, not this process's ORANGESCRUM_* environment."""
        return self.user_settings(Settings.model_construct(), bootstrap, user).kafka_client_config()

    @contextlib.contextmanager
    def scram_arguments(self, passwords: dict[str, str]) -> Iterator[str]:
        """`@file` for kafka-storage format: its --add-scram options in a 0600 file that is
        gone afterwards, so no password is ever on a command line (ps shows those)."""
        path = self.directory / "format-arguments"
        lines = [
            line
            for user, password in passwords.items()
            for line in ("--add-scram", f"{MECHANISM}=[name={user},password={password}]")
        ]
        write_private(path, "\n".join(lines) + "\n")
        try:
            yield f"@{path}"
        finally:
            path.unlink(missing_ok=True)


def _needs_certificate(keystore: Path, ca_file: Path) -> bool:
    from cryptography import x509

    if not (keystore.is_file() and ca_file.is_file()):
        return True
    certificate = x509.load_pem_x509_certificate(keystore.read_bytes())
    return certificate.not_valid_after_utc - datetime.now(UTC) < RENEW_BEFORE


def write_certificates(ca_file: Path, keystore_file: Path, host: str) -> None:
    """A new CA (its key never written: nothing else can be signed with it) and a broker
    certificate for `host` and localhost; the key store holds key, certificate and CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    # A day of slack: certificates are checked by other clocks (the JVM's, OpenSSL's).
    not_before = datetime.now(UTC) - timedelta(days=1)
    not_after = not_before + timedelta(days=CERTIFICATE_DAYS)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "OrangeScrum local Kafka CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    broker_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    with contextlib.suppress(ValueError):
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    broker = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(broker_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        # Clients verify the host name (librdkafka and Java both do by default).
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    # Kafka's PEM key store wants an unencrypted key in PKCS#8; the file is 0600 instead.
    key_pem = broker_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(
        keystore_file,
        (key_pem + broker.public_bytes(pem) + ca.public_bytes(pem)).decode(),
    )
    ca_file.write_bytes(ca.public_bytes(pem))
    ca_file.chmod(0o644)  # public: clients only need to read it


def _jaas(module: str, user: str, password: str, *extra: str) -> str:
    return (
        " ".join([f"{module} required", f'username="{user}"', f'password="{password}"', *extra])
        + ";"
    )


def jaas_quoted(text: str) -> str:
    """`text` as it must stand between a JAAS line's double quotes (Kafka's parser reads
    backslash escapes there)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def java_client_properties(settings: Settings, password: str) -> dict[str, str]:
    """The Java client's security properties for these settings (Kafka Connect, Debezium):
    what Settings.kafka_client_config() is to librdkafka, bootstrap servers aside.

    `password` enters the JAAS line as given: the secret itself, or a config provider's
    reference to a file holding jaas_quoted(secret), so the line never shows the secret.
    """
    protocol = settings.kafka_security_protocol
    properties = {"security.protocol": protocol}
    if protocol.upper().startswith("SASL"):
        scram = settings.kafka_sasl_mechanism.upper().startswith("SCRAM")
        module = SCRAM_LOGIN if scram else PLAIN_LOGIN
        properties["sasl.mechanism"] = settings.kafka_sasl_mechanism
        properties["sasl.jaas.config"] = _jaas(module, settings.kafka_sasl_username, password)
    if settings.kafka_ssl_ca_location:
        # The Java client reads the same PEM bundle librdkafka's ssl.ca.location names; no
        # key store password exists for a PEM trust store.
        properties["ssl.truststore.type"] = "PEM"
        properties["ssl.truststore.location"] = settings.kafka_ssl_ca_location
    return properties


def listener_properties(
    host: str, port: int, controller_port: int, secrets_: BrokerSecrets, admin_password: str
) -> dict[str, object]:
    """The listener part of a secured node's server.properties (which holds secrets: 0600)."""
    controller_login = _jaas(PLAIN_LOGIN, ADMIN, admin_password, f'user_{ADMIN}="{admin_password}"')
    return {
        "listeners": f"SASL_SSL://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"SASL_SSL://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
        # Brokers replicate over the clients' listener as the admin: one port, always TLS.
        "inter.broker.listener.name": "SASL_SSL",
        "sasl.enabled.mechanisms": MECHANISM,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config": _jaas(
            SCRAM_LOGIN, ADMIN, admin_password
        ),
        # Controllers log in to each other before any metadata (so any SCRAM user) exists:
        # their port takes the admin's PLAIN login declared here, as Kafka's docs advise.
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": controller_login,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": secrets_.keystore_file,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": secrets_.ca_file,
        "ssl.client.auth": "none",
        "authorizer.class.name": AUTHORIZER,
        "super.users": f"User:{ADMIN}",
        "allow.everyone.if.no.acl.found": "false",
    }


def connect_topics(prefix: str) -> tuple[str, ...]:
    """The topics Kafka Connect reads back: its worker's configs, offsets and status
    (orangescrum.core.connect names them from here) and Debezium's schema history (named in
    orangescrum/core/appdb/debezium-mariadb.json)."""
    return (
        f"{prefix}-connect-configs",
        f"{prefix}-connect-offsets",
        f"{prefix}-connect-status",
        f"{prefix}.schema-history",
    )


def connect_groups(prefix: str) -> tuple[str, ...]:
    """The worker's group (orangescrum.core.connect names it from here) and Debezium's
    schema-history consumer's (Debezium names it after the connector's topic prefix)."""
    return (f"{prefix}-connect", f"{prefix}-schemahistory")


def acl_bindings(
    events_topic: str, dead_letter_topic: str, connect_prefix: str = CONNECT_PREFIX
) -> list[AclBinding]:
    """Least privilege for the service users (WRITE and READ imply DESCRIBE; WRITE on a
    topic also allows the idempotent producer since Kafka 3.0)."""
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    def allow(
        user: str,
        kind: ResourceType,
        name: str,
        operation: AclOperation,
        pattern: ResourcePatternType = ResourcePatternType.LITERAL,
    ) -> AclBinding:
        return AclBinding(
            kind, name, pattern, f"User:{user}", "*", operation, AclPermissionType.ALLOW
        )

    topic, group = ResourceType.TOPIC, ResourceType.GROUP
    return [
        allow(PRODUCER, topic, events_topic, AclOperation.WRITE),
        allow(PRODUCER, topic, dead_letter_topic, AclOperation.WRITE),
        allow(STREAM, topic, events_topic, AclOperation.READ),
        allow(STREAM, topic, dead_letter_topic, AclOperation.WRITE),
        *(
            allow(STREAM, group, prefix, AclOperation.READ, ResourcePatternType.PREFIXED)
            for prefix in STREAM_GROUP_PREFIXES
        ),
        # Connect creates what it writes (its own topics, the schema history, a topic per
        # table and the schema changes'), all named with the prefix; it reads back only its
        # own four, whose settings it and Debezium check (DESCRIBE_CONFIGS); no other topic.
        *(
            allow(CONNECT, topic, connect_prefix, operation, ResourcePatternType.PREFIXED)
            for operation in (AclOperation.CREATE, AclOperation.WRITE)
        ),
        *(
            allow(CONNECT, topic, name, operation)
            for name in connect_topics(connect_prefix)
            for operation in (AclOperation.READ, AclOperation.DESCRIBE_CONFIGS)
        ),
        *(
            allow(CONNECT, group, name, AclOperation.READ)
            for name in connect_groups(connect_prefix)
        ),
        allow(CONNECT, group, CONNECT_STATUS_GROUP, AclOperation.DESCRIBE),
    ]


# --- errors as sentences --------------------------------------------------------------------
def _authorization_codes() -> dict[int, str]:
    from confluent_kafka import KafkaError

    return {
        KafkaError.TOPIC_AUTHORIZATION_FAILED: "topic",
        KafkaError.GROUP_AUTHORIZATION_FAILED: "consumer group",
        KafkaError.CLUSTER_AUTHORIZATION_FAILED: "cluster",
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: "transactional id",
    }


def client_user(settings: Settings) -> str:
    """The principal the broker sees for these settings."""
    if settings.kafka_security_protocol.upper().startswith("SASL"):
        return settings.kafka_sasl_username or "(no ORANGESCRUM_KAFKA_SASL_USERNAME)"
    return "ANONYMOUS"


def kafka_error_sentence(
    settings: Settings,
    error: KafkaError,
    *,
    resource: str = "",
    action: str = "use",
) -> str | None:
    """One sentence naming the setting to fix for a security failure; None for the others
    (an unreachable broker, a timeout) which the caller explains its own way."""
    from confluent_kafka import KafkaError

    code, text = error.code(), error.str()
    where = settings.kafka_bootstrap_servers
    protocol = settings.kafka_security_protocol
    if kind := _authorization_codes().get(code):
        what = f"{kind} {resource}" if resource and kind != "cluster" else f"the {kind}"
        return (
            f"Kafka at {where} did not allow user {client_user(settings)} to {action} {what} "
            "(authorization failed): grant that user an ACL for it, or set "
            "ORANGESCRUM_KAFKA_SASL_USERNAME and ORANGESCRUM_KAFKA_SASL_PASSWORD to a user "
            "that has one."
        )
    if code in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED):
        if "mechanism" in text.lower() and "credentials" not in text.lower():
            return (
                f"Kafka at {where} does not offer ORANGESCRUM_KAFKA_SASL_MECHANISM="
                f"{settings.kafka_sasl_mechanism} ({text}); set it to one it lists."
            )
        return (
            f"Kafka at {where} rejected the {settings.kafka_sasl_mechanism} login of user "
            f"{client_user(settings)}: set ORANGESCRUM_KAFKA_SASL_PASSWORD to that user's "
            "password (and ORANGESCRUM_KAFKA_SASL_USERNAME to a user the cluster has)."
        )
    if code == KafkaError._SSL and "certificate verify failed" in text:
        trusted = (
            f"the CA in ORANGESCRUM_KAFKA_SSL_CA_LOCATION ({settings.kafka_ssl_ca_location})"
            if settings.kafka_ssl_ca_location
            else "the system's CAs (ORANGESCRUM_KAFKA_SSL_CA_LOCATION is empty)"
        )
        return (
            f"The certificate of Kafka at {where} is not signed by {trusted}: set "
            "ORANGESCRUM_KAFKA_SSL_CA_LOCATION to that cluster's CA bundle (a local broker's "
            "is security/ca.pem in its data dir)."
        )
    if "ssl.ca.location" in text:
        return (
            f"ORANGESCRUM_KAFKA_SSL_CA_LOCATION={settings.kafka_ssl_ca_location} cannot be "
            "read as a PEM CA bundle: point it at the cluster's CA certificate."
        )
    if code == KafkaError._SSL:
        return (
            f"The TLS handshake with Kafka at {where} failed ({text}): set "
            f"ORANGESCRUM_KAFKA_SECURITY_PROTOCOL (now {protocol}) to what its listener speaks "
            "(PLAINTEXT for the demo's broker)."
        )
    plain = protocol.upper() in ("PLAINTEXT", "SASL_PLAINTEXT")
    if code == KafkaError._ALL_BROKERS_DOWN and plain and _speaks_tls(where):
        # librdkafka only sees the broker hang up on its first request; a TLS listener is
        # what does that, and a TLS handshake of our own says so for sure.
        return (
            f"Kafka at {where} speaks TLS but ORANGESCRUM_KAFKA_SECURITY_PROTOCOL is "
            f"{protocol}: set it to SASL_SSL (with the SASL and SSL settings `orangescrum "
            "broker start --security sasl_ssl` prints)."
        )
    return None


# What Kafka's Java client (Spark's kafka source) throws for the failures above.
JAVA_EXCEPTIONS = {
    "TopicAuthorizationException": "TOPIC_AUTHORIZATION_FAILED",
    "GroupAuthorizationException": "GROUP_AUTHORIZATION_FAILED",
    "ClusterAuthorizationException": "CLUSTER_AUTHORIZATION_FAILED",
    "SaslAuthenticationException": "SASL_AUTHENTICATION_FAILED",
}


def java_client_sentence(
    settings: Settings, text: str, *, topic: str = "", action: str = "use"
) -> str | None:
    """The sentence of kafka_error_sentence for a Java client failure's text (a Spark stream
    stopped by it), or None when the text is about something else."""
    from confluent_kafka import KafkaError

    for exception, name in JAVA_EXCEPTIONS.items():
        if exception in text:
            code = getattr(KafkaError, name)
            resource = ""
            if code == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                named = re.search(r"Not authorized to access topics: \[([^\]]+)\]", text)
                resource = named[1] if named else topic
            return kafka_error_sentence(
                settings, KafkaError(code), resource=resource, action=action
            )
    if "SSLHandshakeException" in text and "PKIX path" in text:  # an untrusted certificate
        return kafka_error_sentence(
            settings, KafkaError(KafkaError._SSL, "certificate verify failed")
        )
    return None


def _speaks_tls(bootstrap: str, timeout: float = 2) -> bool:
    """Whether the first reachable bootstrap address completes a TLS handshake (unverified:
    this only asks which protocol the port speaks)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    for address in (a.strip() for a in bootstrap.split(",") if a.strip()):
        host, _, port = address.rpartition("://")[2].rpartition(":")
        try:
            with (
                socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as raw,
                context.wrap_socket(raw, server_hostname=host.strip("[]")),
            ):
                return True
        except (OSError, ValueError):
            continue
    return False


class ClientErrors:
    """A librdkafka `error_cb` that keeps the first security failure as a sentence.

    librdkafka retries a refused login or an untrusted certificate until the request times
    out and then reports only the timeout; its error callback hears the real cause at once.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sentence: str | None = None

    def __call__(self, error: KafkaError) -> None:
        if self.sentence is None:
            self.sentence = kafka_error_sentence(self.settings, error)

    def config(self) -> dict[str, object]:
        """The settings' client config, reporting here instead of on librdkafka's stderr."""
        return {**self.settings.kafka_client_config(), "error_cb": self, "log_level": 0}

    def raise_if_heard(self) -> None:
        if self.sentence is not None:
            raise OrangeScrumError(self.sentence)


def result_of(
    admin: AdminClient,
    future: Future[T],
    errors: ClientErrors,
    *,
    resource: str = "",
    action: str = "use",
) -> T:
    """An admin request's result; a security failure becomes its sentence at once instead of
    a timeout at the end of the request's patience. Other KafkaExceptions pass through."""
    from confluent_kafka import KafkaException

    while not future.done():
        admin.poll(0.1)  # serves error_cb
        errors.raise_if_heard()
    try:
        return future.result()
    except KafkaException as error:
        sentence = kafka_error_sentence(
            errors.settings, error.args[0], resource=resource, action=action
        )
        if sentence is None:
            raise
        raise OrangeScrumError(sentence) from None
