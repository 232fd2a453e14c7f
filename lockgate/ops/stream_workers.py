"""The project's streams under ``lockgate serve``: one thread each, restarted with backoff
after an error (the error is recorded as a failed run and shown in ``/healthz``), stopped
between batches when the server stops."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lockgate.ops.metrics import RunMetrics

if TYPE_CHECKING:
    from lockgate.project import Project
    from lockgate.streams.record import StreamMetrics
    from lockgate.streams.report import BatchDone

log = logging.getLogger(__name__)

_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


@dataclass
class _Status:
    batches: int = 0
    events: int = 0
    restarts: int = 0
    last_error: str | None = None
    running: bool = False


@dataclass
class StreamWorkers:
    project: Project
    metrics: RunMetrics
    status: dict[str, _Status] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _stream_metrics: StreamMetrics | None = None
    #: called after every committed batch of any stream (tests, progress)
    listeners: list[Callable[[str, BatchDone], None]] = field(default_factory=list)

    def names(self) -> list[str]:
        return sorted(n for n, s in self.project.streams.items() if s.serve)

    def start(self) -> None:
        if not self.names():
            return
        from lockgate.streams.record import StreamMetrics

        self._stream_metrics = StreamMetrics(self.metrics.registry)
        for name in self.names():
            self.status[name] = _Status()
            t = threading.Thread(target=self._loop, args=(name,), name=f"lockgate-stream-{name}")
            t.start()
            self._threads.append(t)

    def _loop(self, name: str) -> None:
        from lockgate.errors import LockgateError
        from lockgate.streams.service import run_stream

        st = self.status[name]

        def seen(b: BatchDone) -> None:
            st.batches += 1
            st.events += b.counts.read
            st.last_error = None
            for listen in self.listeners:
                listen(name, b)

        failures = 0
        while not self._stop.is_set():
            st.running = True
            try:
                run_stream(
                    self.project, name, stop=self._stop, metrics=self._stream_metrics, on_batch=seen
                )
                failures = 0
            except LockgateError as e:
                st.last_error, failures = e.message, failures + 1
                log.error("stream %s: %s", name, e.message)
            except Exception as e:  # a broker or bug error must not end the server
                st.last_error, failures = f"{type(e).__name__}: {e}", failures + 1
                log.exception("stream %s failed", name)
            finally:
                st.running = False
            if failures:
                st.restarts += 1
                self._stop.wait(_BACKOFF_S[min(failures, len(_BACKOFF_S)) - 1])

    def stop(self) -> None:
        """Stop every stream after its current batch and wait for them."""
        self._stop.set()
        for t in self._threads:
            t.join()
        self._threads.clear()

    def health(self) -> dict[str, dict[str, object]]:
        return {
            n: {
                "running": s.running,
                "batches": s.batches,
                "events": s.events,
                "restarts": s.restarts,
                "last_error": s.last_error,
            }
            for n, s in self.status.items()
        }
