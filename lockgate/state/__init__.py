"""Record: the state store (runs, steps, checks, scores, watermarks, schemas, lock lease).

``StateStore.open(url)`` creates or migrates the database; see :mod:`lockgate.state.store`.
"""

from __future__ import annotations

from lockgate.state.errors import LeaseLost, LockHeld, StateSchemaError, StateStoreError
from lockgate.state.lock import Lease
from lockgate.state.migrations import LATEST_VERSION, MIGRATIONS
from lockgate.state.records import (
    AttemptInfo,
    CheckRecord,
    LockInfo,
    ProfileRecord,
    RunDetail,
    RunInfo,
    RunRecord,
    RunStatus,
    ScoreRecord,
    StepInfo,
    StepStatus,
    Watermark,
)
from lockgate.state.store import StateStore, schema_fingerprint

__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "AttemptInfo",
    "CheckRecord",
    "Lease",
    "LeaseLost",
    "LockHeld",
    "LockInfo",
    "ProfileRecord",
    "RunDetail",
    "RunInfo",
    "RunRecord",
    "RunStatus",
    "ScoreRecord",
    "StateSchemaError",
    "StateStore",
    "StateStoreError",
    "StepInfo",
    "StepStatus",
    "Watermark",
    "schema_fingerprint",
]
