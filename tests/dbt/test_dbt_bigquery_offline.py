"""The prod (BigQuery) target, checked without network.

A dummy service-account key lets dbt build its credentials; `--no-introspect` and the
`offline_is_incremental` var (root override of is_incremental()) keep dbt from calling Google.
The DDL of the partitioned, clustered fact and of the external tables is rendered by the
project's dry-run operations, which use dbt-bigquery's own macros.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.settings import Settings, WarehouseTarget
from orangescrum.warehouse.dbt import run_dbt
from tests.dbt.conftest import PII_SALT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PROJECT = "orangescrum-ci"
LAKE = "gs://orangescrum-lake/prod"
OFFLINE_VARS = "{offline_is_incremental: true, run_date: '2024-03-09', lookback_days: 3}"


def dummy_service_account_key(path: Path) -> Path:
    """A syntactically valid key file: a fresh RSA key no Google project knows."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": "offline",
                "private_key": pem,
                "client_email": f"dbt@{PROJECT}.iam.gserviceaccount.com",
                "client_id": "0",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path]:
    root = tmp_path_factory.mktemp("bigquery")
    settings = Settings(
        data_dir=root,
        _env_file=None,
        dbt_target=WarehouseTarget.PROD,
        gcp_project=PROJECT,
        gcp_keyfile=str(dummy_service_account_key(root / "key.json")),
        lake_uri=LAKE,
        pii_salt=PII_SALT,
    )
    target_path = root / "dbt_target"
    run_dbt(
        settings,
        [
            "compile",
            "--no-introspect",
            "--no-populate-cache",
            "--select",
            "resource_type:model",
            "--vars",
            OFFLINE_VARS,
        ],
        target_path=target_path,
    )
    return settings, target_path


def operation_log(
    settings: Settings, target_path: Path, *args: str, dbt_vars: str = OFFLINE_VARS
) -> str:
    """Run a dry-run operation and return what it logged (run_dbt logs to target/logs)."""
    log_file = target_path / "logs" / "dbt.log"
    start = log_file.stat().st_size if log_file.exists() else 0
    run_dbt(
        settings,
        ["run-operation", *args, "--vars", dbt_vars],
        target_path=target_path,
    )
    return log_file.read_text()[start:]


def test_fact_config_is_partitioned_clustered_insert_overwrite(prod: tuple[Settings, Path]) -> None:
    _, target_path = prod
    manifest = json.loads((target_path / "manifest.json").read_text())
    config = manifest["nodes"]["model.orangescrum.fact_activities"]["config"]
    assert config["incremental_strategy"] == "insert_overwrite"
    assert config["partition_by"] == {
        "field": "event_timestamp",
        "data_type": "timestamp",
        "granularity": "day",
    }
    assert config["cluster_by"] == ["user_id", "event_type"]
    # static partitions = the lookback window, run_date included
    assert config["partitions"] == [f"timestamp('2024-03-{day:02d}')" for day in (9, 8, 7, 6)]


def test_compiled_fact_selects_the_window_from_bigquery_staging(
    prod: tuple[Settings, Path],
) -> None:
    _, target_path = prod
    compiled = (
        target_path / "compiled" / "orangescrum" / "models" / "marts" / "fact_activities.sql"
    ).read_text()
    assert f"`{PROJECT}`.`orangescrum_dw_staging`.`stg_orangescrum__events`" in compiled
    assert "activity_date between cast(" in compiled
    assert "interval -3 day" in compiled and "cast('2024-03-09' as date)" in compiled
    assert "float64" in compiled  # the dispatched double type


def test_fact_ddl_carries_partition_by_and_cluster_by(prod: tuple[Settings, Path]) -> None:
    log = operation_log(*prod, "print_table_ddl", "--args", "{model_name: fact_activities}")
    assert f"create or replace table `{PROJECT}`.`orangescrum_dw_marts`.`fact_activities`" in log
    assert "partition by timestamp_trunc(event_timestamp, day)" in log
    assert "cluster by user_id, event_type" in log
    assert (
        "timestamp_trunc(dbt_internal_dest.event_timestamp, day) in (\n"
        "        timestamp('2024-03-09'), timestamp('2024-03-08'), timestamp('2024-03-07'), "
        "timestamp('2024-03-06')" in log
    )


