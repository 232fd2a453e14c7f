"""Running change sources until their log is read (``lockgate run``) or for ever
(``lockgate run --follow``).

A change source reads one bounded micro-batch per step (``max_changes``, whole
transactions); a step that stopped before the end of the log says so
(:attr:`StepResult.more_available`). ``drain`` runs the selection again — a new run, so each
batch is its own commit with its own run id — while any step has more, then stops; with
``follow`` it keeps going, waiting ``max_latency`` whenever nothing was left to read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from lockgate.runloop.results import RunResult

log = logging.getLogger(__name__)

#: runs in a row a drain makes before it stops with more still waiting (a safety bound)
MAX_RUNS = 10_000


def drain(
    run_once: Callable[[bool], RunResult],
    *,
    full_refresh: bool = False,
    follow: bool = False,
    wait_seconds: float = 1.0,
    stop: threading.Event | None = None,
    on_run: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Call ``run_once(full_refresh)`` until no step has more to read (``follow``: until
    ``stop`` is set). Only the first run is a full refresh. Returns every run's result."""
    results: list[RunResult] = []
    stop = stop or threading.Event()
    refresh = full_refresh
    for _ in range(MAX_RUNS):
        result = run_once(refresh)
        refresh = False
        results.append(result)
        if on_run is not None:
            on_run(result)
        more = any(s.more_available for s in result.steps) and result.ok
        if more:
            continue
        if not follow or stop.wait(wait_seconds):
            break
    return results
