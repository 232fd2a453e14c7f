"""Differential tests: the fused engine vs a naive one-query-per-check oracle.

The oracle is written directly in SQL per check type, independently of the compiler: for
each check it returns the set of row ids that fail. The engine must report the same
counts (count mode and mark mode), and the quarantine split of the marked table must hold
exactly the failing rows, each with exactly the names of the checks it failed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from lockgate.quality import audit, gate
from lockgate.quality.checks import CheckSpec
from tests.hyp import examples

ADAPTER: TypeAdapter[Any] = TypeAdapter(CheckSpec)
NOW = datetime(2025, 1, 1, tzinfo=UTC)
BIG = 2**62

ints = st.one_of(st.none(), st.integers(-5, 5), st.sampled_from([-(2**63), 2**63 - 1, BIG]))
floats = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324, 2.5]),
)
strings = st.one_of(
    st.none(),
    st.sampled_from(["", "a", "ab", "abc", "A", "é", "日本", "12", "-7", "x y", "a@b.io"]),
    st.text(max_size=4),
)
stamps = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(2024, 12, 1),
        max_value=datetime(2025, 1, 2),
        timezones=st.sampled_from([UTC, None]),
    ).map(lambda d: d.replace(tzinfo=UTC) if d.tzinfo is None else d),
)
keys = st.one_of(st.none(), st.integers(0, 4))

rows = st.lists(st.tuples(ints, floats, strings, stamps, keys), min_size=0, max_size=25)

WHERES = [None, "k > 1", "i IS NOT NULL", "s <> ''"]


@st.composite
def one_check(draw: Any) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            [
                "not_null",
                "unique",
                "unique2",
                "accepted",
                "not_accepted",
                "between_f",
                "between_i",
                "regex",
                "length",
                "pair",
                "relationship",
                "expression",
                "lateness",
                "parsable",
            ]
        )
    )
    where = draw(st.sampled_from(WHERES))
    col = draw(st.sampled_from(["i", "f", "s", "ts", "k"]))
    c: dict[str, Any]
    if kind == "not_null":
        c = {"type": "not_null", "column": col}
    elif kind == "unique":
        c = {"type": "unique", "column": draw(st.sampled_from(["k", "s", "i"]))}
    elif kind == "unique2":
        c = {"type": "unique", "columns": ["k", "s"]}
    elif kind in ("accepted", "not_accepted"):
        vals = draw(st.lists(st.sampled_from(["", "a", "ab", "é", "日本", "12"]), min_size=1))
        c = {
            "type": "accepted_values" if kind == "accepted" else "not_accepted_values",
            "column": "s",
            "values": vals,
        }
    elif kind == "between_f":
        lo, hi = sorted(draw(st.lists(st.floats(-10, 10), min_size=2, max_size=2)))
        c = {
            "type": "between",
            "column": "f",
            "min": lo,
            "max": hi,
            "min_exclusive": draw(st.booleans()),
            "max_exclusive": draw(st.booleans()),
        }
    elif kind == "between_i":
        c = {
            "type": "between",
            "column": "i",
            "min": draw(st.integers(-3, 0)),
            "max": draw(st.integers(0, 3)),
        }
    elif kind == "regex":
        c = {
            "type": "regex_match",
            "column": "s",
            "pattern": draw(st.sampled_from(["a.*", "[a-z]+", r"\d+", ".", "é|日本"])),
        }
    elif kind == "length":
        c = {"type": "length_between", "column": "s", "min": 1, "max": draw(st.integers(1, 3))}
    elif kind == "pair":
        c = {
            "type": "column_pair",
            "column_a": "i",
            "op": draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="])),
            "column_b": "k",
        }
    elif kind == "relationship":
        c = {"type": "relationship", "column": "k", "to": "parent"}
    elif kind == "expression":
        c = {
            "type": "expression",
            "expr": draw(
                st.sampled_from(
                    ["i > k", "coalesce(f, 0) < 1 OR s = 'a'", "length(s) < 2 AND k IS NOT NULL"]
                )
            ),
        }
    elif kind == "lateness":
        c = {"type": "lateness", "column": "ts", "max_delay": draw(st.sampled_from(["1h", "2d"]))}
    else:
        c = {
            "type": "parsable_as",
            "column": "s",
            "as": draw(st.sampled_from(["INTEGER", "DOUBLE"])),
        }
    if where:
        c["where"] = where
    c["severity"] = draw(st.sampled_from(["error", "error", "warn"]))
    return c


@st.composite
def check_sets(draw: Any) -> list[dict[str, Any]]:
    out = draw(st.lists(one_check(), min_size=1, max_size=8))
    for n, c in enumerate(out):
        c["name"] = f"c{n}"
    return out


def _oracle(con: duckdb.DuckDBPyConnection, c: dict[str, Any]) -> set[int]:
    """Row ids failing ``c``: one plain query per check, written by hand."""
    t = c["type"]
    w = f"({c['where']}) AND " if c.get("where") else ""

    def q(pred: str, frm: str = "t") -> set[int]:
        return {r[0] for r in con.execute(f"SELECT rid FROM {frm} WHERE {w}({pred})").fetchall()}

    def lit(v: Any) -> str:
        return "'" + str(v).replace("'", "''") + "'" if isinstance(v, str) else repr(v)

    col = c.get("column")
    if t == "not_null":
        return q(f"{col} IS NULL")
    if t == "unique":
        cols = c.get("columns") or [col]
        nn = " AND ".join(f"{x} IS NOT NULL" for x in cols)
        keys = ", ".join(cols)
        return q(
            f"{nn} AND ({keys}) IN (SELECT {keys} FROM t WHERE {w}{nn} GROUP BY {keys} "
            f"HAVING count(*) > 1)"
        )
    if t == "accepted_values":
        return q(f"{col} IS NOT NULL AND {col} NOT IN ({', '.join(map(lit, c['values']))})")
    if t == "not_accepted_values":
        return q(f"{col} IN ({', '.join(map(lit, c['values']))})")
    if t == "between":
        lo = "<=" if c.get("min_exclusive") else "<"
        hi = ">=" if c.get("max_exclusive") else ">"
        return q(f"{col} IS NOT NULL AND ({col} {lo} {c['min']!r} OR {col} {hi} {c['max']!r})")
    if t == "regex_match":
        return q(f"{col} IS NOT NULL AND NOT regexp_full_match({col}, {lit(c['pattern'])})")
    if t == "length_between":
        return q(f"length({col}) < {c['min']} OR length({col}) > {c['max']}")
    if t == "column_pair":
        return q(f"i IS NOT NULL AND k IS NOT NULL AND NOT (i {c['op']} k)")
    if t == "relationship":
        return q("k IS NOT NULL AND k NOT IN (SELECT k FROM parent WHERE k IS NOT NULL)")
    if t == "expression":
        return q(f"({c['expr']}) = false")
    if t == "lateness":
        secs = {"1h": 3600, "2d": 172800}[c["max_delay"]]
        cutoff = (NOW - timedelta(seconds=secs)).isoformat()
        return q(f"ts IS NOT NULL AND ts < TIMESTAMPTZ '{cutoff}'")
    if t == "parsable_as":
        return q(f"{col} IS NOT NULL AND try_cast({col} AS {c['as']}) IS NULL")
    raise AssertionError(t)


def _load(con: duckdb.DuckDBPyConnection, data: list[tuple[Any, ...]], parent: list[int]) -> None:
    cols = list(zip(*data, strict=True)) if data else [[], [], [], [], []]
    tbl = pa.table(
        {
            "rid": pa.array(range(len(data)), pa.int64()),
            "i": pa.array(cols[0], pa.int64()),
            "f": pa.array(cols[1], pa.float64()),
            "s": pa.array(cols[2], pa.string()),
            "ts": pa.array(cols[3], pa.timestamp("us", tz="UTC")),
            "k": pa.array(cols[4], pa.int32()),
        }
    )
    con.register("src", tbl)
    con.execute("CREATE OR REPLACE TABLE t AS SELECT * FROM src")
    con.execute("CREATE OR REPLACE TABLE parent AS SELECT unnest(?::INTEGER[]) AS k", [parent])


@settings(max_examples=examples(50), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=rows,
    parent=st.lists(st.integers(0, 4), max_size=4),
    raw=check_sets(),
    policy=st.sampled_from(["quarantine", "block", "warn"]),
)
def test_fused_engine_matches_naive_oracle(
    data: list[tuple[Any, ...]], parent: list[int], raw: list[dict[str, Any]], policy: str
) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    _load(con, data, parent)
    checks = [ADAPTER.validate_python(c) for c in raw]
    expected = {c["name"]: _oracle(con, c) for c in raw}

    counted = audit(con, "t", checks, references={"parent": "parent"}, mark=False, now=NOW)
    marked = audit(
        con, "t", checks, references={"parent": "parent"}, mark=True, now=NOW, key_columns=["rid"]
    )
    for res in (counted, marked):
        assert res.total_rows == len(data)
        got = {r.name: r.failing_rows for r in res.results}
        assert got == {n: len(s) for n, s in expected.items()}
        for r in res.results:
            assert r.passed == (r.failing_rows == 0)
            if r.failing_rows:
                assert 1 <= len(r.samples) <= 5
                if res is marked:
                    assert all(s["rid"] in expected[r.name] for s in r.samples)

    # the quarantine split: exactly the failing rows, each with the right check names
    assert marked.marked_table is not None
    fq = marked.failing_rows_query(["rid"])
    got_rows = {rid: sorted(names) for rid, names in con.execute(fq.sql("duckdb")).fetchall()}
    want: dict[int, list[str]] = {}
    for name, ids in expected.items():
        for rid in ids:
            want.setdefault(rid, []).append(name)
    assert got_rows == {k: sorted(v) for k, v in want.items()}
    passing = {
        r[0] for r in con.execute(marked.passing_rows_query(["rid"]).sql("duckdb")).fetchall()
    }
    assert passing == set(range(len(data))) - set(want)

    # gate: the rows it holds back are exactly those failing an error-severity check
    decision = gate(marked, policy)
    errors = {c["name"] for c in raw if c["severity"] == "error"}
    err_failing = {n for n in errors if expected[n]}
    if policy == "warn":
        assert decision.action == "publish_all"
    elif policy == "block":
        assert decision.action == ("block" if err_failing else "publish_all")
    else:
        assert decision.action == ("publish_passing" if err_failing else "publish_all")
        if err_failing:
            fq = marked.failing_rows_query(["rid"], decision)
            held = {r[0] for r in con.execute(fq.sql("duckdb")).fetchall()}
            assert held == set().union(*(expected[n] for n in err_failing))
            pq = marked.passing_rows_query(["rid"], decision)
            kept = {r[0] for r in con.execute(pq.sql("duckdb")).fetchall()}
            assert kept == set(range(len(data))) - held


@pytest.mark.parametrize("n_checks", [70, pytest.param(130, marks=pytest.mark.slow)])
def test_many_checks_use_several_mask_columns(n_checks: int) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT range AS rid, range % 200 AS v FROM range(300)")
    raw = [
        {"type": "between", "column": "v", "min": 0, "max": 199 - i, "name": f"b{i}"}
        for i in range(n_checks)
    ]
    checks = [ADAPTER.validate_python(c) for c in raw]
    res = audit(con, "t", checks, mark=True, now=NOW)
    assert len(res.mask_columns) == (n_checks + 62) // 63
    for i, r in enumerate(res.results):
        # v > 199 - i fails: values 200-i..199, each present 1 or 2 times
        want = con.execute(f"SELECT count(*) FROM t WHERE v > {199 - i}").fetchone()[0]
        assert r.failing_rows == want
    rows = con.execute(res.failing_rows_query(["rid", "v"]).sql("duckdb")).fetchall()
    for _rid, v, names in rows:
        assert sorted(names) == sorted(f"b{i}" for i in range(n_checks) if v > 199 - i)
