"""The scheduler's clock, injectable: tests (and a subprocess under test) set the time.

``LOCKGATE_FAKE_NOW_FILE=path`` makes :func:`clock_from_env` read the current time from that
file (ISO 8601; a naive time is UTC) on every call: a test moves time by rewriting the file,
never by sleeping."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

Clock = Callable[[], datetime]

FAKE_NOW_ENV = "LOCKGATE_FAKE_NOW_FILE"


def system_clock() -> datetime:
    return datetime.now(UTC)


def file_clock(path: Path) -> Clock:
    """A clock reading an ISO time from ``path`` each call."""

    def now() -> datetime:
        t = datetime.fromisoformat(path.read_text(encoding="utf-8").strip())
        return t if t.tzinfo else t.replace(tzinfo=UTC)

    return now


def clock_from_env() -> Clock:
    path = os.environ.get(FAKE_NOW_ENV)
    return file_clock(Path(path)) if path else system_clock
