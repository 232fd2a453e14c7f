from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

LOCKGATE_YAML = "name: demo\n"

ProjectFactory = Callable[..., Path]


@pytest.fixture
def make_project(tmp_path: Path) -> ProjectFactory:
    """Write a project: ``make_project({"datasets/a.yaml": "..."})`` (texts are dedented)."""

    def make(files: dict[str, str], *, config: str | None = LOCKGATE_YAML) -> Path:
        root = tmp_path / "proj"
        root.mkdir(exist_ok=True)
        if config is not None:
            (root / "lockgate.yaml").write_text(config)
        (root / "datasets").mkdir(exist_ok=True)
        for rel, text in files.items():
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(textwrap.dedent(text).lstrip("\n"))
        return root

    return make
