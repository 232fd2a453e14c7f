"""Anomalies in a metric's history (row count, null rate, mean, freshness lag ...).

A new value is compared with a robust baseline of the values before it:

- the baseline is the median and the MAD (median absolute deviation) of the last ``window``
  comparable values, so one earlier outlier does not move it (a mean and a standard
  deviation would: that is the plain z-score's weakness);
- comparable means the same weekday (daily data) or hour of day (hourly data) once the
  history holds ``min_seasons`` values of that slot, and the whole recent window otherwise;
- a slow drift, which moves the baseline along with it, is caught by a second test: the
  median of the last ``drift_span`` values against the median of an older reference window;
- nothing is said before ``min_history`` values.

>>> import datetime as dt
>>> day = dt.datetime(2026, 1, 1)
>>> hist = [(day + dt.timedelta(days=i), 100.0 + (i % 3)) for i in range(30)]
>>> detect(hist, (day + dt.timedelta(days=30), 400.0)).anomalous
True
>>> detect(hist, (day + dt.timedelta(days=30), 101.0)).anomalous
False
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

import numpy as np

Point = tuple[datetime, float]

_MAD_TO_SIGMA = 1.4826  # MAD x this = standard deviation of a normal distribution


@dataclass(frozen=True)
class Settings:
    min_history: int = 10
    window: int = 28
    threshold: float = 5.0  # robust z (in sigmas) above which a value is anomalous
    error_threshold: float = 10.0  # robust z above which the severity is error
    min_seasons: int = 3  # values of a weekday/hour slot needed to use seasonality
    drift_span: int = 7
    drift_threshold: float = 3.0
    rel_floor: float = 0.01  # the scale is at least 1 % of the level: flat series
    abs_floor: float = 0.0  # and at least this (rates: a 0 history is not a 0 scale)


@dataclass(frozen=True)
class Verdict:
    anomalous: bool
    score: float  # robust z of the value (or of the drift), signed
    expected: float | None  # the baseline's median
    low: float | None
    high: float | None
    reason: str
    severity: str | None = None  # warn / error when anomalous


def detect(history: Sequence[Point], point: Point, settings: Settings | None = None) -> Verdict:
    """Is ``point`` anomalous given the (chronological) ``history`` before it?"""
    s = settings or Settings()
    values = [(t, v) for t, v in history if v is not None and math.isfinite(v)]
    if len(values) < s.min_history:
        return Verdict(False, 0.0, None, None, None, f"only {len(values)} values of history")
    factor, slot, rel = _season_factors(values, point[0], s)
    flat = np.array([v / factor(t) for t, v in values], dtype=float)
    level, scale = _median_scale(flat[-s.window :], s)
    if rel is not None:  # the noise seen between consecutive values of the same slot
        scale = max(scale, rel * abs(level))
    recent = float(np.median(flat[-s.drift_span :]))
    if abs(recent - level) > s.threshold * scale:  # a shift that has lasted: the new normal
        level = recent
    f = factor(point[0])
    med, sc = level * f, max(scale * abs(f), 1e-12)
    z = (point[1] - med) / sc
    low, high = med - s.threshold * sc, med + s.threshold * sc
    if abs(z) >= s.threshold:
        return Verdict(
            True,
            z,
            med,
            low,
            high,
            f"{point[1]:.6g} is {abs(z):.1f} sigma from the expected {med:.6g}{slot}",
            "error" if abs(z) >= s.error_threshold else "warn",
        )
    drift = _drift(flat, point[1] / f, s)
    if drift is not None:
        return Verdict(True, drift[0], med, low, high, drift[1], "warn")
    return Verdict(False, z, med, low, high, "within the baseline")


def _median_scale(values: np.ndarray, s: Settings) -> tuple[float, float]:
    med = float(np.median(values))
    mad = float(np.median(np.abs(values - med))) * _MAD_TO_SIGMA
    return med, max(mad, s.rel_floor * abs(med), s.abs_floor, 1e-12)


def _season_factors(
    values: list[Point], at: datetime, s: Settings
) -> tuple[Callable[[datetime], float], str, float | None]:
    """Multiplicative weekday (daily data) or hour-of-day (hourly data) factors, when every
    slot has ``min_seasons`` values and the slots really differ; else factor 1."""
    gaps = np.diff([t.timestamp() for t, _ in values[-s.window :]])
    step = float(np.median(gaps)) if len(gaps) else 0.0
    key: Callable[[datetime], int]
    if 0 < step <= 2 * 3600:
        key, label = _hour, f" (same hour {at.hour:02d}:00)"
    elif 0 < step <= 2 * 86400:
        key, label = _weekday, f" (same weekday {at.strftime('%A')})"
    else:
        return _one, "", None
    recent = values[-4 * s.window :]
    slots: dict[int, list[float]] = {}
    for t, v in recent:
        slots.setdefault(key(t), []).append(v)
    if len(slots.get(key(at), ())) < s.min_seasons:
        return _one, "", None
    # each value against the level around it (median of the cycle before it), so a level
    # shift does not leak into the slot factors
    vals = np.array([v for _, v in recent], dtype=float)
    cycle = 24 if key is _hour else 7
    ratios: dict[int, list[float]] = {}
    for i, (t, v) in enumerate(recent):
        level = float(np.median(vals[max(0, i - cycle + 1) : max(i + 1, cycle)]))
        if level != 0:
            ratios.setdefault(key(t), []).append(v / level)
    med = {k: float(np.median(r)) for k, r in ratios.items() if len(r) >= s.min_seasons}
    all_r = np.array([r for rs in ratios.values() for r in rs])
    if not med or not len(all_r):
        return _one, "", None
    center, spread = _median_scale(all_r, s)
    # seasonal only when some slot sits clearly away from the others
    if not any(abs(m - center) > 3.0 * spread / math.sqrt(len(ratios[k])) for k, m in med.items()):
        return _one, "", None
    factors = {k: m / center for k, m in med.items() if m != 0}

    def factor(t: datetime) -> float:
        return factors.get(key(t), 1.0)

    return factor, label, _slot_noise(slots)


def _slot_noise(slots: dict[int, list[float]]) -> float | None:
    """Relative noise from consecutive values of the same slot: their log-ratio has twice
    the variance of one value's (a slot median fitted on a few values would hide it)."""
    logs = [
        math.log(b / a) for vals in slots.values() for a, b in pairwise(vals) if a > 0 and b > 0
    ]
    if len(logs) < 5:
        return None
    arr = np.array(logs)
    return float(np.median(np.abs(arr - np.median(arr)))) * _MAD_TO_SIGMA / math.sqrt(2)


