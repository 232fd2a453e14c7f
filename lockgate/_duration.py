"""Durations in configuration: ``"90s"``, ``"15m"``, ``"2h"``, ``"3d"``, ``"1w"`` or seconds
as a number — one parser for the project file, check files and the read API."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_seconds(value: str | int | float) -> float:
    """``'24h'`` → 86400.0 (units s/sec, m/min, h, d, w; a bare number is seconds).

    >>> parse_seconds("2h")
    7200.0
    """
    if isinstance(value, int | float):
        return float(value)
    m = _DURATION_RE.match(value)
    if not m:
        raise ValueError(f"invalid duration {value!r}: use e.g. '30s', '15m', '2h', '3d'")
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]


def parse_duration(value: str | int | float) -> timedelta:
    """Parse ``"90s"``, ``"15m"``, ``"2h"``, ``"3d"``, ``"1w"`` (or seconds as a number).

    >>> parse_duration("2h")
    datetime.timedelta(seconds=7200)
    """
    return timedelta(seconds=parse_seconds(value))
