"""Tables kept across the stores of one process (lockgate.storage.delta_cache): reused only
while provably current — another writer's commit, a deleted and re-created table, or a
write through a store makes the next reader open the table again."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from lockgate.storage import DeltaStore, delta_cache
from lockgate.storage.health import TableDamaged
from tests.storage.helpers import publish, rows


@pytest.fixture(autouse=True)
def _fresh() -> None:
    delta_cache.clear()


def run_store(tmp_path: Path) -> DeltaStore:
    return DeltaStore(tmp_path, cache_tables=True)


def test_a_second_store_reuses_the_kept_table_and_snapshot(tmp_path: Path) -> None:
    publish(DeltaStore(tmp_path), "t", {"id": [1]}, seq=1)
    a, b = run_store(tmp_path), run_store(tmp_path)
    snap = a.snapshot("t")
    assert snap is not None and snap.version == 0
    assert b.open_table("t") is a.open_table("t")
    assert b.snapshot("t") is snap


def test_another_writers_commit_is_seen(tmp_path: Path) -> None:
    publish(DeltaStore(tmp_path), "t", {"id": [1]}, seq=1)
    a = run_store(tmp_path)
    assert a.version("t") == 0
    # another process (not through any store of this one) commits version 1
    write_deltalake(str(tmp_path / "t"), pa.table({"id": [2]}), mode="append")
    b = run_store(tmp_path)
    assert b.version("t") == 1 and b.snapshot("t").version == 1  # type: ignore[union-attr]
    assert sorted(r["id"] for r in rows(b, "t")) == [1, 2]


def test_a_table_deleted_and_created_again_is_opened_again(tmp_path: Path) -> None:
    publish(DeltaStore(tmp_path), "t", {"id": [1]}, seq=1)
    a = run_store(tmp_path)
    assert a.last_commit("t") is not None
    shutil.rmtree(tmp_path / "t")
    # same version number (0), different table: no lockgate commit in it
    write_deltalake(str(tmp_path / "t"), pa.table({"id": [7, 8]}))
    b = run_store(tmp_path)
    assert b.open_table("t") is not a.open_table("t")
    assert b.last_commit("t") is None and b.version("t") == 0
    shutil.rmtree(tmp_path / "t")
    assert not run_store(tmp_path).exists("t")


def test_a_write_through_a_store_never_moves_a_kept_table(tmp_path: Path) -> None:
    publish(DeltaStore(tmp_path), "t", {"id": [1]}, seq=1)
    reader_store = run_store(tmp_path)
    kept = reader_store.open_table("t")
    publish(run_store(tmp_path), "t", {"id": [2]}, seq=2)
    assert kept.version() == 0  # the reader's object was not used for the write
    assert run_store(tmp_path).version("t") == 1


def test_a_deleted_old_commit_file_is_noticed(tmp_path: Path) -> None:
    """Damage to the history (an old _delta_log file removed) must reach the trust check:
    the kept table is not used after the log folder changed."""
    store = DeltaStore(tmp_path)
    publish(store, "t", {"id": [1]}, seq=1)
    publish(store, "t", {"id": [2]}, seq=2)
    a = run_store(tmp_path)
    kept = a.open_table("t")
    (tmp_path / "t" / "_delta_log" / f"{0:020d}.json").unlink()
    assert delta_cache.lookup(tmp_path / "t") is None
    assert kept.version() == 1
    with pytest.raises(TableDamaged, match="cannot be read"):  # opened again: damage seen
        run_store(tmp_path).inspect("t")
