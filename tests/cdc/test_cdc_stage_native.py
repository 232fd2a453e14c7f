"""Staging a change batch whose columns all arrive typed (``mysql_cdc``'s texts that Arrow
parses exactly): the last event per key is picked in Arrow and the tables are written
straight — the same rows, deletes and counts as the general path (convert, window, split);
texts that do not parse exactly (zero dates, rounding decimals, overflows) stay text for the
conversion, which rejects them with the column and the value."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from sqlglot import exp

from lockgate.engine.session import Session
from lockgate.sources._binlog import BatchBuilder, TablePlan
from lockgate.sources._cdc_stage import stage_changes
from lockgate.sources._db import CAST, NATIVE
from lockgate.sources.base import create_rejects_table
from lockgate.sources.mysql_cdc import _columns, _typed
from lockgate.sql import ident

_PLAN = TablePlan(
    "db",
    "t",
    ("id", "part", "n", "amount", "at", "stamp", "day", "label"),
    (
        "bigint",
        "int",
        "int unsigned",
        "decimal(12,2)",
        "datetime(6)",
        "timestamp",
        "date",
        "varchar(20)",
    ),
    ("id", "part"),
)


def _batch(seed: int, *, bad: dict[int, str] | None = None) -> Any:
    """Random inserts/updates/deletes/key changes over few keys (so most are superseded),
    NULLs in the non-key columns; ``bad`` puts a text into that column of the first row."""
    rng = random.Random(seed)
    b = BatchBuilder(_PLAN, applied=None, max_changes=10**9)

    def row(i: int, j: int) -> list[str | None]:
        def maybe(v: str) -> str | None:
            return None if rng.random() < 0.1 else v

        return [
            str(i),
            str(j),
            maybe(str(rng.randrange(2**32))),
            maybe(f"{rng.randrange(-(10**11), 10**11) / 100:.2f}"),
            maybe(
                f"20{rng.randrange(10, 30)}-0{rng.randrange(1, 10)}-1{rng.randrange(10)} "
                f"1{rng.randrange(10)}:0{rng.randrange(10)}:00.{rng.randrange(10**6):06d}"
            ),
            maybe(f"2024-05-0{rng.randrange(1, 10)} 12:00:00+00"),
            maybe(f"2024-1{rng.randrange(3)}-2{rng.randrange(10)}"),
            maybe(rng.choice(["a", "é", "", "x y"])),
        ]

    first = True
    for txn in range(40):
        for _ in range(rng.randrange(1, 6)):
            kind = rng.choice("cccuud")
            i, j = rng.randrange(12), rng.randrange(2)
            if kind == "u":
                before, after = row(i, j), row(i, j)
                if rng.random() < 0.2:
                    after[0] = str(rng.randrange(12))  # a key change: delete + insert
                images = [before, after]
            else:
                images = [row(i, j)]
            if first and bad:
                for col, text in bad.items():
                    images[-1][col] = text
                first = False
            b.row_texts(kind, images, 1_700_000_000 + txn)
        b.commit(1000 + txn)
    return b.finish().batch


def _stage(tmp: Path, batch: Any, *, general: bool, soft: bool) -> tuple[Any, dict[str, Any]]:
    s = Session(tmp, "general" if general else "native")
    create_rejects_table(s.con, "t")
    columns = _typed(batch, _columns(_PLAN))
    plain = [exp.column(ident(c.name)) for c in columns]
    staged = stage_changes(
        s,
        "t",
        batch,
        columns,
        _PLAN.keys,
        origin="test",
        soft=soft,
        target=None,
        select=plain if general else None,  # a select: the general path
    )
    tables = {
        name: s.con.execute(f'SELECT * FROM "{name}" ORDER BY ALL').fetchall()
        for name in ("t", "t__deletes", "t__rejects")
    }
    types = s.con.execute("DESCRIBE t").fetchall()
    s.close()
    return staged, {**tables, "types": [r[:2] for r in types]}


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_native_staging_is_the_general_staging(tmp_path: Path, seed: int, soft: bool) -> None:
    columns = _typed(_batch(seed), _columns(_PLAN))
    assert all(c.how == NATIVE for c in columns)  # every column typed: the fast path
    fast, fast_tables = _stage(tmp_path, _batch(seed), general=False, soft=soft)
    slow, slow_tables = _stage(tmp_path, _batch(seed), general=True, soft=soft)
    assert fast_tables == slow_tables
    assert fast_tables["t"] and fast_tables["t__deletes"]
    assert (fast.rows, fast.rejected, fast.deleted_rows, fast.skipped) == (
        slow.rows,
        slow.rejected,
        slow.deleted_rows,
        slow.skipped,
    )
    assert fast.skipped["superseded_in_batch"] > 0
    assert fast.columns == slow.columns


@pytest.mark.parametrize(
    ("col", "text", "reason"),
    [
        (4, "0000-00-00 00:00:00", "column at (datetime(6)): value '0000-00-00 00:00:00'"),
        (6, "2024-02-30", "column day (date): value '2024-02-30'"),
        # (MySQL never logs more digits than the scale; the conversion rounds such a
        # text as before: Arrow refuses it, so the text path decides, unchanged)
        (3, "1.234", None),
        (2, "4294967296", "column n (int unsigned): value '4294967296'"),
    ],
)
def test_texts_arrow_cannot_parse_exactly_stay_text_and_are_rejected(
    tmp_path: Path, col: int, text: str, reason: str | None
) -> None:
    batch = _batch(7, bad={col: text})
    columns = _typed(batch, _columns(_PLAN))
    assert [c.name for c in columns if c.how != NATIVE] == [_PLAN.columns[col]]
    assert columns[col].how == CAST and str(batch.arrays[col].type) == "string"
    staged, tables = _stage(tmp_path, _batch(7, bad={col: text}), general=False, soft=False)
    _, general = _stage(tmp_path, _batch(7, bad={col: text}), general=True, soft=False)
    assert tables == general
    if reason is None:
        assert staged.rejected == 0
        return
    assert staged.rejected == 1
    (reject,) = tables["t__rejects"]
    assert reason in reject[3] and text in reject[2]
