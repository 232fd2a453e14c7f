"""Backfills: a partitioned dataset's missing intervals in a window, oldest first, in chunks.

:func:`plan_backfill` lists the missing intervals of ``[start, end)`` (``end`` defaults to
what is due now) and groups them into chunks of ``chunk`` intervals; it reads only the state
store's merged ranges, so planning five years of hours is arithmetic, not 43,800 queries.
With a selection like ``daily+`` the partitioned datasets downstream follow, each interval of
theirs in the first chunk that covers it; unpartitioned ones run once after the last chunk.

:func:`run_backfill` runs each chunk as one run (its own run record, one commit per table)
under ONE hold of the project lock. Up to ``max_active`` chunks are in flight at once; their
commits to a table happen in chunk order (a table's application transaction only moves
forward). Each chunk's intervals become done when its run records them, so a backfill killed
at any point — even ``kill -9`` between a commit and its record — resumes with the next run
of the same command: done intervals are skipped, a committed but unrecorded chunk is
processed again and *replaces* its intervals (idempotent).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from lockgate.errors import UsageError
from lockgate.ops import intervals as iv
from lockgate.runloop.events import Listener
from lockgate.runloop.results import RunResult

if TYPE_CHECKING:
    from lockgate.state.store import StateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Chunk:
    """One run of a backfill: the intervals of each partitioned dataset it processes."""

    index: int
    intervals: dict[str, list[iv.Interval]]

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.intervals.values())

    def span(self, dataset: str) -> tuple[int, int]:
        items = self.intervals[dataset]
        return items[0][0], items[-1][1]


@dataclass(frozen=True)
class BackfillPlan:
    """What a backfill will run: chunks in order, then the unpartitioned datasets."""

    dataset: str
    grain: str
    start: int
    end: int
    partitioned: tuple[str, ...]  # the datasets the chunks run (dependency order)
    after: tuple[str, ...]  # unpartitioned downstream datasets: one run after the chunks
    chunks: tuple[Chunk, ...]
    planning_s: float = 0.0
    #: ``--restate``: per partitioned dataset, the window (merged spans) whose done intervals
    #: are made due again before the chunks run, and how many done intervals that restates
    restate: dict[str, list[iv.Interval]] = field(default_factory=dict)
    restated: dict[str, int] = field(default_factory=dict)

    @property
    def intervals(self) -> int:
        return sum(c.count for c in self.chunks)

    def to_dict(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "grain": self.grain,
            "start": iv.to_datetime(self.start).isoformat(),
            "end": iv.to_datetime(self.end).isoformat(),
            "datasets": list(self.partitioned),
            "after": list(self.after),
            "intervals": self.intervals,
            "restate": bool(self.restate),
            "restated": dict(self.restated),
            "chunks": [
                {
                    "chunk": c.index + 1,
                    "intervals": {
                        d: [iv.to_datetime(lo).isoformat() for lo, _ in items]
                        for d, items in c.intervals.items()
                    },
                }
                for c in self.chunks
            ],
        }


def plan_backfill(
    project: object,
    selection: str,
    *,
    start: str | None = None,
    end: str | None = None,
    chunk: int = 1,
    now: datetime | None = None,
    restate: bool = False,
) -> BackfillPlan:
    """The missing intervals of ``selection``'s dataset (``NAME`` or ``NAME+``) in
    ``[start, end)``, in chunks of ``chunk`` intervals (ConfigError / UsageError when the
    dataset is not partitioned or the window is invalid).

    ``restate``: every interval of the window runs again, done or not (SQLMesh's
    restatement) — and with ``NAME+`` every interval of a partitioned downstream dataset
    that overlaps it (the month of a restated day). The window must have a ``start``."""
    from datetime import UTC

    from lockgate.project import Project
    from lockgate.runloop.due import effective_done
    from lockgate.runloop.runner import open_backends

    assert isinstance(project, Project)
    t0 = time.perf_counter()
    if chunk < 1:
        raise UsageError(f"--chunk must be at least 1 (got {chunk})")
    name = selection.rstrip("+").lstrip("+")
    names = project.select([selection])
    spec = project.datasets[name].partition
    if spec is None:
        raise UsageError(
            f"dataset '{name}' is not partitioned: a backfill fills missing time intervals",
            hint=f"add partition: {{column, grain, start}} to '{name}', or use "
            f"`lockgate run --select {name} --full-refresh`",
        )
    clock = now or datetime.now(UTC)
    due = iv.due_end(iv.epoch(clock), spec.grain, spec.lag_seconds)
    t_start, t_end = _when("--start", start), _when("--end", end)
    lo = (
        spec.start_epoch
        if t_start is None
        else max(spec.start_epoch, iv.floor(t_start, spec.grain))
    )
    hi = due if t_end is None else min(due, iv.ceil(t_end, spec.grain))
    if t_start is not None and t_end is not None and t_end <= t_start:
        raise UsageError(f"--end ({end}) must be after --start ({start})")
    if restate and not start:
        raise UsageError(
            "--restate needs --start: the first interval to run again",
            hint=f"lockgate backfill {selection} --restate --start 2024-01-01 --end 2024-02-01 "
            "(--dry-run lists them); to rebuild everything use "
            f"`lockgate run --select {name} --full-refresh`",
        )
    partitioned = [n for n in names if project.datasets[n].partition is not None]
    after = [n for n in names if project.datasets[n].partition is None]
    state, _ = open_backends(project)
    try:
        missing: dict[str, list[iv.Interval]] = {}
        windows: dict[str, list[iv.Interval]] = {}
        restated: dict[str, int] = {}
        for n in partitioned:
            p = project.datasets[n].partition
            assert p is not None
            done = effective_done(state, project, project.datasets[n])
            n_due = iv.due_end(iv.epoch(clock), p.grain, p.lag_seconds)
            n_lo = max(p.start_epoch, iv.floor(lo, p.grain))
            n_hi = min(hi if n == name else iv.ceil(hi, p.grain), n_due)
            if restate and n_hi > n_lo:
                windows[n] = [(n_lo, n_hi)]
                restated[n] = len(
                    iv.missing(n_lo, n_hi, p.grain, iv.subtract([(n_lo, n_hi)], done))
                )
                done = iv.subtract(done, windows[n])
            missing[n] = iv.missing(n_lo, n_hi, p.grain, done)
    finally:
        state.close()
    chunks = _chunks(name, missing, chunk)
    return BackfillPlan(
        dataset=name,
        grain=spec.grain,
        start=lo,
        end=max(lo, hi),
        partitioned=tuple(partitioned),
        after=tuple(after),
        chunks=tuple(chunks),
        planning_s=time.perf_counter() - t0,
        restate=windows,
        restated=restated,
    )


def _when(option: str, text: str | None) -> int | None:
    """``--start``/``--end`` as epoch seconds; a bad date is the user's error, not a crash."""
    if not text:
        return None
    try:
        return iv.parse_time(text)
    except ValueError as e:
        raise UsageError(f"{option}: {e}") from None


