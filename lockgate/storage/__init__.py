"""publish: Delta tables (append/overwrite/overwrite_partitions/merge) and quarantine tables."""

from __future__ import annotations

from lockgate.storage.delta import CommitInfo, DeltaStore, PublishResult
from lockgate.storage.errors import PublishError, TableNotFound

__all__ = ["CommitInfo", "DeltaStore", "PublishError", "PublishResult", "TableNotFound"]
