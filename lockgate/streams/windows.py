"""Event-time window aggregates of a stream's published events (``aggregates:``).

A window ``[start, start + size)`` starts every ``slide`` (epoch-aligned; tumbling when
``slide == size``). It is *closed* when the stream's watermark reaches its end: from then on
an event of that window is late (the runner sends it to the DLQ or the late table, counted),
so the window's published events are final and its row is written once.

Exactly-once, with the sink's commit discipline: the aggregate table's own application
transaction version is the end (epoch microseconds) of the newest closed window. The events
of still-open windows are kept in memory; at start they are read back from the sink (every
published event is there, late ones never are), so windows closed by a batch whose
aggregate commit did not happen (a crash after the sink commit) are computed again from
the same events — and windows at or before the committed end are never written again.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc

from lockgate.storage.base import CommitTag, TableStore, TableWrite
from lockgate.streams.config import AGG_FUNCTIONS, AggregateSpec, parse_measure

WINDOW_START = "window_start"
WINDOW_END = "window_end"
_WRITE = TableWrite("append", schema_mode="merge")
_START = "__lg_window_start"


def window_bounds(t_us: int, size_us: int, slide_us: int) -> list[tuple[int, int]]:
    """The windows (start, end) holding the instant ``t_us``, oldest first.

    >>> window_bounds(65, 60, 30)
    [(30, 90), (60, 120)]
    >>> window_bounds(-1, 10, 10)
    [(-10, 0)]
    """
    base = t_us // slide_us * slide_us
    starts = [base - k * slide_us for k in range(size_us // slide_us)]
    return sorted((s, s + size_us) for s in starts)


class WindowAggregator:
    """One ``aggregates:`` entry: open windows' events in memory, closed ones committed."""

    def __init__(self, spec: AggregateSpec, time_column: str, stream: str) -> None:
        self.spec, self.time_column, self.stream = spec, time_column, stream
        self.size, self.slide = spec.size_us, spec.slide_us
        self.measures = {name: parse_measure(m) for name, m in spec.measures.items()}
        needed = [time_column, *spec.group_by]
        needed += [c for _, c in self.measures.values() if c is not None]
        self.columns = list(dict.fromkeys(needed))
        #: end (epoch µs) of the newest window committed; None: none yet
        self.emitted: int | None = None
        self.buffer: pa.Table | None = None

    def rebuild(self, store: TableStore, sink: str) -> None:
        """The committed position from the aggregate table, the open windows' events from
        the sink (everything the sink holds when nothing was committed yet)."""
        snap = store.snapshot(self.spec.dataset)
        self.emitted = snap.txn_version if snap is not None else None
        if not store.exists(sink):
            return
        schema = store.schema(sink)
        if schema is None or any(c not in schema.names for c in self.columns):
            return
        flt = None
        if self.emitted is not None:
            typ = schema.field(self.time_column).type
            since = _from_micros(self.emitted - self.size, typ)
            flt = pc.field(self.time_column) >= pa.scalar(since, typ)
        rows = store.read(sink, columns=self.columns, filter=flt)
        self.add(rows)

    def add(self, published: pa.Table) -> None:
        """Events just committed into the sink (NULL event times are in no window)."""
        if not published.num_rows:
            return
        rows = published.select(self.columns)
        rows = rows.filter(pc.is_valid(rows.column(self.time_column)))
        if not rows.num_rows:
            return
        rows = rows.combine_chunks()
        self.buffer = rows if self.buffer is None else pa.concat_tables([self.buffer, rows])

    def closed(self, watermark: dt.datetime | None) -> tuple[pa.Table, int] | None:
        """The rows of the windows the watermark closes now, and their newest end
        (None: no window closes)."""
        if watermark is None:
            return None
        wm = _micros(watermark)
        upto = wm // self.slide * self.slide  # the newest window end <= watermark
        if self.emitted is not None and upto <= self.emitted:
            return None
        rows = self._aggregate(upto) if self.buffer is not None else None
        return (rows if rows is not None else self._empty()), upto

    def committed(self, upto: int) -> None:
        """Windows up to ``upto`` are written: forget events no open window holds."""
        self.emitted = upto
        if self.buffer is not None:
            t = _micros_array(self.buffer.column(self.time_column))
            self.buffer = self.buffer.filter(pc.greater_equal(t, upto - self.size))

    def commit(
        self, store: TableStore, upto: int, rows: pa.Table, fence: tuple[str, int] | None = None
    ) -> None:
        if rows.num_rows:
            tag = CommitTag(f"stream:{self.stream}", upto, f"windows<={upto}", fence=fence)
            store.publish(self.spec.dataset, rows.to_reader(), write=_WRITE, tag=tag)
        self.committed(upto)

    def _aggregate(self, upto: int) -> pa.Table | None:
        import numpy as np

        assert self.buffer is not None
        t = _micros_array(self.buffer.column(self.time_column)).to_numpy()
        base = t // self.slide * self.slide
        parts = []
        low = self.emitted if self.emitted is not None else None
        for k in range(self.size // self.slide):
            start = base - k * self.slide
            end = start + self.size
            keep = end <= upto if low is None else (end <= upto) & (end > low)
            if keep.any():
                idx = np.flatnonzero(keep)
                part = self.buffer.take(pa.array(idx))
                parts.append(part.append_column(_START, pa.array(start[idx], pa.int64())))
        if not parts:
            return None
        return self._grouped(pa.concat_tables(parts))

    def _grouped(self, rows: pa.Table) -> pa.Table:
        aggs = []
        for fn, column in self.measures.values():
            aggs.append((column or self.time_column, AGG_FUNCTIONS[fn]))
        keys = [_START, *self.spec.group_by]
        out = rows.group_by(keys, use_threads=False).aggregate(aggs)
        typ = _out_type(rows.schema.field(self.time_column).type)
        start = out.column(_START).combine_chunks()
        arrays: dict[str, pa.Array] = {
            WINDOW_START: start.cast(pa.int64()).cast(typ),
            WINDOW_END: pc.add(start, self.size).cast(pa.int64()).cast(typ),
        }
        for c in self.spec.group_by:
            arrays[c] = out.column(c)
        for name, (fn, column) in self.measures.items():
            arrays[name] = out.column(f"{column or self.time_column}_{AGG_FUNCTIONS[fn]}")
        table = pa.table(arrays)
        return table.sort_by([(WINDOW_START, "ascending")] + [(c, "ascending") for c in
                                                               self.spec.group_by])  # fmt: skip

    def _empty(self) -> pa.Table:
        return pa.table({WINDOW_START: pa.array([], pa.timestamp("us"))})


def _out_type(typ: pa.DataType) -> pa.DataType:
    tz = typ.tz if isinstance(typ, pa.TimestampType) else None
    return pa.timestamp("us", tz=tz)


def _micros_array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Epoch microseconds (UTC for zoned columns, as-is for naive ones)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    typ = arr.type
    tz = typ.tz if isinstance(typ, pa.TimestampType) else None
    return arr.cast(pa.timestamp("us", tz=tz)).cast(pa.int64())


def _micros(t: dt.datetime) -> int:
    aware = t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)
    delta = aware - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return delta // dt.timedelta(microseconds=1)


def _from_micros(us: int, typ: pa.DataType) -> dt.datetime:
    t = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)
    zoned = isinstance(typ, pa.TimestampType) and typ.tz is not None
    return t if zoned else t.replace(tzinfo=None)
