"""What a time-partitioned dataset has due: whole intervals from ``partition.start`` up to
``now - lag`` that are not done — and, of those, how many were done under an older
definition.

A done interval is recorded with the definition it was published under (the
:func:`~lockgate.runloop.stages.resolve.content_hash`: SQL/Python, source, columns, write,
checks, gate, partition column and grain). Under ``partition.on_change: restate`` (the
default) only intervals done under the *current* definition count as done, so editing the
SQL makes every earlier interval due again and the plan says so; under ``keep`` they stay
done (``lockgate backfill NAME --restate`` re-runs chosen ones). Ranges recorded before the
state store kept definitions count as current. Planning (``lockgate run --dry-run``) and
the ``due`` stage both ask :func:`due_now`, so what the plan shows is what the step runs.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from lockgate.ops import intervals as iv
from lockgate.project.models import DatasetSpec
from lockgate.runloop.ports import ProjectView
from lockgate.runloop.stages.resolve import content_hash
from lockgate.state.intervals import done_by_definition
from lockgate.state.store import StateStore


@dataclass(frozen=True)
class Due:
    """The due intervals (oldest first) and why some of them are due again."""

    intervals: list[iv.Interval] = field(default_factory=list)
    redo: int = 0  # of them: done under an older definition (on_change: restate)
    kept: int = 0  # done under an older definition and left done (on_change: keep)
    #: the definition the due intervals will be recorded under
    definition: str = ""

    def describe(self, grain: iv.Grain) -> str:
        """``3 due interval(s) from 2024-01-01 to 2024-01-03`` (and the redone / kept)."""
        items = self.intervals
        if not items:
            text = f"no due intervals ({grain}s up to now - lag are done)"
        else:
            first, last = iv.label(items[0][0], grain), iv.label(items[-1][0], grain)
            span = first if first == last else f"{first} to {last}"
            text = f"{len(items)} due interval(s) from {span}"
        if self.redo:
            text += (
                f"; {self.redo} of them done under an older definition, due again "
                "(partition.on_change: restate)"
            )
        if self.kept:
            text += (
                f"; {self.kept} interval(s) done under an older definition kept "
                "(partition.on_change: keep; `lockgate backfill NAME --restate` re-runs them)"
            )
        return text


def count_in(items: Sequence[iv.Interval], ranges: Sequence[iv.Interval]) -> int:
    """How many of ``items`` (sorted) start inside one of the merged ``ranges``.

    >>> count_in([(0, 1), (1, 2), (5, 6)], [(1, 6)])
    2
    """
    starts = [lo for lo, _ in items]
    n = 0
    for lo, hi in ranges:
        n += bisect.bisect_left(starts, hi) - bisect.bisect_left(starts, lo)
    return n


def effective_done(store: StateStore, project: ProjectView, spec: DatasetSpec) -> list[iv.Interval]:
    """The done ranges that count as done under the dataset's ``on_change`` policy."""
    assert spec.partition is not None
    by_def = done_by_definition(store, project.name, spec.name)
    return _done(by_def, spec, content_hash(project, spec))


def _done(
    by_def: dict[str | None, list[iv.Interval]], spec: DatasetSpec, current: str
) -> list[iv.Interval]:
    assert spec.partition is not None
    if spec.partition.on_change == "keep":
        return iv.merge(r for rs in by_def.values() for r in rs)
    return iv.merge([*by_def.get(current, []), *by_def.get(None, [])])


def due_now(
    store: StateStore,
    project: ProjectView,
    spec: DatasetSpec,
    now: datetime,
    *,
    window: Sequence[iv.Interval] | None = None,
    fresh: bool = False,
) -> Due:
    """The due intervals of partitioned ``spec`` at ``now``; ``window``: only these (a
    backfill's chunk); ``fresh``: nothing counts as done (a full refresh, no table yet)."""
    p = spec.partition
    assert p is not None
    current = content_hash(project, spec)
    end = iv.due_end(iv.epoch(now), p.grain, p.lag_seconds)
    by_def = {} if fresh else done_by_definition(store, project.name, spec.name)
    older = iv.merge(r for d, rs in by_def.items() if d not in (current, None) for r in rs)
    done = _done(by_def, spec, current)
    if window is None:
        todo = iv.missing(p.start_epoch, end, p.grain, done)
    else:
        todo = sorted({w for w in window if w[1] <= end and w[0] >= p.start_epoch})
        gaps = set(iv.missing(todo[0][0], todo[-1][1], p.grain, done)) if todo else set()
        todo = [w for w in todo if w in gaps]
    if p.on_change == "keep":
        kept = sum(
            len(list(iv.intervals(max(lo, p.start_epoch), min(hi, end), p.grain)))
            for lo, hi in older
        )
        return Due(todo, kept=kept, definition=current)
    return Due(todo, redo=count_in(todo, older), definition=current)
