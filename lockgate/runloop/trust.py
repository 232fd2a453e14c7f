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

from lockgate.runloop.context import StepContext
from lockgate.state.records import StepInfo
from lockgate.storage.base import QUARANTINE_SUFFIX, TableHealth
from lockgate.storage.health import TableDamaged, repair_hint

_PUBLISHED = ("success", "noop")


def verify_published(ctx: StepContext, name: str, *, repair: bool | None = None) -> None:
    """Raise :class:`TableDamaged` when dataset ``name``'s tables are damaged or disagree
    with the state store. ``repair`` (default: the run's ``--full-refresh``) moves an
    unreadable table aside instead, so the step rebuilds it."""
    repair = ctx.full_refresh if repair is None else repair
    seen = ctx.verified  # checked in this run
    for up in ctx.project.deps.get(name, ()):  # read, never repaired, by this dataset
        if up in seen:
            continue
        try:
            ctx.store.inspect(up)
        except TableDamaged as e:
            raise TableDamaged(
                f"dataset '{name}' reads '{up}', which cannot be trusted: {e.message}",
                hint=e.hint,
            ) from e
        seen.add(up)
    # the state store first, then the tables: a step records only after its commit, so a
    # run committing and recording meanwhile (a backfill's concurrent chunks) can make the
    # tables newer than what was read here, never older
    steps = None
    if not repair and ctx.project_id is not None:
        steps = ctx.state.dataset_steps(ctx.project.name, name, limit=50, project_id=ctx.project_id)
    health: dict[str, TableHealth | None] = {}
    for table in (name, name + QUARANTINE_SUFFIX):
        if ctx.turn is not None:  # other runs of this process commit to it: no cached view
            ctx.store.forget(table)
        try:
            health[table] = ctx.store.inspect(table)
        except TableDamaged as e:
            if not repair:
                raise
            if e.unreadable:
                ctx.store.move_aside(table)
            health[table] = None  # missing data files: the rebuild overwrites the table
    if steps is not None:
        _agree_with_state(name, steps, health)
    seen.add(name)  # what this step publishes next is its own, fresh work


def _agree_with_state(
    name: str, steps: list[StepInfo], health: dict[str, TableHealth | None]
) -> None:
    out = next((s for s in steps if s.status in _PUBLISHED and s.output_version is not None), None)
    if out is not None and out.output_version is not None:
        wrote = out.status == "success" and bool(out.rows_out)
        _compare(name, health[name], out, out.output_version, "table", wrote)
    q = next((s for s in steps if s.status == "success" and s.quarantine_version is not None), None)
    if q is not None and q.quarantine_version is not None:
        qname = name + QUARANTINE_SUFFIX
        _compare(qname, health[qname], q, q.quarantine_version, "quarantine table", True)


def _compare(
    table: str, current: TableHealth | None, step: StepInfo, version: int, what: str, wrote: bool
) -> None:
    """``wrote``: the step committed ``version`` itself (not a no-op or an empty batch)."""
    when = f"{step.finished_at or step.started_at:%Y-%m-%d %H:%M:%S} UTC"
    said = f"the state store says run {step.run_id[:12]} published version {version} of {what} "
    said += f"'{table}' ({when})"
    problem: str | None = None
    if current is None:
        problem = "but the warehouse has no such table (it was deleted)"
    elif current.version < version:
        problem = (
            f"but the table is at version {current.version}: commits were lost (a deleted or "
            "damaged _delta_log file)"
        )
    elif current.version == version and wrote:
        # the step's own commit is the newest: it must carry the step's run id
        newest = current.newest_run_id()
        if newest is not None and newest != step.run_id:
            problem = (
                f"but version {version} of the table was written by run {newest[:12]}: its "
                "history was rewritten (a deleted or replaced _delta_log file)"
            )
    if problem is None:
        return
    raise TableDamaged(
        f"{said}, {problem}; the rows of the lost commits would be silently missing",
        hint=repair_hint(table),
    )
