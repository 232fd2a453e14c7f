from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from lockgate.errors import InputError
from lockgate.quality.profile import Profile, profile, profile_target


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    c.execute(
        """
        CREATE TABLE t AS SELECT * FROM (VALUES
            (1, 1.5::DOUBLE, 'héllo', TIMESTAMPTZ '2024-01-01 10:00:00+00', 'a@b.io', TRUE),
            (2, 'nan'::DOUBLE, '😀',   TIMESTAMPTZ '2024-01-02 10:00:00+02', 'c@d.io', FALSE),
            (3, -2.5::DOUBLE, '',      NULL,                               NULL,     TRUE),
            (4, NULL,          NULL,   TIMESTAMPTZ '2024-01-03 00:00:00+00', 'e@f.io', TRUE),
            (4, 10.0::DOUBLE,  'héllo', TIMESTAMPTZ '2024-01-01 10:00:00+00', 'x@y.io', NULL)
        ) v(id, x, s, ts, email, flag)
        """
    )
    return c


def test_exact_stats_on_a_small_table(con: duckdb.DuckDBPyConnection) -> None:
    p = profile(con, "t")
    assert p.rows == 5
    assert [c.name for c in p.columns] == ["id", "x", "s", "ts", "email", "flag"]

    idc = p.column("id")
    assert (idc.kind, idc.null_count, idc.min, idc.max) == ("numeric", 0, 1, 4)
    assert idc.mean == pytest.approx(2.8)
    assert idc.stddev == pytest.approx(math.sqrt(1.7))  # sample stddev
    assert idc.top_values[0] == (4, 2)
    assert sum(b.count for b in idc.histogram) == 5
    assert [(b.lo, b.hi, b.count) for b in idc.histogram] == [
        (1, 1, 1),
        (2, 2, 1),
        (3, 3, 1),
        (4, 4, 2),
    ]

    x = p.column("x")
    assert x.null_count == 1 and x.null_pct == pytest.approx(20.0)
    assert x.nan_count == 1
    # NaN excluded from min/max/mean/histogram
    assert (x.min, x.max) == (-2.5, 10.0)
    assert x.mean == pytest.approx(3.0)
    assert sum(b.count for b in x.histogram) == 3

    s = p.column("s")
    assert s.kind == "string" and s.null_count == 1 and s.empty_count == 1
    # lengths are in characters, not bytes
    assert (s.min_len, s.max_len) == (0, 5)
    assert s.mean_len == pytest.approx((5 + 1 + 0 + 5) / 4)
    assert s.top_values[0] == ("héllo", 2)
    assert s.distinct_approx == 3

    ts = p.column("ts")
    assert ts.kind == "temporal" and ts.null_count == 1
    assert ts.min == "2024-01-01 10:00:00+00"
    assert ts.max == "2024-01-03 00:00:00+00"
    assert ts.top_values[0] == ("2024-01-01 10:00:00+00", 2)
    assert sum(b.count for b in ts.histogram) == 4

    email = p.column("email")
    assert email.patterns["email"] == 4 and email.patterns["uuid"] == 0

    flag = p.column("flag")
    assert flag.kind == "boolean"
    assert dict(flag.top_values) == {True: 3, False: 1}
    assert p.passes == 2


def test_profile_is_json_serialisable_and_round_trips(con: duckdb.DuckDBPyConnection) -> None:
    p = profile(con, "t")
    text = json.dumps(p.to_dict())
    back = Profile.from_dict(json.loads(text))
    assert back.to_dict() == json.loads(text)
    assert back.column("id").histogram == p.column("id").histogram


def test_no_temp_table_is_left_behind(con: duckdb.DuckDBPyConnection) -> None:
    profile(con, "t")
    assert con.execute("SHOW TABLES").fetchall() == [("t",)]


