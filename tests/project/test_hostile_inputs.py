"""Names, encodings, YAML aliases and regexes that used to pass validate and fail later
(or hang): each is refused at validate with the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lockgate._yaml import load_yaml
from lockgate.cli.app import app
from lockgate.errors import Problem
from lockgate.project import load_project, validate_project
from tests.project.conftest import ProjectFactory

NAME_MAX_LENGTH = 63  # lockgate.project.models.NAME_MAX_LENGTH (PostgreSQL's identifier limit)
MAX_ALIAS_NODES = 100_000  # lockgate._yaml.MAX_ALIAS_NODES

SOURCE = "source: {type: file, path: data/a.csv, columns: {id: BIGINT, name: VARCHAR}}"


def _messages(problems: list[Problem]) -> str:
    return "\n".join(str(p) for p in problems)


# ---- names ---------------------------------------------------------------------------------


def test_names_differing_only_in_case_are_rejected_with_both_locations(
    make_project: ProjectFactory,
) -> None:
    root = make_project(
        {
            "datasets/a.yaml": f"""
            datasets:
              - name: dup
                {SOURCE}
            """,
            "datasets/b.yaml": f"""
            datasets:
              - name: x
                {SOURCE}
              - name: DUP
                transform: {{sql: "SELECT * FROM x"}}
            """,
        }
    )
    problems = validate_project(root)
    (p,) = [p for p in problems if "differs only in case" in p.message]
    assert (p.file, p.line) == ("datasets/b.yaml", 4)
    assert "'DUP'" in p.message and "'dup'" in p.message and "datasets/a.yaml:2" in p.message


def test_python_transform_name_clashing_in_case_with_a_yaml_dataset(
    make_project: ProjectFactory,
) -> None:
    root = make_project(
        {
            "datasets/a.yaml": f"""
            datasets:
              - name: orders
                {SOURCE}
            """,
            "datasets/t.py": """
            from lockgate import transform

            @transform
            def Orders(orders):
                return orders
            """,
        }
    )
    problems = validate_project(root)
    assert any("differs only in case" in p.message for p in problems), _messages(problems)


def test_declared_columns_differing_only_in_case(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "datasets/a.yaml": """
            datasets:
              - name: a
                source:
                  type: file
                  path: data/a.csv
                  columns:
                    id: BIGINT
                    ID: VARCHAR
            """
        }
    )
    (p,) = validate_project(root)
    assert "'id' and 'ID' differ only in case" in p.message and p.line == 8


@pytest.mark.parametrize(
    "name",
    [
        "x" * 300,  # used to pass validate and fail the run with OSError (file name too long)
        "x" * (NAME_MAX_LENGTH + 1),
        "orders__quarantine",  # would be the quarantine table of 'orders'
        "1abc",
        "caf\u00e9",
    ],
)
def test_bad_dataset_names_are_rejected_at_validate(
    make_project: ProjectFactory, name: str
) -> None:
    root = make_project({"datasets/a.yaml": f"datasets:\n  - name: {name}\n    {SOURCE}\n"})
    (p,) = validate_project(root)
    assert p.file == "datasets/a.yaml" and p.line == 2 and "name" in p.message


def test_longest_allowed_name_loads(make_project: ProjectFactory) -> None:
    name = "x" * NAME_MAX_LENGTH
    root = make_project({"datasets/a.yaml": f"datasets:\n  - name: {name}\n    {SOURCE}\n"})
    assert list(load_project(root).datasets) == [name]


def test_long_python_transform_name_is_a_problem(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "datasets/t.py": f"""
            from lockgate import transform

            @transform(name="{"t" * 200}")
            def f():
                return None
            """
        }
    )
    (p,) = validate_project(root)
    assert p.file == "datasets/t.py" and "too long (200 characters" in p.message


def test_long_project_name_is_rejected(make_project: ProjectFactory) -> None:
    root = make_project({}, config=f"name: {'p' * 100}\n")
    (p,) = validate_project(root)
    assert p.file == "lockgate.yaml" and "too long" in p.message


# ---- YAML bombs ----------------------------------------------------------------------------


def _alias_bomb(levels: int, width: int) -> str:
    lines = ["x0: &x0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_before_expansion(make_project: ProjectFactory) -> None:
    bomb = _alias_bomb(6, 10)  # 600 bytes that expand to 1.1 million values
    assert len(bomb) < 1000
    root = make_project(
        {"datasets/a.yaml": f"{bomb}datasets:\n  - name: a\n    {SOURCE}\n    tags: *x5\n"}
    )
    problems = validate_project(root)
    (p,) = [p for p in problems if "alias" in p.message]
    assert p.file == "datasets/a.yaml" and "alias bomb" in p.message
    # the same refusal protects lockgate.yaml
    root.joinpath("lockgate.yaml").write_text(f"name: demo\n{bomb}")
    assert any(
        p.file == "lockgate.yaml" and "alias bomb" in p.message for p in validate_project(root)
    )


@pytest.mark.slow  # megabytes of input: left out of make test-fast
def test_ordinary_aliases_and_large_plain_lists_are_fine() -> None:
    values = ", ".join(str(i) for i in range(MAX_ALIAS_NODES * 2))
    data, problems = load_yaml(f"a: [{values}]\n", "f.yaml")  # no alias: no cap
    assert problems == [] and len(data["a"]) == MAX_ALIAS_NODES * 2
    values = ", ".join(str(i) for i in range(MAX_ALIAS_NODES // 2))
    data, problems = load_yaml(f"a: &a [{values}]\nb: *a\n", "f.yaml")
    assert problems == [] and data["b"] == data["a"]
    data, problems = load_yaml("a: &a {k: 1}\nb: {<<: *a, j: 2}\n", "f.yaml")
    assert problems == [] and data["b"] == {"k": 1, "j": 2}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: &a [*a]\n", "recursive"),
        ("a: &a {b: *a}\n", "recursive"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        ("a: " + "[" * 150 + "]" * 150 + "\n", "nested too deeply"),
    ],
)
def test_recursive_and_deep_yaml_is_a_problem(text: str, message: str) -> None:
    data, problems = load_yaml(text, "f.yaml")
    assert data is None
    (p,) = problems
    assert p.file == "f.yaml" and message in p.message


# ---- encodings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "content", "line"),
    [
        ("lockgate.yaml", b"name: demo\n# caf\xe9\n", 2),
        ("datasets/a.yaml", b"datasets:\n  - name: a\n    description: caf\xe9\n", 3),
        ("datasets/q.sql", b"SELECT 1 AS x -- caf\xe9\n", 1),
        ("datasets/t.py", b"# caf\xe9 in a comment still imports\nX = 1\n", 1),
    ],
)
def test_non_utf8_files_are_problems_with_file_and_line(
    make_project: ProjectFactory, rel: str, content: bytes, line: int
) -> None:
    root = make_project(
        {"datasets/q.yaml": "datasets:\n  - name: q\n    transform: {sql_file: q.sql}\n"}
    )
    root.joinpath("datasets/q.sql").write_text("SELECT 1 AS x\n")
    root.joinpath(rel).write_bytes(content)
    problems = validate_project(root)
    (p,) = [p for p in problems if p.file == rel]
    assert p.line == line and "UTF-8" in p.message.replace("utf-8", "UTF-8")

    r = CliRunner().invoke(app, ["validate", "-p", str(root), "--json"])
    assert r.exit_code == 2, r.output
    assert any(d["file"] == rel for d in json.loads(r.stdout))


def test_python_file_with_declared_encoding_and_utf8_bom_files_load(
    make_project: ProjectFactory,
) -> None:
    root = make_project({})
    root.joinpath("datasets/t.py").write_bytes(
        b"# -*- coding: latin-1 -*-\n# caf\xe9\nfrom lockgate import transform\n\n"
        b"@transform\ndef t():\n    return None\n"
    )
    root.joinpath("datasets/q.yaml").write_bytes(
        b"\xef\xbb\xbfdatasets:\n  - name: q\n    transform: {sql_file: q.sql}\n"
    )
    root.joinpath("datasets/q.sql").write_bytes(b"\xef\xbb\xbfSELECT 1 AS x\n")
    project = load_project(root)
    assert set(project.datasets) == {"t", "q"}
    assert project.sql_text("q") == "SELECT 1 AS x\n"


def test_sys_exit_in_a_python_file_is_a_problem(make_project: ProjectFactory) -> None:
    root = make_project({"datasets/t.py": "import sys\nsys.exit(3)\n"})
    (p,) = validate_project(root)
    assert p.file == "datasets/t.py" and "SystemExit" in p.message and p.line == 2


# ---- regular expressions -------------------------------------------------------------------


def test_re2_patterns_are_validated_by_re2(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "datasets/a.yaml": rf"""
            datasets:
              - name: a
                {SOURCE}
                checks:
                  - {{type: regex_match, column: name, pattern: '\pL+'}}
                  - {{type: regex_match, column: name, pattern: '\p{{Greek}}+', name: greek}}
                  - {{type: regex_match, column: name, pattern: '(a)\1', name: backref}}
                  - {{type: regex_match, column: name, pattern: '(?<=a)b', name: lookbehind}}
            """
        }
    )
    problems = validate_project(root)
    assert [p.line for p in problems] == [7, 8], _messages(problems)
    assert all("RE2" in p.message and p.file == "datasets/a.yaml" for p in problems)


def test_check_files_get_the_same_protection(tmp_path: Path) -> None:
    """`lockgate check --checks FILE` reads YAML too: alias bombs and non-UTF-8 check files
    are clear problems (exit 2), not minutes of CPU or an unexpected UnicodeDecodeError."""
    data = tmp_path / "d.csv"
    data.write_text("id\n1\n")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_alias_bomb(6, 10) + "checks:\n  - {type: not_null, column: id}\n")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"checks:\n  - {type: not_null, column: id, description: caf\xe9}\n")
    cli = CliRunner()
    r = cli.invoke(app, ["check", str(data), "--checks", str(bomb)])
    assert r.exit_code == 2 and "alias bomb" in r.output, r.output
    r = cli.invoke(app, ["check", str(data), "--checks", str(latin)])
    assert r.exit_code == 2 and "not UTF-8" in r.output and "latin.yaml:2" in r.output, r.output


def test_oversized_project_file_is_refused_without_parsing(make_project: ProjectFactory) -> None:
    from lockgate._yaml import MAX_FILE_BYTES

    root = make_project({})
    big = root / "datasets" / "big.yaml"
    big.write_text("datasets:\n" + "#" * MAX_FILE_BYTES + "\n")
    (p,) = validate_project(root)
    assert p.file == "datasets/big.yaml" and "too large" in p.message


def test_regex_literals_in_sql_and_check_conditions_are_compiled_by_re2(
    make_project: ProjectFactory,
) -> None:
    """A pattern DuckDB cannot compile fails the step after the data was read: report it
    at validate, wherever SQL is written; valid RE2 (\\pL) that Python rejects passes."""
    root = make_project(
        {
            "datasets/a.yaml": rf"""
            datasets:
              - name: a
                {SOURCE}
                checks:
                  - {{type: not_null, column: id, where: "name ~ '(a'"}}
                  - {{type: expression, expr: 'regexp_matches(name, ''\pL+'')'}}
                  - {{type: custom_sql, sql: "SELECT * FROM this WHERE name SIMILAR TO '[a'"}}
              - name: b
                transform:
                  sql: |
                    SELECT id,
                      regexp_replace(name, '(?<=x)y', '') AS n,
                      regexp_extract(name, '\p{{Greek}}+') AS greek
                    FROM a
            """
        }
    )
    problems = validate_project(root)
    assert [(p.line, p.column) for p in problems] == [(5, None), (7, None), (12, None)], _messages(
        problems
    )
    assert all("invalid regular expression" in p.message for p in problems)
    assert "'(a'" in problems[0].message and "'[a'" in problems[1].message
    assert "'(?<=x)y'" in problems[2].message
    assert all(p.file == "datasets/a.yaml" for p in problems)
