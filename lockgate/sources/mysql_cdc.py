"""``type: mysql_cdc`` — change data capture of one MariaDB/MySQL table from the binary log
(row format), exactly once.

::

    source: {type: mysql_cdc, connection: shop_db, table: shop.orders}
    write: {mode: merge, keys: [id]}        # the primary key

The server needs ``log_bin``, ``binlog_format=ROW``, ``binlog_row_image=FULL`` and
``binlog_row_metadata=FULL`` (column names, signedness, character sets and enum values in the
log: MariaDB ≥ 10.5, MySQL ≥ 8.0.14); each is checked with the fix in the message.

The first run copies the table in a consistent snapshot whose binlog position is known
without a global lock on MariaDB (``START TRANSACTION WITH CONSISTENT SNAPSHOT`` then
``SHOW STATUS LIKE 'binlog_snapshot_%'``; on MySQL, which lacks those, a brief
``FLUSH TABLES WITH READ LOCK`` around the start of the transaction, as Debezium does). Later
runs read the binlog from the table's position (:mod:`lockgate.sources._binlog`, with the
``mysql-replication`` library) in micro-batches of whole transactions, reduced to the last
change per key, staged like ``postgres_cdc``'s (``_lg_lsn`` = the binlog position, ``_lg_op``,
``_lg_commit_ts``; deletes removed or soft).

Exactly once: the position (file number << 32 | byte position) is the application
transaction ``cdc:<name>`` of the same Delta commit as the data; the server keeps no state
of ours, so a restart reads from exactly what the table holds (transactions at or below it
are skipped as ``already_applied``). A table without a primary key is refused before
anything is read.

Failover: a position means something only on the server that wrote it, so the same commit
also records the GTID state after the last transaction read (MariaDB ``domain-server-seq``
per domain; MySQL ``uuid:1-n``, untested here) and the server's identity (``server_id``,
``server_uuid``, ``log_bin_basename``), as application transactions ``cdc:<name>:gtid…``
and ``cdc:<name>:server`` (:mod:`lockgate.sources._binlog_gtid`). When the source now
points at another server (a promoted replica with ``log_slave_updates``, a renamed binlog)
or the position's file is gone, the run resumes right after those GTIDs instead
(``@slave_connect_state``), skips any transaction at or before them (``already_applied``),
and from then on records that server's positions.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field
from sqlglot import exp

from lockgate.errors import ConfigError, InputError, Problem, TerminalError
from lockgate.sources._binlog import (
    BinlogBatch,
    TablePlan,
    decode,
    encode,
    file_number,
    read,
)
from lockgate.sources._binlog_gtid import Gtids, pack, unpack
from lockgate.sources._cdc_stage import (
    LSN,
    add_flag,
    change_position,
    crashpoint,
    meta_columns,
    meta_select,
    stage_changes,
    with_changes,
)
from lockgate.sources._db import CAST, NATIVE, Column, convert, load_stream, text_rows_reader
from lockgate.sources.base import (
    Position,
    ResumeToken,
    Source,
    SourceConfig,
    StagedSource,
    create_rejects_table,
    register_source,
    staged_table,
)
from lockgate.sql import ident, table_ref

if TYPE_CHECKING:
    from lockgate.engine.session import Session
    from lockgate.sources._cdc_batch import ChangeBatch

log = logging.getLogger(__name__)

_NAME = r"^[a-z_][a-z0-9_]{0,62}$"
_SESSION = "SET time_zone = '+00:00'"


class BinlogGone(TerminalError):
    """The binlog file holding the table's position was purged: the changes since then
    cannot be read any more."""

    exit_code = 2


class MySqlCdcSpec(SourceConfig):
    """Change data capture of one MariaDB/MySQL table from the binary log (row format)."""

    type: Literal["mysql_cdc"] = "mysql_cdc"
    connection: str = Field(description="name of a connection in lockgate.yaml (connections:)")
    table: str = Field(description="the table, as database.name")
    name: str | None = Field(
        default=None,
        pattern=_NAME,
        description="name of the position in the table's commits, cdc:<name> "
        "(default: lg_<dataset>)",
    )
    deletes: Literal["delete", "soft"] = Field(
        default="delete",
        description="a deleted source row is removed ('delete') or kept with _lg_deleted = "
        "true and its last values ('soft')",
    )
    max_changes: int = Field(
        default=200_000,
        ge=1,
        description="changes per micro-batch (whole transactions: a batch may be larger)",
    )
    max_latency: str = Field(
        default="1s",
        description="follow mode (lockgate run --follow): how long to wait for new changes "
        "before the next batch",
    )
    server_id: int | None = Field(
        default=None,
        ge=1,
        lt=2**32,
        description="replication client id (unique among the server's replicas; default: "
        "derived from the position name)",
    )
    heartbeat_bytes: int = Field(
        default=16 << 20,
        ge=0,
        description="when the log holds no change of the table, move the table's position "
        "past it (an empty commit) once it is this many bytes behind, or in a newer file, "
        "so later runs do not read it again",
    )

    def position_name(self, dataset: str) -> str:
        return self.name or f"lg_{dataset.lower()}"[:63]

    def client_id(self, dataset: str) -> int:
        if self.server_id is not None:
            return self.server_id
        return 0x4C000000 + zlib.crc32(self.position_name(dataset).encode()) % 0x00FFFFFF


@register_source
class MySqlCdcSource(Source):
    """Snapshot, then micro-batches of the binlog's row changes, merged by key, exactly once."""

    TYPE: ClassVar[str] = "mysql_cdc"
    CONFIG: ClassVar[type[SourceConfig]] = MySqlCdcSpec
    SUPPORTS_REJECTS: ClassVar[bool] = True
    SUPPORTS_CDC: ClassVar[bool] = True

    @property
    def spec(self) -> MySqlCdcSpec:
        assert isinstance(self.config, MySqlCdcSpec)
        return self.config

    @property
    def app_id(self) -> str:
        return "cdc:" + self.spec.position_name(self.dataset)

    @classmethod
    def position_id(cls, request: Any) -> str | None:
        config = request.config
        assert isinstance(config, MySqlCdcSpec)
        return "cdc:" + config.position_name(request.dataset)

    def stage(self, session: Session, table: str, *, resume: ResumeToken = None) -> StagedSource:
        create_rejects_table(session.con, table)
        settings = self._settings()
        import pymysql

        try:
            with _connect(settings) as conn:
                plan = describe(conn, self.spec.table, self.request.keys, self.dataset)
                require_binlog(conn, self.dataset)
                server = identify(conn)
                if self.request.position is None:
                    return self._snapshot(conn, session, table, plan, server)
                files = _binlogs(conn)
            return self._changes(session, table, settings, plan, files, server)
        except pymysql.err.MySQLError as e:
            raise _translate(e, self.spec.table) from None

    def _settings(self) -> dict[str, Any]:
        from lockgate.sources.mysql import MySqlSource, url_settings

        s = url_settings(MySqlSource(self.request)._url())
        return {k: s[k] for k in ("host", "port", "user", "password")}

    def _position(self, value: int, gtids: Gtids, server: int | None) -> Position:
        """The position ``value`` with the GTID state at it and the identity of the server
        whose binlog ``value`` points into (all in the same commit)."""
        import dataclasses

        chunks = pack(gtids.text()) if gtids else []
        extra = [(self.app_id + ":gtid", len(chunks))]
        extra += [(f"{self.app_id}:gtid:{i}", c) for i, c in enumerate(chunks)]
        if server is not None:
            extra.append((self.app_id + ":server", server))
        position = change_position(self.app_id, value, self.spec.deletes)
        return dataclasses.replace(position, extra=tuple(extra))

    def _stored(self) -> tuple[Gtids, int | None]:
        """The GTID state and the server identity the table's position goes with."""
        txn = self.request.txn_version
        if txn is None:
            return Gtids(), None
        n = txn(self.app_id + ":gtid") or 0
        chunks = [txn(f"{self.app_id}:gtid:{i}") for i in range(n)]
        text = unpack([c for c in chunks if c is not None]) if None not in chunks else ""
        return Gtids.parse(text), txn(self.app_id + ":server")

    # -- changes -------------------------------------------------------------------------

    def _changes(
        self,
        session: Session,
        table: str,
        settings: dict[str, Any],
        plan: TablePlan,
        files: dict[int, tuple[str, int]],
        server: Server,
    ) -> StagedSource:
        position = self.request.position
        assert position is not None
        number, pos = decode(position)
        gtids, stored_server = self._stored()
        elsewhere = stored_server is not None and stored_server != server.identity
        by_gtid = bool(gtids) and (elsewhere or number not in files)
        if by_gtid:
            log.info(
                "cdc %s: the position is not this server's binlog (%s): resuming after GTID %s",
                self.app_id,
                "another server" if elsewhere else f"file no. {number} absent",
                gtids.text(),
            )
        elif elsewhere:
            raise BinlogGone(
                f"dataset '{self.dataset}': the source is another server than the one the "
                "table's position was read from, and the table holds no GTID to resume from",
                hint=f"run `lockgate run --select {self.dataset} --full-refresh` (a new "
                "snapshot rebuilds the table)",
            )
        elif number not in files:
            raise BinlogGone(
                f"dataset '{self.dataset}': the binlog file no. {number} holding the table's "
                "position was purged (expire_logs_days / binlog_expire_logs_seconds): the "
                "changes since then cannot be read",
                hint=f"run `lockgate run --select {self.dataset} --full-refresh` (a new "
                "snapshot rebuilds the table), and run more often than the binlog expires",
            )

        def readwith_changes(plan: TablePlan) -> BinlogBatch:
            import pymysql

            try:
                return _read(plan)
            except pymysql.err.OperationalError as e:
                if not by_gtid or not e.args or e.args[0] != 1236:
                    raise
                raise BinlogGone(
                    f"dataset '{self.dataset}': the binlog no longer holds the changes after "
                    f"GTID {gtids.text()} (purged, or never written on this server): "
                    f"{e.args[1] if len(e.args) > 1 else e}",
                    hint=f"run `lockgate run --select {self.dataset} --full-refresh` (a new "
                    "snapshot rebuilds the table), and run more often than the binlog expires",
                ) from None

        def _read(plan: TablePlan) -> BinlogBatch:
            return read(
                settings,
                plan,
                log_file=None if by_gtid else files[number][0],
                log_pos=None if by_gtid else pos,
                applied=None if by_gtid else position,
                max_changes=self.spec.max_changes,
                server_id=self.spec.client_id(self.dataset),
                gtids=gtids,
                by_gtid=by_gtid,
                mariadb=server.mariadb,
            )

        got = readwith_changes(plan)
        if got.new_columns is not None and got.batch.end_lsn is None:
            # the log describes the table otherwise than the catalog does now (DDL since
            # these changes): read them with the log's columns
            plan = logged_plan(plan, got.new_columns, got.new_types, self.dataset)
            got = readwith_changes(plan)
        crashpoint(f"cdc {self.app_id}: decoded, not committed")
        batch = got.batch
        new, new_gtids = position, gtids
        if batch.end_lsn is not None:
            new = max(got.read_to or batch.end_lsn, batch.end_lsn)
        elif got.read_to is not None and (by_gtid or self._heartbeat(position, got.read_to)):
            new = got.read_to  # nothing of the table: move past the log read (heartbeat)
        if new != position:
            new_gtids = got.gtids  # the state at read_to (= new)
        # the position is this server's once it moved here; until then it is the old one's
        at = server.identity if new != position or not by_gtid else stored_server
        columns = _typed(batch, _columns(plan))
        staged = stage_changes(
            session,
            table,
            batch,
            columns,
            plan.keys,
            origin=f"mysql_cdc:{self.spec.table}",
            soft=self.spec.deletes == "soft",
            target=self.request.target,
        )
        if got.new_columns is not None:
            log.info("cdc %s: the table's columns changed; the next batch reads them", self.app_id)
        more = got.more and new != position  # a batch that moved nothing is not "more"
        return with_changes(staged, position=self._position(new, new_gtids, at), more=more)

    def _heartbeat(self, position: int, read_to: int) -> bool:
        old_file, old_pos = decode(position)
        new_file, new_pos = decode(read_to)
        return new_file != old_file or new_pos - old_pos >= self.spec.heartbeat_bytes

    # -- the snapshot --------------------------------------------------------------------

    def _snapshot(
        self, conn: Any, session: Session, table: str, plan: TablePlan, server: Server
    ) -> StagedSource:
        """The table copied in a consistent snapshot, at the binlog position of that
        snapshot (``_lg_op = 'r'``)."""
        import pymysql.cursors

        columns = _columns(plan)
        position = start_snapshot(conn)
        gtids = snapshot_gtids(conn, position) if server.mariadb else Gtids()
        raw = table + "__raw"
        select = exp.select(*[exp.alias_(_text(c), ident(c.name)) for c in columns]).from_(
            exp.table_(ident(plan.name), db=ident(plan.schema))
        )
        with conn.cursor(pymysql.cursors.SSCursor) as cur:
            cur.execute(select.sql("mysql"))
            names = [c.name for c in columns]
            fetched = [0]

            def fetch(n: int) -> Any:
                rows = cur.fetchmany(n)
                fetched[0] += 1
                if fetched[0] == 1:
                    crashpoint(f"cdc {self.app_id}: mid-snapshot")
                return rows

            load_stream(session, raw, text_rows_reader(names, fetch, 65_536))
        conn.rollback()  # the snapshot transaction read only
        session.execute(
            exp.Create(
                this=table_ref(raw + "2"),
                kind="TABLE",
                replace=True,
                expression=exp.select("*", *meta_select(position, "r", None)).from_(
                    table_ref(raw + "__raw")
                ),
            )
        )
        session.drop(raw + "__raw")
        rejected = convert(
            session,
            raw + "2",
            table,
            [*columns, *meta_columns()],
            f"mysql_cdc:{self.spec.table}",
            line=LSN,
        )
        if self.spec.deletes == "soft":
            add_flag(session, table, False)
        log.info("cdc %s: snapshot at %s staged", self.app_id, decode(position))
        return staged_table(
            session.con,
            table,
            rejected,
            position=self._position(position, gtids, server.identity),
        )

    # -- health --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The binlog as the source sees it: the current file and position, the files kept."""
        with _connect(self._settings()) as conn:
            files = _binlogs(conn)
            with conn.cursor() as cur:
                row = _log_status(cur)
        current = encode(row[0], int(row[1])) if row else None
        return {
            "slot": self.spec.position_name(self.dataset),
            "exists": bool(files),
            "confirmed_lsn": None,
            "retained_bytes": sum(size for _, size in files.values()),
            "wal_status": None,
            "current_position": current,
            "oldest_file": min(files) if files else None,
            "warn": False,
        }

    def reset(self) -> bool:
        """Nothing is kept at the server (the position lives in the table's commits)."""
        return False


