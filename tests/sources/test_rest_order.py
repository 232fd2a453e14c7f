"""A large REST spill keeps its record order when staged: the run's work database reads with
``preserve_insertion_order`` off, and DuckDB then lands a big NDJSON file's rows out of
order (parallel blocks) — which would let an earlier page's copy of a key win over the later
one (``primary_key``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lockgate.sources._rest_spill import fast_read
from lockgate.sources.rest import in_file_order

duckdb = pytest.importorskip("duckdb")

#: large enough that DuckDB splits the file in parallel blocks (seen out of order at 2M)
LINES = 2_000_000


@pytest.mark.slow
def test_large_spill_staged_in_file_order(tmp_path: Path) -> None:
    spill = tmp_path / "records.ndjson"
    with spill.open("w") as f:
        f.writelines(f'{{"id":{i},"v":"x{i}"}}\n' for i in range(LINES))
    con = duckdb.connect(str(tmp_path / "work.duckdb"))
    con.execute("SET preserve_insertion_order = false")  # as the run's work session
    con.execute("SET threads = 4")
    with in_file_order(con):
        assert fast_read(con, "t", spill, None)
    (out_of_order,) = con.execute("SELECT count(*) FILTER (WHERE id <> rowid) FROM t").fetchone()
    assert out_of_order == 0
    (setting,) = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()
    assert setting is False  # the session's own setting is back
    con.close()
