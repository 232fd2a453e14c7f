"""One micro-batch of a MariaDB/MySQL binary log (row format) → the change events of ONE
table, as text columns ready for Arrow (the same :class:`ChangeBatch` ``postgres_cdc``
stages), read with the ``mysql-replication`` library (the replication protocol and the row
image decoding are its work; the transaction boundaries, positions and text forms are ours).

Positions: a binlog coordinate ``(file, pos)`` is stored as one integer, the file's number
(``binlog.000042`` → 42) shifted left by 32 bits plus the byte position — ordered like the
log, so "end position ≤ the table's" means "already applied". A transaction's position is
the end of its last event (its ``XID``/``COMMIT``): reading resumes there.

- Transactions whose end position is at or below ``applied`` are skipped
  (``already_applied``).
- An update that changes the primary key becomes a delete of the old key and an insert of
  the new one (a merge on the key applies it).
- ``TRUNCATE`` of the table ends the batch after it: the events before it in the batch are
  superseded (``truncated``) and the source deletes every row the table holds.
- A table map whose columns differ from the batch's (DDL) ends the batch before that
  transaction: the next batch reads with the new columns (the schema contract sees the drift).
- A zero date (``0000-00-00``; the library answers None) keeps its text: the conversion
  rejects the row with the column and the value, never a NULL in its place.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from lockgate.sources._binlog_gtid import Gtids
from lockgate.sources._binlog_rows import RowDecoder, decoder_for, payload
from lockgate.sources._cdc_batch import ChangeBatch
from lockgate.sources._pgoutput import Relation

_SHIFT = 32
_ZERO_DATE = "0000-00-00"
_ZERO_DATETIME = "0000-00-00 00:00:00"
Text = str | None


def encode(file: str, pos: int) -> int:
    """``('binlog.000003', 2431)`` → one ordered integer.

    >>> encode("binlog.000003", 2431) == (3 << 32) | 2431
    True
    >>> decode(encode("mariadb-bin.000012", 4))
    (12, 4)
    """
    return (file_number(file) << _SHIFT) | pos


def decode(position: int) -> tuple[int, int]:
    """The (file number, byte position) of an encoded position."""
    return position >> _SHIFT, position & ((1 << _SHIFT) - 1)


def file_number(name: str) -> int:
    """The sequence number of a binlog file name (``binlog.000042`` → 42)."""
    suffix = name.rsplit(".", 1)[-1]
    if not suffix.isdigit():
        raise ValueError(f"not a binlog file name: {name!r}")
    return int(suffix)


# ---- values → the text the snapshot reads (so both convert the same way) -----------------


def _generic(v: Any) -> Text:
    if v is None:
        return None
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, set):
        return ",".join(sorted(v))
    return str(v)


def _decimal(v: Any) -> Text:
    return None if v is None else format(Decimal(v), "f")


def _double(v: Any) -> Text:
    return None if v is None else repr(float(v))


def _float(v: Any) -> Text:
    """A FLOAT (4 bytes) as MySQL prints it: the shortest text of the single-precision
    value (1.1, not 1.100000023841858)."""
    if v is None:
        return None
    import numpy as np

    return str(np.float32(v))


def _hex(v: Any) -> Text:
    if v is None:
        return None
    return (v if isinstance(v, bytes) else str(v).encode()).hex().upper()


def _time(v: Any) -> Text:
    if v is None:
        return None
    if not isinstance(v, dt.timedelta):
        return str(v)
    us = (v.days * 86400 + v.seconds) * 1_000_000 + v.microseconds
    sign = "-" if us < 0 else ""
    us = abs(us)
    secs, frac = divmod(us, 1_000_000)
    text = f"{sign}{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"
    return text + (f".{frac:06d}" if frac else "")


def _bits(v: Any) -> Text:
    return None if v is None else str(int(v, 2) if isinstance(v, str) else int(v))


def _json(v: Any) -> Text:
    if v is None or isinstance(v, str):
        return v

    def plain(x: Any) -> Any:
        if isinstance(x, bytes):
            return x.decode("utf-8", "replace")
        if isinstance(x, dict):
            return {plain(k): plain(y) for k, y in x.items()}
        if isinstance(x, list):
            return [plain(y) for y in x]
        return x

    return json.dumps(plain(v), separators=(", ", ": "))


def _unsigned(bits: int) -> Callable[[Any], Text]:
    """An unsigned integer (a library without the signedness metadata answers negative)."""
    wrap = 1 << bits

    def conv(v: Any) -> Text:
        if v is None:
            return None
        n = int(v)
        return str(n + wrap if n < 0 else n)

    return conv


_UNSIGNED_BITS = {"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32}


def converter(source_type: str) -> Callable[[Any], Text]:
    """Python value from the library → the column's text as the snapshot reads it, from
    the column's ``SHOW COLUMNS`` type."""
    t = source_type.lower()
    base = re.split(r"[ (]", t, maxsplit=1)[0]
    if "unsigned" in t and (base in _UNSIGNED_BITS or base == "bigint"):
        return _unsigned(_UNSIGNED_BITS.get(base, 64))
    if base in ("decimal", "numeric"):
        return _decimal
    if base == "float":
        return _float
    if base in ("double", "real"):
        return _double
    if base in ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"):
        return _hex
    if base == "time":
        return _time
    if base == "bit":
        return _bits
    if base == "json":
        return _json
    if base == "set":
        order = {s: i for i, s in enumerate(re.findall(r"'((?:[^']|'')*)'", source_type))}
        return lambda v: None if v is None else ",".join(sorted(v, key=lambda s: order.get(s, 0)))
    return _generic


