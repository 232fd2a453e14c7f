"""Delta Lake tables in a local warehouse folder, written through delta-rs (``deltalake``).

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
collected into a Python list or one Arrow table.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import itertools
import logging
import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake import exceptions as delta_errors
from sqlglot import exp

from lockgate.errors import LockgateError, SchemaContractError, StorageError
from lockgate.project.models import WriteMode, WriteSpec
from lockgate.storage import _native
from lockgate.storage._predicates import (
    SOURCE_ALIAS,
    TARGET_ALIAS,
    merge_predicate,
    partition_predicate,
)
from lockgate.storage._schema import SchemaMode, check_compatible
from lockgate.storage.crashpoints import crashpoint
from lockgate.storage.errors import PublishError, TableNotFound
from lockgate.storage.scan import plain_parquet_dataset

if TYPE_CHECKING:  # pyarrow.dataset imports pandas: ~0.2 s at start-up, needed rarely
    import pyarrow.dataset as pads

log = logging.getLogger(__name__)

#: prefix of lockgate's keys in a commit's ``custom_metadata``
META_PREFIX = "lockgate."
#: prefix of the Delta application transaction id (``app_id``) lockgate commits carry
APP_ID_PREFIX = "lockgate:"
QUARANTINE_SUFFIX = "__quarantine"
#: folder (inside the warehouse) for spooled batches; a name no dataset can have
SPOOL_DIR = ".lockgate_spool"

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# last_commit reads the newest commits first and widens the window only when needed.
_LAST_COMMIT_WINDOWS: tuple[int | None, ...] = (10, 100, 1000, None)
# delta-rs appends a Rust backtrace to some messages; keep the part a person reads.
_BACKTRACE_RE = re.compile(r"\n\s+0: ")


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


@dataclass(frozen=True)
class PublishResult:
    """Outcome of :meth:`DeltaStore.publish`.

    ``version`` is the committed version, or the table's current version when nothing was
    committed (``skipped``); ``rows`` is the number of batch rows written.
    """

    version: int | None
    rows: int
    skipped: bool
    reason: str
    #: skipped because the table's app transaction already holds this ``run_seq``
    already_committed: bool = False


def _already_committed(
    table: DeltaTable | None, name: str, action: str, app_id: str, run_seq: int
) -> PublishResult | None:
    """The idempotency rule of every publish: a table whose application transaction
    ``app_id`` is already at ``run_seq`` or beyond has this batch; publish nothing."""
    if table is None:
        return None
    with _translated(name, action):
        done = table.transaction_version(app_id)
    if done is None or done < run_seq:
        return None
    return PublishResult(
        version=table.version(),
        rows=0,
        skipped=True,
        reason=f"already published: transaction {app_id!r} is at {done} >= run_seq {run_seq}",
        already_committed=True,
    )


class _Tap:
    """Streams the caller's batches into delta-rs, counting rows on the way.

    It also keeps the caller's own exception (a failing DuckDB query, say): delta-rs would
    otherwise re-raise it as a generic ``DeltaError`` with the original type lost.
    """

    def __init__(self, data: pa.RecordBatchReader) -> None:
        self.schema = data.schema
        self.rows = 0
        self.error: Exception | None = None
        self._data = data
        self._head: list[pa.RecordBatch] = []
        # Peek up to the first non-empty batch so an empty batch is known before any write.
        for batch in data:
            self._head.append(batch)
            if batch.num_rows:
                break
        self.empty = not any(b.num_rows for b in self._head)

    def _batches(self) -> Iterator[pa.RecordBatch]:
        try:
            for batch in itertools.chain(self._head, self._data):
                self.rows += batch.num_rows
                yield batch
        except Exception as exc:
            self.error = exc
            raise
        finally:
            self._head = []

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, self._batches())


def _short(exc: BaseException) -> str:
    text = _BACKTRACE_RE.split(str(exc), maxsplit=1)[0].strip()
    return text if len(text) <= 2000 else text[:2000] + " …"


def _map_error(table: str, action: str, exc: Exception) -> LockgateError:
    """Translate a delta-rs / OS error into lockgate's terminal-or-transient hierarchy."""
    where = f"table '{table}': {action} failed: {_short(exc)}"
    text = str(exc)
    if isinstance(exc, delta_errors.SchemaMismatchError) or text.startswith("Cast error"):
        return SchemaContractError(
            where, hint="align the batch's column names and types with the table's schema"
        )
    if isinstance(exc, delta_errors.CommitFailedError):
        return StorageError(where, hint="another writer committed concurrently; retry")
    if isinstance(exc, delta_errors.TableNotFoundError):
        return TableNotFound(where)
    if isinstance(exc, delta_errors.DeltaProtocolError):
        return PublishError(where, hint="the table uses a Delta feature delta-rs cannot write")
    if "Invalid data found" in text:
        return PublishError(
            where, hint="the batch holds rows outside the partitions being overwritten"
        )
    if isinstance(exc, pa.ArrowInvalid | pa.ArrowTypeError | pa.ArrowNotImplementedError):
        return PublishError(where)
    return StorageError(where, hint="an I/O or storage error; retrying may help")


