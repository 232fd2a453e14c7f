"""Labelled synthetic metric histories: the benchmark of the detector (tests and
``benchmarks/anomaly_bench.py``). Each series is daily, optionally weekly seasonal, with
noise, and holds at most one injected anomaly: a spike, a drop, a slow drift (a ramp that
stays), or none (every alert on it is a false positive)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from lockgate.anomaly.detect import Point

KINDS = ("spike", "drop", "drift", "none")


@dataclass(frozen=True)
class Series:
    kind: str
    points: list[Point]
    start: int  # index of the injected anomaly (-1: none)
    end: int  # last index at which an alert counts as finding it


def make_series(rng: np.random.Generator, kind: str, n: int = 120) -> Series:
    level = float(rng.uniform(100, 10_000))
    noise = float(rng.uniform(0.02, 0.08))
    seasonal = bool(rng.random() < 0.5)
    weekend = float(rng.uniform(0.4, 0.7))
    day0 = datetime(2026, 1, 5)  # a Monday
    values = []
    for i in range(n):
        v = level * (1 + rng.normal(0, noise))
        if seasonal and (day0 + timedelta(days=i)).weekday() >= 5:
            v *= weekend
        values.append(v)
    start, end = -1, -1
    if kind in ("spike", "drop"):
        start = end = int(rng.integers(60, n - 5))
        factor = rng.uniform(2.0, 5.0) if kind == "spike" else rng.uniform(0.05, 0.5)
        values[start] *= float(factor)
    elif kind == "drift":
        start, span = int(rng.integers(50, n - 30)), int(rng.integers(10, 20))
        total = float(rng.uniform(0.5, 1.0)) * (1 if rng.random() < 0.5 else -0.6)
        for i in range(start, n):
            values[i] *= 1 + total * min(1.0, (i - start + 1) / span)
        end = start + span + 10
    points = [(day0 + timedelta(days=i), float(v)) for i, v in enumerate(values)]
    return Series(kind, points, start, end)


def evaluate(
    series: Sequence[Series], alert: Callable[[list[Point], Point], bool], first: int = 30
) -> dict[str, float]:
    """Event-level precision/recall of ``alert(history, point)`` run online over every
    series from index ``first``: an alert inside an injected anomaly's span is a true
    positive, anywhere else a false positive; an anomaly is found when any alert falls in
    its span."""
    tp = fp = found = events = good_incidents = incidents = 0
    for s in series:
        hits = [i for i in range(first, len(s.points)) if alert(s.points[:i], s.points[i])]
        inside = [s.start >= 0 and s.start <= i <= s.end for i in hits]
        tp += sum(inside)
        fp += len(hits) - sum(inside)
        for run in _incidents(hits):
            incidents += 1
            good_incidents += any(s.start >= 0 and s.start <= i <= s.end for i in run)
        if s.start >= 0:
            events += 1
            found += any(inside)
    return {
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": found / events if events else 1.0,
        "incident_precision": good_incidents / incidents if incidents else 1.0,
        "alerts": tp + fp,
        "incidents": incidents,
        "events": events,
    }


def _incidents(hits: list[int]) -> list[list[int]]:
    """Consecutive alerts (at most one quiet value between them) are one incident."""
    out: list[list[int]] = []
    for i in hits:
        if out and i - out[-1][-1] <= 2:
            out[-1].append(i)
        else:
            out.append([i])
    return out
