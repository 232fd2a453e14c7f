"""Sensors: what a dataset's step waits for before it runs (``sensors:`` of a dataset).

Each sensor is checked every ``poll`` until it is met or ``deadline`` passes; then the step
fails with :class:`SensorTimeout`, naming the sensor and what it saw. A met sensor returns a
*token* (the files' fingerprint, the table version) that the step records with its inputs,
so the next run waits for something newer than what this one consumed.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from lockgate.errors import TerminalError

if TYPE_CHECKING:
    from lockgate.engine.base import Engine
    from lockgate.project.models import DatasetSpec
    from lockgate.project.ops_models import SensorSpec
    from lockgate.runloop.context import StepContext
    from lockgate.storage.base import TableStore

log = logging.getLogger(__name__)


class SensorTimeout(TerminalError):
    """A sensor was not met before its deadline."""


def file_token(root: Path, pattern: str) -> str | None:
    """Fingerprint of the files matching ``pattern`` (None: no file matches)."""
    full = pattern if os.path.isabs(pattern) else str(root / pattern)
    paths = sorted(glob.glob(full, recursive=True))
    files = [p for p in paths if os.path.isfile(p)]
    if not files:
        return None
    h = hashlib.sha256()
    for p in files:
        st = os.stat(p)
        h.update(f"{os.path.relpath(p, root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def sql_true(ses: Engine, store: TableStore, sql: str) -> bool:
    """Whether ``sql`` (DuckDB; datasets read by name at their current version) returns a
    true first value. Runs on a cursor of the step's engine session, whose temporary views
    of the datasets go with it."""
    import sqlglot
    from sqlglot import exp

    from lockgate.storage.scan import scan_select

    cur = ses.cursor()
    try:
        for t in sqlglot.parse_one(sql, read="duckdb").find_all(exp.Table):
            name = t.name
            if not name or not store.exists(name):
                continue
            pinned = store.scan(name)
            q = scan_select(pinned)
            if q is None:
                cur.register_arrow(name, pinned.dataset)
                continue
            temp = exp.Properties(expressions=[exp.TemporaryProperty()])
            view = exp.Create(
                this=exp.Table(this=exp.to_identifier(name, quoted=True)),
                kind="VIEW",
                expression=q,
                replace=True,
                properties=temp,
            )
            cur.execute(view)
        row = cur.execute(sql).fetchone()
    finally:
        cur.close()
    return bool(row and row[0])


def check(ctx: StepContext, sensor: SensorSpec, last: object) -> tuple[bool, object, str]:
    """(met, token, what was seen) of one sensor; ``last``: its token at the last publish."""
    if sensor.type == "file":
        assert sensor.path is not None
        token = file_token(Path(ctx.project.root), sensor.path)
        if token is None:
            return False, None, f"no file matches {sensor.path!r}"
        if token == last:
            return False, token, f"the files matching {sensor.path!r} are unchanged"
        return True, token, "new files"
    if sensor.type == "table":
        assert sensor.dataset is not None
        version = ctx.store.version(sensor.dataset)
        if version is None:
            return False, None, f"dataset '{sensor.dataset}' has not been published"
        if sensor.min_version is not None and version < sensor.min_version:
            return False, version, f"'{sensor.dataset}' is at version {version}"
        if isinstance(last, int) and version <= last:
            return False, version, f"'{sensor.dataset}' is still at version {version}"
        return True, version, f"'{sensor.dataset}' version {version}"
    assert sensor.sql is not None
    return (
        (True, None, "true")
        if sql_true(ctx.session, ctx.store, sensor.sql)
        else (False, None, "false")
    )


def wait_for_sensors(
    ctx: StepContext,
    spec: DatasetSpec,
    last: Mapping[str, object],
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, object]:
    """Wait for every sensor of ``spec`` in turn; their tokens by label. Raises
    :class:`SensorTimeout` when one is not met within its deadline."""
    tokens: dict[str, object] = {}
    for sensor in spec.sensors:
        label = sensor.label
        start = clock()
        while True:
            ctx.report(spec.name, f"waiting for sensor {label}")
            met, token, seen = check(ctx, sensor, last.get(label))
            if met:
                tokens[label] = token
                break
            waited = clock() - start
            if waited >= sensor.deadline_seconds:
                raise SensorTimeout(
                    f"dataset '{spec.name}': sensor {label} not met within {sensor.deadline} "
                    f"({seen})",
                    hint="the step did not run; it runs when the next run finds the sensor met "
                    "(or raise the sensor's deadline)",
                )
            if ctx.lease is not None:
                ctx.lease.check()
            sleep(min(sensor.poll_seconds, max(0.0, sensor.deadline_seconds - waited)))
    return tokens
