"""The vectorised decoder of a micro-batch: every message in one Arrow buffer, each column
of every change parsed at once with numpy (a column at a time, all rows together), instead
of a Python loop per value.

It handles the common batches — inserts, updates that keep their key, deletes — and answers
``None`` for anything else (an unchanged TOASTed value, a key change or a REPLICA IDENTITY
FULL update, a truncate, DDL, a value it cannot vouch for): the exact Python decoder
(:func:`lockgate.sources._cdc_batch.collect`) then reads the same messages. Both produce the
same :class:`~lockgate.sources._cdc_batch.ChangeBatch` (tested against each other).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from lockgate.sources._cdc_batch import ChangeBatch
from lockgate.sources._pgoutput import Relation, decode

_B, _C, _R, _I, _U, _D, _T = (ord(c) for c in "BCRIUDT")
_N, _K, _O = ord("N"), ord("K"), ord("O")
_PG_EPOCH_US = 946_684_800_000_000

Ints = npt.NDArray[np.int64]


def _be(buf: npt.NDArray[np.uint8], pos: Ints, width: int) -> Ints:
    """Big-endian unsigned integers of ``width`` bytes at each position (clipped reads)."""
    pos = np.minimum(pos, max(len(buf) - width, 0))
    out = np.zeros(len(pos), dtype=np.int64)
    for i in range(width):
        out = (out << 8) | buf[pos + i].astype(np.int64)
    return out


def _gather(
    buf: npt.NDArray[np.uint8], start: Ints, length: Ints, valid: npt.NDArray[np.bool_]
) -> pa.Array | None:
    """A string array of ``buf[start:start+length]`` per row (null where not ``valid``)."""
    n = len(start)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(length, out=offsets[1:])
    total = int(offsets[-1])
    if total >= 2**31 - 1:
        return None
    if total:
        idx = np.repeat(start - offsets[:-1], length) + np.arange(total, dtype=np.int64)
        data = buf[idx]
    else:
        data = np.zeros(0, dtype=np.uint8)
    nulls = int(n - valid.sum())
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    arr = pa.Array.from_buffers(
        pa.string(),
        n,
        [bitmap, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)],
        null_count=nulls,
    )
    try:
        arr.validate(full=True)  # UTF-8 checked (no compute kernel: no pandas import)
    except pa.ArrowInvalid:
        return None  # not UTF-8: the exact decoder says where
    return arr


def collect_fast(
    messages: Sequence[bytes],
    relation: Relation,
    key_columns: Sequence[str],
    *,
    applied_lsn: int | None,
) -> ChangeBatch | None:
    """The batch of ``relation`` in ``messages``, or None when the exact decoder must read
    them (see the module docstring)."""
    names = relation.columns
    if not messages or any(k not in names for k in key_columns):
        return None
    arr = pa.array(messages, pa.binary())
    n = len(arr)
    offs = np.frombuffer(arr.buffers()[1], dtype=np.int32)[: n + 1].astype(np.int64)
    data_buf = arr.buffers()[2]
    if data_buf is None:
        return None
    buf = np.frombuffer(data_buf, dtype=np.uint8)
    starts, ends = offs[:-1], offs[1:]
    if np.any(ends <= starts):
        return None
    kind = buf[starts]
    if not _same_relation(messages, kind, relation):
        return None
    is_b, is_c = kind == _B, kind == _C
    if int(is_b.sum()) != int(is_c.sum()) or np.any(kind == _T):
        return None  # a truncate, or not whole transactions: the exact decoder
    txn = np.cumsum(is_b) - 1
    end_lsn = _be(buf, starts[is_c] + 10, 8)
    begin_us = _be(buf, starts[is_b] + 9, 8) + _PG_EPOCH_US
    is_chg = (kind == _I) | (kind == _U) | (kind == _D)
    mine = is_chg & (_be(buf, starts + 1, 4) == relation.oid)
    sel = np.nonzero(mine)[0]
    t = txn[sel]
    if np.any(t < 0):
        return None
    lsn = end_lsn[t]
    batch = ChangeBatch(relation, tuple(names.index(k) for k in key_columns))
    if applied_lsn is not None:
        done = lsn <= applied_lsn
        batch.skip("already_applied", int(done.sum()))
        sel, t, lsn = sel[~done], t[~done], lsn[~done]
    k = kind[sel]
    tag = buf[starts[sel] + 5]
    if np.any((k == _U) & (tag != _N)) or np.any((k == _I) & (tag != _N)):
        return None  # a key change or a FULL-identity update: split by the exact decoder
    if np.any((k == _D) & (tag != _K) & (tag != _O)):
        return None
    arrays = _columns(buf, starts[sel] + 6, ends[sel], len(names))
    if arrays is None:
        return None
    m = len(sel)
    batch.arrays = arrays
    batch.seq = np.arange(m, dtype=np.int64)  # type: ignore[assignment]
    batch.lsn = lsn
    batch.commit_us = begin_us[t]
    batch.op = np.where(k == _I, "c", np.where(k == _U, "u", "d"))  # type: ignore[assignment]
    batch.decoded = m
    batch.transactions = len(np.unique(t))
    batch.end_lsn = int(lsn[-1]) if m else None
    if len(end_lsn) and (applied_lsn is None or int(end_lsn[-1]) > applied_lsn):
        batch.read_lsn = int(end_lsn[-1])
    return batch


def _same_relation(
    messages: Sequence[bytes], kind: npt.NDArray[np.uint8], relation: Relation
) -> bool:
    """Every Relation message of the table describes the columns the batch is read with."""
    for i in np.nonzero(kind == _R)[0]:
        rel = decode(messages[int(i)])
        if (
            isinstance(rel, Relation)
            and rel.oid == relation.oid
            and rel.columns != relation.columns
        ):
            return False
    return True


def _columns(
    buf: npt.NDArray[np.uint8], pos: Ints, ends: Ints, ncols: int
) -> list[pa.Array] | None:
    """Each column of the tuples starting at ``pos`` (which must end exactly at ``ends``)."""
    if np.any(_be(buf, pos, 2) != ncols):
        return None
    pos = pos + 2
    arrays: list[pa.Array] = []
    for _ in range(ncols):
        kk = buf[np.minimum(pos, len(buf) - 1)]
        is_t = (kk == 116) | (kk == 98)  # 't', 'b'
        if not np.all(is_t | (kk == 110)):  # 'u' (unchanged TOAST) or unknown: exact path
            return None
        length = np.where(is_t, _be(buf, pos + 1, 4), 0)
        if np.any(length < 0):
            return None
        col = _gather(buf, pos + 5, length, is_t)
        if col is None:
            return None
        arrays.append(col)
        pos = pos + 1 + np.where(is_t, 4 + length, 0)
        if np.any(pos > ends):
            return None
    if np.any(pos != ends):
        return None
    return arrays