# ---- catalog and server checks ---------------------------------------------------------------


def _connect(settings: dict[str, Any]) -> Any:
    from lockgate.sources._binlog import connect

    return connect(
        host=settings["host"],
        port=settings["port"],
        user=settings["user"],
        password=settings["password"],
        init_command=_SESSION,
        autocommit=True,
    )


@dataclass(frozen=True)
class Server:
    """Which server a connection reads: its identity (a hash of ``server_id``,
    ``server_uuid`` and ``log_bin_basename``: a position is valid only where these are the
    same) and whether it is MariaDB."""

    identity: int
    mariadb: bool


def identify(conn: Any) -> Server:
    import hashlib

    with conn.cursor() as cur:
        cur.execute(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN "
            "('server_id', 'server_uuid', 'log_bin_basename', 'version')"
        )
        found = {str(k).lower(): str(v) for k, v in cur.fetchall()}
    text = "|".join(found.get(k, "") for k in ("server_id", "server_uuid", "log_bin_basename"))
    identity = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=7).digest(), "big")
    return Server(identity, "mariadb" in found.get("version", "").lower())


def snapshot_gtids(conn: Any, position: int) -> Gtids:
    """MariaDB's GTID state at a binlog position (``BINLOG_GTID_POS``)."""
    number, pos = decode(position)
    name = _binlogs(conn).get(number)
    if name is None:
        return Gtids()
    with conn.cursor() as cur:
        cur.execute("SELECT BINLOG_GTID_POS(%s, %s)", (name[0], pos))
        row = cur.fetchone()
    return Gtids.parse(row[0] if row and row[0] else None)


