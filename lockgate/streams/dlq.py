"""The dead-letter table's deferred commits: ONE Delta commit per batch (the sink's), the DLQ
rows of many batches committed together.

A batch's DLQ rows are first written to a small local log file (Arrow IPC, written to a
temporary name then renamed: a file is there whole or not at all), then the batch's sink
commit lands, then the source is acknowledged. The buffered rows are committed to
``<stream>__dlq`` every ``sink.dlq_commit_every`` batches, when they reach
``sink.dlq_buffer_bytes``, when the stream is idle and when it stops — one commit whose
application transaction version is the sink position it covers; the log files are then
removed.

Exactly-once under kill -9 at any point, per partition, with ``d`` the DLQ table's position
and ``s`` the sink's:

- killed before the sink commit: the batch is read again (the source is sought to ``s``) and
  its log file is ignored at start (its rows are after ``s``) and written again;
- killed after the sink commit, before the DLQ commit: at start the logged rows in
  ``(d, s]`` are committed to the DLQ (the source is not needed again: the rows are in the
  log) — the sink already holds the batch, so none of its events is published twice;
- killed after the DLQ commit, before the log files are removed: rows at or before ``d``
  are dropped at start, nothing is written twice.

Log files are named with the consumer's fencing epoch (:mod:`lockgate.streams.runner`): at
start a consumer recovers only the files of the epoch that committed the sink's last batch
(a consumer fenced out before its sink commit left files of batches it never committed, and
the consumer that did commit them logged its own rows for them), and
every removal spares the files of newer epochs (a fenced consumer resuming must not remove
the log of the consumer that replaced it: those rows are in no table yet).

A batch whose DLQ rows alone exceed the buffer size is not logged: the buffer and its rows
are committed before the sink commit (the DLQ then leads the sink; rows of a re-read batch
at or before ``d`` are filtered out, as before the deferral). A store with no local folder
commits the DLQ that way every batch.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from lockgate.errors import TerminalError
from lockgate.storage.base import CommitTag, TableStore, TableWrite
from lockgate.storage.crashpoints import crashpoint

log = logging.getLogger(__name__)
_TS = pa.timestamp("us", tz="UTC")
DLQ_SCHEMA = pa.schema(
    [
        ("offset", pa.string()),
        ("seq", pa.int64()),
        ("payload", pa.binary()),
        ("reason", pa.string()),
        ("received_at", _TS),
    ]
)
#: the rows' partition in the log files (never in the DLQ table)
PART = "__lg_partition"
_LOGGED = DLQ_SCHEMA.append(pa.field(PART, pa.int32()))
_WRITE = TableWrite("append", schema_mode="merge")
#: where the log files live, under the warehouse (hidden, as the write spool: not a table)
LOG_DIR = ".lockgate_streams"

#: makes the tag of a DLQ commit covering positions ``{partition: seq}`` (last offset text)
Tagger = Callable[[dict[int, int], str], CommitTag]


def log_folder(store: TableStore, stream: str) -> Path | None:
    """The stream's DLQ log folder, or None for a store without a local warehouse."""
    warehouse = getattr(store, "warehouse", None)
    if not isinstance(warehouse, Path):
        return None
    return warehouse / LOG_DIR / stream / "dlq"


def in_range(
    seqs: pa.Array, parts: pa.Array, lo: dict[int, int], hi: dict[int, int]
) -> pa.BooleanArray:
    """Per row: ``lo[p] < seq <= hi[p]`` (a partition absent from ``lo``: -1, from ``hi``:
    nothing is in range).

    >>> in_range(pa.array([1, 2, 3]), pa.array([0, 0, 0], pa.int32()), {0: 1}, {0: 2}).to_pylist()
    [False, True, False]
    """
    top = max([0, *lo, *hi, int(pc.max(parts).as_py() or 0) if len(parts) else 0])
    los = [-1] * (top + 1)
    his = [-1] * (top + 1)
    for p, s in lo.items():
        los[p] = s
    for p, s in hi.items():
        his[p] = s
    parts = parts.fill_null(0)
    low = pa.array(los, pa.int64()).take(parts)
    high = pa.array(his, pa.int64()).take(parts)
    return pc.and_(pc.greater(seqs, low), pc.less_equal(seqs, high))


