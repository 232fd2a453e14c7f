from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest
import yaml

from lockgate.quality.profile import PATTERNS, profile
from lockgate.quality.suggest import suggest_checks, widen

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    c.execute(
        """
        CREATE TABLE orders AS SELECT
            i AS id,
            ['new', 'paid', 'shipped'][i % 3 + 1] AS status,
            'user' || i || '@example.com' AS email,
            lpad(i::VARCHAR, 8, '0') || '-1234-4abc-8def-123456789abc' AS ref,
            (i * 1.25)::DOUBLE AS amount,
            (i % 7) - 3 AS delta,
            TIMESTAMPTZ '2024-06-01 06:00:00+00' - INTERVAL (i) MINUTE AS updated_at,
            strftime(DATE '2024-01-01' + i::INT, '%Y-%m-%d') AS day,
            CASE WHEN i % 4 = 0 THEN NULL ELSE 'n' || (i % 50) END AS note,
            CASE WHEN i = 3 THEN 'nan'::DOUBLE ELSE 1.0 END AS with_nan,
            'é "q" #' AS odd
        FROM range(300) r(i)
        """
    )
    return c


def _checks(text: str) -> list[dict[str, Any]]:
    doc = yaml.safe_load(text)
    assert set(doc) == {"checks"}
    assert isinstance(doc["checks"], list)
    return doc["checks"]


def _by(checks: list[dict[str, Any]], type_: str, column: str | None = None) -> list[dict]:
    return [
        c for c in checks if c["type"] == type_ and (column is None or c.get("column") == column)
    ]


def test_suggestions_content(con: duckdb.DuckDBPyConnection) -> None:
    p = profile(con, "orders", top_k=20)
    text = suggest_checks(p, dataset="orders", con=con, table="orders", now=NOW)
    checks = _checks(text)
    assert _by(checks, "row_count") == [
        {"type": "row_count", "min": 150, "max": 450, "severity": "warn"}
    ]
    not_null = {c["column"] for c in _by(checks, "not_null")}
    assert "note" not in not_null and {"id", "status", "email", "updated_at"} <= not_null
    assert {c["column"] for c in _by(checks, "unique")} == {"id", "email", "ref", "day"}
    (acc,) = _by(checks, "accepted_values", "status")
    assert acc["values"] == ["new", "paid", "shipped"]
    assert not _by(checks, "accepted_values", "note")  # 50 distinct values > 20
    assert _by(checks, "accepted_values", "odd")[0]["values"] == ['é "q" #']
    assert _by(checks, "regex_match", "email")[0]["pattern"] == PATTERNS["email"]
    assert _by(checks, "regex_match", "ref")[0]["pattern"] == PATTERNS["uuid"]
    assert _by(checks, "regex_match", "day")[0]["pattern"] == PATTERNS["iso_date"]
    (between,) = _by(checks, "between", "amount")
    assert between["min"] == 0 and 373.75 <= between["max"] <= 420
    (between,) = _by(checks, "between", "delta")
    assert between["min"] < -3 and between["max"] > 3
    assert not _by(checks, "between", "with_nan")  # NaN would fail a range check
    (fresh,) = _by(checks, "freshness", "updated_at")
    assert fresh == {
        "type": "freshness",
        "column": "updated_at",
        "max_age": "12h",
        "severity": "warn",
    }
    # every suggestion is explained by a comment line just above it
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("  - type:"):
            assert lines[i - 1].startswith("  # "), line


