"""A stream's health alerts: consumer lag and the dead-letter ratio of its recent batches,
against the stream's ``alerts:`` thresholds, as incidents of the project's alert targets
(``alerts:`` in lockgate.yaml): one message when a threshold is crossed, one when it clears,
whatever the number of batches in between (:class:`lockgate.ops.alerts.Alerter`).

The DLQ ratio is taken over the last ``window_batches`` batches that read anything, so one
bad message in a small batch does not page anyone, and a steady trickle of bad ones does.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lockgate.project.ops_models import AlertEvent

if TYPE_CHECKING:
    from lockgate.ops.alerts import Alerter
    from lockgate.streams.config import StreamAlertSpec


@dataclass
class StreamWatch:
    stream: str
    spec: StreamAlertSpec
    alerter: Alerter
    _recent: deque[tuple[int, int]] = field(default_factory=deque)

    def observe(self, read: int, dlq: int, lag: int | None) -> None:
        """After each batch: ``read`` messages of which ``dlq`` went to the dead-letter
        queue, and the consumer's lag (messages behind the broker's end; None: unknown)."""
        spec = self.spec
        if spec.lag_above is not None and lag is not None:
            breached = lag > spec.lag_above
            why = f"consumer lag {lag:,} messages (limit {spec.lag_above:,})"
            self.alerter.stream_health(self.stream, AlertEvent.STREAM_LAG, breached, why)
        if spec.dlq_ratio_above is None or read <= 0:
            return
        self._recent.append((read, dlq))
        while len(self._recent) > spec.window_batches:
            self._recent.popleft()
        total = sum(r for r, _ in self._recent)
        bad = sum(d for _, d in self._recent)
        ratio = bad / total
        why = (
            f"{bad:,} of {total:,} messages of the last {len(self._recent)} batch(es) went to "
            f"the DLQ ({ratio:.1%}; limit {spec.dlq_ratio_above:.1%})"
        )
        breached = ratio > spec.dlq_ratio_above
        self.alerter.stream_health(self.stream, AlertEvent.STREAM_DLQ, breached, why)