def test_empty_table_and_awkward_column_names() -> None:
    c = duckdb.connect()
    c.execute('CREATE TABLE "we ird" ("a ""q"" col" INTEGER, "select" VARCHAR, l INTEGER[])')
    p = profile(c, "we ird")
    assert p.rows == 0 and p.passes == 1
    col = p.column('a "q" col')
    assert (col.null_count, col.null_pct, col.min, col.top_values) == (0, 0.0, None, ())
    c.execute("""INSERT INTO "we ird" VALUES (1, 'x', [1, 2]), (NULL, NULL, NULL)""")
    p = profile(c, "we ird")
    assert p.column("select").top_values == (("x", 1),)
    assert p.column("l").kind == "other" and p.column("l").null_count == 1


def test_quantiles_and_top_k() -> None:
    c = duckdb.connect()
    c.execute("CREATE TABLE n AS SELECT range AS v, range % 3 AS m FROM range(1001)")
    p = profile(c, "n", top_k=2, quantiles=(0.0, 0.5, 1.0))
    v = p.column("v")
    assert [q for q, _ in v.quantiles] == [0.0, 0.5, 1.0]
    assert v.quantiles[0][1] == 0 and v.quantiles[2][1] == 1000
    assert abs(float(v.quantiles[1][1]) - 500) <= 10  # approximate
    m = p.column("m")
    assert len(m.top_values) == 2 and m.top_values[0] == (0, 334)


def test_unknown_table_is_an_input_error() -> None:
    with pytest.raises(InputError, match="nope"):
        profile(duckdb.connect(), "nope")


def _write_inputs(tmp_path: Path) -> pa.Table:
    table = pa.table({"id": [1, 2, 3], "name": ["a", None, "c"], "amount": [1.5, 2.5, None]})
    return table


def test_profile_targets_csv_parquet_json_delta(tmp_path: Path) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    from deltalake import write_deltalake

    table = _write_inputs(tmp_path)
    pacsv.write_csv(table, tmp_path / "a.csv")
    pq.write_table(table, tmp_path / "p1.parquet")
    pq.write_table(table, tmp_path / "p2.parquet")
    (tmp_path / "a.ndjson").write_text(
        "\n".join(json.dumps(r) for r in table.to_pylist()) + "\n", encoding="utf-8"
    )
    write_deltalake(str(tmp_path / "delta"), table)

    for target, rows in [
        (tmp_path / "a.csv", 3),
        (tmp_path / "p*.parquet", 6),
        (tmp_path / "a.ndjson", 3),
        (tmp_path / "delta", 3),
    ]:
        p = profile_target(str(target))
        assert p.rows == rows, target
        assert p.target == str(target)
        assert p.column("name").null_count == rows // 3, target
        assert p.column("amount").max == 2.5, target
        assert p.column("id").kind == "numeric", target


def test_bad_targets(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no file matches"):
        profile_target(str(tmp_path / "missing*.csv"))
    (tmp_path / "x.xyz").write_text("1")
    with pytest.raises(InputError, match="extension"):
        profile_target(str(tmp_path / "x.xyz"))
    (tmp_path / "folder").mkdir()
    with pytest.raises(InputError, match="not a Delta table"):
        profile_target(str(tmp_path / "folder"))


def test_profile_of_a_csv_with_a_ragged_line(tmp_path: Path) -> None:
    # one ragged line made DuckDB's sniffer read the header as one column (a glob of such
    # files failed with "Schema mismatch between globbed files"); it is rejected and counted
    (tmp_path / "a.csv").write_text("id,name,amount\n1,a,1.5\n2,b,2.5\n3,c,3.5,oops\n")
    (tmp_path / "b.csv").write_text("id,name,amount\n4,d,4.5\n")
    p = profile_target(str(tmp_path / "*.csv"))
    assert [c.name for c in p.columns] == ["id", "name", "amount"]
    assert (p.rows, p.rejected, p.records) == (3, 1, 4)
    [r] = p.rejected_sample
    assert r["file"].endswith("a.csv") and r["line"] == 4
    assert "expected 3 columns, found 4" in r["reason"]
