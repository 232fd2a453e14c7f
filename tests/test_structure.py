"""The platform issue's structural rules, kept true by a test rather than by memory: short
run-loop functions, modules under 800 lines, no ``Any`` in the run loop, DuckDB behind the
engine (and the file readers), and no upward imports from below the run loop."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "lockgate"
#: the layers below the run loop: they may not import the run loop, the project or the CLI
LOWER = ("engine", "storage", "sources", "state", "quality")
UPPER = ("lockgate.runloop", "lockgate.project", "lockgate.cli")


def _modules(under: str = "") -> list[Path]:
    return sorted((PKG / under).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_run_loop_functions_are_at_most_60_lines() -> None:
    long = [
        f"{p.relative_to(PKG)}::{n.name} ({n.end_lineno - n.lineno + 1})"
        for p in _modules("runloop")
        for n in ast.walk(ast.parse(p.read_text()))
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        and n.end_lineno is not None
        and n.end_lineno - n.lineno + 1 > 60
    ]
    assert not long, long


def test_modules_are_under_800_lines() -> None:
    long = [
        f"{p.relative_to(PKG)} ({n})"
        for p in _modules()
        if (n := len(p.read_text().splitlines())) >= 800
    ]
    assert not long, long


def test_the_run_loop_is_typed_without_any() -> None:
    uses = [
        f"{p.relative_to(PKG)}:{n.lineno}"
        for p in _modules("runloop")
        for n in ast.walk(ast.parse(p.read_text()))
        if isinstance(n, ast.Name) and n.id == "Any"
    ]
    assert len(uses) <= 3, uses


def test_duckdb_is_imported_only_by_the_engine_and_the_file_readers() -> None:
    users = {
        str(p.relative_to(PKG))
        for p in _modules()
        if any(m == "duckdb" or m.startswith("duckdb.") for m in _imports(p))
    }
    outside = {u for u in users if not u.startswith(("engine/", "sources/"))}
    assert not outside, outside


def test_no_module_below_the_run_loop_imports_upwards() -> None:
    upward = [
        f"{p.relative_to(PKG)} imports {m}"
        for layer in LOWER
        for p in _modules(layer)
        for m in _imports(p)
        if m.startswith(UPPER)
    ]
    assert not upward, upward
