"""The loaded project: an immutable value with the datasets, their DAG and selection.

Built by :func:`lockgate.project.load_project`; nothing here reads files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lockgate._suggest import did_you_mean
from lockgate.connections import Connection
from lockgate.errors import ConfigError, Problem, UsageError
from lockgate.features.definitions import FeatureDefinitions
from lockgate.project.models import (
    DatasetSpec,
    GatePolicy,
    ProjectConfig,
    PythonTransformSpec,
    SchemaPolicy,
    SqlTransformSpec,
    WriteMode,
    WriteSpec,
)
from lockgate.project.python import TransformFunction
from lockgate.sources import IncrementalRequest, SourceRequest
from lockgate.streams.config import StreamSpec

#: a project's scratch folder under its root: run work files, caches, the default state db
WORK_DIR = ".lockgate"

_SQLITE_URL = re.compile(r"^(sqlite(?:\+\w+)?):///(.*)$")


@dataclass(frozen=True, eq=False)
class Project:
    """A validated project.

    ``datasets`` is in topological order (every dataset after its upstream datasets, ties
    in definition order); ``deps`` gives the direct upstream datasets of each dataset.
    """

    root: Path
    config: ProjectConfig
    datasets: Mapping[str, DatasetSpec]
    deps: Mapping[str, tuple[str, ...]]
    sql_texts: Mapping[str, str] = field(default_factory=dict, repr=False)
    python_transforms: Mapping[str, TransformFunction] = field(default_factory=dict, repr=False)
    #: the selected target (``--target``, ``LOCKGATE_TARGET`` or ``default_target``); its
    #: overrides are already applied to ``config``
    target: str | None = None
    #: feature views and services (``feature_views:``/``feature_services:`` in the YAML)
    features: FeatureDefinitions = field(default_factory=FeatureDefinitions, repr=False)
    #: ``streams:`` definitions (issue #14), by name
    streams: Mapping[str, StreamSpec] = field(default_factory=dict)

    # ---- lookups -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.config.name

    def dataset(self, name: str) -> DatasetSpec:
        """The dataset called ``name`` (ConfigError with a "did you mean" when unknown)."""
        self._require(name)
        return self.datasets[name]

    def sql_text(self, name: str) -> str:
        """The SQL of a SQL-transform dataset (inline, or the text of its ``sql_file``)."""
        spec = self.dataset(name)
        if not isinstance(spec.transform, SqlTransformSpec):
            raise UsageError(f"dataset '{name}' is a {spec.kind} dataset, not a SQL transform")
        return self.sql_texts[name]

    def python_transform(self, name: str) -> TransformFunction:
        """The registered Python function of a Python-transform dataset."""
        spec = self.dataset(name)
        if not isinstance(spec.transform, PythonTransformSpec):
            raise UsageError(f"dataset '{name}' is a {spec.kind} dataset, not a Python transform")
        return self.python_transforms[name]

    # ---- the DAG -----------------------------------------------------------------------

    def upstream(self, name: str, *, transitive: bool = False) -> tuple[str, ...]:
        """Upstream datasets of ``name`` (direct, or all ancestors), in topological order."""
        self._require(name)
        if not transitive:
            return tuple(self.deps[name])
        seen: set[str] = set()
        stack = list(self.deps[name])
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(self.deps[n])
        return tuple(n for n in self.datasets if n in seen)

    def downstream(self, name: str, *, transitive: bool = False) -> tuple[str, ...]:
        """Datasets that read ``name`` (direct, or all descendants), in topological order."""
        self._require(name)
        children: dict[str, list[str]] = {n: [] for n in self.datasets}
        for n, ups in self.deps.items():
            for u in ups:
                children[u].append(n)
        if not transitive:
            return tuple(children[name])
        seen: set[str] = set()
        stack = list(children[name])
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(children[n])
        return tuple(n for n in self.datasets if n in seen)

    def select(self, patterns: Sequence[str] | str | None = None) -> list[str]:
        """Dataset names matching selection patterns, in topological order.

        ``orders`` (just it), ``orders+`` (it and everything downstream), ``+orders`` (it and
        everything upstream), ``+orders+`` (both). Patterns may be comma- or space-separated;
        no patterns selects every dataset. Unknown names raise ConfigError (all at once).
        """
        if isinstance(patterns, str):
            patterns = [patterns]
        terms = [t for p in (patterns or ()) for t in re.split(r"[,\s]+", p) if t]
        if not terms:
            return list(self.datasets)
        chosen: set[str] = set()
        problems: list[Problem] = []
        for term in terms:
            up, down = term.startswith("+"), term.endswith("+") and len(term) > 1
            name = term.strip("+")
            if name not in self.datasets:
                problems.append(
                    Problem(
                        f"unknown dataset '{name}' in selection '{term}'",
                        hint=did_you_mean(name, self.datasets),
                    )
                )
                continue
            chosen.add(name)
            if up:
                chosen.update(self.upstream(name, transitive=True))
            if down:
                chosen.update(self.downstream(name, transitive=True))
        if problems:
            raise ConfigError(problems)
        return [n for n in self.datasets if n in chosen]

    # ---- effective settings -------------------------------------------------------------

    def effective_gate(self, name: str) -> GatePolicy:
        """The dataset's gate policy, or the project default."""
        return self.dataset(name).gate or self.config.defaults.gate

    def effective_schema_policy(self, name: str) -> SchemaPolicy:
        """The dataset's schema policy, or the project default."""
        return self.dataset(name).schema_policy or self.config.defaults.schema_policy

    def effective_write_mode(self, name: str) -> WriteMode:
        """``write.mode`` when the dataset sets it, else ``defaults.write_mode`` when the
        project sets it, else merge when the source declares its records' key
        (:meth:`SourceConfig.merge_keys`), else ``defaults.write_mode`` (append)."""
        return self.effective_write(name).mode

    def effective_write(self, name: str) -> WriteSpec:
        """The dataset's WriteSpec with the mode resolved (see :meth:`effective_write_mode`);
        a merge the source's key implies upserts on that key."""
        spec = self.dataset(name)
        write = spec.write
        if "mode" in write.model_fields_set:
            return write
        defaults = self.config.defaults
        keys = spec.source.merge_keys() if spec.source is not None else ()
        if keys and "write_mode" not in defaults.model_fields_set and spec.partition is None:
            return write.model_copy(update={"mode": WriteMode.MERGE, "keys": write.keys or keys})
        mode = defaults.write_mode
        return write if write.mode == mode else write.model_copy(update={"mode": mode})

    # ---- sources ------------------------------------------------------------------------

    def connection(self, name: str) -> Connection:
        """The named connection (unresolved: secrets are read when a source connects)."""
        spec = self.config.connections.get(name)
        if spec is None:
            raise ConfigError(
                [
                    Problem(
                        f"unknown connection '{name}'",
                        hint=did_you_mean(name, self.config.connections),
                    )
                ]
            )
        return Connection(name, spec.type, spec.fields(), root=self.root)

    def source_request(self, spec: DatasetSpec) -> SourceRequest:
        """What the source adapter of source dataset ``spec`` is given to read it."""
        return source_request(spec, self.root, self.connection)

    # ---- locations ----------------------------------------------------------------------

    @property
    def warehouse_path(self) -> Path:
        """The warehouse folder (``config.warehouse`` resolved against the project root)."""
        return _under(self.root, self.config.warehouse)

    @property
    def datasets_path(self) -> Path:
        return _under(self.root, self.config.datasets_dir)

    @property
    def work_dir(self) -> Path:
        """Scratch space of runs (DuckDB spill files, state db by default): ``.lockgate/``."""
        return self.root / WORK_DIR

    @property
    def state_url(self) -> str:
        """The state store URL; a relative ``sqlite:///path`` is made absolute under the root.

        Creates nothing (the state store creates its own folder).
        """
        return resolve_state_url(self.config.state, self.root)

    def _require(self, name: str) -> None:
        if name not in self.datasets:
            raise ConfigError(
                [Problem(f"unknown dataset '{name}'", hint=did_you_mean(name, self.datasets))]
            )


