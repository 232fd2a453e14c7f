from __future__ import annotations

from pathlib import Path

import pytest

from lockgate.errors import ConfigError, Problem
from lockgate.project import load_project, validate_project
from lockgate.project.models import GatePolicy, SchemaPolicy, WriteMode
from lockgate.sources import registered_types
from tests.project.conftest import ProjectFactory

GOOD = {
    "datasets/raw.yaml": """
        datasets:
          - name: raw_orders
            source: {type: file, path: data/orders.csv}
          - name: raw_customers
            source: {type: file, path: data/customers.csv}
    """,
    "datasets/silver/silver.yaml": """
        datasets:
          - name: silver_orders
            transform: {sql_file: orders.sql}
            gate: block
            write: {mode: merge, keys: [order_id]}
          - name: silver_customers
            transform:
              sql: |
                WITH c AS (SELECT * FROM raw_customers)
                SELECT * FROM c, read_parquet('x.parquet')
    """,
    "datasets/silver/orders.sql": "SELECT * FROM raw_orders JOIN main.raw_customers USING (id)",
    "datasets/gold.py": """
        from lockgate.project import transform

        @transform
        def gold_features(silver_orders, silver_customers):
            return silver_orders
    """,
}


def _one(problems: list[Problem], text: str) -> Problem:
    found = [p for p in problems if text in p.message]
    assert len(found) == 1, f"expected one problem with {text!r} in {problems}"
    return found[0]


def test_good_project_loads_with_deps_in_topological_order(make_project: ProjectFactory) -> None:
    root = make_project(GOOD, config="name: demo\ndefaults: {schema_policy: freeze}\n")
    project = load_project(root)
    names = list(project.datasets)
    assert set(names) == {
        "raw_orders",
        "raw_customers",
        "silver_orders",
        "silver_customers",
        "gold_features",
    }
    for name, ups in project.deps.items():
        assert all(names.index(u) < names.index(name) for u in ups)
    assert project.deps["silver_orders"] == ("raw_orders", "raw_customers")
    assert project.deps["silver_customers"] == ("raw_customers",)
    assert project.deps["gold_features"] == ("silver_orders", "silver_customers")
    assert project.sql_text("silver_orders").startswith("SELECT * FROM raw_orders")
    assert "WITH c AS" in project.sql_text("silver_customers")
    tf = project.python_transform("gold_features")
    assert tf.file == "datasets/gold.py" and tf.line == 3
    gold = project.datasets["gold_features"]
    assert gold.kind == "python" and gold.defined_in == "datasets/gold.py"
    assert project.datasets["silver_orders"].defined_in == "datasets/silver/silver.yaml"
    assert project.datasets["silver_orders"].defined_line == 2
    assert project.effective_gate("silver_orders") is GatePolicy.BLOCK
    assert project.effective_gate("raw_orders") is GatePolicy.QUARANTINE
    assert project.effective_schema_policy("raw_orders") is SchemaPolicy.FREEZE
    assert project.effective_write_mode("silver_orders") is WriteMode.MERGE
    assert project.downstream("silver_orders") == ("gold_features",)
    assert project.upstream("gold_features", transitive=True) == (
        "raw_orders",
        "raw_customers",
        "silver_orders",
        "silver_customers",
    )


def test_locations_and_state_url(make_project: ProjectFactory) -> None:
    root = make_project(GOOD)
    project = load_project(root)
    assert project.root == root.resolve()
    assert project.warehouse_path == root.resolve() / "warehouse"
    assert project.work_dir == root.resolve() / ".lockgate"
    assert project.state_url == f"sqlite:///{(root.resolve() / '.lockgate/state.db').as_posix()}"
    assert not (root / ".lockgate").exists()  # creates nothing


def test_state_url_absolute_and_other_schemes_unchanged(make_project: ProjectFactory) -> None:
    root = make_project(GOOD, config="name: demo\nstate: postgresql://u@h/db\n")
    assert load_project(root).state_url == "postgresql://u@h/db"


def test_missing_lockgate_yaml_hints_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as ei:
        load_project(tmp_path)
    (p,) = ei.value.problems
    assert "no lockgate.yaml" in p.message and "lockgate init" in (p.hint or "")


