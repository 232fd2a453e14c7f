"""A partitioned project: ``events`` (CSV source of timestamped rows) and ``daily`` (a SQL
transform partitioned by day over it), plus helpers to read what was published."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lockgate.project import load_project
from lockgate.state import StateStore
from lockgate.state.intervals import done_ranges
from tests.run.helpers import csv_source, make_project, sql


def events_csv(days: dict[int, list[int | None]]) -> str:
    """Rows ``id,ts,amount`` for January 2024: ``days[d]`` = the amounts of day ``d``."""
    lines = ["id,ts,amount"]
    n = 0
    for d, amounts in sorted(days.items()):
        for i, a in enumerate(amounts):
            n += 1
            lines.append(f"{n},2024-01-{d:02d} {i % 24:02d}:30:00,{'' if a is None else a}")
    return "\n".join(lines) + "\n"


def partitioned_project(
    root: Path,
    days: dict[int, list[int | None]],
    *,
    gate: str = "block",
    checks: list[dict[str, Any]] | None = None,
    start: str = "2024-01-01",
    lag: str = "0s",
) -> Path:
    default_checks = [
        {"type": "not_null", "column": "amount"},
        {"type": "row_count", "min": 1},
    ]
    daily = sql(
        "daily",
        "SELECT id, CAST(ts AS TIMESTAMP) AS ts, amount FROM events",
        partition={"column": "ts", "grain": "day", "start": start, "lag": lag},
        gate=gate,
        checks=default_checks if checks is None else checks,
    )
    return make_project(
        root,
        [
            csv_source(
                "events",
                "data/events.csv",
                columns={"id": "BIGINT", "ts": "TIMESTAMP", "amount": "BIGINT"},
                write={"mode": "overwrite"},
            ),
            daily,
        ],
        files={"data/events.csv": events_csv(days)},
    )


def now(day: int, hour: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, tzinfo=UTC)


def ranges(root: Path, dataset: str = "daily") -> list[tuple[int, int]]:
    project = load_project(root)
    state = StateStore.open(project.state_url)
    try:
        return done_ranges(state, project.config.name, dataset)
    finally:
        state.close()


def day_epoch(day: int) -> int:
    return int(datetime(2024, 1, day, tzinfo=UTC).timestamp())
