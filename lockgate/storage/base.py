"""The table-store seam: what the run loop asks of the warehouse, whatever holds the tables.

A :class:`TableStore` keeps one table per dataset (and ``<name>__quarantine`` for its rejected
rows). It reads a table's state once into a :class:`TableSnapshot` (version, schema, the last
lockgate commit and its application transaction), pins a version for reading
(:class:`TableScan`: the Parquet files that *are* the version, or an Arrow dataset), and
publishes a batch as ONE atomic commit tagged with lockgate's :class:`CommitTag`. Publishing
is idempotent: a table whose application transaction ``"lockgate:<name>"`` is already at the
run's ``run_seq`` commits nothing (``PublishResult.already_committed``).

How a batch lands is the store's own :class:`TableWrite` (the run loop converts the
dataset's ``write:`` config into it): storage never reads project definitions.

Adapters register under a kind (``lockgate.yaml``'s ``store:``), a dict registry as sqlglot's
dialects are::

    register_store("delta", DeltaStore)
    store = store_for("delta", warehouse, cache_tables=True)

Delta Lake via delta-rs (:class:`lockgate.storage.delta.DeltaStore`) is the first adapter.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, get_args

from sqlglot import exp

from lockgate._suggest import did_you_mean
from lockgate.errors import TerminalError

if TYPE_CHECKING:  # pyarrow.dataset imports pandas: ~0.2 s at start-up, needed rarely
    import pyarrow as pa
    import pyarrow.dataset as pads

    from lockgate.engine.base import Engine

#: how a batch lands in its table
PublishMode = Literal["append", "overwrite", "overwrite_partitions", "merge"]
PUBLISH_MODES: tuple[str, ...] = get_args(PublishMode)
#: ``merge``: add the batch's new columns; ``overwrite``: replace schema (and partitioning)
SchemaMode = Literal["merge", "overwrite"]

#: suffix of a dataset's quarantine table
QUARANTINE_SUFFIX = "__quarantine"
#: prefix of the application transaction id (``app_id``) every lockgate commit carries
APP_ID_PREFIX = "lockgate:"


class UnknownStore(TerminalError):
    """``store:`` names a table store no adapter registered."""

    exit_code = 2


@dataclass(frozen=True)
class TableWrite:
    """How one batch lands in its table (the store's own write spec).

    >>> TableWrite("merge", keys=("id",)).mode
    'merge'
    """

    mode: PublishMode = "append"
    #: columns a ``merge`` upserts on
    keys: tuple[str, ...] = ()
    #: partition columns (applied when the table is created, or by a schema overwrite)
    partition_by: tuple[str, ...] = ()
    #: ``None``: the batch must have the table's exact columns
    schema_mode: SchemaMode | None = None
    #: ``overwrite_partitions``: the batch's distinct ``partition_by`` tuples, when known
    #: (the batch then streams straight into the commit instead of being spooled first)
    partition_values: Sequence[Mapping[str, Any]] | None = None
    #: ``merge`` of a change batch: rows whose column ``[0]`` equals ``[1]`` are deletes:
    #: they remove the matched row (never inserted) — or, with :attr:`soft_delete`, update
    #: only those columns of it (the row's other values stay)
    delete_when: tuple[str, str] | None = None
    soft_delete: tuple[str, ...] = ()
    #: ``overwrite`` only the rows matching this predicate (DataFusion SQL, built by
    #: :mod:`lockgate.storage._predicates`): a partitioned dataset's intervals. The batch
    #: must lie inside it; an empty batch deletes the matching rows.
    replace_where: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in PUBLISH_MODES:
            raise ValueError(f"unknown write mode {self.mode!r} (one of {PUBLISH_MODES})")
        if self.mode == "merge" and not self.keys:
            raise ValueError("write mode 'merge' needs keys (the columns to upsert on)")
        if self.mode == "overwrite_partitions" and not self.partition_by:
            raise ValueError("write mode 'overwrite_partitions' needs partition_by")
        if self.replace_where is not None and self.mode != "overwrite":
            raise ValueError("replace_where needs write mode 'overwrite'")

    def with_partitions(self, values: Sequence[Mapping[str, Any]]) -> TableWrite:
        """This write, knowing the batch's distinct partitions."""
        return dataclasses.replace(self, partition_values=tuple(values))


@dataclass(frozen=True)
class CommitTag:
    """lockgate's identity of a commit: carried in the commit's metadata, ``run_seq`` also as
    the table's application-transaction version (the idempotency key)."""

    run_id: str
    run_seq: int
    batch_id: str
    #: the dataset's watermark after this batch (``"<value>|<type>"``), if incremental
    watermark: str | None = None
    #: more application transactions the commit carries, e.g. ``(("cdc:<slot>", end_lsn),)``:
    #: a change source's position lands in the same commit as its data; an empty batch
    #: that moves a position still commits (carrying only the position)
    positions: tuple[tuple[str, int], ...] = ()
    #: the writer's fencing token ``(app_id, epoch)`` (a stream consumer's): the commit carries
    #: it as one more application transaction and is refused (:class:`CommitFenced`) unless
    #: the table's version of ``app_id`` is ``epoch`` — or the table does not exist and this
    #: commit creates it (exclusively). See :meth:`TableStore.claim_fence`.
    fence: tuple[str, int] | None = None
    #: the columns the writer masked (``mask:``) in this commit's rows, recorded so a later
    #: writer masking more can tell the table holds them in the clear (None: not recorded)
    masked: tuple[str, ...] | None = None


@dataclass(frozen=True)
class CommitInfo:
    """A commit written by lockgate, read back from the table's log."""

    version: int
    timestamp: dt.datetime
    operation: str
    run_id: str
    run_seq: int
    batch_id: str
    watermark: str | None
    #: rows the commit published (``num_added_rows``; ``num_source_rows`` for a merge)
    rows: int | None
    #: the fencing epoch of the writer (``CommitTag.fence``; None: an unfenced writer)
    epoch: int | None = None
    #: the columns masked in this commit's rows (``CommitTag.masked``; None: not recorded)
    masked: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PublishResult:
    """Outcome of a publish.

    ``version`` is the committed version, or the table's current version when nothing was
    committed (``skipped``); ``rows`` is the number of batch rows written.
    """

    version: int | None
    rows: int
    skipped: bool
    reason: str
    #: skipped because the table's app transaction already holds this ``run_seq``
    already_committed: bool = False


@dataclass(frozen=True)
class TableSnapshot:
    """One table's state, read from ONE load of its log: what a step asks of the table
    before it publishes (version, schema, last lockgate commit, transaction version)."""

    name: str
    version: int
    #: the table's Arrow schema, converted when first asked for (a run whose steps are all
    #: up to date never needs it, nor pyarrow)
    read_schema: Callable[[], pa.Schema] = dataclasses.field(repr=False, compare=False)
    partition_by: tuple[str, ...]
    #: the newest commit lockgate wrote (None: lockgate never wrote the table)
    last_commit: CommitInfo | None
    #: version of the application transaction ``"lockgate:<name>"`` (the last ``run_seq``)
    txn_version: int | None

    @functools.cached_property
    def schema(self) -> pa.Schema:
        return self.read_schema()

    @property
    def batch_id(self) -> str | None:
        return None if self.last_commit is None else self.last_commit.batch_id


@dataclass(frozen=True)
class TableScan:
    """A table version pinned for reading. ``files``: Parquet files that, read together by
    column name (a file written before a column was added has NULL there), are exactly the
    version; when empty, ``dataset`` (an Arrow dataset) is the version."""

    name: str
    version: int
    columns: tuple[str, ...]
    files: tuple[str, ...] = ()
    dataset: pads.Dataset | None = None


class TableHealth(Protocol):
    """An intact table (see :meth:`TableStore.inspect`)."""

    @property
    def version(self) -> int: ...

    def newest_run_id(self) -> str | None:
        """``run_id`` of the table's newest commit (None: not written by lockgate)."""
        ...


class TableStore(ABC):
    """The warehouse: one table per dataset. Read methods return ``None`` (or ``False``) for
    a table that does not exist yet, except :meth:`arrow_dataset`/:meth:`scan`/:meth:`read`,
    which raise :class:`lockgate.storage.errors.TableNotFound`.

    Errors are lockgate's: :class:`~lockgate.errors.SchemaContractError` for a batch that
    does not fit the table, :class:`~lockgate.storage.errors.PublishError` (terminal),
    :class:`~lockgate.errors.StorageError` (transient: retry)."""

    #: the ``store:`` kind this adapter registers under
    KIND: ClassVar[str] = ""
    #: capability flags the run loop may ask (never the adapter's class)
    SUPPORTS_MERGE: ClassVar[bool] = True
    SUPPORTS_PARTITIONS: ClassVar[bool] = True
    SUPPORTS_TIME_TRAVEL: ClassVar[bool] = True

    # -- reading ---------------------------------------------------------------------------

    @abstractmethod
    def exists(self, name: str) -> bool:
        """Whether table ``name`` exists."""

    @abstractmethod
    def snapshot(self, name: str) -> TableSnapshot | None:
        """The table's current state from one read of its log; ``None``: no table."""

    def version(self, name: str) -> int | None:
        """Current version of the table, ``None`` if it does not exist."""
        snap = self.snapshot(name)
        return None if snap is None else snap.version

    def schema(self, name: str) -> pa.Schema | None:
        """Arrow schema of the table's current version, ``None`` if it does not exist."""
        snap = self.snapshot(name)
        return None if snap is None else snap.schema

    def last_commit(self, name: str) -> CommitInfo | None:
        """The newest commit written by lockgate, ``None`` if there is none."""
        snap = self.snapshot(name)
        return None if snap is None else snap.last_commit

    def last_batch_id(self, name: str) -> str | None:
        """``batch_id`` of :meth:`last_commit` (``None`` if lockgate never wrote the table)."""
        commit = self.last_commit(name)
        return None if commit is None else commit.batch_id

    def keep_written_tables(self) -> None:  # noqa: B027 - an optional hint, default no-op
        """The caller is the only writer of what it publishes from now on: the store may
        keep written tables open between publishes (default: nothing kept)."""

    @abstractmethod
    def txn_version(self, name: str, app_id: str) -> int | None:
        """Latest application-transaction version recorded for ``app_id``."""

    @abstractmethod
    def scan(self, name: str, version: int | None = None) -> TableScan:
        """The table pinned at ``version`` (default: latest), for an engine to register."""

    @abstractmethod
    def added_files(self, name: str, since: int | None, version: int) -> list[str]:
        """Data files of ``version`` that version ``since`` did not have ([] when unknown)."""

    @abstractmethod
    def arrow_dataset(self, name: str, version: int | None = None) -> pads.Dataset:
        """A lazily read Arrow dataset of the table pinned to ``version`` (default: latest)."""

    def read(
        self,
        name: str,
        version: int | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
        filter: Any = None,  # a pyarrow.compute.Expression
    ) -> pa.Table:
        """Materialise (part of) the table as an Arrow table: for small reads and tests."""
        dataset = self.arrow_dataset(name, version)
        cols = list(columns) if columns is not None else None
        with self.translated(name, "read"):
            if limit is not None:
                return dataset.head(limit, columns=cols, filter=filter)
            return dataset.to_table(columns=cols, filter=filter)

    def translated(self, name: str, action: str) -> AbstractContextManager[None]:
        """Where the adapter's own errors become lockgate's (default: nothing to translate)."""
        return contextlib.nullcontext()

    @abstractmethod
    def history(self, name: str, limit: int | None = 20) -> list[dict[str, Any]]:
        """Newest-first commits: ``version``, ``timestamp``, ``operation``, ``lockgate`` (the
        commit's lockgate metadata), ``rows``, ``parameters``. Empty if the table is absent."""

    @abstractmethod
    def inspect(self, name: str) -> TableHealth | None:
        """The table's health (None: no table); raises
        :class:`~lockgate.storage.health.TableDamaged` when it cannot be trusted."""

    @abstractmethod
    def move_aside(self, name: str) -> Path:
        """Move a damaged table out of the way (a full refresh rebuilds it)."""

    def forget(self, name: str) -> None:  # noqa: B027 - a store without a cache has nothing
        """Drop what the store keeps of table ``name`` (it was written, moved or removed)."""

    # -- writing ---------------------------------------------------------------------------

    @abstractmethod
    def publish(
        self, name: str, data: pa.RecordBatchReader, *, write: TableWrite, tag: CommitTag
    ) -> PublishResult:
        """Publish one batch into table ``name`` as ONE atomic, idempotent commit."""

    @abstractmethod
    def claim_fence(
        self, name: str, app_id: str, epoch: int, create: pa.Schema | None = None
    ) -> bool:
        """Make ``epoch`` table ``name``'s fencing token for ``app_id``: one commit carrying
        ``(app_id, epoch)``, refused (:class:`CommitFenced`) when the table's token is
        already ``>= epoch`` or a concurrent commit carrying ``app_id`` lands first. A
        missing table is created empty with schema ``create`` (exclusively: refused if
        another writer creates it first); without ``create`` it is left missing: False."""

    @abstractmethod
    def publish_query(
        self, name: str, con: Engine, query: exp.Query, *, write: TableWrite, tag: CommitTag
    ) -> PublishResult:
        """:meth:`publish` the rows of the engine's ``query`` (run on ``con``)."""

    @abstractmethod
    def publish_quarantine(
        self, name: str, data: pa.RecordBatchReader, *, tag: CommitTag, replace: bool = False
    ) -> PublishResult:
        """Append rejected rows to ``name + "__quarantine"`` (its schema evolves), or
        ``replace`` the quarantine table (a full refresh rebuilds it)."""


class StoreFactory(Protocol):
    """What :func:`register_store` takes: an adapter class or any callable like one."""

    def __call__(self, warehouse: Path, *, cache_tables: bool = False) -> TableStore: ...


_STORES: dict[str, StoreFactory] = {}


def register_store(kind: str, factory: StoreFactory) -> None:
    """Make ``store: <kind>`` in ``lockgate.yaml`` build its table store with ``factory``
    (registering a kind again replaces the earlier adapter)."""
    _STORES[kind] = factory


def store_kinds() -> list[str]:
    """The registered kinds, sorted."""
    _builtin()
    return sorted(_STORES)


def store_for(kind: str, warehouse: Path, *, cache_tables: bool = False) -> TableStore:
    """The table store of ``kind`` over ``warehouse``. ``cache_tables``: the caller is the
    only writer (a run under the project lock): tables read are kept, forgotten on write."""
    _builtin()
    factory = _STORES.get(kind)
    if factory is None:
        raise UnknownStore(
            f"unknown table store {kind!r} (registered: {', '.join(sorted(_STORES))})",
            hint=did_you_mean(kind, _STORES)
            or "register the adapter with lockgate.storage.register_store before running",
        )
    return factory(Path(warehouse), cache_tables=cache_tables)


def _builtin() -> None:
    """Register the built-in adapters (imported on first use: delta-rs loads slowly)."""
    if "delta" not in _STORES:
        from lockgate.storage.delta import DeltaStore

        _STORES.setdefault("delta", DeltaStore)
