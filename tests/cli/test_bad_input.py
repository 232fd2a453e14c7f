"""Every bad-input case of the batch core, through the CLI: one clear message naming the
file/dataset and the fix, a scriptable exit code, no traceback, and nothing published for
the failing dataset or anything downstream of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lockgate.state import StateStore
from tests.cli.helpers import (
    MORE_ORDERS,
    build,
    cli,
    rewrite,
    run_json,
    subprocess_cli,
    versions,
)


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, dict[str, int | None]]:
    """The standard project after one successful run, and its table versions."""
    root = build(tmp_path / "p")
    r = cli("run", "-p", str(root))
    assert r.exit_code == 0, r.output
    before = versions(root)
    assert all(v is not None for v in before.values()), before
    return root, before


def _error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("error:")]


def _assert_unchanged(root: Path, before: dict[str, int | None], *names: str) -> None:
    after = versions(root)
    for n in names:
        assert after[n] == before[n], (n, before, after)


def _assert_config_error(root: Path, before: dict[str, int | None], *needles: str) -> str:
    """Exit 2 from both validate and run, the needles in the message, nothing published."""
    v = cli("validate", "-p", str(root), "--json")
    assert v.exit_code == 2, v.output
    listed = "\n".join(
        f"{p['file']}:{p['line']}:{p['column']}: {p['message']} ({p['hint']})"
        for p in json.loads(v.stdout)
    )
    r = cli("run", "-p", str(root))
    assert r.exit_code == 2, r.output
    assert r.stdout == ""
    assert len(_error_lines(r.stderr)) == 1, r.stderr
    for n in needles:
        assert n in r.stderr, (n, r.stderr)
        assert n in listed, (n, listed)
    assert "Traceback" not in r.output
    _assert_unchanged(root, before, *before)
    return r.stderr


# ---- config errors: found before running, exit 2 ------------------------------------------


def test_malformed_yaml(published: tuple[Path, dict[str, int | None]]) -> None:
    root, before = published
    (root / "datasets" / "main.yaml").write_text(
        "datasets:\n  - name: orders\n    source: {type: file, path: data/orders.csv\n  - name: x\n"
    )
    _assert_config_error(root, before, "datasets/main.yaml:4", "malformed YAML")


def test_unknown_key_with_did_you_mean(published: tuple[Path, dict[str, int | None]]) -> None:
    root, before = published
    rewrite(root, rev_extra={"descripton": "typo"})
    _assert_config_error(
        root,
        before,
        "datasets/main.yaml",
        "unknown key 'descripton'",
        "did you mean 'description'?",
    )


def test_unknown_dataset_reference(published: tuple[Path, dict[str, int | None]]) -> None:
    root, before = published
    rewrite(root, rev_sql="select status, sum(amount) as revenue from ordrs group by 1")
    _assert_config_error(
        root, before, "datasets/main.yaml", "unknown dataset 'ordrs'", "did you mean 'orders'?"
    )


@pytest.mark.parametrize(
    ("query", "position"),
    [
        # sqlglot accepts this one; DuckDB's parser does not
        ("select status,, sum(amount) as revenue from orders group by 1", "column 15"),
        ("select status, sum(amount as revenue from orders group by 1", "SQL syntax error"),
    ],
)
def test_sql_syntax_error_with_position(
    published: tuple[Path, dict[str, int | None]], query: str, position: str
) -> None:
    root, before = published
    rewrite(root, rev_sql=query)
    err = _assert_config_error(root, before, "dataset 'rev'", "SQL syntax error", position)
    assert "datasets/main.yaml:" in err


def test_invalid_check_on_declared_columns_is_found_by_validate(
    published: tuple[Path, dict[str, int | None]],
) -> None:
    root, before = published
    rewrite(
        root,
        rev_extra={
            "columns": {"status": "VARCHAR", "revenue": "DOUBLE", "n": "BIGINT"},
            "checks": [
                {"type": "between", "column": "status", "min": 0, "max": 1},
                {"type": "not_null", "column": "revenue", "where": "statuz = 'placed'"},
            ],
        },
    )
    v = cli("validate", "-p", str(root), "--json")
    assert v.exit_code == 2
    problems = json.loads(v.stdout)
    msgs = [p["message"] for p in problems]
    assert any("between on string column 'status'" in m for m in msgs), msgs
    assert any("unknown column 'statuz'" in m for m in msgs), msgs
    assert all(p["file"] == "datasets/main.yaml" and p["line"] for p in problems)
    _assert_config_error(root, before, "dataset 'rev'", "between on string column")


def test_held_lock_exits_3(published: tuple[Path, dict[str, int | None]]) -> None:
    root, before = published
    import lockgate

    project = lockgate.load_project(root)
    state = StateStore.open(project.state_url)
    with state.lock(project.config.name):
        r = cli("run", "-p", str(root))
    assert r.exit_code == 3, r.output
    assert len(_error_lines(r.stderr)) == 1 and "lock" in r.stderr.lower()
    assert "Traceback" not in r.output
    _assert_unchanged(root, before, *before)


# ---- run-time failures: the step fails, exit 1 --------------------------------------------


def _assert_step_failed(
    root: Path,
    before: dict[str, int | None],
    failing: str,
    unchanged: tuple[str, ...],
    *needles: str,
) -> dict[str, Any]:
    """Exit 1, one error line naming the dataset, the failing step and its downstream not
    published, and the same through --json."""
    r = cli("run", "-p", str(root))
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    errors = _error_lines(r.stderr)
    assert len(errors) == 1, r.stderr
    assert f"'{failing}'" in errors[0]
    for n in needles:
        assert n in r.stderr, (n, r.stderr)
    assert "hint:" in r.stderr
    _assert_unchanged(root, before, failing, *unchanged)
    code, out = run_json(root)
    assert code == 1
    steps = {s["dataset"]: s for s in out["steps"]}
    assert steps[failing]["status"] == "failed" and steps[failing]["hint"]
    for n in unchanged:
        if n in steps:
            assert steps[n]["status"] == "upstream_failed", steps[n]
    _assert_unchanged(root, before, failing, *unchanged)
    return steps


def test_sql_binder_error_at_run_time(published: tuple[Path, dict[str, int | None]]) -> None:
    root, before = published
    rewrite(root, rev_sql="select statuz, sum(amount) as revenue from orders group by 1")
    assert cli("validate", "-p", str(root)).exit_code == 0  # needs the data's columns
    steps = _assert_step_failed(
        root, before, "rev", ("top",), "datasets/main.yaml", "statuz", "Binder Error"
    )
    assert steps["enriched"]["status"] in ("noop", "success")


def test_missing_input_file(published: tuple[Path, dict[str, int | None]]) -> None:
    root, before = published
    rewrite(root, orders_path="data/nope.csv")
    _assert_step_failed(
        root,
        before,
        "orders",
        ("orders__quarantine", "rev", "top", "enriched", "big_orders"),
        "data/nope.csv",
        "does not exist",
    )


def test_python_transform_raises(published: tuple[Path, dict[str, int | None]]) -> None:
    root, before = published
    (root / "datasets" / "transforms.py").write_text(
        "import lockgate\n\n@lockgate.transform(as_='arrow')\ndef enriched(orders):\n"
        "    raise ValueError('no amounts today')\n"
    )
    _assert_step_failed(
        root,
        before,
        "enriched",
        ("big_orders",),
        "ValueError: no amounts today",
        "datasets/transforms.py:5",  # the line that raised
    )


@pytest.mark.parametrize("returned", ["42", "{'a': [1]}", "None"])
def test_python_transform_wrong_return_type(
    published: tuple[Path, dict[str, int | None]], returned: str
) -> None:
    root, before = published
    (root / "datasets" / "transforms.py").write_text(
        f"import lockgate\n\n@lockgate.transform\ndef enriched(orders):\n    return {returned}\n"
    )
    _assert_step_failed(
        root, before, "enriched", ("big_orders",), "returned builtins.", "expected pyarrow.Table"
    )


def test_invalid_check_fails_the_step_with_every_problem(
    published: tuple[Path, dict[str, int | None]],
) -> None:
    root, before = published
    (root / "data" / "orders.csv").write_text(MORE_ORDERS)  # orders itself republishes
    rewrite(
        root,
        rev_extra={
            "checks": [
                {"type": "not_null", "column": "revenu"},
                {"type": "between", "column": "status", "min": 0, "max": 1},
            ]
        },
    )
    assert cli("validate", "-p", str(root)).exit_code == 0  # no declared columns
    _assert_step_failed(
        root,
        before,
        "rev",
        ("top",),
        "2 invalid checks",
        "unknown column 'revenu'",
        "did you mean 'revenue'?",
        "between on string column 'status'",
        "nothing was published",
    )
    assert versions(root)["orders"] == before["orders"] + 1  # type: ignore[operator]


# ---- real processes ------------------------------------------------------------------------


@pytest.mark.slow
def test_subprocess_config_error_and_step_failure(
    published: tuple[Path, dict[str, int | None]],
) -> None:
    root, before = published
    rewrite(root, rev_extra={"writ": {"mode": "append"}})
    p = subprocess_cli("run", "-p", str(root))
    assert p.returncode == 2, p.stderr
    assert "unknown key 'writ'" in p.stderr and "Traceback" not in p.stderr
    rewrite(root)
    (root / "datasets" / "transforms.py").write_text(
        "import lockgate\n\n@lockgate.transform\ndef enriched(orders):\n    return 1 / 0\n"
    )
    p = subprocess_cli("run", "-p", str(root), "--json")
    assert p.returncode == 1, p.stderr
    out = json.loads(p.stdout)
    assert out["status"] == "failed"  # the other steps are no-ops
    assert {s["dataset"]: s["status"] for s in out["steps"]}["big_orders"] == "upstream_failed"
    assert "ZeroDivisionError" in p.stderr and "Traceback" not in p.stderr
    _assert_unchanged(root, before, "enriched", "big_orders")
    p = subprocess_cli("--debug", "run", "-p", str(root))
    assert p.returncode == 1
    assert "Traceback" in p.stderr  # --debug shows where it came from
