"""File source: each format, globs, declared schemas, bad records → rejects, errors."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lockgate.errors import ConfigError, InputError
from lockgate.project.models import DatasetSpec
from lockgate.sources import REJECT_COLUMNS, StagedSource, registered_types
from tests.sources.helpers import fingerprint, source_for, stage_source


def spec(source: dict[str, Any], **extra: Any) -> DatasetSpec:
    return DatasetSpec.model_validate(
        {"name": "orders", "source": {"type": "file", **source}, **extra}
    )


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    yield c
    c.close()


def write(root: Path, name: str, content: str | bytes) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


def stage(
    con: duckdb.DuckDBPyConnection, root: Path, src: dict[str, Any], **kw: Any
) -> StagedSource:
    min_cursor = kw.pop("min_cursor", None)
    return stage_source(con, spec(src, **kw), root, "stg", min_cursor=min_cursor)


def rows(con: duckdb.DuckDBPyConnection, order: str = "1") -> list[tuple[Any, ...]]:
    return con.execute(f"SELECT * FROM stg ORDER BY {order}").fetchall()


def rejects(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return con.execute(
        "SELECT _lg_source_file, _lg_line, _lg_raw_record, _lg_reason FROM stg__rejects"
    ).fetchall()


def test_registry_has_file_with_capabilities(tmp_path: Path) -> None:
    assert {"file", "postgres"} <= set(registered_types())  # + toys registered by tests
    src = source_for(spec({"path": "x.csv"}), tmp_path)
    assert src.SUPPORTS_INCREMENTAL and src.SUPPORTS_REJECTS and src.SUPPORTS_FINGERPRINT


def test_csv_clean(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    write(tmp_path, "data/o.csv", "id,name,amount\n1,a,1.5\n2,b,2.5\n")
    staged = stage(con, tmp_path, {"path": "data/o.csv"})
    assert (staged.rows, staged.rejected, staged.files) == (2, 0, ["data/o.csv"])
    assert staged.columns == {"id": "BIGINT", "name": "VARCHAR", "amount": "DOUBLE"}
    assert rows(con) == [(1, "a", 1.5), (2, "b", 2.5)]
    cols = con.execute("DESCRIBE stg__rejects").fetchall()
    assert [(c[0], c[1]) for c in cols] == list(REJECT_COLUMNS)


def test_csv_options_mapped(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    write(tmp_path, "o.txt", "id;day\n1;03/02/2024\n2;NA\n")
    staged = stage(
        con,
        tmp_path,
        {
            "path": "o.txt",
            "options": {"delimiter": ";", "date_format": "%d/%m/%Y", "nullstr": "NA"},
            "columns": {"day": "DATE"},
        },
    )
    assert staged.rows == 2
    assert rows(con) == [(1, datetime(2024, 2, 3).date()), (2, None)]


def test_csv_glob_of_several_files_and_rejects_keep_file(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    write(tmp_path, "in/b.csv", "id,amount\n3,3.0\n4,oops\n")
    write(tmp_path, "in/a.csv", "id,amount\n1,1.0\n2,2.0\n")
    write(tmp_path, "in/c.txt", "ignored")
    staged = stage(con, tmp_path, {"path": "in/*.csv", "columns": {"amount": "DOUBLE"}})
    assert staged.files == ["in/a.csv", "in/b.csv"]
    assert (staged.rows, staged.rejected) == (3, 1)
    assert rows(con) == [(1, 1.0), (2, 2.0), (3, 3.0)]
    assert rejects(con) == [
        ("in/b.csv", 3, "4,oops", "line 3: column 'amount': cannot convert 'oops' to DOUBLE")
    ]


def test_csv_ragged_rows(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    write(tmp_path, "o.csv", "id,name,amount\n1,a,1.5\n2,b,2.5,extra,more\n3,c\n4,d,4.5\n")
    staged = stage(con, tmp_path, {"path": "o.csv"})
    assert (staged.rows, staged.rejected) == (2, 2)
    assert rows(con) == [(1, "a", 1.5), (4, "d", 4.5)]
    assert rejects(con) == [
        ("o.csv", 3, "2,b,2.5,extra,more", "line 3: expected 3 columns, found 5"),
        ("o.csv", 4, "3,c", "line 4: expected 3 columns, found 2"),
    ]


def test_csv_unparseable_declared_types(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    write(tmp_path, "o.csv", "id,day,amount\n1,2024-01-01,1.5\nx,2024-01-02,2\n3,not-a-date,3\n")
    staged = stage(
        con,
        tmp_path,
        {"path": "o.csv"},
        columns={"id": "BIGINT", "day": "DATE", "amount": "DECIMAL(12,2)"},
    )
    assert staged.columns == {"id": "BIGINT", "day": "DATE", "amount": "DECIMAL(12,2)"}
    assert staged.rows == 1
    reasons = [(r[1], r[3]) for r in rejects(con)]
    assert reasons[0] == (3, "line 3: column 'id': cannot convert 'x' to BIGINT")
    assert reasons[1][0] == 4 and reasons[1][1].startswith("line 4: column 'day'")


def test_csv_declared_column_missing_is_input_error(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    write(tmp_path, "o.csv", "id,name\n1,a\n")
    with pytest.raises(InputError, match=r"orders.*o.csv"):
        stage(con, tmp_path, {"path": "o.csv", "columns": {"idd": "BIGINT"}})


def test_csv_bad_encoding(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    write(tmp_path, "o.csv", b"id,name\n1,ok\n2,caf\xe9\n3,fine\n")
    staged = stage(con, tmp_path, {"path": "o.csv"})
    assert (staged.rows, staged.rejected) == (2, 1)
    assert rows(con) == [(1, "ok"), (3, "fine")]
    [(file, line, _raw, reason)] = rejects(con)
    assert (file, line) == ("o.csv", 3)
    assert reason.startswith("line 3: invalid byte sequence") and "options.encoding" in reason


def test_csv_latin1_with_encoding_option(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    write(tmp_path, "o.csv", b"id,name\n1,caf\xe9\n")
    staged = stage(con, tmp_path, {"path": "o.csv", "options": {"encoding": "latin-1"}})
    assert (staged.rows, staged.rejected) == (1, 0)
    assert rows(con) == [(1, "café")]


def test_csv_empty_file(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    write(tmp_path, "o.csv", b"")
    staged = stage(con, tmp_path, {"path": "o.csv"}, columns={"id": "BIGINT"})
    assert (staged.rows, staged.rejected) == (0, 1)
    assert staged.columns == {"id": "BIGINT"}
    assert rejects(con) == [("o.csv", None, None, "empty file")]


def test_csv_empty_file_among_others(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    write(tmp_path, "a.csv", b"")
    write(tmp_path, "b.csv", "id\n1\n")
    staged = stage(con, tmp_path, {"path": "*.csv"})
    assert (staged.rows, staged.rejected, staged.files) == (1, 1, ["a.csv", "b.csv"])
    assert rejects(con) == [("a.csv", None, None, "empty file")]


def test_csv_header_only_is_empty_batch_without_rejects(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    write(tmp_path, "o.csv", "id,name\n")
    staged = stage(con, tmp_path, {"path": "o.csv"})
    assert (staged.rows, staged.rejected) == (0, 0)
    assert list(staged.columns) == ["id", "name"]


def test_ndjson_broken_lines(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    write(
        tmp_path,
        "e.ndjson",
        b'{"id": 1, "v": "a"}\n'
        b'{"id": 2, "v": "b"\n'  # line 2: truncated
        b"\n"  # blank: ignored
        b'{"id": 4, "v": "\xff"}\n'  # line 4: invalid UTF-8
        b"[1, 2]\n"  # line 5: not an object
        b'{"id": 6, "v": "f"}\n',
    )
    staged = stage(con, tmp_path, {"path": "e.ndjson"})
    assert (staged.rows, staged.rejected) == (2, 3)
    assert rows(con) == [(1, "a"), (6, "f")]
    got = rejects(con)
    assert [(r[0], r[1], r[3]) for r in got] == [
        ("e.ndjson", 2, "line 2: malformed JSON"),
        ("e.ndjson", 4, "line 4: invalid UTF-8 byte sequence (JSON files must be UTF-8)"),
        ("e.ndjson", 5, "line 5: not a JSON object (found array)"),
    ]
    assert got[0][2] == '{"id": 2, "v": "b"'


def test_ndjson_line_numbers_after_many_rejects(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    lines = []
    for i in range(1, 201):
        if i % 7 == 0:
            lines.append(b'{"id": "bad\xff"}')
        elif i % 5 == 0:
            lines.append(b"{oops")
        elif i % 11 == 0:
            lines.append(b"")
        else:
            lines.append(json.dumps({"id": i, "kind": "ok" if i % 3 else "x"}).encode())
    write(tmp_path, "big.jsonl", b"\n".join(lines) + b"\n")
    staged = stage(con, tmp_path, {"path": "big.jsonl"}, columns={"id": "BIGINT", "kind": "BIGINT"})
    # every good line whose "kind" does not convert is rejected with its own line number
    bad_kind = {r[1]: r[3] for r in rejects(con) if "kind" in r[3]}
    assert bad_kind, "expected conversion rejects"
    for line, reason in bad_kind.items():
        record = json.loads(lines[line - 1])
        assert record["id"] == line
        assert reason == f"line {line}: column 'kind': cannot convert '{record['kind']}' to BIGINT"
    assert len(bad_kind) == sum(1 for i in range(1, 201) if i % 7 and i % 5 and i % 11)
    assert staged.rows + staged.rejected == sum(1 for line in lines if line)


def test_ndjson_declared_type_rejects(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    write(tmp_path, "o.ndjson", '{"id":1,"amt":"1.5"}\n{"id":"x","amt":2}\n{"id":3}\n')
    staged = stage(con, tmp_path, {"path": "o.ndjson"}, columns={"id": "BIGINT", "amt": "DOUBLE"})
    assert staged.columns == {"id": "BIGINT", "amt": "DOUBLE"}
    assert rows(con) == [(1, 1.5), (3, None)]
    assert rejects(con) == [
        (
            "o.ndjson",
            2,
            '{"id":"x","amt":2}',
            "line 2: column 'id': cannot convert 'x' to BIGINT",
        )
    ]


def test_json_array_file(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    write(tmp_path, "o.json", '[\n  {"id": 1, "name": "a"},\n  {"id": 2, "name": "b"}\n]\n')
    staged = stage(con, tmp_path, {"path": "o.json"})
    assert (staged.rows, staged.rejected) == (2, 0)
    assert rows(con) == [(1, "a"), (2, "b")]


def test_json_array_file_with_bad_element(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    write(tmp_path, "o.json", '[{"id": 1}, {"id": "zz"}, 7]')
    staged = stage(con, tmp_path, {"path": "o.json"}, columns={"id": "BIGINT"})
    assert (staged.rows, staged.rejected) == (1, 2)
    assert [(r[1], r[3]) for r in rejects(con)] == [
        (3, "record 3: not a JSON object"),
        (2, "record 2: column 'id': cannot convert 'zz' to BIGINT"),
    ]


def test_json_file_entirely_unparseable(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    write(tmp_path, "a.json", '[{"id": 1},\n {"id": 2}\n')  # never closed
    write(tmp_path, "b.json", '[{"id": 3}]')
    staged = stage(con, tmp_path, {"path": "*.json"})
    assert (staged.rows, staged.rejected) == (1, 2)
    got = rejects(con)
    assert [(r[0], r[1], r[2]) for r in got] == [
        ("a.json", 1, '[{"id": 1},'),
        ("a.json", 2, ' {"id": 2}'),
    ]
    assert all(r[3].startswith("file is not valid JSON (") for r in got)


def test_parquet(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": [1, 2], "code": ["10", "x"]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"id": [3], "code": ["30"]}), tmp_path / "b.parquet")
    staged = stage(con, tmp_path, {"path": "*.parquet"})
    assert (staged.rows, staged.rejected) == (3, 0)
    staged = stage(con, tmp_path, {"path": "*.parquet"}, columns={"code": "INTEGER"})
    assert staged.columns == {"code": "INTEGER", "id": "BIGINT"}
    assert (staged.rows, staged.rejected) == (2, 1)
    [(file, line, raw, reason)] = rejects(con)
    assert (file, line, reason) == (
        "a.parquet",
        2,
        "row 2: column 'code': cannot convert 'x' to INTEGER",
    )
    assert json.loads(raw) == {"id": 2, "code": "x"}


def test_incremental_filter_is_inclusive(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    write(
        tmp_path,
        "o.csv",
        "id,updated_at\n1,2024-01-01 00:00:00\n2,2024-01-02 00:00:00\n3,2024-01-03 00:00:00\n4,\n",
    )
    inc = {"incremental": {"cursor": "updated_at"}}
    staged = stage(con, tmp_path, {"path": "o.csv"}, min_cursor=datetime(2024, 1, 2), **inc)
    # >= keeps the row at the watermark; NULL cursors are kept, never silently dropped
    assert staged.rows == 3
    assert [r[0] for r in rows(con)] == [2, 3, 4]
    staged = stage(con, tmp_path, {"path": "o.csv"}, **inc)
    assert staged.rows == 4


def test_incremental_unknown_cursor(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    write(tmp_path, "o.ndjson", '{"id": 1, "updated_at": 5}\n')
    with pytest.raises(InputError, match=r"cursor column 'updated'") as err:
        stage(
            con,
            tmp_path,
            {"path": "o.ndjson"},
            min_cursor=1,
            incremental={"cursor": "updated"},
        )
    assert "updated_at" in str(err.value)


def test_incremental_ndjson_numeric(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    write(
        tmp_path, "o.ndjson", "".join(json.dumps({"id": i, "seq": i * 10}) + "\n" for i in range(5))
    )
    staged = stage(
        con, tmp_path, {"path": "o.ndjson"}, min_cursor=20, incremental={"cursor": "seq"}
    )
    assert [r[0] for r in rows(con)] == [2, 3, 4] and staged.rows == 3


def test_missing_file_and_empty_glob(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"dataset 'orders'.*'data/o.csv' does not exist"):
        stage(con, tmp_path, {"path": "data/o.csv"})
    with pytest.raises(InputError, match=r"glob 'data/\*.csv' matched no files") as err:
        stage(con, tmp_path, {"path": "data/*.csv"})
    assert "relative to the project folder" in str(err.value)


def test_directory_is_input_error(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    (tmp_path / "data.csv").mkdir()
    with pytest.raises(InputError, match=r"'data.csv' is a directory"):
        stage(con, tmp_path, {"path": "data.csv"})


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read anything")
def test_unreadable_file_is_input_error(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = write(tmp_path, "o.csv", "id\n1\n")
    path.chmod(0)
    try:
        with pytest.raises(InputError, match=r"orders.*permission denied"):
            stage(con, tmp_path, {"path": "o.csv"})
    finally:
        path.chmod(0o644)


def test_unknown_option_suggests(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    write(tmp_path, "o.csv", "id\n1\n")
    with pytest.raises(ConfigError) as err:
        stage(con, tmp_path, {"path": "o.csv", "options": {"delimeter": ";"}})
    text = str(err.value)
    assert "dataset 'orders'" in text and "'delimeter'" in text
    assert "did you mean 'delimiter'?" in text and "nullstr" in text


def test_option_of_other_format_rejected(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    write(tmp_path, "o.ndjson", '{"id": 1}\n')
    with pytest.raises(ConfigError, match=r"unknown ndjson source option 'delimiter'"):
        stage(con, tmp_path, {"path": "o.ndjson", "options": {"delimiter": ";"}})


def test_unknown_extension_needs_format(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    write(tmp_path, "o.dat", "id\n1\n")
    with pytest.raises(InputError, match=r"source.format"):
        stage(con, tmp_path, {"path": "o.dat"})
    staged = stage(con, tmp_path, {"path": "o.dat", "format": "csv"})
    assert staged.rows == 1


def test_fingerprint_is_stat_only_and_matches_staged(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = write(tmp_path, "d/o.csv", "id\n1\n")
    sp = spec({"path": "d/*.csv"})
    fp = fingerprint(sp, tmp_path)
    st = path.stat()
    assert fp == {
        "type": "file",
        "path": "d/*.csv",
        "files": [{"path": "d/o.csv", "size": st.st_size, "mtime_ns": st.st_mtime_ns}],
    }
    assert stage_source(con, sp, tmp_path, "stg").fingerprint == fp
    write(tmp_path, "d/o.csv", "id\n1\n2\n")
    assert fingerprint(sp, tmp_path) != fp


def test_no_temp_tables_left_and_connection_usable(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    write(tmp_path, "o.csv", "id,amount\n1,x\n")
    write(tmp_path, "o.ndjson", '{"id": 1}\nbad\n')
    stage(con, tmp_path, {"path": "o.csv"}, columns={"amount": "DOUBLE"})
    stage_source(con, spec({"path": "o.ndjson"}), tmp_path, "stg2")
    names = sorted(r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall())
    assert names == ["stg", "stg2", "stg2__rejects", "stg__rejects"]
    assert con.execute("SELECT count(*) FROM stg2__rejects").fetchall() == [(1,)]


def test_csv_ragged_row_with_windows_line_endings_keeps_a_clean_raw_record(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # DuckDB's csv_line of a CRLF file starts with the previous line's '\n'
    write(tmp_path, "a.csv", "id,txt\r\n1,a\r\n2,x,y\r\n3,z\r\n")
    staged = stage(con, tmp_path, {"path": "a.csv"})
    assert staged.rows == 2 and staged.rejected == 1
    assert con.execute("SELECT _lg_line, _lg_raw_record FROM stg__rejects").fetchall() == [
        (3, "2,x,y")
    ]
