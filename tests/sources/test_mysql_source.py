"""``type: mysql`` against the real MariaDB service: zero dates, unsigned BIGINT,
``tinyint(1)``, ``bit``, ``year``, exact decimals, NULLs, query/columns, incremental with
a cursor, an empty and a missing table, and secrets kept out of errors."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import lockgate
from tests.run.helpers import make_project

pytestmark = pytest.mark.mysql

pymysql = pytest.importorskip("pymysql")


@pytest.fixture
def my(mysql_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("LG_TEST_MYSQL_URL", mysql_url)
    db = mysql_url.rsplit("/", 1)[1]
    conn = pymysql.connect(host="127.0.0.1", user="root", database=db, autocommit=True)
    conn.query("SET SESSION sql_mode = ''")  # allow zero dates, as legacy servers do
    with conn.cursor() as cur:
        yield cur
    conn.close()


def _project(root: Path, source: dict[str, Any], **dataset: Any) -> Path:
    config = {"connections": {"db": {"type": "mysql", "url": "${LG_TEST_MYSQL_URL}"}}}
    ds = {"name": "items", "source": {"type": "mysql", "connection": "db", **source}}
    return make_project(root, [{**ds, **dataset}], config=config)


def test_type_families_and_unrepresentable_values(tmp_path: Path, my: Any) -> None:
    my.execute(
        "CREATE TABLE t (id int PRIMARY KEY, ub bigint unsigned, flag tinyint(1), b1 bit(1),"
        " b8 bit(8), y year, n decimal(12,2), d date, dt datetime(6), ts timestamp NULL,"
        " tm time, s varchar(10), e enum('a','b'), bl varbinary(4), f double)"
    )
    my.execute(
        "INSERT INTO t VALUES"
        " (1, 18446744073709551615, 1, b'1', b'11111111', 2155, 9999999999.99, '2024-02-29',"
        "  '2024-01-01 12:00:00.123456', '2024-06-01 10:00:00', '23:59:59', 'héllo', 'b',"
        "  x'00ff', 1.5),"
        " (2, 0, 7, b'0', b'0', 0, -0.01, '1000-01-01', '1970-01-01 00:00:00', NULL,"
        "  '00:00:00', '', 'a', x'', -1e308),"
        " (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),"
        " (4, 1, 0, b'0', b'0', 2000, 1, '0000-00-00', '2024-01-01', NULL, '00:00:00', 'z',"
        "  'a', x'01', 0),"
        " (5, 1, 0, b'0', b'0', 2000, 1, '2024-01-01', '2024-01-01', NULL, '838:59:59', 'z',"
        "  'a', x'01', 0)"
    )
    root = _project(tmp_path / "p", {"table": "t"})
    result = lockgate.run(root)
    step = result.steps[0]
    assert step.rows_in == 5 == step.rows_out + step.rows_quarantined
    t = lockgate.read(root, "items").sort_by("id")
    s = t.schema
    # Delta has no unsigned types: the store keeps UBIGINT exactly as decimal(20, 0)
    assert s.field("ub").type == pa.decimal128(20, 0) and s.field("flag").type == pa.int8()
    assert s.field("b1").type == pa.bool_() and s.field("n").type == pa.decimal128(12, 2)
    assert s.field("ts").type.tz is not None and s.field("dt").type.tz is None
    rows = t.to_pylist()
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert rows[0]["ub"] == 2**64 - 1 and rows[1]["flag"] == 7  # not coerced to a boolean
    assert rows[0]["b1"] is True and rows[0]["b8"] == 255 and rows[0]["y"] == 2155
    assert rows[0]["n"] == Decimal("9999999999.99") and rows[1]["n"] == Decimal("-0.01")
    assert rows[0]["bl"] == b"\x00\xff" and rows[0]["s"] == "héllo"
    assert rows[0]["dt"].microsecond == 123456
    assert rows[0]["ts"].isoformat().startswith("2024-06-01T10:00:00")
    assert all(v is None for k, v in rows[2].items() if k != "id")
    q = lockgate.read(root, "items", quarantine=True).to_pylist()
    reasons = sorted(r["_lg_reason"] for r in q)
    assert any("column d (date): value '0000-00-00'" in r for r in reasons)
    assert any("column tm (time): value '838:59:59'" in r for r in reasons)


def test_incremental_query_columns_empty(tmp_path: Path, my: Any) -> None:
    my.execute("CREATE TABLE ev (id int, v bigint unsigned, note text)")
    root = _project(
        tmp_path / "p", {"table": "ev", "columns": ["id", "v"]}, incremental={"cursor": "id"}
    )
    first = lockgate.run(root)
    assert first.ok and first.steps[0].rows_out == 0  # empty table
    my.execute("INSERT INTO ev VALUES (1, 10, 'a'), (2, 20, 'b')")
    assert lockgate.run(root).ok
    my.execute("INSERT INTO ev VALUES (3, 30, 'c')")
    third = lockgate.run(root)
    assert third.ok and third.steps[0].inputs["resume"] == {"cursor": "3"}
    t = lockgate.read(root, "items").sort_by("id")
    assert t.column_names == ["id", "v"] and t.column("id").to_pylist() == [1, 2, 3]
    root2 = _project(tmp_path / "q", {"query": "SELECT id, v * 2 AS w FROM ev WHERE id > 1"})
    assert lockgate.run(root2).ok
    assert sorted(lockgate.read(root2, "items").column("id").to_pylist()) == [2, 3]


def test_missing_table_and_bad_password_keep_secrets(
    tmp_path: Path, my: Any, mysql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path / "p", {"table": "nope"})
    result = lockgate.run(root)
    assert not result.ok and "not found" in str(result.steps[0].error)
    monkeypatch.setenv("LG_TEST_MYSQL_URL", mysql_url.replace("root@", "root:Hunter22x@"))
    result = lockgate.run(root)
    assert not result.ok and "Hunter22x" not in str(result.steps[0].error)


@pytest.mark.parametrize("typ", ["datetime(6)", "timestamp(6) NULL DEFAULT NULL", "date"])
def test_incremental_null_and_future_cursors_hide_no_rows(
    tmp_path: Path, my: Any, typ: str
) -> None:
    """A NULL-cursor row inserted after the first run used to be never read, and a row
    stamped 10 years ahead moved the resume point past every row written after it. NULL
    rows are read by every run (skipped as already_published once in the table); a future
    row waits for the clock, with a warning."""
    my.execute(f"CREATE TABLE ev (id int, at {typ})")
    my.execute("INSERT INTO ev VALUES (1, UTC_TIMESTAMP() - INTERVAL 1 DAY), (2, NULL)")
    root = _project(tmp_path / "p", {"table": "ev"}, incremental={"cursor": "at"})

    def run() -> Any:
        step = lockgate.run(root).steps[0]
        assert step.error is None, step.error
        assert step.rows_in == step.rows_out + step.rows_quarantined + step.rows_skipped
        return step

    assert run().rows_out == 2
    my.execute("INSERT INTO ev VALUES (3, NULL), (4, UTC_TIMESTAMP() + INTERVAL 10 YEAR)")
    step = run()
    assert step.rows_out == 1 and step.skip_reasons.get("already_published", 0) >= 1
    assert any("1 row(s) with 'at' beyond the database clock" in w for w in step.warnings)
    my.execute("INSERT INTO ev VALUES (5, UTC_TIMESTAMP())")
    assert run().rows_out == 1
    ids = sorted(lockgate.read(root, "items").column("id").to_pylist())
    assert ids == [1, 2, 3, 5]


@pytest.mark.parametrize("connectorx", [True, False])
def test_a_connection_killed_mid_read_is_retried_and_published_once(
    tmp_path: Path, my: Any, connectorx: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KILL from another session after the first batch. With pymysql the server's
    'Connection was killed' hid behind the AttributeError the dead unbuffered cursor
    raised on close: an input error, not retried. Now retried; every row exactly once
    (connectorx has usually fetched the rest already: one attempt or two, same rows)."""
    import lockgate.sources._db as db
    import lockgate.sources.mysql as mysql

    if not connectorx:
        real_module = mysql.optional_module
        monkeypatch.setattr(
            mysql, "optional_module", lambda n: None if n == "connectorx" else real_module(n)
        )
    my.execute("SET SESSION max_recursive_iterations = 100000")
    my.execute("CREATE TABLE big (id int, v text)")
    my.execute(
        "INSERT INTO big WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s"
        " WHERE g < 20000) SELECT g, REPEAT(MD5(g), 40) FROM s"
    )
    my.execute("SELECT DATABASE()")
    (name,) = my.fetchone()
    real = mysql.load_stream
    killed: list[int] = []

    def dying(session: Any, table: str, reader: pa.RecordBatchReader) -> str:
        def batches() -> Any:
            for i, batch in enumerate(reader):
                if i == 0 and not killed:
                    my.execute(
                        "SELECT id FROM information_schema.processlist"
                        " WHERE db = %s AND id <> CONNECTION_ID()",
                        (name,),
                    )
                    ids = [r[0] for r in my.fetchall()]
                    for pid in ids:
                        my.execute(f"KILL {int(pid)}")
                    killed.append(len(ids))
                yield batch

        return real(session, table, pa.RecordBatchReader.from_batches(reader.schema, batches()))

    monkeypatch.setattr(mysql, "load_stream", dying)
    monkeypatch.setattr(db, "load_stream", dying)
    root = _project(tmp_path / "p", {"table": "big", "batch_rows": 1024})
    (root / "lockgate.yaml").write_text(
        (root / "lockgate.yaml").read_text()
        + "defaults:\n  retries: 1\n  retry_backoff_seconds: 0\n"
    )
    result = lockgate.run(root)
    step = result.steps[0]
    assert killed and killed[0] >= 1
    assert result.ok, step.error
    assert step.attempts == (step.attempts if connectorx else 2)
    assert step.rows_in == step.rows_out == 20000
    ids = lockgate.read(root, "items").column("id").to_pylist()
    assert len(ids) == 20000 and len(set(ids)) == 20000


