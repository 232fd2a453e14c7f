"""Property: for any glob of messy CSV files (columns reordered, renamed by case/spaces,
missing; quoted commas, quotes and line breaks; bad numbers) every record is either staged
unchanged with its declared type or rejected with its file and physical line."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockgate.errors import InputError
from lockgate.project.models import DatasetSpec
from tests.hyp import examples
from tests.sources.helpers import stage_source

COLUMNS = {"id": "BIGINT", "name": "VARCHAR", "amount": "DOUBLE"}

names = st.text(
    alphabet=st.sampled_from(list("abcXYZ é,;|\"'\n\t0123456789-.")), min_size=1, max_size=12
).filter(lambda s: s.strip() == s and s not in ("-", "."))
records = st.fixed_dictionaries(
    {
        "id": st.integers(min_value=-(2**62), max_value=2**62),
        "name": names,
        "amount": st.floats(allow_nan=False, allow_infinity=False, width=64),
        "bad": st.sampled_from([None, None, None, "id", "amount"]),
    }
)
files = st.lists(
    st.tuples(
        st.lists(records, min_size=0, max_size=6),
        st.permutations(list(COLUMNS)),
        st.booleans(),  # drop the amount column from this file
        st.sampled_from(["lower", "upper", "spaced"]),
        st.sampled_from(["\n", "\r\n"]),
    ),
    min_size=1,
    max_size=3,
)


def header(name: str, style: str) -> str:
    return {"lower": name, "upper": name.upper(), "spaced": f" {name} "}[style]


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files)
def test_csv_glob_records_are_staged_or_rejected_with_their_line(spec_files: list[Any]) -> None:
    expected_good: list[tuple[Any, ...]] = []
    expected_bad: list[tuple[str, int]] = []
    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "d").mkdir()
        for i, (recs, order, drop_amount, style, newline) in enumerate(spec_files):
            cols = [c for c in order if not (drop_amount and c == "amount")]
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator=newline, quoting=csv.QUOTE_MINIMAL)
            writer.writerow([header(c, style) for c in cols])
            line = 2
            name = f"d/f{i}.csv"
            for rec in recs:
                row = {
                    "id": "1x" if rec["bad"] == "id" else str(rec["id"]),
                    "name": rec["name"],
                    "amount": "n/a" if rec["bad"] == "amount" else repr(rec["amount"]),
                }
                writer.writerow([row[c] for c in cols])
                total += 1
                bad = rec["bad"] == "id" or (rec["bad"] == "amount" and not drop_amount)
                if bad:
                    expected_bad.append((name, line))
                else:
                    amount = None if drop_amount else rec["amount"]
                    expected_good.append((rec["id"], rec["name"], amount))
                line += 1 + rec["name"].count("\n")  # physical lines: LF-terminated
            (root / name).write_bytes(buf.getvalue().encode())
        spec = DatasetSpec.model_validate(
            {"name": "o", "source": {"type": "file", "path": "d/*.csv", "columns": COLUMNS}}
        )
        con = duckdb.connect()
        try:
            if all(f[2] for f in spec_files):  # no file has the declared amount column
                with pytest.raises(InputError, match="amount not found"):
                    stage_source(con, spec, root, "stg")
                return
            staged = stage_source(con, spec, root, "stg")
            good = con.execute("SELECT id, name, amount FROM stg").fetchall()
            bad = con.execute("SELECT _lg_source_file, _lg_line FROM stg__rejects").fetchall()
        finally:
            con.close()
    assert staged.rows + staged.rejected == total
    assert sorted(good, key=repr) == sorted(expected_good, key=repr)
    assert sorted(bad) == sorted(expected_bad)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**62), max_value=2**62)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
BROKEN = ['{"id": 1, broken', "[1, 2]", "5", '"text"', "nul", '{"id": 2, "id": 3}']
lines = st.lists(
    st.one_of(
        st.tuples(st.just("good"), st.integers(0, 10**6), json_values),
        st.tuples(st.just("bad"), st.sampled_from(BROKEN), st.none()),
        st.tuples(st.just("blank"), st.none(), st.none()),
    ),
    min_size=1,
    max_size=8,
)


def _normal(value: Any, typ: str) -> Any:
    if typ == "JSON" and value is not None:
        return json.loads(value)
    return value


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines)
def test_ndjson_records_are_staged_unchanged_or_rejected_with_their_line(
    spec_lines: list[tuple[str, Any, Any]],
) -> None:
    text, good, bad = [], [], []
    for n, (kind, a, b) in enumerate(spec_lines, start=1):
        if kind == "good":
            text.append(json.dumps({"id": a, "v": b}))
            good.append((a, b))
        elif kind == "bad":
            text.append(a)
            bad.append(n)
        else:
            text.append("")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "a.ndjson").write_text("\n".join(text) + "\n")
        spec = DatasetSpec.model_validate(
            {"name": "o", "source": {"type": "file", "path": "a.ndjson"}}
        )
        con = duckdb.connect()
        try:
            staged = stage_source(con, spec, root, "stg")
            types = {r[0]: r[1] for r in con.execute("DESCRIBE stg").fetchall()}
            got = con.execute("SELECT * FROM stg").fetchall() if "v" in types else []
            rejected = [r[0] for r in con.execute("SELECT _lg_line FROM stg__rejects").fetchall()]
        finally:
            con.close()
    assert staged.rows + staged.rejected == len(good) + len(bad)
    assert sorted(rejected) == bad
    if good:
        names = list(types)
        staged_values = [
            (r[names.index("id")], _normal(r[names.index("v")], types["v"])) for r in got
        ]
        assert sorted(staged_values, key=repr) == sorted(good, key=repr)


parquet_files = st.lists(
    st.tuples(
        st.lists(
            st.tuples(st.integers(-(2**62), 2**62), st.booleans(), st.text(max_size=5)),
            max_size=5,
        ),
        st.sampled_from(["int64", "int32", "string"]),  # how this file stores id
        st.booleans(),  # the file has the note column
        st.booleans(),  # note column before id
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parquet_files, st.booleans())
def test_parquet_rows_cast_per_row_or_rejected_with_their_row(
    spec_files: list[Any], declare: bool
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    good, bad, total = [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "d").mkdir()
        for i, (rows, id_type, has_note, note_first) in enumerate(spec_files):
            if id_type == "int32":
                rows = [(v % 2**31, ok, n) for v, ok, n in rows]
            ids: list[Any] = [v if ok or id_type != "string" else f"x{v}" for v, ok, _ in rows]
            if id_type == "string":
                ids = [str(v) for v in ids]
            arrow_type = {"int64": pa.int64(), "int32": pa.int32(), "string": pa.string()}
            cols = {"id": pa.array(ids, arrow_type[id_type])}
            if has_note:
                note = pa.array([n for _, _, n in rows], pa.string())
                cols = {"note": note, **cols} if note_first else {**cols, "note": note}
            pq.write_table(pa.table(cols), root / f"d/f{i}.parquet")
            for row, (v, ok, n) in enumerate(rows, start=1):
                total += 1
                if ok or id_type != "string":
                    good.append((v, n if has_note else None))
                else:
                    bad.append((f"d/f{i}.parquet", row))
        src: dict[str, Any] = {"type": "file", "path": "d/*.parquet"}
        if declare:
            src["columns"] = {"id": "BIGINT"}
        spec = DatasetSpec.model_validate({"name": "o", "source": src})
        con = duckdb.connect()
        try:
            staged = stage_source(con, spec, root, "stg")
            types = {r[0]: r[1] for r in con.execute("DESCRIBE stg").fetchall()}
            note = "note" if "note" in types else "NULL"
            got = con.execute(f"SELECT id, {note} FROM stg").fetchall()
            rejected = con.execute("SELECT _lg_source_file, _lg_line FROM stg__rejects").fetchall()
        finally:
            con.close()
    assert staged.rows + staged.rejected == total
    all_text = all(f[1] == "string" for f in spec_files) and not declare
    if all_text:  # every file says id is text: it stays text, nothing is rejected
        assert staged.rejected == 0 and types["id"] == "VARCHAR"
        return
    stored = {f[1] for f in spec_files}
    wide = declare or "int64" in stored or "string" in stored
    assert types["id"] == ("BIGINT" if wide else "INTEGER")
    assert sorted(rejected) == sorted(bad)
    assert sorted(got, key=repr) == sorted(good, key=repr)
