"""docs/internals.md stays true: every `lockgate.…` dotted name it shows in code spans is
importable (a module, or an attribute reached from one), so a renamed or removed module or
function fails here instead of misleading the next reader."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "internals.md"
# a dotted name opening a code span: `lockgate.x.y`, `lockgate.x.y(args) -> …`
NAME = re.compile(r"`(lockgate(?:\.[A-Za-z_]\w*)+)")
FILES = {"yaml"}  # `lockgate.yaml` is the project file, not a module


def doc_names() -> list[str]:
    names = {m.group(1) for m in NAME.finditer(DOC.read_text(encoding="utf-8"))}
    return sorted(n for n in names if n.rsplit(".", 1)[-1] not in FILES)


def resolve(name: str) -> object:
    """The object ``name`` names: the longest importable module prefix, then attributes."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)  # AttributeError: the doc names something that is gone
        return obj
    raise ModuleNotFoundError(name)


def test_the_doc_names_lockgate_paths() -> None:
    names = doc_names()
    assert "lockgate.api" in names and "lockgate.state.StateStore.open" in names
    assert not [n for n in names if n.startswith("lockgate.run.")], "lockgate.run is a function"


@pytest.mark.parametrize("name", doc_names())
def test_every_dotted_name_in_internals_md_is_importable(name: str) -> None:
    resolve(name)
