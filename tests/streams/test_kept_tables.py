"""A stream keeps its written Delta tables open between commits
(``TableStore.keep_written_tables``); a commit by anyone else in between (compaction,
another store) must still be seen by the next publish — the idempotency rule included."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from lockgate.storage import store_for
from lockgate.storage.base import CommitTag, TableWrite

_W = TableWrite("append", schema_mode="merge")


def _rows(*ids: int) -> pa.RecordBatchReader:
    return pa.table({"id": list(ids)}).to_reader()


def test_a_kept_table_sees_commits_made_by_others(tmp_path: Path) -> None:
    mine = store_for("delta", tmp_path)
    mine.keep_written_tables()
    other = store_for("delta", tmp_path)
    assert not mine.publish("t", _rows(1), write=_W, tag=CommitTag("r", 1, "1")).skipped
    assert not mine.publish("t", _rows(2), write=_W, tag=CommitTag("r", 2, "2")).skipped
    # another writer commits batch 5 while "mine" holds the table open at version 1
    assert not other.publish("t", _rows(5), write=_W, tag=CommitTag("r", 5, "5")).skipped
    late = mine.publish("t", _rows(3), write=_W, tag=CommitTag("r", 3, "3"))
    assert late.skipped and late.already_committed  # 5 >= 3: not written twice
    assert not mine.publish("t", _rows(6), write=_W, tag=CommitTag("r", 6, "6")).skipped
    assert sorted(other.read("t").column("id").to_pylist()) == [1, 2, 5, 6]
    assert other.txn_version("t", "lockgate:t") == 6


def test_a_table_moved_aside_is_opened_again(tmp_path: Path) -> None:
    mine = store_for("delta", tmp_path)
    mine.keep_written_tables()
    mine.publish("t", _rows(1), write=_W, tag=CommitTag("r", 1, "1"))
    mine.move_aside("t")  # a damaged table set aside: the next publish starts a new one
    assert not mine.publish("t", _rows(2), write=_W, tag=CommitTag("r", 2, "2")).skipped
    assert mine.read("t").column("id").to_pylist() == [2]


def test_a_kept_table_knows_its_own_transactions(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Between its own commits a kept table's transaction versions are known without a
    log replay; the idempotency rule and the positions of an empty batch still hold."""
    from deltalake import DeltaTable

    mine = store_for("delta", tmp_path)
    mine.keep_written_tables()
    pos = (("src:p0", 4),)
    mine.publish("t", _rows(1), write=_W, tag=CommitTag("r", 1, "1", positions=pos))
    mine.publish("t", _rows(2), write=_W, tag=CommitTag("r", 2, "2", positions=pos))
    asked: list[str] = []
    real = DeltaTable.transaction_version

    def counted(self: DeltaTable, app_id: str) -> int | None:
        asked.append(app_id)
        return real(self, app_id)

    monkeypatch.setattr(DeltaTable, "transaction_version", counted)
    again = mine.publish("t", _rows(2), write=_W, tag=CommitTag("r", 2, "2"))
    assert again.skipped and again.already_committed  # the same batch: not written twice
    empty = pa.table({"id": pa.array([], pa.int64())}).to_reader()
    same = mine.publish("t", empty, write=_W, tag=CommitTag("r", 3, "3", positions=pos))
    assert same.skipped  # no rows and the position did not move: nothing to commit
    empty = pa.table({"id": pa.array([], pa.int64())}).to_reader()
    moved = (("src:p0", 9),)
    assert not mine.publish(
        "t", empty, write=_W, tag=CommitTag("r", 4, "4", positions=moved)
    ).skipped
    assert asked == []
    monkeypatch.undo()
    assert mine.txn_version("t", "src:p0") == 9
    assert sorted(mine.read("t").column("id").to_pylist()) == [1, 2]


def test_kept_tables_are_checkpointed_off_the_commit(tmp_path: Path) -> None:
    from deltalake import DeltaTable, write_deltalake

    write_deltalake(
        str(tmp_path / "t"),
        pa.table({"id": pa.array([0], pa.int64())}),
        configuration={"delta.checkpointInterval": "5"},
    )
    mine = store_for("delta", tmp_path)
    mine.keep_written_tables()
    for i in range(1, 12):
        mine.publish("t", _rows(i), write=_W, tag=CommitTag("r", i, str(i)))
    mine.wait_for_checkpoints()
    log = tmp_path / "t" / "_delta_log"
    assert sorted(p.name for p in log.glob("*.checkpoint.parquet")) == [
        f"{5:020d}.checkpoint.parquet",
        f"{10:020d}.checkpoint.parquet",
    ]
    table = DeltaTable(str(tmp_path / "t"))
    assert table.version() == 11 and table.transaction_version("lockgate:t") == 11
    assert sorted(table.to_pyarrow_table().column("id").to_pylist()) == list(range(12))
