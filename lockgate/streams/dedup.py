"""Dedup within a time window on a key, with state that survives a crash: rebuilt at start
from the sink table's rows received within the window (:data:`RECEIVED_COLUMN`)."""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence

import pyarrow as pa

Key = Hashable


class DedupWindow:
    """Keys seen within ``window_seconds`` (first occurrence wins)."""

    def __init__(self, key: Sequence[str], window_seconds: float) -> None:
        self.key = tuple(key)
        self.window = window_seconds
        self._seen: dict[Key, float] = {}  # insertion-ordered: oldest first

    def keys(self, table: pa.Table) -> list[Key]:
        cols = [table.column(k).to_pylist() for k in self.key]
        return cols[0] if len(cols) == 1 else list(zip(*cols, strict=True))

    def remember(self, keys: Sequence[Key], now: float | None = None) -> None:
        t = time.time() if now is None else now
        for k in keys:
            if k is not None:
                self._seen.setdefault(k, t)

    def first_seen(self, table: pa.Table, now: float | None = None) -> list[bool]:
        """Per row: True if its key was not seen in the window (nor earlier in ``table``);
        remembers the new keys. A NULL key is never a duplicate."""
        t = time.time() if now is None else now
        self._expire(t)
        seen = self._seen
        keep: list[bool] = []
        for k in self.keys(table):
            if k is None or (isinstance(k, tuple) and None in k):
                keep.append(True)
            elif k in seen:
                keep.append(False)
            else:
                seen[k] = t
                keep.append(True)
        return keep

    def _expire(self, now: float) -> None:
        limit = now - self.window
        seen = self._seen
        while seen:
            k = next(iter(seen))
            if seen[k] >= limit:
                break
            del seen[k]

    def __len__(self) -> int:
        return len(self._seen)