@contextlib.contextmanager
def _translated(table: str, action: str, tap: _Tap | None = None) -> Iterator[None]:
    try:
        yield
    except LockgateError:
        raise
    except Exception as exc:
        if tap is not None and tap.error is not None:
            raise tap.error from exc
        raise _map_error(table, action, exc) from exc


def _rows_written(entry: Mapping[str, Any]) -> int | None:
    metrics = entry.get("operationMetrics") or {}
    for key in ("num_added_rows", "num_source_rows"):
        if key in metrics:
            return int(metrics[key])
    if META_PREFIX + "rows" in entry:  # a commit of DuckDB-written files has no metrics
        return int(entry[META_PREFIX + "rows"])
    if entry.get("operation") == "CREATE TABLE":
        return 0
    return None


def _timestamp(entry: Mapping[str, Any]) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(entry["timestamp"]) / 1000, tz=dt.UTC)


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


class DeltaStore:
    """The warehouse: one Delta table per dataset under ``warehouse``.

    Read methods return ``None`` (or ``False``) for a table that does not exist yet, except
    :meth:`arrow_dataset` and :meth:`read`, which raise :class:`TableNotFound`.
    """

    def __init__(self, warehouse: Path, *, cache_tables: bool = False) -> None:
        self.warehouse = Path(warehouse)
        # under the run's lock only this store writes: keep opened tables, forget on write
        self._tables: dict[str, DeltaTable] | None = {} if cache_tables else None
        self._cache_lock = threading.Lock()  # steps of a run use the store from threads

    # ------------------------------------------------------------------ locating tables

    def path(self, name: str) -> Path:
        """Folder of table ``name`` (validated: a name is never a path)."""
        if not _NAME_RE.match(name):
            raise TableNotFound(f"invalid table name {name!r}: use letters, digits and underscores")
        return self.warehouse / name

    def exists(self, name: str) -> bool:
        """Whether ``<warehouse>/<name>`` holds a Delta table."""
        path = self.path(name)
        return path.is_dir() and DeltaTable.is_deltatable(str(path))

    def _maybe_table(self, name: str) -> DeltaTable | None:
        if (self._tables is None or name not in self._tables) and not self.exists(name):
            return None
        with _translated(name, "open"):
            return self.open_table(name)

    def open_table(self, name: str) -> DeltaTable:
        """The table at its current version (kept, in a run); errors are not translated."""
        if self._tables is None:
            return DeltaTable(str(self.path(name)))
        with self._cache_lock:
            table = self._tables.get(name)
        if table is None:  # opened outside the lock: it reads the table's log
            opened = DeltaTable(str(self.path(name)))
            with self._cache_lock:
                table = self._tables.setdefault(name, opened)
        return table

    def forget(self, name: str) -> None:
        """Drop a kept table (it was written, moved or removed)."""
        if self._tables is not None:
            with self._cache_lock:
                self._tables.pop(name, None)

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
                raise _map_error(name, "open", exc) from exc
            latest = self.version(name)
            raise TableNotFound(
                f"table '{name}' has no readable version {version} (latest is {latest})",
                hint="pick a version listed by the table's history",
            ) from exc

    # ------------------------------------------------------------------ reading

    def version(self, name: str) -> int | None:
        """Current version of the table, ``None`` if it does not exist."""
        table = self._maybe_table(name)
        return None if table is None else table.version()

    def schema(self, name: str) -> pa.Schema | None:
        """Arrow schema of the table's current version, ``None`` if it does not exist."""
        table = self._maybe_table(name)
        return None if table is None else pa.schema(table.schema().to_arrow())

    def arrow_dataset(self, name: str, version: int | None = None) -> pads.Dataset:
        """A lazily-read Arrow dataset of the table, pinned to ``version`` (default: latest).

        Register it in DuckDB with ``con.register(alias, dataset)``; DuckDB streams it with
        projection and filter pushdown.
        """
        table = self._table(name, version)
        with _translated(name, "read"):
            plain = plain_parquet_dataset(table)
            return plain if plain is not None else table.to_pyarrow_dataset()

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
        with _translated(name, "read"):
            if limit is not None:
                return dataset.head(limit, columns=cols, filter=filter)
            return dataset.to_table(columns=cols, filter=filter)

    def history(self, name: str, limit: int | None = 20) -> list[dict[str, Any]]:
        """Newest-first commits: ``version``, ``timestamp`` (UTC datetime), ``operation``,
        ``lockgate`` (the commit's lockgate metadata, prefix stripped), ``rows`` (written, or
        ``None`` when the operation writes none), ``parameters``. Empty if the table is absent.
        """
        table = self._maybe_table(name)
        if table is None:
            return []
        with _translated(name, "read history"):
            entries = table.history(limit)
        return [
            {
                "version": int(entry["version"]),
                "timestamp": _timestamp(entry),
                "operation": entry.get("operation"),
                "lockgate": {
                    key[len(META_PREFIX) :]: value
                    for key, value in entry.items()
                    if key.startswith(META_PREFIX)
                },
                "rows": _rows_written(entry),
                "parameters": entry.get("operationParameters") or {},
            }
            for entry in entries
        ]

    def last_commit(self, name: str) -> CommitInfo | None:
        """The newest commit written by lockgate, ``None`` if there is none.

        Reads the newest commits first (10, then 100, 1000, all), so on a long table that
        lockgate wrote last this reads a handful of log files, not the whole history.
        """
        table = self._maybe_table(name)
        if table is None:
            return None
        for window in _LAST_COMMIT_WINDOWS:
            with _translated(name, "read history"):
                entries = table.history(window)
            for entry in entries:
                if META_PREFIX + "run_id" in entry:
                    return CommitInfo(
                        version=int(entry["version"]),
                        timestamp=_timestamp(entry),
                        operation=str(entry.get("operation")),
                        run_id=str(entry[META_PREFIX + "run_id"]),
                        run_seq=int(entry[META_PREFIX + "run_seq"]),
                        batch_id=str(entry[META_PREFIX + "batch_id"]),
                        watermark=entry.get(META_PREFIX + "watermark"),
                        rows=_rows_written(entry),
                    )
            if window is None or len(entries) < window:
                return None
        return None

    def last_batch_id(self, name: str) -> str | None:
        """``batch_id`` of :meth:`last_commit` (``None`` if lockgate never wrote the table)."""
        commit = self.last_commit(name)
        return None if commit is None else commit.batch_id

    def txn_version(self, name: str, app_id: str) -> int | None:
        """Latest Delta application-transaction version recorded for ``app_id``."""
        table = self._maybe_table(name)
        if table is None:
            return None
        with _translated(name, "read transactions"):
            return table.transaction_version(app_id)

    # ------------------------------------------------------------------ writing

    @_writes
    def publish(
        self,
        name: str,
        data: pa.RecordBatchReader,
        *,
        write: WriteSpec,
        run_id: str,
        run_seq: int,
        batch_id: str,
        watermark: str | None,
        schema_mode: SchemaMode | None = None,
        partition_values: Sequence[Mapping[str, Any]] | None = None,
    ) -> PublishResult:
        """Publish one batch into table ``name`` as ONE atomic, idempotent Delta commit.

        - ``append``; ``overwrite`` (the whole table; an empty batch empties it;
          ``schema_mode="overwrite"`` also replaces schema and partitioning);
        - ``overwrite_partitions``: replaces exactly the partitions present in the batch
          (a ``replaceWhere``-style predicate; delta-rs rejects rows outside it). Pass
          ``partition_values`` (the distinct ``write.partition_by`` tuples, e.g. from a
          ``SELECT DISTINCT`` in DuckDB) to stream the batch straight in; without them the
          batch is spooled once to a Parquet file in the warehouse while the values are
          collected, then written from that file (bounded memory, one extra disk pass);
        - ``merge``: upsert on ``write.keys`` (update all columns of matching rows, insert
          the others). Keys are compared with ``=``: rows with a null key never match and are
          inserted. The batch must already hold one row per key (the caller de-duplicates).

        ``schema_mode="merge"`` adds the batch's new columns (missing ones are written null);
        ``None`` requires the table's exact columns. An incompatible type change raises
        :class:`SchemaContractError` naming the table and column, before anything is written.
        ``write.partition_by`` applies when the table is created. An empty batch commits
        nothing (``skipped``), except that a missing table is created empty and an
        ``overwrite`` empties the table. If the table's transaction for ``"lockgate:" + name``
        is already ``>= run_seq`` nothing is read or written (``skipped``).
        """
        meta = self._meta(write.mode, run_id, run_seq, batch_id, watermark)
        return self._publish(
            name,
            data,
            mode=write.mode,
            keys=write.keys,
            partition_by=write.partition_by,
            meta=meta,
            run_seq=run_seq,
            schema_mode=schema_mode,
            partition_values=partition_values,
        )

    @_writes
    def publish_query(
        self,
        name: str,
        con: duckdb.DuckDBPyConnection,
        query: exp.Query,
        *,
        write: WriteSpec,
        run_id: str,
        run_seq: int,
        batch_id: str,
        watermark: str | None,
        schema_mode: SchemaMode | None = None,
        partition_values: Sequence[Mapping[str, Any]] | None = None,
        batch_rows: int = 122_880,
    ) -> PublishResult:
        """:meth:`publish` the result of DuckDB ``query`` (run on ``con``), same semantics.

        Plain ``append``/``overwrite`` of an unpartitioned table with the table's exact
        columns (or a new table) lets DuckDB write the Parquet files in parallel and commits
        them as one Delta commit (:mod:`lockgate.storage._native`); any other case streams
        the query's Arrow batches into :meth:`publish`.
        """
        sql = query.sql("duckdb")
        rel = con.sql(sql)
        schema = _native.storable_schema(rel.limit(0).to_arrow_table().schema)
        table = self._maybe_table(name)
        native = (
            write.mode in (WriteMode.APPEND, WriteMode.OVERWRITE)
            and not write.partition_by
            and _native.native_columns(rel)
        )
        if native and table is not None:
            with _translated(name, "read schema"):
                current = pa.schema(table.schema().to_arrow())
                partitioned = bool(table.metadata().partition_columns)
            native = not partitioned and _native.same_columns(
                _native.storable_schema(current), schema
            )
        if not native:
            reader = rel.to_arrow_reader(batch_rows)
            try:
                cast = pa.RecordBatchReader.from_batches(schema, (b.cast(schema) for b in reader))
                return self.publish(
                    name,
                    cast,
                    write=write,
                    run_id=run_id,
                    run_seq=run_seq,
                    batch_id=batch_id,
                    watermark=watermark,
                    schema_mode=schema_mode,
                    partition_values=partition_values,
                )
            finally:
                reader.close()
        return self._publish_native(
            name,
            con,
            sql,
            schema,
            table,
            write=write,
            run_id=run_id,
            run_seq=run_seq,
            batch_id=batch_id,
            watermark=watermark,
        )

    def _publish_native(
        self,
        name: str,
        con: duckdb.DuckDBPyConnection,
        sql: str,
        schema: pa.Schema,
        table: DeltaTable | None,
        *,
        write: WriteSpec,
        run_id: str,
        run_seq: int,
        batch_id: str,
        watermark: str | None,
    ) -> PublishResult:
        path = self.path(name)
        app_id = APP_ID_PREFIX + name
        action = f"publish ({write.mode})"
        done = _already_committed(table, name, action, app_id, run_seq)
        if done is not None:
            return done
        with _translated(name, action):
            files = _native.write_files(con, sql, path)
        if files.rows == 0:
            empty = pa.RecordBatchReader.from_batches(schema, [])
            return self.publish(
                name,
                empty,
                write=write,
                run_id=run_id,
                run_seq=run_seq,
                batch_id=batch_id,
                watermark=watermark,
            )
        meta = self._meta(write.mode, run_id, run_seq, batch_id, watermark)
        meta[META_PREFIX + "rows"] = str(files.rows)
        props = CommitProperties(
            custom_metadata=meta,
            app_transactions=[Transaction(app_id=app_id, version=run_seq)],
        )
        crashpoint(f"{name}: files written, not committed")
        try:
            with _translated(name, action):
                _native.commit_files(
                    table,
                    path,
                    files,
                    schema,
                    overwrite=write.mode == WriteMode.OVERWRITE,
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

    @staticmethod
    def _meta(
        mode: WriteMode, run_id: str, run_seq: int, batch_id: str, watermark: str | None
    ) -> dict[str, str]:
        meta = {
            META_PREFIX + "run_id": run_id,
            META_PREFIX + "run_seq": str(run_seq),
            META_PREFIX + "batch_id": batch_id,
            META_PREFIX + "mode": str(mode),
        }
        if watermark is not None:
            meta[META_PREFIX + "watermark"] = watermark
        return meta

    @_writes
    def publish_quarantine(
        self,
        name: str,
        data: pa.RecordBatchReader,
        *,
        run_id: str,
        run_seq: int,
        batch_id: str,
    ) -> PublishResult:
        """Append quarantined rows to ``name + "__quarantine"`` (schema evolves by merge),
        idempotent on ``(app_id="lockgate:<name>__quarantine", run_seq)``."""
        meta = {
            META_PREFIX + "run_id": run_id,
            META_PREFIX + "run_seq": str(run_seq),
            META_PREFIX + "batch_id": batch_id,
            META_PREFIX + "mode": str(WriteMode.APPEND),
        }
        return self._publish(
            name + QUARANTINE_SUFFIX,
            data,
            mode=WriteMode.APPEND,
            keys=(),
            partition_by=(),
            meta=meta,
            run_seq=run_seq,
            schema_mode="merge",
            partition_values=None,
        )

    def _publish(
        self,
        name: str,
        data: pa.RecordBatchReader,
        *,
        mode: WriteMode,
        keys: Sequence[str],
        partition_by: Sequence[str],
        meta: dict[str, str],
        run_seq: int,
        schema_mode: SchemaMode | None,
        partition_values: Sequence[Mapping[str, Any]] | None,
    ) -> PublishResult:
        path = self.path(name)
        app_id = APP_ID_PREFIX + name
        action = f"publish ({mode})"
        if schema_mode == "overwrite" and mode != WriteMode.OVERWRITE:
            raise PublishError(
                f"table '{name}': schema_mode='overwrite' needs write mode 'overwrite' "
                f"(got '{mode}')",
                hint="use schema_mode='merge' to add columns, or a full refresh to rebuild",
            )
        table = self._maybe_table(name)
        done = _already_committed(table, name, action, app_id, run_seq)
        if done is not None:
            return done
        missing = [c for c in (*keys, *partition_by) if c not in data.schema.names]
        if missing:
            raise SchemaContractError(
                f"table '{name}': the batch has no column(s) "
                + ", ".join(map(repr, missing))
                + " named in write.keys / write.partition_by",
                hint="select the key and partition columns in the dataset's SQL",
            )
        create_partitions = list(partition_by) or None
        if table is not None:
            table_schema = pa.schema(table.schema().to_arrow())
            added = check_compatible(name, table_schema, data.schema, schema_mode)
            if added:
                log.info("table %s: adding column(s) %s", name, ", ".join(added))
            existing = list(table.metadata().partition_columns)
            if schema_mode != "overwrite":
                if partition_by and existing != list(partition_by):
                    log.warning(
                        "table %s is partitioned by %s, not %s as write.partition_by says; "
                        "keeping the table's partitioning (a full refresh re-partitions it)",
                        name,
                        existing,
                        list(partition_by),
                    )
                create_partitions = None

        props = CommitProperties(
            custom_metadata=meta,
            app_transactions=[Transaction(app_id=app_id, version=run_seq)],
        )
        tap = _Tap(data)
        if tap.empty:
            if table is None:
                with _translated(name, "create table"):
                    DeltaTable.create(
                        str(path),
                        schema=data.schema,
                        partition_by=create_partitions,
                        commit_properties=props,
                    )
                return PublishResult(0, 0, True, "empty batch: created the empty table")
            if mode != WriteMode.OVERWRITE:
                return PublishResult(table.version(), 0, True, "empty batch: nothing to publish")

        crashpoint(f"{name}: before {action}")
        with _translated(name, action, tap):
            if table is None:
                write_deltalake(
                    str(path),
                    tap.reader(),
                    mode="overwrite" if mode == WriteMode.OVERWRITE else "append",
                    partition_by=create_partitions,
                    commit_properties=props,
                )
            elif mode == WriteMode.APPEND:
                write_deltalake(
                    table,
                    tap.reader(),
                    mode="append",
                    schema_mode="merge" if schema_mode == "merge" else None,
                    commit_properties=props,
                )
            elif mode == WriteMode.OVERWRITE:
                write_deltalake(
                    table,
                    tap.reader(),
                    mode="overwrite",
                    schema_mode=schema_mode,
                    partition_by=create_partitions,
                    commit_properties=props,
                )
            elif mode == WriteMode.OVERWRITE_PARTITIONS:
                self._overwrite_partitions(
                    table, tap, list(partition_by), partition_values, schema_mode, props
                )
            elif mode == WriteMode.MERGE:
                (
                    table.merge(
                        tap.reader(),
                        predicate=merge_predicate(keys),
                        source_alias=SOURCE_ALIAS,
                        target_alias=TARGET_ALIAS,
                        merge_schema=schema_mode == "merge",
                        streamed_exec=True,
                        commit_properties=props,
                    )
                    .when_matched_update_all()
                    .when_not_matched_insert_all()
                    .execute()
                )
            else:  # pragma: no cover - WriteMode is exhaustive
                raise PublishError(f"table '{name}': unknown write mode {mode!r}")
        crashpoint(f"{name}: committed")
        version = table.version() if table is not None else self._table(name).version()
        log.info("table %s: %s committed version %s (%s rows)", name, mode, version, tap.rows)
        return PublishResult(version, tap.rows, False, f"{mode}: committed version {version}")

    def _overwrite_partitions(
        self,
        table: DeltaTable,
        tap: _Tap,
        partition_by: list[str],
        partition_values: Sequence[Mapping[str, Any]] | None,
        schema_mode: SchemaMode | None,
        props: CommitProperties,
    ) -> None:
        schema_merge: Literal["merge"] | None = "merge" if schema_mode == "merge" else None
        if partition_values is not None:
            predicate = partition_predicate(partition_by, partition_values)
            write_deltalake(
                table,
                tap.reader(),
                mode="overwrite",
                predicate=predicate,
                schema_mode=schema_merge,
                commit_properties=props,
            )
            return
        # The predicate must be known before delta-rs reads the first row, and a reader can be
        # read only once: spool the batch to local Parquet while collecting its partitions.
        spool_root = self.warehouse / SPOOL_DIR
        spool_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=spool_root) as tmp:
            spool = Path(tmp) / "batch.parquet"
            seen: dict[tuple[Any, ...], dict[str, Any]] = {}
            with pq.ParquetWriter(spool, tap.schema) as writer:
                for batch in tap.reader():
                    writer.write_batch(batch)
                    distinct = pa.Table.from_batches([batch]).group_by(partition_by).aggregate([])
                    for row in distinct.to_pylist():
                        seen.setdefault(tuple(row[c] for c in partition_by), row)
            predicate = partition_predicate(partition_by, seen.values())
            import pyarrow.dataset as pads

            spooled = pads.dataset(spool, format="parquet", schema=tap.schema)
            write_deltalake(
                table,
                spooled.scanner().to_reader(),
                mode="overwrite",
                predicate=predicate,
                schema_mode=schema_merge,
                commit_properties=props,
            )
