"""Feature definitions: ``feature_views:`` and ``feature_services:`` in the project's YAML.

Immutable values (frozen pydantic, ``extra="forbid"``) parsed by the project loader next to
the datasets of a file, then validated against the columns of each view's dataset. A view
reads one published dataset; a service groups features of views for one model::

    feature_views:
      - name: customer_spend
        dataset: customer_daily
        entities: [customer_id]
        event_timestamp: day
        created_timestamp: loaded_at     # default: _lg_ingested_at
        ttl: 30d                         # exclusive: event_ts > T - ttl
        features:
          - name: spend_30d
            description: sum of order amounts over 30 days
    feature_services:
      - name: churn_model
        features: [customer_spend, tickets:tickets_90d]

Nothing here imports the loader: :func:`load_feature_items` is handed the raw YAML lists
(with their line numbers) and the known dataset schemas, and returns specs and problems.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from pydantic import Field, ValidationError, field_validator, model_validator

from lockgate._duration import parse_duration
from lockgate._suggest import did_you_mean
from lockgate._yaml import LineDict, LineList, line_of, plain
from lockgate.errors import Problem
from lockgate.project.models import Frozen, name_problem
from lockgate.project.pydantic_errors import validation_problems

#: the column lockgate stamps on every published row (when the source has no created time)
INGESTED_AT = "_lg_ingested_at"
#: top-level keys of a project YAML file that this module reads
FEATURE_KEYS = ("feature_views", "feature_services")


def _check_name(value: str) -> str:
    problem = name_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


class FeatureSpec(Frozen):
    """One feature column of a view."""

    name: str = Field(description="a column of the view's dataset")
    description: str | None = None
    owner: str | None = None


class FeatureViewSpec(Frozen):
    """Features of one dataset, keyed by entity columns, known at (event, created) time."""

    name: str = Field(description="unique among feature views, ignoring case")
    dataset: str = Field(description="the project dataset the features are read from")
    entities: tuple[str, ...] = Field(min_length=1, description="entity key column(s)")
    event_timestamp: str = Field(description="when the feature value became true")
    created_timestamp: str = Field(
        default=INGESTED_AT,
        description="when the row was written (a late correction has a later one); a row is "
        "known at T only when both timestamps are <= T",
    )
    ttl: str | int | float | None = Field(
        default=None, description="a matched row older than this is NULL (exclusive bound)"
    )
    features: tuple[FeatureSpec, ...] = Field(min_length=1)
    description: str | None = None
    owner: str | None = None
    tags: tuple[str, ...] = ()
    defined_in: str | None = Field(default=None, exclude=True)
    defined_line: int | None = Field(default=None, exclude=True)

    _name = field_validator("name")(_check_name)

    @field_validator("features", mode="before")
    @classmethod
    def _short_features(cls, v: object) -> object:
        """``features: [a, b]`` is short for ``[{name: a}, {name: b}]``."""
        if isinstance(v, list | tuple):
            return [{"name": x} if isinstance(x, str) else x for x in v]
        return v

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, v: str | int | float | None) -> str | int | float | None:
        if v is not None and parse_duration(v) <= timedelta(0):
            raise ValueError("ttl must be positive")
        return v

    @model_validator(mode="after")
    def _distinct_columns(self) -> FeatureViewSpec:
        names = [f.name for f in self.features]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"feature(s) listed twice: {', '.join(dup)}")
        special = {*self.entities, self.event_timestamp, self.created_timestamp}
        clash = sorted(special & set(names))
        if clash:
            raise ValueError(f"{', '.join(clash)} is a key or timestamp, not a feature")
        return self

    @property
    def ttl_delta(self) -> timedelta | None:
        return None if self.ttl is None else parse_duration(self.ttl)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)


class FeatureServiceSpec(Frozen):
    """The features one model reads: ``view`` (all its features) or ``view:feature``."""

    name: str
    features: tuple[str, ...] = Field(min_length=1)
    description: str | None = None
    owner: str | None = None
    defined_in: str | None = Field(default=None, exclude=True)
    defined_line: int | None = Field(default=None, exclude=True)

    _name = field_validator("name")(_check_name)


@dataclass(frozen=True)
class FeatureDefinitions:
    """Every feature view and service of a project (by name)."""

    views: Mapping[str, FeatureViewSpec] = field(default_factory=dict)
    services: Mapping[str, FeatureServiceSpec] = field(default_factory=dict)


_Spec = TypeVar("_Spec", "FeatureViewSpec", "FeatureServiceSpec")


@dataclass
class _Raw:
    file: str
    key: str  # feature_views | feature_services
    items: object
    line: int


@dataclass
class FeatureLoader:
    """Collects the raw ``feature_*`` lists of each file, then validates them at once."""

    raws: list[_Raw] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def collect(self, data: LineDict, file: str) -> None:
        for key in FEATURE_KEYS:
            if key in data and data[key] is not None:
                self.raws.append(_Raw(file, key, data[key], data.key_line(key)))

    def load(self, schemas: Mapping[str, Mapping[str, str] | None]) -> FeatureDefinitions:
        """Validate everything collected; ``schemas``: dataset → its columns (None: unknown)."""
        views: dict[str, FeatureViewSpec] = {}
        services: dict[str, FeatureServiceSpec] = {}
        for raw in self.raws:
            for item, line, lraw in self._items(raw):
                if raw.key == "feature_views":
                    view = self._parse(FeatureViewSpec, item, raw.file, line)
                    if view is not None and self._unique(views, view, raw.file, line):
                        self._check_view(view, schemas, raw.file, lraw)
                        views[view.name] = view
                else:
                    svc = self._parse(FeatureServiceSpec, item, raw.file, line)
                    if svc is not None and self._unique(services, svc, raw.file, line):
                        services[svc.name] = svc
        for svc in services.values():
            self._check_service(svc, views)
        return FeatureDefinitions(views, services)

    def _items(self, raw: _Raw) -> list[tuple[LineDict, int, LineDict]]:
        if not isinstance(raw.items, LineList):
            self.add(f"'{raw.key}' must be a list (- name: ...)", raw.file, raw.line)
            return []
        out = []
        for i, item in enumerate(raw.items):
            line = raw.items.item_line(i)
            if not isinstance(item, LineDict):
                self.add(f"{raw.key}[{i}] must be a mapping (name: ...)", raw.file, line)
                continue
            out.append((item, line, item))
        return out

    def _parse(self, model: type[_Spec], raw: LineDict, file: str, line: int) -> _Spec | None:
        name = raw.get("name")
        kind = "feature view" if model is FeatureViewSpec else "feature service"
        label = f"{kind} '{name}'" if isinstance(name, str) else kind
        data = {k: v for k, v in plain(raw).items() if k not in ("defined_in", "defined_line")}
        try:
            return model.model_validate({**data, "defined_in": file, "defined_line": line})
        except ValidationError as e:
            self.problems.extend(validation_problems(e, raw, file, model, label))
            return None

    def _unique(
        self,
        seen: Mapping[str, FeatureViewSpec | FeatureServiceSpec],
        spec: FeatureViewSpec | FeatureServiceSpec,
        file: str,
        line: int,
    ) -> bool:
        for other in seen.values():
            if other.name.lower() == spec.name.lower():
                kind = "feature view" if isinstance(spec, FeatureViewSpec) else "feature service"
                self.add(
                    f"duplicate {kind} name '{spec.name}' (first defined at "
                    f"{other.defined_in}:{other.defined_line})",
                    file,
                    line,
                )
                return False
        return True

    def _check_view(
        self,
        view: FeatureViewSpec,
        schemas: Mapping[str, Mapping[str, str] | None],
        file: str,
        raw: LineDict,
    ) -> None:
        label = f"feature view '{view.name}'"
        if view.dataset not in schemas:
            self.add(
                f"{label}: unknown dataset '{view.dataset}'",
                file,
                line_of(raw, ("dataset",)),
                hint=did_you_mean(view.dataset, schemas) or "a feature view reads a dataset",
            )
            return
        columns = schemas[view.dataset]
        if columns is None:
            return  # the dataset's schema is not known before it runs: checked at read time
        have = {*columns, INGESTED_AT}
        uses: list[tuple[str, tuple[int | str, ...]]] = [
            (c, ("entities", i)) for i, c in enumerate(view.entities)
        ]
        uses += [(view.event_timestamp, ("event_timestamp",))]
        uses += [(view.created_timestamp, ("created_timestamp",))]
        uses += [(f.name, ("features", i)) for i, f in enumerate(view.features)]
        for column, loc in uses:
            if column not in have:
                self.add(
                    f"{label}: column '{column}' is not a column of dataset '{view.dataset}'",
                    file,
                    line_of(raw, loc),
                    hint=did_you_mean(column, columns) or f"columns: {', '.join(columns)}",
                )

    def _check_service(self, svc: FeatureServiceSpec, views: Mapping[str, FeatureViewSpec]) -> None:
        for ref in svc.features:
            view_name, _, feature = ref.partition(":")
            view = views.get(view_name)
            problem = None
            if view is None:
                problem = (f"unknown feature view '{view_name}'", did_you_mean(view_name, views))
            elif feature and feature not in view.feature_names:
                problem = (
                    f"feature view '{view_name}' has no feature '{feature}'",
                    did_you_mean(feature, view.feature_names),
                )
            if problem is not None:
                self.add(
                    f"feature service '{svc.name}': {problem[0]}",
                    svc.defined_in,
                    svc.defined_line,
                    hint=problem[1] or "list 'view' or 'view:feature'",
                )

    def add(
        self, message: str, file: str | None, line: int | None, hint: str | None = None
    ) -> None:
        self.problems.append(Problem(message, file=file, line=line, hint=hint))


def resolve_features(
    defs: FeatureDefinitions, names: str | Sequence[str]
) -> list[tuple[FeatureViewSpec, tuple[str, ...]]]:
    """``names`` (a service, or views / ``view:feature`` refs) → (view, its features) in
    order, each view once."""
    from lockgate.errors import UsageError

    refs: list[str] = []
    for n in [names] if isinstance(names, str) else list(names):
        if n in defs.services:
            refs.extend(defs.services[n].features)
        else:
            refs.append(n)
    picked: dict[str, dict[str, None]] = {}  # view -> its features, ordered, each once
    known: dict[str, frozenset[str]] = {}  # each view's feature names, computed once
    for ref in refs:
        view_name, _, feature = ref.partition(":")
        view = defs.views.get(view_name)
        if view is None:
            raise UsageError(
                f"unknown feature view or service '{view_name}'",
                hint=did_you_mean(view_name, [*defs.views, *defs.services]),
            )
        if view_name not in known:
            known[view_name] = frozenset(view.feature_names)
        if feature and feature not in known[view_name]:
            raise UsageError(
                f"feature view '{view_name}' has no feature '{feature}'",
                hint=did_you_mean(feature, view.feature_names),
            )
        chosen = picked.setdefault(view_name, {})
        for f in [feature] if feature else view.feature_names:
            chosen[f] = None
    return [(defs.views[v], tuple(fs)) for v, fs in picked.items()]


def stamped_datasets(defs: FeatureDefinitions) -> frozenset[str]:
    """Datasets whose published rows carry ``_lg_ingested_at`` (a view reads them without a
    created-timestamp column of their own)."""
    return frozenset(v.dataset for v in defs.views.values() if v.created_timestamp == INGESTED_AT)
