"""Package attributes imported on first use (PEP 562).

A package ``__init__`` that re-exports its public names eagerly makes every import of any
submodule pay for all of them: ``import lockgate.errors`` used to import pyarrow, DuckDB,
sqlglot and SQLAlchemy. :func:`lazy_exports` keeps the names public and the import cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def exports(**modules: Iterable[str]) -> dict[str, str]:
    """``exports(**{"lockgate.api": ["run", "read"]})`` → ``{"run": "lockgate.api", ...}``."""
    return {name: module for module, names in modules.items() for name in names}


def lazy_exports(
    namespace: dict[str, Any], names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose ``names`` (name → module) are
    imported the first time they are read, then cached in ``namespace``."""
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *names})

    return __getattr__, __dir__
