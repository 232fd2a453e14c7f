"""Columns of the tables already published in the warehouse (schemas the project does not
declare, e.g. a source whose columns are inferred from its files)."""

from __future__ import annotations

from lockgate.project import Project
from lockgate.storage import DeltaStore


def published_columns(project: Project) -> dict[str, tuple[str, ...]]:
    """Dataset → its table's columns, for every dataset with a table (lockgate's own
    ``_lg_*`` bookkeeping columns left out)."""
    store = DeltaStore(project.warehouse_path)
    out: dict[str, tuple[str, ...]] = {}
    for name in project.datasets:
        try:
            schema = store.schema(name)
        except Exception:  # a damaged table: lineage falls back to what the project says
            continue
        if schema is not None:
            out[name] = tuple(n for n in schema.names if not n.startswith("_lg_"))
    return out