class DeferredDlq:
    """The DLQ rows of committed batches not yet in the DLQ table (memory + log files)."""

    def __init__(
        self,
        store: TableStore,
        table: str,
        folder: Path | None,
        *,
        every: int,
        max_bytes: int,
        epoch: int | None = None,
    ) -> None:
        self.store, self.table, self.folder = store, table, folder
        self.every, self.max_bytes = every, max_bytes
        self.epoch = epoch
        self._rows: list[pa.Table] = []
        self._bytes = 0
        self._batches = 0  # sink commits since the last DLQ commit
        self._offset = ""  # the newest covered batch's last offset
        self.commits = 0

    def __len__(self) -> int:
        return sum(t.num_rows for t in self._rows)

    # -- start ---------------------------------------------------------------------------

    def recover(
        self,
        dlq_done: dict[int, int],
        sink_done: dict[int, int],
        tag: Tagger,
        committer: int | None = None,
    ) -> int:
        """Commit the logged rows of batches the sink holds and the DLQ does not (a kill
        after a sink commit), from the files of epoch ``committer`` (the epoch of the sink's
        last batch commit); drop the log (but newer epochs' files).
        Returns the rows committed."""
        if self.folder is None or not self.folder.is_dir():
            return 0
        files = sorted(f for f in self.folder.glob("*.arrow") if _epoch(f) == committer)
        parts = [_read(f) for f in files]
        damaged = [f for f, p in zip(files, parts, strict=True) if p is None]
        if damaged and any(s > dlq_done.get(p, -1) for p, s in sink_done.items()):
            # the DLQ lacks rows of committed batches and may lack exactly these: refuse
            # rather than lose them silently (a file is renamed into place whole: this is
            # damage from outside); the files are kept
            raise TerminalError(
                f"stream DLQ log file(s) unreadable: {', '.join(f.name for f in damaged)} in "
                f"{self.folder}; {self.table} lacks the rows of batches the sink committed "
                f"(sink positions {dict(sorted(sink_done.items()))}, DLQ positions "
                f"{dict(sorted(dlq_done.items()))}) and they may be in these files",
                hint="restore the files, or remove them to accept losing those DLQ rows",
            )
        rows = pa.concat_tables([p for p in parts if p is not None] or [_LOGGED.empty_table()])
        n = 0
        if rows.num_rows:
            keep = in_range(
                rows.column("seq").combine_chunks(),
                rows.column(PART).combine_chunks(),
                dlq_done,
                sink_done,
            )
            rows = rows.filter(keep)
            n = rows.num_rows
            if n:
                last = str(rows.column("offset")[-1].as_py())
                self._publish(rows.drop_columns([PART]), tag(dict(sink_done), last))
                _advance(dlq_done, sink_done)
        _remove_files(self.folder, self.epoch)
        return n

    # -- per batch -----------------------------------------------------------------------

    def stage(self, rows: pa.Table, parts: pa.Array | None, name: str) -> bool:
        """Buffer one batch's fresh DLQ rows before its sink commit (logged to a file).
        False: the rows are too many to defer — the caller commits them now
        (:meth:`commit_now`)."""
        size = rows.nbytes
        if self.folder is None or self.every <= 1 or size > self.max_bytes:
            return False
        if parts is None:
            parts = pa.nulls(rows.num_rows, pa.int32())
        logged = rows.append_column(PART, parts.cast(pa.int32()))
        last = int(rows.column("seq")[-1].as_py())
        name = f"{self.commits:08d}-{last:020d}-{len(self._rows):06d}.arrow"
        path = self.folder / (name if self.epoch is None else f"e{self.epoch:012d}-{name}")
        tmp = path.with_suffix(".tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                with pa.ipc.new_file(f, _LOGGED) as w:
                    w.write_table(logged)
                f.flush()
                os.fsync(f.fileno())  # on disk before the sink commit that relies on it
            os.replace(tmp, path)
        except OSError as e:  # read-only / full / not a folder: commit them now instead
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            log.warning(
                "%s: cannot write the DLQ log in %s (%s: %s); committing DLQ rows with each "
                "batch instead",
                self.table,
                self.folder,
                type(e).__name__,
                e,
            )
            self.folder = None  # for the rest of this run
            return False
        _sync_dir(self.folder)
        crashpoint(f"{name}: DLQ rows logged, sink not committed")
        self._rows.append(logged)
        self._bytes += size
        return True

    def commit_now(self, rows: pa.Table | None, tag: CommitTag) -> None:
        """Commit the buffer (and ``rows``, a batch not yet in the sink) before the sink
        commit: the old order, for a batch too large to defer."""
        tables = [t.drop_columns([PART]) for t in self._rows]
        if rows is not None:
            tables.append(rows)
        if tables:
            self._publish(pa.concat_tables(tables), tag)
        self._clear()

    def committed(self, offset: str) -> bool:
        """One sink commit landed; True when the buffer is due (count or size)."""
        self._offset = offset or self._offset
        if self._rows:
            self._batches += 1
        return bool(self._rows) and (self._batches >= self.every or self._bytes >= self.max_bytes)

    def flush(self, tag: Tagger, sink_done: dict[int, int]) -> bool:
        """Commit the buffered rows (all of batches the sink holds), tagged with the sink's
        position ``sink_done``; remove the log files."""
        if not self._rows:
            self._batches = 0
            return False
        crashpoint(f"{self.table}: sink committed, deferred DLQ rows not committed")
        rows = pa.concat_tables([t.drop_columns([PART]) for t in self._rows])
        self._publish(rows, tag(dict(sink_done), self._offset))
        self._clear()
        return True

    def _publish(self, rows: pa.Table, tag: CommitTag) -> None:
        self.store.publish(self.table, rows.to_reader(), write=_WRITE, tag=tag)
        self.commits += 1

    def _clear(self) -> None:
        self._rows, self._bytes, self._batches = [], 0, 0
        if self.folder is not None and self.folder.is_dir():
            _remove_files(self.folder, self.epoch)


def _epoch(path: Path) -> int | None:
    """The fencing epoch a log file was written under (None: unfenced, an older version).

    >>> _epoch(Path("e000000000007-00000000-00000000000000000042-000000.arrow"))
    7
    >>> _epoch(Path("00000000-00000000000000000042-000000.arrow")) is None
    True
    """
    name = path.name
    if name.startswith("e") and name[1:13].isdigit():
        return int(name[1:13])
    return None


def _remove_files(folder: Path, upto: int | None = None) -> None:
    """The log files (and stray ``.tmp`` ones) of epochs up to ``upto`` (None: all); anything
    else there (a folder) is left."""
    for f in folder.iterdir():
        if f.is_dir():
            continue
        epoch = _epoch(f)
        if upto is None or epoch is None or epoch <= upto:
            f.unlink(missing_ok=True)


def _sync_dir(folder: Path) -> None:
    """The rename itself on disk (a directory fsync; not every platform allows one)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _read(path: Path) -> pa.Table | None:
    with contextlib.suppress(OSError, pa.ArrowInvalid), pa.memory_map(str(path)) as f:
        return pa.ipc.open_file(f).read_all()
    return None  # pragma: no cover - a log file is renamed into place whole


def _advance(done: dict[int, int], tops: dict[int, int]) -> None:
    for p, s in tops.items():
        done[p] = max(done.get(p, -1), s)
