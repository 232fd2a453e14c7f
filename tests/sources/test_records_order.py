"""The record-by-record JSON path keeps the records in line order: "the later copy of a key
wins" (REST ``primary_key``) reads the staged table's order. The line numbering joins the
emitted lines with the reader's rejects (an ASOF join), and that join emits its rows in any
order once DuckDB runs it on several threads — seen here at 400k lines."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import duckdb
import pytest

from lockgate.sources import _records
from lockgate.sources.base import create_rejects_table


@pytest.mark.slow
def test_records_are_staged_in_line_order_past_rejected_lines(tmp_path: Path) -> None:
    n = 400_000
    path = tmp_path / "spill.ndjson"
    with path.open("wb") as f:
        for i in range(1, n + 1):
            if i in (1_000, 150_000, 300_000):
                f.write(b'{"i": 0, "bad": "\xff\xfe"}\n')  # invalid UTF-8: a rejected line
            elif i == 7:
                f.write(b'"not an object"\n')
            else:
                f.write(b'{"i": %d}\n' % i)
    con = duckdb.connect()
    con.execute("SET threads = 4")
    con.execute("SET preserve_insertion_order = true")  # as the REST staging sets it
    rejects = create_rejects_table(con, "staged")
    _records.stage_json_lines(
        con,
        table="staged",
        rejects=rejects,
        files=[(path, "spill")],
        ndjson_only=True,
        declared={"i": "BIGINT"},
        max_line_size=1 << 20,
        where=lambda cols: (None, []),
    )
    staged = con.execute("SELECT i FROM staged ORDER BY rowid").fetchall()
    assert len(staged) == n - 4
    out_of_order = sum(1 for (a,), (b,) in pairwise(staged) if a >= b)
    assert out_of_order == 0
    assert con.execute(f"SELECT count(*) FROM {rejects}").fetchone() == (4,)