def describe(conn: Any, table: str, keys: tuple[str, ...], dataset: str) -> TablePlan:
    """The table's columns (``SHOW COLUMNS``) and primary key; a ConfigError when its
    changes cannot be merged by key."""
    import pymysql

    db, _, name = table.rpartition(".")
    if not db:
        raise ConfigError(
            [
                Problem(
                    f"dataset '{dataset}': mysql_cdc needs the table as database.name, "
                    f"not {table!r}",
                    hint=f"table: <database>.{name}",
                )
            ]
        )
    target = exp.table_(ident(name), db=ident(db)).sql("mysql")
    with conn.cursor() as cur:
        try:
            cur.execute("SHOW COLUMNS FROM " + target)
        except pymysql.err.ProgrammingError as e:
            if e.args and e.args[0] in (1146, 1049):
                raise InputError(f"dataset '{dataset}': MySQL table {table} not found") from None
            raise
        cols = cur.fetchall()
        cur.execute("SHOW KEYS FROM " + target + " WHERE Key_name = 'PRIMARY'")
        pk = tuple(r[4] for r in sorted(cur.fetchall(), key=lambda r: int(r[3])))
    problem = key_problem(table, pk, keys)
    if problem:
        raise ConfigError([Problem(f"dataset '{dataset}': {problem[0]}", hint=problem[1])])
    return TablePlan(db, name, tuple(r[0] for r in cols), tuple(r[1] for r in cols), keys)


