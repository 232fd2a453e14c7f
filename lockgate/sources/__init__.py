"""Extract: sources stage their data into a DuckDB table (+ ``<table>__rejects``).

>>> from lockgate.sources import registered_types
>>> registered_types()
['file']
"""

from __future__ import annotations

from lockgate.sources import files as _files  # noqa: F401  (registers type: file)
from lockgate.sources.base import (
    REJECT_COLUMNS,
    REJECTS_SUFFIX,
    Source,
    StagedSource,
    fingerprint,
    register_source,
    registered_types,
    source_for,
    stage_source,
)

__all__ = [
    "REJECTS_SUFFIX",
    "REJECT_COLUMNS",
    "Source",
    "StagedSource",
    "fingerprint",
    "register_source",
    "registered_types",
    "source_for",
    "stage_source",
]
