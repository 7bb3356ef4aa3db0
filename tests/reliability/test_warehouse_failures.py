"""The warehouse side: a corrupt lake file and a second writer are refused with one sentence.

On the hand-written fixture lake of tests/dbt (35 events, one delivered twice: 36 raw rows).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

import orangescrum.warehouse.dbt as warehouse_dbt
from orangescrum import REPO_ROOT
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.settings import Settings
from orangescrum.warehouse.load import build_marts, load_raw_events
from tests.dbt.conftest import Warehouse, new_warehouse
from tests.dbt.lake import EVENTS, write_lake

pytestmark = pytest.mark.slow

RAW_ROWS = len(EVENTS) + 1  # event 16 delivered twice
LOCK_TIMEOUT = 180


def raw_file(warehouse: Warehouse, day: str) -> Path:
    return warehouse.lake_root / "raw" / "events" / f"event_date={day}" / "part-0.parquet"


def corruptions(good: bytes) -> dict[str, bytes]:
    """Ways a Parquet file gets broken: a torn write, foreign bytes, an empty file, a footer
    whose bytes were damaged (DuckDB's own message then names no file)."""
    rng = random.Random(7)
    footer_length = int.from_bytes(good[-8:-4], "little")
    footer = len(good) - 8 - footer_length
    damaged = bytes(b ^ 0xFF for b in good[footer : footer + 64])
    return {
        "torn": good[: len(good) // 3],
        "foreign": rng.randbytes(4_000),
        "empty": b"",
        "damaged footer": good[:footer] + damaged + good[footer + 64 :],
    }


def raw_event_rows(settings: Settings) -> int:
    with duckdb.connect(str(settings.duckdb_file)) as connection:
        return int(
            connection.execute("select count(*) from orangescrum_dw.raw_events").fetchone()[0]
        )


def test_a_corrupt_lake_file_fails_the_load_naming_it(tmp_path: Path) -> None:
    warehouse = new_warehouse(tmp_path / "wh")
    write_lake(warehouse.lake_root)
    good = raw_file(warehouse, "2024-03-05").read_bytes()
    intruder = raw_file(warehouse, "2024-03-05").with_name("part-9.parquet")
    for kind, content in corruptions(good).items():
        intruder.write_bytes(content)
        with pytest.raises(OrangeScrumError) as failure:
            load_raw_events(warehouse.settings, warehouse.target_path, quiet=True)
        sentence = str(failure.value)
        assert sentence.startswith(f"The lake file {intruder} cannot be read as Parquet ("), (
            kind,
            sentence,
        )
        assert sentence.endswith(
            "move it out of the lake (its rows stay missing until a good "
            "copy is put back), then run this again."
        ), (kind, sentence)

    # The way out the sentence names: once the file is gone, every good row is read.
    intruder.rename(tmp_path / "quarantined.parquet")
    load_raw_events(warehouse.settings, warehouse.target_path, quiet=True)
    assert raw_event_rows(warehouse.settings) == RAW_ROWS


def test_a_file_torn_after_the_load_fails_the_build_naming_it(tmp_path: Path) -> None:
    warehouse = new_warehouse(tmp_path / "wh")
    write_lake(warehouse.lake_root)
    load_raw_events(warehouse.settings, warehouse.target_path, quiet=True)
    assert raw_event_rows(warehouse.settings) == RAW_ROWS
    dead_letters = next((warehouse.lake_root / "raw" / "_dead_letter").glob("*/*.parquet"))
    torn = raw_file(warehouse, "2024-03-06")
    for damaged in (dead_letters, torn):
        damaged.write_bytes(damaged.read_bytes()[:500])  # the views now read torn files

    with pytest.raises(OrangeScrumError) as failure:
        build_marts(warehouse.settings, warehouse.target_path, quiet=True)
    sentence = str(failure.value)
    assert sentence.startswith("The lake files "), sentence
    assert f"{torn} (No magic bytes found at end of file)" in sentence
    assert f"{dead_letters} (No magic bytes found at end of file)" in sentence
    with duckdb.connect(str(warehouse.settings.duckdb_file)) as connection:
        built = connection.execute(
            "select table_name from duckdb_tables() where schema_name = 'orangescrum_dw_marts' "
            "and table_name in ('fact_activities', 'agg_daily_metrics')"
        ).fetchall()
    assert built == []  # no fact was built from a lake that could not be read


def hold_lock(pid: int, database: Path) -> bool:
    """Whether process `pid` holds a POSIX lock on `database` (read from /proc/locks, which,
    unlike a connection attempt, cannot take the lock away from it)."""
    inode = database.stat().st_ino if database.exists() else -1
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[4] == str(pid) and fields[5].endswith(f":{inode}"):
            return True
    return False


def test_a_second_build_on_the_warehouse_is_refused_and_the_first_completes(
    tmp_path: Path,
) -> None:
    """The first build is `orangescrum warehouse build`; the second starts here once the first
    holds the file, so the overlap is certain."""
    warehouse = new_warehouse(tmp_path / "wh")
    write_lake(warehouse.lake_root)
    load_raw_events(warehouse.settings, warehouse.target_path, quiet=True)
    env = os.environ | {
        "ORANGESCRUM_DATA_DIR": str(warehouse.settings.data_dir),
        # The load's target folder: its partial parse spares the first build a full one.
        "DBT_TARGET_PATH": str(warehouse.target_path),
        "DBT_LOG_PATH": str(warehouse.target_path / "logs"),
    }
    output = tmp_path / "first-build.txt"
    with output.open("w") as sink:
        first = subprocess.Popen(
            [sys.executable, "-m", "orangescrum", "warehouse", "build"],
            env=env,
            cwd=REPO_ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    database = warehouse.settings.duckdb_file
    try:
        # Its own up-front check opens the file for an instant too: wait until dbt runs nodes,
        # when it keeps the file open to the end.
        deadline = time.monotonic() + LOCK_TIMEOUT
        while not (" START " in output.read_text() and hold_lock(first.pid, database)):
            assert first.poll() is None, output.read_text()
            assert time.monotonic() < deadline, "the first build never opened the warehouse"
            time.sleep(0.05)
        with pytest.raises(OrangeScrumError) as refused:
            build_marts(warehouse.settings, tmp_path / "second-target", quiet=True)
        assert first.wait(timeout=600) == 0, output.read_text()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    sentence = str(refused.value)
    assert sentence.startswith(f"The warehouse {database} is open in "), sentence
    assert sentence.endswith(
        f"(PID {first.pid}): DuckDB allows one writer, so stop that process (or wait for "
        "it), then run this again."
    ), sentence
    # The first build ran every model and test to success over the whole lake.
    results = json.loads((warehouse.target_path / "run_results.json").read_text())["results"]
    assert {r["status"] for r in results} <= {"success", "pass", "no-op"}
    facts = warehouse.query(
        "select count(*), count(distinct event_id) from orangescrum_dw_marts.fact_activities"
    )
    assert facts == [(len(EVENTS), len(EVENTS))]


def test_a_writer_that_wins_the_race_after_the_check_is_named_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two builds started together both pass the up-front check; the one that opens the file
    second must fail with the same sentence, not dbt's traceback of a lock error."""
    warehouse = new_warehouse(tmp_path / "wh")
    write_lake(warehouse.lake_root)
    load_raw_events(warehouse.settings, warehouse.target_path, quiet=True)
    holders: list[subprocess.Popen[str]] = []
    check = warehouse_dbt.require_warehouse_unlocked

    def check_then_lose_the_race(path: Path) -> None:
        check(path)  # free: this build goes ahead ...
        holder = subprocess.Popen(  # ... and another writer opens the file right after
            [
                sys.executable,
                "-c",
                "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                "print('open', flush=True); time.sleep(300)",
                str(path),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        holders.append(holder)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"

    monkeypatch.setattr(warehouse_dbt, "require_warehouse_unlocked", check_then_lose_the_race)
    try:
        with pytest.raises(OrangeScrumError) as refused:
            build_marts(warehouse.settings, warehouse.target_path, quiet=True)
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()
    assert len(holders) == 1
    sentence = str(refused.value)
    assert sentence.startswith(f"The warehouse {warehouse.settings.duckdb_file} is open in ")
    assert sentence.endswith(
        f"(PID {holders[0].pid}): DuckDB allows one writer, so stop that process (or wait for "
        "it), then run this again."
    ), sentence
