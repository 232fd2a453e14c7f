"""``type: postgres`` attacked with inputs its first tests did not try: NULL and future
cursor values in incremental reads, multi-dimensional arrays and NaN inside arrays, domain
types, awkward identifiers. Each asserts the invariant: records read = published +
quarantined + skipped (named), and no value coerced silently."""

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


@pytest.fixture(autouse=True)
def _env(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LG_TEST_PG_URL", pg_url)


def _project(root: Path, source: dict[str, Any], **dataset: Any) -> Path:
    config = {"connections": {"db": {"type": "postgres", "url": "${LG_TEST_PG_URL}"}}}
    ds = {"name": "items", "source": {"type": "postgres", "connection": "db", **source}}
    return make_project(root, [{**ds, **dataset}], config=config)


def _run(root: Path) -> Any:
    result = lockgate.run(root)
    step = result.steps[0]
    assert step.error is None, step.error
    assert step.rows_in == step.rows_out + step.rows_quarantined + step.rows_skipped
    return step


def _ids(root: Path) -> list[int]:
    return sorted(lockgate.read(root, "items").column("id").to_pylist())


def test_rows_with_a_null_cursor_inserted_after_the_first_run_are_read(
    tmp_path: Path, pg: Any
) -> None:
    """``cursor >= last`` never matches NULL: a NULL-cursor row inserted after the first
    run used to be lost for good (the fingerprint did not see it either)."""
    pg.execute(
        "CREATE TABLE ev (id int, at timestamptz);"
        "INSERT INTO ev VALUES (1, now() - interval '1 hour'), (2, NULL)"
    )
    root = _project(tmp_path / "p", {"table": "ev"}, incremental={"cursor": "at"})
    assert _run(root).rows_out == 2
    pg.execute("INSERT INTO ev VALUES (3, NULL)")
    step = _run(root)
    assert step.rows_out == 1 and step.skip_reasons.get("already_published", 0) >= 1
    assert _ids(root) == [1, 2, 3]
    assert str(_run(root).status) == "noop"  # unchanged again: one cheap query
    assert _ids(root) == [1, 2, 3]


def test_a_null_cursor_row_is_read_with_a_settle_window(tmp_path: Path, pg: Any) -> None:
    pg.execute(
        "CREATE TABLE ev (id int, at timestamp);"
        "INSERT INTO ev VALUES (1, now() - interval '1 hour')"
    )
    root = _project(tmp_path / "p", {"table": "ev", "settle": "1m"}, incremental={"cursor": "at"})
    assert _run(root).rows_out == 1
    pg.execute("INSERT INTO ev VALUES (2, NULL), (3, now() - interval '30 minutes')")
    assert _run(root).rows_out == 2
    assert _ids(root) == [1, 2, 3]


@pytest.mark.parametrize("future", ["now() + interval '10 years'", "'infinity'"])
def test_a_cursor_stamped_in_the_future_does_not_hide_later_rows(
    tmp_path: Path, pg: Any, future: str
) -> None:
    """A row stamped beyond the database clock (wrong clock, 'infinity') used to move the
    resume point past every row written after it: those were never read (or read as
    'late'), and 'infinity' was published again on every run. It is now left for the run
    after the clock reaches it, with a warning naming it."""
    pg.execute(
        "CREATE TABLE ev (id int, at timestamptz);"
        "INSERT INTO ev VALUES (1, now() - interval '1 hour')"
    )
    root = _project(tmp_path / "p", {"table": "ev"}, incremental={"cursor": "at"})
    assert _run(root).rows_out == 1
    pg.execute(f"INSERT INTO ev VALUES (2, {future}), (3, now())")
    step = _run(root)
    assert step.rows_out == 1 and _ids(root) == [1, 3]
    assert any("1 row(s) with 'at' beyond the database clock" in w for w in step.warnings)
    pg.execute("INSERT INTO ev VALUES (4, now())")
    step = _run(root)  # no fingerprint no-op: the future row does not hide row 4
    assert step.rows_out == 1 and step.rows_quarantined == 0
    assert _ids(root) == [1, 3, 4]
    pg.execute("UPDATE ev SET at = now() WHERE id = 2")  # as if the clock reached it
    assert _run(root).rows_out == 1
    assert _ids(root) == [1, 2, 3, 4]
    assert _run(root).rows_out == 0  # nothing twice


def test_a_date_cursor_of_today_is_read_and_tomorrow_waits(tmp_path: Path, pg: Any) -> None:
    """A ``date``/``timestamp`` cursor has no zone: up to 14 hours ahead of UTC is 'now'
    somewhere, further is the future."""
    pg.execute(
        "CREATE TABLE ev (id int, d date);"
        "INSERT INTO ev VALUES (1, current_date - 1), (2, current_date),"
        " (3, current_date + 30), (4, 'infinity')"
    )
    root = _project(tmp_path / "p", {"table": "ev"}, incremental={"cursor": "d"})
    step = _run(root)
    assert _ids(root) == [1, 2]
    assert any("2 row(s) with 'd' beyond" in w for w in step.warnings)


def test_array_elements_that_do_not_convert_are_quarantined_not_nulled(
    tmp_path: Path, pg: Any
) -> None:
    """A cast of an array turns an element it cannot convert into NULL: a 2-D array came
    out as [NULL, NULL], NaN in a numeric[] as NULL, 0.12345678901234 rounded to 10
    digits — silently. Those rows are quarantined now, naming the column."""
    pg.execute(
        "CREATE TABLE a (id int, m int[], n numeric[], d date[], ok numeric(6,2)[]);"
        "INSERT INTO a VALUES (1, '{1,NULL,3}', '{1.5,NULL,1.50000000000}', "
        "'{2024-01-01,NULL}', '{1.25,NULL}'),"
        "(2, '{{1,2},{3,4}}', NULL, NULL, NULL), (3, NULL, '{1.5,NaN}', NULL, NULL),"
        "(4, NULL, '{0.12345678901234}', NULL, NULL), (5, NULL, NULL, '{0044-03-15 BC}', NULL),"
        "(6, '{}', '{}', '{}', '{}')"
    )
    root = _project(tmp_path / "p", {"table": "a"})
    step = _run(root)
    assert (step.rows_in, step.rows_out, step.rows_quarantined) == (6, 2, 4)
    rows = {r["id"]: r for r in lockgate.read(root, "items").to_pylist()}
    assert rows[1]["m"] == [1, None, 3] and rows[1]["n"] == [Decimal("1.5"), None, Decimal("1.5")]
    assert rows[1]["ok"] == [Decimal("1.25"), None] and rows[6]["m"] == []
    reasons = sorted(
        r["_lg_reason"] for r in lockgate.read(root, "items", quarantine=True).to_pylist()
    )
    assert any("column m (integer[]): value '[[1,2],[3,4]]'" in r for r in reasons)
    assert any("column n (numeric[]): value '[1.5,\"NaN\"]'" in r for r in reasons)
    assert any("column n (numeric[]): value '[0.12345678901234]'" in r for r in reasons)
    assert any("column d (date[])" in r for r in reasons)


@pytest.mark.parametrize("adbc", [True, False])
def test_domain_types_read_as_their_base_type(
    tmp_path: Path, pg: Any, adbc: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A column of a domain type was published as text ('5', '12.34'); it is typed as the
    domain's base type, and its values are checked like the base type's."""
    if not adbc:
        import lockgate.sources._pg_read as pg_read

        real = pg_read.optional_module
        monkeypatch.setattr(
            pg_read, "optional_module", lambda n: None if n.startswith("adbc") else real(n)
        )
    pg.execute(
        "CREATE DOMAIN posint AS integer CHECK (VALUE > 0);"
        "CREATE DOMAIN amount AS numeric(10,2); CREATE DOMAIN stamp AS timestamptz;"
        "CREATE DOMAIN ints AS int[];"
        'CREATE TABLE "Odd Table" (id int, "my col" posint, "Amount" amount, "select" stamp,'
        " ii ints);"
        "INSERT INTO \"Odd Table\" VALUES (1, 5, 12.34, '2024-01-01 00:00+02', '{1,2}'),"
        " (2, NULL, 'NaN', NULL, NULL)"
    )
    root = _project(tmp_path / "p", {"table": "public.Odd Table"})
    step = _run(root)
    assert (step.rows_out, step.rows_quarantined) == (1, 1)
    t = lockgate.read(root, "items")
    s = t.schema
    assert s.field("my col").type == pa.int32() and s.field("Amount").type == pa.decimal128(10, 2)
    assert s.field("select").type.tz is not None and s.field("ii").type == pa.list_(pa.int32())
    row = t.to_pylist()[0]
    assert row["my col"] == 5 and row["Amount"] == Decimal("12.34") and row["ii"] == [1, 2]
    assert row["select"].isoformat().startswith("2023-12-31T22:00:00")
    (q,) = lockgate.read(root, "items", quarantine=True).to_pylist()
    assert "column Amount (numeric(10,2)): value 'NaN'" in q["_lg_reason"]


@pytest.mark.parametrize("adbc", [True, False])
def test_mixed_sign_intervals_and_money_are_exact(
    tmp_path: Path, pg: Any, adbc: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interval like '1 mon -1 days +25:00:00' (PostgreSQL's text) was quarantined as
    unrepresentable though the engine holds it exactly; money was published as its
    lc_monetary text ('-$92,233,720,368,547,758.08'): it is a decimal now."""
    if not adbc:
        import lockgate.sources._pg_read as pg_read

        real = pg_read.optional_module
        monkeypatch.setattr(
            pg_read, "optional_module", lambda n: None if n.startswith("adbc") else real(n)
        )
    pg.execute(
        "CREATE TABLE v (id int, iv interval, m money);"
        "INSERT INTO v VALUES (1, '1 mon -1 day 25:00:00', -92233720368547758.08),"
        "(2, '-178000000 years', 12.34), (3, '-1 days +01:00:00', NULL), (4, NULL, NULL)"
    )
    root = _project(tmp_path / "p", {"table": "v"})
    step = _run(root)
    assert (step.rows_out, step.rows_quarantined) == (4, 0)
    t = lockgate.read(root, "items").sort_by("id")
    assert t.schema.field("m").type == pa.decimal128(38, 10)
    assert t.column("iv").to_pylist() == [
        "1 month -1 day 25:00:00",
        "-178000000 years",
        "-1 day 01:00:00",
        None,
    ]
    assert t.column("m").to_pylist() == [
        Decimal("-92233720368547758.08"),
        Decimal("12.34"),
        None,
        None,
    ]


def _kill_readers(pg: Any) -> int:
    """The server ends every other backend of the database (as an admin or a failover
    would): the reading connection dies with libpq's own error."""
    rows = pg.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchall()
    return len(rows)


@pytest.mark.parametrize("adbc", [True, False])
@pytest.mark.parametrize("partitions", [None, 2])
def test_a_backend_terminated_mid_read_is_retried_once_and_published_once(
    tmp_path: Path, pg: Any, adbc: bool, partitions: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pg_terminate_backend from another session while the read streams: ADBC's stream
    raised a plain OSError('[libpq] … terminating connection …') and psycopg an
    AdminShutdown — neither was taken for a lost connection, so the step failed instead
    of being retried. Now: retried, every row published exactly once, counts hold."""
    import lockgate.sources._pg_read as pg_read

    if not adbc:
        real_module = pg_read.optional_module
        monkeypatch.setattr(
            pg_read, "optional_module", lambda n: None if n.startswith("adbc") else real_module(n)
        )
    pg.execute(
        "CREATE TABLE big (id int, v text);"
        "INSERT INTO big SELECT g, repeat(md5(g::text), 40) FROM generate_series(1, 25000) g"
    )
    real = pg_read.load_stream
    killed: list[int] = []

    def dying(session: Any, table: str, reader: pa.RecordBatchReader) -> str:
        def batches() -> Any:
            for i, batch in enumerate(reader):
                # after the first batch (ADBC's are up to 16 MB: the table is 32 MB), the
                # rest still in flight
                if i == 0 and not killed:
                    killed.append(_kill_readers(pg))
                yield batch

        wrapped = pa.RecordBatchReader.from_batches(reader.schema, batches())
        return real(session, table, wrapped)

    import lockgate.sources._db as db

    monkeypatch.setattr(pg_read, "load_stream", dying)
    monkeypatch.setattr(db, "load_stream", dying)  # the partitioned read imports it late
    source: dict[str, Any] = {"table": "big", "batch_rows": 1024}
    if partitions:
        source["partition"] = {"column": "id", "partitions": partitions}
    root = _project(tmp_path / "p", source)
    (root / "lockgate.yaml").write_text(
        (root / "lockgate.yaml").read_text()
        + "defaults:\n  retries: 1\n  retry_backoff_seconds: 0\n"
    )
    result = lockgate.run(root)
    step = result.steps[0]
    assert killed and killed[0] >= 1
    assert result.ok, step.error
    assert step.attempts == 2 and step.rows_in == step.rows_out == 25000
    ids = lockgate.read(root, "items").column("id").to_pylist()
    assert len(ids) == 25000 and len(set(ids)) == 25000


@pytest.mark.parametrize("secret", ["p@ss:w/o?r#d%Zz9", "hunter@22", "ab c?d&e=f"])
def test_a_raw_password_with_url_delimiters_reaches_libpq_whole_and_is_never_shown(
    tmp_path: Path, pg: Any, pg_url: str, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A password typed raw in the URL: libpq split at its first '@' and reported the
    rest as a host ("failed to resolve host '22@127.0.0.1'"), or refused the URL quoting
    it ("invalid percent-encoded token: \\"p@ss:w/o?r#d%Zz9\\"") — a secret in the step's
    error and the state store. The user information now ends at the last '@'."""
    from psycopg.conninfo import conninfo_to_dict

    from lockgate.project.loader import load_project
    from lockgate.sources import source_for

    host_db = pg_url.split("@", 1)[1]
    monkeypatch.setenv("LG_TEST_PG_URL", f"postgresql://postgres:{secret}@{host_db}")
    pg.execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
    root = _project(tmp_path / "p", {"table": "t"})
    assert _run(root).rows_out == 1  # the host and database were parsed right
    project = load_project(root)
    info = source_for(project.source_request(project.datasets["items"]))._conninfo()  # type: ignore[attr-defined]
    assert conninfo_to_dict(info)["password"] == secret
    (tmp_path / "p" / "datasets" / "main.yaml").write_text(
        (tmp_path / "p" / "datasets" / "main.yaml").read_text().replace("table: t", "table: nope")
    )
    failed = lockgate.run(root).steps[0]
    shown = f"{failed.error} {failed.hint} {failed.warnings}"
    assert "nope" in shown
    for i in range(len(secret) - 2):  # not even 3 characters of it
        assert secret[i : i + 3] not in shown.replace("nope", ""), secret[i : i + 3]
    for f in (root / ".lockgate").rglob("*"):
        if f.is_file():
            assert secret.encode() not in f.read_bytes(), f


def test_a_url_libpq_cannot_parse_is_a_config_error_that_quotes_none_of_it(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "p@ss:w/o?r#d%Zz9"
    host_db = pg_url.split("@", 1)[1]
    monkeypatch.setenv("LG_TEST_PG_URL", f"postgresql://postgres@{host_db}?password={secret}")
    root = _project(tmp_path / "p", {"table": "t"})
    step = lockgate.run(root).steps[0]
    shown = f"{step.error} {step.hint}"
    assert "URL of connection 'db' cannot be parsed" in shown and "percent-encode" in shown
    assert "Zz9" not in shown and "w/o" not in shown


def test_a_text_cursor_under_a_linguistic_collation_loses_no_row(tmp_path: Path, pg: Any) -> None:
    """'en-US' sorts a < B < b < C < c; the resume point and the watermark are the largest
    value read byte-wise ('b'). The fingerprint (max under the column's collation: 'C')
    did not change when 'c' arrived — below 'C', above 'b' — so the run was a no-op and
    'c' never read. Such a cursor is now read on every run; a row the byte order puts
    below the watermark is quarantined as late, named, not dropped."""
    pg.execute(
        'CREATE TABLE ev (id int, k text COLLATE "en-US-x-icu");'
        "INSERT INTO ev VALUES (1, 'a'), (2, 'B')"
    )
    root = _project(tmp_path / "p", {"table": "ev"}, incremental={"cursor": "k"})
    assert _run(root).rows_out == 2
    pg.execute("INSERT INTO ev VALUES (3, 'C'), (4, 'b')")
    step = _run(root)
    assert (step.rows_out, step.rows_quarantined) == (1, 1)  # 'C' < 'a' byte-wise: late
    pg.execute("INSERT INTO ev VALUES (5, 'c')")
    assert _run(root).rows_out == 1
    assert _ids(root) == [1, 2, 4, 5]
    (late,) = lockgate.read(root, "items", quarantine=True).to_pylist()
    assert late["id"] == 3


def test_the_fingerprint_still_answers_for_byte_ordered_cursors(tmp_path: Path, pg: Any) -> None:
    """The collation guard costs nothing where the order is byte-wise: a ``"C"`` text
    cursor and a timestamp cursor, of a table or of a query, keep their no-op fingerprint;
    a linguistic text cursor of a query has none."""
    from lockgate.project.loader import load_project
    from lockgate.sources import source_for

    pg.execute(
        'CREATE TABLE ev (id int, k text COLLATE "C", u text COLLATE "en-US-x-icu",'
        " ts timestamptz); INSERT INTO ev VALUES (1, 'a', 'a', now())"
    )
    cases = [
        ({"table": "ev"}, "k", True),
        ({"table": "ev"}, "ts", True),
        ({"table": "ev"}, "u", False),
        ({"query": "SELECT id, ts, u FROM ev"}, "ts", True),
        ({"query": "SELECT id, ts, u FROM ev"}, "u", False),
    ]
    for n, (source, cursor, answers) in enumerate(cases):
        root = _project(tmp_path / f"p{n}", source, incremental={"cursor": cursor})
        project = load_project(root)
        fp = source_for(project.source_request(project.datasets["items"])).fingerprint()
        assert (fp is not None) == answers, (source, cursor, fp)


def test_lockgate_check_on_a_table_with_unrepresentable_values_rejects_them(
    tmp_path: Path, pg: Any, pg_url: str
) -> None:
    """``lockgate check postgresql://…?table=`` crashed on a NaN numeric ("unexpected
    ConversionException"): the row is now rejected — counted, with its line, column and
    reason — and the other rows are checked. A BC date was read as the same year AD
    (the engine's CSV reader ignored ' BC'): it is exact now."""
    import duckdb

    from lockgate.quality.standalone import run_standalone

    pg.execute(
        "CREATE TABLE t (id int, n numeric(10,2), d date, ts timestamp);"
        "INSERT INTO t VALUES (1, 'NaN', '2024-01-01', NULL),"
        " (2, 1.5, '0044-03-15 BC', '0044-03-15 12:00:00 BC'), (3, 2.5, '2024-01-02', NULL),"
        " (NULL, NULL, NULL, NULL)"
    )
    checks = tmp_path / "checks.yaml"
    checks.write_text(
        "checks:\n  - type: not_null\n    column: id\n"
        "  - type: expression\n    name: bc_is_bc\n"
        '    expr: "d IS NULL OR year(d) > 0 OR (year(d) = -43 AND year(ts) = -43)"\n'
    )
    con = duckdb.connect()
    res = run_standalone(f"{pg_url}?table=public.t", checks, max_rejected=1, con=con)
    assert res.total_rows == 3 and res.rejected_count == 1 and res.records == 4
    assert {r.name: r.failing_rows for r in res.results} == {"id_not_null": 1, "bc_is_bc": 0}
    assert res.rejected is not None
    ((line, reason),) = [(r.line, r.reason) for r in res.rejected.sample]
    assert line == 1 and "column n (numeric(10,2))" in reason and "NaN" in reason
    strict = run_standalone(f"{pg_url}?table=public.t", checks)
    assert strict.all_rejected == 1 and strict.passed is False