def logged_plan(
    catalog: TablePlan, names: tuple[str, ...], types: tuple[str, ...], dataset: str
) -> TablePlan:
    """The table as the log's table map describes it (types of the columns the catalog
    still has come from the catalog: it knows ``tinyint(1)`` and such)."""
    known = dict(zip(catalog.columns, catalog.types, strict=True))
    missing = [k for k in catalog.keys if k not in names]
    if missing:
        raise InputError(
            f"dataset '{dataset}': the binlog has changes of {catalog.schema}.{catalog.name} "
            f"without the key column(s) {', '.join(missing)} (the primary key changed)",
            hint=f"run `lockgate run --select {dataset} --full-refresh` (a new snapshot)",
        )
    merged = tuple(known.get(n, t) for n, t in zip(names, types, strict=True))
    return TablePlan(catalog.schema, catalog.name, names, merged, catalog.keys)


def key_problem(table: str, pk: tuple[str, ...], keys: tuple[str, ...]) -> tuple[str, str] | None:
    """Why changes of ``table`` cannot be merged on ``keys`` (None: they can).

    >>> key_problem("shop.t", (), ("id",))[0]
    'table shop.t has no primary key: its updates and deletes cannot be matched to rows'
    >>> key_problem("shop.t", ("id",), ("id",)) is None
    True
    """
    if not pk:
        return (
            f"table {table} has no primary key: its updates and deletes cannot be matched to rows",
            f"ALTER TABLE {table} ADD PRIMARY KEY (...) (and set write.keys to its columns)",
        )
    if not keys:
        return (
            "mysql_cdc needs write: {mode: merge, keys: [...]}",
            f"set write: {{mode: merge, keys: [{', '.join(pk)}]}}",
        )
    if set(keys) != set(pk):
        return (
            f"write.keys ({', '.join(keys)}) differ from the primary key of {table} "
            f"({', '.join(pk)})",
            f"set write.keys to [{', '.join(pk)}]",
        )
    return None


