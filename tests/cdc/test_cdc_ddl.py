"""DDL on the source between changes (a column added, then one dropped), all within what one
``postgres_cdc`` batch could read: each batch is read with the columns its Relation message
describes; the schema contract sees the drift — ``freeze`` stops before the first changed
batch and skips nothing, ``evolve`` carries on — and the table ends equal to the source."""

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


def _rows(root: Path) -> dict[int, dict[str, Any]]:
    t = DeltaTable(str(root / "warehouse" / "dd")).to_pyarrow_table().to_pylist()
    return {r["id"]: r for r in t}


def test_columns_added_and_dropped_mid_batch(src: Any, tmp_path: Path) -> None:
    p = "d" + uuid.uuid4().hex[:8]
    slot = f"{p}_dd"
    src.execute("CREATE TABLE dd (id int PRIMARY KEY, a text)")
    src.execute("INSERT INTO dd VALUES (1, 'p')")
    root = cdc_project(tmp_path, {"dd": ["id"]}, slot_prefix=p)
    ds = root / "datasets" / "main.yaml"
    ds.write_text(ds.read_text().replace("  write:", "  schema_policy: freeze\n  write:", 1))
    assert str(lockgate.run(root, max_workers=1).steps[0].status) == "success"
    src.execute("INSERT INTO dd VALUES (2, 'x')")
    src.execute("ALTER TABLE dd ADD COLUMN b int")
    src.execute("INSERT INTO dd VALUES (3, 'y', 5)")
    src.execute("UPDATE dd SET b = 6 WHERE id = 1")
    src.execute("ALTER TABLE dd DROP COLUMN a")
    src.execute("INSERT INTO dd VALUES (4, 7)")

    first = lockgate.run(root, max_workers=1).steps[0]  # up to the Relation that adds b
    assert str(first.status) == "success" and first.more_available
    assert sorted(_rows(root)) == [1, 2]
    frozen = lockgate.run(root, max_workers=1).steps[0]
    assert str(frozen.status) == "failed" and "added column 'b'" in (frozen.error or "")
    held = DeltaTable(str(root / "warehouse" / "dd")).transaction_version("cdc:" + slot)
    again = lockgate.run(root, max_workers=1).steps[0]  # still frozen: the same batch again
    assert str(again.status) == "failed" and sorted(_rows(root)) == [1, 2]

    ds.write_text(ds.read_text().replace("schema_policy: freeze", "schema_policy: evolve"))
    results = drain(lambda refresh: lockgate.run(root, max_workers=1, full_refresh=refresh))
    for result in results:
        step = result.steps[0]
        assert str(step.status) in ("success", "noop"), step.error
        assert step.rows_in == step.rows_out + step.rows_quarantined + step.rows_skipped
    rows = _rows(root)
    assert {k: v["b"] for k, v in rows.items()} == {1: 6, 2: None, 3: 5, 4: 7}
    assert (rows[1]["a"], rows[3]["a"], rows[4]["a"]) == ("p", "y", None)  # a: gone since
    source = dict(src.execute("SELECT id, b FROM dd").fetchall())
    assert {k: v["b"] for k, v in rows.items()} == source
    position = DeltaTable(str(root / "warehouse" / "dd")).transaction_version("cdc:" + slot)
    assert held is not None and position is not None and position > held
    (confirmed,) = src.execute(
        "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
        (slot,),
    ).fetchone()
    assert lsn_int(confirmed) == position
