"""What the run loop uses of the project, the table store, the state store and the lock —
exactly that, as Protocols. mypy checks the run loop against them; the real classes
(:class:`~lockgate.project.Project`, :class:`~lockgate.storage.DeltaStore`,
:class:`~lockgate.state.StateStore`, :class:`~lockgate.state.Lease`) satisfy them
structurally, and a fake for a test needs only these methods."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import pyarrow as pa
from deltalake import DeltaTable
from sqlglot import exp

from lockgate.engine.session import Connection
from lockgate.project.models import GatePolicy, SchemaPolicy, WriteSpec
from lockgate.project.python import TransformFunction
from lockgate.state.records import StepInfo
from lockgate.storage.delta import CommitInfo, PublishResult

if TYPE_CHECKING:  # pyarrow.dataset imports pandas: only for the annotation
    import pyarrow.dataset as pads

    from lockgate.features.definitions import FeatureDefinitions

SchemaMode = Literal["merge", "overwrite"]


class ProjectView(Protocol):
    """The project as a step reads it: dataset definitions' code and effective settings."""

    @property
    def name(self) -> str: ...
    @property
    def root(self) -> Path: ...
    @property
    def deps(self) -> Mapping[str, Sequence[str]]: ...
    def sql_text(self, name: str) -> str: ...
    def python_transform(self, name: str) -> TransformFunction: ...
    def effective_write(self, name: str) -> WriteSpec: ...
    def effective_schema_policy(self, name: str) -> SchemaPolicy: ...
    def effective_gate(self, name: str) -> GatePolicy: ...
    @property
    def features(self) -> FeatureDefinitions: ...


class TableStoreLike(Protocol):
    """The warehouse: read table versions and commits, publish batches (one commit each)."""

    @property
    def warehouse(self) -> Path: ...
    def path(self, name: str) -> Path: ...
    def exists(self, name: str) -> bool: ...
    def version(self, name: str) -> int | None: ...
    def schema(self, name: str) -> pa.Schema | None: ...
    def last_commit(self, name: str) -> CommitInfo | None: ...
    def txn_version(self, name: str, app_id: str) -> int | None: ...
    def arrow_dataset(self, name: str, version: int | None = None) -> pads.Dataset: ...
    def open_table(self, name: str) -> DeltaTable: ...  # storage.health inspects it
    def forget(self, name: str) -> None: ...

    def publish(
        self,
        name: str,
        data: pa.RecordBatchReader,
        *,
        write: WriteSpec,
        run_id: str,
        run_seq: int,
        batch_id: str,
        watermark: str | None,
        schema_mode: SchemaMode | None = None,
    ) -> PublishResult: ...

    def publish_query(
        self,
        name: str,
        con: Connection,
        query: exp.Query,
        *,
        write: WriteSpec,
        run_id: str,
        run_seq: int,
        batch_id: str,
        watermark: str | None,
        schema_mode: SchemaMode | None = None,
        partition_values: Sequence[Mapping[str, object]] | None = None,
        batch_rows: int = 122_880,
    ) -> PublishResult: ...

    def publish_quarantine(
        self, name: str, data: pa.RecordBatchReader, *, run_id: str, run_seq: int, batch_id: str
    ) -> PublishResult: ...


class StateStoreLike(Protocol):
    """The state store as the run loop writes and reads it (steps, attempts, results)."""

    def dataset_steps(
        self, project: str, dataset: str, limit: int = 20, *, project_id: str | None = None
    ) -> list[StepInfo]: ...

    def start_step(
        self,
        run_id: str,
        project: str,
        dataset: str,
        input_versions: Mapping[str, object] | None = None,
    ) -> int: ...

    def record_attempt(
        self,
        step_id: int,
        attempt: int,
        status: str,
        error: str | None = None,
        transient: bool = False,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
    ) -> None: ...

    def finish_step(
        self,
        step_id: int,
        *,
        status: str,
        reason: str | None = None,
        rows_in: int | None = None,
        rows_out: int | None = None,
        rows_quarantined: int | None = None,
        rows_skipped: int | None = None,
        skip_reasons: Mapping[str, int] | None = None,
        output_version: int | None = None,
        quarantine_version: int | None = None,
        watermark: object = None,
        schema_version: int | None = None,
        batch_id: str | None = None,
        message: str | None = None,
        attempts: int | None = None,
        input_versions: Mapping[str, object] | None = None,
    ) -> None: ...

    def record_check_results(
        self,
        step_id: int,
        run_id: str,
        project: str,
        dataset: str,
        results: Sequence[Mapping[str, object]],
    ) -> None: ...

    def record_scores(
        self, run_id: str, project: str, dataset: str, scores: Mapping[str, float | None]
    ) -> None: ...

    def set_watermark(
        self,
        project: str,
        dataset: str,
        value: object,
        value_type: str | None = None,
        run_id: str | None = None,
    ) -> None: ...

    def record_schema(
        self,
        project: str,
        dataset: str,
        schema: Sequence[Mapping[str, object]],
        drift: object = None,
        run_id: str | None = None,
    ) -> int: ...


class LeaseLike(Protocol):
    """The run's project lock (:class:`lockgate.state.Lease`)."""

    @property
    def lost(self) -> bool: ...

    def check(self) -> None:
        """Raise ``LeaseLost`` unless the lock is still ours, as the state store says now."""


if TYPE_CHECKING:  # mypy proves that the real classes satisfy the ports
    from lockgate.project import Project
    from lockgate.state import Lease, StateStore
    from lockgate.storage import DeltaStore

    def _conforms(
        project: Project, store: DeltaStore, state: StateStore, lease: Lease
    ) -> tuple[ProjectView, TableStoreLike, StateStoreLike, LeaseLike]:
        return project, store, state, lease
