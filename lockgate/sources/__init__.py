"""Extract: sources stage their data into an engine table (+ ``<table>__rejects``).

>>> from lockgate.sources import registered_types
>>> {"file", "postgres"} <= set(registered_types())
True
"""

from __future__ import annotations

from lockgate.sources.base import (
    REJECT_COLUMNS,
    REJECTS_SUFFIX,
    IncrementalRequest,
    ResumeToken,
    Source,
    SourceConfig,
    SourceRequest,
    StagedSource,
    on_register,
    register_source,
    registered_types,
    source_class,
    source_configs,
    source_for,
)


def _import_adapters() -> None:
    """Import every public module of this package but the base and the check-target
    reader: each built-in adapter registers itself (one outside the package does the same
    with ``@register_source``)."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and info.name not in ("base", "targets"):
            importlib.import_module(f"{__name__}.{info.name}")


_import_adapters()

__all__ = [
    "REJECTS_SUFFIX",
    "REJECT_COLUMNS",
    "IncrementalRequest",
    "ResumeToken",
    "Source",
    "SourceConfig",
    "SourceRequest",
    "StagedSource",
    "on_register",
    "register_source",
    "registered_types",
    "source_class",
    "source_configs",
    "source_for",
]