def test_raw_events_external_table_ddl(prod: tuple[Settings, Path]) -> None:
    log = operation_log(*prod, "create_raw_events", "--args", "{dry_run: true}")
    raw_zone = f"`{PROJECT}`.`orangescrum_dw`.`raw_events__raw`"
    assert f"create or replace external table {raw_zone}" in log
    assert "with partition columns (event_date date)" in log
    assert f"uris = ['{LAKE}/raw/events/*.parquet']" in log
    assert f"hive_partition_uri_prefix = '{LAKE}/raw/events'" in log
    assert "user_state struct<user_id int64, name string" in log
    # without read_processed the processed zone is left out (it may hold no file yet)
    assert "raw_events__processed" not in log
    assert f"does not read {LAKE}/processed/events" in log
    assert f"create or replace view `{PROJECT}`.`orangescrum_dw`.`raw_events` as" in log
    assert f"uris = ['{LAKE}/raw/metrics/*.parquet']" in log  # not hive-partitioned
    assert "`raw_dead_letters`" in log


def test_raw_events_reads_each_zone_from_its_own_var(
    prod: tuple[Settings, Path], tmp_path: Path
) -> None:
    """The lake layout hands dbt every zone; dbt must read those, not re-derive them."""
    moved = "gs://elsewhere/dead-letters"
    settings, _ = prod
    log = operation_log(
        settings,
        # Other vars mean a full parse: in a target of its own, so the shared one keeps its
        # partial-parse state and the next operations do not parse the project again.
        tmp_path / "dbt_target",
        "create_raw_events",
        "--args",
        "{dry_run: true}",
        dbt_vars=OFFLINE_VARS[:-1] + f", lake_dead_letters: '{moved}/'}}",
    )
    assert f"hive_partition_uri_prefix = '{moved}'" in log
    assert f"{LAKE}/raw/_dead_letter" not in log
    assert f"hive_partition_uri_prefix = '{LAKE}/raw/events'" in log


def test_raw_events_is_the_same_view_when_the_processed_zone_is_empty(
    prod: tuple[Settings, Path],
) -> None:
    """`warehouse load` passes read_processed: false until compaction writes a file; the
    relation must keep the shape it gets with true, or BigQuery could not replace it."""
    log = operation_log(
        *prod, "create_raw_events", "--args", "{dry_run: true, read_processed: false}"
    )
    assert "raw_events__processed" not in log
    assert (
        f"create or replace view `{PROJECT}`.`orangescrum_dw`.`raw_events` as "
        f"select * from `{PROJECT}`.`orangescrum_dw`.`raw_events__raw`"
    ) in " ".join(log.split())


def test_raw_events_view_unions_the_processed_zone_when_it_has_files(
    prod: tuple[Settings, Path],
) -> None:
    log = operation_log(
        *prod, "create_raw_events", "--args", "{dry_run: true, read_processed: true}"
    )
    processed_zone = f"`{PROJECT}`.`orangescrum_dw`.`raw_events__processed`"
    assert f"create or replace external table {processed_zone}" in log
    assert f"hive_partition_uri_prefix = '{LAKE}/processed/events'" in log
    view = log[log.index(f"create or replace view `{PROJECT}`.`orangescrum_dw`.`raw_events`") :]
    assert " ".join(view.split()).startswith(
        f"create or replace view `{PROJECT}`.`orangescrum_dw`.`raw_events` as "
        f"select * from `{PROJECT}`.`orangescrum_dw`.`raw_events__raw` union all "
        f"select * from {processed_zone}"
    )


ANALYSTS = "1=group:acme-analysts@acme.com;2=group:globex-analysts@globex.com,user:ann@globex.com"
READERS = "group:bi-readers@acme.com"


