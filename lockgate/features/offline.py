"""Training sets: the features every entity row's timestamp *knew*, as an Arrow table.

``training_set(project, "churn_model", labels)`` reads each feature view's dataset at its
current (pinned) Delta version, joins it point-in-time to the caller's rows
(:mod:`lockgate.features.pit`) and returns the caller's columns and rows, in the caller's
order, plus one column per feature. The table's schema metadata records the versions read
(``lockgate.feature_versions``) and the strategy of each view, so the same call at those
versions gives the same table.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pyarrow as pa
from sqlglot import exp

from lockgate.engine.base import Engine, engine_for
from lockgate.errors import InputError, UsageError
from lockgate.features import pit
from lockgate.features.definitions import FeatureViewSpec, resolve_features
from lockgate.sql import table_ref

if TYPE_CHECKING:
    import pyarrow.dataset as pads

    from lockgate.project import Project
    from lockgate.storage import DeltaStore

#: average feature rows per entity key above which the as-of timeline beats the range join
TIMELINE_ROWS_PER_KEY = 32.0
StrategyChoice = Literal["auto", "range", "timeline"]
_ENTITIES = "__lg_entities"


@dataclass(frozen=True)
class ViewSource:
    """A view's rows as the join reads them: an Arrow table/dataset and what it was pinned at."""

    spec: FeatureViewSpec
    features: tuple[str, ...]
    data: pa.Table | pads.Dataset
    version: int | None = None


@dataclass
class JoinReport:
    """What :func:`point_in_time` did, per view: strategy, rows per key, version read."""

    views: dict[str, dict[str, object]] = field(default_factory=dict)

    def metadata(self) -> dict[bytes, bytes]:
        return {b"lockgate.feature_versions": json.dumps(self.views, sort_keys=True).encode()}


def training_set(
    project: Project | str | Path,
    features: str | Sequence[str],
    entities: pa.Table | str | Path,
    *,
    timestamp_column: str = "event_timestamp",
    strategy: StrategyChoice = "auto",
    full_feature_names: bool = False,
    record: bool = True,
) -> pa.Table:
    """The point-in-time correct training set for ``features`` (a feature service, or feature
    views / ``view:feature`` refs) at the rows of ``entities`` (an Arrow table, a .parquet or
    .csv file, or a dataset of the project), keyed by the views' entity columns and
    ``timestamp_column``. Never drops or reorders a row: unmatched rows get NULL features.

    With ``record`` (the default) the set is recorded in the state store — the versions it
    read, the entity rows' hash (and a kept copy), the result's hash — under the id in the
    result's ``lockgate.training_set_id`` metadata, so
    :func:`lockgate.features.recorded.replay_training_set` re-creates it exactly."""
    from lockgate.features import recorded
    from lockgate.project import Project, load_project
    from lockgate.storage import DeltaStore

    proj = project if isinstance(project, Project) else load_project(project)
    chosen = resolve_features(proj.features, features)
    store = DeltaStore(proj.warehouse_path)
    sources = []
    for view, names in chosen:
        version = store.version(view.dataset)
        if version is None:
            raise InputError(
                f"feature view '{view.name}': dataset '{view.dataset}' has not been published",
                hint=f"run `lockgate run --select {view.dataset}` first",
            )
        sources.append(ViewSource(view, names, store.arrow_dataset(view.dataset, version), version))
    table, described = _entities(proj, store, entities)
    with engine_for(
        proj.config.engine, work_dir=proj.work_dir / "work", run_id=f"features-{uuid.uuid4().hex}"
    ) as ses:
        out = point_in_time(
            ses,
            table,
            sources,
            timestamp_column=timestamp_column,
            strategy=strategy,
            full_feature_names=full_feature_names,
        )
    if not record:
        return out
    refs = [features] if isinstance(features, str) else list(features)
    options = {"timestamp_column": timestamp_column, "full_feature_names": full_feature_names}
    return recorded.record(proj, refs, options, sources, described, table, out)