def _one(t: datetime) -> float:
    return 1.0


def _hour(t: datetime) -> int:
    return t.hour


def _weekday(t: datetime) -> int:
    return t.weekday()


def _drift(flat: np.ndarray, value: float, s: Settings) -> tuple[float, str] | None:
    """A slow drift: the recent (deseasonalised) level against an older reference window,
    while the level is still moving."""
    recent = np.append(flat[-(s.drift_span - 1) :], value)
    ref = flat[-(s.window + s.drift_span) : -2 * s.drift_span]
    before = flat[-2 * s.drift_span : -s.drift_span + 1]
    if len(ref) < s.min_history or not len(before):
        return None
    med, scale = _median_scale(ref, s)
    lvl = float(np.median(recent))
    # the median of n values varies by about scale * 1.25 / sqrt(n)
    z = (lvl - med) / (scale * 1.25 / math.sqrt(len(recent)))
    moved = abs(lvl - med) / max(abs(med), 1e-12)
    still = abs(lvl - float(np.median(before))) / max(abs(med), 1e-12)
    if abs(z) >= s.drift_threshold * 3 and moved >= 0.15 and still >= 0.05:
        return z, f"level drifted from {med:.6g} to {lvl:.6g} ({moved:+.0%}) over the last values"
    return None


def zscore(history: Sequence[Point], point: Point, window: int = 28, k: float = 3.0) -> bool:
    """The plain z-score test (mean and standard deviation of the training window), as
    Elementary does it: the comparison baseline of the benchmarks."""
    vals = np.array([v for _, v in history][-window:], dtype=float)
    if len(vals) < 2:
        return False
    sd = float(vals.std(ddof=1))
    return sd > 0 and abs(point[1] - float(vals.mean())) / sd > k
