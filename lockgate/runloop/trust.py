"""The warehouse is the truth; the state store only remembers. Before a dataset runs, make
sure the two agree about what was published, and fail *that dataset* (clearly, with the
repair command) when they do not — instead of trusting the state store's file lists and
silently leaving out rows that the table no longer has.

Checked: the dataset's table and its quarantine (and the tables it reads) can be read and
hold every data file of their current version; the newest step the state store recorded as
published (under this warehouse's identity) names a version the table still has, written by
that run. A full refresh rebuilds from the inputs, so it skips the comparison and moves an
unreadable table aside first (the repair path).
"""

from __future__ import annotations

from typing import Any

from lockgate.storage.delta import QUARANTINE_SUFFIX
from lockgate.storage.health import TableDamaged, inspect_table, move_aside, repair_hint

_PUBLISHED = ("success", "noop")


def verify_published(ctx: Any, name: str, *, repair: bool | None = None) -> None:
    """Raise :class:`TableDamaged` when dataset ``name``'s tables are damaged or disagree
    with the state store. ``repair`` (default: the run's ``--full-refresh``) moves an
    unreadable table aside instead, so the step rebuilds it."""
    repair = ctx.full_refresh if repair is None else repair
    for up in ctx.project.deps.get(name, ()):  # read, never repaired, by this dataset
        try:
            inspect_table(ctx.store, up)
        except TableDamaged as e:
            raise TableDamaged(
                f"dataset '{name}' reads '{up}', which cannot be trusted: {e.message}",
                hint=e.hint,
            ) from e
    versions: dict[str, int | None] = {}
    for table in (name, name + QUARANTINE_SUFFIX):
        try:
            versions[table] = inspect_table(ctx.store, table)
        except TableDamaged as e:
            if not repair:
                raise
            if e.unreadable:
                move_aside(ctx.store, table)
            versions[table] = None  # missing data files: the rebuild overwrites the table
    project_id = getattr(ctx, "project_id", None)
    if repair or project_id is None:
        return
    steps = ctx.state.dataset_steps(ctx.project.config.name, name, limit=50, project_id=project_id)
    out = next((s for s in steps if s.status in _PUBLISHED and s.output_version is not None), None)
    if out is not None:
        _compare(ctx, name, versions[name], out, out.output_version, "table")
    q = next((s for s in steps if s.status == "success" and s.quarantine_version is not None), None)
    if q is not None:
        qname = name + QUARANTINE_SUFFIX
        _compare(ctx, qname, versions[qname], q, q.quarantine_version, "quarantine table")


def _compare(ctx: Any, table: str, current: int | None, step: Any, version: int, what: str) -> None:
    when = f"{step.finished_at or step.started_at:%Y-%m-%d %H:%M:%S} UTC"
    said = f"the state store says run {step.run_id[:12]} published version {version} of {what} "
    said += f"'{table}' ({when})"
    problem: str | None
    if current is None:
        problem = "but the warehouse has no such table (it was deleted)"
    elif current < version:
        problem = (
            f"but the table is at version {current}: commits were lost (a deleted or "
            "damaged _delta_log file)"
        )
    else:
        problem = _other_writer(ctx, table, step, version)
    if problem is None:
        return
    raise TableDamaged(
        f"{said}, {problem}; the rows of the lost commits would be silently missing",
        hint=repair_hint(table),
    )


def _other_writer(ctx: Any, table: str, step: Any, version: int) -> str | None:
    """The commit at ``version`` must be the step's own when the step wrote rows."""
    if step.status != "success" or not (step.rows_out or step.rows_quarantined):
        return None
    last = ctx.store.last_commit(table)
    if last is None or last.version != version or last.run_id == step.run_id:
        return None
    return (
        f"but version {version} of the table was written by run {last.run_id[:12]}: "
        "its history was rewritten (a deleted or replaced _delta_log file)"
    )