_REQUIRED = (
    ("log_bin", ("1", "ON"), "start the server with --log-bin"),
    ("binlog_format", ("ROW",), "SET GLOBAL binlog_format = 'ROW' (and in the server config)"),
    ("binlog_row_image", ("FULL",), "SET GLOBAL binlog_row_image = 'FULL'"),
    (
        "binlog_row_metadata",
        ("FULL",),
        "SET GLOBAL binlog_row_metadata = 'FULL' (MariaDB 10.5+, MySQL 8.0.14+)",
    ),
)


#: MariaDB's and MySQL's binlog compression (their events would be unreadable)
_COMPRESSION = ("log_bin_compress", "binlog_transaction_compression")


def require_binlog(conn: Any, dataset: str) -> None:
    """The server writes a binlog mysql_cdc can read (every missing setting, at once)."""
    problems = []
    with conn.cursor() as cur:
        for var, ok, fix in _REQUIRED:
            cur.execute("SHOW GLOBAL VARIABLES LIKE %s", (var,))
            row = cur.fetchone()
            value = str(row[1]).upper() if row else "<not supported>"
            if value not in ok:
                msg = f"dataset '{dataset}': mysql_cdc needs {var} = {ok[-1]}, not {value}"
                problems.append(Problem(msg, hint=fix))
        for var in _COMPRESSION:  # events the binlog library cannot read: never skip them
            cur.execute("SHOW GLOBAL VARIABLES LIKE %s", (var,))
            row = cur.fetchone()
            if row is not None and str(row[1]).upper() in ("1", "ON"):
                msg = f"dataset '{dataset}': mysql_cdc cannot read compressed binlog events"
                problems.append(Problem(f"{msg} ({var} = ON)", hint=f"SET GLOBAL {var} = OFF"))
    if problems:
        raise ConfigError(problems)


def _binlogs(conn: Any) -> dict[int, tuple[str, int]]:
    """The binlog files the server keeps: number → (name, size)."""
    with conn.cursor() as cur:
        cur.execute("SHOW BINARY LOGS")
        return {file_number(r[0]): (str(r[0]), int(r[1])) for r in cur.fetchall()}


