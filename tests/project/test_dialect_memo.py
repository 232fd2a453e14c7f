"""The engine's answers about a project (SQL syntax, types, regexes, bound schemas) are
remembered in ``.lockgate/cache/dialect.json``: a second load gives the same problems and the
same schemas without asking DuckDB; any change asks again; a damaged or unwritable cache
changes nothing but speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lockgate.engine.memo import DialectMemo
from lockgate.engine.session import DuckDBEngine
from lockgate.project import load_project, validate_project
from tests.project.conftest import ProjectFactory

DATASETS = """
datasets:
  - name: raw
    source:
      type: file
      path: data/raw.csv
      columns: {id: int8, weather: VARCHAR, amount: float8}
  - name: clean
    transform:
      sql: |
        SELECT id, lower(weather) AS weather, amount * 2 AS doubled
        FROM raw
        WHERE regexp_matches(weather, '^[a-z]+$')
"""


def _cache(root: Path) -> Path:
    return root / ".lockgate" / "cache" / "dialect.json"


class _Counting(DuckDBEngine):
    """DuckDB, counting the static questions that reach it."""

    asked: list[str] = []

    @classmethod
    def syntax_error(cls, sql_text: str) -> tuple[str, int | None, int | None] | None:
        cls.asked.append("syntax")
        return super().syntax_error(sql_text)

    @classmethod
    def canonical_type(cls, type_name: str) -> str:
        cls.asked.append("type")
        return super().canonical_type(type_name)

    @classmethod
    def regex_error(cls, pattern: str) -> str | None:
        cls.asked.append("regex")
        return super().regex_error(pattern)


def test_a_second_load_asks_the_engine_nothing_and_sees_the_same_project(
    make_project: ProjectFactory, tmp_path: Path
) -> None:
    memo = DialectMemo(tmp_path / "d.json")
    _Counting.asked = []
    first = (
        memo.syntax_error(_Counting, "SELEC 1"),
        memo.canonical_type(_Counting, "int8"),
        memo.regex_error(_Counting, "(a)\\1"),
    )
    memo.save()
    assert sorted(_Counting.asked) == ["regex", "syntax", "type"]
    again = DialectMemo(tmp_path / "d.json")
    second = (
        again.syntax_error(_Counting, "SELEC 1"),
        again.canonical_type(_Counting, "int8"),
        again.regex_error(_Counting, "(a)\\1"),
    )
    assert _Counting.asked == ["syntax", "type", "regex"]  # nothing more was asked
    assert second == first
    assert first[0] is not None and first[1] == "BIGINT" and first[2] is not None

    root = make_project({"datasets/a.yaml": DATASETS})
    cold = load_project(root)
    assert _cache(root).is_file()
    warm = load_project(root)
    assert warm.datasets.keys() == cold.datasets.keys()
    assert warm.datasets["clean"] == cold.datasets["clean"]


def test_an_error_is_reported_the_same_from_the_cache_and_a_fix_is_seen(
    make_project: ProjectFactory,
) -> None:
    bad = DATASETS.replace("lower(weather)", "lower(wheather)").replace("'^[a-z]+$'", "'(a)\\1'")
    root = make_project({"datasets/a.yaml": bad})
    cold = [(p.message, p.file, p.line, p.hint) for p in validate_project(root)]
    warm = [(p.message, p.file, p.line, p.hint) for p in validate_project(root)]
    assert len(cold) == 2 and warm == cold
    assert any("'wheather'" in m for m, *_ in cold)
    (root / "datasets" / "a.yaml").write_text(DATASETS.lstrip("\n"))
    assert validate_project(root) == []


def test_an_upstream_schema_change_binds_again(make_project: ProjectFactory) -> None:
    root = make_project({"datasets/a.yaml": DATASETS})
    assert validate_project(root) == []
    # the same SQL over an input that lost a column: the remembered bind must not answer
    (root / "datasets" / "a.yaml").write_text(
        DATASETS.replace(" weather: VARCHAR,", "").lstrip("\n")
    )
    problems = validate_project(root)
    assert any("'weather'" in p.message for p in problems), problems


@pytest.mark.parametrize("damage", ["{not json", '{"format": 999, "entries": {}}', "[]", ""])
def test_a_damaged_cache_is_started_again(make_project: ProjectFactory, damage: str) -> None:
    root = make_project({"datasets/a.yaml": DATASETS})
    _cache(root).parent.mkdir(parents=True)
    _cache(root).write_text(damage)
    assert validate_project(root) == []
    assert json.loads(_cache(root).read_text())["format"] == 1


def test_a_poisoned_answer_is_not_trusted_across_engine_versions(tmp_path: Path) -> None:
    """Answers are keyed by the driver's version: a cache written by another DuckDB is
    never read for this one (here: an entry under another version key is ignored)."""
    path = tmp_path / "d.json"
    memo = DialectMemo(path)
    assert memo.canonical_type(DuckDBEngine, "int8") == "BIGINT"
    memo.save()
    data = json.loads(path.read_text())
    # rewrite every remembered answer, as if written by a broken engine of another version
    data["entries"] = {k: "WRONG" for k in data["entries"]}
    path.write_text(json.dumps(data))
    assert DialectMemo(path).canonical_type(DuckDBEngine, "int8") == "WRONG"  # same key: read
    other = type("OtherDuck", (DuckDBEngine,), {"name": "duckdb-other"})
    assert DialectMemo(path).canonical_type(other, "int8") == "BIGINT"  # other key: asked


def test_an_unwritable_cache_only_costs_speed(make_project: ProjectFactory) -> None:
    root = make_project({"datasets/a.yaml": DATASETS})
    (root / ".lockgate").mkdir()
    (root / ".lockgate" / "cache").write_text("a file where the cache folder goes")
    assert validate_project(root) == []  # (a read-only folder does the same, but not as root)
    assert validate_project(root) == []
    assert (root / ".lockgate" / "cache").is_file()
    assert not list((root / ".lockgate").glob("**/.dialect-*"))  # no temporary file left


def test_an_up_to_date_re_run_starts_neither_duckdb_nor_pyarrow(
    make_project: ProjectFactory,
) -> None:
    """The start-up cost of `lockgate run` with nothing to do: the project loads from the
    dialect cache, every step is a no-op from the Delta log, no engine session opens."""
    root = make_project({"datasets/a.yaml": DATASETS})
    (root / "data").mkdir()
    (root / "data" / "raw.csv").write_text("id,weather,amount\n1,sunny,2.5\n2,rain,1\n")
    cli = [sys.executable, "-m", "lockgate", "run", "--project", str(root)]
    subprocess.run(cli, check=True, capture_output=True)
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['lockgate', 'run', '--project', {str(root)!r}]\n"
        "try:\n    runpy.run_module('lockgate', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "print('LOADED', sorted(m for m in ('duckdb', 'pyarrow', 'numpy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "inputs unchanged" in out.stdout
    assert "LOADED []" in out.stdout, out.stdout[-2000:]
