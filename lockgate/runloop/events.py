"""Typed run events and the listeners that receive them.

The run loop says what happens as it happens — a run or step starts or ends, a check is
evaluated, a batch is published, rows are quarantined, a gate blocks, schema drifts — by
emitting one of the frozen events below to every listener of the run. The progress bar is one
listener; metrics, alerts, OpenLineage and the dashboard are others. A listener that raises
is logged and dropped from that run: observing a run never changes its outcome.

>>> seen = []
>>> bus = EventBus([seen.append])
>>> bus.emit(StepStarted(run_id="r1", dataset="orders"))
>>> [type(e).__name__ for e in seen]
['StepStarted']
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lockgate.runloop.results import StepResult

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class RunEvent:
    """Base of every event: which run, and when (UTC)."""

    run_id: str
    at: datetime = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class RunStarted(RunEvent):
    project: str
    datasets: Sequence[str]


@dataclass(frozen=True, kw_only=True)
class RunFinished(RunEvent):
    project: str
    status: str  # lockgate.runloop.results.RunStatus value
    duration_s: float


@dataclass(frozen=True, kw_only=True)
class StepStarted(RunEvent):
    dataset: str


@dataclass(frozen=True, kw_only=True)
class StepPhase(RunEvent):
    """A step entered one of its stages (resolve, stage, contract, audit, gate, publish)."""

    dataset: str
    phase: str


@dataclass(frozen=True, kw_only=True)
class CheckEvaluated(RunEvent):
    dataset: str
    check: str
    status: str  # pass / fail / warn / error
    severity: str
    observed: object = None
    failing_rows: int | None = None


@dataclass(frozen=True, kw_only=True)
class SchemaDrifted(RunEvent):
    dataset: str
    drift: Mapping[str, object]


@dataclass(frozen=True, kw_only=True)
class Quarantined(RunEvent):
    dataset: str
    rows: int
    version: int | None


@dataclass(frozen=True, kw_only=True)
class Published(RunEvent):
    dataset: str
    version: int | None
    rows: int
    batch_id: str | None


@dataclass(frozen=True, kw_only=True)
class GateBlockedEvent(RunEvent):
    dataset: str
    reason: str
    #: a partitioned dataset: the interval the gate blocked (the others may have published)
    interval: str | None = None


@dataclass(frozen=True, kw_only=True)
class StepFinished(RunEvent):
    """The step's outcome; ``result`` is its :class:`~lockgate.runloop.results.StepResult`."""

    dataset: str
    status: str
    result: StepResult


#: a listener is any callable taking an event (a class with ``__call__`` works too)
Listener = Callable[[RunEvent], None]


class EventBus:
    """Delivers each event to every listener, in order; isolates listener failures.

    Thread-safe: steps running at once emit from their threads, and listener calls are
    serialised (a listener never runs twice at the same time)."""

    def __init__(self, listeners: Iterable[Listener] = ()) -> None:
        self._listeners: list[Listener] = list(listeners)
        self._lock = threading.RLock()  # re-entrant: a listener may emit

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def emit(self, event: RunEvent) -> None:
        with self._lock:
            self._deliver(event)

    def _deliver(self, event: RunEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.warning(
                    "event listener %r failed on %s; it receives no more events of this run",
                    listener,
                    type(event).__name__,
                    exc_info=True,
                )
                self._listeners.remove(listener)


_events_log = logging.getLogger("lockgate.events")


def log_event(e: RunEvent) -> None:
    """Each event as one INFO record of logger ``lockgate.events`` whose ``lockgate`` attribute
    holds its fields (run id, dataset, phase, status, duration, rows): ``--log-format json``
    prints them as JSON lines. Costs one level check when INFO is off."""
    if not _events_log.isEnabledFor(logging.INFO):
        return
    fields: dict[str, object] = {"event": type(e).__name__, "run_id": e.run_id}
    for name in ("project", "dataset", "phase", "status", "check", "reason", "version"):
        value = getattr(e, name, None)
        if value is not None:
            fields[name] = value
    if isinstance(e, RunFinished):
        fields["duration_s"] = round(e.duration_s, 4)
    if isinstance(e, StepFinished):
        r = e.result
        fields.update(
            duration_s=round(r.duration_s, 4),
            rows_in=r.rows_in,
            rows_out=r.rows_out,
            rows_quarantined=r.rows_quarantined,
            rows_skipped=r.rows_skipped,
            **{k: v for k, v in r.cost.items()},
        )
    _events_log.info("%s", fields["event"], extra={"lockgate": fields})
