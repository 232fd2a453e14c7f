"""Interval arithmetic of partitioned datasets: merged ranges, missing intervals, grains."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from lockgate.ops import intervals as iv

H, D = 3600, 86_400


def ts(*a: int) -> int:
    return int(datetime(*a, tzinfo=UTC).timestamp())  # type: ignore[misc]


def test_month_grain_follows_the_calendar() -> None:
    months = list(iv.intervals(ts(2024, 1, 15), ts(2024, 4, 1), "month"))
    assert [iv.label(lo, "month") for lo, _ in months] == ["2024-01", "2024-02", "2024-03"]
    assert months[1] == (ts(2024, 2, 1), ts(2024, 3, 1))  # 29 days: a leap year
    assert iv.step(ts(2024, 12, 1), "month") == ts(2025, 1, 1)


def test_due_end_applies_the_lag() -> None:
    assert iv.due_end(ts(2024, 1, 4, 1), "day", 2 * H) == ts(2024, 1, 3)
    assert iv.due_end(ts(2024, 1, 4, 3), "day", 2 * H) == ts(2024, 1, 4)


def test_five_years_of_hours_done_is_one_range() -> None:
    start, end = ts(2020, 1, 1), ts(2025, 1, 1)
    todo = iv.missing(start, end, "hour", [])
    assert len(todo) == (end - start) // H == 43_848
    assert iv.merge([], todo) == [(start, end)]
    assert iv.missing(start, end, "hour", [(start, end)]) == []


def test_missing_handles_ranges_not_on_boundaries() -> None:
    # a stored range from another grain (hours inside a day) never counts a partial day done
    done = [(ts(2024, 1, 2, 5), ts(2024, 1, 3, 12))]
    got = iv.missing(ts(2024, 1, 1), ts(2024, 1, 5), "day", done)
    assert [iv.label(lo, "day") for lo, _ in got] == ["2024-01-01", "2024-01-04"]


def test_parse_time_accepts_dates_timestamps_and_zones() -> None:
    assert iv.parse_time("2024-01-02") == ts(2024, 1, 2)
    assert iv.parse_time("2024-01-02T01:00:00Z") == ts(2024, 1, 2, 1)
    assert iv.parse_time("2024-01-02T03:00+02:00") == ts(2024, 1, 2, 1)


@given(
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 30)), max_size=20),
    st.integers(0, 100),
    st.integers(0, 250),
)
def test_missing_and_done_partition_the_window(raw: list[tuple[int, int]], a: int, b: int) -> None:
    done = iv.merge((lo * H, (lo + w) * H) for lo, w in raw)
    # merged ranges are sorted, disjoint and not touching
    assert all(x[1] < y[0] for x, y in itertools.pairwise(done))
    start, end = min(a, b) * H, max(a, b) * H
    gaps = iv.missing(start, end, "hour", done)
    covered = {h for lo, hi in done for h in range(lo, hi, H)}
    want = [(h, h + H) for h in range(start, end, H) if h not in covered]
    assert gaps == want
