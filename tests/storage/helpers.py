"""Helpers shared by the storage tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from lockgate.project.models import WriteMode
from lockgate.storage import CommitTag, DeltaStore, PublishResult, TableWrite


def reader(
    data: pa.Table | Mapping[str, Sequence[Any]], batch_rows: int = 2
) -> pa.RecordBatchReader:
    """A streaming reader over ``data`` in small batches (several batches per publish)."""
    table = data if isinstance(data, pa.Table) else pa.table(dict(data))
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(batch_rows))


def publish(
    store: DeltaStore,
    name: str,
    data: pa.Table | Mapping[str, Sequence[Any]],
    *,
    seq: int,
    mode: WriteMode = WriteMode.APPEND,
    keys: tuple[str, ...] = (),
    partition_by: tuple[str, ...] = (),
    watermark: str | None = None,
    schema_mode: Any = None,
    partition_values: Sequence[Mapping[str, Any]] | None = None,
) -> PublishResult:
    write = TableWrite(mode=mode, keys=keys, partition_by=partition_by, schema_mode=schema_mode)
    if partition_values is not None:
        write = write.with_partitions(partition_values)
    return store.publish(
        name, reader(data), write=write, tag=CommitTag(f"run{seq}", seq, f"batch{seq}", watermark)
    )


def rows(store: DeltaStore, name: str, version: int | None = None) -> list[dict[str, Any]]:
    """The table's rows sorted by all columns (None sorts first)."""
    table = store.read(name, version=version)
    out = table.to_pylist()
    return sorted(out, key=lambda r: [(v is not None, v) for v in r.values()])
