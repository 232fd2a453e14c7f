"""Published tables as relations of the step's engine session: a table version (the step's
inputs, the table it adds to, its quarantine, the datasets its checks refer to)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlglot import exp

from lockgate.runloop.context import StepContext
from lockgate.sql import table_ref
from lockgate.storage.scan import scan_select

if TYPE_CHECKING:
    from lockgate.quality.checks import BaseCheck


def register_table(ctx: StepContext, rel: str, dataset: str, version: int | None) -> list[str]:
    """Expose a published table version to DuckDB as ``rel``; returns its column names.

    Plain tables are scanned by DuckDB's own Parquet reader over the version's files (lower
    memory, parallel); others through a pyarrow dataset (see lockgate.storage.scan)."""
    ses = ctx.session
    pinned = ctx.store.scan(dataset, version)
    scan = scan_select(pinned)
    ses.unregister(rel)
    if scan is not None:
        ses.execute(exp.Create(this=table_ref(rel), kind="VIEW", expression=scan, replace=True))
        return list(pinned.columns)
    ses.execute(exp.Drop(tables=[table_ref(rel)], kind="VIEW", exists=True))
    ses.register_arrow(rel, pinned.dataset)
    return list(pinned.columns)


def register_columns(ctx: StepContext, rel: str, dataset: str) -> dict[str, str]:
    """:func:`register_table` at the current version; returns column name → type."""
    register_table(ctx, rel, dataset, None)
    return ctx.session.columns(rel)


def register_references(ctx: StepContext, checks: Sequence[BaseCheck]) -> dict[str, str]:
    """The published datasets checks compare with (``to:``), as relations: dataset → name."""
    refs: dict[str, str] = {}
    for c in checks:
        target = getattr(c, "to", None)
        if not isinstance(target, str) or target in refs:
            continue
        if ctx.store.exists(target):
            rel = f"__lg_ref_{target}"
            register_table(ctx, rel, target, None)
            refs[target] = rel
    return refs
