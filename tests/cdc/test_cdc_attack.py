"""``type: postgres_cdc`` attacked with changes its first tests did not make: a TOASTed
value set to NULL, enum/array/jsonb/money/BC-date values changing, a transaction across a
captured and an uncaptured table, a transaction larger than a batch, and a password full of
URL delimiters. Every run keeps records read = published + quarantined + skipped, and the
table ends equal to the source."""

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


def _prefix() -> str:
    return "a" + uuid.uuid4().hex[:8]


def _rows(root: Path, name: str) -> dict[Any, dict[str, Any]]:
    t = DeltaTable(str(root / "warehouse" / name)).to_pyarrow_table().to_pylist()
    return {r["id"]: r for r in t}


def _run(root: Path) -> list[Any]:
    results = drain(lambda refresh: lockgate.run(root, max_workers=1, full_refresh=refresh))
    steps = [s for r in results for s in r.steps]
    for step in steps:
        assert str(step.status) in ("success", "noop"), (step.dataset, step.error)
        assert step.rows_in == step.rows_out + step.rows_quarantined + step.rows_skipped
    return steps


def _in_step(src: Any, root: Path, name: str, slot: str) -> None:
    """The slot's confirmed LSN is the table's position."""
    (confirmed,) = src.execute(
        "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
        (slot,),
    ).fetchone()
    position = DeltaTable(str(root / "warehouse" / name)).transaction_version("cdc:" + slot)
    assert position == lsn_int(confirmed)


def _big(src: Any) -> str:
    return str(
        src.execute(
            "SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 200)"
        ).fetchone()[0]
    )


def test_toasted_value_set_to_null_and_typed_values_changing(src: Any, tmp_path: Path) -> None:
    """An update that sets a TOASTed column to NULL must publish NULL (not the stored
    value, as an unchanged-TOAST 'u' would); enum, array, jsonb, money, BC dates and
    mixed-sign intervals arrive as text and are kept exactly."""
    p = _prefix()
    src.execute("CREATE TYPE mood AS ENUM ('sad', 'ok')")
    src.execute(
        "CREATE TABLE tx (id int PRIMARY KEY, doc text, e mood, a int[], j jsonb, m money,"
        " iv interval)"
    )
    big = _big(src)
    src.execute(
        "INSERT INTO tx VALUES (1, %s, 'sad', '{1,NULL}', '{\"k\": [1]}', 1.5,"
        " '1 mon -1 day 25:00:00'), (2, %s, 'ok', '{{1,2},{3,4}}', 'null', -2, '0')",
        (big, big),
    )
    root = cdc_project(tmp_path, {"tx": ["id"]}, slot_prefix=p)
    snap = _run(root)[0]
    assert (snap.rows_out, snap.rows_quarantined) == (2, 0)
    src.execute("ALTER TYPE mood ADD VALUE 'happy'")  # a label added between runs
    src.execute(
        "UPDATE tx SET doc = NULL, e = 'happy', a = '{}', j = '{\"k\": 2}', m = 3.25,"
        " iv = '-1 days +01:00:00' WHERE id = 1"
    )
    src.execute("UPDATE tx SET e = 'sad' WHERE id = 2")  # doc unchanged: TOAST 'u'
    step = _run(root)[0]
    assert step.rows_quarantined == 0
    rows = _rows(root, "tx")
    assert rows[1]["doc"] is None and rows[2]["doc"] == big
    assert (rows[1]["e"], rows[2]["e"]) == ("happy", "sad")
    assert (rows[1]["iv"], rows[2]["iv"]) == ("-1 day 01:00:00", "00:00:00")
    source = src.execute("SELECT id, doc, e::text, a::text, j::text, m::text FROM tx").fetchall()
    got = {(k, r["doc"], r["e"], r["a"], r["j"], r["m"]) for k, r in rows.items()}
    assert got == set(source)
    _in_step(src, root, "tx", f"{p}_tx")


