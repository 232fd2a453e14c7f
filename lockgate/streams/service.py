"""Run a project's stream by name (what ``lockgate stream run NAME`` calls)."""

from __future__ import annotations

from collections.abc import Callable

from lockgate._suggest import did_you_mean
from lockgate.engine import engine_for
from lockgate.errors import UsageError
from lockgate.project.project import Project
from lockgate.storage import store_for
from lockgate.streams.runner import BatchCounts, StreamReport, StreamRunner
from lockgate.streams.sources import consumer_for


def run_stream(
    project: Project,
    name: str,
    *,
    until_idle: bool = False,
    max_seconds: float | None = None,
    on_batch: Callable[[BatchCounts], None] | None = None,
) -> StreamReport:
    """Consume stream ``name`` of ``project`` until idle / ``max_seconds`` (default: forever)."""
    spec = project.streams.get(name)
    if spec is None:
        known = sorted(project.streams)
        raise UsageError(
            f"no stream named {name!r} (streams: {', '.join(known) or 'none'})",
            hint=did_you_mean(name, known),
        )
    store = store_for(project.config.store, project.warehouse_path)
    consumer = consumer_for(spec)
    try:
        with engine_for(project.config.engine) as con:
            runner = StreamRunner(spec, consumer, store, con)
            return runner.run(until_idle=until_idle, max_seconds=max_seconds, on_batch=on_batch)
    finally:
        consumer.close()
