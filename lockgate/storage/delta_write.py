"""Writing one batch into a Delta table through delta-rs: ONE commit per batch, idempotent on
the table's application transaction, streamed (never collected into one Arrow table).

- ``append``; ``overwrite`` (the whole table; an empty batch empties it;
  ``schema_mode="overwrite"`` also replaces schema and partitioning);
- ``overwrite_partitions``: replaces exactly the partitions present in the batch (a
  ``replaceWhere``-style predicate; delta-rs rejects rows outside it);
- ``merge``: upsert on the keys (update all columns of matching rows, insert the others).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from deltalake import (
    CommitProperties,
    DeltaTable,
    PostCommitHookProperties,
    Transaction,
    write_deltalake,
)

from lockgate.errors import SchemaContractError
from lockgate.storage import _native
from lockgate.storage._predicates import (
    SOURCE_ALIAS,
    TARGET_ALIAS,
    merge_predicate,
    partition_predicate,
    quoted_column,
    value_predicate,
)
from lockgate.storage.base import APP_ID_PREFIX, PublishResult, TableWrite
from lockgate.storage.crashpoints import crashpoint
from lockgate.storage.delta_errors import translated
from lockgate.storage.errors import CommitFenced, PublishError

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

#: folder (inside the warehouse) for spooled batches; a name no dataset can have
SPOOL_DIR = ".lockgate_spool"
_NO_CHECKPOINT = PostCommitHookProperties(create_checkpoint=False)


class Tap:
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
        import pyarrow as pa

        return pa.RecordBatchReader.from_batches(self.schema, self._batches())


def storable(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """The batches cast to Arrow types Delta stores (string_view → string, ns → us, …)."""
    import pyarrow as pa

    target = _native.storable_schema(reader.schema)
    if target.equals(reader.schema):
        return reader
    return pa.RecordBatchReader.from_batches(target, (b.cast(target) for b in reader))


def commit_properties(
    name: str,
    meta: dict[str, str],
    run_seq: int,
    positions: Iterable[tuple[str, int]] = (),
    fence: tuple[str, int] | None = None,
) -> CommitProperties:
    """Custom metadata plus the application transaction ``("lockgate:<name>", run_seq)``
    (and the ``positions`` of a change source, and the writer's ``fence``, in the same
    commit)."""
    txns = [Transaction(app_id=APP_ID_PREFIX + name, version=run_seq)]
    txns += [Transaction(app_id=app, version=v) for app, v in positions]
    if fence is not None:
        txns.append(Transaction(app_id=fence[0], version=fence[1]))
    return CommitProperties(custom_metadata=meta, app_transactions=txns)


def check_fence(name: str, table: DeltaTable | None, fence: tuple[str, int] | None) -> None:
    """Raise :class:`CommitFenced` unless ``table`` (loaded now) holds the writer's token
    (a table that does not exist passes: its creation is exclusive, see :func:`write_batch`)."""
    if fence is None or table is None:
        return
    app, epoch = fence
    with translated(name, "check the fencing token"):
        held = table.transaction_version(app)
    if held != epoch:
        raise CommitFenced(
            f"table '{name}': commit refused, this writer was fenced out: the table's token "
            f"{app!r} is {held}, this writer holds {epoch} (another consumer took over)",
            hint="another process owns the table's stream now; this one stops without "
            "acknowledging anything",
        )


@contextlib.contextmanager
def fenced(name: str, fence: tuple[str, int] | None) -> Iterator[None]:
    """A fenced commit that lost the race: a concurrent commit carried the same token id
    (delta-rs refuses a transaction whose application ids a winning commit updated), or the
    table this writer expected absent was created meanwhile."""
    try:
        yield
    except CommitFenced:
        raise
    except Exception as exc:
        if fence is None:
            raise
        text = f"{exc} {exc.__cause__}"
        if "Concurrent transaction" not in text and "already exists" not in text:
            raise
        raise CommitFenced(
            f"table '{name}': commit refused, this writer was fenced out: another writer "
            f"carrying {fence[0]!r} committed concurrently ({exc.__cause__ or exc})",
            hint="another process owns the table's stream now; this one stops without "
            "acknowledging anything",
        ) from exc


#: the caller's knowledge of a table's application transactions (app id → version), from
#: its own commits to that table object since nobody else committed (None: ask the table)
KnownTxns = Mapping[str, int] | None


def _txn_version(table: DeltaTable, app_id: str, known: KnownTxns) -> int | None:
    """The table's transaction version for ``app_id`` (delta-rs replays the log for it:
    ~1-2 ms; a kept table's own commits tell it for free)."""
    if known is not None and app_id in known:
        return known[app_id]
    return table.transaction_version(app_id)