def point_in_time(
    ses: Engine,
    entities: pa.Table | Path,
    views: Sequence[ViewSource],
    *,
    timestamp_column: str = "event_timestamp",
    strategy: StrategyChoice = "auto",
    full_feature_names: bool = False,
    strategies: Mapping[str, pit.Strategy] | None = None,
) -> pa.Table:
    """The join itself, in an engine session (see :func:`training_set`): ``entities`` is an
    Arrow table or one Parquet file (scanned by the engine, its row order kept).
    ``strategies`` (view → strategy) overrides ``strategy`` per view (a replay)."""
    schema = _register_entities(ses, entities)
    if timestamp_column not in schema.names:
        raise UsageError(
            f"the entity rows have no column '{timestamp_column}' (the time of each row)",
            hint="pass --timestamp-column / timestamp_column=",
        )
    keep = list(schema.names)
    ent_types = ses.columns(_ENTITIES)
    ts = pit.utc(pit.col(timestamp_column, "e"), ent_types[timestamp_column])
    query: exp.Query = exp.select(exp.Star()).from_(table_ref(_ENTITIES))
    report = JoinReport()
    taken = set(keep)
    try:
        for i, src in enumerate(views):
            join = _view_join(ses, i, src, taken, keep, full_feature_names)
            per_key = _rows_per_key(ses, join)
            how = strategy if strategy != "auto" else pit.choose(per_key, TIMELINE_ROWS_PER_KEY)
            if strategies and src.spec.name in strategies:
                how = strategies[src.spec.name]
            if how == "range":
                query = pit.range_join(query, ts, join)
            else:
                query = pit.asof_join(query, ts, join, pit.timeline(join))
            report.views[src.spec.name] = {
                "dataset": src.spec.dataset,
                "version": src.version,
                "strategy": how,
                "rows_per_key": round(per_key, 3),
            }
            keep += list(join.outputs)
        out = ses.reader(pit.final(query, keep)).read_all()
    finally:
        for name in [*(f"__lg_view_{i}" for i in range(len(views))), _ENTITIES]:
            _forget(ses, name)
    # the caller's columns come back in the caller's types (DuckDB may respell a time zone)
    fields = [
        schema.field(c) if c in schema.names else out.schema.field(c) for c in out.column_names
    ]
    meta = {**(out.schema.metadata or {}), **report.metadata()}
    return out.cast(pa.schema(fields, metadata=meta))


def _register_entities(ses: Engine, entities: pa.Table | Path) -> pa.Schema:
    """Expose the entity rows as ``__lg_entities`` with their row number ``_lg_row``."""
    if isinstance(entities, pa.Table):
        rows = pa.array(np.arange(entities.num_rows, dtype=np.int64))
        ses.register_arrow(_ENTITIES, entities.append_column(pit.ROW, rows))
        return entities.schema
    import pyarrow.parquet as pq

    schema = pq.read_schema(entities)
    scan = exp.Anonymous(
        this="read_parquet",
        expressions=[
            exp.Literal.string(str(entities)),
            exp.EQ(this=exp.var("file_row_number"), expression=exp.true()),
        ],
    )
    q = exp.select(
        *[pit.col(c) for c in schema.names],
        exp.alias_(pit.col("file_row_number"), pit.ROW),
    ).from_(scan)
    ses.execute(exp.Create(this=table_ref(_ENTITIES), kind="VIEW", expression=q, replace=True))
    return schema


def _register_view(ses: Engine, name: str, data: pa.Table | pads.Dataset) -> None:
    """A plain Parquet dataset (a Delta version without deletion vectors or partitions) is
    scanned by the engine's own Parquet reader (parallel, ~2x cheaper than through Arrow);
    anything else through Arrow."""
    files = _parquet_files(data)
    if not files:
        ses.register_arrow(name, data)
        return
    scan = exp.Anonymous(
        this="read_parquet",
        expressions=[
            exp.Array(expressions=[exp.Literal.string(f) for f in files]),
            exp.EQ(this=exp.var("union_by_name"), expression=exp.true()),
        ],
    )
    q = exp.select(exp.Star()).from_(scan)
    ses.execute(exp.Create(this=table_ref(name), kind="VIEW", expression=q, replace=True))