def _naive_failures(con: duckdb.DuckDBPyConnection, table: str, c: dict[str, Any]) -> int:
    """A one-query-per-check oracle for the suggested check types (NULLs ignored)."""
    t = f'"{table}"'
    col = f'"{c["column"]}"' if "column" in c else None
    q = {
        "not_null": f"SELECT count(*) FROM {t} WHERE {col} IS NULL",
        "unique": f"SELECT coalesce(sum(n), 0) FROM (SELECT count(*) n FROM {t} "
        f"WHERE {col} IS NOT NULL GROUP BY {col} HAVING count(*) > 1)",
        "accepted_values": f"SELECT count(*) FROM {t} WHERE {col} IS NOT NULL "
        f"AND NOT list_contains($v, {col})",
        "between": f"SELECT count(*) FROM {t} WHERE NOT ({col} BETWEEN $lo AND $hi)",
        "regex_match": f"SELECT count(*) FROM {t} WHERE NOT regexp_full_match({col}, $p)",
    }
    if c["type"] == "row_count":
        (n,) = con.execute(f"SELECT count(*) FROM {t}").fetchone()  # type: ignore[misc]
        return 0 if c["min"] <= n <= c["max"] else 1
    if c["type"] == "freshness":
        # epoch(): fetching TIMESTAMPTZ into Python would need pytz
        (mx,) = con.execute(f"SELECT epoch(max({col})) FROM {t}").fetchone()  # type: ignore[misc]
        hours = int(c["max_age"].rstrip("h"))
        newest = datetime.fromtimestamp(mx, UTC)
        return 0 if NOW - newest <= timedelta(hours=hours) else 1
    params = {
        "accepted_values": {"v": c.get("values")},
        "between": {"lo": c.get("min"), "hi": c.get("max")},
        "regex_match": {"p": c.get("pattern")},
    }.get(c["type"], {})
    (n,) = con.execute(q[c["type"]], params).fetchone()  # type: ignore[misc]
    return int(n)


def test_every_suggestion_passes_on_its_own_data(con: duckdb.DuckDBPyConnection) -> None:
    p = profile(con, "orders", top_k=20)
    checks = _checks(suggest_checks(p, con=con, table="orders", now=NOW))
    assert len(checks) > 15
    for c in checks:
        assert _naive_failures(con, "orders", c) == 0, c


def test_suggestions_are_valid_check_definitions(con: duckdb.DuckDBPyConnection) -> None:
    from pydantic import TypeAdapter

    from lockgate.quality.checks import CheckSpec

    p = profile(con, "orders", top_k=20)
    checks = _checks(suggest_checks(p, con=con, table="orders", now=NOW))
    adapter = TypeAdapter(CheckSpec)
    # every suggestion must be a check the vocabulary accepts: no type is skipped
    for c in checks:
        adapter.validate_python(c)


def test_unconfirmed_unique_says_so_and_empty_profile() -> None:
    c = duckdb.connect()
    c.execute("CREATE TABLE t AS SELECT range AS k FROM range(50)")
    text = suggest_checks(profile(c, "t"))
    assert "approximate: confirm it is a key" in text
    c.execute("CREATE TABLE e (k INTEGER)")
    assert _checks(suggest_checks(profile(c, "e"))) == []


@pytest.mark.parametrize(
    ("mn", "mx", "integer"),
    [
        (0, 0, True),
        (3, 97, True),
        (-5, 5, True),
        (0.001, 0.002, False),
        (1e12, 1e12 + 7, False),
        (-3.2, -1.1, False),
        (0.1, 0.3, False),
        (7.0, 7.0, False),
    ],
)
def test_widen_contains_the_observed_range(mn: float, mx: float, integer: bool) -> None:
    lo, hi = widen(mn, mx, integer=integer)
    assert lo <= mn and hi >= mx
    assert lo < hi
    if mn >= 0:
        assert lo >= 0
    if integer:
        assert isinstance(lo, int) and isinstance(hi, int)


def test_every_suggestion_passes_the_real_audit(con: duckdb.DuckDBPyConnection) -> None:
    from lockgate.quality import audit, parse_checks, validate_checks

    p = profile(con, "orders", top_k=20)
    raw = _checks(suggest_checks(p, con=con, table="orders", now=NOW))
    parsed, problems = parse_checks(raw, file="suggested.yaml")
    assert problems == []
    checks = [c for c in parsed if c is not None]
    assert len(checks) == len(raw)
    columns = {c.name: c.type for c in p.columns}
    assert validate_checks(checks, columns, file="suggested.yaml", lines=None) == []
    result = audit(con, "orders", checks, now=NOW)
    failed = [(r.name, r.failing_rows, r.message) for r in result.results if not r.passed]
    assert failed == []
    assert all(r.failing_rows == 0 for r in result.results)
