"""Reading a Delta table's log: lockgate's commits, history, and the table's snapshot.

Every lockgate commit carries ``custom_metadata`` with ``lockgate.run_id``,
``lockgate.run_seq``, ``lockgate.batch_id``, ``lockgate.watermark`` (when given) and
``lockgate.mode``, and the application transaction ``("lockgate:<name>", run_seq)``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from deltalake import DeltaTable

from lockgate.storage.base import APP_ID_PREFIX, CommitInfo, CommitTag, TableSnapshot
from lockgate.storage.delta_errors import translated

if TYPE_CHECKING:
    import pyarrow as pa

    pass

#: prefix of lockgate's keys in a commit's ``custom_metadata``
META_PREFIX = "lockgate."
# last_commit reads the newest commits first and widens the window only when needed.
_LAST_COMMIT_WINDOWS: tuple[int | None, ...] = (10, 100, 1000, None)


def commit_metadata(mode: str, tag: CommitTag) -> dict[str, str]:
    """The ``custom_metadata`` of a lockgate commit."""
    meta = {
        META_PREFIX + "run_id": tag.run_id,
        META_PREFIX + "run_seq": str(tag.run_seq),
        META_PREFIX + "batch_id": tag.batch_id,
        META_PREFIX + "mode": str(mode),
    }
    if tag.watermark is not None:
        meta[META_PREFIX + "watermark"] = tag.watermark
    if tag.fence is not None:
        meta[META_PREFIX + "epoch"] = str(tag.fence[1])
    if tag.masked is not None:
        meta[META_PREFIX + "masked"] = json.dumps(list(tag.masked))
    return meta


def rows_written(entry: Mapping[str, Any]) -> int | None:
    metrics = entry.get("operationMetrics") or {}
    for key in ("num_added_rows", "num_source_rows"):
        if key in metrics:
            return int(metrics[key])
    if META_PREFIX + "rows" in entry:  # a commit of DuckDB-written files has no metrics
        return int(entry[META_PREFIX + "rows"])
    if entry.get("operation") == "CREATE TABLE":
        return 0
    return None


def _timestamp(entry: Mapping[str, Any]) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(entry["timestamp"]) / 1000, tz=dt.UTC)


def history(name: str, table: DeltaTable, limit: int | None) -> list[dict[str, Any]]:
    """Newest-first commits of ``table`` (see :meth:`TableStore.history`)."""
    with translated(name, "read history"):
        entries = table.history(limit)
    return [
        {
            "version": int(entry["version"]),
            "timestamp": _timestamp(entry),
            "operation": entry.get("operation"),
            "lockgate": {
                key[len(META_PREFIX) :]: value
                for key, value in entry.items()
                if key.startswith(META_PREFIX)
            },
            "rows": rows_written(entry),
            "parameters": entry.get("operationParameters") or {},
        }
        for entry in entries
    ]


def last_commit(name: str, table: DeltaTable) -> CommitInfo | None:
    """The newest commit written by lockgate, ``None`` if there is none.

    Reads the newest commits first (10, then 100, 1000, all), so on a long table that
    lockgate wrote last this reads a handful of log files, not the whole history.
    """
    for window in _LAST_COMMIT_WINDOWS:
        with translated(name, "read history"):
            entries = table.history(window)
        for entry in entries:
            if META_PREFIX + "run_id" in entry:
                return _commit_info(entry)
        if window is None or len(entries) < window:
            return None
    return None


def _commit_info(entry: Mapping[str, Any]) -> CommitInfo:
    return CommitInfo(
        version=int(entry["version"]),
        timestamp=_timestamp(entry),
        operation=str(entry.get("operation")),
        run_id=str(entry[META_PREFIX + "run_id"]),
        run_seq=int(entry[META_PREFIX + "run_seq"]),
        batch_id=str(entry[META_PREFIX + "batch_id"]),
        watermark=entry.get(META_PREFIX + "watermark"),
        rows=rows_written(entry),
        epoch=int(entry[META_PREFIX + "epoch"]) if META_PREFIX + "epoch" in entry else None,
        masked=_masked(entry.get(META_PREFIX + "masked")),
    )


def _masked(text: object) -> tuple[str, ...] | None:
    """The ``lockgate.masked`` column list of a commit (a JSON list; None: not recorded).

    >>> _masked('["email", "a,b"]'), _masked("[]"), _masked(None), _masked("oops")
    (('email', 'a,b'), (), None, None)
    """
    if not isinstance(text, str):
        return None
    try:
        names = json.loads(text)
    except ValueError:
        return None
    return tuple(map(str, names)) if isinstance(names, list) else None


def read_snapshot(name: str, table: DeltaTable) -> TableSnapshot:
    """The snapshot of an opened table: no further load of its log."""
    with translated(name, "read the table's log"):
        delta_schema = table.schema()  # this version's (the table object may be updated later)

        def read_schema() -> pa.Schema:
            import pyarrow as pa

            return pa.schema(delta_schema.to_arrow())

        return TableSnapshot(
            name=name,
            version=table.version(),
            read_schema=read_schema,
            partition_by=tuple(table.metadata().partition_columns),
            last_commit=last_commit(name, table),
            txn_version=table.transaction_version(APP_ID_PREFIX + name),
        )
