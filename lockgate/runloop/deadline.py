"""A step's ``timeout:``: past it, the step's running query is interrupted and the step
fails with :class:`StepTimeout` (terminal: the same batch would time out again).

A step that finishes despite the timer (the query ended as it fired) keeps its result:
only an error raised after the deadline becomes a timeout."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from lockgate.errors import TerminalError

if TYPE_CHECKING:
    from lockgate.engine.base import Engine


class StepTimeout(TerminalError):
    """A step ran longer than its ``timeout:``."""


@contextmanager
def deadline(session: Engine | None, seconds: float | None, dataset: str) -> Iterator[None]:
    """Interrupt ``session``'s query after ``seconds`` (None: no limit)."""
    if seconds is None or session is None:
        yield
        return
    fired = threading.Event()

    def expire() -> None:
        fired.set()
        session.interrupt()

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    except Exception as e:
        if fired.is_set():
            raise StepTimeout(
                f"dataset '{dataset}': step timed out after {seconds:g}s (query interrupted)",
                hint=f"raise `timeout:` of '{dataset}', or make its query cheaper",
            ) from e
        raise
    finally:
        timer.cancel()
