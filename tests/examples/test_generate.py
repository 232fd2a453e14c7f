"""The shop generator: deterministic, chunked, and its defects exactly as documented."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pytest

ORDERS = 6_000
EMAIL_RE = r"^[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$"


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def generated(gen: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("shop") / "data"
    manifest = gen.generate(out, ORDERS, seed=7, chunk_rows=1_000)
    return out, manifest


def _raw_orders(out: Path) -> duckdb.DuckDBPyConnection:
    """Every orders line as text (the ragged line dropped), one table."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE o AS SELECT *, filename AS file FROM read_csv($p, header = true, "
        "all_varchar = true, ignore_errors = true, filename = true)",
        {"p": str(out / "orders" / "*.csv")},
    )
    return con


def _total(manifest: dict[str, Any], kind: str) -> int:
    return sum(b["defects"][kind] for b in manifest["batches"])


def test_same_seed_same_bytes_other_seed_other_bytes(gen: ModuleType, tmp_path: Path) -> None:
    a = gen.generate(tmp_path / "a", 1_500, seed=3, chunk_rows=400)
    b = gen.generate(tmp_path / "b", 1_500, seed=3, chunk_rows=400)
    assert a == b
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    gen.generate(tmp_path / "c", 1_500, seed=4, chunk_rows=400)
    da, dc = _digest(tmp_path / "a"), _digest(tmp_path / "c")
    assert da.keys() == dc.keys()
    assert all(da[k] != dc[k] for k in da)


def test_files_and_row_counts(generated: tuple[Path, dict]) -> None:
    out, manifest = generated
    assert sorted(p.name for p in (out / "orders").iterdir()) == [
        "orders_001.csv",
        "orders_002.csv",
        "orders_003.csv",
    ]
    assert sum(b["orders"] for b in manifest["batches"]) == ORDERS
    assert manifest["customers"]["customers"] == ORDERS // 20
    assert manifest["tickets"]["tickets"] == ORDERS // 10
    for b in manifest["batches"]:
        lines = (out / b["file"]).read_text().splitlines()
        assert len(lines) == 1 + b["data_rows"] + b["ragged_lines"]
    # order ids are contiguous across batches, each batch starting where the last ended
    firsts = [b["first_order_id"] for b in manifest["batches"]]
    lasts = [b["last_order_id"] for b in manifest["batches"]]
    assert firsts == [1, *(x + 1 for x in lasts[:-1])] and lasts[-1] == ORDERS
    assert json.loads((out / "_manifest.json").read_text()) == manifest
    # each export holds the changes up to its batch date: every updated_at of file k+1 is
    # later than every updated_at of file k (what an incremental cursor relies on)
    con = _raw_orders(out)
    bounds = con.execute(
        "SELECT min(CAST(updated_at AS TIMESTAMP)), max(CAST(updated_at AS TIMESTAMP)) "
        "FROM o GROUP BY file ORDER BY file"
    ).fetchall()
    assert len(bounds) == 3
    assert all(bounds[i][1] < bounds[i + 1][0] for i in range(2))


def test_chunked_writing_one_header_all_ids(
    gen: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, bool]] = []
    real = gen._write_csv

    def spy(sink: Any, table: Any, header: bool) -> None:
        calls.append((table.num_rows, header))
        real(sink, table, header)

    monkeypatch.setattr(gen, "_write_csv", spy)
    manifest = gen.generate(tmp_path, 2_400, seed=1, batches=2, chunk_rows=300)
    # customers (120 rows: 1 chunk) + 2 batches x 4 chunks of 300 orders
    assert len(calls) == 1 + 8
    assert max(n for n, _ in calls) < 300 * 1.05  # a chunk plus its few duplicate rows
    for b in manifest["batches"]:
        text = (tmp_path / b["file"]).read_text()
        assert text.count('"order_id"') == 1 and text.startswith('"order_id"')
    con = _raw_orders(tmp_path)
    ids = con.sql("SELECT DISTINCT CAST(order_id AS BIGINT) FROM o ORDER BY 1").fetchall()
    assert [i for (i,) in ids] == list(range(1, 2_401))