def _zero_text(source_type: str) -> str | None:
    """The text of MySQL's zero value of a temporal column (the library answers None)."""
    base = re.split(r"[ (]", source_type.lower(), maxsplit=1)[0]
    if base == "date":
        return _ZERO_DATE
    if base in ("datetime", "timestamp"):
        return _ZERO_DATETIME
    return None


def _timestamp_text(conv: Callable[[Any], Text]) -> Callable[[Any], Text]:
    """A TIMESTAMP: the library's naive UTC datetime; the epoch itself is MySQL's zero
    timestamp (TIMESTAMP cannot hold 1970-01-01 00:00:00 UTC)."""
    epoch = dt.datetime(1970, 1, 1)

    def ts(v: Any) -> Text:
        if v is None:
            return None
        if isinstance(v, dt.datetime) and v == epoch:
            return _ZERO_DATETIME + "+00"
        text = v.isoformat(sep=" ") if isinstance(v, dt.datetime) else conv(v)
        return None if text is None else text + "+00"

    return ts


def _temporal(v: Any) -> Text:
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    return _generic(v)


@dataclass(frozen=True)
class TablePlan:
    """The captured table as the batch reads it: schema, name, columns and their types."""

    schema: str
    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]  # SHOW COLUMNS types
    keys: tuple[str, ...]

    def converters(self) -> list[Callable[[Any], Text]]:
        out: list[Callable[[Any], Text]] = []
        for t in self.types:
            base = re.split(r"[ (]", t.lower(), maxsplit=1)[0]
            if base == "timestamp":
                out.append(_timestamp_text(_temporal))
            elif base in ("date", "datetime"):
                out.append(_temporal)
            else:
                out.append(converter(t))
        return out


def column_type(col: Any) -> str:
    """A table-map column (the library's) in ``SHOW COLUMNS`` spelling: the types of a
    table the log describes differently from the catalog (DDL since)."""
    from pymysqlreplication.constants import FIELD_TYPE as F

    t = col.type
    ints = {F.TINY: "tinyint", F.SHORT: "smallint", F.INT24: "mediumint", F.LONG: "int"}
    ints[F.LONGLONG] = "bigint"
    binary = (getattr(col, "character_set_name", None) or "").lower() == "binary"
    if t in ints:
        return ints[t] + (" unsigned" if col.unsigned else "")
    if t in (F.NEWDECIMAL, F.DECIMAL):
        return f"decimal({getattr(col, 'precision', 65)},{getattr(col, 'decimals', 30)})"
    if t in (F.ENUM, F.SET):
        values = (col.enum_values if t == F.ENUM else col.set_values) or []
        quoted = ",".join("'" + str(v).replace("'", "''") + "'" for v in values)
        return ("enum" if t == F.ENUM else "set") + f"({quoted})"
    if t in (F.VARCHAR, F.VAR_STRING, F.STRING):
        return "varbinary" if binary else "varchar"
    if t == F.BIT:
        return f"bit({col.bits})"
    names = {
        F.FLOAT: "float", F.DOUBLE: "double", F.TIMESTAMP: "timestamp",
        F.TIMESTAMP2: "timestamp", F.DATETIME: "datetime", F.DATETIME2: "datetime",
        F.DATE: "date", F.NEWDATE: "date", F.TIME: "time", F.TIME2: "time", F.YEAR: "year",
        F.JSON: "json", F.BLOB: "blob" if binary else "text", F.GEOMETRY: "geometry",
    }  # fmt: skip
    return names.get(t, "text")


