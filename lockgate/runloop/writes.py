"""The dataset's ``write:`` config → the table store's own write spec (storage never reads
project definitions: this is the one place the two meet)."""

from __future__ import annotations

from lockgate.project.models import WriteMode, WriteSpec
from lockgate.storage.base import PublishMode, SchemaMode, TableWrite

_MODES: dict[WriteMode, PublishMode] = {
    WriteMode.APPEND: "append",
    WriteMode.OVERWRITE: "overwrite",
    WriteMode.OVERWRITE_PARTITIONS: "overwrite_partitions",
    WriteMode.MERGE: "merge",
}


def table_write(
    write: WriteSpec, schema_mode: SchemaMode | None = None, *, full_refresh: bool = False
) -> TableWrite:
    """How a batch of a dataset with ``write:`` lands in its table; a full refresh replaces
    the whole table, schema and partitioning included.

    >>> w = table_write(WriteSpec(mode="merge", keys=("id",)), "merge")
    >>> w.mode, w.keys, w.schema_mode
    ('merge', ('id',), 'merge')
    >>> table_write(WriteSpec(mode="merge", keys=("id",)), full_refresh=True).mode
    'overwrite'
    """
    if full_refresh:
        return TableWrite(
            "overwrite", keys=write.keys, partition_by=write.partition_by, schema_mode="overwrite"
        )
    return TableWrite(
        _MODES[write.mode],
        keys=write.keys,
        partition_by=write.partition_by,
        schema_mode=schema_mode,
    )
