"""What the run loop uses of the project, the table store, the state store and the lock —
exactly that, as Protocols. mypy checks the run loop against them; the real classes
(:class:`~lockgate.project.Project`, :class:`~lockgate.storage.DeltaStore`,
:class:`~lockgate.state.StateStore`, :class:`~lockgate.state.Lease`) satisfy them
structurally, and a fake for a test needs only these methods."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from lockgate.project.models import DatasetSpec, GatePolicy, SchemaPolicy, WriteSpec
from lockgate.project.python import TransformFunction
from lockgate.sources import SourceRequest
from lockgate.storage.base import TableStore

if TYPE_CHECKING:  # pyarrow.dataset imports pandas: only for the annotation
    from lockgate.engine.session import Session
    from lockgate.features.definitions import FeatureDefinitions

SchemaMode = Literal["merge", "overwrite"]


class SessionSource(Protocol):
    """The run's engine sessions: the calling thread's, opened on first use."""

    @property
    def opened(self) -> bool: ...
    def current(self) -> Session: ...


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


class LeaseLike(Protocol):
    """The run's project lock (:class:`lockgate.state.Lease`)."""

    @property
    def lost(self) -> bool: ...

    def check(self) -> None:
        """Raise ``LeaseLost`` unless the lock is still ours, as the state store says now."""


if TYPE_CHECKING:  # mypy proves that the real classes satisfy the ports
    from lockgate.project import Project
    from lockgate.state import Lease
    from lockgate.storage import DeltaStore

    def _conforms(
        project: Project, store: DeltaStore, lease: Lease
    ) -> tuple[ProjectView, TableStore, LeaseLike]:
        return project, store, lease