def test_malformed_yaml_has_line_and_column(make_project: ProjectFactory) -> None:
    root = make_project({"datasets/a.yaml": "datasets:\n  - name: a\n    source: {type: file\n"})
    p = _one(validate_project(root), "malformed YAML")
    assert (p.file, p.line) == ("datasets/a.yaml", 4) and p.column is not None


def test_unknown_keys_suggest_field_names(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "datasets/a.yaml": """
                datasets:
                  - name: a
                    descripton: x
                    source: {type: file, path: a.csv, optons: {}}
                    checks:
                      - type: unique
                        colum: id
                    transfrom: {}
            """
        },
        config="name: demo\nwarehous: wh\n",
    )
    problems = validate_project(root)
    p = _one(problems, "unknown key 'warehous'")
    assert (p.file, p.line, p.hint) == ("lockgate.yaml", 2, "did you mean 'warehouse'?")
    p = _one(problems, "unknown key 'descripton'")
    assert (p.file, p.line, p.hint) == ("datasets/a.yaml", 3, "did you mean 'description'?")
    p = _one(problems, "unknown key 'optons'")
    assert (p.line, p.hint) == (4, "did you mean 'options'?")
    p = _one(problems, "unknown key 'colum'")
    assert (p.line, p.hint) == (7, "did you mean 'column'?")
    assert "checks[0]" in p.message
    assert _one(problems, "unknown key 'transfrom'").hint == "did you mean 'transform'?"


def test_invalid_values(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "datasets/a.yaml": """
                datasets:
                  - name: a
                    source: {type: file, path: a.csv}
                    write:
                      mode: mrge
                    checks:
                      - {type: not_nul, column: id}
                  - name: b c
                    source: {path: b.csv}
                  - name: d
                    transform: {sql: select 1}
                    write: {mode: merge}
                    freshness_sla: soon
            """
        }
    )
    problems = validate_project(root)
    p = _one(problems, "invalid value 'mrge'")
    assert p.line == 5 and p.hint == "did you mean 'merge'?"
    p = _one(problems, "unknown type 'not_nul'")
    assert p.line == 7 and p.hint == "did you mean 'not_null'?"
    assert _one(problems, "invalid name 'b c'").line == 8
    p = _one(problems, "missing key 'type'")
    # every registered source type is a choice (file, postgres, and any test adapter)
    assert p.line == 9 and p.hint == "one of: " + ", ".join(registered_types())
    assert _one(problems, "needs write.keys").line == 12
    assert _one(problems, "freshness_sla").line == 13


def test_transform_with_two_kinds_is_one_clear_problem(make_project: ProjectFactory) -> None:
    root = make_project(
        {"datasets/a.yaml": "datasets:\n  - name: a\n    transform: {sql: select 1, python: f}\n"}
    )
    (p,) = validate_project(root)
    assert "exactly one of 'sql', 'sql_file' or 'python'" in p.message and p.line == 3


def test_duplicate_dataset_names(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "datasets/a.yaml": "datasets:\n  - name: a\n    transform: {sql: select 1}\n",
            "datasets/b.yml": "datasets:\n  - name: x\n    transform: {sql: select 1}\n"
            "  - name: a\n    transform: {sql: select 2}\n",
        }
    )
    (p,) = validate_project(root)
    assert "duplicate dataset name 'a'" in p.message and "datasets/a.yaml:2" in p.message
    assert (p.file, p.line) == ("datasets/b.yml", 4)


def test_unknown_sql_reference_inline_block(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "datasets/a.yaml": """
                datasets:
                  - name: orders
                    source: {type: file, path: o.csv}
                  - name: x
                    transform:
                      sql: |
                        SELECT *
                        FROM ordrs
            """
        }
    )
    (p,) = validate_project(root)
    assert p.message == "unknown dataset 'ordrs' referenced in SQL of dataset 'x'"
    assert p.hint == "did you mean 'orders'?"
    assert (p.file, p.line) == ("datasets/a.yaml", 8)


