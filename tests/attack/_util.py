"""Shared helpers for the black-box attack tests (issue 6): build projects, run them, read
back what was published and quarantined, and assert the accounting invariant."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import lockgate
from lockgate.runloop.results import RunResult, StepResult
from lockgate.storage import DeltaStore
from tests.cli.helpers import cli
from tests.run.helpers import csv_source, make_project, sql

__all__ = [
    "assert_invariant",
    "build",
    "cli",
    "csv_source",
    "norm",
    "published",
    "quarantined",
    "run",
    "sql",
    "write_files",
]

SKIP_KEYS = ("rows_in", "rows_out", "rows_quarantined", "rows_skipped", "skip_reasons")


def write_files(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            p.write_bytes(data)
        else:
            p.write_bytes(data.encode("utf-8"))


def build(
    root: Path,
    datasets: list[dict[str, Any]],
    files: dict[str, str | bytes] | None = None,
    config: dict[str, Any] | None = None,
) -> Path:
    """A project; ``files`` are written verbatim (bytes or UTF-8 text, never dedented)."""
    make_project(root, datasets, config=config)
    write_files(root, files or {})
    return root


def run(root: Path, **kw: Any) -> RunResult:
    return lockgate.run(root, **kw)


def published(root: Path, name: str) -> list[dict[str, Any]]:
    store = DeltaStore(root / "warehouse")
    if not store.exists(name):
        return []
    return store.read(name).to_pylist()


def quarantined(root: Path, name: str) -> list[dict[str, Any]]:
    return published(root, f"{name}__quarantine")


def describe(step: StepResult) -> str:
    d = step.to_dict()
    keep = ("dataset", "status", "reason", *SKIP_KEYS, "warnings", "error")
    return json.dumps({k: d.get(k) for k in keep}, default=str)


def assert_invariant(step: StepResult, *, rows_in: int | None = None) -> None:
    """rows_in == rows_out + rows_quarantined + rows_skipped, skipped only with named reasons,
    and (when given) rows_in equals the number of records actually in the input."""
    skipped = getattr(step, "rows_skipped", None)
    reasons = getattr(step, "skip_reasons", None)
    assert skipped is not None and reasons is not None, (
        "StepResult has no rows_skipped / skip_reasons: issue 6 requires every step to report "
        f"named skips so the row accounting can be checked; got {describe(step)}"
    )
    assert isinstance(reasons, dict) and all(
        isinstance(k, str) and k and isinstance(v, int) and v > 0 for k, v in reasons.items()
    ), f"skip_reasons must map a named reason to a positive count: {describe(step)}"
    assert sum(reasons.values()) == skipped, (
        f"rows_skipped {skipped} != sum of skip_reasons {reasons}: an unnamed skip "
        f"({describe(step)})"
    )
    assert step.rows_in == step.rows_out + step.rows_quarantined + skipped, (
        "rows vanished or were invented: rows_in != rows_out + rows_quarantined + "
        f"rows_skipped ({describe(step)})"
    )
    if rows_in is not None:
        assert step.rows_in == rows_in, (
            f"rows_in should count every record read ({rows_in}), got {step.rows_in}: "
            f"records were dropped before counting ({describe(step)})"
        )


def norm(v: Any) -> Any:
    """A published nested value as plain Python: JSON text parsed, structs as dicts."""
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    if isinstance(v, list):
        return [norm(x) for x in v]
    return v


def reasons_of(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Every reason-ish text of quarantine rows (``_lg_reason``, ``_lg_failed_checks``...)."""
    out = []
    for r in rows:
        parts = []
        for k, v in r.items():
            if k.startswith("_lg_") and k not in ("_lg_run_id", "_lg_quarantined_at"):
                parts.append(json.dumps(v, default=str) if not isinstance(v, str) else v)
        out.append(" ".join(parts))
    return out
