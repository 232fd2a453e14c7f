"""The engine seam: an adapter registered from outside the package is selected by
``engine:`` in lockgate.yaml, a run goes through it, and its capability flags are honoured."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlglot import exp

import lockgate
from lockgate.engine import Engine, EngineError, engine_for, register_engine, registered_engines
from lockgate.engine import base as engine_base
from lockgate.engine.base import Result
from lockgate.engine.session import DuckDBEngine
from lockgate.errors import UsageError
from lockgate.project.loader import validate_project
from tests.run.helpers import csv_source, make_project, sql

TOY = "toy_duck"


class ToyDuck(DuckDBEngine):
    """DuckDB under another name, without rowid marking, Parquet writing, progress or
    Python transforms; it records what it was asked to do."""

    SUPPORTS_ROWID = False
    SUPPORTS_PARQUET_WRITE = False
    SUPPORTS_PROGRESS = False
    SUPPORTS_PYTHON_TRANSFORMS = False
    statements: list[str] = []

    def execute(self, e: exp.Expr | str, params: Sequence[object] | None = None) -> Result:
        type(self).statements.append(e if isinstance(e, str) else self.sql(e))
        return super().execute(e, params)

    def write_parquet(
        self, e: exp.Expr, directory: Path, compression: str = "snappy"
    ) -> list[Path]:
        raise AssertionError("SUPPORTS_PARQUET_WRITE is off: storage must stream instead")


@pytest.fixture
def toy() -> Iterator[type[ToyDuck]]:
    register_engine(TOY)(ToyDuck)
    ToyDuck.statements = []
    yield ToyDuck
    engine_base._ENGINES.pop(TOY, None)


def _project(root: Path, engine: str) -> Path:
    return make_project(
        root,
        [
            csv_source(
                "raw",
                "data/raw.csv",
                columns={"id": "BIGINT", "amount": "DOUBLE"},
                checks=[{"type": "between", "column": "amount", "min": 0}],
            ),
            sql(
                "pos",
                "select id, amount * 2 as twice from raw",
                checks=[{"type": "unique", "column": "id"}],
            ),
        ],
        files={"data/raw.csv": "id,amount\n1,3\n2,-1\n3,9\nx,2\n"},
        config={"engine": engine},
    )


def test_a_run_goes_through_an_engine_registered_outside_the_package(
    tmp_path: Path, toy: type[ToyDuck]
) -> None:
    assert TOY in registered_engines()
    res = lockgate.run(_project(tmp_path / "toy", TOY))
    ref = lockgate.run(_project(tmp_path / "duck", "duckdb"))
    assert [(s.dataset, str(s.status)) for s in res.steps] == [
        ("raw", "success"),
        ("pos", "success"),
    ]
    # the same outcome as the built-in DuckDB engine, row for row
    assert [(s.rows_out, s.rows_quarantined) for s in res.steps] == [
        (s.rows_out, s.rows_quarantined) for s in ref.steps
    ]
    assert res.steps[0].rows_out == 2 and res.steps[0].rows_quarantined == 2
    assert lockgate.read(tmp_path / "toy", "pos").sort_by("id").to_pylist() == [
        {"id": 1, "twice": 6.0},
        {"id": 3, "twice": 18.0},
    ]
    ran = "\n".join(toy.statements)
    # SUPPORTS_ROWID off: the audit materialises a marked copy, never a sparse rowid marks table
    assert "__lg_marked" in ran and "__lg_marks" not in ran and '"rowid"' not in ran


def test_flags_are_read_from_the_adapter_not_its_kind(toy: type[ToyDuck]) -> None:
    with engine_for(TOY) as eng:
        assert isinstance(eng, Engine) and eng.name == TOY and eng.dialect == "duckdb"
        eng.execute("CREATE TABLE t AS SELECT 1 AS x")
        assert not eng.has_rowid("t")  # a DuckDB base table, but the flag says no
        assert eng.columns("t") == {"x": "INTEGER"} and eng.count("t") == 1
        with pytest.raises(EngineError, match="nope"):
            eng.execute("SELECT nope FROM t")
    with engine_for("duckdb") as duck:
        duck.execute("CREATE TABLE t AS SELECT 1 AS x")
        assert duck.has_rowid("t")


def test_python_transforms_are_refused_by_an_engine_without_them(
    tmp_path: Path, toy: type[ToyDuck]
) -> None:
    root = make_project(
        tmp_path / "p",
        [{"name": "py", "transform": {"python": "py"}, "columns": {"x": "BIGINT"}}],
        files={
            "datasets/py.py": """
                import pyarrow as pa
                from lockgate import transform

                @transform(name="py")
                def py():
                    return pa.table({"x": [1]})
            """
        },
        config={"engine": TOY},
    )
    problems = [p.message for p in validate_project(root)]
    assert any("does not run Python transforms" in m for m in problems), problems


def test_an_unknown_engine_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown engine 'duckbd'") as e:
        engine_for("duckbd")
    assert "did you mean 'duckdb'" in str(e.value)
    root = _project(tmp_path / "p", "duckbd")
    problems = [p.message for p in validate_project(root)]
    assert any("unknown engine 'duckbd'" in m and "did you mean 'duckdb'" in m for m in problems)


def test_cursors_let_threads_query_one_database(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with engine_for("duckdb", work_dir=tmp_path, run_id="r") as eng:
        eng.execute("CREATE TABLE t AS SELECT range AS x FROM range(1000)")

        def total(k: int) -> int:
            with eng.cursor() as cur:
                q = exp.select(exp.Sum(this=exp.column("x"))).from_("t").where(f"x % 4 = {k}")
                row = cur.execute(q).fetchone()
                return int(row[0]) if row else 0

        with ThreadPoolExecutor(max_workers=4) as pool:
            parts = list(pool.map(total, range(4)))
        assert sum(parts) == sum(range(1000))
        assert eng.count("t") == 1000  # closing the cursors left the engine open
    assert not list(tmp_path.glob("r.duckdb*"))  # closing the engine removed its database
