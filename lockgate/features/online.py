"""The online store: the latest known feature vector of every entity, read by key.

:class:`OnlineStore` is the seam (one small ABC, like httpx's transports): ``write`` a view's
vectors, ``read`` them by entity key. :class:`SQLiteOnlineStore` is the default (one row per
view and entity holding the packed vector and its event time). ``materialize`` computes the
vectors with the same known-at-T rule as training sets (at T = now), so online and offline
agree; ``get_online_features`` answers in the shape of Feast's feature server and enforces
the TTL at read time (a vector older than the TTL is reported ``OUTSIDE_MAX_AGE``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import pyarrow as pa
from sqlglot import exp

from lockgate.errors import UsageError
from lockgate.features import pit
from lockgate.features.definitions import FeatureViewSpec, resolve_features

if TYPE_CHECKING:
    from lockgate.engine.base import Engine
    from lockgate.project import Project

Key = tuple[object, ...]
#: JSON-compatible scalar of a feature vector
Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Vector:
    """One entity's latest known values of a view, and the event time they are from."""

    event_ts: datetime
    values: Mapping[str, Scalar]


class OnlineStore(ABC):
    """Latest feature vectors by (view, entity key)."""

    #: ``online_store:`` type name
    name: ClassVar[str] = ""

    @abstractmethod
    def write(self, view: str, vectors: Iterator[tuple[Key, Vector]], *, replace: bool) -> int:
        """Store vectors of ``view`` (all of them when ``replace``); returns how many."""

    @abstractmethod
    def read(self, view: str, keys: Sequence[Key]) -> list[Vector | None]:
        """The vectors of ``keys`` (None where the store has none), in order."""

    def close(self) -> None:
        return None


class SQLiteOnlineStore(OnlineStore):
    """One SQLite file; a table per view: ``key TEXT PRIMARY KEY, ts INTEGER, v TEXT``."""

    name = "sqlite"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()

    def _con(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, check_same_thread=False)
            con.execute("PRAGMA journal_mode=WAL")
            self._local.con = con
        return con

    @staticmethod
    def _table(view: str) -> str:
        return '"fv_' + view.replace('"', "") + '"'  # view names are identifiers (validated)

    def write(self, view: str, vectors: Iterator[tuple[Key, Vector]], *, replace: bool) -> int:
        con, table, n = self._con(), self._table(view), 0
        with con:
            if replace:
                con.execute(f"DROP TABLE IF EXISTS {table}")
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {table} "
                "(key TEXT PRIMARY KEY, ts INTEGER NOT NULL, v TEXT NOT NULL) WITHOUT ROWID"
            )
            rows = (
                (_key_text(k), _micros(vec.event_ts), json.dumps(vec.values, default=str))
                for k, vec in vectors
            )
            for chunk in _chunks(rows, 10_000):
                con.executemany(f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?)", chunk)
                n += len(chunk)
        return n

    def read(self, view: str, keys: Sequence[Key]) -> list[Vector | None]:
        texts = [_key_text(k) for k in keys]
        marks = ",".join("?" * len(texts))
        try:
            rows = self._con().execute(
                f"SELECT key, ts, v FROM {self._table(view)} WHERE key IN ({marks})", texts
            )
        except sqlite3.OperationalError:  # never materialised
            return [None] * len(keys)
        found = {k: Vector(_from_micros(ts), json.loads(v)) for k, ts, v in rows}
        return [found.get(t) for t in texts]

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None


def _key_text(key: Key) -> str:
    return json.dumps([str(k) if isinstance(k, datetime) else k for k in key])


def _micros(ts: datetime) -> int:
    aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1_000_000)


