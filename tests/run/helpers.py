"""Build small projects in a temp folder for run-loop tests."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import yaml


def make_project(
    root: Path,
    datasets: list[dict[str, Any]],
    files: dict[str, str] | None = None,
    config: dict[str, Any] | None = None,
) -> Path:
    """Write lockgate.yaml, datasets/main.yaml and extra files (path → text)."""
    root.mkdir(parents=True, exist_ok=True)
    cfg = {"name": "t_" + root.name.replace("-", "_")[:40], **(config or {})}
    (root / "lockgate.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (root / "datasets").mkdir(exist_ok=True)
    (root / "datasets" / "main.yaml").write_text(
        yaml.safe_dump({"datasets": datasets}, sort_keys=False)
    )
    for rel, text in (files or {}).items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def csv_source(name: str, path: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "source": {"type": "file", "path": path}, **extra}


def sql(name: str, query: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "transform": {"sql": query}, **extra}
