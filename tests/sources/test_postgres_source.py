"""``type: postgres`` against the real service: every type family with edge values and
NULLs, exact decimals, unrepresentable values quarantined with their reason, incremental
reads with a settle window, an empty table, a missing table, a lost connection, and
secrets that never show up in errors."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import lockgate
from tests.run.helpers import make_project

pytestmark = pytest.mark.postgres

psycopg = pytest.importorskip("psycopg")


@pytest.fixture
def pg(pg_url: str) -> Iterator[Any]:
    url = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn


def _project(root: Path, pg_url: str, source: dict[str, Any], **dataset: Any) -> Path:
    config = {"connections": {"db": {"type": "postgres", "url": "${LG_TEST_PG_URL}"}}}
    ds = {"name": "items", "source": {"type": "postgres", "connection": "db", **source}}
    return make_project(root, [{**ds, **dataset}], config=config)


@pytest.fixture(autouse=True)
def _env(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LG_TEST_PG_URL", pg_url)


TYPES_DDL = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE public.types (
  id integer PRIMARY KEY, i2 smallint, i8 bigint, f4 real, f8 double precision, b boolean,
  t text, vc varchar(5), ch char(3), n numeric(12,2), nbig numeric(40,0), nfree numeric,
  d date, ts timestamp, tstz timestamptz, tm time, iv interval, u uuid, j json, jb jsonb,
  ai integer[], at text[], e mood, by bytea
);
INSERT INTO public.types VALUES
 (1, 32767, 9223372036854775807, 1.5, 1e308, true, 'héllo ''q''', 'abcde', 'ab',
  9999999999.99, 1234567890123456789012345678901234567, 3.1415926535,
  '2024-02-29', '2024-01-01 12:34:56.123456', '2024-06-01 10:00:00+02', '23:59:59.999999',
  '1 year 2 mons 3 days 04:05:06', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}',
  '{"b": null}', '{1,NULL,3}', '{"x,y","z"}', 'happy', '\\x00ff'),
 (2, -32768, -9223372036854775808, 'NaN', '-Infinity', false, '', '', '', -0.01, 0, 0,
  '0001-01-01', '1970-01-01 00:00:00', '1970-01-01 00:00:00+00', '00:00:00', '0 seconds',
  '00000000-0000-0000-0000-000000000000', '[]', '[]', '{}', '{}', 'sad', ''),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
"""


def test_every_type_family_typed_from_the_catalog(tmp_path: Path, pg: Any, pg_url: str) -> None:
    pg.execute(TYPES_DDL)
    root = _project(tmp_path / "p", pg_url, {"table": "public.types"})
    result = lockgate.run(root)
    assert result.ok, result
    step = result.steps[0]
    assert step.rows_in == 3 and step.rows_out == 3
    t = lockgate.read(root, "items").sort_by("id")
    s = t.schema
    assert s.field("n").type == pa.decimal128(12, 2)
    assert s.field("i8").type == pa.int64() and s.field("b").type == pa.bool_()
    assert s.field("d").type == pa.date32()
    assert s.field("ts").type.tz is None and s.field("tstz").type.tz is not None
    rows = t.to_pylist()
    assert rows[0]["n"] == Decimal("9999999999.99") and rows[1]["n"] == Decimal("-0.01")
    assert rows[0]["nfree"] == Decimal("3.1415926535")
    assert rows[0]["i8"] == 2**63 - 1 and rows[1]["i8"] == -(2**63)
    assert rows[0]["t"] == "héllo 'q'" and rows[0]["ch"] == "ab "
    assert rows[0]["ai"] == [1, None, 3] and rows[0]["at"] == ["x,y", "z"]
    assert rows[0]["e"] == "happy" and rows[0]["by"] == b"\x00\xff"
    assert rows[0]["tstz"].isoformat().startswith("2024-06-01T08:00:00")
    assert str(rows[0]["u"]) == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert rows[1]["d"].isoformat() == "0001-01-01"
    assert all(v is None for k, v in rows[2].items() if k != "id")


def test_unrepresentable_values_are_quarantined_with_their_reason(
    tmp_path: Path, pg: Any, pg_url: str
) -> None:
    pg.execute(
        "CREATE TABLE m (id int, n numeric(10,2), big numeric, d date);"
        "INSERT INTO m VALUES (1, 1.25, 1, '2024-01-01'), (2, 'NaN', 2, '2024-01-02'),"
        "(3, 3, 123456789012345678901234567890.123456789, '2024-01-03'),"
        "(4, 4, 4, '0044-03-15 BC'), (5, NULL, NULL, NULL)"
    )
    root = _project(tmp_path / "p", pg_url, {"table": "m"})
    result = lockgate.run(root)
    step = result.steps[0]
    assert step.rows_in == 5 == step.rows_out + step.rows_quarantined
    assert sorted(lockgate.read(root, "items").column("id").to_pylist()) == [1, 5]
    q = lockgate.read(root, "items", quarantine=True).to_pylist()
    reasons = {r["_lg_reason"] for r in q}
    assert len(q) == 3
    assert any("column n (numeric(10,2)): value 'NaN'" in r for r in reasons)
    assert any("column big (numeric)" in r for r in reasons)
    assert any("column d (date): value '0044-03-15 BC'" in r for r in reasons)


