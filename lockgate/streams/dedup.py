"""Dedup within a time window on a key, with state that survives a crash: rebuilt at start
from the sink table's rows received within the window (``_lockgate_received_at``).

Only a *published* event claims its key: the runner drops events whose key the window
holds (:meth:`DedupWindow.unseen`) before the checks, and after the checks keeps the first
passing event of each key in the batch (:meth:`DedupWindow.first_seen`, which remembers
it). An event that went to the DLQ (or the late table) claims nothing, so a later valid
event with its key is published — whatever the batch boundaries, and whether or not the
consumer restarted in between (the window rebuilt from the sink then holds the same keys).

Vectorised: the first occurrence of each key inside a batch comes from Arrow's dictionary
encoding (one hash pass; a group-by for a key of several columns), the keys already seen
from one C-level set intersection; the window is a queue of
per-batch key lists, expired a whole batch at a time. No per-row Python loop.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Hashable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

Key = Hashable
_IDX = "__lg_idx"


class DedupWindow:
    """Keys seen within ``window_seconds`` (first occurrence wins)."""

    def __init__(self, key: Sequence[str], window_seconds: float) -> None:
        self.key = tuple(key)
        self.window = window_seconds
        self._seen: set[Key] = set()
        self._batches: deque[tuple[float, list[Key]]] = deque()  # oldest first

    def keys(self, table: pa.Table) -> list[Key]:
        cols = [table.column(k).to_pylist() for k in self.key]
        return cols[0] if len(cols) == 1 else list(zip(*cols, strict=True))

    def remember(self, keys: Sequence[Key], now: float | None = None) -> None:
        """Add ``keys`` (seen at ``now``) to the window."""
        t = time.time() if now is None else now
        self._add([k for k in set(keys).difference(self._seen) if k is not None], t)

    def _add(self, new: list[Key], t: float) -> None:
        """Add keys known to be new and not NULL."""
        if new:
            self._seen.update(new)
            self._batches.append((t, new))

    def unseen(self, table: pa.Table, now: float | None = None) -> pa.BooleanArray | None:
        """Per row: True if its key is not in the window (NULL keys: True); None when no
        row's key is. Remembers nothing."""
        self._expire(time.time() if now is None else now)
        if not self._seen or not table.num_rows:
            return None
        keys = self.keys(table)
        hits = self._seen.intersection(keys)
        if not hits:
            return None
        if len(self.key) == 1:
            kcol = table.column(self.key[0])
            old = pc.is_in(kcol, value_set=pa.array(list(hits), kcol.type))
        else:
            old = pa.array([k in hits for k in keys], pa.bool_())
        out = pc.invert(old)
        return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out

    def first_seen(
        self, table: pa.Table, now: float | None = None, *, unseen: bool = False
    ) -> pa.BooleanArray:
        """Per row: True if its key was not seen in the window (nor earlier in ``table``);
        remembers the new keys. A NULL key (any part NULL) is never a duplicate.
        ``unseen``: no key of ``table`` is in the window (:meth:`unseen` said so)."""
        t = time.time() if now is None else now
        self._expire(t)
        if len(self.key) == 1:
            return self._first_seen_one(table.column(self.key[0]), t, unseen=unseen)
        n = table.num_rows
        rows = pa.array(range(n), pa.int64())
        keyed = table.select(list(self.key)).append_column(_IDX, rows)
        valid = _all_valid(keyed, self.key)
        # the first row of each key within the batch
        firsts = (
            keyed.filter(valid)
            .group_by(list(self.key), use_threads=False)
            .aggregate([(_IDX, "min")])
        )
        first_idx = firsts.column(_IDX + "_min")
        ckeys = self.keys(firsts)
        hits = set() if unseen else self._seen.intersection(ckeys)
        if hits:
            old = pa.array([k in hits for k in ckeys], pa.bool_())
            first_idx = pc.filter(first_idx, pc.invert(old))
            self._add([k for k in ckeys if k not in hits], t)
        else:
            self._add(ckeys, t)
        keep = pc.or_(pc.is_in(rows, value_set=first_idx), pc.invert(valid))
        return keep.combine_chunks() if isinstance(keep, pa.ChunkedArray) else keep

    def _first_seen_one(
        self, column: pa.ChunkedArray | pa.Array, t: float, *, unseen: bool
    ) -> pa.BooleanArray:
        """:meth:`first_seen` on one key column, in one hash pass: the dictionary encoding
        numbers the distinct keys in order of first appearance, so a row is its key's first
        when its number is above every number before it."""
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        encoded = pc.dictionary_encode(column)  # NULL keys: NULL indices
        ids = pc.fill_null(encoded.indices.cast(pa.int64()), -1)
        if not len(ids):
            return pa.array([], pa.bool_())
        top = pc.cumulative_max(ids)
        before = pa.concat_arrays([pa.array([-1], pa.int64()), top.slice(0, len(ids) - 1)])
        first = pc.greater(ids, before)
        distinct = encoded.dictionary
        ckeys = distinct.to_pylist()
        hits = set() if unseen else self._seen.intersection(ckeys)
        if hits:
            old = pc.is_in(distinct, value_set=pa.array(list(hits), distinct.type))
            first = pc.and_(first, pc.invert(pc.fill_null(pc.take(old, encoded.indices), False)))
            self._add([k for k in ckeys if k not in hits], t)
        else:
            self._add(ckeys, t)
        return pc.or_(first, pc.is_null(column))

    def rebuild(self, table: pa.Table, time_column: str) -> None:
        """Remember the keys of ``table`` (rows of the sink), each at its ``time_column``
        (one group per distinct time: a committed batch shares one)."""
        if table.num_rows == 0:
            return
        micros = pc.cast(pc.cast(table.column(time_column), pa.timestamp("us")), pa.int64())
        table = table.append_column("__lg_t", micros).sort_by("__lg_t")
        keys = self.keys(table)
        counts = pc.value_counts(table.column("__lg_t")).flatten()  # in order: sorted
        start = 0
        for value, count in zip(counts[0].to_pylist(), counts[1].to_pylist(), strict=True):
            self.remember(keys[start : start + count], value / 1e6)
            start += count

    def _expire(self, now: float) -> None:
        limit = now - self.window
        while self._batches and self._batches[0][0] < limit:
            _, keys = self._batches.popleft()
            self._seen.difference_update(keys)

    def __len__(self) -> int:
        return len(self._seen)


def _all_valid(table: pa.Table, columns: Sequence[str]) -> pa.BooleanArray:
    out = pc.is_valid(table.column(columns[0]))
    for c in columns[1:]:
        out = pc.and_(out, pc.is_valid(table.column(c)))
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out
