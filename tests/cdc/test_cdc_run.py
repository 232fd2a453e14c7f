"""``type: postgres_cdc`` end to end against a real logical-replication cluster: snapshot,
inserts/updates/deletes merged by key, key changes, unchanged TOASTed values, truncate, soft
deletes, quarantined changes keeping their LSN, the position in the Delta commit equal to the
slot's, and clear errors (no key, invalidated slot)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

import lockgate
from lockgate.errors import ConfigError
from lockgate.runloop.follow import drain
from lockgate.sources._pgoutput import lsn_int
from tests.cdc.conftest import cdc_project

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _env(cdc_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LG_CDC_URL", cdc_url)


def _prefix() -> str:
    return "t" + uuid.uuid4().hex[:8]


def _table(root: Path, name: str) -> list[dict[str, Any]]:
    return DeltaTable(str(root / "warehouse" / name)).to_pyarrow_table().to_pylist()


def _position(root: Path, name: str, slot: str) -> int | None:
    return DeltaTable(str(root / "warehouse" / name)).transaction_version("cdc:" + slot)


def _confirmed(src: Any, slot: str) -> int:
    row = src.execute(
        "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
        (slot,),
    ).fetchone()
    return lsn_int(row[0])


def _run(root: Path) -> Any:
    """``lockgate run``: batches until the slot is read; the first batch's result."""
    results = drain(lambda refresh: lockgate.run(root, max_workers=1, full_refresh=refresh))
    for result in results:
        for step in result.steps:
            assert str(step.status) in ("success", "noop"), (step.dataset, step.error)
            assert step.rows_in == step.rows_out + step.rows_quarantined + step.rows_skipped
    return results[0]


def _big(src: Any) -> str:
    """Text PostgreSQL stores out of line (TOAST): incompressible, > 2 kB."""
    return str(
        src.execute(
            "SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 200)"
        ).fetchone()[0]
    )


def test_snapshot_then_changes_merge_by_key(src: Any, tmp_path: Path) -> None:
    p = _prefix()
    src.execute(
        "CREATE TABLE items (id int PRIMARY KEY, name text, qty int, doc text, "
        "price numeric(10,2), at timestamptz, raw bytea)"
    )
    src.execute(
        "INSERT INTO items SELECT g, 'n' || g, g, NULL, g * 1.5, "
        "'2024-01-01 00:00:00+00', '\\x00ff' FROM generate_series(1, 50) g"
    )
    root = cdc_project(tmp_path, {"items": ["id"]}, slot_prefix=p)
    first = _run(root)
    assert first.steps[0].rows_out == 50
    rows = {r["id"]: r for r in _table(root, "items")}
    assert rows[7]["price"] == pytest.approx(10.5) and rows[7]["raw"] == b"\x00\xff"
    assert {r["_lg_op"] for r in rows.values()} == {"r"}
    slot = f"{p}_items"
    assert _position(root, "items", slot) == _confirmed(src, slot)

    big = _big(src)
    src.execute("INSERT INTO items VALUES (100, 'big', 1, %s, 1, now(), NULL)", (big,))
    src.execute("UPDATE items SET qty = 2 WHERE id = 100")  # doc unchanged: TOAST 'u'
    src.execute("UPDATE items SET id = 101 WHERE id = 100")  # key change, doc still 'u'
    src.execute("DELETE FROM items WHERE id <= 3")
    src.execute("UPDATE items SET name = 'renamed' WHERE id = 10")
    second = _run(root).steps[0]
    assert second.skip_reasons.get("superseded_in_batch")
    _run(root)  # nothing new: the slot and the table agree
    rows = {r["id"]: r for r in _table(root, "items")}
    assert 1 not in rows and 100 not in rows and rows[10]["name"] == "renamed"
    assert rows[101]["doc"] == big and rows[101]["qty"] == 2 and rows[101]["_lg_op"] == "c"

    # unchanged TOAST value in a later batch: filled from the published row, never a placeholder
    src.execute("UPDATE items SET qty = 3 WHERE id = 101")
    _run(root)
    rows = {r["id"]: r for r in _table(root, "items")}
    assert rows[101]["doc"] == big and rows[101]["qty"] == 3 and rows[101]["_lg_op"] == "u"
    source = {r[0]: r for r in src.execute("SELECT id, name, qty, doc FROM items").fetchall()}
    assert {k: (v["name"], v["qty"], v["doc"]) for k, v in rows.items()} == {
        k: v[1:] for k, v in source.items()
    }
    assert _position(root, "items", slot) == _confirmed(src, slot)