def test_order_defects_match_the_manifest(generated: tuple[Path, dict]) -> None:
    out, manifest = generated
    con = _raw_orders(out)
    customers = manifest["customers"]["customers"]

    def count(where: str) -> int:
        row = con.execute(f"SELECT count(*) FROM o WHERE {where}").fetchone()
        assert row is not None
        return int(row[0])

    assert count("customer_id IS NULL") == _total(manifest, "null_customer_id")
    assert count("amount IS NULL") == _total(manifest, "null_amount")
    assert count("amount IN ('N/A', '12,50')") == _total(manifest, "unparseable_amount")
    assert count("TRY_CAST(amount AS DOUBLE) < 0") == _total(manifest, "negative_amount")
    assert count("TRY_CAST(amount AS DOUBLE) > 100000") == _total(manifest, "huge_amount")
    assert count("status IS NULL OR status = 'unknown'") == _total(manifest, "bad_status")
    assert count(f"CAST(customer_id AS BIGINT) > {customers}") == _total(
        manifest, "orphan_customer"
    )
    assert count("CAST(shipped_at AS TIMESTAMP) < CAST(ordered_at AS TIMESTAMP)") == _total(
        manifest, "shipped_before_ordered"
    )
    late = "CAST(updated_at AS TIMESTAMP) > CAST(ordered_at AS TIMESTAMP) + INTERVAL 7 DAY"
    assert count(late) == _total(manifest, "late")
    # every late order was placed before its file's window, days before the batch date
    assert count(late + " AND CAST(ordered_at AS TIMESTAMP) < DATE '2024-01-01'") > 0
    assert count(
        "status IN ('SHIPPED', 'PLACED', 'PAID', 'DELIVERED', 'RETURNED', 'CANCELLED') "
        "OR status LIKE ' %'"
    ) == _total(manifest, "status_case")
    # duplicates: later versions (different updated_at) and verbatim repeats
    row = con.execute(
        "SELECT count(*) - count(DISTINCT order_id), "
        "count(*) - count(DISTINCT (order_id, updated_at)) FROM o"
    ).fetchone()
    assert row == (
        _total(manifest, "duplicate_update") + _total(manifest, "duplicate_exact"),
        _total(manifest, "duplicate_exact"),
    )
    # one ragged line, in the first file only
    ragged = [
        p.name
        for p in (out / "orders").iterdir()
        for line in p.read_text().splitlines()
        if line.count(",") > 7 and '"' not in line
    ]
    assert ragged == ["orders_001.csv"]


