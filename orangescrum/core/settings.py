"""Every knob of the platform, read once from environment variables.

Each field maps to ``ORANGESCRUM_<FIELD_NAME>`` (upper case); ``.env.example`` lists them all with
their defaults. Defaults describe the local stack: a local Apache Kafka broker, a Parquet lake in a
folder and a DuckDB warehouse file, so nothing needs to be set to run the demo.
"""

from __future__ import annotations

import re
import shlex
from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from orangescrum import REPO_ROOT
from orangescrum.core.contract import REGISTRY_FILE
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.lake import LakeLayout


class LogFormat(StrEnum):
    TEXT = "text"  # for people
    JSON = "json"  # one JSON document a line, for log shippers


class WarehouseTarget(StrEnum):
    DEV = "dev"  # DuckDB file
    PROD = "prod"  # BigQuery


class AirflowDatabase(StrEnum):
    SQLITE = "sqlite"  # a file in Airflow's home
    POSTGRES = "postgres"  # airflow_database_url, or the local PostgreSQL


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ORANGESCRUM_", env_file=".env", extra="ignore", frozen=True
    )

    # --- local state -------------------------------------------------------------------------
    data_dir: Path = Field(
        default=Path(".orangescrum"),
        description="Working folder for local state (lake, checkpoints, warehouse, logs).",
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_format: LogFormat = Field(default=LogFormat.TEXT, description="text or json (lines).")

    # --- Kafka -------------------------------------------------------------------------------
    kafka_bootstrap_servers: str = Field(
        default="",
        description="host:port list of the brokers. Empty: `orangescrum demo` starts the local "
        "Apache Kafka broker for its own run; other commands ask for it.",
    )
    kafka_security_protocol: str = Field(
        default="PLAINTEXT", description="PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL"
    )
    kafka_sasl_mechanism: str = Field(default="PLAIN", description="PLAIN | SCRAM-SHA-256 | ...")
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_ssl_ca_location: str = Field(default="", description="CA bundle for SSL/SASL_SSL.")
    topic_events: str = "events-raw"
    topic_dead_letter: str = "events-dlq"
    topic_partitions: int = Field(default=3, ge=1, description="Partitions of new topics.")
    topic_retention_days: int = Field(default=7, ge=1)
    topic_replication_factor: int = Field(
        default=-1, description="Replicas of new topics; -1 = the cluster's default."
    )
    kafka_connect_timeout_seconds: int = Field(
        default=15,
        ge=1,
        description="How long a command waits for the brokers to answer before it stops with "
        "one sentence naming the address.",
    )
    kafka_outage_tolerance_seconds: int = Field(
        default=120,
        ge=1,
        description="How long the stream keeps retrying an unreachable broker before it stops "
        "with an error (offsets stay in its checkpoint).",
    )
    jar_cache_dir: Path = Field(
        default=Path("~/.cache/orangescrum/ivy"),
        description="Ivy cache of the JVM jars (Kafka broker, Kafka Connect, Spark connectors) "
        "from Maven Central, and the local schema registry's Maven build; `orangescrum jars "
        "fetch` fills it.",
    )
    jvm_options: str = Field(
        default="",
        description="Extra options (shell-quoted) for the JVMs of Kafka Connect, the schema "
        "registry and the Spark driver, after their built-in ones so they win; another "
        "collector needs the built-in G1 off too (-XX:-UseG1GC -XX:+UseSerialGC). The tests set "
        "-XX:TieredStopAtLevel=1: JVMs that live seconds spend much of their CPU in the C2 JIT.",
    )

    # --- OrangeScrum app database (change-data-capture source) -----------------------------
    appdb_host: str = Field(
        default="127.0.0.1",
        description="MariaDB/MySQL host of the OrangeScrum app database (`orangescrum appdb "
        "start` runs a local one on 127.0.0.1).",
    )
    appdb_port: int = Field(
        default=3307,
        ge=1,
        le=65535,
        description="Its port; 3307, not 3306, so a system MariaDB on the usual port is left "
        "alone.",
    )
    appdb_database: str = Field(default="orangescrum", description="The app's database (schema).")
    appdb_user: str = Field(default="orangescrum", description="The app's database user.")
    appdb_password: SecretStr = Field(
        default=SecretStr(""),
        description="Its password. Empty: the one `orangescrum appdb start` generated for the "
        "local server, kept in <data_dir>/appdb/app-user.password (0600).",
    )
    appdb_connect_timeout_seconds: int = Field(
        default=10,
        ge=1,
        description="How long a command waits for the app database before it stops with one "
        "sentence naming the address.",
    )
    appdb_cdc_user: str = Field(
        default="debezium",
        description="The user Debezium reads the binlog as (replication and SELECT grants; "
        "`orangescrum appdb start` creates it locally).",
    )
    appdb_cdc_password: SecretStr = Field(
        default=SecretStr(""),
        description="Its password. Empty: the one `orangescrum appdb start` generated, kept in "
        "<data_dir>/appdb/debezium.password (0600).",
    )
    connect_rest_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="REST port of `orangescrum connect start` (127.0.0.1); 0 = a free one.",
    )
    connect_topic_prefix: str = Field(
        default="orangescrum-appdb",
        description="Debezium's topic prefix: change events of table T go to "
        "<prefix>.<appdb_database>.T.",
    )

    # --- schema registry ---------------------------------------------------------------------
    schema_registry_url: str = Field(
        default="",
        description="Confluent-compatible registry URL. Empty: `orangescrum demo` starts the "
        "local one (Apicurio) and uses it; other commands use the file-backed registry shipped "
        "in orangescrum/core/contract/schemas/registry.json.",
    )
    schema_registry_basic_auth: SecretStr = Field(
        default=SecretStr(""), description="user:password for the registry, if it needs one."
    )

    # --- lake --------------------------------------------------------------------------------
    lake_uri: str = Field(
        default="",
        description="Root of the data lake: a folder path, file:///..., or gs://bucket/prefix. "
        "Empty: <data_dir>/lake.",
    )
    gcs_endpoint: str = Field(
        default="", description="Override for the GCS API endpoint (an emulator); empty = Google."
    )

    # --- Spark -------------------------------------------------------------------------------
    spark_master: str = Field(default="local[*]", description="local[*], spark://host:7077, yarn")
    checkpoint_dir: str = Field(default="", description="Empty: <data_dir>/checkpoints.")
    max_events_per_batch: int = Field(
        default=100_000, ge=1, description="Upper bound of Kafka records per micro-batch."
    )
    trigger_seconds: float = Field(
        default=5,
        ge=0.1,
        description="Continuous mode trigger interval in seconds (fractions allowed: a shorter "
        "interval lowers event-to-lake latency at the cost of more, smaller files).",
    )
    max_event_age_days: int = Field(
        default=365, ge=1, description="Events older than this are dead-lettered as absurd."
    )
    max_event_future_minutes: int = Field(
        default=60, ge=0, description="Events further in the future are dead-lettered."
    )

    # --- lake upkeep -------------------------------------------------------------------------
    compaction_rows_per_file: int = Field(
        default=1_000_000, ge=1, description="Target rows per file of a compacted (processed) day."
    )
    raw_retention_days: int = Field(
        default=30,
        ge=0,
        description="Raw days older than this (with a processed copy) move to archive/.",
    )
    metrics_retention_days: int = Field(
        default=90,
        ge=1,
        description="Streaming metrics, local logs and stale checkpoints older than this go.",
    )

    # --- warehouse / dbt ---------------------------------------------------------------------
    dbt_target: WarehouseTarget = WarehouseTarget.DEV
    dbt_threads: int = Field(
        default=4,
        ge=1,
        description="dbt threads. On DuckDB 1-4: it parallelises inside each query already.",
    )
    duckdb_path: str = Field(default="", description="Empty: <data_dir>/warehouse.duckdb.")
    duckdb_memory_limit: str = Field(
        default="80%",
        pattern=r"(?i)^\s*\d+(\.\d+)?\s*(%|[KMGT]i?B)\s*$",
        description="DuckDB's memory_limit for dbt (e.g. 6GB); beyond it DuckDB spills to disk.",
    )
    gcp_project: str = ""
    bigquery_dataset: str = "orangescrum_dw"
    bigquery_location: str = "US"
    gcp_keyfile: str = Field(default="", description="Service-account key; empty = oauth/ADC.")
    bigquery_api_endpoint: str = Field(
        default="", description="BigQuery API endpoint override (an emulator); empty = Google."
    )
    bigquery_method: str = Field(
        default="",
        description="dbt-bigquery auth method; empty = service-account with a keyfile, else "
        "oauth. oauth-secrets + bigquery_token for emulators.",
    )
    bigquery_token: SecretStr = SecretStr("")
    bigquery_marts_readers: str = Field(
        default="",
        description="Comma-separated IAM principals granted read on every mart (prod target), "
        "e.g. group:bi-readers@acme.com; empty = no grant.",
    )
    bigquery_company_analysts: str = Field(
        default="",
        description="Row access on the marts (prod target): "
        "'company_id=principal[,principal];...'; empty = no row access policy.",
    )
    pii_salt: SecretStr = Field(
        default=SecretStr(""),
        description="Salt of the e-mail hashes in the marts (letters, digits, - and _); "
        "required by the prod target, empty = unsalted on dev.",
    )

    # --- orchestration -----------------------------------------------------------------------
    dbt_manifest_path: str = Field(
        default="",
        description="manifest.json the Airflow dbt DAG renders from; empty = "
        "dbt_project/target/manifest.json (build it with `orangescrum airflow manifest`).",
    )
    dbt_select: str = Field(
        default="", description="dbt selectors the Airflow dbt DAG renders; empty = all."
    )
    alert_email: str = Field(
        default="",
        description="Comma-separated recipients of DAG success/failure mails (Airflow SMTP "
        "settings); empty = a log line per notification.",
    )
    airflow_database: AirflowDatabase = Field(
        default=AirflowDatabase.SQLITE,
        description="Airflow's metadata database: sqlite (a file in its home) or postgres "
        "(airflow_database_url; empty = a local PostgreSQL started in <data_dir>/postgres).",
    )
    airflow_database_url: SecretStr = Field(
        default=SecretStr(""),
        description="SQLAlchemy URL (postgresql+psycopg2://...) of an external PostgreSQL for "
        "Airflow's metadata, password included; used when airflow_database=postgres.",
    )
    airflow_postgres_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port of the local PostgreSQL (127.0.0.1); 0 = a free one.",
    )

    # --- local services ----------------------------------------------------------------------
    dashboard_port: int = Field(
        default=8501, ge=1, le=65535, description="Port of `orangescrum dashboard` (127.0.0.1)."
    )
    dashboard_semantic_manifest: str = Field(
        default="",
        description="semantic_manifest.json the dashboard compiles its KPIs from; empty = "
        "dbt_project/target's (`orangescrum dashboard` writes a fresh one and sets this).",
    )

    @field_validator("pii_salt")
    @classmethod
    def _sql_safe_salt(cls, salt: SecretStr) -> SecretStr:
        # The salt is spliced into SQL as a literal on DuckDB and BigQuery alike.
        if not re.fullmatch(r"[A-Za-z0-9_-]*", salt.get_secret_value()):
            raise ValueError("ORANGESCRUM_PII_SALT may hold only letters, digits, - and _")
        return salt

    @field_validator("jvm_options")
    @classmethod
    def _splittable_jvm_options(cls, options: str) -> str:
        shlex.split(options)  # an unclosed quote fails here, naming the setting
        return options

    @model_validator(mode="after")
    def _absolute_data_dir(self) -> Settings:
        # Spark, dbt and DuckDB run in other working directories: relative paths would drift.
        object.__setattr__(self, "data_dir", self.data_dir.expanduser().resolve())
        object.__setattr__(self, "jar_cache_dir", self.jar_cache_dir.expanduser().resolve())
        return self

    # --- derived locations -------------------------------------------------------------------
    @property
    def lake_root(self) -> str:
        """Lake root as a URI-less path for local lakes, or the gs:// URI."""
        uri = self.lake_uri or str(self.data_dir / "lake")
        if uri.startswith("file://"):
            uri = uri.removeprefix("file://")
        if "://" not in uri:
            uri = str(Path(uri).expanduser().resolve())
        return uri.rstrip("/")

    @property
    def checkpoint_root(self) -> str:
        return self.checkpoint_dir or str(self.data_dir / "checkpoints")

    @property
    def lake(self) -> LakeLayout:
        """Every zone and file name of the lake (and where the stream checkpoints)."""
        return LakeLayout(self.lake_root, self.gcs_endpoint, self.checkpoint_root)

    @property
    def duckdb_file(self) -> Path:
        return (
            Path(self.duckdb_path).resolve()
            if self.duckdb_path
            else (self.data_dir / "warehouse.duckdb")
        )

    @property
    def jvm_arguments(self) -> tuple[str, ...]:
        """jvm_options as command-line arguments, appended to each JVM's built-in options."""
        return tuple(shlex.split(self.jvm_options))

    @property
    def kafka_data_dir(self) -> Path:
        """Log dirs, cluster id and ports of the local Kafka broker(s)."""
        return self.data_dir / "kafka"

    @property
    def appdb_data_dir(self) -> Path:
        """The local app database: MariaDB's datadir, socket, log and generated password."""
        return self.data_dir / "appdb"

    @property
    def connect_data_dir(self) -> Path:
        """The local Kafka Connect worker: its settings, log and the connector's secret."""
        return self.data_dir / "connect"

    @property
    def schema_registry_data_dir(self) -> Path:
        """The local schema registry (`orangescrum registry start`): its H2 file, log, port."""
        return self.data_dir / "schema-registry"

    @property
    def airflow_postgres_dir(self) -> Path:
        """Cluster, log and generated password of the local PostgreSQL Airflow may use."""
        return self.data_dir / "postgres"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def log_file(self) -> Path:
        """What every `orangescrum` command logs, details of its failures included."""
        return self.log_dir / "orangescrum.log"

    @property
    def dbt_project_dir(self) -> Path:
        return REPO_ROOT / "dbt_project"

    @property
    def dbt_manifest_file(self) -> Path:
        """The manifest Airflow renders the dbt DAG from."""
        configured = self.dbt_manifest_path.strip()
        if configured:
            return Path(configured).expanduser().resolve()
        return self.dbt_project_dir / "target" / "manifest.json"

    @property
    def dbt_profiles_dir(self) -> Path:
        return REPO_ROOT / "profiles"

    def kafka_client_config(self) -> dict[str, str]:
        """librdkafka settings shared by producers and consumers (bootstrap + security)."""
        config = {
            "bootstrap.servers": self.kafka_bootstrap_servers,
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_security_protocol.startswith("SASL"):
            config |= {
                "sasl.mechanism": self.kafka_sasl_mechanism,
                "sasl.username": self.kafka_sasl_username,
                "sasl.password": self.kafka_sasl_password.get_secret_value(),
            }
        if self.kafka_ssl_ca_location:
            config["ssl.ca.location"] = self.kafka_ssl_ca_location
        return config

    def dbt_env(self) -> dict[str, str]:
        """Environment variables profiles/profiles.yml and dbt_project.yml read."""
        return {
            "ORANGESCRUM_DUCKDB_PATH": str(self.duckdb_file),
            "ORANGESCRUM_LAKE_ROOT": self.lake_root,
            **{f"ORANGESCRUM_{name.upper()}": uri for name, uri in self.lake.dbt_vars().items()},
            "ORANGESCRUM_GCS_ENDPOINT": self.gcs_endpoint,
            "ORANGESCRUM_GCP_PROJECT": self.gcp_project,
            "ORANGESCRUM_BIGQUERY_DATASET": self.bigquery_dataset,
            "ORANGESCRUM_BIGQUERY_LOCATION": self.bigquery_location,
            "ORANGESCRUM_GCP_KEYFILE": self.gcp_keyfile,
            "ORANGESCRUM_BIGQUERY_API_ENDPOINT": self.bigquery_api_endpoint,
            "ORANGESCRUM_BIGQUERY_TOKEN": self.bigquery_token.get_secret_value(),
            "ORANGESCRUM_BIGQUERY_MARTS_READERS": self.bigquery_marts_readers,
            "ORANGESCRUM_BIGQUERY_COMPANY_ANALYSTS": self.bigquery_company_analysts,
            "ORANGESCRUM_PII_SALT": self.pii_salt.get_secret_value(),
            "ORANGESCRUM_DBT_TARGET": self.dbt_target.value,
            "ORANGESCRUM_DBT_THREADS": str(self.dbt_threads),
            "ORANGESCRUM_DUCKDB_MEMORY_LIMIT": self.duckdb_memory_limit,
            "DBT_PROFILES_DIR": str(self.dbt_profiles_dir),
        } | ({"ORANGESCRUM_BIGQUERY_METHOD": self.bigquery_method} if self.bigquery_method else {})


def load_settings() -> Settings:
    """Settings from ORANGESCRUM_* variables (and .env); a bad value is one sentence naming it."""
    try:
        return Settings()
    except ValueError as error:
        raise OrangeScrumError(f"invalid ORANGESCRUM_* setting: {error}") from None


def effective_values(settings: Settings) -> dict[str, str]:
    """Every setting as it is in effect: an empty default shows what it resolves to."""
    values = {
        name: (value.value if isinstance(value, StrEnum) else str(value))
        for name, value in settings.model_dump().items()
    }
    values |= {
        "lake_uri": settings.lake_root,
        "checkpoint_dir": settings.checkpoint_root,
        "duckdb_path": str(settings.duckdb_file),
        "dbt_manifest_path": str(settings.dbt_manifest_file),
        "schema_registry_url": settings.schema_registry_url or f"(file-backed: {REGISTRY_FILE})",
        "kafka_bootstrap_servers": settings.kafka_bootstrap_servers
        or "(none: commands that need a broker start the local one)",
    }
    return values


def env_example() -> str:
    """Render .env.example from the fields above so the two never drift."""
    lines = [
        "# Every setting of OrangeScrum Analytics with its default. Copy to .env to change.",
        "",
    ]
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, SecretStr):
            default = ""
        if hasattr(default, "value"):
            default = default.value
        if field.description:
            lines.append(f"# {field.description}")
        lines.append(f"ORANGESCRUM_{name.upper()}={default}")
    return "\n".join(lines) + "\n"
