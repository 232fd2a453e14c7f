"""The online store: the latest known feature vector of every entity, read by key.

:class:`OnlineStore` is the seam (one small ABC, like httpx's transports): ``apply`` a batch
of a view's vectors (upserts, deletes, then the view's :class:`Mark`), ``read`` them by
entity key, ``mark`` says what the store holds. :class:`SQLiteOnlineStore` is the default
(one row per view and entity holding the packed vector and its event time; a batch is one
transaction); :class:`lockgate.features.online_redis.RedisOnlineStore` the optional one
(``online_store: {type: redis}``). :func:`open_store` picks the project's.
:mod:`lockgate.features.materialize` computes the vectors with the same known-at-T rule as
training sets; ``get_online_features`` answers in the shape of Feast's feature server and
enforces the TTL at read time (a vector older than the TTL is reported ``OUTSIDE_MAX_AGE``).
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar

from lockgate._suggest import did_you_mean
from lockgate.errors import UsageError
from lockgate.storage.crashpoints import crashpoint

if TYPE_CHECKING:
    from lockgate.features.store_config import OnlineStoreConfig
    from lockgate.project import Project

Key = tuple[object, ...]
#: JSON-compatible scalar of a feature vector
Scalar = str | int | float | bool | None
_T = TypeVar("_T")


@dataclass(frozen=True)
class Vector:
    """One entity's latest known values of a view, and the event time they are from."""

    event_ts: datetime
    values: Mapping[str, Scalar]


@dataclass(frozen=True)
class Mark:
    """What the store holds for a view: the dataset's Delta ``version`` materialised, the
    time ``at`` it was materialised for (rows known at ``at``) and the view's ``definition``
    fingerprint (a changed definition needs a full refresh). Written last in every batch."""

    dataset: str
    version: int
    at: datetime
    definition: str

    def dumps(self) -> str:
        return json.dumps({**asdict(self), "at": self.at.isoformat()}, sort_keys=True)

    @classmethod
    def loads(cls, text: str | bytes | None) -> Mark | None:
        if text is None:
            return None
        try:
            d = json.loads(text)
            return cls(
                d["dataset"], int(d["version"]), datetime.fromisoformat(d["at"]), d["definition"]
            )
        except (ValueError, KeyError, TypeError):
            return None  # unreadable: treated as never materialised (a full refresh)


class OnlineStore(ABC):
    """Latest feature vectors by (view, entity key).

    :meth:`apply` is the one write loop (vectors in chunks of ``batch_size``, then deletes,
    then the mark — last, so a batch cut short leaves the old mark and re-running it, which is
    idempotent, completes it); a store implements it through :meth:`_writer`."""

    #: ``online_store: {type: ...}`` name
    name: ClassVar[str] = ""
    batch_size: int = 10_000

    def apply(
        self,
        view: str,
        upserts: Iterable[tuple[Key, Vector]],
        deletes: Iterable[Key],
        *,
        replace: bool,
        ttl: timedelta | None,
        mark: Mark,
    ) -> tuple[int, int]:
        """Store ``upserts``, remove ``deletes`` (and, when ``replace``, every vector of the
        view not upserted), then record ``mark``. Returns (written, deleted)."""
        written = deleted = 0
        with self._writer(view, replace=replace, ttl=ttl) as w:
            for part in chunks(upserts, self.batch_size):
                w.upsert(part)
                written += len(part)
                crashpoint(f"online {self.name}: batch written")
            for dpart in chunks(deletes, self.batch_size):
                deleted += w.delete(dpart)
            deleted += w.finish()
            crashpoint(f"online {self.name}: data written, mark not")
            w.mark(mark)
        crashpoint(f"online {self.name}: committed")
        return written, deleted

    @abstractmethod
    def _writer(
        self, view: str, *, replace: bool, ttl: timedelta | None
    ) -> AbstractContextManager[BatchWriter]:
        """A writer of one batch of ``view`` (its exit commits; an exception rolls back
        where the store can)."""

    @abstractmethod
    def read(self, view: str, keys: Sequence[Key]) -> list[Vector | None]:
        """The vectors of ``keys`` (None where the store has none), in order."""

    @abstractmethod
    def mark(self, view: str) -> Mark | None:
        """The mark of the last complete batch of ``view`` (None: never materialised)."""

    def describe(self) -> str:
        """Kind and location, safe to record and show (no secrets)."""
        return self.name

    def close(self) -> None:
        return None