def start_snapshot(conn: Any, *, use_status: bool = True) -> int:
    """Begin a consistent-snapshot transaction on ``conn``; the binlog position it sees.

    MariaDB tells the position of the snapshot without a lock (``binlog_snapshot_file`` /
    ``_position``); elsewhere (or ``use_status=False``) the position is read under a brief
    ``FLUSH TABLES WITH READ LOCK``."""
    with conn.cursor() as cur:
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        if use_status:
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            cur.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
            status = {str(k).lower(): v for k, v in cur.fetchall()}
            file = status.get("binlog_snapshot_file")
            pos = status.get("binlog_snapshot_position")
            if file and pos is not None:
                return encode(str(file), int(pos))
            cur.execute("ROLLBACK")
        cur.execute("FLUSH TABLES WITH READ LOCK")
        try:
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            row = _log_status(cur)
        finally:
            cur.execute("UNLOCK TABLES")
        if row is None:
            raise InputError("binary logging is off: start the server with --log-bin")
        return encode(str(row[0]), int(row[1]))


def _log_status(cur: Any) -> Any:
    """The current binlog file and position (MySQL 8.4 renamed SHOW MASTER STATUS)."""
    import pymysql

    try:
        cur.execute("SHOW BINARY LOG STATUS")
    except pymysql.err.ProgrammingError:
        cur.execute("SHOW MASTER STATUS")
    return cur.fetchone()


def _columns(plan: TablePlan) -> list[Column]:
    """The read plan when every value arrives as text: typed columns are cast from it."""
    from lockgate.sources.mysql import mysql_column

    out = []
    for name, typ in zip(plan.columns, plan.types, strict=True):
        c = mysql_column(name, typ)
        if c.how == NATIVE and c.type != "VARCHAR":
            c = Column(name, exp.cast(c.remote, "CHAR"), c.type, CAST, typ)
        out.append(c)
    return out


#: staging types a column of the decoder's texts is parsed into by Arrow (strictly: a
#: column with any value Arrow does not parse exactly stays text for ``convert``)
_ARROW_TYPES = {
    "TINYINT": "int8",
    "SMALLINT": "int16",
    "INTEGER": "int32",
    "BIGINT": "int64",
    "UTINYINT": "uint8",
    "USMALLINT": "uint16",
    "UINTEGER": "uint32",
    "UBIGINT": "uint64",
    "DATE": "date32",
    "TIMESTAMP": "timestamp[us]",
    "TIMESTAMPTZ": "timestamp[us, tz=UTC]",
}


def _arrow_type(c: Column) -> Any:
    """The Arrow type ``c``'s texts are parsed into, or None (left to ``convert``)."""
    import pyarrow as pa

    if c.how != CAST or c.source_type.lower().startswith("bit"):
        return None  # bit: b'…' texts; NATIVE, DECIMAL (p > 38), JSON, HEX: not parsed
    name = _ARROW_TYPES.get(c.type)
    if name is not None:
        if name.startswith("timestamp"):
            return pa.timestamp("us", tz="UTC" if c.type == "TIMESTAMPTZ" else None)
        return pa.type_for_alias(name)
    if c.type.startswith("DECIMAL("):
        p, s = (int(x) for x in c.type[8:-1].split(","))
        return pa.decimal128(p, s)
    return None


def _typed(batch: ChangeBatch, columns: list[Column]) -> list[Column]:
    """The batch's text columns Arrow parses exactly into their staging type (ints,
    decimals, dates, timestamps: every value, strictly — a rounding decimal, a zero date,
    an overflow fail the whole column), typed in place: DuckDB then copies them as they
    are. A column with any value that does not parse stays text: ``convert`` casts it and
    rejects the rows that do not convert, with the column and the value."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if batch.arrays is None:
        return columns
    out = []
    for i, c in enumerate(columns):
        typ = _arrow_type(c)
        if typ is not None:
            try:
                batch.arrays[i] = pc.cast(batch.arrays[i], typ)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass  # some value does not parse: the text and the conversion decide
            else:
                c = Column(c.name, c.remote, c.type, NATIVE, c.source_type)
        out.append(c)
    return out


def _text(c: Column) -> exp.Expr:
    """The remote expression of ``c``, as text (strings are read as they are)."""
    return c.remote


def _translate(e: BaseException, label: str) -> Exception:
    from lockgate.sources.mysql import _translate as translate

    return translate(e, f"{label} (change data capture)")