def test_defect_rates_are_the_documented_ones(
    gen: ModuleType, generated: tuple[Path, dict]
) -> None:
    _, manifest = generated
    for kind in ("late", "duplicate_update", "bad_status", "orphan_customer", "status_case"):
        expected = gen.ORDER_DEFECTS[kind] * ORDERS
        assert abs(_total(manifest, kind) - expected) <= 5 * expected**0.5 + 1, kind
    assert abs(manifest["customers"]["bad_email"] - 0.02 * ORDERS // 20) <= 15
    assert manifest["tickets"]["broken_lines"] == 1


def test_customer_and_ticket_defects(generated: tuple[Path, dict]) -> None:
    out, manifest = generated
    c = manifest["customers"]
    con = duckdb.connect()
    row = con.execute(
        "SELECT count(*), count(DISTINCT customer_id), "
        "count(*) FILTER (WHERE NOT regexp_matches(lower(trim(email)), $re)), "
        "count(*) FILTER (WHERE upper(trim(country)) NOT IN "
        "('DE','FR','NL','ES','IT','IE','US','GB') OR country IS NULL) "
        "FROM read_csv($p, header = true, all_varchar = true)",
        {"p": str(out / "customers.csv"), "re": EMAIL_RE},
    ).fetchone()
    assert row == (
        c["customers"] + c["duplicate_update"],
        c["customers"],
        c["bad_email"],
        c["bad_country"],
    )
    assert (
        sum(c[f"bad_email_{k}"] for k in ("missing_at", "double_at", "no_tld", "space"))
        == (c["bad_email"])
    )

    t = manifest["tickets"]
    lines = (out / "tickets.ndjson").read_text(encoding="utf-8").splitlines()
    parsed, broken = [], 0
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            broken += 1
    assert broken == 1 and len(parsed) == t["tickets"]
    assert sum(r["customer_id"] is None for r in parsed) == t["null_customer_id"]
    orphans = sum(
        r["customer_id"] is not None and r["customer_id"] > c["customers"] for r in parsed
    )
    assert orphans == t["orphan_customer"]
    assert sum(r["priority"] in ("asap", "whenever") for r in parsed) == t["bad_priority"]
    assert any('"' in r["subject"] for r in parsed)  # escaping round-trips


def test_increment_continues_ids_and_updates_existing_orders(
    gen: ModuleType, tmp_path: Path
) -> None:
    manifest = gen.generate(tmp_path, 3_000, seed=11, chunk_rows=500)
    entry = gen.increment(tmp_path, 4, 900)
    assert entry["first_order_id"] == manifest["batches"][-1]["last_order_id"] + 1
    assert entry["updates_of_previous_batch"] > 0
    con = _raw_orders(tmp_path)
    con.execute(
        "CREATE TABLE t AS SELECT CAST(order_id AS BIGINT) AS order_id, customer_id, amount, "
        "status, CAST(ordered_at AS TIMESTAMP) AS ordered_at, "
        "CAST(updated_at AS TIMESTAMP) AS updated_at, file LIKE '%orders_004.csv' AS new FROM o"
    )
    # the updates: orders of batch 3 seen again with a later updated_at and the same facts
    row = con.execute(
        """
        WITH upd AS (SELECT * FROM t WHERE new AND order_id < $first)
        SELECT count(*),
               count(*) FILTER (WHERE o.order_id BETWEEN $b3_first AND $b3_last),
               count(*) FILTER (WHERE u.updated_at > o.updated_at
                                AND u.customer_id = o.customer_id AND u.amount = o.amount
                                AND u.ordered_at = o.ordered_at AND u.status <> o.status)
        FROM upd u JOIN (SELECT * FROM t WHERE NOT new
                         QUALIFY row_number() OVER (PARTITION BY order_id
                                                    ORDER BY updated_at DESC) = 1) o
             USING (order_id)
        """,
        {
            "first": entry["first_order_id"],
            "b3_first": manifest["batches"][2]["first_order_id"],
            "b3_last": manifest["batches"][2]["last_order_id"],
        },
    ).fetchone()
    n = entry["updates_of_previous_batch"]
    assert row is not None and row[0] == n and row[1] == n
    # status progressed or stayed final; most updates change the status
    assert row[2] >= n * 0.5
    # every record of the new file is newer than every record before: an incremental cursor
    # on updated_at picks up exactly the new file
    row = con.execute(
        "SELECT min(updated_at) FILTER (WHERE new) > max(updated_at) FILTER (WHERE NOT new) FROM t"
    ).fetchone()
    assert row == (True,)
    # incrementing again with the same arguments rewrites the same file
    before = (tmp_path / "orders" / "orders_004.csv").read_bytes()
    gen.increment(tmp_path, 4, 900)
    assert (tmp_path / "orders" / "orders_004.csv").read_bytes() == before
    with pytest.raises(ValueError, match="next increment is 5"):
        gen.increment(tmp_path, 6, 100)


def test_cli_prints_a_summary(
    gen: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gen.main(["--orders", "300", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "customers.csv" in out and "orders/orders_001.csv" in out and "ragged lines 1" in out
    assert gen.main(["--batch", "4", "--out", str(tmp_path)]) == 0
    assert "orders_004.csv" in capsys.readouterr().out
    assert gen.main(["--batch", "9", "--out", str(tmp_path)]) == 2