def test_truncate_and_soft_deletes(src: Any, tmp_path: Path) -> None:
    p = _prefix()
    src.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    src.execute("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 10) g")
    root = cdc_project(tmp_path, {"t": ["id"]}, slot_prefix=p, deletes="soft")
    _run(root)
    src.execute("DELETE FROM t WHERE id = 1")
    src.execute("UPDATE t SET v = 'x' WHERE id = 2")
    _run(root)
    rows = {r["id"]: r for r in _table(root, "t")}
    assert rows[1]["_lg_deleted"] is True and rows[1]["v"] == "v1" and rows[1]["_lg_op"] == "d"
    assert rows[2]["_lg_deleted"] is False and rows[2]["v"] == "x"
    src.execute("UPDATE t SET v = 'gone' WHERE id = 3")
    src.execute("TRUNCATE t")
    src.execute("INSERT INTO t VALUES (5, 'back')")
    res = _run(root).steps[0]
    assert res.skip_reasons.get("truncated") == 1  # the update before the truncate
    rows = {r["id"]: r for r in _table(root, "t")}
    live = {k for k, r in rows.items() if not r["_lg_deleted"]}
    assert live == {5} and rows[5]["v"] == "back" and len(rows) == 10


def test_quarantined_changes_keep_their_lsn(src: Any, tmp_path: Path) -> None:
    p = _prefix()
    src.execute("CREATE TABLE q (id int PRIMARY KEY, qty int)")
    checks = [{"type": "between", "column": "qty", "min": 0, "max": 100}]
    root = cdc_project(tmp_path, {"q": ["id"]}, slot_prefix=p, checks=checks)
    _run(root)
    src.execute("INSERT INTO q VALUES (1, 5), (2, 500)")
    step = _run(root).steps[0]
    assert (step.rows_out, step.rows_quarantined) == (1, 1)
    bad = _table(root, "q__quarantine")
    slot = f"{p}_q"
    assert [(r["id"], r["_lg_lsn"]) for r in bad] == [(2, _position(root, "q", slot))]


def test_no_primary_key_is_a_clear_error(src: Any, tmp_path: Path) -> None:
    src.execute("CREATE TABLE nokey (a int, b text)")
    root = cdc_project(tmp_path, {"nokey": ["a"]}, slot_prefix=_prefix())
    step = lockgate.run(root).steps[0]
    assert str(step.status) == "failed"
    assert "no primary key and REPLICA IDENTITY is not FULL" in (step.error or "")
    src.execute("ALTER TABLE nokey REPLICA IDENTITY FULL")
    src.execute("INSERT INTO nokey VALUES (1, 'a')")
    _run(root)
    src.execute("DELETE FROM nokey WHERE a = 1")
    _run(root)
    assert _table(root, "nokey") == []


def test_merge_is_required_at_validate_time(tmp_path: Path, cdc_url: str) -> None:
    root = cdc_project(tmp_path, {"x": ["id"]}, slot_prefix=_prefix())
    ds = root / "datasets" / "main.yaml"
    ds.write_text(ds.read_text().replace("mode: merge", "mode: append"))
    with pytest.raises(ConfigError, match=r"needs write: \{mode: merge"):
        lockgate.run(root)


def test_dropped_slot_says_how_to_recover(src: Any, tmp_path: Path) -> None:
    p = _prefix()
    src.execute("CREATE TABLE d (id int PRIMARY KEY)")
    root = cdc_project(tmp_path, {"d": ["id"]}, slot_prefix=p)
    _run(root)
    src.execute("SELECT pg_drop_replication_slot(%s)", (f"{p}_d",))
    step = lockgate.run(root).steps[0]
    assert str(step.status) == "failed"
    assert "does not exist" in (step.error or "") and "--full-refresh" in (step.hint or "")
    src.execute("INSERT INTO d VALUES (1)")
    lockgate.run(root, full_refresh=True)
    assert [r["id"] for r in _table(root, "d")] == [1]


def test_cli_status_and_drop_slot(src: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lockgate.cli.app import app

    p = _prefix()
    src.execute("CREATE TABLE s (id int PRIMARY KEY)")
    root = cdc_project(tmp_path, {"s": ["id"]}, slot_prefix=p)
    _run(root)
    cli = CliRunner()
    out = cli.invoke(app, ["cdc", "status", "--json", "-p", str(root)])
    assert out.exit_code == 0, out.output
    (row,) = __import__("json").loads(out.output)
    assert row["exists"] and row["wal_status"] == "reserved"
    assert row["confirmed_lsn"] == row["table_position"] and row["retained_bytes"] >= 0
    out = cli.invoke(app, ["cdc", "drop-slot", "s", "-p", str(root)])
    assert out.exit_code == 0 and "--full-refresh" in out.output
    out = cli.invoke(app, ["cdc", "status", "-p", str(root)])
    assert out.exit_code != 0 and "missing" in out.output
