"""SQL is bound against the known schemas of its inputs at validate time: a column no
input has is reported with file:line and a "did you mean"; unknown schemas are skipped."""

from __future__ import annotations

from lockgate.errors import Problem
from lockgate.project import load_project, validate_project
from tests.project.conftest import ProjectFactory

RAW = """
  - name: raw
    source:
      type: file
      path: data/raw.csv
      columns: {id: BIGINT, weather: VARCHAR, amount: DOUBLE}
"""


def _column_problems(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if "its SQL uses column" in p.message]


def test_unknown_column_in_inline_sql_is_reported_with_line_and_hint(
    make_project: ProjectFactory,
) -> None:
    root = make_project(
        {
            "datasets/a.yaml": "datasets:"
            + RAW
            + """
  - name: clean
    transform:
      sql: |
        SELECT id,
               lower(trim(wheather)) AS weather
        FROM raw
"""
        }
    )
    (p,) = validate_project(root)
    assert (p.file, p.line) == ("datasets/a.yaml", 12)
    assert "dataset 'clean'" in p.message and "'wheather'" in p.message and "(raw)" in p.message
    assert p.hint == "did you mean 'weather'?"


def test_unknown_column_in_sql_file_points_into_the_file(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "datasets/a.yaml": "datasets:"
            + RAW
            + """
  - name: clean
    transform: {sql_file: clean.sql}
""",
            "datasets/clean.sql": """
            -- one comment line
            SELECT r.id
            FROM raw AS r
            WHERE r.amont > 0
            """,
        }
    )
    (p,) = validate_project(root)
    assert (p.file, p.line, p.column) == ("datasets/clean.sql", 4, 9)
    assert "'amont'" in p.message and "'r' does not have" in p.message
    assert p.hint == "did you mean 'amount'?"


def test_columns_flow_through_sql_transforms(make_project: ProjectFactory) -> None:
    """A transform's schema is what its SQL produces; a downstream query is bound on it,
    and its checks/keys are checked against it."""
    root = make_project(
        {
            "datasets/a.yaml": "datasets:"
            + RAW
            + """
  - name: daily
    transform: {sql: "SELECT id, sum(amount) AS total FROM raw GROUP BY id"}
    checks:
      - {type: not_null, column: totl}
  - name: top
    transform: {sql: "SELECT d.id, d.amount FROM daily AS d JOIN raw USING (id)"}
"""
        }
    )
    problems = validate_project(root)
    assert len(problems) == 2, problems
    (p,) = _column_problems(problems)
    assert "dataset 'top'" in p.message and "'amount'" in p.message and "'d' does not" in p.message
    (c,) = [p for p in problems if "totl" in p.message]
    assert c.line == 11 and c.hint == "did you mean 'total'?"


def test_ambiguous_column_is_reported(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "datasets/a.yaml": "datasets:"
            + RAW
            + """
  - name: other
    source: {type: file, path: data/o.csv, columns: {id: BIGINT}}
  - name: j
    transform: {sql: "SELECT id FROM raw JOIN other ON raw.id = other.id"}
"""
        }
    )
    (p,) = validate_project(root)
    assert "ambiguous" in p.message and p.line == 11


def test_unknown_schemas_are_not_guessed(make_project: ProjectFactory) -> None:
    """An input without declared columns, a Python transform, a file read in the SQL, an
    unknown function: nothing to bind against, so nothing is reported."""
    root = make_project(
        {
            "datasets/a.yaml": """
datasets:
  - name: undeclared
    source: {type: file, path: data/u.csv}
  - name: from_undeclared
    transform: {sql: "SELECT anything FROM undeclared"}
  - name: from_python
    transform: {sql: "SELECT whatever FROM py"}
  - name: from_file
    transform: {sql: "SELECT nothing FROM read_csv('data/x.csv')"}
  - name: from_function
    transform: {sql: "SELECT no_such_function(1) AS x, 2 AS y"}
  - name: after_function
    transform: {sql: "SELECT zz FROM from_function"}
""",
            "datasets/py.py": """
            from lockgate import transform

            @transform
            def py():
                return None
            """,
        }
    )
    assert validate_project(root) == []


def test_declared_python_output_and_case_insensitive_names(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "datasets/a.yaml": """
datasets:
  - name: py
    transform: {python: py}
    columns: {Id: BIGINT, Label: VARCHAR}
  - name: ok
    transform: {sql: "SELECT ID, label, \\"LABEL\\" AS l2 FROM PY"}
    write: {mode: merge, keys: [id]}
  - name: bad
    transform: {sql: "SELECT labl FROM py"}
""",
            "datasets/py.py": """
            from lockgate import transform

            @transform
            def py():
                return None
            """,
        }
    )
    (p,) = validate_project(root)
    assert "dataset 'bad'" in p.message and p.hint == "did you mean 'Label'?"


def test_the_example_project_binds_cleanly() -> None:
    from pathlib import Path

    project = load_project(Path(__file__).resolve().parents[2] / "examples" / "shop")
    assert "orders" in project.datasets


def test_check_targets_columns_are_checked_when_their_schema_is_known(
    make_project: ProjectFactory,
) -> None:
    root = make_project(
        {
            "datasets/a.yaml": "datasets:"
            + RAW
            + """
  - name: customers
    transform: {sql: "SELECT id AS customer_id, weather FROM raw"}
  - name: orders
    source: {type: file, path: data/o.csv, columns: {order_id: BIGINT, customer_id: BIGINT}}
    checks:
      - {type: relationship, column: customer_id, to: Customers, to_column: custmer_id}
      - {type: relationship, column: customer_id, to: customers, name: fk_ok}
  - name: undeclared
    source: {type: file, path: data/u.csv}
  - name: unknown_target
    source: {type: file, path: data/o.csv, columns: {order_id: BIGINT}}
    checks:
      - {type: relationship, column: order_id, to: undeclared, to_column: anything}
"""
        }
    )
    (p,) = validate_project(root)
    assert p.line == 13 and "unknown column 'custmer_id' in reference" in p.message
    assert p.hint == "did you mean 'customer_id'?"
