"""Event time: the watermark and late events.

The watermark of a batch is the newest event time *published* before it, minus the allowed
lateness; an event older than it is late (a NULL event time never is: a ``not_null`` check
catches those). Only published events move the watermark, and it is written into each sink
commit (``CommitTag.watermark``), so after a crash it is rebuilt exactly from the table.
The watermark never passes the consumer's own clock: one event stamped in the far future (a
wrong producer clock, a hostile producer) is published, but does not make every later event
late for ever.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc

from lockgate.streams.config import EventTimeSpec

_KIND = "event_time"


class Watermark:
    def __init__(self, spec: EventTimeSpec, committed: str | None) -> None:
        self.spec = spec
        self.newest: dt.datetime | None = _decode(committed)

    @property
    def value(self) -> dt.datetime | None:
        """Events before this are late (None: nothing published yet, or a lateness reaching
        before the year 1: nothing is late)."""
        if self.newest is None:
            return None
        try:
            return self.newest - self.spec.lateness
        except OverflowError:
            return None

    def late(self, table: pa.Table) -> pa.BooleanArray:
        """Per row: is the event late."""
        column = table.column(self.spec.column)
        wm = self.value
        if wm is None or table.num_rows == 0:
            return pa.array([False] * table.num_rows, pa.bool_())
        bound = pa.scalar(_like(wm, column.type), column.type)
        out = pc.fill_null(pc.less(column, bound), False)
        return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out

    def advanced(self, published: pa.Table, now: dt.datetime | None = None) -> str | None:
        """The newest event time after ``published`` rows are committed, encoded for the
        commit (the current one when nothing newer came); never past ``now`` (UTC)."""
        if published.num_rows:
            top = pc.max(published.column(self.spec.column)).as_py()
            if isinstance(top, dt.datetime) and now is not None and _cmp(top) > now:
                top = now if top.tzinfo is not None else now.replace(tzinfo=None)
            if isinstance(top, dt.datetime) and (
                self.newest is None or _cmp(top) > _cmp(self.newest)
            ):
                self.newest = top
        return _encode(self.newest)

    def reason(self) -> str:
        lateness = self.spec.allowed_lateness
        return f"late: event time before the watermark {self.value} (allowed lateness {lateness})"


def _cmp(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def _like(t: dt.datetime, typ: pa.DataType) -> dt.datetime:
    """``t`` with the time zone awareness of the column type."""
    aware = isinstance(typ, pa.TimestampType) and typ.tz is not None
    if aware and t.tzinfo is None:
        return t.replace(tzinfo=dt.UTC)
    if not aware and t.tzinfo is not None:
        return t.astimezone(dt.UTC).replace(tzinfo=None)
    return t


def _encode(t: dt.datetime | None) -> str | None:
    return None if t is None else f"{t.isoformat()}|{_KIND}"


def _decode(text: str | None) -> dt.datetime | None:
    if not text or not text.endswith("|" + _KIND):
        return None
    return dt.datetime.fromisoformat(text.rsplit("|", 1)[0])
