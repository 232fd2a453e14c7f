"""One micro-batch of change data capture: pgoutput messages of whole transactions → the
change events of ONE table, as columns of text values ready for Arrow.

- Transactions whose end LSN is at or below the position the dataset's table already holds
  are skipped (``already_applied``): after a crash between the Delta commit and the slot
  advance the slot hands them out again.
- An update that changes the key becomes a delete of the old key and an insert of the new
  one (as Debezium emits them), so a merge on the key applies it.
- A TRUNCATE ends the batch after its transaction: the events before it in the batch are
  superseded (``truncated``), and the source deletes every row the table holds.
- A Relation message that changes the table's columns mid-batch ends the batch before
  that transaction (the next batch starts with the new columns: the schema contract sees
  the drift).
- An unchanged TOASTed value (``u``) takes the value of the latest earlier event of the same
  row in the batch; when there is none it is listed in :attr:`ChangeBatch.fills` (the
  source fills it from the published table). It never becomes a placeholder.

Events carry ``seq`` (order in the batch), ``lsn`` (their transaction's end LSN: what the
table's ``cdc:<slot>`` position is compared with) and the commit time (µs since 1970).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lockgate.sources._pgoutput import (
    _I16,
    _I32,
    _U32,
    UNCHANGED,
    DecodeError,
    Relation,
    Values,
    decode,
    pg_time_us,
    read_tuple,
)

_B, _C, _R, _I, _U, _D, _T = (ord(c) for c in "BCRIUDT")


@dataclass
class Fill:
    """An unchanged TOASTed value no earlier event of the batch knows: take it from the
    published row whose key is ``key`` (the row's key at the start of the batch)."""

    seq: int
    column: int
    key: tuple[bytes | None, ...]


@dataclass
class ChangeBatch:
    """The events of one table in one micro-batch (columnar, values as text bytes)."""

    relation: Relation
    key: tuple[int, ...]  # positions of the key columns in relation.columns
    seq: list[int] = field(default_factory=list)
    lsn: list[int] = field(default_factory=list)
    commit_us: list[int] = field(default_factory=list)
    op: list[str] = field(default_factory=list)
    values: list[list[bytes | None]] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    #: change records decoded for this table (before splitting key changes)
    decoded: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    transactions: int = 0
    #: end LSN of the last transaction taken into the batch (None: none)
    end_lsn: int | None = None
    #: end LSN of the last whole transaction read, with or without changes of the table
    #: (None: none past the table's position) — how far an idle batch may move the position
    read_lsn: int | None = None
    #: seq of the TRUNCATE in the batch: events before it are superseded
    truncate_seq: int | None = None
    #: the batch ended early (truncate, DDL) with more transactions to read
    cut: bool = False
    #: seq of the insert half of a key change → the old key (for unchanged TOAST values)
    prev_key: dict[int, tuple[bytes | None, ...]] = field(default_factory=dict)
    #: the vectorised decoder's columns (string arrays) instead of :attr:`values`
    arrays: list[Any] | None = None

    @property
    def rows(self) -> int:
        return len(self.seq)

    def column(self, i: int) -> Any:
        """Column ``i`` as an Arrow string array."""
        import pyarrow as pa

        if self.arrays is not None:
            return self.arrays[i]
        return pa.array(self.values[i], pa.string())  # bytes in, UTF-8 checked

    def skip(self, reason: str, n: int) -> None:
        if n:
            self.skipped[reason] = self.skipped.get(reason, 0) + n


class _Pending:
    """The events of the transaction being read (kept until its Commit)."""

    __slots__ = ("changes", "commit_us", "ops", "prev", "rows", "start", "truncate")

    def __init__(self, start: int, commit_us: int) -> None:
        self.start = start
        self.commit_us = commit_us
        self.changes = 0
        self.truncate: int | None = None
        self.prev: dict[int, tuple[bytes | None, ...]] = {}  # seq of a key change's insert


def collect(
    messages: Iterable[bytes],
    relation: Relation,
    key_columns: Sequence[str],
    *,
    applied_lsn: int | None,
) -> ChangeBatch:
    """The events of ``relation`` in ``messages`` (whole transactions, as the slot hands
    them out), skipping transactions whose end LSN is ``<= applied_lsn``."""
    names = relation.columns
    missing = [k for k in key_columns if k not in names]
    if missing:
        raise DecodeError(f"key column(s) {', '.join(missing)} not in {relation.qualified}")
    batch = ChangeBatch(relation, tuple(names.index(k) for k in key_columns))
    batch.values = [[] for _ in names]
    oid = relation.oid
    oid_bytes = _U32.pack(oid)
    pending: _Pending | None = None
    fast = _FastTuples(batch, len(names))
    for data in messages:
        kind = data[0]
        if kind in (_I, _U):
            if pending is None:
                raise DecodeError("change outside a transaction")
            if not data.startswith(oid_bytes, 1):
                continue
            pending.changes += 1
            if data[5] == 78:  # 'N': an insert, or an update that kept its key
                fast.add("c" if kind == _I else "u", data)
            else:
                _event(batch, pending, data, kind)
        elif kind == _D:
            if pending is None:
                raise DecodeError("change outside a transaction")
            if data[1:5] != oid_bytes:
                continue
            pending.changes += 1
            _event(batch, pending, data, kind)
        elif kind == _B:
            pending = _Pending(len(batch.seq), pg_time_us(_begin_ts(data)))
        elif kind == _C:
            if pending is None:
                raise DecodeError("commit without begin")
            end_lsn = _commit_end(data)
            done = _commit(batch, pending, end_lsn, applied_lsn)
            pending = None
            if done:
                batch.cut = True
                break
        elif kind == _R:
            msg = decode(data)
            assert isinstance(msg, Relation)
            if msg.oid == oid and msg.columns != relation.columns:
                # DDL: this transaction and the rest belong to the next batch
                if pending is not None:
                    _rollback(batch, pending.start)
                batch.cut = True
                break
        elif kind == _T:
            (n,) = _I32.unpack_from(data, 1)
            oids = {_U32.unpack_from(data, 6 + 4 * i)[0] for i in range(n)}
            if oid in oids and pending is not None:
                pending.changes += 1
                pending.truncate = len(batch.seq)
    if batch.fills or any(UNCHANGED in col for col in batch.values):
        _fill_unchanged(batch)
    return batch


class _FastTuples:
    """The hot path of decoding: an insert's (or update's) new tuple appended straight
    into the batch's column lists (no intermediate list per event)."""

    __slots__ = ("appends", "n", "n_bytes", "ops", "seqs")

    def __init__(self, batch: ChangeBatch, n: int) -> None:
        self.n = n
        self.n_bytes = _I16.pack(n)
        self.appends = [col.append for col in batch.values]
        self.seqs = batch.seq
        self.ops = batch.op

    def add(self, op: str, data: bytes) -> None:
        if not data.startswith(self.n_bytes, 6):
            raise DecodeError(f"tuple has {_I16.unpack_from(data, 6)[0]} columns, not {self.n}")
        unpack = _I32.unpack_from
        off = 8
        end = len(data)
        for append in self.appends:
            kind = data[off]
            if kind == 116:  # 't'
                length = unpack(data, off + 1)[0]
                off += 5
                nxt = off + length
                if nxt > end:
                    raise DecodeError("a value runs past the end of the message")
                append(data[off:nxt])
                off = nxt
            elif kind == 110:  # 'n'
                append(None)
                off += 1
            elif kind == 117:  # 'u'
                append(UNCHANGED)
                off += 1
            else:
                values, _ = read_tuple(data, 6)  # 'b' and errors: the general reader
                raise DecodeError(f"unexpected tuple value kind {chr(kind)!r} ({values!r})")
        self.seqs.append(len(self.seqs))
        self.ops.append(op)


def _begin_ts(data: bytes) -> int:
    from lockgate.sources._pgoutput import _BEGIN

    return int(_BEGIN.unpack_from(data, 1)[1])


def _commit_end(data: bytes) -> int:
    from lockgate.sources._pgoutput import _COMMIT

    return int(_COMMIT.unpack_from(data, 1)[2])


def _commit(batch: ChangeBatch, pending: _Pending, end_lsn: int, applied: int | None) -> bool:
    """Close the transaction; True when the batch must end after it (a truncate)."""
    start, n = pending.start, len(batch.seq) - pending.start
    if applied is not None and end_lsn <= applied:
        batch.skip("already_applied", n + (1 if pending.truncate is not None else 0))
        _rollback(batch, start)
        return False
    batch.read_lsn = end_lsn
    if pending.changes == 0:
        return False
    batch.transactions += 1
    batch.decoded += pending.changes
    batch.end_lsn = end_lsn
    batch.lsn.extend([end_lsn] * n)
    batch.commit_us.extend([pending.commit_us] * n)
    batch.prev_key.update(pending.prev)
    if pending.truncate is not None:
        batch.truncate_seq = pending.truncate
        batch.skip("truncated", pending.truncate)  # every event before it is superseded
        return True
    return False


def _rollback(batch: ChangeBatch, start: int) -> None:
    del batch.seq[start:]
    del batch.op[start:]
    for col in batch.values:
        del col[start:]


def _append(batch: ChangeBatch, op: str, values: Values) -> int:
    seq = len(batch.seq)
    batch.seq.append(seq)
    batch.op.append(op)
    for col, v in zip(batch.values, values, strict=True):
        col.append(v)
    return seq


def _key(values: Values, key: tuple[int, ...]) -> tuple[bytes | None, ...]:
    return tuple(values[i] for i in key)


def _event(batch: ChangeBatch, pending: _Pending, data: bytes, kind: int) -> None:
    tag = data[5]
    if kind == _I:
        values, _ = read_tuple(data, 6)
        _append(batch, "c", values)
        return
    if kind == _D:
        old, _ = read_tuple(data, 6)
        _append(batch, "d", _key_only(old, batch.key))
        return
    off = 6
    old_key = None
    if tag == 75 or tag == 79:  # 'K', 'O'
        old, off = read_tuple(data, off)
        old_key = _key(old, batch.key)
        off += 1  # 'N'
    new, _ = read_tuple(data, off)
    if old_key is not None and old_key != _key(new, batch.key):
        _append(batch, "d", _key_only(old, batch.key))
        seq = _append(batch, "c", new)
        pending.prev[seq] = old_key
    else:
        _append(batch, "u", new)


def _key_only(old: Values, key: tuple[int, ...]) -> Values:
    out: Values = [None] * len(old)
    for i in key:
        out[i] = old[i]
    return out


_PENDING = object()  # the value comes from the published row (a Fill is listed)


def _fill_unchanged(batch: ChangeBatch) -> None:
    """Unchanged TOASTed values from the latest earlier event of the same row, else a
    :class:`Fill` from the published row (keyed by the row's key at batch start)."""
    toast = [i for i, col in enumerate(batch.values) if UNCHANGED in col]
    last: dict[tuple[bytes | None, ...], dict[int, object]] = {}
    origin: dict[tuple[bytes | None, ...], tuple[bytes | None, ...]] = {}
    cols = batch.values
    for seq in range(batch.rows):
        key = tuple(cols[i][seq] for i in batch.key)
        if batch.op[seq] == "d":
            if seq + 1 in batch.prev_key:
                continue  # the first half of a key change: the insert after it reads it
            last.pop(key, None)
            origin.pop(key, None)
            continue
        before = batch.prev_key.get(seq, key)
        known = last.pop(before, {})
        root = origin.pop(before, before)
        for i in toast:
            v = cols[i][seq]
            if v == UNCHANGED:
                got = known.get(i, _PENDING)
                if got is _PENDING:
                    cols[i][seq] = None
                    batch.fills.append(Fill(seq, i, root))
                else:
                    cols[i][seq] = got if isinstance(got, bytes) else None
                    continue
            known[i] = _PENDING if v == UNCHANGED else cols[i][seq]
        last[key] = known
        origin[key] = root