# ---- DDL statements --------------------------------------------------------------------------

_WORD = re.compile(r"^\s*(?:/\*.*?\*/\s*)*(\w+)", re.S)


def ddl_kind(query: str, default_db: str | None, plan: TablePlan) -> str | None:
    """``truncate`` when ``query`` truncates the table, ``ddl`` when it may change, drop or
    rename it (a false alarm only ends a batch early), else None."""
    m = _WORD.match(query)
    verb = m.group(1).upper() if m else ""
    if verb not in ("TRUNCATE", "ALTER", "DROP", "RENAME", "CREATE"):
        return None
    name = re.escape(plan.name)
    db = re.escape(plan.schema)
    qualified = re.compile(rf"`?{db}`?\s*\.\s*`?{name}`?(?![\w$])", re.I)
    bare = re.compile(rf"(?<![\w$.`])`?{name}`?(?![\w$.])", re.I)
    mentioned = bool(qualified.search(query)) or (
        (default_db or "").lower() == plan.schema.lower() and bool(bare.search(query))
    )
    if not mentioned:
        return None
    return "truncate" if verb == "TRUNCATE" else "ddl"


# ---- the batch -------------------------------------------------------------------------------


@dataclass
class _Txn:
    start: int  # seq of its first event in the batch
    commit_us: int
    changes: int = 0
    truncate: int | None = None


@dataclass
class BinlogBatch:
    """A :class:`ChangeBatch` and where the read stopped."""

    batch: ChangeBatch
    #: end position of the last whole transaction read (any table), or None
    read_to: int | None = None
    #: stopped before the end of the log (batch size, truncate, DDL)
    more: bool = False
    #: the table's columns changed in the log (the batch stopped before it)
    new_columns: tuple[str, ...] | None = None
    #: their types, as the table map describes them (SHOW COLUMNS spelling)
    new_types: tuple[str, ...] = ()
    events: int = 0
    cols: list[list[Text]] = field(default_factory=list)
    #: the GTID state at ``read_to`` (the last GTID of every domain read, or the start's)
    gtids: Gtids = field(default_factory=Gtids)


