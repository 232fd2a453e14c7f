"""Heartbeat: a ``postgres_cdc`` table that sees no changes while the database writes
other WAL still lets its slot advance (an empty commit moves the table's position, then the
slot follows), so WAL is not held back; a batch full of other tables' transactions moves
past them instead of being handed out again forever."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

import lockgate
from lockgate.runloop.follow import drain
from lockgate.sources._pgoutput import lsn_int
from tests.cdc.conftest import cdc_project

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _env(cdc_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LG_CDC_URL", cdc_url)


def _slot(src: Any, slot: str) -> tuple[int, int]:
    """(confirmed LSN, restart LSN) of ``slot``."""
    row = src.execute(
        "SELECT confirmed_flush_lsn::text, restart_lsn::text FROM pg_replication_slots "
        "WHERE slot_name = %s",
        (slot,),
    ).fetchone()
    return lsn_int(row[0]), lsn_int(row[1])


def _delta(root: Path, name: str) -> DeltaTable:
    return DeltaTable(str(root / "warehouse" / name))


def _run(root: Path) -> list[Any]:
    results = drain(lambda refresh: lockgate.run(root, max_workers=1, full_refresh=refresh))
    for result in results:
        for step in result.steps:
            assert str(step.status) in ("success", "noop"), (step.dataset, step.error)
            assert step.rows_in == step.rows_out + step.rows_quarantined + step.rows_skipped
    return results


def test_idle_table_lets_its_slot_advance_past_other_wal(src: Any, tmp_path: Path) -> None:
    p = "h" + uuid.uuid4().hex[:8]
    slot = f"{p}_quiet"
    src.execute("CREATE TABLE quiet (id int PRIMARY KEY, v text)")
    src.execute("CREATE TABLE busy (id int PRIMARY KEY, v text)")  # not captured
    src.execute("INSERT INTO quiet VALUES (1, 'a')")
    root = cdc_project(tmp_path, {"quiet": ["id"]}, slot_prefix=p, heartbeat_bytes=65536)
    _run(root)
    start = _delta(root, "quiet").transaction_version("cdc:" + slot)
    assert start is not None
    version = _delta(root, "quiet").version()

    src.execute("INSERT INTO busy SELECT g, 'x' FROM generate_series(1, 20) g")  # little WAL
    _run(root)
    assert _delta(root, "quiet").version() == version  # under the threshold: no commit

    src.execute("INSERT INTO busy SELECT g, repeat('x', 200) FROM generate_series(21, 5000) g")
    (before_restart,) = _slot(src, slot)[1:]
    # a checkpoint logs the running transactions: decoding past that record is what lets
    # PostgreSQL move the slot's restart LSN (the WAL it keeps) when the slot advances
    src.execute("CHECKPOINT")
    _run(root)
    moved = _delta(root, "quiet").transaction_version("cdc:" + slot)
    assert moved is not None and moved - start >= 65536  # the position moved past the WAL
    confirmed, restart = _slot(src, slot)
    assert confirmed == moved and restart > before_restart  # ... and the slot followed
    assert [r["id"] for r in _delta(root, "quiet").to_pyarrow_table().to_pylist()] == [1]

    src.execute("INSERT INTO quiet VALUES (2, 'b')")  # a change after the heartbeat
    _run(root)
    ids = sorted(r["id"] for r in _delta(root, "quiet").to_pyarrow_table().to_pylist())
    assert ids == [1, 2]
    assert _slot(src, slot)[0] == _delta(root, "quiet").transaction_version("cdc:" + slot)


def test_a_full_batch_of_other_tables_moves_on(src: Any, tmp_path: Path) -> None:
    """A shared publication: the slot hands out the other table's transactions too; a
    batch full of them (and nothing of the table) must not be read again and again."""
    p = "h" + uuid.uuid4().hex[:8]
    slot = f"{p}_mine"
    src.execute("CREATE TABLE mine (id int PRIMARY KEY)")
    src.execute("CREATE TABLE theirs (id int PRIMARY KEY)")
    src.execute(f"CREATE PUBLICATION {p}_pub FOR TABLE mine, theirs")
    root = cdc_project(
        tmp_path, {"mine": ["id"]}, slot_prefix=p, publication=f"{p}_pub", max_changes=10
    )
    _run(root)
    for i in range(40):  # 40 transactions, none of them touching 'mine'
        src.execute("INSERT INTO theirs VALUES (%s)", (i,))
    src.execute("INSERT INTO mine VALUES (1)")
    runs = 0
    while True:  # each batch must move the position: the drain ends (bounded here)
        runs += 1
        steps = lockgate.run(root, max_workers=1).steps
        assert all(str(s.status) in ("success", "noop") for s in steps)
        if not any(s.more_available for s in steps):
            break
        assert runs < 30, "the same batch was handed out again and again"
    assert runs >= 4
    assert [r["id"] for r in _delta(root, "mine").to_pyarrow_table().to_pylist()] == [1]
    assert _slot(src, slot)[0] == _delta(root, "mine").transaction_version("cdc:" + slot)