class BatchWriter(Protocol):
    """What :meth:`OnlineStore.apply` drives (one per batch)."""

    def upsert(self, part: list[tuple[Key, Vector]]) -> None: ...

    def delete(self, part: list[Key]) -> int: ...

    def finish(self) -> int:
        """After the vectors: drop what a full refresh did not write; returns how many."""
        ...

    def mark(self, mark: Mark) -> None: ...


#: the SQLite online store's memory map (address space, not memory: pages load on use)
MMAP_BYTES = 1 << 30


class SQLiteOnlineStore(OnlineStore):
    """One SQLite file; a table per view: ``key TEXT PRIMARY KEY, ts INTEGER, v TEXT``, and
    ``_lg_marks``. A batch (data and mark) is one transaction."""

    name = "sqlite"

    def __init__(self, path: Path, *, batch_size: int = 10_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.batch_size = batch_size
        self._local = threading.local()

    def _con(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            # autocommit mode: transactions are explicit (BEGIN IMMEDIATE … COMMIT), so the
            # DDL of a full refresh is inside the batch's transaction too
            con = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA busy_timeout=30000")
            # reads through a memory map: a random lookup costs no read() system call
            con.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            self._local.con = con
        return con

    @staticmethod
    def _table(view: str) -> str:
        return '"fv_' + view.replace('"', "") + '"'  # view names are identifiers (validated)

    def describe(self) -> str:
        return f"sqlite:{self.path}"

    @contextmanager
    def _writer(self, view: str, *, replace: bool, ttl: timedelta | None) -> Iterator[_SQLiteBatch]:
        con, table = self._con(), self._table(view)
        con.execute("BEGIN IMMEDIATE")
        try:
            cleared = 0
            if replace:  # a full refresh rebuilds the table (in the new layout, if it was old)
                with suppress(sqlite3.OperationalError):  # none yet
                    cleared = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                con.execute(f"DROP TABLE IF EXISTS {table}")
            # a rowid table: vectors of many features are large rows, which a WITHOUT ROWID
            # table spills to overflow pages (3x the file, 2x the lookup time at 50 features)
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {table} "
                "(key TEXT PRIMARY KEY, ts INTEGER NOT NULL, v TEXT NOT NULL)"
            )
            con.execute(
                "CREATE TABLE IF NOT EXISTS _lg_marks (view TEXT PRIMARY KEY, mark TEXT NOT NULL)"
            )
            yield _SQLiteBatch(con, view, table, cleared)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def read(self, view: str, keys: Sequence[Key]) -> list[Vector | None]:
        texts = [_key_text(k) for k in keys]
        con = self._con()
        found: dict[str, Vector] = {}
        loads = json.loads
        try:
            for i in range(0, len(texts), 500):  # SQLite's bound-parameter limit
                part = texts[i : i + 500]
                for k, ts, v in con.execute(_read_sql(view, len(part)), part):
                    found[k] = Vector(_from_micros(ts), loads(v))
        except sqlite3.OperationalError:  # never materialised
            return [None] * len(keys)
        return [found.get(t) for t in texts]

    def mark(self, view: str) -> Mark | None:
        try:
            row = (
                self._con().execute("SELECT mark FROM _lg_marks WHERE view = ?", (view,)).fetchone()
            )
        except sqlite3.OperationalError:
            return None
        return None if row is None else Mark.loads(row[0])

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None


@functools.lru_cache(maxsize=1024)
def _read_sql(view: str, n: int) -> str:
    """The SELECT of ``n`` keys of ``view`` (the same text each time: SQLite's statement
    cache keeps it prepared)."""
    marks = ",".join("?" * n)
    return f"SELECT key, ts, v FROM {SQLiteOnlineStore._table(view)} WHERE key IN ({marks})"


@dataclass
class _SQLiteBatch:
    con: sqlite3.Connection
    view: str
    table: str
    cleared: int  # rows a full refresh deleted before writing

    def upsert(self, part: list[tuple[Key, Vector]]) -> None:
        rows = [(_key_text(k), _micros(v.event_ts), _dumps(v.values)) for k, v in part]
        self.con.executemany(f"INSERT OR REPLACE INTO {self.table} VALUES (?, ?, ?)", rows)

    def delete(self, part: list[Key]) -> int:
        keys = [(_key_text(k),) for k in part]
        return self.con.executemany(f"DELETE FROM {self.table} WHERE key = ?", keys).rowcount

    def finish(self) -> int:
        return self.cleared

    def mark(self, mark: Mark) -> None:
        self.con.execute(
            "INSERT OR REPLACE INTO _lg_marks VALUES (?, ?)", (self.view, mark.dumps())
        )


def _key_text(key: Key) -> str:
    """The stored form of an entity key (JSON list; datetimes as ISO text)."""
    if len(key) == 1 and type(key[0]) is int:  # the common key, without the encoder
        return f"[{key[0]}]"
    return json.dumps([str(k) if isinstance(k, datetime) else k for k in key])


def _dumps(values: Mapping[str, Scalar]) -> str:
    return json.dumps(values, default=str, separators=(",", ":"))


def utc(ts: datetime) -> datetime:
    """Aware UTC (a naive value is taken to be UTC, like everywhere in lockgate)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _micros(ts: datetime) -> int:
    return int(utc(ts).timestamp() * 1_000_000)


def _from_micros(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def chunks(rows: Iterator[_T] | Iterable[_T], n: int) -> Iterator[list[_T]]:
    chunk: list[_T] = []
    for r in rows:
        chunk.append(r)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# ---- the project's store ------------------------------------------------------------------

StoreFactory = Callable[["Project", "OnlineStoreConfig"], OnlineStore]
_FACTORIES: dict[str, StoreFactory] = {}


def register_online_store(type_name: str, factory: StoreFactory) -> None:
    """Make ``online_store: {type: type_name}`` open ``factory(project, config)``."""
    _FACTORIES[type_name] = factory


def open_store(project: Project) -> OnlineStore:
    """The online store ``lockgate.yaml`` names (``online_store:``; default SQLite)."""
    cfg = project.config.online_store
    factory = _FACTORIES.get(cfg.type)
    if factory is None:
        raise UsageError(
            f"unknown online store type {cfg.type!r}",
            hint=did_you_mean(cfg.type, _FACTORIES) or "sqlite or redis",
        )
    return factory(project, cfg)


def _sqlite(project: Project, cfg: OnlineStoreConfig) -> OnlineStore:
    from lockgate.features.store_config import SQLiteOnlineConfig

    assert isinstance(cfg, SQLiteOnlineConfig)
    path = Path(cfg.path).expanduser()
    return SQLiteOnlineStore(
        path if path.is_absolute() else project.root / path, batch_size=cfg.batch_size
    )


def _redis(project: Project, cfg: OnlineStoreConfig) -> OnlineStore:
    from lockgate.features.online_redis import open_redis

    return open_redis(project, cfg)


register_online_store("sqlite", _sqlite)
register_online_store("redis", _redis)


def default_store(project: Project) -> OnlineStore:
    """Kept for callers of the first version: :func:`open_store`."""
    return open_store(project)


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
    "event_timestamps"}, ...]}`` — entity columns first, then one entry per feature; the
    TTL applied at read time (:mod:`lockgate.features.serving`)."""
    from lockgate.features.serving import serve, serving_plan

    store = store or open_store(project)
    return serve(serving_plan(project.features, features), store, entities, now=now)