def test_query_and_columns(tmp_path: Path, pg: Any, pg_url: str) -> None:
    pg.execute(
        "CREATE TABLE o (id int, amount numeric(8,3), note text);"
        "INSERT INTO o VALUES (1, 1.5, 'a'), (2, 2.25, 'b'), (3, 7, 'c')"
    )
    root = _project(tmp_path / "p", pg_url, {"query": "SELECT id, amount FROM o WHERE id > 1"})
    assert lockgate.run(root).ok
    t = lockgate.read(root, "items").sort_by("id")
    assert t.column_names == ["id", "amount"]
    assert t.schema.field("amount").type == pa.decimal128(8, 3)
    assert t.column("amount").to_pylist() == [Decimal("2.25"), Decimal("7")]
    root2 = _project(tmp_path / "q", pg_url, {"table": "public.o", "columns": ["note", "id"]})
    assert lockgate.run(root2).ok
    assert lockgate.read(root2, "items").column_names == ["note", "id"]


def test_incremental_reads_from_the_last_cursor_and_settles(
    tmp_path: Path, pg: Any, pg_url: str
) -> None:
    pg.execute(
        "CREATE TABLE ev (id int, at timestamptz);"
        "INSERT INTO ev SELECT g, now() - interval '1 hour' + g * interval '1 second'"
        " FROM generate_series(1, 5) g;"
        "INSERT INTO ev VALUES (100, now())"  # in flight: newer than now() - settle
    )
    root = _project(
        tmp_path / "p", pg_url, {"table": "ev", "settle": "10m"}, incremental={"cursor": "at"}
    )
    first = lockgate.run(root)
    assert first.ok and first.steps[0].rows_out == 5
    token = first.steps[0].inputs["resume"]
    assert isinstance(token, dict) and token["cursor"]
    # a row committed late with an OLDER cursor than the last one read, and the in-flight
    # row ages past the settle window
    pg.execute("INSERT INTO ev VALUES (6, now() - interval '1 hour' + interval '5 seconds')")
    pg.execute("UPDATE ev SET at = now() - interval '20 minutes' WHERE id = 100")
    second = lockgate.run(root)
    assert second.ok
    ids = sorted(lockgate.read(root, "items").column("id").to_pylist())
    assert ids == [1, 2, 3, 4, 5, 6, 100]  # nothing twice, nothing lost
    third = lockgate.run(root)
    assert third.ok
    assert sorted(lockgate.read(root, "items").column("id").to_pylist()) == ids


def test_empty_table(tmp_path: Path, pg: Any, pg_url: str) -> None:
    pg.execute("CREATE TABLE e (id int, n numeric(5,1))")
    root = _project(tmp_path / "p", pg_url, {"table": "e"})
    result = lockgate.run(root)
    assert result.ok and result.steps[0].rows_out == 0