class BatchBuilder:
    """Feeds on binlog events (the library's objects) in log order and builds the batch."""

    def __init__(
        self,
        plan: TablePlan,
        *,
        applied: int | None,
        max_changes: int,
        gtids: Gtids | None = None,
    ) -> None:
        self.plan = plan
        self.applied = applied
        #: the GTIDs the table holds: a transaction at or before them is already applied
        self.applied_gtids = gtids.copy() if gtids else Gtids()
        self.gtid: str | None = None  # the GTID of the transaction in progress
        self.max_changes = max_changes
        names = plan.columns
        relation = Relation(
            0,
            plan.schema,
            plan.name,
            "d",
            names,
            tuple(c in plan.keys for c in names),
            (),
        )
        self.key_idx = tuple(names.index(k) for k in plan.keys)
        #: a row's key (compared, never stored)
        self.key_of = operator.itemgetter(*self.key_idx)
        self.out = BinlogBatch(ChangeBatch(relation, self.key_idx))
        self.out.cols = [[] for _ in names]
        self.out.gtids = self.applied_gtids.copy()
        self.conv = plan.converters()
        self.zero = [_zero_text(t) for t in plan.types]
        self.txn: _Txn | None = None
        #: inside a transaction: a statement (SAVEPOINT, …) does not end it
        self.in_group = False
        self.done = False

    # -- events --------------------------------------------------------------------------

    def begin(self, timestamp: int, *, group: bool | None = None, gtid: str | None = None) -> None:
        """An event group starts (``group``: it is a transaction whose statements run to
        its COMMIT/XID, not one standalone statement; None: unknown yet; ``gtid``: its
        GTID event's)."""
        if gtid is not None:
            self.gtid = gtid
        if self.txn is None:
            self.txn = _Txn(len(self.out.batch.seq), int(timestamp) * 1_000_000)
        if group is not None:
            self.in_group = group

    def rows(self, kind: str, rows: Iterable[dict[str, Any]], timestamp: int) -> None:
        """A Write/Update/DeleteRows event of the table (``kind``: c, u, d), decoded by the
        library (one dict per row image)."""
        images: list[list[Text]] = []
        for row in rows:
            if kind == "u":
                images.append(self._texts(row["before_values"], row.get("before_none_sources")))
                images.append(self._texts(row["after_values"], row.get("after_none_sources")))
            else:
                images.append(self._texts(row["values"], row.get("none_sources")))
        self.row_texts(kind, images, timestamp)

    def row_texts(self, kind: str, images: list[list[Text]], timestamp: int) -> None:
        """The row images of a rows event as texts (updates: before, after, …)."""
        self.begin(timestamp)
        assert self.txn is not None
        if kind == "c":
            self.txn.changes += len(images)
            self._extend(kind, images)
            return
        if kind != "u":
            for values in images:
                self.txn.changes += 1
                self._append(kind, self._key_only(values))
            return
        afters = images[1::2]
        key = self.key_of
        if len(afters) * 2 == len(images) and all(
            map(operator.eq, map(key, images[::2]), map(key, afters))
        ):
            self.txn.changes += len(afters)
            self._extend("u", afters)  # no key changed (the common case): all at once
            return
        for i in range(0, len(images), 2):
            self.txn.changes += 1
            before, after = images[i], images[i + 1]
            if self._key(before) != self._key(after):
                self._append("d", self._key_only(before))
                self._append("c", after)
            else:
                self._append("u", after)

    def columns_seen(self, names: Sequence[str], types: Sequence[str]) -> bool:
        """A table map of the table; False (batch over) when its columns are not the
        batch's: the transaction in progress is left for the next batch."""
        if tuple(names) == self.plan.columns:
            return True
        self.out.new_types = tuple(types)
        if self.txn is not None:
            self._rollback(self.txn.start)
            self.txn = None
        self.gtid = None
        self.out.new_columns = tuple(names)
        self.out.more = True
        self.done = True
        return False

    def truncate(self, end: int, timestamp: int) -> None:
        self.begin(timestamp)
        assert self.txn is not None
        self.txn.changes += 1
        self.txn.truncate = len(self.out.batch.seq)
        self.commit(end)

    def ddl(self, end: int) -> None:
        """DDL of the table: the batch ends after it (the next one reads the new columns)."""
        self.txn = None
        gtid, self.gtid = self.gtid, None
        self._advance(end, gtid)
        self.out.more = True
        self.done = True

    def commit(self, end: int) -> None:
        """The transaction in progress ended at position ``end``."""
        txn, self.txn = self.txn, None
        self.in_group = False
        b = self.out.batch
        gtid, self.gtid = self.gtid, None
        if gtid is not None and self.applied_gtids.applied(gtid):
            end = 0  # already applied (by its GTID: read on another server, say)
        if txn is None:
            self._advance(end, gtid)
            return
        n = len(b.seq) - txn.start
        if end == 0 or (self.applied is not None and end <= self.applied):
            b.skip("already_applied", n + (1 if txn.truncate is not None else 0))
            self._rollback(txn.start)
            return
        self._advance(end, gtid)
        if txn.changes == 0:
            return
        b.transactions += 1
        b.decoded += txn.changes
        b.end_lsn = end
        b.lsn.extend([end] * n)
        b.commit_us.extend([txn.commit_us] * n)
        if txn.truncate is not None:
            b.truncate_seq = txn.truncate
            b.skip("truncated", txn.truncate)
            self.out.more = True
            self.done = True
        elif b.decoded >= self.max_changes:
            self.out.more = True
            self.done = True

    def finish(self) -> BinlogBatch:
        """The batch (an unfinished transaction at the end of the log is left out)."""
        if self.txn is not None:
            self._rollback(self.txn.start)
            self.txn = None
        import pyarrow as pa

        self.out.batch.arrays = [pa.array(col, pa.string()) for col in self.out.cols]
        return self.out

    # -- helpers -------------------------------------------------------------------------

    def _advance(self, end: int, gtid: str | None = None) -> None:
        if end and (self.applied is None or end > self.applied):
            self.out.read_to = end if self.out.read_to is None else max(self.out.read_to, end)
            if gtid is not None:
                self.out.gtids.add(gtid)

    def _texts(self, values: dict[str, Any], none_sources: dict[str, str] | None) -> list[Text]:
        if len(values) != len(self.plan.columns):
            raise ValueError(
                f"a row of {self.plan.schema}.{self.plan.name} has {len(values)} columns, "
                f"the table {len(self.plan.columns)}"
            )
        out: list[Text] = []
        for i, (name, v) in enumerate(values.items()):
            if v is None and none_sources and name in none_sources:
                reason = none_sources[name]
                if reason == "empty set":
                    out.append("")
                    continue
                zero = self.zero[i]
                if "range" in reason and zero is not None:  # a zero (or invalid) date
                    stamp = self.plan.types[i].lower().startswith("timestamp")
                    out.append(zero + "+00" if stamp else zero)
                    continue
            out.append(self.conv[i](v))
        return out

    def _key(self, values: list[Text]) -> tuple[Text, ...]:
        return tuple(values[i] for i in self.key_idx)

    def _key_only(self, values: list[Text]) -> list[Text]:
        out: list[Text] = [None] * len(values)
        for i in self.key_idx:
            out[i] = values[i]
        return out

    def _append(self, op: str, values: list[Text]) -> None:
        b = self.out.batch
        b.seq.append(len(b.seq))
        b.op.append(op)
        for col, v in zip(self.out.cols, values, strict=True):
            col.append(v)

    def _extend(self, op: str, images: list[list[Text]]) -> None:
        if not images:
            return
        b = self.out.batch
        start = len(b.seq)
        b.seq.extend(range(start, start + len(images)))
        b.op.extend([op] * len(images))
        for col, values in zip(self.out.cols, zip(*images, strict=True), strict=True):
            col.extend(values)

    def _rollback(self, start: int) -> None:
        b = self.out.batch
        del b.seq[start:]
        del b.op[start:]
        for col in self.out.cols:
            del col[start:]