@pytest.mark.parametrize("secret", ["p@ss:w/o?r#d%Zz9", "s3cr:et#x1", "ab c?d&e=f"])
def test_a_raw_password_with_url_delimiters_logs_in_and_is_never_shown(
    tmp_path: Path, my: Any, mysql_url: str, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user whose password holds @ : / ? # % and a space, typed raw in the URL. The
    URL was cut at its first '?' ("Port could not be cast to integer value as 's3cr:et'",
    a piece of the password in the error) and connectorx could not parse it at all. It
    logs in now (real password authentication), with or without partitions, and a failed
    read shows not even 3 characters of it."""
    import uuid

    user = "attackdb_" + uuid.uuid4().hex[:8]
    db = mysql_url.rsplit("/", 1)[1]
    my.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (secret,))
    try:
        my.execute(f"GRANT ALL ON `{db}`.* TO '{user}'@'%'")
        my.execute("CREATE TABLE t (id int)")
        my.execute("INSERT INTO t VALUES (1), (2)")
        monkeypatch.setenv("LG_TEST_MYSQL_URL", f"mysql://{user}:{secret}@127.0.0.1:3306/{db}")
        for n, source in enumerate(
            [{"table": "t"}, {"table": "t", "partition": {"column": "id", "partitions": 2}}]
        ):
            root = _project(tmp_path / f"p{n}", source)
            step = lockgate.run(root).steps[0]
            assert step.error is None and step.rows_out == 2, step.error
        root = _project(tmp_path / "gone", {"table": "nope"})
        failed = lockgate.run(root).steps[0]
        shown = f"{failed.error} {failed.hint} {failed.warnings}".replace("nope", "")
        assert failed.error and "not found" in failed.error
        for i in range(len(secret) - 2):
            assert secret[i : i + 3] not in shown, secret[i : i + 3]
    finally:
        my.execute(f"DROP USER IF EXISTS '{user}'@'%'")


def test_a_text_cursor_under_a_case_insensitive_collation_loses_no_row(
    tmp_path: Path, my: Any
) -> None:
    """utf8mb4_general_ci sorts 'a' = 'A' < 'aa' < 'B'; the resume point is the largest
    value read byte-wise ('a'). The fingerprint (max under the column's collation: 'B')
    did not move when 'aa' arrived, so the run was a no-op and 'aa' never read."""
    my.execute("CREATE TABLE ev (id int, k varchar(10) COLLATE utf8mb4_general_ci)")
    my.execute("INSERT INTO ev VALUES (1, 'a'), (2, 'B')")
    root = _project(tmp_path / "p", {"table": "ev"}, incremental={"cursor": "k"})
    assert lockgate.run(root).steps[0].rows_out == 2
    my.execute("INSERT INTO ev VALUES (3, 'aa')")
    step = lockgate.run(root).steps[0]
    assert step.error is None and step.rows_out == 1
    assert step.rows_in == step.rows_out + step.rows_quarantined + step.rows_skipped
    assert sorted(lockgate.read(root, "items").column("id").to_pylist()) == [1, 2, 3]
