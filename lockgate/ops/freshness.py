"""Freshness SLAs: how old each dataset's newest publish is, against its
``freshness: {warn_after, error_after}``. ``lockgate serve`` evaluates them between runs
too — a source that stops delivering is exactly when no run happens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lockgate.project import Project
    from lockgate.storage.base import TableStore


class Level(StrEnum):
    OK = "ok"
    WARN = "warn"
    ERROR = "error"
    NEVER = "never"  # never published: an SLA with nothing to measure is breached


@dataclass(frozen=True)
class Freshness:
    dataset: str
    level: Level
    last_publish: datetime | None
    age_s: float | None
    warn_after_s: float | None
    error_after_s: float | None

    @property
    def breached(self) -> bool:
        return self.level != Level.OK

    def to_dict(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "level": str(self.level),
            "last_publish": self.last_publish.isoformat() if self.last_publish else None,
            "age_s": None if self.age_s is None else round(self.age_s, 3),
            "warn_after_s": self.warn_after_s,
            "error_after_s": self.error_after_s,
        }


def level_for(age_s: float | None, warn_s: float | None, error_s: float | None) -> Level:
    """The level of an ``age_s`` (None: never published) against the limits.

    >>> level_for(90, 60, 120), level_for(130, 60, 120), level_for(None, 60, None)
    (<Level.WARN: 'warn'>, <Level.ERROR: 'error'>, <Level.NEVER: 'never'>)
    """
    if age_s is None:
        return Level.NEVER
    if error_s is not None and age_s > error_s:
        return Level.ERROR
    if warn_s is not None and age_s > warn_s:
        return Level.WARN
    return Level.OK


def evaluate(project: Project, store: TableStore, now: datetime) -> list[Freshness]:
    """The freshness of every dataset with an SLA, in project order."""
    out: list[Freshness] = []
    for name, spec in project.datasets.items():
        sla = spec.freshness
        if sla is None:
            continue
        last = store.last_commit(name)
        at = None if last is None else last.timestamp
        age = None if at is None else max(0.0, (now - at).total_seconds())
        level = level_for(age, sla.warn_seconds, sla.error_seconds)
        out.append(Freshness(name, level, at, age, sla.warn_seconds, sla.error_seconds))
    return out


def freshness(project: Project, now: datetime) -> list[Freshness]:
    """:func:`evaluate` with the project's own table store (the CLI's entry point)."""
    from lockgate.storage import store_for

    store = store_for(project.config.store, project.warehouse_path)
    return evaluate(project, store, now)
