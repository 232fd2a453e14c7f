"""Delta Lake tables in a local warehouse folder, written through delta-rs (``deltalake``):
the first :class:`~lockgate.storage.base.TableStore` adapter (``store: delta``).

Each dataset is the Delta table ``<warehouse>/<name>``; its quarantine is
``<warehouse>/<name>__quarantine``. Every publish is ONE Delta commit, so a reader (or a process
killed mid-write) only ever sees the table before or after the batch. The commit carries:

- ``custom_metadata`` with ``lockgate.run_id``, ``lockgate.run_seq``, ``lockgate.batch_id``,
  ``lockgate.watermark`` (when given) and ``lockgate.mode``; rows written come from the commit's
  own ``operationMetrics`` (a streamed batch is only counted once it has been written);
- an application transaction ``(app_id="lockgate:<name>", version=run_seq)``: publishing again
  with a ``run_seq`` the table already holds is a no-op, which makes a retried or replayed
  publish idempotent.

Batches arrive as a :class:`pyarrow.RecordBatchReader` and are streamed into delta-rs, never
collected into a Python list or one Arrow table. Reading the log is
:mod:`lockgate.storage.delta_log`; writing a batch, :mod:`lockgate.storage.delta_write`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from deltalake import DeltaTable
from sqlglot import exp

from lockgate.storage import _native, delta_cache, delta_log
from lockgate.storage.base import (
    APP_ID_PREFIX,
    QUARANTINE_SUFFIX,
    CommitInfo,
    CommitTag,
    PublishResult,
    TableHealth,
    TableScan,
    TableSnapshot,
    TableStore,
    TableWrite,
)
from lockgate.storage.crashpoints import crashpoint
from lockgate.storage.delta_errors import map_error
from lockgate.storage.delta_errors import translated as _translated
from lockgate.storage.delta_log import META_PREFIX, commit_metadata
from lockgate.storage.delta_write import (
    SPOOL_DIR,
    already_committed,
    commit_properties,
    storable,
    write_batch,
)
from lockgate.storage.errors import TableNotFound
from lockgate.storage.scan import plain_files, plain_parquet_dataset

if TYPE_CHECKING:  # pyarrow.dataset imports pandas: ~0.2 s at start-up, needed rarely
    import pyarrow as pa
    import pyarrow.dataset as pads

    from lockgate.engine.base import Engine

log = logging.getLogger(__name__)

__all__ = [
    "APP_ID_PREFIX",
    "META_PREFIX",
    "QUARANTINE_SUFFIX",
    "SPOOL_DIR",
    "CommitInfo",
    "DeltaStore",
    "PublishResult",
]

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_M = TypeVar("_M", bound=Callable[..., Any])


def _writes(method: _M) -> _M:
    """A method that writes table ``name`` (its first argument): the store forgets the kept
    table before and after, so no read sees a version older than the write."""

    @functools.wraps(method)
    def wrapper(self: DeltaStore, name: str, *args: Any, **kwargs: Any) -> Any:
        self.forget(name)
        try:
            return method(self, name, *args, **kwargs)
        finally:
            self.forget(name)

    return cast(_M, wrapper)


def _committed_since(path: Path, table: DeltaTable) -> bool:
    """Whether the table at ``path`` has a commit after ``table``'s version (one stat of the
    next commit file, instead of delta-rs listing the log)."""
    return (path / "_delta_log" / f"{table.version() + 1:020d}.json").exists()


def _checkpoint(name: str, path: str, version: int) -> None:
    try:
        table = DeltaTable(path, version=version)
        table.create_checkpoint()
        table.cleanup_metadata()  # the logs past delta.logRetentionDuration, as delta-rs would
    except Exception as e:  # the next interval tries again; readers replay a longer log
        log.warning("table %s: log checkpoint at version %s failed: %s", name, version, e)


class DeltaStore(TableStore):
    """The warehouse: one Delta table per dataset under ``warehouse``.

    Read methods return ``None`` (or ``False``) for a table that does not exist yet, except
    :meth:`arrow_dataset`, :meth:`scan` and :meth:`read`, which raise :class:`TableNotFound`.
    With ``cache_tables`` (a run, the only writer under the project lock) opened tables and
    their snapshots are kept until this store writes, moves or forgets them.
    """

    KIND: ClassVar[str] = "delta"
    #: rows per Arrow batch streamed from the engine (DuckDB's row-group size)
    BATCH_ROWS: ClassVar[int] = 122_880

    def __init__(self, warehouse: Path, *, cache_tables: bool = False) -> None:
        self.warehouse = Path(warehouse)
        # under the run's lock only this store writes: keep opened tables, forget on write
        self._tables: dict[str, DeltaTable] | None = {} if cache_tables else None
        self._snapshots: dict[str, TableSnapshot] | None = {} if cache_tables else None
        self._cache_lock = threading.Lock()  # steps of a run use the store from threads
        #: tables kept open after this store wrote them (see :meth:`keep_written_tables`)
        self._written: dict[str, DeltaTable] | None = None
        #: per kept table: the fencing token it held at the version this store committed
        #: (no other commit since: the token is unchanged, no need to look it up again)
        self._fenced_at: dict[str, tuple[tuple[str, int], int]] = {}
        #: per kept table: its application transactions as this store's commits left them
        self._known_txns: dict[str, dict[str, int]] = {}
        #: writes kept tables' log checkpoints off the commit path
        self._checkpointer: ThreadPoolExecutor | None = None

    def keep_written_tables(self) -> None:
        """The caller is the only writer of the tables it publishes (a stream under its
        lease): keep each written table open — delta-rs advances it in place on commit —
        instead of loading its log again for the next publish. Reads are unaffected.

        A kept table's log checkpoints are written by a background thread, not inside the
        commit that reaches ``delta.checkpointInterval`` (:meth:`wait_for_checkpoints`)."""
        if self._written is None:
            self._written = {}

    # ------------------------------------------------------------------ locating tables

    def path(self, name: str) -> Path:
        """Folder of table ``name`` (validated: a name is never a path)."""
        if not _NAME_RE.match(name):
            raise TableNotFound(f"invalid table name {name!r}: use letters, digits and underscores")
        return self.warehouse / name

    def exists(self, name: str) -> bool:
        """Whether ``<warehouse>/<name>`` holds a Delta table (a kept table does)."""
        if self._tables is not None and name in self._tables:
            return True
        path = self.path(name)
        if self._tables is not None and delta_cache.lookup(path) is not None:
            return True
        return path.is_dir() and DeltaTable.is_deltatable(str(path))

    def _maybe_table(self, name: str) -> DeltaTable | None:
        if not self.exists(name):
            return None
        with _translated(name, "open"):
            return self.open_table(name)

    def _to_write(self, name: str) -> DeltaTable | None:
        """The table opened for a write: its own object, never a kept one (a write moves the
        object to the new version under any reader holding it)."""
        path = self.path(name)
        if not (path.is_dir() and DeltaTable.is_deltatable(str(path))):
            return None
        with _translated(name, "open"):
            return DeltaTable(str(path))

    def open_table(self, name: str) -> DeltaTable:
        """The table at its current version (kept, in a run: in this store, and in the
        process while provably current, see :mod:`lockgate.storage.delta_cache`); errors
        are not translated."""
        if self._tables is None:
            return DeltaTable(str(self.path(name)))
        with self._cache_lock:
            table = self._tables.get(name)
        if table is None:  # opened outside the lock: it reads the table's log
            path = self.path(name)
            kept = delta_cache.lookup(path)
            if kept is not None:
                opened = kept.table
            else:
                opened = DeltaTable(str(path))
                delta_cache.keep(path, opened)
            with self._cache_lock:
                table = self._tables.setdefault(name, opened)
        return table

    def forget(self, name: str) -> None:
        """Drop a kept table and its snapshot (it was written, moved or removed)."""
        if self._tables is not None:
            with self._cache_lock:
                self._tables.pop(name, None)
            delta_cache.forget(self.path(name))
        if self._snapshots is not None:
            self._snapshots.pop(name, None)

    def _table(self, name: str, version: int | None = None) -> DeltaTable:
        if not self.exists(name):
            raise TableNotFound(
                f"table '{name}' does not exist in warehouse {self.warehouse}",
                hint="run the dataset once to create it",
            )
        try:
            return DeltaTable(str(self.path(name)), version=version)
        except Exception as exc:
            if version is None:
                raise map_error(name, "open", exc) from exc
            latest = self.version(name)
            raise TableNotFound(
                f"table '{name}' has no readable version {version} (latest is {latest})",
                hint="pick a version listed by the table's history",
            ) from exc

    def _pinned(self, name: str, version: int | None) -> DeltaTable:
        """The table at ``version``: the kept table when it is that version (no new load)."""
        kept = self._tables.get(name) if self._tables is not None else None
        if kept is not None and (version is None or kept.version() == version):
            return kept
        return self._table(name, version)

    # ------------------------------------------------------------------ reading

    def snapshot(self, name: str) -> TableSnapshot | None:
        """Version, schema, last lockgate commit and transaction version from one load of
        the table's log (kept, in a run, until this store writes the table)."""
        if self._snapshots is not None and name in self._snapshots:
            return self._snapshots[name]
        table = self._maybe_table(name)
        if table is None:
            return None
        kept = delta_cache.lookup(self.path(name)) if self._snapshots is not None else None
        if kept is not None and kept.table is table and kept.snapshot is not None:
            snap = kept.snapshot
        else:
            snap = delta_log.read_snapshot(name, table)
            if self._snapshots is not None:
                delta_cache.keep_snapshot(self.path(name), table, snap)
        if self._snapshots is not None:
            self._snapshots[name] = snap
        return snap

    def _kept(self, name: str) -> TableSnapshot | None:
        return self._snapshots.get(name) if self._snapshots is not None else None

    def version(self, name: str) -> int | None:
        """Current version of the table, ``None`` if it does not exist."""
        snap = self._kept(name)
        if snap is not None:
            return snap.version
        table = self._maybe_table(name)
        return None if table is None else table.version()

    def schema(self, name: str) -> pa.Schema | None:
        """Arrow schema of the table's current version, ``None`` if it does not exist."""
        import pyarrow as pa

        snap = self._kept(name)
        if snap is not None:
            return snap.schema
        table = self._maybe_table(name)
        return None if table is None else pa.schema(table.schema().to_arrow())

    def txn_version(self, name: str, app_id: str) -> int | None:
        """Latest Delta application-transaction version recorded for ``app_id``."""
        snap = self._kept(name) if app_id == APP_ID_PREFIX + name else None
        if snap is not None:
            return snap.txn_version
        table = self._maybe_table(name)
        if table is None:
            return None
        with _translated(name, "read transactions"):
            return table.transaction_version(app_id)

    def scan(self, name: str, version: int | None = None) -> TableScan:
        """The version's data files when they are the table (DuckDB reads them natively),
        else a pyarrow dataset (see :mod:`lockgate.storage.scan`); at most one load of the log."""
        table = self._pinned(name, version)
        with _translated(name, "read"):
            columns = tuple(f.name for f in table.schema().fields)
            files = plain_files(table)
            pinned = table.version()
            if files:
                return TableScan(name, pinned, columns, files=tuple(files))
            return TableScan(name, pinned, columns, dataset=self._dataset(table))

    def added_files(self, name: str, since: int | None, version: int) -> list[str]:
        """Data files of ``version`` that ``since`` did not have ([] when unknown)."""
        if since is None or since >= version:
            return []
        path = str(self.path(name))
        try:
            before = set(DeltaTable(path, version=since).file_uris())
        except Exception:  # the old version is gone (log cleaned up): the caller filters only
            return []
        return [f for f in DeltaTable(path, version=version).file_uris() if f not in before]

    @staticmethod
    def _dataset(table: DeltaTable) -> pads.Dataset:
        plain = plain_parquet_dataset(table)
        return plain if plain is not None else table.to_pyarrow_dataset()

    def arrow_dataset(self, name: str, version: int | None = None) -> pads.Dataset:
        """A lazily-read Arrow dataset of the table, pinned to ``version`` (default: latest).

        Register it in DuckDB with ``con.register(alias, dataset)``; DuckDB streams it with
        projection and filter pushdown.
        """
        table = self._pinned(name, version)
        with _translated(name, "read"):
            return self._dataset(table)

    def translated(self, name: str, action: str) -> AbstractContextManager[None]:
        """delta-rs and OS errors → lockgate's, naming the table."""
        return _translated(name, action)

    def history(self, name: str, limit: int | None = 20) -> list[dict[str, Any]]:
        """Newest-first commits: ``version``, ``timestamp`` (UTC datetime), ``operation``,
        ``lockgate`` (the commit's lockgate metadata, prefix stripped), ``rows`` (written, or
        ``None`` when the operation writes none), ``parameters``. Empty if the table is absent.
        """
        table = self._maybe_table(name)
        return [] if table is None else delta_log.history(name, table, limit)

    def last_commit(self, name: str) -> CommitInfo | None:
        """The newest commit written by lockgate, ``None`` if there is none.

        Reads the newest commits first (10, then 100, 1000, all), so on a long table that
        lockgate wrote last this reads a handful of log files, not the whole history.
        """
        snap = self.snapshot(name)
        return None if snap is None else snap.last_commit

    def inspect(self, name: str) -> TableHealth | None:
        """See :func:`lockgate.storage.health.inspect_table`."""
        from lockgate.storage.health import inspect_table

        return inspect_table(self, name)

    def move_aside(self, name: str) -> Path:
        """See :func:`lockgate.storage.health.move_aside`."""
        from lockgate.storage.health import move_aside

        return move_aside(self, name)

    # ------------------------------------------------------------------ writing

    @_writes
    def publish(
        self, name: str, data: pa.RecordBatchReader, *, write: TableWrite, tag: CommitTag
    ) -> PublishResult:
        """Publish one batch into table ``name`` as ONE atomic, idempotent Delta commit.

        - ``append``; ``overwrite`` (the whole table; an empty batch empties it;
          ``schema_mode="overwrite"`` also replaces schema and partitioning);
        - ``overwrite_partitions``: replaces exactly the partitions present in the batch
          (a ``replaceWhere``-style predicate; delta-rs rejects rows outside it). Pass
          ``write.partition_values`` (the distinct ``write.partition_by`` tuples, e.g. from a
          ``SELECT DISTINCT`` in DuckDB) to stream the batch straight in; without them the
          batch is spooled once to a Parquet file in the warehouse while the values are
          collected, then written from that file (bounded memory, one extra disk pass);
        - ``merge``: upsert on ``write.keys`` (update all columns of matching rows, insert
          the others). Keys are compared with ``=``: rows with a null key never match and are
          inserted. The batch must already hold one row per key (the caller de-duplicates).

        ``write.schema_mode="merge"`` adds the batch's new columns (missing ones are written
        null); ``None`` requires the table's exact columns. An incompatible type change raises
        :class:`SchemaContractError` naming the table and column, before anything is written.
        ``write.partition_by`` applies when the table is created. An empty batch commits
        nothing (``skipped``), except that a missing table is created empty and an
        ``overwrite`` empties the table. If the table's transaction for ``"lockgate:" + name``
        is already ``>= tag.run_seq`` nothing is read or written (``skipped``).
        """
        kept = self._written.pop(name, None) if self._written is not None else None
        known = self._known_txns.pop(name, None)
        if kept is not None and _committed_since(self.path(name), kept):
            known = None  # another writer (compaction, say) committed: its view, not ours
            try:
                kept.update_incremental()
            except Exception:  # moved aside, damaged…: open it as any publish would
                kept = None
        if kept is None:
            known = None
        # the kept object is at the version this store committed, or was just brought up to
        # date (a claim by another consumer moves it past the version recorded here)
        at = self._fenced_at.pop(name, None)
        fence_known = (
            kept is not None and tag.fence is not None and at == (tag.fence, kept.version())
        )
        # a table object of its own for writes, never one a reader holds (see _to_write)
        table = kept if kept is not None else self._to_write(name)
        before = table.version() if table is not None else -1
        result = write_batch(
            self.path(name),
            table,
            data,
            write=write,
            meta=commit_metadata(write.mode, tag),
            run_seq=tag.run_seq,
            spool_root=self.warehouse / SPOOL_DIR,
            positions=tag.positions,
            fence=tag.fence,
            fence_checked=fence_known,
            known=known,
            checkpoint=self._written is None,
        )
        if self._written is not None and table is not None:
            self._written[name] = table  # not on an error: reopened next time
            if tag.fence is not None:
                self._fenced_at[name] = (tag.fence, table.version())
            # what this object now says of its transactions, without asking delta-rs
            txns = dict(known or {})
            after = table.version()  # the object moved to its commit's version
            if after != before:
                txns[APP_ID_PREFIX + name] = tag.run_seq
                txns.update(tag.positions)
                self._checkpoint_if_due(name, table, before, after)
            self._known_txns[name] = txns
        return result

    def _checkpoint_if_due(self, name: str, table: DeltaTable, before: int, after: int) -> None:
        """A kept table's log checkpoint (every ``delta.checkpointInterval`` commits), written
        by a background thread from its own view of that version: a commit waits for no
        checkpoint (one took 80-370 ms of a stream batch's commit at version 100)."""
        conf = table.metadata().configuration
        try:
            every = max(1, int(conf.get("delta.checkpointInterval", "100")))
        except ValueError:
            every = 100
        if before < 0 or after // every == before // every:
            return
        if self._checkpointer is None:
            self._checkpointer = ThreadPoolExecutor(1, thread_name_prefix="lg-delta-checkpoint")
        self._checkpointer.submit(_checkpoint, name, str(self.path(name)), after)

    def wait_for_checkpoints(self) -> None:
        """Wait for the background log checkpoints submitted so far (see
        :meth:`keep_written_tables`)."""
        if self._checkpointer is not None:
            self._checkpointer.submit(lambda: None).result()

    @_writes
    def claim_fence(
        self, name: str, app_id: str, epoch: int, create: pa.Schema | None = None
    ) -> bool:
        """See :meth:`TableStore.claim_fence`: an empty append carrying ``(app_id, epoch)``
        (no ``lockgate.run_id``: not a batch, :meth:`last_commit` skips it), or the empty
        table's exclusive creation."""
        import pyarrow as pa
        from deltalake import CommitProperties, Transaction, write_deltalake

        from lockgate.storage.delta_write import fenced
        from lockgate.storage.errors import CommitFenced

        props = CommitProperties(
            custom_metadata={META_PREFIX + "fence_claim": f"{app_id}={epoch}"},
            app_transactions=[Transaction(app_id=app_id, version=epoch)],
        )
        table = self._to_write(name)
        if table is None:
            if create is None:
                return False
            with fenced(name, (app_id, epoch)), _translated(name, "create the table"):
                DeltaTable.create(
                    str(self.path(name)), schema=create, mode="error", commit_properties=props
                )
            return True
        with _translated(name, "claim the fencing token"):
            held = table.transaction_version(app_id)
            schema = pa.schema(table.schema().to_arrow())
        if held is not None and held >= epoch:
            raise CommitFenced(
                f"table '{name}': cannot claim fencing token {app_id!r} = {epoch}: the table "
                f"holds {held} (another consumer claimed it since)",
                hint="another process owns the table's stream now",
            )
        with fenced(name, (app_id, epoch)), _translated(name, "claim the fencing token"):
            write_deltalake(table, schema.empty_table(), mode="append", commit_properties=props)
        return True

    @_writes
    def publish_query(
        self, name: str, con: Engine, query: exp.Query, *, write: TableWrite, tag: CommitTag
    ) -> PublishResult:
        """:meth:`publish` the result of ``query`` (run on engine ``con``), same semantics.

        Plain ``append``/``overwrite`` of an unpartitioned table with the table's exact
        columns (or a new table) lets the engine write the Parquet files (DuckDB: in
        parallel) and commits them as one Delta commit (:mod:`lockgate.storage._native`);
        any other case streams the query's Arrow batches into :meth:`publish`.
        """
        import pyarrow as pa

        schema = _native.storable_schema(con.arrow_schema(query))
        table = self._to_write(name)
        native = (
            write.mode in ("append", "overwrite")
            and write.replace_where is None
            and not write.partition_by
            and con.SUPPORTS_PARQUET_WRITE
            and con.writes_arrow_types(query)
        )
        if native and table is not None:
            with _translated(name, "read schema"):
                current = pa.schema(table.schema().to_arrow())
                partitioned = bool(table.metadata().partition_columns)
            native = not partitioned and _native.same_columns(
                _native.storable_schema(current), schema
            )
        if not native:
            reader = con.reader(query, self.BATCH_ROWS)
            try:
                cast = pa.RecordBatchReader.from_batches(schema, (b.cast(schema) for b in reader))
                return self.publish(name, cast, write=write, tag=tag)
            finally:
                reader.close()
        return self._publish_native(name, con, query, schema, table, write=write, tag=tag)

    def _publish_native(
        self,
        name: str,
        con: Engine,
        query: exp.Query,
        schema: pa.Schema,
        table: DeltaTable | None,
        *,
        write: TableWrite,
        tag: CommitTag,
    ) -> PublishResult:
        import pyarrow as pa

        path = self.path(name)
        action = f"publish ({write.mode})"
        done = already_committed(table, name, action, tag.run_seq)
        if done is not None:
            return done
        with _translated(name, action):
            files = _native.write_files(con, query, path)
        if files.rows == 0:
            empty = pa.RecordBatchReader.from_batches(schema, [])
            return self.publish(name, empty, write=write, tag=tag)
        meta = commit_metadata(write.mode, tag)
        meta[META_PREFIX + "rows"] = str(files.rows)
        props = commit_properties(name, meta, tag.run_seq, tag.positions)
        crashpoint(f"{name}: files written, not committed")
        try:
            with _translated(name, action):
                _native.commit_files(
                    table,
                    path,
                    files,
                    schema,
                    overwrite=write.mode == "overwrite",
                    props=props,
                )
        except BaseException:
            _native.discard(path, files)
            raise
        crashpoint(f"{name}: committed (DuckDB-written files)")
        version = self._table(name).version()
        log.info(
            "table %s: %s committed version %s (%s rows, DuckDB-written)",
            name,
            write.mode,
            version,
            files.rows,
        )
        return PublishResult(
            version, files.rows, False, f"{write.mode}: committed version {version}"
        )

    @_writes
    def publish_quarantine(
        self, name: str, data: pa.RecordBatchReader, *, tag: CommitTag, replace: bool = False
    ) -> PublishResult:
        """Append quarantined rows to ``name + "__quarantine"`` (schema evolves by merge),
        idempotent on ``(app_id="lockgate:<name>__quarantine", run_seq)``; ``replace``
        overwrites the quarantine table, schema included (a full refresh rebuilds it).
        Arrow types Delta cannot store (string_view, ns timestamps, …) are cast first."""
        qname = name + QUARANTINE_SUFFIX
        if replace:
            write = TableWrite("overwrite", schema_mode="overwrite")
        else:
            write = TableWrite("append", schema_mode="merge")
        self.forget(qname)
        try:
            return write_batch(
                self.path(qname),
                self._to_write(qname),
                storable(data),
                write=write,
                meta=commit_metadata(write.mode, dataclasses.replace(tag, watermark=None)),
                run_seq=tag.run_seq,
                spool_root=self.warehouse / SPOOL_DIR,
                positions=tag.positions,
            )
        finally:
            self.forget(qname)
