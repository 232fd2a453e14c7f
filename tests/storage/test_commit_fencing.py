"""Fenced commits (a stream consumer's token, ``CommitTag.fence``): refused once another
writer claimed the table, including when the claim lands between the token check and the
commit (delta-rs's application-id conflict check makes the two atomic)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from lockgate.storage import delta_write, store_for
from lockgate.storage.base import CommitTag, TableWrite
from lockgate.storage.errors import CommitFenced

APP = "stream:s:fence"
WRITE = TableWrite("append")


def _rows(*ids: int) -> pa.RecordBatchReader:
    return pa.table({"id": pa.array(ids, pa.int64())}).to_reader()


def _tag(seq: int, epoch: int) -> CommitTag:
    return CommitTag("stream:s", seq, str(seq), fence=(APP, epoch))


def test_a_claimed_table_refuses_the_older_epoch(tmp_path: Path) -> None:
    a = store_for("delta", tmp_path)
    a.keep_written_tables()
    a.publish("t", _rows(1), write=WRITE, tag=_tag(1, 1))  # creates it (exclusively)
    a.publish("t", _rows(2), write=WRITE, tag=_tag(2, 1))
    b = store_for("delta", tmp_path)
    assert b.claim_fence("t", APP, 2)
    with pytest.raises(CommitFenced, match="fenced out"):
        a.publish("t", _rows(3), write=WRITE, tag=_tag(3, 1))
    with pytest.raises(CommitFenced):  # a claim never goes back
        a.claim_fence("t", APP, 2)
    b.publish("t", _rows(3), write=WRITE, tag=_tag(3, 2))
    assert sorted(b.read("t").column("id").to_pylist()) == [1, 2, 3]
    assert b.last_commit("t") is not None and b.last_commit("t").epoch == 2  # type: ignore[union-attr]


def test_a_claim_between_the_check_and_the_commit_refuses_the_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = store_for("delta", tmp_path)
    a.publish("t", _rows(1), write=WRITE, tag=_tag(1, 1))
    b = store_for("delta", tmp_path)
    real = delta_write.crashpoint

    def claim_now(name: str) -> None:  # right after A checked the token, before it commits
        if "before publish" in name:
            b.claim_fence("t", APP, 2)
        real(name)

    monkeypatch.setattr(delta_write, "crashpoint", claim_now)
    with pytest.raises(CommitFenced, match="concurrently"):
        a.publish("t", _rows(2), write=WRITE, tag=_tag(2, 1))
    assert b.read("t").column("id").to_pylist() == [1]


def test_a_table_expected_missing_is_created_exclusively(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = store_for("delta", tmp_path)
    b = store_for("delta", tmp_path)
    real = delta_write.crashpoint

    done: list[bool] = []

    def create_now(name: str) -> None:  # B creates it after A found it missing
        if "before publish" in name and not done:
            done.append(True)
            b.publish("t", _rows(9), write=WRITE, tag=_tag(1, 2))
        real(name)

    monkeypatch.setattr(delta_write, "crashpoint", create_now)
    with pytest.raises(CommitFenced):
        a.publish("t", _rows(1), write=WRITE, tag=_tag(1, 1))
    assert b.read("t").column("id").to_pylist() == [9]


def test_other_writers_do_not_fence(tmp_path: Path) -> None:
    """A commit without the token (compaction, another dataset tool) leaves it in place."""
    a = store_for("delta", tmp_path)
    a.keep_written_tables()
    a.publish("t", _rows(1), write=WRITE, tag=_tag(1, 1))
    from deltalake import write_deltalake

    write_deltalake(str(tmp_path / "t"), pa.table({"id": pa.array([5], pa.int64())}), mode="append")
    a.publish("t", _rows(2), write=WRITE, tag=_tag(2, 1))
    assert sorted(a.read("t").column("id").to_pylist()) == [1, 2, 5]
