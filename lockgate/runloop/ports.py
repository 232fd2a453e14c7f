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

from lockgate.project.models import DatasetSpec, GatePolicy, SchemaPolicy, WriteSpec
from lockgate.project.python import TransformFunction
from lockgate.sources import SourceRequest
from lockgate.state.records import StepInfo
from lockgate.storage.base import TableStore

if TYPE_CHECKING:  # pyarrow.dataset imports pandas: only for the annotation
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
    def source_request(self, spec: DatasetSpec) -> SourceRequest: ...
    @property
    def features(self) -> FeatureDefinitions: ...


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
    ) -> tuple[ProjectView, TableStore, StateStoreLike, LeaseLike]:
        return project, store, state, lease
