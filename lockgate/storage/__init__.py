"""publish: the table-store seam (:mod:`lockgate.storage.base`) and its first adapter, Delta
tables written through delta-rs (append/overwrite/overwrite_partitions/merge, quarantine)."""

from __future__ import annotations

from lockgate.storage.base import (
    CommitInfo,
    CommitTag,
    PublishResult,
    TableScan,
    TableSnapshot,
    TableStore,
    TableWrite,
    register_store,
    store_for,
    store_kinds,
)
from lockgate.storage.delta import DeltaStore
from lockgate.storage.errors import PublishError, TableNotFound

__all__ = [
    "CommitInfo",
    "CommitTag",
    "DeltaStore",
    "PublishError",
    "PublishResult",
    "TableNotFound",
    "TableScan",
    "TableSnapshot",
    "TableStore",
    "TableWrite",
    "register_store",
    "store_for",
    "store_kinds",
]