def test_sql_file_errors_point_into_the_sql_file(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "datasets/a.yaml": """
                datasets:
                  - name: orders
                    source: {type: file, path: o.csv}
                  - name: x
                    transform: {sql_file: sql/x.sql}
                  - name: y
                    transform: {sql_file: sql/y.sql}
                  - name: z
                    transform: {sql_file: nope.sql}
            """,
            "datasets/sql/x.sql": "SELECT *\nFROM orders, custmers\n",
            "datasets/sql/y.sql": "SELECT a,\nFROM orders WHERE (\n",
        }
    )
    problems = validate_project(root)
    p = _one(problems, "'custmers'")
    assert (p.file, p.line, p.column) == ("datasets/sql/x.sql", 2, 14)
    p = _one(problems, "SQL syntax error")
    assert p.file == "datasets/sql/y.sql" and p.line == 2
    p = _one(problems, "sql_file 'nope.sql' not found")
    assert (p.file, p.line) == ("datasets/a.yaml", 9)


def test_inline_sql_syntax_error_column(make_project: ProjectFactory) -> None:
    root = make_project(
        {"datasets/a.yaml": 'datasets:\n  - name: a\n    transform:\n      sql: "selec 1"\n'}
    )
    (p,) = validate_project(root)
    assert "SQL syntax error" in p.message
    assert (p.line, p.column) == (4, 19)  # the "1": quote at column 12, "selec" at 13


def test_sql_must_be_one_query(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "datasets/a.yaml": """
                datasets:
                  - name: a
                    transform: {sql: "select 1; select 2"}
                  - name: b
                    transform: {sql: "insert into t select 1"}
            """
        }
    )
    problems = validate_project(root)
    assert _one(problems, "found 2 statements").line == 3
    assert _one(problems, "found INSERT").line == 5


def test_table_functions_ctes_and_files_are_not_references(make_project: ProjectFactory) -> None:
    sql = (
        "WITH t AS (SELECT 1) SELECT * FROM t, read_csv_auto('a.csv'), range(3), "
        "'data/*.parquet', generate_series(1, 2)"
    )
    root = make_project(
        {"datasets/a.yaml": f'datasets:\n  - name: a\n    transform: {{sql: "{sql}"}}\n'}
    )
    assert load_project(root).deps["a"] == ()


def test_python_transform_problems(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "datasets/a.yaml": """
                datasets:
                  - name: orders
                    source: {type: file, path: o.csv}
                  - name: feats
                    transform: {python: make_featurs}
            """,
            "datasets/f.py": """
                from lockgate.project import transform

                @transform
                def make_features(ordrs):
                    return ordrs
            """,
            "datasets/broken.py": "x = 1\nraise RuntimeError('boom')\n",
        }
    )
    problems = validate_project(root)
    p = _one(problems, "'make_featurs' is not registered")
    assert (p.file, p.line, p.hint) == ("datasets/a.yaml", 5, "did you mean 'make_features'?")
    p = _one(problems, "unknown dataset 'ordrs'")
    assert (p.file, p.line, p.hint) == ("datasets/f.py", 3, "did you mean 'orders'?")
    p = _one(problems, "boom")
    assert (p.file, p.line) == ("datasets/broken.py", 2)


def test_python_syntax_error_located(make_project: ProjectFactory) -> None:
    root = make_project({"datasets/f.py": "def f(:\n    pass\n"})
    p = _one(validate_project(root), "syntax error")
    assert (p.file, p.line) == ("datasets/f.py", 1)


def test_registrations_do_not_leak_between_projects(tmp_path: Path) -> None:
    for name, fn in (("p1", "alpha"), ("p2", "beta")):
        (tmp_path / name / "datasets").mkdir(parents=True)
        (tmp_path / name / "lockgate.yaml").write_text(f"name: {name}\n")
        (tmp_path / name / "datasets" / "t.py").write_text(
            f"from lockgate.project import transform\n\n@transform\ndef {fn}():\n    return 1\n"
        )
    assert list(load_project(tmp_path / "p1").datasets) == ["alpha"]
    assert list(load_project(tmp_path / "p2").datasets) == ["beta"]
    assert list(load_project(tmp_path / "p1").datasets) == ["alpha"]