def source_request(
    spec: DatasetSpec, root: Path, connection: Callable[[str], Connection] | None = None
) -> SourceRequest:
    """The :class:`SourceRequest` of source dataset ``spec`` (``connection`` looks up a
    named connection; without it a source that names one fails when it connects)."""
    if spec.source is None:
        raise UsageError(f"dataset '{spec.name}' has no 'source' (it is a transform)")
    inc = spec.incremental
    name = spec.source.connection_name()
    return SourceRequest(
        dataset=spec.name,
        config=spec.source,
        project_root=root,
        columns=spec.columns,
        incremental=None
        if inc is None
        else IncrementalRequest(cursor=inc.cursor, lookback=inc.lookback, late=inc.late),
        connection=None if name is None or connection is None else connection(name),
        defined_in=spec.defined_in,
        defined_line=spec.defined_line,
        keys=spec.write.keys if spec.write.mode == WriteMode.MERGE else (),
    )


def _under(root: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else root / p


def resolve_state_url(url: str, root: Path) -> str:
    """Make a relative ``sqlite:///x.db`` URL absolute under ``root``; other URLs unchanged.

    >>> resolve_state_url("sqlite:///.lockgate/state.db", Path("/p"))
    'sqlite:////p/.lockgate/state.db'
    >>> resolve_state_url("postgresql://u@h/db", Path("/p"))
    'postgresql://u@h/db'
    """
    m = _SQLITE_URL.match(url)
    if not m:
        return url
    scheme, rest = m.groups()
    path, sep, query = rest.partition("?")
    if path in ("", ":memory:") or path.startswith("/") or Path(path).is_absolute():
        return url
    return f"{scheme}:///{(root / path).as_posix()}{sep}{query}"