def _moves_position(
    table: DeltaTable | None, positions: Iterable[tuple[str, int]], known: KnownTxns = None
) -> bool:
    if table is None:
        return False
    for app, v in positions:
        done = _txn_version(table, app, known)
        if done is None or done < v:
            return True
    return False


def already_committed(
    table: DeltaTable | None, name: str, action: str, run_seq: int, known: KnownTxns = None
) -> PublishResult | None:
    """The idempotency rule of every publish: a table whose application transaction is
    already at ``run_seq`` or beyond has this batch; publish nothing."""
    if table is None:
        return None
    app_id = APP_ID_PREFIX + name
    with translated(name, action):
        done = _txn_version(table, app_id, known)
    if done is None or done < run_seq:
        return None
    return PublishResult(
        version=table.version(),
        rows=0,
        skipped=True,
        reason=f"already published: transaction {app_id!r} is at {done} >= run_seq {run_seq}",
        already_committed=True,
    )


def write_batch(
    path: Path,
    table: DeltaTable | None,
    data: pa.RecordBatchReader,
    *,
    write: TableWrite,
    meta: dict[str, str],
    run_seq: int,
    spool_root: Path,
    positions: tuple[tuple[str, int], ...] = (),
    fence: tuple[str, int] | None = None,
    fence_checked: bool = False,
    known: KnownTxns = None,
    checkpoint: bool = True,
) -> PublishResult:
    """Publish ``data`` into the table at ``path`` (``table``: it opened, None: absent).

    With a ``fence`` the table must hold that token (checked before anything else, even the
    idempotency rule: a fenced writer learns it, it is not told "already committed"), the
    commit carries it, and a missing table is created exclusively. ``fence_checked``: the
    caller knows ``table`` holds the token (no commit since its own), no lookup.
    ``known``: the table's application transactions as the caller knows them (see
    :data:`KnownTxns`); ``checkpoint=False``: an append into an existing table leaves the
    log checkpoint (every ``delta.checkpointInterval`` commits) to the caller."""
    name, mode = path.name, write.mode
    action = f"publish ({mode})"
    if write.schema_mode == "overwrite" and mode != "overwrite":
        raise PublishError(
            f"table '{name}': schema_mode='overwrite' needs write mode 'overwrite' (got '{mode}')",
            hint="use schema_mode='merge' to add columns, or a full refresh to rebuild",
        )
    if not fence_checked:
        check_fence(name, table, fence)
    done = already_committed(table, name, action, run_seq, known)
    if done is not None:
        return done
    create_partitions = _create_partitions(name, table, data.schema, write)
    props = commit_properties(name, meta, run_seq, positions, fence)
    tap = Tap(data)
    if tap.empty:
        if table is None:
            with fenced(name, fence), translated(name, "create table"):
                DeltaTable.create(
                    str(path),
                    schema=data.schema,
                    partition_by=create_partitions,
                    commit_properties=props,
                )
            return PublishResult(0, 0, True, "empty batch: created the empty table")
        if mode != "overwrite" and not _moves_position(table, positions, known):
            return PublishResult(table.version(), 0, True, "empty batch: nothing to publish")
        if mode != "overwrite":  # no rows, but the source's position moves: commit it
            with fenced(name, fence), translated(name, "commit position"):
                write_deltalake(
                    table,
                    tap.reader(),
                    mode="append",
                    commit_properties=props,
                    post_commithook_properties=None if checkpoint else _NO_CHECKPOINT,
                )
            version = table.version()
            return PublishResult(version, 0, False, f"empty batch: position at version {version}")

    crashpoint(f"{name}: before {action}")
    with fenced(name, fence), translated(name, action, tap):
        if table is None and mode == "overwrite":
            write_deltalake(
                str(path),
                tap.reader(),
                mode="overwrite",
                partition_by=create_partitions,
                commit_properties=props,
            )
        elif table is None:
            write_deltalake(
                str(path),
                tap.reader(),
                mode="append" if fence is None else "error",  # fenced: exclusively
                partition_by=create_partitions,
                commit_properties=props,
            )
        else:
            _write_into(table, tap, write, create_partitions, props, spool_root, checkpoint)
    crashpoint(f"{name}: committed")
    version = table.version() if table is not None else DeltaTable(str(path)).version()
    log.info("table %s: %s committed version %s (%s rows)", name, mode, version, tap.rows)
    return PublishResult(version, tap.rows, False, f"{mode}: committed version {version}")