def test_cycle_path_is_printed(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "datasets/a.yaml": """
                datasets:
                  - name: a
                    transform: {sql: select * from b}
                  - name: b
                    transform: {sql: select * from c}
                  - name: c
                    transform: {sql: select * from a}
                  - name: d
                    transform: {sql: select * from d}
            """
        }
    )
    problems = validate_project(root)
    p = _one(problems, "a -> b -> c -> a")
    assert p.message == "dependency cycle: a -> b -> c -> a" and p.line == 2
    assert _one(problems, "d -> d").line == 8


def test_columns_must_be_declared(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "datasets/a.yaml": """
                datasets:
                  - name: a
                    transform: {sql: select 1 as id}
                    columns: {id: BIGINT, updated_at: TIMESTAMP, day: DATE}
                    write:
                      mode: merge
                      keys: [idd]
                      order_by: updated
                      partition_by: [day]
                    incremental: {cursor: updated_att}
                    checks:
                      - type: not_null
                        column: ID
                      - {type: unique, columns: [id, dy]}
                  - name: undeclared
                    transform: {sql: select 1 as id}
                    write: {mode: merge, keys: [anything]}
            """
        }
    )
    problems = validate_project(root)
    assert len(problems) == 6
    # no declared columns: checked against the columns its SQL produces (bound by DuckDB)
    p = _one(problems, "write.keys uses column 'anything', which is not in the columns its SQL")
    assert p.line == 17
    p = _one(problems, "write.keys uses column 'idd'")
    assert (p.line, p.hint) == (7, "did you mean 'id'?")
    assert _one(problems, "write.order_by uses column 'updated'").line == 8
    assert _one(problems, "incremental.cursor uses column 'updated_att'").line == 10
    assert _one(problems, "column 'ID'").line == 13
    assert _one(problems, "column 'dy'").line == 14


def test_many_problems_reported_together(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "datasets/a.yaml": "datasets:\n  - name: a\n    transform: {sql: select * from zz}\n",
            "datasets/b.yaml": "datasets:\n  - name: b\n    bogus: 1\n    source: {type: file}\n",
            "datasets/c.yaml": "datasets: [\n",
        },
        config="name: demo\nthreads: 0\n",
    )
    with pytest.raises(ConfigError) as ei:
        load_project(root)
    where = [(p.file, p.line) for p in ei.value.problems]
    assert where == [
        ("lockgate.yaml", 2),
        ("datasets/a.yaml", 3),
        ("datasets/b.yaml", 3),
        ("datasets/b.yaml", 4),
        ("datasets/c.yaml", 2),
    ]
    assert "5 problems found" in str(ei.value)


def test_dataset_file_shape(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "datasets/a.yaml": "datasets: {name: a}\n",
            "datasets/b.yaml": "- name: b\n",
            "datasets/c.yaml": "datasets: []\nmodels: []\n",
            "datasets/empty.yaml": "",
        }
    )
    problems = validate_project(root)
    assert [p.file for p in problems] == ["datasets/a.yaml", "datasets/b.yaml", "datasets/c.yaml"]
    assert "unknown key 'models'" in problems[2].message


def test_duplicate_yaml_keys_are_reported(make_project: ProjectFactory) -> None:
    root = make_project(
        {"datasets/a.yaml": "datasets:\n  - name: a\n    name: b\n    transform: {sql: select 1}\n"}
    )
    (p,) = validate_project(root)
    assert "duplicate key 'name'" in p.message and p.line == 3


def test_missing_datasets_dir(make_project: ProjectFactory) -> None:
    root = make_project({}, config="name: demo\ndatasets_dir: models\n")
    (p,) = validate_project(root)
    assert "datasets folder 'models' does not exist" in p.message
    assert (p.file, p.line) == ("lockgate.yaml", 2)


def test_a_plain_on_key_is_the_word_not_a_boolean() -> None:
    """YAML 1.1 reads `on:` as True; the README's stream (``enrich: [{on: user_id}]``) and
    the issue's both write it plainly. Values keep YAML's booleans."""
    from lockgate._yaml import load_yaml, plain

    data, problems = load_yaml("a: {on: user_id, yes: 1, 'off': 2, flag: on}\n", "f.yaml")
    assert not problems
    assert plain(data) == {"a": {"on": "user_id", "yes": 1, "off": 2, "flag": True}}
