"""Time intervals of a partitioned dataset, and the merged ranges that say which are done.

An interval is a half-open ``[lo, hi)`` pair of UTC epoch seconds, one grain wide (an hour, a
day, a calendar month). Done intervals are kept as *merged ranges* — a year of finished days is
one ``(lo, hi)`` row, not 365 (SQLMesh keeps intervals this way; one row per partition is what
makes schedulers crawl at 25k+ partitions). Everything here is pure arithmetic on ints.

>>> day = 86_400
>>> merge([(0, day), (2 * day, 3 * day)], [(day, 2 * day)])
[(0, 259200)]
>>> missing(0, 4 * day, "day", [(day, 3 * day)])
[(0, 86400), (259200, 345600)]
>>> label(0, "hour"), label(0, "day"), label(0, "month")
('1970-01-01T00', '1970-01-01', '1970-01')
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Literal

Grain = Literal["hour", "day", "month"]
Interval = tuple[int, int]
GRAINS: tuple[Grain, ...] = ("hour", "day", "month")
_FIXED = {"hour": 3600, "day": 86_400}


def epoch(value: datetime | date) -> int:
    """UTC epoch seconds of a datetime (naive = UTC) or a date (its midnight)."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def to_datetime(ts: int) -> datetime:
    """The UTC datetime of epoch seconds ``ts``."""
    return datetime.fromtimestamp(ts, UTC)


def parse_time(text: str | date | datetime) -> int:
    """Epoch seconds of an ISO date or timestamp (naive = UTC); ValueError names the forms."""
    if isinstance(text, date):
        return epoch(text)
    try:
        return epoch(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
    except ValueError:
        raise ValueError(
            f"not a date or timestamp: {text!r} (use ISO forms: 2024-01-31 or 2024-01-31T13:00)"
        ) from None


def floor(ts: int, grain: Grain) -> int:
    """The start of the interval holding ``ts``."""
    if grain != "month":
        width = _FIXED[grain]
        return ts - ts % width
    d = to_datetime(ts)
    return epoch(datetime(d.year, d.month, 1, tzinfo=UTC))


def ceil(ts: int, grain: Grain) -> int:
    """The first interval boundary at or after ``ts``."""
    f = floor(ts, grain)
    return f if f == ts else step(f, grain)


def step(lo: int, grain: Grain) -> int:
    """The end of the interval starting at boundary ``lo``."""
    if grain != "month":
        return lo + _FIXED[grain]
    d = to_datetime(lo)
    y, m = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    return epoch(datetime(y, m, 1, tzinfo=UTC))


def intervals(start: int, end: int, grain: Grain) -> Iterator[Interval]:
    """The whole intervals between boundaries ``start`` (floored) and ``end`` (exclusive)."""
    lo = floor(start, grain)
    if grain != "month":
        width = _FIXED[grain]
        for a in range(lo, end - width + 1, width):
            yield a, a + width
        return
    while True:
        hi = step(lo, grain)
        if hi > end:
            return
        yield lo, hi
        lo = hi


def due_end(now: int, grain: Grain, lag_seconds: float) -> int:
    """The end of the newest due interval: intervals ending at or before ``now - lag``."""
    return floor(int(now - lag_seconds), grain)


def merge(ranges: Iterable[Interval], new: Iterable[Interval] = ()) -> list[Interval]:
    """Sorted, disjoint ranges covering ``ranges`` and ``new`` (touching ranges join)."""
    out: list[Interval] = []
    for lo, hi in sorted([*ranges, *new]):
        if hi <= lo:
            continue
        if out and lo <= out[-1][1]:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def subtract(ranges: Iterable[Interval], remove: Iterable[Interval]) -> list[Interval]:
    """What of ``ranges`` ``remove`` does not cover (sorted, merged).

    >>> subtract([(0, 10)], [(2, 4), (6, 7)])
    [(0, 2), (4, 6), (7, 10)]
    """
    cut = merge(remove)
    out: list[Interval] = []
    for lo, hi in merge(ranges):
        for a, b in cut:
            if b <= lo or a >= hi:
                continue
            if a > lo:
                out.append((lo, a))
            lo = max(lo, b)
            if lo >= hi:
                break
        if lo < hi:
            out.append((lo, hi))
    return out


def overlapping(start: int, end: int, grain: Grain) -> list[Interval]:
    """The whole intervals of ``grain`` that overlap ``[start, end)`` (a month for any of
    its days).

    >>> overlapping(86_400, 2 * 86_400, "month")
    [(0, 2678400)]
    """
    if end <= start:
        return []
    return list(intervals(floor(start, grain), ceil(end, grain), grain))


def missing(start: int, end: int, grain: Grain, done: Sequence[Interval]) -> list[Interval]:
    """The intervals of ``[start, end)`` that no range of ``done`` covers, oldest first.

    Only the gaps between done ranges are enumerated, so a long history that is mostly done
    costs its gaps, not its length."""
    out: list[Interval] = []
    cursor = floor(start, grain)
    for lo, hi in merge(done):
        if hi <= cursor:
            continue
        if lo >= end:
            break
        out.extend(iv for iv in intervals(cursor, min(lo, end), grain) if iv[0] >= cursor)
        cursor = max(cursor, ceil(hi, grain))
    if cursor < end:
        out.extend(intervals(cursor, end, grain))
    return out


def chunks(items: Sequence[Interval], size: int) -> list[list[Interval]]:
    """``items`` in consecutive groups of at most ``size``."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def label(lo: int, grain: Grain) -> str:
    """A person's name for the interval starting at ``lo``: ``2024-03-01`` (day)."""
    d = to_datetime(lo)
    if grain == "hour":
        return d.strftime("%Y-%m-%dT%H")
    return d.strftime("%Y-%m-%d") if grain == "day" else d.strftime("%Y-%m")


def spans(items: Sequence[Interval]) -> list[Interval]:
    """Adjacent intervals joined: the fewest ranges covering exactly ``items``."""
    return merge(items)