def test_marts_grant_select_only_to_configured_readers(prod: tuple[Settings, Path]) -> None:
    settings, target_path = prod

    def fact_grants(run_as: Settings) -> dict[str, list[str]]:
        operation_log(
            run_as, target_path, "print_table_ddl", "--args", "{model_name: fact_activities}"
        )
        manifest = json.loads((target_path / "manifest.json").read_text())
        return manifest["nodes"]["model.orangescrum.fact_activities"]["config"]["grants"]

    # no reader configured: no grant config at all (dbt then never reads or revokes grants)
    assert fact_grants(settings) == {}
    readers = settings.model_copy(
        update={"bigquery_marts_readers": f"{READERS}, user:cfo@acme.com"}
    )
    assert fact_grants(readers) == {"roles/bigquery.dataViewer": [READERS, "user:cfo@acme.com"]}


def test_row_access_policies_give_each_company_its_rows(prod: tuple[Settings, Path]) -> None:
    settings, target_path = prod
    secured = settings.model_copy(
        update={"bigquery_company_analysts": ANALYSTS, "bigquery_marts_readers": READERS}
    )
    args = ("print_row_access_policies", "--args")
    log = operation_log(secured, target_path, *args, "{model_name: fact_activities}")
    fact = f"`{PROJECT}`.`orangescrum_dw_marts`.`fact_activities`"
    assert (
        f"create or replace row access policy company_1_analysts on {fact} "
        'grant to ("group:acme-analysts@acme.com") filter using (company_id = 1)'
    ) in log
    assert (
        f"create or replace row access policy company_2_analysts on {fact} "
        'grant to ("group:globex-analysts@globex.com", "user:ann@globex.com") '
        "filter using (company_id = 2)"
    ) in log
    assert (
        f"create or replace row access policy all_companies_readers on {fact} "
        'grant to ("group:bi-readers@acme.com") filter using (true)'
    ) in log
    # a mart without company rows gets no policy
    dates_log = operation_log(secured, target_path, *args, "{model_name: dim_dates}")
    assert "row access policy" not in dates_log.split("-- row access policies of dim_dates")[1]


def test_a_malformed_company_analysts_setting_names_itself(prod: tuple[Settings, Path]) -> None:
    settings, target_path = prod
    broken = settings.model_copy(update={"bigquery_company_analysts": "acme=group:a@acme.com"})
    with pytest.raises(
        OrangeScrumError, match=re.escape("company_analysts: 'acme=group:a@acme.com'")
    ):
        operation_log(
            broken,
            target_path,
            "print_row_access_policies",
            "--args",
            "{model_name: fact_activities}",
        )


def test_compiled_staging_hashes_emails_with_the_salt_and_masks_names(
    prod: tuple[Settings, Path],
) -> None:
    _, target_path = prod
    compiled = (
        target_path
        / "compiled"
        / "orangescrum"
        / "models"
        / "staging"
        / "stg_orangescrum__events.sql"
    ).read_text()
    assert (
        f"to_hex(sha256(concat('{PII_SALT}', lower(trim(user_state.email))))) as user_email_hash"
        in compiled
    )
    assert "upper(left(trim(user_state.name), 1))" in compiled
    assert "user_state.email as" not in compiled and "user_state.name as" not in compiled


def test_prod_refuses_to_build_without_a_pii_salt(
    prod: tuple[Settings, Path], tmp_path: Path
) -> None:
    settings, _ = prod
    unsalted = settings.model_copy(update={"pii_salt": SecretStr("")})
    with pytest.raises(OrangeScrumError, match="ORANGESCRUM_PII_SALT is empty"):
        run_dbt(
            unsalted,
            [
                "compile",
                "--no-introspect",
                "--no-populate-cache",
                "--select",
                "stg_orangescrum__events",
                "--vars",
                OFFLINE_VARS,
            ],
            target_path=tmp_path / "dbt_target",
        )
