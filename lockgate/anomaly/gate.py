"""The verdict of an ``anomaly`` check (:class:`lockgate.quality.checks.Anomaly`): the batch's
metric against the check's earlier published values, through :func:`detect`.

The audit calls :func:`judge` for each anomaly check once the fused pass has computed the
metric; the result then gates like any other table-level check (``severity: error`` blocks).

>>> import datetime as dt
>>> from lockgate.quality.checks import Anomaly
>>> c = Anomaly(type="anomaly", metric="row_count")
>>> day = dt.datetime(2026, 1, 1)
>>> past = [(day + dt.timedelta(days=i), 1000.0 + 7 * (i % 4)) for i in range(20)]
>>> j = judge(c, 40.0, past, day + dt.timedelta(days=20))
>>> j.passed, j.expected["low"] < 1000 < j.expected["high"]
(False, True)
>>> judge(c, 1003.0, past, day + dt.timedelta(days=20)).passed
True
>>> judge(c, 40.0, past[:3], day + dt.timedelta(days=20)).message
'learning: 3 of 10 earlier values (passes until then)'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lockgate.anomaly.detect import Point, Settings, detect

if TYPE_CHECKING:
    from lockgate.quality.checks import Anomaly

#: rates (fractions of rows): changes below a tenth of a percentage point are noise
_RATE_FLOOR = 0.001
_NO_SEASONS = 1 << 30


@dataclass(frozen=True)
class Judgement:
    passed: bool
    message: str
    expected: dict[str, Any] | None  # {median, low, high, history, score}


def settings_for(check: Anomaly) -> Settings:
    """The detector's settings for ``check`` (its band, history and seasonality)."""
    return Settings(
        min_history=check.min_history,
        threshold=check.sigma,
        error_threshold=2 * check.sigma,
        min_seasons=3 if check.seasonality else _NO_SEASONS,
        abs_floor=_RATE_FLOOR if check.metric == "null_rate" else 0.0,
    )


def judge(
    check: Anomaly, observed: float | None, past: Sequence[Point], now: datetime
) -> Judgement:
    """Is ``observed`` (the batch's metric, at ``now``) anomalous given ``past`` (the
    check's earlier published values, chronological)?"""
    s = settings_for(check)
    history = [(t, float(v)) for t, v in past if v is not None and math.isfinite(float(v))]
    label = check.metric_label
    if len(history) < s.min_history:
        return Judgement(
            True,
            f"learning: {len(history)} of {s.min_history} earlier values (passes until then)",
            None,
        )
    if observed is None or not math.isfinite(observed):
        return Judgement(False, f"{label} is NULL: the batch has no values to measure", None)
    v = detect(history, (now, float(observed)), s)
    expected = None
    if v.expected is not None:
        expected = {
            "median": v.expected,
            "low": v.low,
            "high": v.high,
            "history": len(history),
            "score": round(v.score, 3),
        }
    if not v.anomalous:
        return Judgement(True, "", expected)
    rising = v.score > 0
    if (check.direction == "up" and not rising) or (check.direction == "down" and rising):
        way = "fall" if not rising else "rise"
        return Judgement(
            True, f"{label}: a {way}, ignored (direction: {check.direction})", expected
        )
    band = ""
    if v.low is not None and v.high is not None:
        band = f"; expected [{v.low:.6g}, {v.high:.6g}]"
    return Judgement(False, f"{label} anomaly: {v.reason}{band}", expected)