def test_a_transaction_across_a_captured_and_an_uncaptured_table(src: Any, tmp_path: Path) -> None:
    p = _prefix()
    src.execute("CREATE TABLE cap (id int PRIMARY KEY, v text)")
    src.execute("CREATE TABLE other (id int PRIMARY KEY, v text)")
    root = cdc_project(tmp_path, {"cap": ["id"]}, slot_prefix=p)
    _run(root)
    with src.transaction():
        src.execute("INSERT INTO other VALUES (1, 'o')")
        src.execute("INSERT INTO cap VALUES (1, 'c')")
        src.execute("UPDATE other SET v = 'o2'")
        src.execute("INSERT INTO cap VALUES (2, 'd')")
    src.execute("INSERT INTO other VALUES (2, 'only other')")
    steps = _run(root)
    assert sum(s.rows_out for s in steps) == 2
    assert {k: r["v"] for k, r in _rows(root, "cap").items()} == {1: "c", 2: "d"}
    _in_step(src, root, "cap", f"{p}_cap")


def test_a_transaction_larger_than_a_batch_is_applied_whole(src: Any, tmp_path: Path) -> None:
    """max_changes: 10 and one transaction of 500 changes (inserts, updates, deletes): the
    batch takes the whole transaction (never half of one), nothing twice."""
    p = _prefix()
    src.execute("CREATE TABLE h (id int PRIMARY KEY, v int)")
    root = cdc_project(tmp_path, {"h": ["id"]}, slot_prefix=p, max_changes=10)
    _run(root)
    with src.transaction():
        src.execute("INSERT INTO h SELECT g, g FROM generate_series(1, 300) g")
        src.execute("UPDATE h SET v = -v WHERE id % 2 = 0")
        src.execute("DELETE FROM h WHERE id % 5 = 0")
    src.execute("INSERT INTO h VALUES (1000, 1)")
    steps = _run(root)
    assert all(s.rows_quarantined == 0 for s in steps)
    source = dict(src.execute("SELECT id, v FROM h").fetchall())
    assert {k: r["v"] for k, r in _rows(root, "h").items()} == source
    _in_step(src, root, "h", f"{p}_h")


def test_a_password_with_url_delimiters_is_used_and_never_shown(
    src: Any, tmp_path: Path, cdc_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The password (percent-encoded in the URL, or a plain ``password:`` field) holds
    ``@ : / ? #``: the connection works, and no error, warning or state shows it."""
    from urllib.parse import quote

    p = _prefix()
    secret = "p@ss:w/o?r#d%Zz9"
    role = "r" + p
    src.execute(f"CREATE ROLE {role} LOGIN REPLICATION SUPERUSER PASSWORD '{secret}'")
    src.execute("CREATE TABLE pw (id int PRIMARY KEY)")
    src.execute("INSERT INTO pw VALUES (1)")
    host = cdc_url.split("@", 1)[1]
    monkeypatch.setenv("LG_CDC_URL", f"postgresql://{role}:{quote(secret, safe='')}@{host}")
    root = cdc_project(tmp_path, {"pw": ["id"]}, slot_prefix=p)
    _run(root)
    src.execute("INSERT INTO pw VALUES (2)")
    _run(root)
    assert sorted(_rows(root, "pw")) == [1, 2]
    src.execute("DROP TABLE pw")  # an error now: it must not carry the password
    failed = lockgate.run(root, max_workers=1).steps[0]
    assert str(failed.status) == "failed" and failed.error
    shown = " ".join(str(x) for x in (failed.error, failed.hint, failed.warnings, failed.inputs))
    for part in (secret, quote(secret, safe=""), "w/o?r#d"):
        assert part not in shown
    for f in (root / ".lockgate").rglob("*"):
        if f.is_file() and f.stat().st_size < 5_000_000:
            assert secret.encode() not in f.read_bytes(), f
