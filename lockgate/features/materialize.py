"""``lockgate features materialize``: the latest known vector of every entity, into the
online store — incrementally.

The store keeps a :class:`~lockgate.features.online.Mark` per view (dataset version and time
``at`` materialised, the view's definition fingerprint), written last in each batch. A run
with a mark recomputes only the entity keys that can have changed:

- keys of rows in data files the Delta log added or removed since the marked version (an
  append, a merge's rewritten files, an overwrite's old and new files), and
- keys of rows that became *known* since the marked time: ``mark.at < greatest(event_ts,
  created_ts) <= now`` (a late correction written with a future ``created_ts``, or an event
  in the future, becomes visible without any new Delta version).

For those keys it takes the latest known row at ``now`` over the whole current version (the
same rule as training sets) and upserts it, or deletes the key when no known row is left.
Everything else is a full refresh (``--full-refresh``; no mark; a changed definition; a
marked version newer than the table or no longer readable; a table with partitions or
deletion vectors; ``now`` before the marked time).

Crash safety: each view's batch writes its vectors, then its mark. A ``kill -9`` before the
mark leaves the old mark, so the re-run recomputes a superset of the same keys and
overwrites them (idempotent): the store ends up exactly as a full refresh would leave it
(SQLite writes a batch in one transaction, so readers never see half of it).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

import pyarrow as pa
from sqlglot import exp

from lockgate.errors import InputError
from lockgate.features import pit
from lockgate.features.definitions import FeatureViewSpec, resolve_features
from lockgate.features.online import Key, Mark, OnlineStore, Vector, open_store, utc
from lockgate.redact import redact
from lockgate.sql import table_ref
from lockgate.storage.crashpoints import crashpoint

if TYPE_CHECKING:
    from lockgate.engine.base import Engine
    from lockgate.project import Project
    from lockgate.state.store import StateStore
    from lockgate.storage import DeltaStore

log = logging.getLogger(__name__)

_REL = "__lg_online"
_CHANGED = "__lg_online_changed"
_KNOWN_ROWS = "__lg_online_rows"


@dataclass(frozen=True)
class MaterializeResult:
    """What one view's materialisation did."""

    view: str
    mode: str  # full / incremental / unchanged
    from_version: int | None
    to_version: int
    written: int
    deleted: int
    reason: str  # why this mode

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def definition_fingerprint(view: FeatureViewSpec, features: Sequence[str]) -> str:
    """A hash of what decides a view's vectors (a change needs a full refresh)."""
    spec = view.model_dump(mode="json", exclude={"description", "owner", "tags"})
    for f in spec.get("features", []):
        f.pop("description", None)
        f.pop("owner", None)
    text = repr((sorted(spec.items()), tuple(features)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def materialize(
    project: Project,
    views: Sequence[str] = (),
    *,
    store: OnlineStore | None = None,
    now: datetime | None = None,
    full_refresh: bool = False,
) -> dict[str, MaterializeResult]:
    """Bring the online store up to date for ``views`` (default: all) at ``now`` (default:
    the current time): incrementally from each view's mark, else a full refresh."""
    from lockgate.engine.base import engine_for
    from lockgate.features import history
    from lockgate.state import StateStore
    from lockgate.storage import DeltaStore

    own = store is None
    store = store or open_store(project)
    names = list(views) or list(project.features.views)
    at = utc(now) if now is not None else datetime.now(UTC)
    delta = DeltaStore(project.warehouse_path)
    results: dict[str, MaterializeResult] = {}
    run_id = uuid.uuid4().hex
    try:
        chosen = resolve_features(project.features, names)
        with StateStore.open(project.state_url) as state:
            history.settle(state, project.name, store)
            with engine_for(
                project.config.engine,
                work_dir=project.work_dir / "work",
                run_id=f"materialize-{run_id}",
            ) as ses:
                for view, features in chosen:
                    rec = _Recorder(state, project.name, run_id, view, store)
                    work = partial(_view, ses, delta, store, view, features, at, full_refresh, rec)
                    results[view.name] = rec.run(work)
    finally:
        if own:
            store.close()
    return results


class _Recorder:
    """One view's row of the materialisation history: ``running`` before anything is
    written, the plan (versions, mode, mark) before the batch, the outcome after it."""

    def __init__(
        self,
        state: StateStore,
        project: str,
        run_id: str,
        view: FeatureViewSpec,
        store: OnlineStore,
    ) -> None:
        from lockgate.state import materializations as mh

        self.state = state
        self.id = mh.start(
            state,
            run_id=run_id,
            project=project,
            view=view.name,
            dataset=view.dataset,
            online_store=redact(store.describe()),
        )
        crashpoint("materialize: history row written")

    def plan(self, from_version: int | None, to_version: int, mode: str, mark: Mark) -> None:
        from lockgate.state import materializations as mh

        mh.update(
            self.state,
            self.id,
            from_version=from_version,
            to_version=to_version,
            mode=mode,
            mark=mark.dumps(),
        )

    def run(self, work: Callable[[], MaterializeResult]) -> MaterializeResult:
        from lockgate.state import materializations as mh

        try:
            r = work()
        except BaseException as e:
            mh.finish(self.state, self.id, mh.FAILED, error=redact(f"{type(e).__name__}: {e}"))
            raise
        crashpoint("materialize: batch done, history not")
        mh.finish(
            self.state,
            self.id,
            mh.SUCCESS,
            mode=r.mode,
            reason=r.reason,
            from_version=r.from_version,
            to_version=r.to_version,
            rows_written=r.written,
            rows_deleted=r.deleted,
        )
        return r


def _view(
    ses: Engine,
    delta: DeltaStore,
    store: OnlineStore,
    view: FeatureViewSpec,
    features: tuple[str, ...],
    at: datetime,
    full_refresh: bool,
    rec: _Recorder,
) -> MaterializeResult:
    version = delta.version(view.dataset)
    if version is None:
        raise InputError(
            f"feature view '{view.name}': dataset '{view.dataset}' has not been published",
            hint=f"run `lockgate run --select {view.dataset}` first",
        )
    definition = definition_fingerprint(view, features)
    mark = None if full_refresh else store.mark(view.name)
    new_mark = Mark(view.dataset, version, at, definition)
    ses.register_arrow(_REL, delta.arrow_dataset(view.dataset, version))
    try:
        join = _join(ses, view, features)
        files, reason = _changes(delta, view, mark, version, definition, at)
        if full_refresh:
            reason = "--full-refresh"
        if files is None or mark is None:
            rec.plan(None, version, "full", new_mark)
            reader = ses.reader(latest_query(join, at))
            written, deleted = store.apply(
                view.name,
                _vectors(reader, join),
                (),
                replace=True,
                ttl=view.ttl_delta,
                mark=new_mark,
            )
            return MaterializeResult(view.name, "full", None, version, written, deleted, reason)
        rec.plan(mark.version, version, "incremental", new_mark)
        upserts: list[tuple[Key, Vector]] = []
        deletes: list[Key] = []
        for key, vec in _changed_vectors(ses, join, files, mark.at, at):
            if vec is None:
                deletes.append(key)
            else:
                upserts.append((key, vec))
        written, deleted = store.apply(
            view.name, upserts, deletes, replace=False, ttl=view.ttl_delta, mark=new_mark
        )
        mode = "incremental" if upserts or deletes else "unchanged"
        return MaterializeResult(view.name, mode, mark.version, version, written, deleted, reason)
    finally:
        for name in (_KNOWN_ROWS, _CHANGED):
            ses.execute(exp.Drop(tables=[table_ref(name)], kind="VIEW", exists=True))
        ses.unregister(_REL)


def _changes(
    delta: DeltaStore,
    view: FeatureViewSpec,
    mark: Mark | None,
    version: int,
    definition: str,
    at: datetime,
) -> tuple[list[str] | None, str]:
    """The data files added or removed since the mark (None: a full refresh, and why)."""
    if mark is None:
        return None, "never materialised"
    if mark.definition != definition or mark.dataset != view.dataset:
        return None, "the view's definition changed"
    if mark.version > version:
        return None, f"the marked version {mark.version} is newer than the table ({version})"
    if utc(mark.at) > at:
        return None, "materialising for a time before the last materialisation"
    from deltalake import DeltaTable

    from lockgate.storage.scan import is_plain

    path = str(delta.path(view.dataset))
    try:
        new = DeltaTable(path, version=version)
        old = DeltaTable(path, version=mark.version) if mark.version != version else new
    except Exception:  # the marked version is gone (log cleaned up)
        return None, f"version {mark.version} is no longer readable"
    if not (is_plain(new) and is_plain(old)):
        return None, "the table has partitions or deletion vectors"
    before, after = set(old.file_uris()), set(new.file_uris())
    return sorted(before ^ after), f"changes since version {mark.version}"


def _join(ses: Engine, view: FeatureViewSpec, features: tuple[str, ...]) -> pit.ViewJoin:
    types = ses.columns(_REL)
    missing = [
        c
        for c in (*view.entities, view.event_timestamp, view.created_timestamp, *features)
        if c not in types
    ]
    if missing:
        raise InputError(
            f"feature view '{view.name}': dataset '{view.dataset}' has no column(s) "
            f"{', '.join(missing)}",
            hint="fix the view's definition, or publish the dataset with those columns",
        )
    return pit.ViewJoin(
        relation=_REL,
        entities=view.entities,
        event_ts=view.event_timestamp,
        created_ts=view.created_timestamp,
        features=features,
        outputs=features,
        ttl=view.ttl_delta,
        types=types,
    )


def _literal_ts(ts: datetime) -> exp.Expr:
    return exp.cast(exp.Literal.string(utc(ts).replace(tzinfo=None).isoformat()), "TIMESTAMP")


def latest_query(v: pit.ViewJoin, now: datetime) -> exp.Select:
    """Per key, the row known at ``now`` with the greatest (event, created, tie)."""
    at = _literal_ts(now)
    rows = pit.feature_rows(v).subquery("r")
    known = exp.and_(
        exp.LTE(this=pit.col("_lg_event_ts"), expression=at),
        exp.LTE(this=pit.col("_lg_created_ts"), expression=at.copy()),
    )
    order = [
        exp.Ordered(this=pit.col(c), desc=True)
        for c in ("_lg_event_ts", "_lg_created_ts", "_lg_tie")
    ]
    rn = exp.Window(
        this=exp.RowNumber(),
        partition_by=[pit.col(k) for k in v.entities],
        order=exp.Order(expressions=order),
    )
    cols = [pit.col(k) for k in v.entities] + [pit.col("_lg_event_ts")]
    cols += [pit.col(o) for o in v.outputs]
    return (
        exp.select(*cols)
        .from_(rows)
        .where(known)
        .qualify(exp.EQ(this=rn, expression=exp.Literal.number(1)))
    )


def _changed_vectors(
    ses: Engine, v: pit.ViewJoin, files: list[str], since: datetime, at: datetime
) -> Iterator[tuple[Key, Vector | None]]:
    """(key, latest vector at ``at`` or None) of every key that may have changed."""
    from lockgate.storage.scan import read_parquet

    keys = [pit.col(k) for k in v.entities]
    not_null = exp.and_(*[exp.Not(this=exp.Is(this=k.copy(), expression=exp.Null())) for k in keys])
    rows = pit.feature_rows(v)
    known = exp.Greatest(this=pit.col("_lg_event_ts"), expressions=[pit.col("_lg_created_ts")])
    newly_known = (
        exp.select(*[k.copy() for k in keys])
        .from_(rows.subquery("r"))
        .where(
            exp.and_(
                exp.GT(this=known, expression=_literal_ts(since)),
                exp.LTE(this=known.copy(), expression=_literal_ts(at)),
            )
        )
    )
    changed: exp.Query = newly_known
    if files:
        in_files = read_parquet(files, list(v.entities)).where(not_null)
        changed = exp.union(in_files, newly_known, distinct=True)
    else:
        changed = exp.select(*[k.copy() for k in keys]).from_(newly_known.subquery("n")).distinct()
    ses.execute(exp.Create(this=table_ref(_CHANGED), kind="VIEW", expression=changed, replace=True))
    # the feature rows of the changed keys only: the window below sorts just those
    on = exp.and_(*[exp.EQ(this=pit.col(k, "f"), expression=pit.col(k, "c")) for k in v.entities])
    subset = (
        exp.select(exp.Column(this=exp.Star(), table=exp.to_identifier("f")))
        .from_(exp.alias_(table_ref(v.relation), "f", table=True))
        .join(exp.alias_(table_ref(_CHANGED), "c", table=True), on=on, join_type="SEMI")
    )
    ses.execute(
        exp.Create(this=table_ref(_KNOWN_ROWS), kind="VIEW", expression=subset, replace=True)
    )
    latest = latest_query(replace(v, relation=_KNOWN_ROWS), at).subquery("l")
    on2 = exp.and_(*[exp.EQ(this=pit.col(k, "c"), expression=pit.col(k, "l")) for k in v.entities])
    q = (
        exp.select(
            *[exp.alias_(pit.col(k, "c"), k) for k in v.entities],
            pit.col("_lg_event_ts", "l"),
            *[pit.col(o, "l") for o in v.outputs],
        )
        .from_(exp.alias_(table_ref(_CHANGED), "c", table=True))
        .join(latest, on=on2, join_type="LEFT")
    )
    for batch in ses.reader(q):
        for row in batch.to_pylist():
            key = tuple(row[k] for k in v.entities)
            ts = row["_lg_event_ts"]
            yield key, (None if ts is None else Vector(ts, {o: row[o] for o in v.outputs}))


def _vectors(reader: pa.RecordBatchReader, v: pit.ViewJoin) -> Iterator[tuple[Key, Vector]]:
    for batch in reader:
        for row in batch.to_pylist():
            key = tuple(row[k] for k in v.entities)
            yield key, Vector(row["_lg_event_ts"], {o: row[o] for o in v.outputs})