def _parquet_files(data: pa.Table | pads.Dataset) -> list[str]:
    if isinstance(data, pa.Table):
        return []
    import pyarrow.dataset as pads

    if not isinstance(data, pads.FileSystemDataset) or data.format.default_extname != "parquet":
        return []
    if data.partitioning is not None and data.partitioning.schema.names:
        return []
    return [str(f) for f in data.files]


def _forget(ses: Engine, name: str) -> None:
    ses.unregister(name)
    ses.execute(exp.Drop(tables=[table_ref(name)], kind="VIEW", exists=True))


def _view_join(
    ses: Engine,
    i: int,
    src: ViewSource,
    taken: set[str],
    entity_cols: list[str],
    full_names: bool,
) -> pit.ViewJoin:
    spec = src.spec
    rel = f"__lg_view_{i}"
    _register_view(ses, rel, src.data)
    types = ses.columns(rel)
    missing = [
        c
        for c in (*spec.entities, spec.event_timestamp, spec.created_timestamp, *src.features)
        if c not in types
    ]
    if missing:
        raise InputError(
            f"feature view '{spec.name}': dataset '{spec.dataset}' has no column(s) "
            f"{', '.join(missing)}",
            hint="fix the view's definition, or publish the dataset with those columns",
        )
    absent = [k for k in spec.entities if k not in entity_cols]
    if absent:
        raise UsageError(
            f"feature view '{spec.name}' is keyed by {', '.join(spec.entities)}; the entity "
            f"rows have no column(s) {', '.join(absent)}",
        )
    outputs = tuple(f"{spec.name}__{f}" if full_names else f for f in src.features)
    clash = sorted(taken & set(outputs))
    if clash:
        raise UsageError(
            f"feature view '{spec.name}': output column(s) {', '.join(clash)} already exist",
            hint="pass full_feature_names=True (--full-feature-names) to name them view__feature",
        )
    taken.update(outputs)
    return pit.ViewJoin(
        relation=rel,
        entities=spec.entities,
        event_ts=spec.event_timestamp,
        created_ts=spec.created_timestamp,
        features=src.features,
        outputs=outputs,
        ttl=spec.ttl_delta,
        types=types,
    )


def _rows_per_key(ses: Engine, v: pit.ViewJoin) -> float:
    """Average rows per entity key (approximate distinct count: one scan of the keys)."""
    keys = [pit.col(k) for k in v.entities]
    key: exp.Expr = keys[0] if len(keys) == 1 else exp.Anonymous(this="hash", expressions=keys)
    q = exp.select(
        exp.Count(this=exp.Star()),
        exp.Anonymous(this="approx_count_distinct", expressions=[key]),
    ).from_(table_ref(v.relation))
    row = ses.execute(q).fetchone()
    n, distinct = (int(row[0]), int(row[1])) if row else (0, 0)
    return n / distinct if distinct else 0.0


def _entities(
    proj: Project, store: DeltaStore, entities: pa.Table | str | Path
) -> tuple[pa.Table | Path, dict[str, object]]:
    """The entity rows to join, and what they are (for the record): an Arrow table, a
    dataset of the project at its current version, or a .parquet/.csv file."""
    if isinstance(entities, pa.Table):
        return entities, {"kind": "arrow"}
    if isinstance(entities, str) and entities in proj.datasets:
        version = store.version(entities)
        if version is None:
            raise InputError(f"entity dataset '{entities}' has not been published")
        return store.read(entities, version), {
            "kind": "dataset",
            "dataset": entities,
            "version": version,
        }
    path = Path(entities)
    described: dict[str, object] = {"kind": "file", "path": str(path.resolve())}
    if path.suffix.lower() == ".parquet" and path.is_file():
        return path, described  # scanned by the engine in place
    return read_entity_file(path), described


def read_entity_file(path: Path) -> pa.Table:
    """Entity rows from a .parquet or .csv file."""
    if not path.is_file():
        raise InputError(f"entity file '{path}' not found")
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path)
    if path.suffix.lower() == ".csv":
        import pyarrow.csv as pacsv

        return pacsv.read_csv(path)
    raise UsageError(f"entity file '{path}': use a .parquet or .csv file")