def read(
    settings: dict[str, Any],
    plan: TablePlan,
    *,
    log_file: str | None,
    log_pos: int | None,
    applied: int | None,
    max_changes: int,
    server_id: int,
    fast: bool = True,
    gtids: Gtids | None = None,
    by_gtid: bool = False,
    mariadb: bool = True,
) -> BinlogBatch:
    """Read the binlog from ``(log_file, log_pos)`` to its current end (or until the batch
    is full) and build the table's batch of whole transactions. Row images are decoded by
    :mod:`lockgate.sources._binlog_rows` where it knows every column type (``fast``), else
    by the library.

    ``gtids``: the GTIDs the table holds (transactions at or before them are skipped as
    ``already_applied``); ``by_gtid``: resume right after them instead of at
    ``(log_file, log_pos)`` (another server, whose files and positions differ)."""
    from pymysqlreplication import BinLogStreamReader
    from pymysqlreplication.event import GtidEvent, MariadbGtidEvent, QueryEvent, XidEvent
    from pymysqlreplication.row_event import (
        DeleteRowsEvent,
        TableMapEvent,
        UpdateRowsEvent,
        WriteRowsEvent,
    )

    kinds = {WriteRowsEvent: "c", UpdateRowsEvent: "u", DeleteRowsEvent: "d"}
    decoders: dict[int, RowDecoder | None] = {}  # table id → our decoder (None: library's)
    builder = BatchBuilder(plan, applied=applied, max_changes=max_changes, gtids=gtids)
    where: dict[str, Any] = {"log_file": log_file, "log_pos": log_pos}
    if by_gtid:
        if not gtids:
            raise ValueError("resuming by GTID needs the GTIDs the table holds")
        where = {"auto_position": gtids.text(), "is_mariadb": mariadb}
    stream = BinLogStreamReader(
        dict(settings),
        pymysql_wrapper=connect,
        server_id=server_id,
        blocking=False,
        resume_stream=True,
        **where,
        only_events=[GtidEvent, MariadbGtidEvent, QueryEvent, XidEvent, TableMapEvent, *kinds],
        only_schemas=[plan.schema],
        only_tables=[plan.name],
        enable_logging=False,
    )
    try:
        for ev in stream:
            builder.out.events += 1
            end = encode(stream.log_file, ev.packet.log_pos)
            kind = kinds.get(type(ev))
            if kind is not None:
                decoder = decoders.get(ev.table_id) if fast else None
                data = payload(ev) if decoder is not None else None
                if decoder is not None and data is not None:
                    images = decoder.rows(data, kind == "u", kind == "d")
                    builder.row_texts(kind, images, ev.timestamp)
                else:
                    builder.rows(kind, ev.rows, ev.timestamp)
            elif isinstance(ev, XidEvent):
                builder.commit(end)
            elif isinstance(ev, MariadbGtidEvent):  # flag 1: a standalone statement (DDL)
                group = not int(getattr(ev, "flags", 0)) & 1
                builder.begin(ev.timestamp, group=group, gtid=ev.gtid)
            elif isinstance(ev, GtidEvent):  # MySQL: a transaction says BEGIN next
                builder.begin(ev.timestamp, group=False, gtid=ev.gtid)
            elif isinstance(ev, TableMapEvent):
                if ev.table_id not in decoders:
                    decoders[ev.table_id] = decoder_for(ev.columns, plan.keys)
                builder.columns_seen(
                    [c.name for c in ev.columns], [column_type(c) for c in ev.columns]
                )
            elif isinstance(ev, QueryEvent):
                _query(builder, ev, end)
            if builder.done:
                break
    finally:
        stream.close()
    return builder.finish()