def test_missing_table_is_a_clear_error_without_secrets(
    tmp_path: Path, pg: Any, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_url = pg_url.replace("postgres@", "postgres:Sup3rS3cret@")
    monkeypatch.setenv("LG_TEST_PG_URL", secret_url)
    root = _project(tmp_path / "p", pg_url, {"table": "public.nope"})
    result = lockgate.run(root)
    assert not result.ok
    text = str(result.steps[0].error)
    assert "nope" in text and "not found" in text
    assert "Sup3rS3cret" not in text


def test_lost_connection_is_transient_and_secret_free(
    tmp_path: Path, pg: Any, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lockgate.errors import LockgateError
    from lockgate.sources._pg_read import translate_error

    dead = pg_url.replace("postgres@127.0.0.1:5432", "postgres:Hunter22@127.0.0.1:1")
    monkeypatch.setenv("LG_TEST_PG_URL", dead)
    pg.execute("CREATE TABLE x (id int)")
    root = _project(tmp_path / "p", pg_url, {"table": "x"})
    result = lockgate.run(root)
    assert not result.ok
    assert "Hunter22" not in str(result.steps[0].error)
    err = translate_error(psycopg.OperationalError("server closed the connection"), "t")
    assert isinstance(err, LockgateError) and err.transient


def test_connection_lost_mid_read_is_retried_and_nothing_is_published_twice(
    tmp_path: Path, pg: Any, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first attempt's connection dies after one batch (the server ends the backend):
    the step is retried (transient), the second attempt reads everything once."""
    import lockgate.sources._pg_read as pg_read

    pg.execute("CREATE TABLE big (id int); INSERT INTO big SELECT generate_series(1, 5000)")
    real = pg_read.load_stream
    attempts: list[int] = []

    def dying(session: Any, table: str, reader: pa.RecordBatchReader) -> str:
        attempts.append(1)
        if len(attempts) > 1:
            return real(session, table, reader)

        def batches() -> Any:
            yield from iter([next(iter(reader))])
            pg.execute(  # the reading backend is killed by the server
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            raise psycopg.OperationalError("server closed the connection unexpectedly")

        return real(session, table, pa.RecordBatchReader.from_batches(reader.schema, batches()))

    monkeypatch.setattr(pg_read, "load_stream", dying)
    root = _project(
        tmp_path / "p",
        pg_url,
        {"table": "big"},
    )
    (root / "lockgate.yaml").write_text(
        (root / "lockgate.yaml").read_text()
        + "defaults:\n  retries: 1\n  retry_backoff_seconds: 0\n"
    )
    result = lockgate.run(root)
    assert result.ok, result
    assert len(attempts) == 2 and result.steps[0].attempts == 2
    ids = lockgate.read(root, "items").column("id").to_pylist()
    assert sorted(ids) == list(range(1, 5001))


def test_fallback_reader_without_adbc_types_the_same(
    tmp_path: Path, pg: Any, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without adbc-driver-postgresql the psycopg reader streams text; the catalog types
    and the rejects are the same."""
    import lockgate.sources._pg_read as pg_read

    real = pg_read.optional_module
    monkeypatch.setattr(
        pg_read, "optional_module", lambda n: None if n.startswith("adbc") else real(n)
    )
    pg.execute(TYPES_DDL)
    pg.execute("INSERT INTO types (id, n) VALUES (4, 'NaN')")
    root = _project(tmp_path / "p", pg_url, {"table": "public.types"})
    result = lockgate.run(root)
    step = result.steps[0]
    assert step.rows_in == 4 and step.rows_out == 3 and step.rows_quarantined == 1
    t = lockgate.read(root, "items").sort_by("id")
    assert t.schema.field("n").type == pa.decimal128(12, 2)
    rows = t.to_pylist()
    assert rows[0]["by"] == b"\x00\xff" and rows[0]["i8"] == 2**63 - 1
    assert rows[0]["ai"] == [1, None, 3] and rows[1]["b"] is False


def test_dropped_column_and_renamed_table_between_runs(
    tmp_path: Path, pg: Any, pg_url: str
) -> None:
    pg.execute("CREATE TABLE s (id int, a text, b text); INSERT INTO s VALUES (1, 'x', 'y')")
    root = _project(tmp_path / "p", pg_url, {"table": "s"}, schema_policy="freeze")
    assert lockgate.run(root).ok
    pg.execute("ALTER TABLE s DROP COLUMN b; INSERT INTO s VALUES (2, 'z')")
    drifted = lockgate.run(root)
    assert not drifted.ok  # the contract policy decides: freeze refuses the drift
    assert "removed column 'b'" in str(drifted.steps[0].error)
    assert lockgate.read(root, "items").column("id").to_pylist() == [1]
    pg.execute("ALTER TABLE s RENAME TO s_old")
    gone = lockgate.run(root)
    assert not gone.ok and "not found" in str(gone.steps[0].error)


def test_settle_needs_a_timestamp_cursor(tmp_path: Path, pg: Any, pg_url: str) -> None:
    pg.execute("CREATE TABLE n (id int)")
    root = _project(
        tmp_path / "p", pg_url, {"table": "n", "settle": "1m"}, incremental={"cursor": "id"}
    )
    result = lockgate.run(root)
    assert not result.ok
    assert "'settle:' needs a timestamp cursor; 'id' is integer" in str(result.steps[0].error)


def test_timestamps_stream_natively_and_overflowing_values_are_caught(
    tmp_path: Path, pg: Any, pg_url: str
) -> None:
    # ADBC shifts PostgreSQL's 2000-based microseconds to 1970: exact for BC values, but
    # it overflows for ±infinity and years near 294276 — those rows carry their text too
    pg.execute(
        "CREATE TABLE ts (id int, t timestamp, tz timestamptz); INSERT INTO ts VALUES "
        "(1, '2024-02-29 23:59:59.999999', '2024-06-01 10:00:00+02'),"
        "(2, '0044-03-15 12:00:00 BC', '4713-01-01 00:00:00+00 BC'),"
        "(3, '294276-12-31 23:59:59', '2024-01-01 00:00:00+00'),"
        "(4, NULL, '294276-12-31 23:59:59+00'), (5, NULL, NULL)"
    )
    root = _project(tmp_path / "p", pg_url, {"table": "ts"})
    result = lockgate.run(root)
    step = result.steps[0]
    assert result.ok, step.error
    assert step.rows_in == 5 and step.rows_out == 3 and step.rows_quarantined == 2
    import duckdb

    con = duckdb.connect()
    con.register("published", lockgate.read(root, "items"))
    got = con.sql("SELECT id, t::VARCHAR, tz::VARCHAR FROM published ORDER BY id").fetchall()
    assert got[0] == (1, "2024-02-29 23:59:59.999999", "2024-06-01 08:00:00+00")
    assert got[1][1] == "0044-03-15 (BC) 12:00:00" and got[1][2].startswith("4713-01-01 (BC)")
    assert got[2] == (5, None, None)
    q = lockgate.read(root, "items", quarantine=True).to_pylist()
    reasons = sorted(r["_lg_reason"] for r in q)
    assert "column t (timestamp without time zone): value '294276-12-31 23:59:59'" in reasons[0]
    assert "column tz (timestamp with time zone): value '294276-12-31 23:59:59+00'" in reasons[1]