def _create_partitions(
    name: str, table: DeltaTable | None, schema: pa.Schema, write: TableWrite
) -> list[str] | None:
    """Partition columns to write with (None: keep the table's); checks the batch first."""
    import pyarrow as pa

    keys, partition_by, schema_mode = write.keys, write.partition_by, write.schema_mode
    missing = [c for c in (*keys, *partition_by) if c not in schema.names]
    if missing:
        raise SchemaContractError(
            f"table '{name}': the batch has no column(s) "
            + ", ".join(map(repr, missing))
            + " named in write.keys / write.partition_by",
            hint="select the key and partition columns in the dataset's SQL",
        )
    if table is None:
        return list(partition_by) or None
    from lockgate.storage._schema import check_compatible  # pyarrow: only when writing

    added = check_compatible(name, pa.schema(table.schema().to_arrow()), schema, schema_mode)
    if added:
        log.info("table %s: adding column(s) %s", name, ", ".join(added))
    if schema_mode == "overwrite":
        return list(partition_by) or None
    existing = list(table.metadata().partition_columns)
    if partition_by and existing != list(partition_by):
        log.warning(
            "table %s is partitioned by %s, not %s as write.partition_by says; "
            "keeping the table's partitioning (a full refresh re-partitions it)",
            name,
            existing,
            list(partition_by),
        )
    return None


def _write_into(
    table: DeltaTable,
    tap: Tap,
    write: TableWrite,
    create_partitions: list[str] | None,
    props: CommitProperties,
    spool_root: Path,
    checkpoint: bool = True,
) -> None:
    """The write of one mode into an existing table (one commit)."""
    mode, schema_mode = write.mode, write.schema_mode
    if mode == "append":
        write_deltalake(
            table,
            tap.reader(),
            mode="append",
            schema_mode="merge" if schema_mode == "merge" else None,
            commit_properties=props,
            post_commithook_properties=None if checkpoint else _NO_CHECKPOINT,
        )
    elif mode == "overwrite" and write.replace_where is not None:
        write_deltalake(
            table,
            tap.reader(),
            mode="overwrite",
            predicate=write.replace_where,
            schema_mode="merge" if schema_mode == "merge" else None,
            commit_properties=props,
        )
    elif mode == "overwrite":
        write_deltalake(
            table,
            tap.reader(),
            mode="overwrite",
            schema_mode=schema_mode,
            partition_by=create_partitions,
            commit_properties=props,
        )
    elif mode == "overwrite_partitions":
        _overwrite_partitions(table, tap, write, props, spool_root)
    elif mode == "merge":
        merger = table.merge(
            tap.reader(),
            predicate=merge_predicate(write.keys),
            source_alias=SOURCE_ALIAS,
            target_alias=TARGET_ALIAS,
            merge_schema=schema_mode == "merge",
            streamed_exec=True,
            commit_properties=props,
        )
        if write.delete_when is None:
            merger.when_matched_update_all().when_not_matched_insert_all().execute()
        else:
            is_delete = value_predicate(SOURCE_ALIAS, *write.delete_when)
            if write.soft_delete:
                updates = {c: quoted_column(SOURCE_ALIAS, c) for c in write.soft_delete}
                merger = merger.when_matched_update(updates, predicate=is_delete)
            else:
                merger = merger.when_matched_delete(predicate=is_delete)
            keep = f"NOT ({is_delete})"
            merger.when_matched_update_all(predicate=keep).when_not_matched_insert_all(
                predicate=keep
            ).execute()
    else:  # pragma: no cover - TableWrite validates the mode
        raise PublishError(f"unknown write mode {mode!r}")


def _overwrite_partitions(
    table: DeltaTable, tap: Tap, write: TableWrite, props: CommitProperties, spool_root: Path
) -> None:
    """Replace the partitions the batch holds (one commit, a ``replaceWhere`` predicate)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    partition_by = list(write.partition_by)
    schema_merge: Literal["merge"] | None = "merge" if write.schema_mode == "merge" else None

    def replace(reader: pa.RecordBatchReader, values: Iterable[Mapping[str, Any]]) -> None:
        write_deltalake(
            table,
            reader,
            mode="overwrite",
            predicate=partition_predicate(partition_by, values),
            schema_mode=schema_merge,
            commit_properties=props,
        )

    if write.partition_values is not None:
        replace(tap.reader(), write.partition_values)
        return
    # The predicate must be known before delta-rs reads the first row, and a reader can be
    # read only once: spool the batch to local Parquet while collecting its partitions.
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
        import pyarrow.dataset as pads

        spooled = pads.dataset(spool, format="parquet", schema=tap.schema)
        replace(spooled.scanner().to_reader(), seen.values())