_PREFERRED_TLS: list[Any] = []  # pymysql's context of "TLS if the server has it", made once


def connect(**settings: Any) -> Any:
    """``pymysql.connect``, except that the TLS context of pymysql's default ("preferred":
    encrypt when the server offers TLS, verify nothing) is made once per process: pymysql
    builds one per connection, loading the system's CA store it then never uses (~50 ms of
    CPU each, three connections per batch). Explicit TLS settings are left to pymysql."""
    return _connection_class()(**settings)


@functools.cache
def _connection_class() -> Any:
    import pymysql.connections

    class Connection(pymysql.connections.Connection):
        def _create_ssl_ctx(self, sslp: Any) -> Any:
            if sslp != {}:
                return super()._create_ssl_ctx(sslp)
            if not _PREFERRED_TLS:
                _PREFERRED_TLS.append(super()._create_ssl_ctx(sslp))
            return _PREFERRED_TLS[0]

    return Connection


def _query(builder: BatchBuilder, ev: Any, end: int) -> None:
    query = ev.query if isinstance(ev.query, str) else bytes(ev.query).decode("utf-8", "replace")
    word = query.strip().upper()
    if word == "BEGIN":
        builder.begin(ev.timestamp, group=True)
        return
    if word in ("COMMIT", "ROLLBACK") or word.startswith("XA COMMIT"):
        builder.commit(end)
        return
    if builder.in_group:  # SAVEPOINT, ROLLBACK TO …: inside the transaction, not its end
        return
    schema = ev.schema if isinstance(ev.schema, str) else bytes(ev.schema).decode()
    kind = ddl_kind(query, schema, builder.plan)
    if kind == "truncate":
        builder.truncate(end, ev.timestamp)
    elif kind == "ddl":
        builder.ddl(end)
    else:  # a statement of its own (DDL of another table): its end is a position too
        builder.commit(end)