def _chunks(name: str, missing: dict[str, list[iv.Interval]], size: int) -> list[Chunk]:
    """Chunks of the main dataset's intervals; every other dataset's interval goes to the
    first chunk whose end reaches its end (a month downstream of days: the chunk with its
    last day), or to the last chunk."""
    groups = iv.chunks(missing.get(name, []), size)
    out = [Chunk(i, {name: g}) for i, g in enumerate(groups)]
    for other, items in missing.items():
        if other == name or not items:
            continue
        if not out:
            out = [Chunk(0, {})]
        j = 0
        for lo, hi in items:
            while j < len(out) - 1 and (name not in out[j].intervals or out[j].span(name)[1] < hi):
                j += 1
            out[j].intervals.setdefault(other, []).append((lo, hi))
    return out


class ChunkOrder:
    """Turns shared by a backfill's chunks: chunk ``k`` passes a turn (start a run, commit
    to table X) after every chunk before it has released that turn."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._released: dict[str, set[int]] = {}
        self._next: dict[str, int] = {}

    def turn(self, index: int) -> ChunkTurn:
        return ChunkTurn(self, index)

    def wait(self, key: str, index: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._next.get(key, 0) >= index)

    def release(self, key: str, index: int) -> None:
        with self._cond:
            done = self._released.setdefault(key, set())
            done.add(index)
            n = self._next.get(key, 0)
            while n in done:
                n += 1
            self._next[key] = n
            self._cond.notify_all()


@dataclass
class ChunkTurn:
    order: ChunkOrder
    index: int
    keys: set[str] = field(default_factory=set)

    def wait(self, dataset: str) -> None:
        self.keys.add(dataset)
        self.order.wait(dataset, self.index)

    def release(self, dataset: str) -> None:
        self.keys.add(dataset)
        self.order.release(dataset, self.index)

    def release_all(self, keys: Sequence[str]) -> None:
        for k in {*keys, *self.keys}:
            self.order.release(k, self.index)


@dataclass
class BackfillResult:
    plan: BackfillPlan
    runs: list[RunResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.runs)

    def to_dict(self) -> dict[str, object]:
        return {
            "dataset": self.plan.dataset,
            "intervals": self.plan.intervals,
            "chunks": len(self.plan.chunks),
            "seconds": round(self.seconds, 3),
            "ok": self.ok,
            "runs": [
                {
                    "run_id": r.run_id,
                    "status": str(r.status),
                    "steps": [
                        {
                            "dataset": s.dataset,
                            "status": str(s.status),
                            "rows_out": s.rows_out,
                            "rows_quarantined": s.rows_quarantined,
                            "rows_skipped": s.rows_skipped,
                            "intervals": s.intervals,
                        }
                        for s in r.steps
                    ],
                }
                for r in self.runs
            ],
        }


ChunkDone = Callable[[Chunk, RunResult], None]


def _restate(state: StateStore, project: str, plan: BackfillPlan) -> None:
    """Under the lock, before any chunk: the restated windows are due again. A restatement
    killed half-way leaves the rest due (the next run or backfill processes it); an interval
    the gate now blocks keeps its old rows and stays due."""
    from lockgate.state.intervals import remove_done

    for dataset, window in plan.restate.items():
        kept = remove_done(state, project, dataset, window)
        log.info("restate %s: %s due again (%d done range(s) kept)", dataset, window, kept)


def run_backfill(
    project: object,
    plan: BackfillPlan,
    *,
    max_active: int = 1,
    now: datetime | None = None,
    on_chunk: ChunkDone | None = None,
    listeners: Sequence[Listener] = (),
) -> BackfillResult:
    """Run ``plan``'s chunks (at most ``max_active`` at once, commits in chunk order), then
    the unpartitioned downstream datasets; ``on_chunk`` hears of each finished chunk."""
    from lockgate.engine.session import clean_stale_work
    from lockgate.project import Project
    from lockgate.runloop.plan import plan as make_plan
    from lockgate.runloop.runner import execute, open_backends

    assert isinstance(project, Project)
    if max_active < 1:
        raise UsageError(f"--max-active must be at least 1 (got {max_active})")
    t0 = time.perf_counter()
    result = BackfillResult(plan)
    if not plan.chunks and not plan.after:
        return result
    state, _ = open_backends(project)
    order = ChunkOrder()
    try:
        with state.lock(project.config.name) as lease:
            clean_stale_work(project.work_dir / "work")
            _restate(state, project.config.name, plan)
            chunk_plan = make_plan(project, select=list(plan.partitioned), now=now)
            keys = [*plan.partitioned, "__start__"]

            def one(c: Chunk) -> RunResult:
                turn = order.turn(c.index)
                try:
                    return execute(
                        chunk_plan,
                        max_workers=1,
                        listeners=listeners,
                        lease=lease,
                        turn=turn,
                        # every partitioned dataset named: one with none in this chunk
                        # does nothing (unnamed, it would process all its due intervals)
                        intervals={n: c.intervals.get(n, []) for n in plan.partitioned},
                        args={"backfill": plan.dataset, "chunk": c.index + 1},
                    )
                finally:
                    turn.release_all(keys)

            with ThreadPoolExecutor(max_active, thread_name_prefix="lg-backfill") as pool:
                futures: list[tuple[Chunk, Future[RunResult]]] = [
                    (c, pool.submit(one, c)) for c in plan.chunks
                ]
                for c, fut in futures:  # in order: the progress bar advances chunk by chunk
                    r = fut.result()
                    result.runs.append(r)
                    if on_chunk is not None:
                        on_chunk(c, r)
            if plan.after:
                after_plan = make_plan(project, select=list(plan.after), now=now)
                args = {"backfill": plan.dataset}
                done = execute(after_plan, lease=lease, args=args, listeners=listeners)
                result.runs.append(done)
    finally:
        state.close()
    result.seconds = time.perf_counter() - t0
    return result
