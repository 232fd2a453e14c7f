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