def _from_micros(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def _chunks(rows: Iterator[tuple[str, int, str]], n: int) -> Iterator[list[tuple[str, int, str]]]:
    chunk: list[tuple[str, int, str]] = []
    for r in rows:
        chunk.append(r)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def default_store(project: Project) -> SQLiteOnlineStore:
    return SQLiteOnlineStore(project.work_dir / "online.db")


# ---- materialise --------------------------------------------------------------------------


def latest_query(v: pit.ViewJoin, now: datetime) -> exp.Select:
    """Per key, the row known at ``now`` with the greatest (event, created, tie)."""
    at = exp.cast(
        exp.Literal.string(now.astimezone(UTC).replace(tzinfo=None).isoformat()), "TIMESTAMP"
    )
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


def materialize(
    project: Project,
    views: Sequence[str] = (),
    *,
    store: OnlineStore | None = None,
    now: datetime | None = None,
) -> dict[str, int]:
    """Write the latest known vector of every entity of ``views`` (default: all) into the
    online store (replacing what it held); returns vectors written per view."""
    from lockgate.engine.base import engine_for
    from lockgate.storage import DeltaStore

    store = store or default_store(project)
    names = list(views) or list(project.features.views)
    at = now or datetime.now(UTC)
    delta = DeltaStore(project.warehouse_path)
    written: dict[str, int] = {}
    with engine_for(
        project.config.engine,
        work_dir=project.work_dir / "work",
        run_id=f"materialize-{uuid.uuid4().hex}",
    ) as ses:
        for view, features in resolve_features(project.features, names):
            ses.register_arrow("__lg_online", delta.arrow_dataset(view.dataset))
            join = _join(ses, view, features)
            reader = ses.reader(latest_query(join, at))
            written[view.name] = store.write(view.name, _vectors(reader, join), replace=True)
            ses.unregister("__lg_online")
    return written


def _join(ses: Engine, view: FeatureViewSpec, features: tuple[str, ...]) -> pit.ViewJoin:
    return pit.ViewJoin(
        relation="__lg_online",
        entities=view.entities,
        event_ts=view.event_timestamp,
        created_ts=view.created_timestamp,
        features=features,
        outputs=features,
        ttl=view.ttl_delta,
        types=ses.columns("__lg_online"),
    )


def _vectors(reader: pa.RecordBatchReader, v: pit.ViewJoin) -> Iterator[tuple[Key, Vector]]:
    for batch in reader:
        for row in batch.to_pylist():
            key = tuple(row[k] for k in v.entities)
            ts = row["_lg_event_ts"]
            yield key, Vector(ts, {o: row[o] for o in v.outputs})


# ---- read ---------------------------------------------------------------------------------


def get_online_features(
    project: Project,
    features: str | Sequence[str],
    entities: Mapping[str, Sequence[object]],
    *,
    store: OnlineStore | None = None,
    now: datetime | None = None,
) -> dict[str, object]:
    """Feast's ``/get-online-features`` response for ``entities`` (column → values):
    ``{"metadata": {"feature_names": [...]}, "results": [{"values", "statuses",
    "event_timestamps"}, ...]}`` — entity columns first, then one entry per feature."""
    store = store or default_store(project)
    at = now or datetime.now(UTC)
    chosen = resolve_features(project.features, features)
    n = len(next(iter(entities.values()), []))
    names: list[str] = list(entities)
    epoch = _EPOCH
    results: list[dict[str, list[object]]] = [
        {"values": list(vals), "statuses": ["PRESENT"] * n, "event_timestamps": [epoch] * n}
        for vals in entities.values()
    ]
    for view, feats in chosen:
        missing = [k for k in view.entities if k not in entities]
        if missing:
            raise UsageError(
                f"feature view '{view.name}' needs entity column(s) {', '.join(missing)}"
            )
        keys = [tuple(entities[k][i] for k in view.entities) for i in range(n)]
        vectors = store.read(view.name, keys)
        ttl = view.ttl_delta
        for f in feats:
            names.append(f"{view.name}__{f}" if len(chosen) > 1 else f)
            cells = [_cell(vec, f, at, ttl) for vec in vectors]
            results.append(
                {
                    "values": [c[0] for c in cells],
                    "statuses": [c[1] for c in cells],
                    "event_timestamps": [c[2] for c in cells],
                }
            )
    return {"metadata": {"feature_names": names}, "results": results}


_EPOCH = "1970-01-01T00:00:00Z"


def _cell(
    vec: Vector | None, feature: str, at: datetime, ttl: timedelta | None
) -> tuple[Scalar, str, str]:
    """(value, Feast status, event time) of one feature of one entity."""
    if vec is None:
        return None, "NOT_FOUND", _EPOCH
    stamp = vec.event_ts.strftime("%Y-%m-%dT%H:%M:%SZ")
    if ttl is not None and not vec.event_ts > at - ttl:
        return None, "OUTSIDE_MAX_AGE", stamp
    return vec.values.get(feature), "PRESENT", stamp
